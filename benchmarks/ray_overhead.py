"""What a cell costs on Ray beyond the cell itself.

    python -m benchmarks.ray_overhead [--bits 8,16,24,32,48,64] [--seeds 0-3] [--repeats 3]

The grid is LSH on ``digits`` (pixels), one cell per (code length, seed): each cell trains in
milliseconds, so Ray's own cost (task submission, scheduling, argument transfer, the result's return)
is visible. A local Ray instance with one CPU runs the cells one at a time, as ``--executor local
--jobs 1`` does. Timed, each ``--repeats`` times (medians shown), executors only (no planning,
scoring or tables):

- ``in one Ray task``: every cell in a loop inside one Ray worker: the cells' own work in a Ray
  worker process, with no per-cell Ray cost;
- ``RayExecutor``: one Ray task per cell, warm workers; the overhead per cell is
  (this - the loop) / cells;
- ``LocalExecutor(1)`` in this process, for reference (thread pools of a long-lived driver process
  can make the same cells slower or faster than in a fresh worker, so it is not the baseline);
- once: ``ray.init`` (a local instance) and the first ``RayExecutor`` run with a cold worker (process
  start, imports, the dataset's first load), and the round trip of an empty Ray task.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from hashbench.device import limit_threads
from hashbench.run.execute import RunContext, dataset_of, execute_cell, prepare
from hashbench.run.executors import LocalExecutor
from hashbench.run.plan import plan
from hashbench.run.runner import RunConfig, context, parse_bits, parse_seeds


def _loop(ctx: RunContext, tasks: list) -> float:
    """Every cell in this process, one after another; seconds (runs inside one Ray task)."""
    limit_threads(1)
    t = time.perf_counter()
    for task in tasks:
        execute_cell(ctx, task)
    return time.perf_counter() - t


def _noop() -> int:
    return 0


def _drain(executor, ctx: RunContext, tasks: list) -> float:
    t = time.perf_counter()
    for o in executor.run(ctx, tasks):
        if o.error is not None:
            raise o.error
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="8,16,24,32,48,64")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    load0 = os.getloadavg()[0]

    import tempfile

    import ray

    from hashbench.run.ray_executor import RayExecutor

    cfg = RunConfig(
        dataset="digits",
        methods=["lsh"],
        bits=parse_bits(args.bits),
        seeds=parse_seeds(args.seeds),
        out=tempfile.mkdtemp(prefix="hashbench-ray-overhead-"),
        progress=False,
        device="cpu",
    )
    pre = RunContext(cfg.dataset, None, False, "", "", None, None, "cpu")
    p = plan(cfg, dataset_of(pre), "cpu")
    ctx = context(cfg, p.protocol, p.representation, "cpu")
    tasks = p.tasks
    n = len(tasks)
    prepare(ctx, tasks)
    limit_threads(1)

    t = time.perf_counter()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
    try:
        ex = RayExecutor()
        cold = _drain(ex, ctx, tasks)
        noop = ray.remote(_noop)
        ray.get(noop.remote())
        t = time.perf_counter()
        for _ in range(50):
            ray.get(noop.remote())
        noop_ms = (time.perf_counter() - t) / 50 * 1e3
        loop = ray.remote(_loop).options(num_cpus=1)
        loops, rays, locals_ = [], [], []
        for _ in range(args.repeats):  # interleaved, so a busy moment of a shared machine hits each
            loops.append(ray.get(loop.remote(ctx, tasks)))
            rays.append(_drain(ex, ctx, tasks))
            locals_.append(_drain(LocalExecutor(1), ctx, tasks))
    finally:
        ray.shutdown()
    lp, ry, lc = statistics.median(loops), statistics.median(rays), statistics.median(locals_)

    print(
        f"grid: lsh on digits, {n} cells; a local Ray instance with 1 CPU; {os.cpu_count()} cores on this machine, "
        f"shared (load average {load0:.1f} at the start): figures are indicative\n"
    )
    print("| cells run | wall | per cell |")
    print("|---|---:|---:|")
    print(f"| in one Ray task (the cells' own work), median of {args.repeats} | {lp:.2f} s | {1e3 * lp / n:.0f} ms |")
    print(
        f"| RayExecutor, one task per cell, warm worker, median of {args.repeats} | {ry:.2f} s | "
        f"{1e3 * ry / n:.0f} ms |"
    )
    print(f"| LocalExecutor(1) in this process, median of {args.repeats} | {lc:.2f} s | {1e3 * lc / n:.0f} ms |")
    print(f"| RayExecutor, first run (cold worker) | {cold:.2f} s | {1e3 * cold / n:.0f} ms |")
    print(
        f"\nRay's overhead per cell (warm worker): {1e3 * (ry - lp) / n:.0f} ms; an empty Ray task's round trip: "
        f"{noop_ms:.1f} ms; a cold worker's start (imports, dataset): about {cold - ry:.1f} s once per worker; "
        f"ray.init (local instance): {init_s:.1f} s once per `hashbench run --executor ray`"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
