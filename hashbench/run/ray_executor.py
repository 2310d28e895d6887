"""The Ray executor: each cell of a grid a Ray task (``hashbench run --executor ray [--address HEAD:6379]``).

Ray is an extra (``pip install 'hashbench[ray]'``); this module imports it only inside functions, so
``import hashbench.run.ray_executor`` works without it and :class:`RayExecutor` then raises a
:class:`~hashbench.errors.HashbenchError` with the install command.

How a run goes:

1. The runner's ``prepare`` step has already computed the representation (and rotated copies) once,
   in the driver, into the content-keyed disk cache (:mod:`hashbench.cache`). Workers find it there,
   with the same key, and never recompute it.
2. Every unfinished task is submitted at once, longest first (:func:`hashbench.run.plan.longest_first`),
   as a Ray task calling
   :func:`hashbench.run.execute.execute_cell` with resources from the method (:func:`task_resources`):
   one CPU for shallow methods, ``deep_cpus`` for deep ones, and one GPU for deep methods when the
   run's device is CUDA. Ray queues what does not fit and runs the rest in parallel.
3. Outcomes are yielded as tasks complete (a ``ray.wait`` loop), so the runner's progress bar counts
   finished cells. A cell whose code raises is yielded with its error while the others go on;
   ``execute_cell`` writes each record atomically, so resumption, ``--force`` and tables work exactly
   as with the local executor.
4. A worker process that dies mid-cell (killed, out of memory, node lost) leaves no record, because
   the record appears only by an atomic rename once complete. Ray runs the cell again up to
   ``max_retries`` times (1 by default); if it dies every time the cell is reported as
   :class:`CellCrashed`. An error raised by the cell's own code is not retried: it would repeat.

On a cluster of several machines, ``--out``, the cache folder (``--cache-dir`` or
``$HASHBENCH_CACHE``) and ``--data-root`` must be shared storage mounted at the same path on every
node (NFS, a cluster file system), and every node needs the same hashbench installed. Records are
written by the workers into ``--out``; features computed by the driver are read from the cache
folder. Features are not shipped through Ray's object store: the disk cache already holds them, a
re-run or ``hashbench tables`` needs the files anyway, and a CIFAR-10-sized representation
(60,000 x 1,280 float32, 300 MB) would otherwise sit in every node's object store. Before the first
cell, when Ray sees more than one node, the executor checks this with one tiny task per node
(:func:`check_shared_storage`) and stops with the path and the fix when ``--out`` is not shared
(a missing shared cache only warns: each node then computes the representation once itself).

The driver's working directory and cache folder are sent along (paths are made absolute), so
relative ``--out`` and ``--data-root`` values mean the same thing in the workers.

When the driver dies (``hashbench run`` killed, even by kill -9), nothing of it is left running;
Ray's own fate sharing does it, and hashbench adds nothing (measured with Ray 2.60 on Linux, pinned
by the ``test_killed_driver_*`` tests of ``tests/test_ray.py``):

- A Ray instance this process started (no ``--address``, no ``$RAY_ADDRESS``): Ray starts its GCS,
  raylet, monitor, log monitor and dashboard as children that the kernel kills at the driver's
  death (``PR_SET_PDEATHSIG``); a worker running a cell exits as soon as it loses its raylet
  (within seconds); the raylet's two agents (``DashboardAgent``, ``RuntimeEnvAgent``) notice the
  raylet's death within seconds and exit after their report of it to the dead GCS times out (about
  60 s). The session's log folder under Ray's temporary folder (``/tmp/ray``; ``$RAY_TMPDIR``)
  stays, as after a normal end.
- A cluster given by address (not started here): the cluster stays up. The driver's death ends its
  Ray job, and Ray kills the job's workers, so this run's running cells stop within seconds; other
  jobs on the cluster go on.

Either way a killed cell leaves no record (records appear by atomic rename only when complete), and
re-running the command resumes the grid.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import HashbenchError, InvalidInput
from .execute import RunContext
from .executors import Outcome
from .plan import Task, longest_first

__all__ = ["CellCrashed", "RayExecutor", "RayMissing", "check_shared_storage", "task_resources"]

INSTALL = "pip install 'hashbench[ray]'"
AUTH_HINT = (
    "; if the cluster uses token authentication (Ray >= 2.52 starts clusters with it: the head's log says "
    "'Token authentication is enabled'), set RAY_AUTH_MODE=token here, with the head's token in RAY_AUTH_TOKEN "
    "(`ray get-auth-token` on the head) unless this is the head"
)


class RayMissing(HashbenchError):
    """``--executor ray`` was asked for but Ray is not installed."""


class CellCrashed(HashbenchError):
    """A cell's Ray worker died on every attempt (killed, out of memory, node lost); no record was written."""


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(
            f"--executor ray needs Ray, which is not installed ({exc}); install it with "
            f"`{INSTALL}`, or run on this machine with --executor local (--jobs N)"
        ) from None
    return ray


