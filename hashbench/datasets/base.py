"""The dataset interface: labels, and images or ready-made features, behind one small class.

Concrete sources (digits, mnist, cifar10, nuswide21, imagefolder, listfile, features, synthetic)
live in sibling modules and return a :class:`Dataset`. Following faiss's ``contrib/datasets.py``,
a dataset knows nothing of splits: protocols (``hashbench.protocols``) draw query / train /
database indices from its labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


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
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]
