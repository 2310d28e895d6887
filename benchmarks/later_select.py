"""How BiHalf's and GreedyHash's features-track learning rates were chosen: on the training set alone.

    python -m benchmarks.later_select --dataset digits --threads 1                  # digits, pixels
    python -m benchmarks.later_select --data-root DIR --threads 1                   # CIFAR-10, Lite0 features

The split's training part (split seed 0) is divided once more, with a fixed seed
(``benchmarks.hashgan_select.validation_split``): a fifth of it are the queries, the other four
fifths are both what the method is fitted on and the database. MAP of each candidate learning rate
(and of LSH and ITQ, for scale) is computed there, averaged over the model seeds ``--seeds``. The
test queries and the database of the protocol are never touched. The official codes' lr, 1e-4, is
set for SGD on raw VGG-16 fc7 over 50,000 images (1,562 steps per epoch); hashbench's head sees
standardised features and 400 to 4,000 training items, hence the search.

Measured on 2026-12-06 (digits: 400 fitted / 100 queries; CIFAR-10: 4,000 / 1,000; seeds 0-2,
one CPU thread of a shared 2-core machine): docs/METHODS.md sections 12 and 13 have the tables.
The defaults are CIFAR-10's choices (BiHalf the official 1e-4, GreedyHash 5e-3); digits' tables
pass the digits choices with ``--set``.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.hashgan_select import validation_split


def main(argv: list[str] | None = None) -> None:
    from hashbench.datasets import load_dataset
    from hashbench.datasets.protocols import make_split
    from hashbench.device import limit_threads
    from hashbench.errors import HashbenchError
    from hashbench.features import compute_features
    from hashbench.methods import get_method
    from hashbench.metrics import evaluate
    from hashbench.run.plan import default_representation

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-root", default=None)
    p.add_argument("--features", default=None, help="default: what `hashbench run` uses for the dataset")
    p.add_argument("--bits", default="32,64")
    p.add_argument("--methods", default="bihalf,greedyhash")
    p.add_argument("--lr", default="1e-4,3e-4,1e-3,3e-3,1e-2,1e-1", help="candidate learning rates")
    p.add_argument("--input-dropout", default="0,0.5", help="candidate input dropouts (0.5: official fc7 dropout)")
    p.add_argument("--seeds", default="0,1,2", help="model seeds averaged per candidate")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    limit_threads(args.threads)

    ds = load_dataset(args.dataset, data_root=args.data_root)
    rep = args.features or default_representation(args.dataset, ds)
    X = compute_features(ds, rep)
    queries, fit = validation_split(make_split(args.dataset, ds.labels, 0)["train"])
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.dataset} {rep}: {len(fit)} training items fit and form the database, {len(queries)} are queries")
    candidates = [("lsh", {}), ("itq", {})]
    for name in args.methods.split(","):
        for lr in args.lr.split(","):
            for drop in args.input_dropout.split(","):
                candidates.append((name, {"lr": float(lr), "input_dropout": float(drop)}))
    for bits in (int(b) for b in args.bits.split(",")):
        for name, params in candidates:
            cls = get_method(name)
            scores = []
            for seed in seeds:
                kwargs = {"n_bits": bits, "random_state": seed, **params}
                if "device" in cls().get_params():
                    kwargs["device"] = "cpu"
                try:
                    method = cls(**kwargs).fit(X[fit])
                    qB, dB = method.encode(X[queries]), method.encode(X[fit])
                except HashbenchError:  # a learning rate too large: the loss or the weights diverged
                    scores.append(np.nan)
                    continue
                scores.append(evaluate(qB, dB, ds.labels[queries], ds.labels[fit])["map"])
            label = name + "".join(f" {k}={v:g}" for k, v in params.items())
            if np.isnan(scores).any():
                result = f"diverged for {int(np.isnan(scores).sum())} of {len(scores)} seeds"
            else:
                result = f"validation MAP {np.mean(scores):.4f} +- {np.std(scores):.4f}"
            print(f"{bits:4d} bits  {label:40s} {result}", flush=True)


if __name__ == "__main__":
    main()
