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
fine-tuning (in the first precision listed). Issue target: ``finetune:1`` at least 15x ``finetune:all``
at 224 px.

``--encode-batch N`` also times encoding (eval mode, no gradient, N items a batch: what a cell pays
once per database item after training). ``--precisions float32,bfloat16`` adds each regime under
``torch.autocast`` in bfloat16 (the network's forward in bfloat16, the loss in float32), side by
side in the same rounds: a measurement of what lower precision would buy on this CPU. hashbench's
methods train and encode in float32; this is not an option of theirs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

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


def _precision(name: str):
    """The context a forward runs in: nothing for float32, CPU autocast for bfloat16."""
    if name == "float32":
        return nullcontext()
    if name == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise SystemExit(f"error: unknown precision {name!r}; use float32 or bfloat16")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224, help="network input side (px)")
    ap.add_argument("--batch", type=int, default=24, help="SSDH's batch size")
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per regime (alternating)")
    ap.add_argument("--steps", type=int, default=3, help="training steps per round")
    ap.add_argument("--regimes", default="finetune:all,finetune:2,finetune:1,features")
    ap.add_argument("--precisions", default="float32", help="float32 and/or bfloat16 (autocast), comma-separated")
    ap.add_argument("--encode-batch", type=int, default=0, help="also time encoding, this many items a batch")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = f"efficientnet-lite0@{args.size}"
    regimes = [r.strip() for r in args.regimes.split(",") if r.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for p in precisions:
        _precision(p)
    nets = {r: _network(r, arch, args.bits, 64) for r in regimes}
    opts = {r: _optimizer(nets[r][0], r, 1e-3, 0.1) for r in regimes}
    S = torch.sign(torch.randn(args.batch, args.batch, generator=torch.Generator().manual_seed(1)))
    cases = [(r, p) for r in regimes for p in precisions]

    def step(r: str, p: str) -> None:
        net, make = nets[r]
        x = make(args.batch)
        opts[r].zero_grad(set_to_none=True)
        with _precision(p):
            out = net(x)
        loss = ssdh_loss(out.float(), S)
        loss.backward()
        opts[r].step()

    def encode(r: str, p: str) -> float:
        net, make = nets[r]
        x = make(args.encode_batch)
        net.eval()
        t0 = time.perf_counter()
        with torch.no_grad(), _precision(p):
            net(x)
        rate = args.encode_batch / (time.perf_counter() - t0)
        net.train()
        return rate

    for r, p in cases:  # warm-up: allocator, kernels, optimiser state
        nets[r][0].train()
        step(r, p)
        if args.encode_batch:
            encode(r, p)
    rates: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    enc: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    for _ in range(args.rounds):
        for c in cases:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(*c)
            rates[c].append(args.steps * args.batch / (time.perf_counter() - t0))
            if args.encode_batch:
                enc[c].append(encode(*c))
    base_case = ("finetune:all", precisions[0])
    base = statistics.median(rates[base_case]) if base_case in rates else None
    rows = []
    for c in cases:
        med = statistics.median(rates[c])
        row = {"regime": c[0]}
        if precisions != ["float32"]:
            row["precision"] = c[1]
        row.update(
            {
                "train images/s": round(med, 1),
                "min..max": f"{min(rates[c]):.1f}..{max(rates[c]):.1f}",
                "x full fine-tuning": round(med / base, 1) if base else None,
                "trainable parameters": sum(q.numel() for q in nets[c[0]][0].parameters()),
            }
        )
        if args.encode_batch:
            row["encode images/s"] = round(statistics.median(enc[c]), 1)
        rows.append(row)
    print(
        f"SSDH training step, EfficientNet-Lite0 at {args.size} px, batch {args.batch}, {args.bits} bits, "
        f"{args.threads} thread(s), median of {args.rounds} rounds x {args.steps} steps"
        + (f"; encoding {args.encode_batch} items a batch" if args.encode_batch else "")
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
