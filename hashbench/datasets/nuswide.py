"""``nuswide21``: NUS-WIDE (Chua et al. 2009) restricted to its 21 most frequent concepts.

``data_root`` holds the list files ``train.txt`` and ``test.txt`` and optionally ``database.txt``,
lines ``path l1 ... l21`` (the DeepHash-pytorch lists), and the images at those paths relative to
``data_root`` (or to ``image_root``). The pool is every listed path once, database rows first, then
train, then test (deduplicated by path as in :mod:`hashbench.datasets.listfile`); labels are a
(n, 21) multi-hot uint8 matrix. ``extra["list_rows"]`` keeps which pool rows each list named; the
``nuswide21`` protocol draws its own query / train / database from the pool (to replay the lists'
split, use ``listfile:DIR``).

Images are decoded lazily and resized to ``image_size`` (default 224, the backbones' input). When no
image file exists (lists only), the dataset is labels-only: enough for protocols and metrics.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetNotFound, InvalidInput
from .base import Dataset
from .listfile import DEFAULT_IMAGE_SIZE, build_pool, label_array, lists_checksum, read_list_file, resolve_images

N_CONCEPTS = 21


def load_nuswide21(
    data_root: str | os.PathLike, image_size: int = DEFAULT_IMAGE_SIZE, image_root: str | os.PathLike | None = None
) -> Dataset:
    """``nuswide21`` -> labels (n, 21) uint8 multi-hot; images lazy (or None when absent)."""
    root = Path(data_root).expanduser()
    needed = [root / "train.txt", root / "test.txt"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise DatasetNotFound(
            f"NUS-WIDE-21 lists not found: {', '.join(missing)}; put train.txt and test.txt (and optionally "
            "database.txt), lines 'images/<name>.jpg l1 ... l21', in the folder given as --data-root, with the "
            "images at those paths (NUS-WIDE images: "
            "https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html; "
            "lists: the DeepHash-pytorch repository's data/nuswide_21)"
        )
    lists = {}
    if (root / "database.txt").is_file():
        lists["database"] = read_list_file(root / "database.txt")
    lists["train"] = read_list_file(root / "train.txt")
    lists["test"] = read_list_file(root / "test.txt")
    for n, (_, lab) in lists.items():
        if lab.shape[1] != N_CONCEPTS:
            raise InvalidInput(
                f"{root / (n + '.txt')} has {lab.shape[1]} label columns; NUS-WIDE-21 lists need {N_CONCEPTS}"
            )
    paths, labels, members, repeats = build_pool(lists, "nuswide21")
    y = label_array(labels, "nuswide21")
    img_root = Path(image_root).expanduser() if image_root is not None else root
    images, image_note = resolve_images(img_root, paths, image_size, "nuswide21")
    sizes = {n: len(v[0]) for n, v in lists.items()}
    n_unlabelled = int((y.sum(1) == 0).sum())
    return Dataset(
        name="nuswide21",
        labels=y,
        images=images,
        protocol="nuswide21",
        source=(
            f"NUS-WIDE-21 lists {root} ({', '.join(f'{k} {v}' for k, v in sizes.items())} rows; "
            f"pool of {len(paths)} unique paths; {image_note})"
        ),
        extra={
            "format": "listfile",
            "paths": paths,
            "root": str(root),
            "list_rows": members,
            "list_sizes": sizes,
            "repeats_dropped": repeats,
            "images": image_note,
            "n_without_label": n_unlabelled,
        },
        checksum=lists_checksum(lists, images, img_root),
    )
