"""glibc's default malloc against :func:`hashbench.device.keep_freed_memory`, on real fits.

    python -m benchmarks.allocator                  # HashGAN, UHGA+GA, SSDH+GA, USDH; 3 pairs each
    python -m benchmarks.allocator --methods hashgan --pairs 5

Each fit runs in its own fresh process (the allocator is a process-wide setting), one thread, the
two settings in alternation (default, kept, default, kept, ...), so that a drift of the machine's
speed hits both alike. Reported: the median seconds of each and their ratio, and whether the two
settings' projections are bitwise equal (they must be: only where memory comes from changes).

Inputs are synthetic and CIFAR-10-shaped: HashGAN end to end, 2,000 images 32x32x3 for 2 epochs; the feature
methods 5,000 vectors of 1,280 dimensions (Lite0's) with 10 planted classes, for 3 epochs. Run it
on an idle machine; nothing here is timed inside the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from tabulate import tabulate

METHODS = ("hashgan", "uhga+ga", "ssdh+ga", "usdh")


def _inputs(method: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if method == "hashgan":
        return rng.integers(0, 256, size=(2000, 32, 32, 3), dtype=np.uint8)
    centres = rng.normal(size=(10, 1280)).astype(np.float32)
    labels = rng.integers(0, 10, size=5000)
    return np.maximum(centres[labels] + rng.normal(scale=2.0, size=(5000, 1280)).astype(np.float32), 0)


def child(method: str, keep: bool, bits: int) -> dict:
    """One fit in this process: seconds and the digest of the projections."""
    from hashbench.device import keep_freed_memory, limit_threads
    from hashbench.methods import get_method

    limit_threads(1)
    if keep:
        keep_freed_memory()
    X = _inputs(method)
    # HashGAN end to end: the convolutional nets on images (the allocator matters for them)
    params = {"epochs": 2, "track": "end2end"} if method == "hashgan" else {"epochs": 3}
    params["device"] = "cpu"
    m = get_method(method)(n_bits=bits, random_state=0, **params)
    t = time.perf_counter()
    m.fit(X)
    seconds = time.perf_counter() - t
    h = np.ascontiguousarray(m.project(X[:500]), dtype=np.float32)
    return {"seconds": seconds, "digest": hashlib.sha256(h.tobytes()).hexdigest()}


def measure(method: str, bits: int, pairs: int) -> dict:
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(pairs):
        for keep in (False, True):
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.allocator", "--child", method, "--bits", str(bits)]
                + (["--keep"] if keep else []),
                check=True,
                capture_output=True,
                text=True,
            )
            runs[keep].append(json.loads(out.stdout.strip().splitlines()[-1]))
    default = statistics.median(r["seconds"] for r in runs[False])
    kept = statistics.median(r["seconds"] for r in runs[True])
    digests = {r["digest"] for rs in runs.values() for r in rs}
    return {
        "method": method,
        "bits": bits,
        "default malloc s": round(default, 2),
        "keep_freed_memory s": round(kept, 2),
        "speed-up": round(default / kept, 3),
        "bitwise equal": len(digests) == 1,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=3, help="fits per setting, in alternation")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.keep, args.bits)))
        return
    rows = [measure(m, args.bits, args.pairs) for m in args.methods.split(",")]
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
