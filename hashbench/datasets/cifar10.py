"""``cifar10``: CIFAR-10 (Krizhevsky 2009), 60,000 32x32 colour images in 10 classes.

Two formats, tried in this order under ``data_root``:

1. the official ``cifar-10-batches-py`` folder (``data_batch_1..5``, ``test_batch``, ``batches.meta``);
   ``download=True`` lets torchvision fetch it where a network exists. Unpickling a file runs
   whatever code it names, so every file's md5 is checked against the official archive's
   (:data:`OFFICIAL_MD5`, torchvision's list) before it is opened, and a file that differs is
   refused with the fix (the official archive, or the JPEG layout). The verified files are then
   read by an unpickler that accepts only the numpy array constructors a CIFAR batch needs.
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
from ..errors import DatasetNotFound, InvalidInput
from ..io import atomic_write_text
from .base import ArrayImages, Dataset, content_checksum
from .imagefolder import decode_many, scan_images

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
#: md5 of the official archive's files (as in torchvision.datasets.CIFAR10); nothing else is unpickled
OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _how_to_get(root: Path) -> str:
    return (
        f"either run with --download (torchvision fetches cifar-10-python.tar.gz into {root}), "
        f"or unpack the official archive ({OFFICIAL_URL}) so that {root / BATCHES_DIR} exists, "
        f"or put the images as JPEG files in {root}/train/<class>/*.jpg and {root}/test/<class>/*.jpg"
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


def _md5(path: Path) -> str:
    import hashlib

    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class _BatchUnpickler(pickle.Unpickler):
    """Only what a CIFAR batch holds: dicts, lists, strings, numbers and numpy arrays."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds no such object")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    import warnings

    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core in pickles of old numpy
        d = _BatchUnpickler(f, encoding="latin1").load()
    if not isinstance(d, dict):
        raise pickle.UnpicklingError("not a dict")
    return d


def _verify_md5(root: Path, folder: Path) -> None:
    """Refuse (before unpickling anything) a folder whose files are not the official ones."""
    for name, want in OFFICIAL_MD5.items():
        if _md5(folder / name) != want:
            raise InvalidInput(
                f"CIFAR-10 file {folder / name} is not the official one (md5 differs); it is not opened, "
                f"since unpickling runs code: {_how_to_get(root)}"
            )


def _read_split(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    data, labels = [], []
    for name in names:
        try:
            d = _unpickle(folder / name)
            X = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(d["labels"] if "labels" in d else d["fine_labels"], dtype=np.int64)
        except Exception as e:  # noqa: BLE001 - unpickling errors come in many types
            raise InvalidInput(f"CIFAR-10 file {folder / name} is corrupt ({type(e).__name__}: {e})") from None
        data.append(X.transpose(0, 2, 3, 1))
        labels.append(y)
    return np.concatenate(data), np.concatenate(labels)


def _load_batches(root: Path) -> Dataset:
    folder = root / BATCHES_DIR
    missing = [n for n in (*TRAIN_FILES, *TEST_FILES, META_FILE) if not (folder / n).is_file()]
    if missing:
        raise DatasetNotFound(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}; {_how_to_get(root)}")
    _verify_md5(root, folder)
    Xtr, ytr = _read_split(folder, TRAIN_FILES)
    Xte, yte = _read_split(folder, TEST_FILES)
    try:
        classes = list(_unpickle(folder / META_FILE)["label_names"])
    except Exception as e:  # noqa: BLE001
        raise InvalidInput(f"CIFAR-10 file {folder / META_FILE} is corrupt ({type(e).__name__}: {e})") from None
    if classes != list(CLASSES):
        raise InvalidInput(f"CIFAR-10 {folder / META_FILE} lists classes {classes}, expected {list(CLASSES)}")
    X = np.ascontiguousarray(np.concatenate([Xtr, Xte]), dtype=np.uint8)
    y = np.concatenate([ytr, yte])
    n_train = len(Xtr)
    return Dataset(
        name="cifar10",
        labels=y,
        images=ArrayImages(X),
        protocol="cifar10",
        source=f"CIFAR-10 official python pickles {folder} (md5 verified): {n_train} train + {len(X) - n_train} test",
        extra={
            "format": "pickles",
            "official_md5": True,
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
