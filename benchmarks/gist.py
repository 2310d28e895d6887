"""GIST-512 throughput on CIFAR-10's JPEG copy.

    python -m benchmarks.gist [--n N] [--root DIR] [--batch-size B] [--workers W]

Unpacks ../shared/data/cifar10/CIFAR-10-images.tar once under the test cache
(``~/.cache/hashbench-test/cifar10-jpeg``) unless ``--root`` names an unpacked copy, loads the
60,000 images through ``load_dataset("cifar10")`` (timing the JPEG decode when the decoded array is
not cached yet; ``--cold`` forces a decode by using a fresh cache folder), then times
``hashbench.features.gist.gist`` on the first N images (default all) and prints images per second and
total seconds. Nothing is cached for GIST here: the figure is the computation alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TAR = REPO.parent / "shared" / "data" / "cifar10" / "CIFAR-10-images.tar"


def unpacked_root() -> Path:
    base = Path(os.environ.get("HASHBENCH_TEST_CACHE", Path.home() / ".cache" / "hashbench-test")).expanduser()
    dest = base / "cifar10-jpeg"
    if not (dest / ".complete").is_file():
        if not TAR.is_file():
            raise SystemExit(f"no unpacked copy and no tar at {TAR}; pass --root DIR")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix="cifar10-jpeg.partial-"))
        subprocess.run(["tar", "-xf", str(TAR), "-C", str(tmp)], check=True)
        (tmp / ".complete").write_text(f"unpacked from {TAR}\n")
        os.rename(tmp, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=None, help="number of images (default: all 60,000)")
    p.add_argument("--root", type=Path, default=None, help="an unpacked CIFAR-10 JPEG copy (train/, test/)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=-1, help="scipy.fft threads (-1: all cores)")
    p.add_argument("--cold", action="store_true", help="decode the JPEGs again (fresh dataset cache)")
    args = p.parse_args(argv)

    root = args.root or unpacked_root()
    if args.cold:
        os.environ["HASHBENCH_CACHE"] = tempfile.mkdtemp(prefix="hashbench-gist-bench-")
    from hashbench.datasets import load_dataset
    from hashbench.features.gist import gist

    t0 = time.perf_counter()
    ds = load_dataset("cifar10", root)
    t_load = time.perf_counter() - t0
    n = len(ds) if args.n is None else min(args.n, len(ds))
    images = ds.images.load(np.arange(n))

    t0 = time.perf_counter()
    feats = gist(images, batch_size=args.batch_size, workers=args.workers)
    t_gist = time.perf_counter() - t0

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"dataset: {ds.source}")
    print(f"load_dataset('cifar10'): {t_load:.1f} s ({'JPEG decode' if args.cold else 'decode or cache hit'})")
    print(
        f"GIST-512 on {n} images: {t_gist:.1f} s total, {n / t_gist:.0f} images/s, "
        f"output {feats.shape} {feats.dtype}, finite: {bool(np.isfinite(feats).all())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
