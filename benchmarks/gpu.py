"""Every GPU path of hashbench against the CPU, side by side in one run (at most 8 minutes on an H200).

    python -m benchmarks.gpu [--json FILE] [--budget-s 480] [--sections evaluate,knn,cnn,train]
    python -m benchmarks.gpu --cpu-only [--quick]     # the CPU half (what runs without a GPU)

What it measures, each on the CPU and on the GPU in the same process:

1. ``hashbench.metrics.evaluate`` (every metric: tie-aware MAP, map_index, map_min/max, p@N, p@r2,
   PR) at CIFAR-10 scale (1,000 queries x 59,000 items, 64 bits, 10 classes, MAP over the whole
   database), NUS-WIDE scale (2,100 x 193,734, 21 multi-hot labels, MAP@5000) and on a
   1,000,000-item database (1,000 queries, 64 bits, 10 classes): ``device="cpu"`` (the numba
   kernel) against ``device="cuda"`` (torch). The check column compares every scalar score of
   the two: they must agree to rounding.
2. faiss exhaustive binary k-NN (``hashbench.search.build_index``: ``IndexBinaryFlat`` against
   ``GpuIndexBinaryFlat``), k = 100 and 2,048, at CIFAR-10 scale and on the 1,000,000-item
   database; index built outside the timing; the check compares the sorted distances (faiss fixes
   no order among equal distances, so neighbour ids may differ only inside ties).
3. CNN feature extraction, images/s: ``hashbench.features.compute_features`` with
   ``cnn:efficientnet-lite0`` (no cache) on random 32 x 32 uint8 images (resized to 224 inside).
4. End-to-end training, images/s: ``fit`` for one epoch of SSDH and UHGA+GA with
   ``track="end2end"`` on random 32 x 32 images (the EfficientNet-Lite0 backbone where hashbench
   has it, else AlexNet with random weights: throughput does not depend on the weights), at the
   method's default batch size. The time covers the whole fit: the method's similarity pass over
   the training images with the pretrained backbone, then the training steps.

Codes are random with class structure (each class has a prototype code; an item's code is the
prototype of one of its labels with 30% of the bits flipped), so MAP is far from trivial. Each GPU
figure follows a warm-up call (CUDA context, kernels, cuDNN choices); CPU figures follow one too
where it is cheap. Sizes are fixed so one run stays within ``--budget-s`` (default 480 s); a
section that would start after the budget is spent is reported as skipped.

Without a GPU it says so (with what ``hashbench doctor`` reports) and exits 0. ``--cpu-only`` runs
the CPU half, and for ``evaluate`` compares the numba kernel with the torch backend on the CPU
(``device="torch-cpu"``, the code path CUDA uses), so the whole script is exercised on a CPU
machine; ``--quick`` shrinks every size for a smoke test. At the end it prints a Markdown table
and, with ``--json FILE``, writes the figures, the machine (GPU name, builds) and the command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

SECTIONS = ("evaluate", "knn", "cnn", "train")

# (name, nq, nd, bits, classes, multi-label, topk) at full size, and the --quick sizes
EVAL_CASES = [
    ("CIFAR-10 scale", 1000, 59000, 64, 10, False, None),
    ("NUS-WIDE scale", 2100, 193734, 64, 21, True, 5000),
    ("1M database", 1000, 1_000_000, 64, 10, False, None),
]
EVAL_QUICK = [
    ("CIFAR-10 scale (quick)", 100, 5000, 64, 10, False, None),
    ("NUS-WIDE scale (quick)", 120, 8000, 64, 21, True, 500),
    ("large database (quick)", 50, 20000, 64, 10, False, None),
]


# -- data ------------------------------------------------------------------------------------------
def make_codes(nq: int, nd: int, n_bits: int, n_classes: int, multi: bool, seed: int = 0):
    """Query and database codes (bool) and labels with class structure (see the module docstring)."""
    rng = np.random.default_rng(seed)
    protos = rng.random((n_classes, n_bits)) < 0.5

    def part(n):
        primary = rng.integers(0, n_classes, n)
        if multi:
            y = rng.random((n, n_classes)) < 0.08
            y[np.arange(n), primary] = True
            labels = y.astype(np.uint8)
        else:
            labels = primary
        flips = rng.random((n, n_bits)) < 0.3
        return protos[primary] ^ flips, labels

    q, ql = part(nq)
    d, dl = part(nd)
    return q, d, ql, dl


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# -- helpers ---------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str = "cpu") -> tuple[float, Any]:
    """(seconds, result) of one call, the GPU synchronised before and after."""
    _sync(device)
    t = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t, out


def _scalars(scores: dict) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float, np.floating)) and k != "topk"}


def compare_scores(a: dict, b: dict, rtol: float = 1e-6) -> tuple[bool, float]:
    """Whether every scalar score of two evaluate() results agrees to rounding; the largest difference."""
    sa, sb = _scalars(a), _scalars(b)
    worst = 0.0
    ok = set(sa) == set(sb)
    for k in sa.keys() & sb.keys():
        x, y = sa[k], sb[k]
        if math.isnan(x) and math.isnan(y):
            continue
        worst = max(worst, abs(x - y))
        ok &= bool(np.isclose(x, y, rtol=rtol, atol=1e-9))
    pa, pb = a.get("pr", {}), b.get("pr", {})
    for k in ("precision", "recall"):
        if k in pa and k in pb:
            diff = float(np.max(np.abs(np.asarray(pa[k]) - np.asarray(pb[k])))) if len(pa[k]) else 0.0
            worst = max(worst, diff)
            ok &= bool(np.allclose(pa[k], pb[k], rtol=rtol, atol=1e-9))
    return ok, worst


def row(
    section: str,
    what: str,
    size: str,
    unit: str,
    cpu: float | None,
    other: float | None,
    other_device: str,
    check: str = "",
    higher_is_better: bool = False,
    note: str = "",
) -> dict[str, Any]:
    """One line of the table; ``speedup`` is how many times faster ``other_device`` is than the CPU."""
    speedup = None
    if cpu and other:
        speedup = other / cpu if higher_is_better else cpu / other
    return {
        "section": section,
        "what": what,
        "size": size,
        "unit": unit,
        "cpu": cpu,
        "other": other,
        "other_device": other_device,
        "speedup": speedup,
        "check": check,
        "note": note,
    }


# -- 1. evaluate -----------------------------------------------------------------------------------
def bench_evaluate(devices: list[str], quick: bool) -> list[dict]:
    from hashbench.metrics import evaluate

    rows = []
    cases = EVAL_QUICK if quick else EVAL_CASES
    # warm-up: numba's kernel (compiled or loaded from its cache), torch / CUDA initialisation
    q, d, ql, dl = make_codes(20, 500, 64, 21, True, seed=1)
    for dev in devices:
        evaluate(q, d, ql, dl, topk=100, device=dev)
        evaluate(q, d, ql[:, 0] if ql.ndim == 2 else ql, dl[:, 0] if dl.ndim == 2 else dl, device=dev)
    for name, nq, nd, bits, classes, multi, topk in cases:
        q, d, ql, dl = make_codes(nq, nd, bits, classes, multi)
        metric = f"MAP@{topk}" if topk else "MAP@ALL"
        size = f"{nq:,} x {nd:,}, {bits} bits, {classes} {'multi-hot' if multi else 'classes'}, {metric}"
        t_cpu, s_cpu = timed(partial(evaluate, q, d, ql, dl, topk=topk, device="cpu"))
        other = [dv for dv in devices if dv != "cpu"]
        if not other:
            rows.append(
                row("evaluate", f"evaluate, {name}", size, "s", t_cpu, None, "-", note=f"map {s_cpu['map']:.4f}")
            )
            continue
        dev = other[0]
        t_o, s_o = timed(partial(evaluate, q, d, ql, dl, topk=topk, device=dev), dev)
        ok, worst = compare_scores(s_cpu, s_o)
        rows.append(
            row(
                "evaluate",
                f"evaluate, {name}",
                size,
                "s",
                t_cpu,
                t_o,
                dev,
                check=("equal" if ok else "DIFFER") + f" (max difference {worst:.1e})",
                note=f"map {s_cpu['map']:.4f}",
            )
        )
    return rows


# -- 2. faiss k-NN ---------------------------------------------------------------------------------
def bench_knn(gpu: bool, quick: bool) -> list[dict]:
    from hashbench.bits import pack
    from hashbench.search import GPU_MAX_K, build_index

    rows = []
    cases = [("CIFAR-10 scale", 1000, 59000), ("1M database", 1000, 1_000_000)]
    if quick:
        cases = [("CIFAR-10 scale (quick)", 100, 5000), ("large database (quick)", 50, 20000)]
    for name, nq, nd in cases:
        q, d, _, _ = make_codes(nq, nd, 64, 10, False)
        qp, dp = pack(q), pack(d)
        cpu_index = build_index(dp, use_gpu=False)
        gpu_index = build_index(dp, k=GPU_MAX_K, use_gpu=True) if gpu else None
        for k in (100, GPU_MAX_K):
            kk = min(k, nd)
            cpu_index.search(qp[:10], kk)  # warm-up
            t_cpu, (dc, _) = timed(partial(cpu_index.search, qp, kk))
            size = f"{nq:,} queries x {nd:,}, 64 bits, k = {k:,}"
            if gpu_index is None:
                rows.append(
                    row(
                        "knn",
                        f"faiss k-NN, {name}",
                        size,
                        "s",
                        t_cpu,
                        None,
                        "-",
                        note=f"{nq / t_cpu:,.0f} queries/s on the CPU",
                    )
                )
                continue
            gpu_index.search(qp[:10], kk)
            t_gpu, (dg, _) = timed(partial(gpu_index.search, qp, kk), "cuda")
            same = np.array_equal(np.sort(dc, axis=1), np.sort(dg, axis=1))
            rows.append(
                row(
                    "knn",
                    f"faiss k-NN, {name}",
                    size,
                    "s",
                    t_cpu,
                    t_gpu,
                    "cuda (GpuIndexBinaryFlat)",
                    check="distances equal" if same else "DISTANCES DIFFER",
                    note=f"{nq / t_gpu:,.0f} queries/s on the GPU",
                )
            )
    return rows


# -- 3. CNN features -------------------------------------------------------------------------------
def _images_dataset(images: np.ndarray):
    from hashbench.datasets.base import ArrayImages, Dataset, content_checksum

    labels = np.zeros(len(images), dtype=np.int64)
    return Dataset(
        name="gpu-benchmark",
        labels=labels,
        images=ArrayImages(images),
        source="random images",
        checksum=content_checksum(images),
    )


def bench_cnn(devices: list[str], quick: bool, representation: str = "cnn:efficientnet-lite0") -> list[dict]:
    from hashbench.features import compute_features

    n_of = {"cpu": 4 if quick else 256, "cuda": 4096}
    batch = 4 if quick else 256
    results: dict[str, float] = {}
    errors: dict[str, str] = {}
    for dev in devices:
        n = n_of["cuda" if dev.startswith("cuda") else "cpu"]
        try:
            compute_features(
                _images_dataset(random_images(min(n, batch), seed=2)),
                representation,
                cache_dir=False,
                device=dev,
                batch_size=batch,
            )  # warm-up: weights, kernels, cuDNN
            ds = _images_dataset(random_images(n, seed=3))
            t, X = timed(
                lambda dev=dev, ds=ds: compute_features(
                    ds, representation, cache_dir=False, device=dev, batch_size=batch
                ),
                dev,
            )
            results[dev] = n / t
            dim = X.shape[1]
        except Exception as exc:  # noqa: BLE001 - e.g. a representation this checkout does not have yet
            errors[dev] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]
    size = f"32x32 -> 224, batch {batch}, {n_of['cpu']:,} images (CPU) / {n_of['cuda']:,} (GPU)"
    other = next((d for d in devices if d != "cpu"), None)
    note = "; ".join(f"{d}: {e}" for d, e in errors.items()) or (f"{dim}-d features" if results else "")
    return [
        row(
            "cnn",
            f"CNN features, {representation}",
            size,
            "images/s",
            results.get("cpu"),
            results.get(other) if other else None,
            other or "-",
            higher_is_better=True,
            note=note,
        )
    ]


# -- 4. end-to-end training ------------------------------------------------------------------------
def end2end_arch() -> str:
    """The end-to-end backbone to time: EfficientNet-Lite0 where hashbench's deep methods have it."""
    for mod in ("hashbench.deep", "hashbench.training"):
        try:
            archs = tuple(importlib.import_module(mod).ARCHS)
        except (ImportError, AttributeError):
            continue
        lite = [a for a in archs if "lite0" in a]
        return lite[0] if lite else ("alexnet" if "alexnet" in archs else archs[0])
    return "alexnet"


