"""Bit packing: the one bit order hashbench stores and searches codes in.

Codes are bool arrays ``(n, n_bits)``. Packed, bit ``j`` of a code is bit ``j % 8`` (least
significant first) of byte ``j // 8`` — faiss's order for binary indexes — with padding bits 0.
Records, the metric kernels and the faiss search all use this order.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInput


def as_codes(codes, name: str = "codes") -> np.ndarray:
    """A 2-D bool array from bool or 0/1 input; InvalidInput for anything else."""
    c = np.asarray(codes)
    if c.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D array (n, n_bits) of bool codes; got shape {c.shape}")
    if c.shape[0] == 0 or c.shape[1] == 0:
        raise InvalidInput(f"{name} is empty (shape {c.shape}); give at least one code of at least one bit")
    if c.dtype != np.bool_:
        if not np.issubdtype(c.dtype, np.number) or not np.all((c == 0) | (c == 1)):
            raise InvalidInput(f"{name} must hold bool codes (or 0/1); got dtype {c.dtype}. Binarise with h >= 0")
        c = c.astype(bool)
    return c


def pack(codes: np.ndarray) -> np.ndarray:
    """bool (n, B) -> uint8 (n, ceil(B/8)), little bit order, padding bits 0."""
    return np.ascontiguousarray(np.packbits(np.asarray(codes, dtype=bool), axis=1, bitorder="little"))


def unpack(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack`: uint8 (n, ceil(B/8)) -> bool (n, n_bits)."""
    p = np.asarray(packed)
    if p.dtype != np.uint8 or p.ndim != 2:
        raise InvalidInput(f"packed codes must be a 2-D uint8 array; got {p.dtype} of shape {p.shape}")
    if not 1 <= n_bits <= 8 * p.shape[1]:
        raise InvalidInput(f"n_bits={n_bits} does not fit {p.shape[1]} bytes per code")
    return np.unpackbits(p, axis=1, count=n_bits, bitorder="little").astype(bool)


def pack_words(codes: np.ndarray) -> np.ndarray:
    """bool (n, B) -> uint64 (n, ceil(B/64)) in the same bit order (bit j = bit j % 64 of word j // 64)."""
    packed = pack(codes)
    n_bytes = -(-packed.shape[1] // 8) * 8
    if n_bytes != packed.shape[1]:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], n_bytes - packed.shape[1]), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)
