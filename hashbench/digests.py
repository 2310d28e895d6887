"""Content digests: the one place hashbench names data by what it holds.

Cache keys, record keys, split checksums and dataset checksums are all sha256 digests, cut to a
fixed number of hex digits. Equal digests mean equal content whatever file format or path it came
from; a change of content changes the digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

_file_digests: dict[tuple[str, int, int], str] = {}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the form that is hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def json_digest(obj: Any, length: int = 16) -> str:
    """sha256 of an object's canonical JSON, ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def update_with_array(h: Any, a: np.ndarray) -> None:
    """Feed one array's dtype, shape and bytes to a hashlib object."""
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(memoryview(a).cast("B"))


def array_digest(*arrays: np.ndarray, length: int = 16) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        update_with_array(h, a)
    return h.hexdigest()[:length]


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) in this process."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _file_digests:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _file_digests[memo] = h.hexdigest()
    return _file_digests[memo][:length]


def text_digest(parts: Iterable[str], length: int = 16) -> str:
    """sha256 of strings joined by newlines."""
    h = hashlib.sha256()
    for s in parts:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()[:length]


def bytes_digest(*chunks: bytes, length: int = 16) -> str:
    """sha256 of byte strings fed in order (no separators: callers frame their own)."""
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()[:length]
