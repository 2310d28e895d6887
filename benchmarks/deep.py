"""Deep-method performance: SSDH features-track training time, end-to-end training throughput.

    python -m benchmarks.deep                      # CPU, and CUDA when torch sees a GPU
    python -m benchmarks.deep --devices cpu --epochs 5 --batches 3

1. SSDH on the features track: 5,000 x 512 synthetic GIST-like features (non-negative, clustered,
   seeded), 32 bits, the default schedule (10 epochs, batch 24): similarity-matrix time, training
   time, seconds per epoch.
2. End-to-end throughput: AlexNet (weights=None; the weights do not change the cost) + hash layer at
   224x224, training mode, forward + SSDH loss + backward + Adam step on batches of 24 images
   (``--batch``), after one warm-up batch: images per second. Preprocessing (resize of 32x32 uint8
   images) is included, as in a real fit.

Figures are printed as a Markdown table. They depend on the machine and its load; nothing is timed
inside the test suite.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from hashbench_baselines.ssdh import SSDH, ssdh_loss

from hashbench.device import resolve_device, seeded
from hashbench.methods.similarity import semantic_similarity


def gist_like(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Non-negative clustered features with GIST-like scale (10 clusters, seeded)."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((10, dim)))
    labels = rng.integers(0, 10, n)
    return (0.05 * (centres[labels] + 0.8 * np.abs(rng.standard_normal((n, dim))))).astype(np.float32)


def features_track(device: str, n: int, dim: int, bits: int, epochs: int | None) -> dict:
    X = gist_like(n, dim)
    t0 = time.perf_counter()
    semantic_similarity(X)
    t_sim = time.perf_counter() - t0
    m = SSDH(n_bits=bits, device=device, epochs=epochs)
    t0 = time.perf_counter()
    m.fit(X)
    t_fit = time.perf_counter() - t0
    n_ep = m.history_["epochs_run"]
    return {
        "what": f"SSDH features track, {n}x{dim}, {bits} bits, {n_ep} epochs, batch {m.batch_size}",
        "device": device,
        "similarity_s": round(t_sim, 2),
        "fit_s": round(t_fit, 1),
        "s_per_epoch": round((t_fit - t_sim) / max(n_ep, 1), 3),
    }


def end2end_throughput(device: str, arch: str, batch: int, batches: int, bits: int) -> dict:
    from hashbench.nets import end2end_net, preprocess_images

    dev = resolve_device(device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(batch, 32, 32, 3), dtype=np.uint8)
    S = torch.from_numpy(rng.choice([-1, 0, 1], size=(batch, batch)).astype(np.int8)).to(dev)
    with seeded(0, dev):
        net = end2end_net(arch, bits, weights=None).to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1.0)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss = ssdh_loss(net(preprocess_images(images).to(dev)), S)
            loss.backward()
            opt.step()

        step()  # warm-up (allocations, cuDNN autotuning)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(batches):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
    return {
        "what": f"{arch} end2end train step at 224, batch {batch}, {batches} batches",
        "device": str(dev),
        "images_per_s": round(batch * batches / dt, 1),
        "s_per_batch": round(dt / batches, 3),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="auto", help="comma list of cpu,cuda; auto = cpu plus cuda when present")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=None, help="features-track epochs (default: SSDH's, 10)")
    ap.add_argument("--arch", default="alexnet")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--skip-features", action="store_true")
    ap.add_argument("--skip-end2end", action="store_true")
    args = ap.parse_args(argv)
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        if args.devices == "auto"
        else [d.strip() for d in args.devices.split(",") if d.strip()]
    )
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, devices {devices}", flush=True)
    for dev in devices:
        if not args.skip_features:
            rows.append(features_track(dev, args.n, args.dim, args.bits, args.epochs))
            print(rows[-1], flush=True)
        if not args.skip_end2end:
            rows.append(end2end_throughput(dev, args.arch, args.batch, args.batches, args.bits))
            print(rows[-1], flush=True)
    keys = ["what", "device", "similarity_s", "fit_s", "s_per_epoch", "images_per_s", "s_per_batch"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
