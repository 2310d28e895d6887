"""Why end-to-end fine-tuning keeps the backbone's batch-norm statistics (``hashbench.nets.END2END_VERSION`` 2).

    python -m benchmarks.e2e_batchnorm --data-root DIR        # CIFAR-10, Lite0 at 96 px, 1,200 images

Takes ``--n`` CIFAR-10 images (seeded draw), computes Lite0's eval-mode pooled features at ``--size``,
then runs ``--steps`` train-mode forward passes over random batches of ``--batch`` images *without any
weight update* (only batch-norm running statistics move, as they did while fine-tuning before
version 2), and computes the eval features again. Reported: the relative change of the features
and their leave-one-out 1-NN label accuracy (cosine) before and after, for the network as it was
(statistics re-estimated) and as it is now (``freeze_batchnorm``: statistics kept).
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from tabulate import tabulate

from hashbench.datasets import load_dataset
from hashbench.nets import end2end_net, preprocess_images


def _features(net, x: torch.Tensor) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return torch.cat([net.features(x[i : i + 100]) for i in range(0, len(x), 100)]).numpy()


def _nn_accuracy(f: np.ndarray, y: np.ndarray) -> float:
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    s = f @ f.T
    np.fill_diagonal(s, -np.inf)
    return float((y[s.argmax(1)] == y).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, help="the CIFAR-10 folder (JPEG copy or pickles)")
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=24, help="SSDH's end-to-end batch")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ds = load_dataset("cifar10", args.data_root)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(ds.labels), args.n, replace=False))
    y = np.asarray(ds.labels)[idx]
    y = y.argmax(1) if y.ndim == 2 else y
    arch = f"efficientnet-lite0@{args.size}"
    x = preprocess_images(ds.images.load(idx), arch=arch)
    net = end2end_net(arch, 32, "imagenet")
    f0 = _features(net, x)
    rows = [{"network": "pretrained (eval)", "feature change": 0.0, "1-NN accuracy": _nn_accuracy(f0, y)}]
    for name, frozen in (("statistics re-estimated (before)", False), ("statistics kept (now)", True)):
        trained = copy.deepcopy(net)
        trained.freeze_batchnorm = frozen
        trained.train()
        batches = np.random.default_rng(1)
        with torch.no_grad():
            for _ in range(args.steps):
                trained.features(x[batches.choice(len(x), args.batch, replace=False)])
        f1 = _features(trained, x)
        change = float(np.linalg.norm(f1 - f0) / np.linalg.norm(f0))
        rows.append({"network": name, "feature change": change, "1-NN accuracy": _nn_accuracy(f1, y)})
    print(
        f"{args.steps} train-mode forwards of {args.batch} images, no weight update; {args.n} images at {args.size} px"
    )
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3f"))


if __name__ == "__main__":
    main()
