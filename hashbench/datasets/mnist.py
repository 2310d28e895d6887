"""``mnist``: the official MNIST IDX files (LeCun et al. 1998), gzipped or not.

The pool is the 60,000 training images followed by the 10,000 test images when both pairs are
present, else whichever pair is present (the protocol ``mnist`` allows the test set alone). Files are
looked for in ``data_root`` and in torchvision's layout ``data_root/MNIST/raw``.

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a type code
(0x08 = unsigned byte, ...), the number of dimensions, then one int32 per dimension, then the data.
The parser checks all of it and raises :class:`~hashbench.errors.InvalidInput` naming the file when
a file is corrupt or truncated.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFound, InvalidInput
from .base import ArrayImages, Dataset, content_checksum

_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

PARTS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}

HOW_TO_GET = (
    "download the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (http://yann.lecun.com/exdb/mnist/ or a mirror) "
    "into that folder and pass it as --data-root (the test pair alone also works)"
)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (``.gz`` decompressed on the fly) into an array of its declared shape."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFound(f"MNIST file {path} is missing; {HOW_TO_GET}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise InvalidInput(f"MNIST file {path} is corrupt ({e}); download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise InvalidInput(
            f"MNIST file {path} is not an IDX file (bad magic number {raw[:4].hex()}); download it again"
        )
    dtype = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise InvalidInput(f"MNIST file {path} has a truncated IDX header; download it again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InvalidInput(
            f"MNIST file {path} holds {len(raw) - header} data bytes but its header {dims} declares {expected}; "
            "the file is truncated or corrupt: download it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_mnist(data_root: str | os.PathLike) -> Dataset:
    """``mnist`` -> images uint8 (n, 28, 28, 1), labels int64 (n,); train then test."""
    root = Path(data_root).expanduser()
    folders = [root, root / "MNIST" / "raw", root / "raw"]
    images, labels, parts, files = [], [], [], []
    for part, (img_stem, lab_stem, _) in PARTS.items():
        img_path, lab_path = _find(folders, img_stem), _find(folders, lab_stem)
        if img_path is None and lab_path is None:
            continue
        if img_path is None or lab_path is None:
            missing = img_stem if img_path is None else lab_stem
            raise DatasetNotFound(
                f"MNIST {part} set is incomplete: {missing}[.gz] not found in "
                f"{', '.join(map(str, folders))}; {HOW_TO_GET}"
            )
        x, y = read_idx(img_path), read_idx(lab_path)
        if x.ndim != 3 or x.dtype != np.uint8:
            raise InvalidInput(
                f"MNIST file {img_path} should hold uint8 images (n, rows, cols), got {x.dtype} {x.shape}"
            )
        if y.ndim != 1 or len(y) != len(x):
            raise InvalidInput(
                f"MNIST files {img_path} and {lab_path} disagree: {len(x)} images but labels of shape {y.shape}"
            )
        if y.size and (y.min() < 0 or y.max() > 9):
            raise InvalidInput(f"MNIST file {lab_path} holds labels outside 0..9; download it again")
        images.append(x)
        labels.append(y.astype(np.int64))
        parts.append(f"{part} ({len(x)})")
        files += [str(img_path), str(lab_path)]
    if not images:
        looked = ", ".join(str(f / (PARTS["test"][0] + "[.gz]")) for f in folders)
        raise DatasetNotFound(f"MNIST not found: looked for {looked} (and the train pair); {HOW_TO_GET}")
    X = np.concatenate(images)[..., None]
    y = np.concatenate(labels)
    return Dataset(
        name="mnist",
        labels=y,
        images=ArrayImages(X),
        protocol="mnist",
        source=f"MNIST IDX files in {Path(files[0]).parent}: {' + '.join(parts)}",
        extra={"format": "idx", "parts": [p.split()[0] for p in parts], "files": files},
        checksum=content_checksum(X, y),
    )
