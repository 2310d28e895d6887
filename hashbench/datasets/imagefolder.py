"""``imagefolder:DIR``: a generic single-label image folder, ``DIR/<class>/<image>``.

Classes are the sub-folders that hold at least one image, in sorted order (torchvision's
``ImageFolder`` convention), so label ``i`` is the ``i``-th class name in ``extra["classes"]``.
Files inside a class are in natural order (``2.jpg`` before ``10.jpg``). Images are decoded lazily by
:class:`FileImages`; all come out at the size of the first image (others are resized bilinearly),
grey when the first image is grey, else RGB.

This module also holds the decoding helpers the other image sources share (CIFAR-10's JPEG copy,
list files).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFound, InvalidInput
from .base import Dataset, files_checksum

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")

#: below this many files, decoding in worker processes costs more than it saves
_PARALLEL_MIN = 4000


_NUMBERS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``img2`` < ``img10``."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in _NUMBERS.split(name) if t)


def scan_images(folder: str | os.PathLike) -> list[os.DirEntry]:
    """Image files directly inside ``folder`` as ``os.DirEntry`` (their ``stat()`` is cached), in
    natural order. ``os.scandir`` avoids one stat per file, which matters at 60,000 files."""
    with os.scandir(folder) as it:
        entries = [e for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS and e.is_file()]
    return sorted(entries, key=lambda e: natural_key(e.name))


def list_images(folder: str | os.PathLike) -> list[str]:
    """Paths of the image files directly inside ``folder``, in natural order."""
    return [e.path for e in scan_images(folder)]


def decode_image(path: str | os.PathLike, size: tuple[int, int] | None = None, mode: str = "RGB") -> np.ndarray:
    """One image file as uint8 (H, W, C), converted to ``mode`` ("RGB" or "L") and, when ``size``
    (H, W) is given and differs, resized bilinearly."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetNotFound(
            f"image file {path} is missing; restore the dataset's image folder (or re-extract its archive)"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InvalidInput(f"cannot decode image {path} ({e}); the file is corrupt: replace or re-extract it") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _decode_chunk(paths: Sequence[str], size: tuple[int, int] | None, mode: str) -> tuple[np.ndarray, list[str]]:
    """The decoded images of ``paths`` (zeros where a file is corrupt) and the corrupt files' messages."""
    out, bad = [], []
    for p in paths:
        try:
            out.append(decode_image(p, size, mode))
        except InvalidInput as e:
            bad.append(str(e))
            out.append(None)
    shape = next((a.shape for a in out if a is not None), None)
    if shape is None:
        return np.zeros((0, 0, 0, 0), np.uint8), bad
    return np.stack([a if a is not None else np.zeros(shape, np.uint8) for a in out]), bad


def _raise_corrupt(bad: list[str], total: int) -> None:
    """One error for every corrupt file of a decode: the count and the first few, not one per run."""
    if bad:
        shown = "; ".join(bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise InvalidInput(f"{len(bad)} of {total} image files cannot be decoded: {shown}{more}")


def decode_many(
    paths: Sequence[str | os.PathLike],
    size: tuple[int, int] | None = None,
    mode: str = "RGB",
    processes: int | None = None,
) -> np.ndarray:
    """Decode many image files into one uint8 array (n, H, W, C), in the order given.

    PIL's JPEG decoder holds the GIL for small images, so threads do not help; above a few thousand
    files the work is spread over worker processes (``spawn``, so a parent that imported torch is
    safe). ``size`` (H, W) is required when the images may differ in size.
    """
    paths = [str(p) for p in paths]
    if not paths:
        raise InvalidInput("no image files to decode")
    if size is None:
        first = decode_image(paths[0], None, mode)
        size = first.shape[:2]
    n_proc = processes if processes is not None else min(os.cpu_count() or 1, 8)
    if n_proc <= 1 or len(paths) < _PARALLEL_MIN:
        images, bad = _decode_chunk(paths, size, mode)
        _raise_corrupt(bad, len(paths))
        return images
    n_chunks = n_proc * 4
    bounds = np.linspace(0, len(paths), n_chunks + 1).astype(int)
    chunks = [paths[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n_proc, mp_context=ctx) as ex:
        parts = list(ex.map(_decode_chunk, chunks, [size] * len(chunks), [mode] * len(chunks)))
    _raise_corrupt([m for _, bad in parts for m in bad], len(paths))
    return np.concatenate([images for images, _ in parts])


@dataclass
class FileImages:
    """Lazy images read from files (an :class:`~hashbench.datasets.base.ImageSource`).

    Attributes:
        paths: one file per item.
        size: (H, W) every image is returned at (bilinear resize when a file differs).
        mode: "RGB" (C = 3) or "L" (C = 1).
    """

    paths: list[str]
    size: tuple[int, int]
    mode: str = "RGB"

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            c = 1 if self.mode == "L" else 3
            return np.zeros((0, *self.size, c), np.uint8)
        return decode_many([self.paths[i] for i in idx], self.size, self.mode)


def first_image_geometry(path: str | os.PathLike) -> tuple[tuple[int, int], str]:
    """(H, W) and mode ("L" for grey images, else "RGB") of an image file, read from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            mode = "L" if im.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
    except FileNotFoundError:
        raise DatasetNotFound(f"image file {path} is missing") from None
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidInput(f"cannot decode image {path} ({e}); the file is corrupt: replace or remove it") from None
    return (h, w), mode


def load_imagefolder(directory: str | os.PathLike) -> Dataset:
    """``imagefolder:DIR`` -> Dataset with lazy :class:`FileImages` and (n,) int64 labels."""
    root = Path(directory).expanduser()
    name = f"imagefolder:{directory}"
    if not root.is_dir():
        raise DatasetNotFound(
            f"image folder {root} does not exist; give imagefolder:DIR with DIR/<class>/<image files> "
            f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    classes: list[str] = []
    paths: list[str] = []
    labels: list[int] = []
    empty = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = list_images(sub)
        if not files:
            empty.append(sub.name)
            continue
        labels.extend([len(classes)] * len(files))
        classes.append(sub.name)
        paths.extend(files)
    if not paths:
        raise DatasetNotFound(
            f"image folder {root} holds no class sub-folders with images; expected DIR/<class>/<image files> "
            f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    if empty:
        warnings.warn(
            f"image folder {root}: {len(empty)} class folder(s) without images left out "
            f"({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}); add images or remove them",
            UserWarning,
            stacklevel=2,
        )
    size, mode = first_image_geometry(paths[0])
    y = np.asarray(labels, dtype=np.int64)
    return Dataset(
        name=name,
        labels=y,
        images=FileImages(paths, size, mode),
        protocol="",
        source=f"image folder {root} ({len(paths)} files, {len(classes)} classes, {size[0]}x{size[1]} {mode})",
        extra={"classes": classes, "paths": paths, "format": "imagefolder", "root": str(root)},
        checksum=files_checksum(paths, y, root),
    )
