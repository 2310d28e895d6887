"""The on-disk cache of computed arrays (representations, decoded image folders).

Entries are ``.npy`` files named from a sha256 of their canonical key (a dict), written atomically:
the array goes to a temporary file in the same folder, then ``os.replace`` renames it, so a killed
run never leaves a half-written entry that a later run would trust. A JSON sidecar keeps the key in
readable form for people browsing the folder.

The folder is ``$HASHBENCH_CACHE`` when set, else ``~/.cache/hashbench``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: bump when a representation's code changes its output, so old cache entries stop matching
CACHE_FORMAT = 1

_file_digests: dict[tuple[str, int, int], str] = {}


def default_cache_dir() -> Path:
    """``$HASHBENCH_CACHE`` if set, else ``~/.cache/hashbench``."""
    env = os.environ.get("HASHBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hashbench"


def resolve_cache_dir(cache_dir: str | os.PathLike | None | bool) -> Path | None:
    """``None`` -> the default folder; ``False`` -> no caching; a path -> that folder."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def key_digest(key: dict[str, Any]) -> str:
    """sha256 (24 hex digits) of a key dict in canonical JSON (sorted keys)."""
    blob = json.dumps({"cache_format": CACHE_FORMAT, **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def entry_path(cache_dir: Path, kind: str, label: str, key: dict[str, Any]) -> Path:
    """Where the entry for ``key`` lives: ``cache_dir/kind/<label>-<digest>.npy``.

    ``label`` is only for people (dataset and representation names); the digest decides identity.
    """
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", label)[:80].strip("_") or "entry"
    return cache_dir / kind / f"{safe}-{key_digest(key)}.npy"


def atomic_save(path: Path, array: np.ndarray, key: dict[str, Any] | None = None) -> None:
    """Write ``array`` to ``path`` (.npy) atomically; with ``key``, a readable ``.json`` sidecar too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if key is not None:
        atomic_write_text(path.with_suffix(".json"), json.dumps(key, sort_keys=True, indent=1, default=str))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a small text file atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_entry(path: Path, mmap: bool = False) -> np.ndarray | None:
    """The cached array at ``path``, or None when absent or unreadable (then it is recomputed)."""
    if not path.is_file():
        return None
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None


def file_digest(path: str | os.PathLike) -> str:
    """sha256 (16 hex digits) of a file's bytes, remembered per (path, size, mtime) in this process."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _file_digests:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _file_digests[memo] = h.hexdigest()[:16]
    return _file_digests[memo]
