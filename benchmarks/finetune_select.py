"""How the fine-tuning regime's defaults were chosen: on the training set alone.

    python -m benchmarks.finetune_select --data-root DIR
    python -m benchmarks.finetune_select --data-root DIR --method uhga --candidates "backbone_lr=0.1;backbone_lr=1.0"

As ``benchmarks.hashgan_select``: the protocol's training part (split seed 0) is divided once more
with a fixed seed; a fifth are queries, the other four fifths are what the method is fitted on and
the database. Every candidate (a set of ``--set``-style parameters on top of ``train_stages``) is
fitted there and scored by MAP; the protocol's test queries and database are never touched.
Candidates run in parallel processes (``--jobs``), one thread each.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from benchmarks.hashgan_select import validation_split


def _parse(text: str) -> dict:
    from hashbench.values import parse_value

    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, _, v = item.partition("=")
        out[k.strip()] = parse_value(v.strip())
    return out


def _fit_one(job: tuple) -> tuple[str, float, float]:
    import torch

    from hashbench.datasets import load_dataset
    from hashbench.features import compute_features
    from hashbench.methods import get_method
    from hashbench.metrics import evaluate

    torch.set_num_threads(1)
    data_root, rep, method, arch, bits, seed, params, queries, fit = job
    ds = load_dataset("cifar10", data_root=data_root)
    X = compute_features(ds, rep)
    kwargs = {"n_bits": bits, "random_state": seed, "device": "cpu", "arch": arch, **params}
    t0 = time.perf_counter()
    m = get_method(method)(**kwargs).fit(X[fit])
    seconds = time.perf_counter() - t0
    score = evaluate(m.encode(X[queries]), m.encode(X[fit]), ds.labels[queries], ds.labels[fit])["map"]
    return ",".join(f"{k}={v}" for k, v in params.items()), float(score), seconds


def main(argv: list[str] | None = None) -> None:
    from hashbench.datasets import load_dataset
    from hashbench.datasets.protocols import make_split
    from hashbench.features import compute_features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="the CIFAR-10 folder")
    p.add_argument("--arch", default="efficientnet-lite0", help="the backbone (its @SIZE sets the input)")
    p.add_argument("--method", default="ssdh")
    p.add_argument("--bits", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--candidates",
        default="train_stages=1,backbone_bn=frozen;train_stages=1,backbone_bn=batch",
        help="';'-separated parameter sets",
    )
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)

    ds = load_dataset("cifar10", data_root=args.data_root)
    queries, fit = validation_split(make_split("cifar10", ds.labels, args.seed)["train"])
    candidates = [_parse(c) for c in args.candidates.split(";")]
    reps = set()
    for c in candidates:
        k = c.get("train_stages", 0)
        reps.add(f"cnn:{args.arch}" if k in (0, None) else f"cnn:{args.arch}#cut{k}")
    for rep in sorted(reps):  # extracted (or found in the cache) once, before the workers start
        compute_features(ds, rep, progress=True)
    print(f"cifar10: {len(fit)} training items fit and form the database, {len(queries)} are queries")
    jobs = []
    for c in candidates:
        k = c.get("train_stages", 0)
        rep = f"cnn:{args.arch}" if k in (0, None) else f"cnn:{args.arch}#cut{k}"
        jobs.append((args.data_root, rep, args.method, args.arch, args.bits, args.seed, c, queries, fit))
    with ProcessPoolExecutor(args.jobs) as ex:
        for label, score, seconds in ex.map(_fit_one, jobs):
            print(f"{args.method} {args.bits} bits  {label:48s} validation MAP {score:.4f}  ({seconds:.0f} s fit)")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
