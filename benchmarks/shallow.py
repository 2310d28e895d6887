"""Fit and encode times of the shallow baselines on CIFAR-10-sized synthetic features.

Run ``python -m benchmarks.shallow`` from the repository root. The data mimic the GIST-512 track of
the CIFAR-10 protocol: 5,000 training and 59,000 database vectors of 512 dimensions, drawn from a
mixture of 10 Gaussian clusters (k-means and sphere-based methods behave differently on clustered
than on isotropic data). Prints one row per (method, bits): fit seconds and database-encode seconds.

Every fit runs with BLAS at one thread whatever ``--threads`` says (``hashbench.methods.fit_context``:
the codes must not depend on the thread count); ``--threads`` sets the pools for encoding. It is 1 by
default: on a shared machine a multi-threaded OpenBLAS under load made a 128 x 128 SVD ~18x slower,
which would time the neighbours rather than the methods. ``--threads 0`` keeps the library default.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from hashbench.methods import get_method

METHODS = ("lsh", "itq", "sh", "sph", "dsh")
BITS = (16, 32, 64, 128)


def clustered_features(n: int, d: int, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """float32 vectors from an isotropic Gaussian mixture with well-separated random centres."""
    centres = rng.standard_normal((n_clusters, d)) * 2.0
    return (centres[rng.integers(n_clusters, size=n)] + rng.standard_normal((n, d))).astype(np.float32)


def time_methods(
    methods: tuple[str, ...] = METHODS,
    bits: tuple[int, ...] = BITS,
    n_train: int = 5000,
    n_database: int = 59000,
    dim: int = 512,
    seed: int = 0,
) -> list[dict]:
    """Time fit on the training set and encode on the database for each method and code length."""
    rng = np.random.default_rng(seed)
    train = clustered_features(n_train, dim, 10, rng)
    database = clustered_features(n_database, dim, 10, rng)
    rows = []
    for name in methods:
        cls = get_method(name)
        for b in bits:
            t0 = time.perf_counter()
            model = cls(n_bits=b, random_state=seed).fit(train)
            t1 = time.perf_counter()
            codes = model.encode(database)
            t2 = time.perf_counter()
            assert codes.shape == (n_database, b)
            row = {"method": name, "bits": b, "fit_s": t1 - t0, "encode_s": t2 - t1}
            if hasattr(model, "n_iter_"):
                row["note"] = f"{model.n_iter_} iterations, converged={model.converged_}"
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--bits", default=",".join(map(str, BITS)))
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-database", type=int, default=59000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0: library default)")
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads if args.threads > 0 else None):
        rows = time_methods(
            tuple(m.strip() for m in args.methods.split(",") if m.strip()),
            tuple(int(b) for b in args.bits.split(",")),
            args.n_train,
            args.n_database,
            args.dim,
            args.seed,
        )
    print(
        f"{args.n_train} train x {args.dim}-d, {args.n_database} database, 10 Gaussian clusters, "
        f"seed {args.seed}, BLAS threads {args.threads or 'default'}"
    )
    print(f"| {'method':<6} | {'bits':>4} | {'fit s':>7} | {'encode s':>8} | note")
    print(f"|{'-' * 8}|{'-' * 6}|{'-' * 9}|{'-' * 10}|------")
    for r in rows:
        print(f"| {r['method']:<6} | {r['bits']:>4} | {r['fit_s']:>7.3f} | {r['encode_s']:>8.3f} | {r.get('note', '')}")


if __name__ == "__main__":
    main()
