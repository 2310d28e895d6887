"""Input checks of the metrics: codes, labels and arguments, each bad input an InvalidInput that says the fix.

Codes go through :func:`hashbench.bits.as_codes` (bool, or 0/1 numbers). Labels become keys the
kernels compare: 1-D integer class ids stay ids (relevant = equal), 2-D multi-hot rows become packed
bitmasks (relevant = sharing a bit). Multi-hot entries must be 0/1 or bool: a ±1 rewrite of a label
matrix (thulab's evaluation code makes one in place) would otherwise turn every -1 into "label
present" and make unrelated items relevant.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..bits import as_codes, pack_words
from ..errors import InvalidInput

__all__ = ["check_args", "check_codes", "label_keys"]

#: the kernels store a distance in 16 bits
MAX_BITS = 65535


def check_codes(query_codes, db_codes) -> tuple[np.ndarray, np.ndarray]:
    """Both code arrays as 2-D bool, of one bit length within :data:`MAX_BITS`."""
    qc = as_codes(query_codes, "query_codes")
    dc = as_codes(db_codes, "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise InvalidInput(
            f"query codes have {qc.shape[1]} bits and database codes {dc.shape[1]}; encode both with one model"
        )
    if qc.shape[1] > MAX_BITS:
        raise InvalidInput(f"codes of {qc.shape[1]} bits are too long; hashbench's metrics take up to {MAX_BITS} bits")
    return qc, dc


def _check_multi_hot(arr: np.ndarray, name: str) -> None:
    if arr.dtype == np.bool_:
        return
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInput(f"{name} must be 0/1 (or bool) multi-hot labels; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} holds NaN or infinite values; multi-hot labels must be 0/1 (or bool)")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        values = np.unique(arr[bad])
        shown = ", ".join(repr(v.item()) for v in values[:5]) + (", ..." if values.size > 5 else "")
        raise InvalidInput(
            f"{name} holds values other than 0 and 1 ({shown}): multi-hot labels must be 0/1 (or bool), and "
            "single-label data must be 1-D integer class ids. Convert ±1 labels with labels = labels > 0, "
            "and (n, 1) class ids with labels = labels.ravel()"
        )


def label_keys(query_labels, db_labels, nq: int, nd: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels as (n, L) uint64 keys and whether they are multi-hot.

    1-D integer class ids give L = 1 and are compared for equality; 2-D multi-hot (n, C) labels of
    0/1 or bool give packed bitmasks (L = ceil(C/64)), relevant when they share a bit.
    """
    ql = np.asarray(query_labels)
    dl = np.asarray(db_labels)
    if ql.shape[:1] != (nq,) or dl.shape[:1] != (nd,):
        raise InvalidInput(
            f"labels do not match the codes: {ql.shape[:1]} query labels for {nq} query codes, "
            f"{dl.shape[:1]} database labels for {nd} database codes"
        )
    if ql.ndim != dl.ndim or ql.ndim not in (1, 2):
        raise InvalidInput(
            "labels must both be 1-D class ids or both 2-D multi-hot; "
            f"got {ql.ndim}-D query and {dl.ndim}-D database labels"
        )
    if ql.ndim == 1:
        for arr, name in ((ql, "query_labels"), (dl, "db_labels")):
            if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
                if not (
                    np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
                ):
                    raise InvalidInput(f"{name} must be integer class ids; got dtype {arr.dtype}")
        qk = ql.astype(np.int64).view(np.uint64).reshape(nq, 1)
        dk = dl.astype(np.int64).view(np.uint64).reshape(nd, 1)
        return np.ascontiguousarray(qk), np.ascontiguousarray(dk), False
    if ql.shape[1] == 0:
        raise InvalidInput("multi-hot labels have no class column; give (n, C) arrays with C >= 1")
    if ql.shape[1] != dl.shape[1]:
        raise InvalidInput(
            f"multi-hot labels disagree in class count: {ql.shape[1]} (queries) vs {dl.shape[1]} (database)"
        )
    _check_multi_hot(ql, "query_labels")
    _check_multi_hot(dl, "db_labels")
    return pack_words(ql != 0), pack_words(dl != 0), True


def check_args(topk, precision_at, zero_relevant, chunk_size, device) -> tuple[int | None, np.ndarray]:
    """``(topk, precision_at)`` validated: topk None or a positive int, precision_at an int64 array."""
    if topk is not None:
        if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
            raise InvalidInput(f"topk must be a positive integer or None (whole database); got {topk!r}")
    pa = list(precision_at) if isinstance(precision_at, Iterable) else [precision_at]
    for n in pa:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInput(f"precision_at must list positive integers, e.g. (100, 1000); got {precision_at!r}")
    if zero_relevant not in ("count", "skip"):
        raise InvalidInput(f"zero_relevant must be 'count' or 'skip'; got {zero_relevant!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
    ):
        raise InvalidInput(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    if not isinstance(device, str) or not (device in ("cpu", "torch-cpu") or device.startswith("cuda")):
        raise InvalidInput(
            f"device must be 'cpu' (numba), 'cuda[:i]' or 'torch-cpu' (torch on the CPU); got {device!r}"
        )
    return (None if topk is None else int(topk)), np.asarray(pa, dtype=np.int64)
