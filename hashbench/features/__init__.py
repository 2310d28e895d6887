"""Representations: the vectors that feature-based hashing methods take.

``compute_features(dataset, "gist")`` returns float32 (n, d). Expensive representations (``gist``,
``cnn:*``) are cached on disk (:mod:`hashbench.features.cache`), keyed on the dataset's name and
content checksum, the representation, the weights' checksum, the rotation and the rows asked for;
a grid therefore extracts each representation once. ``pixels`` is cheap and never cached;
``features`` returns what a ``features:FILE`` dataset holds.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .. import cache
from ..datasets.base import ArrayImages, Dataset, content_checksum
from ..errors import InvalidInput, UnknownName

__all__ = ["compute_features", "describe_representations", "list_representations", "ROTATIONS"]

ROTATIONS = (0, 90, 180, 270)

_DESCRIPTIONS = {
    "pixels": "flattened pixels scaled to [0, 1]",
    "gist": "GIST-512 as LMgist.m computes it (grey, prefilter fc=4, 4x8 Gabor bank, 4x4 blocks)",
    "cnn:alexnet": "4096-d fc7 (after ReLU) of torchvision's AlexNet with ImageNet weights",
    "cnn:vgg16": "4096-d fc7 (after ReLU) of torchvision's VGG-16 with ImageNet weights",
    "features": "the vectors a features:FILE dataset holds",
}

#: bumped when a representation's output changes, so stale cache entries stop matching
_VERSIONS = {"gist": 1, "cnn:alexnet": 1, "cnn:vgg16": 1}


def list_representations() -> list[str]:
    """Known representation names."""
    return list(_DESCRIPTIONS)


def describe_representations() -> dict[str, str]:
    """Known representation names -> one-line descriptions."""
    return dict(_DESCRIPTIONS)


def _dataset_checksum(dataset: Dataset) -> str:
    if dataset.checksum:
        return dataset.checksum
    if isinstance(dataset.images, ArrayImages):
        return content_checksum(dataset.images.array, np.asarray(dataset.labels))
    return content_checksum(np.asarray(dataset.labels), np.frombuffer(dataset.source.encode(), np.uint8))


def _extractor(rep: str, weights, device: str, download: bool, progress: bool) -> Callable[[np.ndarray], np.ndarray]:
    if rep == "pixels":
        from .pixels import pixels

        return pixels
    if rep == "gist":
        from .gist import gist

        return lambda images: gist(images)
    from .cnn import cnn_extractor

    return cnn_extractor(rep.split(":", 1)[1], "imagenet" if weights is None else weights, device, download)


def compute_features(
    dataset: Dataset,
    representation: str | None = None,
    *,
    indices: np.ndarray | None = None,
    rotate: int = 0,
    cache_dir: str | os.PathLike | None | bool = None,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    progress: bool = False,
    download: bool = False,
) -> np.ndarray:
    """The representation of a dataset's items as float32 (n, d).

    Args:
        dataset: a loaded :class:`~hashbench.datasets.base.Dataset`.
        representation: see :func:`list_representations`; None means ``features`` for a
            feature-only dataset.
        indices: rows to return (default all). When the whole dataset's entry is cached, rows are
            sliced from it; otherwise only these rows are computed and cached under their own key.
        rotate: 0, 90, 180 or 270: the representation of the images turned counter-clockwise by
            that angle (``np.rot90`` on the H, W axes), cached separately.
        cache_dir: cache folder; None = ``$HASHBENCH_CACHE`` or ``~/.cache/hashbench``; False = no cache.
        weights: CNN weights: None = torchvision's ImageNet weights, or a state_dict file.
        device: torch device for CNNs (``"auto"`` picks CUDA when present); GIST runs on the CPU.
        batch_size: images decoded and processed at a time.
        progress: show a progress bar.
        download: allow torchvision to download ImageNet weights.

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

    folder = cache.resolve_cache_dir(cache_dir) if rep in _VERSIONS else None
    key = None
    if folder is not None:
        wid = None
        if rep.startswith("cnn:"):
            from .cnn import weights_id

            wid = weights_id(rep.split(":", 1)[1], "imagenet" if weights is None else weights)
        key = {
            "dataset": dataset.name,
            "checksum": _dataset_checksum(dataset),
            "n": n,
            "representation": rep,
            "version": _VERSIONS[rep],
            "weights": wid,
            "rotate": rotate,
        }
        full_path = cache.entry_path(folder, "features", f"{dataset.name}-{rep}-r{rotate}", {**key, "rows": "all"})
        full = cache.load_entry(full_path, mmap=True)
        if full is not None and full.shape[0] == n:
            return np.ascontiguousarray(full[idx])
        if indices is not None:
            rows = content_checksum(idx)
            path = cache.entry_path(folder, "features", f"{dataset.name}-{rep}-r{rotate}", {**key, "rows": rows})
            hit = cache.load_entry(path)
            if hit is not None and hit.shape[0] == len(idx):
                return hit
        else:
            path = full_path

    out = _compute(dataset, rep, idx, rotate, weights, device, batch_size, progress, download)
    if key is not None:
        try:
            cache.save_entry(path, out, {**key, "rows": "all" if indices is None else content_checksum(idx)})
        except OSError:  # an unwritable cache costs a recomputation next time, nothing else
            pass
    return out


def _normalise(representation: str | None, dataset: Dataset) -> str:
    if representation is None or representation == "":
        if dataset.features is not None:
            return "features"
        raise InvalidInput(f"{dataset.name} holds images: choose a representation ({', '.join(_DESCRIPTIONS)})")
    rep = representation.strip().lower()
    if rep not in _DESCRIPTIONS:
        raise UnknownName(
            f"unknown representation {representation!r}; known: "
            + "; ".join(f"{k}: {v}" for k, v in _DESCRIPTIONS.items())
        )
    if rep == "features" and dataset.features is None:
        raise InvalidInput(f"{dataset.name} holds no ready-made features; choose pixels, gist or cnn:*")
    return rep


def _compute(dataset, rep, idx, rotate, weights, device, batch_size, progress, download) -> np.ndarray:
    fn = _extractor(rep, weights, device, download, progress)
    chunks = range(0, len(idx), max(1, int(batch_size)))
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc=rep, unit="batch")
    parts = []
    for s in chunks:
        images = dataset.images.load(idx[s : s + batch_size])
        if rotate:
            images = np.rot90(images, k=rotate // 90, axes=(1, 2))
        parts.append(np.asarray(fn(np.ascontiguousarray(images)), dtype=np.float32))
    if not parts:
        return np.zeros((0, 0), np.float32)
    return np.concatenate(parts)
