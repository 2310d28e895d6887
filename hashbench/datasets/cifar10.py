"""``cifar10``: CIFAR-10 (Krizhevsky 2009), 60,000 32x32 colour images in 10 classes.

Two formats, tried in this order under ``data_root``:

1. the official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``, ``batches.meta``),
   read through ``torchvision.datasets.CIFAR10``; ``download=True`` lets torchvision fetch it where a
   network exists. Files whose md5 differs from the official ones are still read (same pickle
   format, e.g. a re-packed copy) and the source says so (``extra["official_md5"]``).
2. an image folder ``train/<class>/*.jpg`` + ``test/<class>/*.jpg`` (directly in ``data_root`` or in
   ``data_root/CIFAR-10-images``), as in the ``CIFAR-10-images`` JPEG copy. JPEG at quality 75 moves
   pixels by about 6 grey levels from the pickles, so ``source`` and ``extra["format"]`` say which
   one was read, and tables must carry it. The 60,000 decoded images are cached as one ``.npy`` in
   the cache folder (``$HASHBENCH_CACHE/datasets``), keyed on the folder and its file listing.

Either way the pool is the training images then the test images (the official batch order; in the
JPEG copy a file's number is its rank inside its class in that order, so the order there is by
split, class, then number), labels are class ids in the official class order.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np

from ..cache import default_cache_dir, entry_path, load_entry, save_entry
from ..digests import text_digest
from ..errors import DatasetNotFound, HashbenchError, InvalidInput
from ..io import atomic_write_text
from .base import ArrayImages, Dataset, content_checksum
from .imagefolder import decode_many, scan_images

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
JPEG_TAR = "../shared/data/cifar10/CIFAR-10-images.tar"


def _how_to_get(root: Path) -> str:
    return (
        f"either run with --download (torchvision fetches cifar-10-python.tar.gz into {root}), "
        f"or unpack the official archive so that {root / BATCHES_DIR} exists, "
        f"or unpack the JPEG copy with: mkdir -p {root} && tar -xf {JPEG_TAR} -C {root}"
    )


def _jpeg_root(root: Path) -> Path | None:
    for cand in (root, root / "CIFAR-10-images"):
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    return None


def load_cifar10(data_root: str | os.PathLike, download: bool = False) -> Dataset:
    """``cifar10`` -> images uint8 (60000, 32, 32, 3), labels int64 (60000,): train then test."""
    root = Path(data_root).expanduser()
    if root.name == BATCHES_DIR:
        root = root.parent
    if (root / BATCHES_DIR).is_dir():
        return _load_batches(root)
    jpeg = _jpeg_root(root)
    if jpeg is not None:
        return _load_jpeg_folder(jpeg)
    if download:
        _download(root)
        return _load_batches(root)
    raise DatasetNotFound(
        f"CIFAR-10 not found: looked for {root / BATCHES_DIR} (official pickles), {root}/train + {root}/test "
        f"and {root}/CIFAR-10-images/train + test (JPEG image folders); {_how_to_get(root)}"
    )


def _download(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    try:
        root.mkdir(parents=True, exist_ok=True)
        CIFAR10(str(root), train=True, download=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise DatasetNotFound(
            f"CIFAR-10 download into {root} failed ({e}); without a network, unpack a copy instead: {_how_to_get(root)}"
        ) from None


def _unverified_cifar10():
    """torchvision's CIFAR10 reader with the md5 checks reduced to 'the file exists'."""
    from torchvision.datasets import CIFAR10

    class UnverifiedCIFAR10(CIFAR10):
        train_list = [[f, None] for f in TRAIN_FILES]
        test_list = [[f, None] for f in TEST_FILES]
        meta = {"filename": META_FILE, "key": "label_names", "md5": None}

    return UnverifiedCIFAR10


def _corrupt_file(folder: Path) -> str:
    """The first batch file that does not unpickle into a CIFAR batch dict (for error messages)."""
    for name in (*TRAIN_FILES, *TEST_FILES, META_FILE):
        try:
            with open(folder / name, "rb") as f:
                d = pickle.load(f, encoding="latin1")
            is_batch = "data" in d and "labels" in d and np.asarray(d["data"]).shape[1:] == (3072,)
            if name != META_FILE and not is_batch:
                return f"{folder / name} (not a CIFAR-10 batch: needs 'data' (n, 3072) and 'labels')"
        except Exception as e:  # noqa: BLE001 - any failure to unpickle means corrupt
            return f"{folder / name} ({type(e).__name__}: {e})"
    return str(folder)


