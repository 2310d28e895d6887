"""What Table 2's swept value does to UHGA's similarity matrix: per threshold, the share of training
pairs marked similar and how many of them share a class (labels read here only, never by the method).

    python -m benchmarks.uhga_similarity --data-root DIR            # CIFAR-10, Lite0 features
    python -m benchmarks.uhga_similarity --dataset digits           # digits, pixels

The matrix is UHGA's own (``hashbench_baselines.uhga.similarity_matrix``: S_ij = 1 iff the cosine
similarity of the training items' features is at least the threshold), over the distinct pairs of
the training part of split seed 0. ``--centred`` also shows the same with the features' mean
subtracted first, the reading under which a threshold of 0 leaves a usable matrix on non-negative
features (docs/RESULTS.md, section 2.8).
"""

from __future__ import annotations

import argparse

import numpy as np


def fractions(features: np.ndarray, labels: np.ndarray, thresholds: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, share of distinct pairs similar, share of those in the same class) per threshold.

    The pairs' cosine distances are computed once, as UHGA's ``similarity_matrix`` computes them
    (float32, in row blocks), and each threshold applies its ``threshold_similarity`` to them."""
    from hashbench_baselines.uhga import threshold_similarity

    from hashbench.methods.similarity import cosine_distance_matrix

    F = np.asarray(features, dtype=np.float32)
    n, block = len(F), 1024
    iu = np.triu_indices(n, 1)
    D = np.concatenate([cosine_distance_matrix(F[i : i + block], F) for i in range(0, n, block)])[iu]
    same = (labels[:, None] == labels[None, :])[iu]
    out = []
    for t in thresholds:
        s = threshold_similarity(D, t).astype(bool)
        out.append((t, float(s.mean()), float(same[s].mean()) if s.any() else float("nan")))
    return out


def main(argv: list[str] | None = None) -> None:
    from hashbench.datasets import load_dataset
    from hashbench.datasets.protocols import make_split
    from hashbench.features import compute_features
    from hashbench.run.plan import default_representation

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-root", default=None)
    p.add_argument("--features", default=None, help="default: what `hashbench run` uses for the dataset")
    p.add_argument("--thresholds", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
    p.add_argument("--centred", action="store_true", help="also with the training features' mean subtracted")
    args = p.parse_args(argv)

    ds = load_dataset(args.dataset, data_root=args.data_root)
    rep = args.features or default_representation(args.dataset, ds)
    train = make_split(args.dataset, ds.labels, 0)["train"]
    X = np.asarray(compute_features(ds, rep)[train], dtype=np.float32)
    y = np.asarray(ds.labels)[train]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    variants = [("as UHGA computes it", X)]
    if args.centred:
        variants.append(("centred features", X - X.mean(axis=0)))
    print(f"{args.dataset} {rep}: {len(X)} training items, {len(X) * (len(X) - 1) // 2} distinct pairs")
    print("| features | threshold | pairs similar | of those, same class |")
    print("|---|---|---|---|")
    for name, F in variants:
        for t, share, precision in fractions(F, y, thresholds):
            same = "—" if np.isnan(precision) else f"{100 * precision:.1f}%"
            print(f"| {name} | {t:g} | {100 * share:.2f}% | {same} |")


if __name__ == "__main__":
    main()
