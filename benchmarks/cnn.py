"""CNN feature extraction throughput: plain eager inference beside the faster settings, in one run.

    python -m benchmarks.cnn [--root DIR] [--n N] [--rounds R] [--arch efficientnet-lite0]
                             [--batch-sizes 16,32,64] [--threads 1,2] [--sizes 224,160] [--compile] [--bf16]

Every variant processes the same N CIFAR-10 images end to end, as ``compute_features`` does: take
the decoded uint8 32 x 32 images from the dataset object, resize the batch to the network's size in
torch (``F.interpolate`` bicubic, no antialias when enlarging), normalise, run the network, return
numpy features. Variants run interleaved in R rounds (so that load from other processes on a
shared machine hits all of them alike); the median rate per variant is reported with its ratio to
plain eager and its largest relative deviation from plain eager's features
(max |f - f_eager| / max |f_eager|). The JPEG decode rate (done once per dataset, then cached) is
measured on the same N files and printed separately.

Variants:

- ``eager``: the plain baseline, contiguous NCHW under ``torch.no_grad``, batch 64;
- ``eager+channels_last``: channels_last memory format and ``torch.inference_mode``;
- ``onnxruntime bB tT``: the exported graph on ONNX Runtime, one run per batch, at each batch size B
  and intra-op thread count T asked for;
- ``hashbench default``: what ``compute_features`` runs (``CNNExtractor``): ONNX Runtime, batches of
  64 split across torch's thread count of concurrent single-threaded runs;
- ``--sizes``: the default at other image sizes (``cnn:NAME@SIZE``), features not comparable;
- ``--compile``: ``torch.compile`` (inductor, freezing) on the channels_last model (minutes to compile);
- ``--bf16``: channels_last under bfloat16 autocast (slow without native bf16 instructions).

``--train-sizes 224,96`` also times end-to-end training steps of ``hashbench.nets.end2end_net``
(preprocess, forward, backward, SGD step) at those image sizes, contiguous and channels_last.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def _find_root() -> Path:
    from .gist import unpacked_root

    return unpacked_root()


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None, help="an unpacked CIFAR-10 JPEG copy (train/, test/)")
    p.add_argument("--n", type=int, default=192, help="images per variant and round (default 192)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--arch", default="efficientnet-lite0")
    p.add_argument("--batch-sizes", default="16,32,64", help="batch sizes of the onnxruntime variant")
    p.add_argument("--threads", default="2", help="thread counts of the onnxruntime variant (default 2)")
    p.add_argument("--sizes", default="", help="extra image sizes for the default backend, e.g. 160,192")
    p.add_argument("--compile", action="store_true", help="add torch.compile (minutes of compilation)")
    p.add_argument("--bf16", action="store_true", help="add bfloat16 autocast")
    p.add_argument("--spinning", action="store_true", help="also onnxruntime with thread spinning off")
    p.add_argument("--train-sizes", default="", help="also time end-to-end training steps at these sizes, e.g. 224,96")
    p.add_argument("--train-batch", type=int, default=32, help="batch of the training steps (default 32)")
    args = p.parse_args(argv)

    import torch

    from hashbench.datasets import load_dataset
    from hashbench.datasets.imagefolder import decode_image
    from hashbench.features.cnn import (
        CNNExtractor,
        backbone,
        export_onnx,
        onnx_session,
        parse_cnn,
        preprocess,
        preprocessing_for,
    )

    root = args.root or _find_root()
    ds = load_dataset("cifar10", data_root=str(root))
    idx = np.arange(min(args.n, len(ds)))
    spec = parse_cnn(args.arch)
    prep = preprocessing_for(spec)
    n_threads = torch.get_num_threads()

    # JPEG decode (once per dataset in practice: load_dataset caches the decoded array)
    paths = sorted((root / "train" / "airplane").iterdir())[: len(idx)]
    t = time.perf_counter()
    for path in paths:
        decode_image(path)
    decode_rate = len(paths) / (time.perf_counter() - t)

    net = backbone(spec, "imagenet")
    variants: dict[str, tuple] = {}  # name -> (fn(images) -> features, batch size, comparable)

    def eager(images):
        with torch.no_grad():
            return net(preprocess(images, prep)).numpy()

    variants["eager (contiguous, no_grad)"] = (eager, 64, True)
    net_cl = backbone(spec, "imagenet").to(memory_format=torch.channels_last)

    def eager_cl(images):
        with torch.inference_mode():
            return net_cl(preprocess(images, prep, channels_last=True)).numpy()

    variants["eager + channels_last + inference_mode"] = (eager_cl, 32, True)
    model_bytes = export_onnx(net, spec.image_size)
    for threads in _ints(args.threads):
        for spinning in (True, False) if args.spinning else (True,):
            sess = onnx_session(model_bytes, threads=threads, spinning=spinning)
            for bs in _ints(args.batch_sizes):

                def ort_fn(images, sess=sess):
                    return sess.run(None, {"x": preprocess(images, prep).numpy()})[0]

                spin = "" if spinning else " no-spin"
                variants[f"onnxruntime b{bs} t{threads}{spin}"] = (ort_fn, bs, True)
    default = CNNExtractor(spec, "imagenet")
    variants[f"hashbench default ({default.backend}, {default.workers} workers x 1 thread)"] = (default, 64, True)
    for size in _ints(args.sizes):
        ext = CNNExtractor(f"{spec.arch}@{size}", "imagenet")
        variants[f"hashbench default @{size}"] = (ext, 64, False)
    if args.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(backbone(spec, "imagenet").to(memory_format=torch.channels_last), dynamic=False)
        t = time.perf_counter()
        with torch.no_grad():
            compiled(preprocess(ds.images.load(idx[:32]), prep, channels_last=True))
        print(f"torch.compile: first call (compilation) {time.perf_counter() - t:.0f} s")

        def compiled_fn(images):
            with torch.no_grad():
                return compiled(preprocess(images, prep, channels_last=True)).numpy()

        variants["torch.compile (inductor, freezing) channels_last"] = (compiled_fn, 32, True)
    if args.bf16:

        def bf16_fn(images):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return net_cl(preprocess(images, prep, channels_last=True)).float().numpy()

        variants["bf16 autocast channels_last"] = (bf16_fn, 32, True)

    def run(fn, bs):
        parts = []
        for s in range(0, len(idx), bs):
            parts.append(np.asarray(fn(np.ascontiguousarray(ds.images.load(idx[s : s + bs]))), dtype=np.float32))
        return np.concatenate(parts)

    rates: dict[str, list[float]] = {k: [] for k in variants}
    cpu_rates: dict[str, list[float]] = {k: [] for k in variants}  # images per CPU-second of this process
    outputs: dict[str, np.ndarray] = {}
    for fn, bs, _ in variants.values():  # warm-up: first-call allocations, kernel selection
        fn(np.ascontiguousarray(ds.images.load(idx[: min(bs, len(idx))])))
    for r in range(args.rounds):
        for name, (fn, bs, _) in variants.items():
            t, c = time.perf_counter(), time.process_time()
            out = run(fn, bs)
            rates[name].append(len(idx) / (time.perf_counter() - t))
            cpu_rates[name].append(len(idx) / (time.process_time() - c))
            outputs.setdefault(name, out)
        print(f"round {r + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.1f}", flush=True)

    base_name = next(iter(variants))
    base_rate = statistics.median(rates[base_name])
    ref = outputs[base_name]
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, torch threads "
        f"{n_threads}, torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} at the end (shared machine)"
    )
    print(f"cnn:{spec.name}: {len(idx)} CIFAR-10 images x {args.rounds} rounds, 32 px -> {spec.image_size} px")
    print(f"JPEG decode (PIL, once per dataset, then cached): {decode_rate:.0f} images/s")
    cores = os.cpu_count() or 1
    print(
        "images/s: wall clock, median over rounds; img/CPU-s: images per CPU-second of this process (all its "
        f"threads), x {cores} cores = the rate on an otherwise idle machine if the threads scale"
    )
    print(f"{'variant':52s} {'images/s':>9s} {'vs eager':>9s} {'img/CPU-s':>10s} {'max rel err':>12s}   rounds")
    for name, (_, bs, comparable) in variants.items():
        med = statistics.median(rates[name])
        per_cpu = statistics.median(cpu_rates[name])
        err = float(np.abs(outputs[name] - ref).max() / np.abs(ref).max()) if comparable else float("nan")
        err_text = f"{err:12.1e}" if comparable else f"{'(other size)':>12s}"
        each = ", ".join(f"{v:.1f}" for v in rates[name])
        print(f"{name + f' [batch {bs}]':52s} {med:9.1f} {med / base_rate:8.2f}x {per_cpu:10.1f} {err_text}   {each}")
    best = max(variants, key=lambda k: statistics.median(rates[k]) if variants[k][2] else 0.0)
    best_rate = statistics.median(rates[best])
    print(
        f"\nbest at {spec.image_size} px: {best} at {best_rate:.1f} images/s: 60,000 images in "
        f"{60000 / best_rate / 60:.1f} min (plain eager: {60000 / base_rate / 60:.1f} min); "
        f"{statistics.median(cpu_rates[best]):.1f} images per CPU-second"
    )
    if args.train_sizes:
        train_rates(ds, spec, _ints(args.train_sizes), args.train_batch)
    return 0


def _train_step(net, opt, images: np.ndarray, size: int, arch: str, channels_last: bool) -> None:
    import torch

    from hashbench.nets import preprocess_images

    x = preprocess_images(images, size=size, arch=arch)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    loss = net(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def train_rates(ds, spec, sizes: list[int], batch: int, steps: int = 3) -> None:
    """Images/s of end-to-end training steps (preprocess, forward, backward, SGD) of ``end2end_net``."""
    import torch

    from hashbench.nets import end2end_net

    if spec.family == "timm":
        print(f"no end-to-end net for cnn:{spec.name}")
        return
    arch = spec.arch
    print(f"\nend-to-end training steps of end2end_net({arch!r}, 32), batch {batch}, {steps} timed steps each:")
    images = np.ascontiguousarray(ds.images.load(np.arange(batch)))
    for channels_last in (False, True):
        net = end2end_net(arch, 32, weights="imagenet").train()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
        for size in sizes:
            _train_step(net, opt, images, size, arch, channels_last)  # warm-up
            t, c = time.perf_counter(), time.process_time()
            for _ in range(steps):
                _train_step(net, opt, images, size, arch, channels_last)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            layout = "channels_last" if channels_last else "contiguous"
            print(
                f"  {size:4d} px {layout:13s}: {steps * batch / wall:6.1f} images/s, "
                f"{steps * batch / cpu:6.1f} images per CPU-second (load average {os.getloadavg()[0]:.1f})",
                flush=True,
            )


if __name__ == "__main__":
    raise SystemExit(main())
