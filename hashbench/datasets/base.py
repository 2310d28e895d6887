"""The dataset interface: labels, and images or ready-made features, behind one small class.

Concrete sources (digits, mnist, cifar10, nuswide21, imagefolder, listfile, features, synthetic)
live in sibling modules and return a :class:`Dataset`. Following faiss's ``contrib/datasets.py``,
a dataset knows nothing of splits: protocols (``hashbench.datasets.protocols``) draw query / train /
database indices from its labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..digests import array_digest, file_digest, json_digest, text_digest


class ImageSource(Protocol):
    """Lazy access to a dataset's images."""

    def __len__(self) -> int: ...

    def load(self, indices: np.ndarray) -> np.ndarray:
        """uint8 images (k, H, W, C) for the given indices (C is 1 or 3; one size per source)."""
        ...


@dataclass
class ArrayImages:
    """Images held in memory as a uint8 array (n, H, W, C)."""

    array: np.ndarray

    def __len__(self) -> int:
        return len(self.array)

    def load(self, indices: np.ndarray) -> np.ndarray:
        return self.array[np.asarray(indices)]


@dataclass
class Dataset:
    """A labelled pool of items.

    Attributes:
        name: the dataset's name as given on the command line (``cifar10``, ``features:x.npz``).
        labels: (n,) integer class ids, or (n, C) multi-hot {0, 1} uint8.
        images: lazy image access, or None for feature-only datasets.
        features: (n, d) float32 vectors when the source already holds features (``features:FILE``).
        protocol: the name of the default protocol for this dataset.
        given_split: dict with ``query``, ``train``, ``database`` index arrays when the source fixes
            the split (replayed list files); None otherwise.
        source: a short description of where the data came from (path, format), stored in records.
        extra: anything a source wants to keep (class names, file paths).
        checksum: a content checksum of the source (hex); feature caches are keyed on it so that a
            changed copy of a dataset never reuses stale features. Empty when unknown.
    """

    name: str
    labels: np.ndarray
    images: ImageSource | None = None
    features: np.ndarray | None = None
    protocol: str = ""
    given_split: dict[str, np.ndarray] | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)
    checksum: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2


def content_checksum(*arrays: np.ndarray) -> str:
    """A 16-hex-digit sha256 of the arrays' dtypes, shapes and bytes, in order.

    Two sources hold the same data exactly when their checksums match, whatever file format they
    came from (IDX gz or raw, pickles or an in-memory array).
    """
    return array_digest(*arrays)


def files_checksum(
    paths: Sequence[str | os.PathLike],
    labels: np.ndarray,
    root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None | bool = None,
) -> str:
    """A content checksum of a file-based source: each file's bytes (sha256), its name and the labels.

    Changing any image's pixels changes the checksum, so records and cached features of the old
    content stop matching. Each file's digest is remembered on disk against its size and mtime
    (``<cache>/file-digests/``), so a 60,000-image folder is read once, not on every run; a file
    whose size or mtime changed is read again.
    """
    from ..cache import resolve_cache_dir

    root_path = Path(root).resolve() if root is not None else None
    folder = resolve_cache_dir(cache_dir)
    memo_path = None
    memo: dict[str, list] = {}
    if folder is not None:
        memo_path = folder / "file-digests" / f"{json_digest(str(root_path or ''), 24)}.json"
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
    lines, changed = [], False
    for p in paths:
        p = Path(p)
        try:
            st = p.stat()
        except FileNotFoundError:
            from ..errors import DatasetNotFound

            raise DatasetNotFound(f"image file {p} is missing; restore it or remove it from the dataset") from None
        name = str(p)
        hit = memo.get(name)
        if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            digest = hit[2]
        else:
            digest = file_digest(p, 32)
            memo[name] = [st.st_size, st.st_mtime_ns, digest]
            changed = True
        rel = p.relative_to(root_path).as_posix() if root_path and p.resolve().is_relative_to(root_path) else p.name
        lines.append(f"{rel}\0{digest}")
    if changed and memo_path is not None:
        from ..io import atomic_write_text

        try:
            atomic_write_text(memo_path, json.dumps(memo))
        except OSError:  # a read-only cache costs a re-read next time, nothing else
            pass
    return text_digest([*lines, array_digest(np.ascontiguousarray(labels))])