def _load_batches(root: Path) -> Dataset:
    from torchvision.datasets import CIFAR10

    folder = root / BATCHES_DIR
    missing = [n for n in (*TRAIN_FILES, *TEST_FILES, META_FILE) if not (folder / n).is_file()]
    if missing:
        raise DatasetNotFound(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; {_how_to_get(root)}")
    official = True
    try:
        try:
            parts = [CIFAR10(str(root), train=True), CIFAR10(str(root), train=False)]
        except RuntimeError:  # md5 mismatch: not the official files, but maybe the same format
            official = False
            reader = _unverified_cifar10()
            parts = [reader(str(root), train=True), reader(str(root), train=False)]
    except HashbenchError:
        raise
    except Exception:  # noqa: BLE001 - unpickling errors come in many types
        raise InvalidInput(f"CIFAR-10 file {_corrupt_file(folder)} is corrupt; {_how_to_get(root)}") from None
    classes = list(parts[0].classes)
    if classes != list(CLASSES):
        raise InvalidInput(f"CIFAR-10 {folder / META_FILE} lists classes {classes}, expected {list(CLASSES)}")
    X = np.ascontiguousarray(np.concatenate([p.data for p in parts]), dtype=np.uint8)
    y = np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts])
    n_train = len(parts[0].data)
    note = "md5 verified" if official else "md5 differs from the official files"
    return Dataset(
        name="cifar10",
        labels=y,
        images=ArrayImages(X),
        protocol="cifar10",
        source=f"CIFAR-10 official python pickles {folder} ({note}): {n_train} train + {len(X) - n_train} test",
        extra={
            "format": "pickles",
            "official_md5": official,
            "classes": classes,
            "n_train": n_train,
            "root": str(folder),
        },
        checksum=content_checksum(X, y),
    )


def _jpeg_listing(root: Path) -> tuple[list[str], np.ndarray, int, str]:
    """Paths, labels, number of training images and a digest of (relative path, size, mtime)."""
    paths: list[str] = []
    labels: list[int] = []
    n_train = 0
    listing: list[str] = []
    for split in ("train", "test"):
        for c, cls in enumerate(CLASSES):
            folder = root / split / cls
            if not folder.is_dir():
                raise DatasetNotFound(
                    f"CIFAR-10 image folder {folder} is missing (expected {root}/{{train,test}}/<class>/*.jpg "
                    f"for the classes {', '.join(CLASSES)}); {_how_to_get(root)}"
                )
            entries = scan_images(folder)
            for e in entries:
                st = e.stat()
                listing.append(f"{split}/{cls}/{e.name}\0{st.st_size}\0{st.st_mtime_ns}")
            paths += [e.path for e in entries]
            labels += [c] * len(entries)
        if split == "train":
            n_train = len(paths)
    if n_train == 0 or n_train == len(paths):
        raise DatasetNotFound(
            f"CIFAR-10 image folders under {root} hold no train or no test images; {_how_to_get(root)}"
        )
    return paths, np.asarray(labels, dtype=np.int64), n_train, text_digest(listing, 64)


def _load_jpeg_folder(root: Path) -> Dataset:
    paths, y, n_train, listing = _jpeg_listing(root)
    key = {"kind": "cifar10-jpeg", "root": str(root.resolve()), "listing": listing}
    cache_file = entry_path(default_cache_dir(), "datasets", "cifar10-jpeg", key)
    meta_file = cache_file.with_suffix(".meta.json")
    X = load_entry(cache_file)
    checksum = ""
    if X is not None:
        try:
            checksum = json.loads(meta_file.read_text())["checksum"]
        except (OSError, ValueError, KeyError):
            X = None
    if X is None or X.shape != (len(paths), 32, 32, 3):
        X = decode_many(paths, size=(32, 32), mode="RGB")
        if X.shape[1:] != (32, 32, 3):
            raise InvalidInput(f"CIFAR-10 images under {root} are not 32x32 RGB (got {X.shape[1:]})")
        checksum = content_checksum(X, y)
        try:
            save_entry(cache_file, X)
            atomic_write_text(meta_file, json.dumps({"checksum": checksum, **key}))
        except OSError:  # a read-only cache only costs the next run a decode
            pass
    return Dataset(
        name="cifar10",
        labels=y,
        images=ArrayImages(X),
        protocol="cifar10",
        source=(
            f"CIFAR-10 JPEG image folders {root} ({n_train} train + {len(paths) - n_train} test; "
            "JPEG-compressed: pixels differ from the official pickles by about 6 grey levels)"
        ),
        extra={"format": "jpeg", "classes": list(CLASSES), "n_train": n_train, "root": str(root), "paths": paths},
        checksum=checksum,
    )
