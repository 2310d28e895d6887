"""``features:FILE``: ready-made feature vectors with labels (no images).

Formats, by extension:

- ``.npz``: arrays ``X`` (or ``features``), (n, d), and ``y`` (or ``labels``).
- ``.npy``: ``FILE`` holds the features; the labels are the first of ``<stem>_labels.npy``,
  ``<stem>.labels.npy``, ``<stem>_y.npy`` next to it (and ``y.npy`` / ``labels.npy`` when the stem is
  ``X`` or ``features``).
- ``.mat``: MATLAB v5 through ``scipy.io.loadmat`` or v7.3 (HDF5) through ``h5py``, variables ``X``
  (or ``features``) and ``y`` (or ``labels``). MATLAB v7.3 stores arrays column-major, so h5py
  reads an n x d matrix as d x n: every v7.3 variable is transposed back.

Labels: a vector of class ids (n,) (a MATLAB row or column vector is flattened; whole-valued floats
are accepted), or an (n, C) 0/1 matrix for multi-label data. Features come out float32; NaN or
infinite values, non-2-D features or a label count that differs from the row count are
:class:`~hashbench.errors.InvalidInput`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DatasetNotFound, InvalidInput
from .base import Dataset, content_checksum

FEATURE_KEYS = ("X", "features")
LABEL_KEYS = ("y", "labels")
SUFFIXES = (".npz", ".npy", ".mat")


def _pick(keys, wanted: tuple[str, ...], path: Path, what: str) -> str:
    for k in wanted:
        if k in keys:
            return k
    raise InvalidInput(
        f"{path} has no {what} array: expected one of {', '.join(wanted)}, found {', '.join(sorted(keys)) or 'nothing'}"
    )


def _label_candidates(path: Path) -> list[Path]:
    stem = path.name[: -len(".npy")]
    names = [f"{stem}_labels.npy", f"{stem}.labels.npy", f"{stem}_y.npy"]
    if stem in FEATURE_KEYS:
        names += ["y.npy", "labels.npy"]
    return [path.with_name(n) for n in names]


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        kx = _pick(z.files, FEATURE_KEYS, path, "feature")
        ky = _pick(z.files, LABEL_KEYS, path, "label")
        return z[kx], z[ky]


def _read_npy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.load(path, allow_pickle=False)
    for cand in _label_candidates(path):
        if cand.is_file():
            return X, np.load(cand, allow_pickle=False)
    raise DatasetNotFound(
        f"labels for {path} not found: looked for {', '.join(str(c) for c in _label_candidates(path))}; "
        "save the labels there (np.save) or put features and labels in one .npz with keys X and y"
    )


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            keys = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            kx = _pick(keys, FEATURE_KEYS, path, "feature")
            ky = _pick(keys, LABEL_KEYS, path, "label")
            # column-major MATLAB storage: h5py sees the transpose
            return np.asarray(f[kx]).T, np.asarray(f[ky]).T, "mat-v7.3"
    m = scipy.io.loadmat(path)
    keys = [k for k in m if not k.startswith("__")]
    kx = _pick(keys, FEATURE_KEYS, path, "feature")
    ky = _pick(keys, LABEL_KEYS, path, "label")
    return m[kx], m[ky], "mat-v5"


def check_features_labels(X: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and normalise: X float32 (n, d) finite; y int64 (n,) or uint8 (n, C) multi-hot."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise InvalidInput(f"{where}: features must be a non-empty 2-D array (n items, d dims), got shape {X.shape}")
    if X.dtype.kind not in "fiub":
        raise InvalidInput(f"{where}: features must be numeric, got dtype {X.dtype}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))
        raise InvalidInput(
            f"{where}: features hold {int(bad.sum())} NaN or infinite values in {len(rows)} rows "
            f"(first rows {rows[:5].tolist()}); clean or recompute the features"
        )
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise InvalidInput(f"{where}: labels must be numeric, got dtype {y.dtype}")
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise InvalidInput(
            f"{where}: {X.shape[0]} feature rows but labels of shape {y.shape}; "
            "give one class id per row (n,) or a multi-hot matrix (n, C)"
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise InvalidInput(f"{where}: labels must be whole numbers (class ids or 0/1)")
    if y.ndim == 1:
        if (y < 0).any():
            raise InvalidInput(f"{where}: class ids must be >= 0")
        return X, y.astype(np.int64)
    if not np.isin(y, (0, 1)).all():
        raise InvalidInput(f"{where}: a 2-D label matrix must be multi-hot 0/1, shape (n, C)")
    return X, y.astype(np.uint8)


def load_features(file: str | os.PathLike) -> Dataset:
    """``features:FILE`` -> Dataset with ``features`` (n, d) float32 and no images."""
    path = Path(file).expanduser()
    name = f"features:{file}"
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidInput(f"{name}: unsupported feature file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DatasetNotFound(
            f"feature file {path} does not exist; give features:FILE with a .npz (X, y), "
            f"a .npy (+ {path.stem}_labels.npy) or a .mat (X, y) file"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            X, y = _read_npz(path)
            fmt = "npz"
        elif suffix == ".npy":
            X, y = _read_npy(path)
            fmt = "npy"
        else:
            X, y, fmt = _read_mat(path)
    except (InvalidInput, DatasetNotFound):
        raise
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise InvalidInput(
                f"cannot read {path} ({type(e).__name__}: {e}); the file is corrupt or not a {suffix} file"
            ) from None
        raise InvalidInput(
            f"{path} holds pickled Python objects, which hashbench never loads (unpickling runs code); "
            "save plain numeric arrays instead, e.g. np.savez(FILE, X=features.astype('float32'), y=labels)"
        ) from None
    except Exception as e:  # noqa: BLE001 - zip, pickle, HDF5 and MATLAB readers raise many types
        raise InvalidInput(
            f"cannot read {path} ({type(e).__name__}: {e}); the file is corrupt or not a {suffix} file"
        ) from None
    X, y = check_features_labels(X, y, str(path))
    return Dataset(
        name=name,
        labels=y,
        images=None,
        features=X,
        protocol="",
        source=f"features {path} ({fmt}, {X.shape[0]} x {X.shape[1]})",
        extra={"format": fmt, "path": str(path)},
        checksum=content_checksum(X, y),
    )
