"""``listfile:DIR``: replay a published split given as ``train.txt`` / ``test.txt`` / ``database.txt``.

Each line is ``path l1 l2 ... lC`` (whitespace-separated; the path has no spaces; blank lines and
lines starting with ``#`` are skipped), as in the DeepHash-pytorch lists. With one label column the
labels are class ids ``(n,)`` int64; with several they must be 0/1 and form a multi-hot ``(n, C)``
uint8 matrix.

The three lists become one pool, deduplicated by path: rows are taken from ``database.txt``, then
``train.txt``, then ``test.txt``, and a path (normalised with ``os.path.normpath``) already in the
pool is not added again, so a training image that the database also lists is one pool item whose
index appears in both ``given_split["train"]`` and ``given_split["database"]``. A path listed twice
with different labels is an error. ``given_split`` = {query: test rows, train: train rows, database:
database rows}, each in its list's order (a path repeated inside one list counts once).

Paths are relative to DIR (or absolute). When none of the image files exist, the dataset is
labels-only (``images`` is None), which is enough for protocol and metric work; when only some
exist, loading fails and names the missing ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..digests import array_digest, text_digest
from ..errors import DatasetNotFound, InvalidInput
from .base import Dataset, files_checksum
from .imagefolder import FileImages

LIST_NAMES = ("database", "train", "test")
DEFAULT_IMAGE_SIZE = 224


def read_list_file(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Parse one list file into (paths, labels (n, C) int64)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetNotFound(f"list file {path} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"cannot read list file {path} ({e})") from None
    paths: list[str] = []
    rows: list[list[str]] = []
    width = None
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 2:
            raise InvalidInput(f"{path}:{lineno}: expected 'path label1 label2 ...', got {line.strip()!r}")
        if width is None:
            width = len(tokens)
        elif len(tokens) != width:
            raise InvalidInput(
                f"{path}:{lineno}: {len(tokens) - 1} labels where earlier lines have {width - 1}; fix the list file"
            )
        paths.append(os.path.normpath(tokens[0]))
        rows.append(tokens[1:])
    if not paths:
        raise InvalidInput(f"list file {path} holds no rows ('path label1 label2 ...')")
    try:
        labels = np.asarray(rows, dtype=np.int64)
    except ValueError:
        bad = next((i for i, r in enumerate(rows) if not all(t.lstrip("-").isdigit() for t in r)), 0)
        raise InvalidInput(f"{path}: row {bad + 1} ({paths[bad]}) has a non-integer label {rows[bad]}") from None
    return paths, labels


def label_array(labels: np.ndarray, where: str) -> np.ndarray:
    """(n, 1) -> class ids (n,) int64; (n, C) 0/1 -> multi-hot uint8. Anything else is InvalidInput."""
    if labels.shape[1] == 1:
        y = labels[:, 0]
        if (y < 0).any():
            raise InvalidInput(f"{where}: negative class ids; labels must be 0, 1, 2, ...")
        return y.astype(np.int64)
    if not np.isin(labels, (0, 1)).all():
        raise InvalidInput(f"{where}: with {labels.shape[1]} label columns, labels must be multi-hot 0/1")
    return labels.astype(np.uint8)


def build_pool(
    lists: dict[str, tuple[list[str], np.ndarray]], where: str
) -> tuple[list[str], np.ndarray, dict[str, np.ndarray], dict[str, int]]:
    """Merge named lists (in the dict's order) into one pool deduplicated by path.

    Returns (pool paths, pool labels (n, C), row indices per list, repeats dropped per list).
    """
    index: dict[str, int] = {}
    pool_paths: list[str] = []
    pool_rows: list[np.ndarray] = []
    members: dict[str, np.ndarray] = {}
    repeats: dict[str, int] = {}
    width = None
    for name, (paths, labels) in lists.items():
        if width is None:
            width = labels.shape[1]
        elif labels.shape[1] != width:
            raise InvalidInput(f"{where}: {name} list has {labels.shape[1]} label columns, the others {width}")
        rows = np.empty(len(paths), dtype=np.int64)
        for i, p in enumerate(paths):
            j = index.get(p)
            if j is None:
                j = index[p] = len(pool_paths)
                pool_paths.append(p)
                pool_rows.append(labels[i])
            elif not np.array_equal(pool_rows[j], labels[i]):
                raise InvalidInput(f"{where}: {p} is listed twice with different labels; fix the lists")
            rows[i] = j
        _, first = np.unique(rows, return_index=True)
        kept = rows[np.sort(first)]
        repeats[name] = len(rows) - len(kept)
        members[name] = kept
    return pool_paths, np.stack(pool_rows), members, repeats


def resolve_images(
    root: Path, paths: list[str], image_size: int | tuple[int, int], where: str
) -> tuple[FileImages | None, str]:
    """Lazy images for list paths (relative to ``root``), or (None, reason) when no file exists."""
    full = [p if os.path.isabs(p) else str(root / p) for p in paths]
    exists = np.fromiter((os.path.isfile(p) for p in full), dtype=bool, count=len(full))
    if not exists.any():
        return None, f"labels only: none of the {len(full)} image files exist under {root}"
    if not exists.all():
        missing = [full[i] for i in np.flatnonzero(~exists)[:3]]
        raise DatasetNotFound(
            f"{where}: {int((~exists).sum())} of {len(full)} listed image files are missing "
            f"(e.g. {', '.join(missing)}); "
            "restore the image folder, or remove every image to use the labels alone"
        )
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return FileImages(full, size, "RGB"), f"images resized to {size[0]}x{size[1]}"


def lists_checksum(
    lists: dict[str, tuple[list[str], np.ndarray]],
    images: FileImages | None = None,
    root: str | os.PathLike | None = None,
) -> str:
    """Checksum of the lists (names, paths, labels) and, when the images are present, of their bytes
    (:func:`~hashbench.datasets.base.files_checksum`), so changed pixels change every key."""
    parts = []
    for name, (paths, labels) in lists.items():
        parts += [f"{name}:{len(paths)}", *paths, array_digest(np.ascontiguousarray(labels))]
    if images is not None:
        parts.append("images:" + files_checksum(images.paths, np.zeros(0), root))
    return text_digest(parts)


def load_listfile(directory: str | os.PathLike, image_size: int = DEFAULT_IMAGE_SIZE) -> Dataset:
    """``listfile:DIR`` -> Dataset with ``given_split`` from the three lists."""
    root = Path(directory).expanduser()
    name = f"listfile:{directory}"
    files = {n: root / f"{n}.txt" for n in LIST_NAMES}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise DatasetNotFound(
            f"{name}: missing {', '.join(missing)}; a replayed split needs database.txt, train.txt and test.txt "
            "with lines 'path label1 label2 ...' (paths relative to DIR)"
        )
    lists = {n: read_list_file(f) for n, f in files.items()}
    paths, labels, members, repeats = build_pool(lists, name)
    y = label_array(labels, name)
    images, image_note = resolve_images(root, paths, image_size, name)
    sizes = {n: len(lists[n][0]) for n in LIST_NAMES}
    return Dataset(
        name=name,
        labels=y,
        images=images,
        protocol="",
        given_split={"query": members["test"], "train": members["train"], "database": members["database"]},
        source=(
            f"list files {root} (database {sizes['database']}, train {sizes['train']}, test {sizes['test']} rows; "
            f"pool of {len(paths)} unique paths; {image_note})"
        ),
        extra={
            "format": "listfile",
            "paths": paths,
            "root": str(root),
            "list_sizes": sizes,
            "repeats_dropped": repeats,
            "images": image_note,
        },
        checksum=lists_checksum(lists, images, root),
    )