def task_resources(
    task: Task,
    device: str,
    *,
    deep_cpus: int = 2,
    max_node_cpus: float | None = None,
) -> dict[str, float]:
    """The Ray resources of one cell: ``{"num_cpus": ..., "num_gpus": ...}``.

    Shallow methods (``deep = False``) take one CPU: they are single matrix factorisations and the
    grid's parallelism is over cells. Deep methods take ``deep_cpus`` CPUs (their torch thread pool;
    data loading of the end-to-end track too), capped at the largest node's CPUs so a task is never
    infeasible, and one GPU when ``device`` is CUDA. Shallow methods never get a GPU.
    """
    from ..methods import get_method

    deep = bool(getattr(get_method(task.method), "deep", False))
    cpus = float(deep_cpus if deep else 1)
    if max_node_cpus is not None and max_node_cpus >= 1:
        cpus = min(cpus, float(max_node_cpus))
    gpus = 1.0 if deep and str(device).startswith("cuda") else 0.0
    return {"num_cpus": cpus, "num_gpus": gpus}


def _extra_methods(tasks: Sequence[Task]) -> dict[str, type]:
    """Methods of these tasks registered in this process (``hashbench.methods.register``), not by
    entry point: workers are other processes, so the classes travel with the tasks (by reference
    when their module is importable there, as cloudpickle does)."""
    from importlib.metadata import entry_points

    from ..methods import ENTRY_POINT_GROUP, get_method

    installed = {ep.name.lower() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    out: dict[str, type] = {}
    for t in tasks:
        name = t.method.lower()
        if name not in installed and name not in out:
            out[name] = get_method(name)
    return out


def _on_worker(ctx: RunContext, task: Task, methods: dict[str, type], threads: int, cwd: str) -> dict[str, Any]:
    """What a Ray worker runs for one cell (module level, so Ray pickles it by reference)."""
    import ray

    from ..device import limit_threads
    from ..methods import register
    from .execute import execute_cell

    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    n = max(1, int(threads))
    limit_threads(n)
    # numba's OpenMP layer, started by limit_threads, resets the process's OpenMP pool (faiss's too) to
    # all cores; cap it again, or a 1-CPU cell runs faiss with every core's threads
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    for name, cls in methods.items():
        register(name, cls)
    if str(ctx.device).startswith("cuda") and ray.get_gpu_ids():
        # Ray sets CUDA_VISIBLE_DEVICES to the GPU it assigned: that one is "cuda" (index 0) here.
        ctx = dataclasses.replace(ctx, device="cuda")
        if "device" in task.kwargs:
            task = dataclasses.replace(task, kwargs={**task.kwargs, "device": "cuda"})
    return execute_cell(ctx, task)


def _probe(checks: list[tuple[str, str]]) -> dict[str, Any]:
    """On one node: which of (file, expected content) pairs it cannot read back, and its versions."""
    import platform

    from .. import __version__

    missing = []
    for path, token in checks:
        try:
            ok = Path(path).read_text() == token
        except OSError:
            ok = False
        if not ok:
            missing.append(path)
    return {"host": platform.node(), "hashbench": __version__, "missing": missing}


def check_shared_storage(
    folders: dict[str, str], *, node_ids: list[str] | None = None, timeout_s: float = 300.0
) -> list[str]:
    """Check that every node sees ``folders`` (what -> path) as the driver does; returns warnings.

    The driver writes a file with a random token in each folder; one task per alive node (pinned to
    it, zero CPUs) reads them back. ``--out`` (key ``"out"``) unseen on a node, or another hashbench
    version there, raises :class:`~hashbench.errors.InvalidInput` naming the node and the fix; other
    folders unseen only warn (returned). Needs an initialised Ray.
    """
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .. import __version__

    written: list[Path] = []
    checks: list[tuple[str, str]] = []
    what_of: dict[str, str] = {}
    try:
        for what, folder in folders.items():
            p = Path(folder).expanduser().resolve()
            try:
                p.mkdir(parents=True, exist_ok=True)
                f = p / f".hashbench-ray-probe-{uuid.uuid4().hex}"
                token = uuid.uuid4().hex
                f.write_text(token)
            except OSError:
                continue  # the runner reports an unwritable --out itself; a cache folder may be absent
            written.append(f)
            checks.append((str(f), token))
            what_of[str(f)] = what
        if node_ids is None:
            node_ids = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        probe = ray.remote(_probe)
        refs = [
            probe.options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=nid, soft=False)
            ).remote(checks)
            for nid in node_ids
        ]
        try:
            answers = ray.get(refs, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise InvalidInput(
                f"the Ray cluster's nodes did not answer a storage check within {timeout_s:.0f} s; "
                "check that every node is up (`ray status`)"
            ) from None
    finally:
        for f in written:
            try:
                f.unlink()
            except OSError:
                pass
    notes: list[str] = []
    for a in answers:
        if a["hashbench"] != __version__:
            raise InvalidInput(
                f"Ray node {a['host']} has hashbench {a['hashbench']}, this driver {__version__}; "
                "install the same hashbench on every node"
            )
        for f in a["missing"]:
            what = what_of[f]
            folder = str(Path(f).parent)
            if what == "out":
                raise InvalidInput(
                    f"Ray node {a['host']} does not see the output folder {folder} as this machine does, so its "
                    "records would be lost; put --out on storage shared by every node, mounted at the same path"
                )
            notes.append(
                f"Ray node {a['host']} does not see the {what} folder {folder}; each node then computes "
                "the representation itself (put the cache on shared storage to compute it once)"
            )
    return notes


class RayExecutor:
    """Cells as Ray tasks, on an existing cluster (``address``) or a Ray instance started here.

    Args:
        address: a cluster's address (``HEAD:6379``; ``auto``: the cluster started on this machine with
            ``ray start``); None: ``$RAY_ADDRESS`` if set, else a private local instance. A Ray this
            process already initialised is used as it is.
        num_cpus: CPUs of a local instance (None: all cores). Ignored with ``address``.
        deep_cpus: CPUs (torch threads) per deep-method cell; shallow cells take one.
        max_retries: times a cell is re-run after its worker died (not after an error of its code).
        init_kwargs: more keyword arguments for ``ray.init`` (e.g. ``object_store_memory``).

    Raises RayMissing (a HashbenchError with the install command) when Ray is not installed.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        *,
        deep_cpus: int = 2,
        max_retries: int = 1,
        init_kwargs: dict[str, Any] | None = None,
    ):
        _ray()
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
            raise InvalidInput(f"num_cpus {num_cpus!r}: give a positive number of CPUs for the local Ray instance")
        if isinstance(deep_cpus, bool) or not isinstance(deep_cpus, int) or deep_cpus < 1:
            raise InvalidInput(f"deep_cpus {deep_cpus!r}: give a positive number of CPUs per deep cell")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInput(f"max_retries {max_retries!r}: give 0 or more")
        self.address = address or None
        self.num_cpus = num_cpus
        self.deep_cpus = deep_cpus
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> bool:
        """Initialise Ray unless it already is; True when this call started it (then run() shuts it down).

        With an address (``--address`` or ``$RAY_ADDRESS``) it connects to that cluster; without one it
        starts a private local instance (``ray.init(address="local")``), never joining a cluster that
        someone else started on this machine with ``ray start`` (``--address auto`` does that).
        """
        ray = _ray()
        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = dict(self.init_kwargs)
        if not address:
            ray.init(address="local", num_cpus=self.num_cpus, **{"include_dashboard": False, **kwargs})
            return True
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            auth = "" if os.environ.get("RAY_AUTH_MODE") == "token" else AUTH_HINT
            raise InvalidInput(
                f"cannot connect to the Ray cluster at {address} ({type(exc).__name__}: {exc}); start it with "
                "`ray start --head` on the head node and check the address (HEAD:6379), or omit --address (and "
                f"$RAY_ADDRESS) for a local instance{auth}"
            ) from None
        return True

    # -- the run -------------------------------------------------------------------------------
    def run(self, ctx: RunContext, tasks: Sequence[Task]) -> Iterator[Outcome]:
        """Submit every task, then yield an Outcome per task as each completes (any order)."""
        ray = _ray()
        if not tasks:
            return
        tasks = longest_first(tasks)  # Ray schedules in submission order: long cells first
        started = self._connect()
        refs: dict[Any, Task] = {}
        pending: list[Any] = []
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            max_cpus = max((n.get("Resources", {}).get("CPU", 0.0) for n in nodes), default=0.0)
            resources = [task_resources(t, ctx.device, deep_cpus=self.deep_cpus, max_node_cpus=max_cpus) for t in tasks]
            if any(r["num_gpus"] for r in resources) and ray.cluster_resources().get("GPU", 0) < 1:
                raise InvalidInput(
                    f"device {ctx.device} asks deep methods for a GPU, but the Ray cluster has none; "
                    "add GPU nodes or run with --device cpu"
                )
            wctx = dataclasses.replace(
                ctx,
                cache_dir=_resolved_cache(ctx.cache_dir),
                data_root=str(Path(ctx.data_root).expanduser().resolve()) if ctx.data_root else ctx.data_root,
            )
            cwd = os.getcwd()
            address = self.address or os.environ.get("RAY_ADDRESS") or ""
            if len(nodes) > 1 or address.startswith("ray://"):
                folders = {"out": str(Path(tasks[0].path).resolve().parent)}
                if wctx.cache_dir:
                    folders["cache"] = wctx.cache_dir
                for note in check_shared_storage(folders, node_ids=[n["NodeID"] for n in nodes]):
                    warnings.warn(note, stacklevel=2)
            ctx_ref = ray.put(wctx)
            remote = ray.remote(_on_worker)
            methods = _extra_methods(tasks)
            for t, r in zip(tasks, resources, strict=True):
                wt = dataclasses.replace(t, path=str(Path(t.path).resolve()))
                mine = {k: v for k, v in methods.items() if k == t.method.lower()}
                ref = remote.options(
                    num_cpus=r["num_cpus"],
                    num_gpus=r["num_gpus"],
                    max_retries=self.max_retries,
                    retry_exceptions=False,
                    name=f"hashbench {t.label}",
                ).remote(ctx_ref, wt, mine, max(1, int(r["num_cpus"])), cwd)
                refs[ref] = t
                pending.append(ref)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    t = refs[ref]
                    try:
                        meta = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - reported by the runner with the cell's name
                        yield Outcome(t, error=self._error(exc, t))
                    else:
                        yield Outcome(t, meta=meta)
        except BaseException:
            for ref in pending:  # interrupted (Ctrl-C, generator closed): stop what is queued or running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort; the records stay atomic either way
                    pass
            raise
        finally:
            if started:
                ray.shutdown()

    def _error(self, exc: BaseException, task: Task) -> BaseException:
        """The error to report for a failed cell: the cell's own HashbenchError as it was raised, a
        bug as Ray's error (an instance of the original class whose text holds the remote traceback),
        a dead worker as :class:`CellCrashed`."""
        from ray.exceptions import RayTaskError

        if isinstance(exc, RayTaskError):
            cause = getattr(exc, "cause", None)
            if isinstance(cause, HashbenchError):
                return cause
            return exc
        attempts = self.max_retries + 1
        first = (str(exc).strip().splitlines() or [""])[0]
        return CellCrashed(
            f"the Ray worker running {task.label} died on {'each of ' if attempts > 1 else ''}{attempts} "
            f"attempt{'s' if attempts > 1 else ''} ({type(exc).__name__}: {first})"
            "; no record was written. A worker killed by the system is often out of memory: run fewer cells at "
            "once (ray start --num-cpus N) or give the node more memory, then re-run to finish the grid"
        )


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail at once, with the fix, when nothing listens at a ``HOST:PORT`` cluster address: Ray itself
    retries an unreachable address for about ten minutes before giving up."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # "auto", or a form Ray resolves itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with `ray start --head` on "
            "the head node (it prints the address, HEAD:6379), or omit --address for a local Ray instance"
        ) from None


def _resolved_cache(cache_dir: Any) -> Any:
    """The cache folder as an absolute path (the driver's default made explicit), or as given when caching is off."""
    from ..cache import resolve_cache_dir

    folder = resolve_cache_dir(cache_dir)
    return str(folder.resolve()) if folder is not None else cache_dir
