"""Training throughput of the fine-tuning regimes, side by side in one process.

    python -m benchmarks.finetune                       # Lite0 at 224, batch 24, one thread
    python -m benchmarks.finetune --size 96 --threads 2 --json finetune.json

Times SSDH's training step (forward, SSDH's loss, backward, Adam step with the backbone stages at
``backbone_lr`` x the head's rate) on the network of each regime, in one process, alternating the
regimes round by round so a change in machine load touches all of them alike:

- ``finetune:all``: the whole backbone and the head, on preprocessed images (full fine-tuning);
- ``finetune:K``: the last K stages and the head, on the activations at the cut (the frozen part is
  computed once per image and cached, so it costs nothing per epoch);
- ``features``: the head alone on the pooled features (the features track).

The inputs are random (throughput does not depend on the pixels); the networks carry the packaged
ImageNet weights. Reported: training images per second (median over rounds) and the ratio to full
fine-tuning. Issue target: ``finetune:1`` at least 15x ``finetune:all`` at 224 px.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from hashbench_baselines.ssdh import ssdh_loss
from tabulate import tabulate

from hashbench.features.cnn import backbone, parse_cnn, stage_split
from hashbench.nets import feature_net, finetune_net


def _network(regime: str, arch: str, n_bits: int, n: int):
    """(net, input batch maker) for a regime, standardised on ``n`` random training inputs."""
    rng = torch.Generator().manual_seed(0)
    size = parse_cnn(arch).image_size
    if regime == "features":  # the representation's pooled features, once
        with torch.no_grad():
            X = backbone(arch, "imagenet")(torch.randn(n, 3, size, size, generator=rng)).numpy()
        net = feature_net(X, n_bits)
        return net, lambda b: torch.randn(b, X.shape[1], generator=rng)
    k = "all" if regime == "finetune:all" else int(regime.split(":")[1])
    frozen, _, _ = stage_split(arch, "imagenet", k)
    if k == "all":
        make = lambda b: torch.randn(b, 3, size, size, generator=rng)  # noqa: E731
    else:
        with torch.no_grad():
            probe = frozen(torch.randn(n, 3, size, size, generator=rng))
        scale = float(probe.std())
        make = lambda b: scale * torch.randn(b, probe.shape[1], generator=rng)  # noqa: E731
    X = make(n)
    net, _ = finetune_net(arch, n_bits, k, lambda idx: X[torch.as_tensor(idx)], n)
    return net, make


def _optimizer(net, regime: str, lr: float, backbone_lr: float):
    if regime == "features":
        return torch.optim.Adam(net.parameters(), lr=lr)
    stages = list(net.body[0].parameters())
    ids = {id(q) for q in stages}
    head = [q for q in net.parameters() if id(q) not in ids]
    return torch.optim.Adam([{"params": head}, {"params": stages, "lr": lr * backbone_lr}], lr=lr)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224, help="network input side (px)")
    ap.add_argument("--batch", type=int, default=24, help="SSDH's batch size")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per regime (alternating)")
    ap.add_argument("--steps", type=int, default=3, help="training steps per round")
    ap.add_argument("--regimes", default="finetune:all,finetune:2,finetune:1,features")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = f"efficientnet-lite0@{args.size}"
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    nets = {r: _network(r, arch, args.bits, 64) for r in regimes}
    opts = {r: _optimizer(nets[r][0], r, 1e-3, 0.1) for r in regimes}
    S = torch.sign(torch.randn(args.batch, args.batch, generator=torch.Generator().manual_seed(1)))

    def step(r: str) -> None:
        net, make = nets[r]
        x = make(args.batch)
        opts[r].zero_grad(set_to_none=True)
        loss = ssdh_loss(net(x), S)
        loss.backward()
        opts[r].step()

    for r in regimes:  # warm-up: allocator, kernels, optimiser state
        nets[r][0].train()
        step(r)
    rates: dict[str, list[float]] = {r: [] for r in regimes}
    for _ in range(args.rounds):
        for r in regimes:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(r)
            rates[r].append(args.steps * args.batch / (time.perf_counter() - t0))
    base = statistics.median(rates["finetune:all"]) if "finetune:all" in rates else None
    rows = []
    for r in regimes:
        med = statistics.median(rates[r])
        rows.append(
            {
                "regime": r,
                "train images/s": round(med, 1),
                "min..max": f"{min(rates[r]):.1f}..{max(rates[r]):.1f}",
                "x full fine-tuning": round(med / base, 1) if base else None,
                "trainable parameters": sum(q.numel() for q in nets[r][0].parameters()),
            }
        )
    print(
        f"SSDH training step, EfficientNet-Lite0 at {args.size} px, batch {args.batch}, {args.bits} bits, "
        f"{args.threads} thread(s), median of {args.rounds} rounds x {args.steps} steps"
    )
    print(tabulate(rows, headers="keys", tablefmt="github"))
    out = {"args": vars(args), "torch": torch.__version__, "rows": rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
