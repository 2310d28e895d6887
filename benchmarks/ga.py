"""GA and HashGAN fast paths against their plain formulations, side by side in one process.

    python -m benchmarks.ga                       # the default configurations below
    python -m benchmarks.ga --bits 32 --reps 5    # quicker

1. One GA iteration (:meth:`GradientAttention.step`: look-ahead, attention weights, theta step and
   the meta-gradient step on phi) on a hash net of the methods' shape (features 1280 -> 1024 ->
   bits, tanh), for SSDH+GA's batch (24) and UHGA+GA's (128) at each code length: milliseconds per
   step with the eager reference attention (``attention_weights_reference``) and with the chunked
   attention MLP (``attention_weights``, the default), and their ratio. The two are timed in
   alternation from the same state, after one warm-up step each, median of ``--reps``.
2. HashGAN's generator step: a small fit (synthetic 32x32 images) with the full backward
   (``_generator_grads_only = False``) and with the generator-only gradients (the default), in
   alternation, median seconds and ratio; and whether the two fits' projections are bitwise equal.

Run it on an idle machine: the figures are ratios of runs taken side by side, and another job's load
changes both. Nothing here is timed inside the test suite.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from hashbench_baselines.gradient_attention import (
    GradientAttention,
    attention_weights,
    attention_weights_reference,
)
from hashbench_baselines.hashgan import HashGAN
from hashbench_baselines.uhga import pairwise_likelihood_loss
from tabulate import tabulate
from torch import nn


def likelihood_loss(P: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """UHGA+GA's loss at its defaults (gamma 0.2, positives weighted 10)."""
    return pairwise_likelihood_loss(P, S, 0.2, 10.0)


def _ga_state(batch: int, bits: int, dim: int, seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(dim, 1024), nn.ReLU(), nn.Linear(1024, bits), nn.Tanh())
    g = torch.Generator().manual_seed(seed)
    xa = torch.randn(batch, dim, generator=g)
    xb = torch.randn(batch, dim, generator=g)
    S = (torch.rand(batch, batch, generator=g) < 0.1).float()
    return net, xa, xb, S


def ga_step_ms(batch: int, bits: int, dim: int, reps: int) -> dict:
    """Median ms per GA step, reference vs chunked attention, timed in alternation."""
    net, xa, xb, S = _ga_state(batch, bits, dim)
    runners = {}
    for name, fn in (("reference", attention_weights_reference), ("chunked", attention_weights)):
        model = copy.deepcopy(net)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        ga = GradientAttention(model, opt, seed=0)
        ga.weights_fn = fn
        ga.step(xa, xb, S, likelihood_loss)  # warm-up
        runners[name] = ga
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(reps):
        for name, ga in runners.items():
            t0 = time.perf_counter()
            ga.step(xa, xb, S, likelihood_loss)
            times[name].append(time.perf_counter() - t0)
    ref, new = (1e3 * statistics.median(times[k]) for k in ("reference", "chunked"))
    return {
        "batch": batch,
        "bits": bits,
        "reference_ms": round(ref, 1),
        "chunked_ms": round(new, 1),
        "speed-up": round(ref / new, 2),
    }


def hashgan_fit(reps: int, n: int, epochs: int) -> dict:
    """Median seconds of a small HashGAN fit with the full backward vs G-only gradients."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    params = {"n_bits": 32, "epochs": epochs, "batch_size": 64, "device": "cpu", "random_state": 0, "track": "end2end"}
    times: dict[bool, list[float]] = {False: [], True: []}
    proj: dict[bool, np.ndarray] = {}
    for _ in range(reps):
        for flag in (False, True):
            HashGAN._generator_grads_only = flag
            try:
                t0 = time.perf_counter()
                m = HashGAN(**params).fit(images)
                times[flag].append(time.perf_counter() - t0)
            finally:
                HashGAN._generator_grads_only = True
            proj[flag] = m.project(images)
    full, fast = (statistics.median(times[k]) for k in (False, True))
    return {
        "what": f"HashGAN fit, {n} images 32x32x3, {epochs} epoch(s), batch 64, 32 bits",
        "full_backward_s": round(full, 2),
        "g_only_s": round(fast, 2),
        "speed-up": round(full / fast, 2),
        "projections_bitwise_equal": bool(np.array_equal(proj[False], proj[True])),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", default="16,32,64,128", help="comma list of code lengths")
    ap.add_argument("--batches", default="24,128", help="comma list of batch sizes (SSDH+GA 24, UHGA+GA 128)")
    ap.add_argument("--dim", type=int, default=1280, help="feature dimension (cnn:efficientnet-lite0: 1280)")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--gan-images", type=int, default=512)
    ap.add_argument("--gan-epochs", type=int, default=1)
    ap.add_argument("--gan-reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [
        ga_step_ms(int(b), int(k), args.dim, args.reps) for b in args.batches.split(",") for k in args.bits.split(",")
    ]
    print("\nGA step (look-ahead + attention + theta and phi updates), median ms\n")
    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.gan_reps > 0:
        print("\nHashGAN generator step\n")
        print(
            tabulate([hashgan_fit(args.gan_reps, args.gan_images, args.gan_epochs)], headers="keys", tablefmt="github")
        )


if __name__ == "__main__":
    main()