def _method(name: str, arch: str, device: str, batch_size: int | None, random_weights: bool):
    from hashbench.methods import get_method

    kwargs: dict[str, Any] = {"n_bits": 32, "track": "end2end", "arch": arch, "epochs": 1, "device": device}
    if batch_size:
        kwargs["batch_size"] = batch_size
    if random_weights:
        kwargs["weights"] = None
    return get_method(name)(**kwargs)


def _fit_speed(name: str, arch: str, dev: str, quick: bool, random_weights: bool) -> tuple[float, int]:
    """(images/s, images) of one timed one-epoch fit, after a one-batch warm-up fit (full sizes)."""
    method = _method(name, arch, dev, 2 if quick else None, random_weights)
    bs = int(method.batch_size)
    n = bs * (1 if quick else (20 if dev.startswith("cuda") else 3))
    if not quick:
        _method(name, arch, dev, None, random_weights).fit(random_images(bs, seed=4))
    t, _ = timed(lambda: method.fit(random_images(n, seed=5)), dev)
    return n / t, n


def bench_train(devices: list[str], quick: bool, arch: str | None = None) -> list[dict]:
    from hashbench.errors import MissingWeights

    arch = arch or end2end_arch()
    rows = []
    for name in ("ssdh", "uhga+ga"):
        results: dict[str, float] = {}
        errors: dict[str, str] = {}
        sizes: dict[str, str] = {}
        # no ImageNet file for AlexNet / VGG here; speed does not depend on the weights
        random_weights = arch in ("alexnet", "vgg16")
        for dev in devices:
            try:
                try:
                    results[dev], n = _fit_speed(name, arch, dev, quick, random_weights)
                except MissingWeights:
                    random_weights = True
                    results[dev], n = _fit_speed(name, arch, dev, quick, random_weights)
                sizes[dev] = f"{n} images"
            except Exception as exc:  # noqa: BLE001 - reported in the row
                errors[dev] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]
        other = next((d for d in devices if d != "cpu"), None)
        weights = "random weights" if random_weights else "ImageNet weights"
        size = f"{arch} ({weights}), 32x32 -> 224, 1 epoch of " + " / ".join(f"{v} ({k})" for k, v in sizes.items())
        note = "; ".join(f"{d}: {e}" for d, e in errors.items()) or "whole fit: similarity pass + training steps"
        rows.append(
            row(
                "train",
                f"end-to-end fit, {name}",
                size,
                "images/s",
                results.get("cpu"),
                results.get(other) if other else None,
                other or "-",
                higher_is_better=True,
                note=note,
            )
        )
    return rows


