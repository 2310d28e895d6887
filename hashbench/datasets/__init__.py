"""Dataset sources: ``load_dataset(name)`` -> :class:`~hashbench.datasets.base.Dataset`.

Names: ``digits``, ``mnist``, ``cifar10``, ``nuswide21`` (their files under ``data_root``), and the
parametrised ``imagefolder:DIR``, ``listfile:DIR``, ``features:FILE``, ``synthetic[:k=v,...]``.
Without ``data_root``, a named dataset is looked for in ``$HASHBENCH_DATA/<name>`` (default
``~/.cache/hashbench/data/<name>``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidInput, UnknownName
from .base import ArrayImages, Dataset, ImageSource, content_checksum

__all__ = [
    "ArrayImages",
    "Dataset",
    "ImageSource",
    "content_checksum",
    "default_data_root",
    "describe_datasets",
    "list_datasets",
    "load_dataset",
]

#: name -> one-line description; ``:ARG`` marks names that take a path or options after a colon
_DESCRIPTIONS = {
    "digits": "scikit-learn's embedded 1,797 8x8 digits, 10 classes (no download)",
    "mnist": "MNIST IDX files (70,000, or the 10,000 test images), 28x28 grey, 10 classes",
    "cifar10": "CIFAR-10 60,000 32x32 colour, 10 classes: official pickles (torchvision) or train/test JPEG folders",
    "nuswide21": "NUS-WIDE 21 most frequent concepts, multi-label: list files path + 21 labels, lazy images",
    "imagefolder:DIR": "any DIR/<class>/<image> folder, single-label, lazy images",
    "listfile:DIR": "a published split replayed from DIR/{database,train,test}.txt ('path l1 l2 ...')",
    "features:FILE": "ready-made features with labels: .npz, .npy (+ _labels.npy), .mat v5 or v7.3",
    "synthetic": "Gaussian clusters with tiny images for tests; synthetic:n=,d=,classes=,seed=,size=,sep=",
}

ALIASES = {"nuswide": "nuswide21", "nus-wide": "nuswide21", "cifar-10": "cifar10"}


def list_datasets() -> list[str]:
    """Known dataset names (parametrised ones as ``kind:ARG``)."""
    return list(_DESCRIPTIONS)


def describe_datasets() -> dict[str, str]:
    """Known dataset names -> one-line descriptions."""
    return dict(_DESCRIPTIONS)


def default_data_root(name: str) -> Path:
    """Where a named dataset is looked for without ``--data-root``."""
    base = os.environ.get("HASHBENCH_DATA")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "hashbench" / "data") / name


def load_dataset(name: str, data_root: str | os.PathLike | None = None, download: bool = False, **options) -> Dataset:
    """Load a dataset by name.

    Args:
        name: see :func:`list_datasets`.
        data_root: folder holding the files of ``mnist``, ``cifar10``, ``nuswide21`` (ignored by the
            others, which are embedded or carry their path in the name).
        download: let torchvision fetch CIFAR-10 where a network exists.
        options: source-specific keywords: ``image_size`` (nuswide21, listfile), ``image_root`` (nuswide21).

    Raises:
        UnknownName: the name is not a known dataset (the message lists them).
        DatasetNotFound: files are missing (the message names them and how to get them).
        InvalidInput: files are corrupt or malformed.
    """
    kind, sep, arg = str(name).partition(":")
    kind = ALIASES.get(kind.lower(), kind.lower())
    loader = _loader(kind, bool(sep), name)
    if kind in ("imagefolder", "listfile", "features") and not arg:
        raise InvalidInput(f"dataset {kind} needs a path: {kind}:PATH (e.g. {kind}:/data/mine)")
    root = Path(data_root).expanduser() if data_root is not None else default_data_root(kind)
    if options and kind not in ("nuswide21", "listfile"):
        raise InvalidInput(f"dataset {kind} takes no options, got {', '.join(options)}")
    return loader(arg=arg, root=root, download=download, **options)


def _loader(kind: str, has_arg: bool, name: str) -> Callable[..., Dataset]:
    from .cifar10 import load_cifar10
    from .digits import load_digits
    from .features import load_features
    from .imagefolder import load_imagefolder
    from .listfile import load_listfile
    from .mnist import load_mnist
    from .nuswide import load_nuswide21
    from .synthetic import load_synthetic

    table: dict[str, Callable[..., Dataset]] = {
        "digits": lambda arg, root, download: load_digits(),
        "mnist": lambda arg, root, download: load_mnist(root),
        "cifar10": lambda arg, root, download: load_cifar10(root, download=download),
        "nuswide21": lambda arg, root, download, **kw: load_nuswide21(root, **kw),
        "imagefolder": lambda arg, root, download: load_imagefolder(arg),
        "listfile": lambda arg, root, download, **kw: load_listfile(arg, **kw),
        "features": lambda arg, root, download: load_features(arg),
        "synthetic": lambda arg, root, download: load_synthetic(arg),
    }
    takes_arg = {"imagefolder", "listfile", "features", "synthetic"}
    if kind not in table or (has_arg and kind not in takes_arg):
        known = "; ".join(f"{k}: {v}" for k, v in _DESCRIPTIONS.items())
        raise UnknownName(f"unknown dataset {name!r}; known datasets are {known}")
    return table[kind]