# -- output ----------------------------------------------------------------------------------------
def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.3f} s" if v < 100 else f"{v:.0f} s"
    return f"{v:,.1f} {unit}" if v < 100 else f"{v:,.0f} {unit}"


def markdown(rows: list[dict], other_label: str) -> str:
    lines = [
        f"| benchmark | size | CPU | {other_label} | speed-up | check | note |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        sp = f"{r['speedup']:.1f}x" if r["speedup"] else "-"
        lines.append(
            f"| {r['what']} | {r['size']} | {_fmt(r['cpu'], r['unit'])} | {_fmt(r['other'], r['unit'])} "
            f"| {sp} | {r['check']} | {r['note']} |"
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    from hashbench.doctor import collect

    info = collect(check_gpu=True)
    return {
        "hashbench": info["hashbench"]["version"],
        "python": info["python"]["version"],
        "cpu_count": info["machine"].get("cpu_count"),
        "platform": info["machine"].get("platform"),
        "torch": info["torch"].get("version"),
        "torch_cuda": info["torch"].get("cuda_build"),
        "gpus": info["torch"].get("gpus", []),
        "faiss": info["faiss"].get("version"),
        "faiss_build": info["faiss"].get("build"),
        "faiss_gpus": info["faiss"].get("num_gpus"),
        "numba_threads": info["numba"].get("threads"),
        "summary": info["summary"],
    }


def _write_json(path: str | None, payload: dict) -> None:
    if path:
        from hashbench.io import atomic_write_text

        atomic_write_text(path, json.dumps(payload, indent=1, default=str) + "\n")
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-only", action="store_true", help="run the CPU half (evaluate: numba vs torch-cpu)")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--json", help="write the figures and the machine to this JSON file")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip sections that would start after this")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--arch", help="end-to-end backbone (default: EfficientNet-Lite0 where available, else AlexNet)"
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    t_start = time.monotonic()
    command = "python -m benchmarks.gpu " + " ".join(sys.argv[1:] if argv is None else argv)

    import torch

    has_gpu = torch.cuda.is_available()
    if not has_gpu and not args.cpu_only:
        from hashbench.doctor import collect

        info = collect(check_gpu=False)
        print("no GPU found: torch sees no CUDA device, so there is nothing to measure against the CPU here.")
        print("hashbench doctor says:")
        for line in info["summary"]:
            print(f"  - {line}")
        print(
            "On a GPU machine: pip install 'hashbench[gpu]' (see docs/INSTALL.md for the faiss build), then\n"
            "  python -m benchmarks.gpu --json gpu.json\n"
            "(or python -m benchmarks.gpu --cpu-only [--quick] for the CPU half here)."
        )
        _write_json(args.json, {"gpu": None, "reason": "no GPU found", "doctor": info["summary"], "command": command})
        return 0

    devices = ["cpu"] + (["torch-cpu"] if args.cpu_only else ["cuda"])
    gpu = has_gpu and not args.cpu_only
    machine = machine_info()
    if gpu:
        g = machine["gpus"][0] if machine["gpus"] else {}
        print(
            f"GPU: {g.get('name')} (compute capability {g.get('compute_capability')}, {g.get('memory_gib')} GiB); "
            f"torch {machine['torch']} (CUDA {machine['torch_cuda']}); faiss {machine['faiss']}: "
            f"{machine['faiss_build']}, {machine['faiss_gpus']} GPU(s)"
        )
    else:
        print(f"CPU only ({machine['cpu_count']} cores); evaluate compares numba with torch on the CPU")
    for line in machine["summary"]:
        print(f"  - {line}")

    rows: list[dict] = []
    other_dev = ["cpu", "cuda"] if gpu else ["cpu"]
    plan = {
        "evaluate": lambda: bench_evaluate(devices, args.quick),
        "knn": lambda: bench_knn(gpu and machine["faiss_gpus"] > 0, args.quick),
        "cnn": lambda: bench_cnn(other_dev, args.quick),
        "train": lambda: bench_train(other_dev, args.quick, args.arch),
    }
    for section in sections:
        elapsed = time.monotonic() - t_start
        if elapsed > args.budget_s:
            rows.append(
                row(
                    section,
                    section,
                    "-",
                    "",
                    None,
                    None,
                    "-",
                    note=f"skipped: {elapsed:.0f} s of the {args.budget_s:.0f} s budget spent",
                )
            )
            continue
        t0 = time.monotonic()
        try:
            new = plan[section]()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others' figures
            new = [row(section, section, "-", "", None, None, "-", note=f"failed: {type(exc).__name__}: {exc}"[:200])]
        rows.extend(new)
        print(f"[{section}: {time.monotonic() - t0:.1f} s]")
        print(markdown(new, "GPU" if gpu else "torch-cpu"))
        sys.stdout.flush()

    label = "GPU (cuda)" if gpu else "torch-cpu / -"
    wall = time.monotonic() - t_start
    print(
        f"\n## GPU vs CPU ({'GPU ' + machine['gpus'][0]['name'] if gpu and machine['gpus'] else 'no GPU'}; "
        f"{machine['cpu_count']} CPU cores; {wall:.0f} s)\n"
    )
    print(markdown(rows, label))
    print(f"\nProduced by `{command}` on {platform.node() or 'this machine'}.")
    _write_json(
        args.json,
        {
            "gpu": machine["gpus"][0] if gpu and machine["gpus"] else None,
            "machine": machine,
            "rows": rows,
            "wall_s": wall,
            "command": command,
            "quick": args.quick,
            "cpu_only": args.cpu_only,
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")},
        },
    )
    failed = [r for r in rows if "DIFFER" in r["check"]]
    if failed:
        print(f"{len(failed)} check(s) failed: " + "; ".join(r["what"] for r in failed))
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
