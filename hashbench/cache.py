"""The on-disk cache of computed arrays (representations, decoded image folders, file digests).

Entries are ``.npy`` files named from a digest of their canonical key (a dict), written atomically
(:mod:`hashbench.io`), so a killed run never leaves a half-written entry that a later run would
trust. A JSON sidecar keeps the key in readable form for people browsing the folder.

Every entry has a ``.sha256`` sidecar: the sha256 of the ``.npy`` file's bytes, written before the
entry itself is renamed into place. :func:`load_entry` verifies it; an entry whose bytes changed
(a flipped bit, a truncated copy, an edit) is reported once by name, deleted and recomputed by
its caller, never used. An entry written before checksums existed has no sidecar: it is read as
before and its checksum is written then, so that later reads verify it.

The folder is ``$HASHBENCH_CACHE`` when set, else ``~/.cache/hashbench``. This module sits below
both ``datasets`` and ``features`` so that neither imports the other for caching.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .digests import json_digest
from .io import atomic_write_text, atomic_writer

#: bump when the cache's own layout changes, so old entries stop matching
CACHE_FORMAT = 1


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
    """Digest (24 hex digits) of a key dict in canonical JSON."""
    return json_digest({"cache_format": CACHE_FORMAT, **key}, length=24)


def entry_path(cache_dir: Path, kind: str, label: str, key: dict[str, Any]) -> Path:
    """Where the entry for ``key`` lives: ``cache_dir/kind/<label>-<digest>.npy``.

    ``label`` is only for people (dataset and representation names); the digest decides identity.
    """
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", label)[:80].strip("_") or "entry"
    return Path(cache_dir) / kind / f"{safe}-{key_digest(key)}.npy"


CHECKSUM_SUFFIX = ".sha256"

#: (path, size, mtime_ns, inode) of entries verified in this process: a large entry is hashed once
_verified: set[tuple[str, int, int, int]] = set()


def checksum_path(path: str | os.PathLike) -> Path:
    """The checksum sidecar of an entry: ``<entry>.sha256`` beside it."""
    return Path(str(path) + CHECKSUM_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (64 hex digits) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _memo(path: Path) -> tuple[str, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


class _Hashing:
    """A write-only file wrapper that hashes what goes through it (np.save writes through ``write``)."""

    def __init__(self, fh):
        self.fh, self.h = fh, hashlib.sha256()

    def write(self, data) -> int:
        self.h.update(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def save_entry(path: Path, array: np.ndarray, key: dict[str, Any] | None = None) -> None:
    """Write ``array`` to ``path`` (.npy) atomically with its checksum sidecar; with ``key``, a
    readable ``.json`` sidecar too. The sidecar is in place before the entry, so an entry never
    appears without the checksum of its bytes."""
    path = Path(path)
    with atomic_writer(path) as fh:
        w = _Hashing(fh)
        np.save(w, np.ascontiguousarray(array), allow_pickle=False)
        atomic_write_text(checksum_path(path), w.h.hexdigest() + "\n")
    if key is not None:
        atomic_write_text(path.with_suffix(".json"), json.dumps(key, sort_keys=True, indent=1, default=str))


def verify_entry(path: str | os.PathLike) -> str:
    """``"ok"``, ``"unchecked"`` (an entry from before checksums) or ``"corrupt"`` (bytes differ from
    the checksum, or the sidecar is unreadable). Reads the whole file."""
    path = Path(path)
    side = checksum_path(path)
    if not side.is_file():
        return "unchecked"
    try:
        want = side.read_text().strip()
        memo = _memo(path)
    except OSError:
        return "corrupt"
    if memo in _verified:
        return "ok"
    if file_sha256(path) != want:
        return "corrupt"
    _verified.add(memo)
    return "ok"


def _discard(path: Path, why: str) -> None:
    warnings.warn(f"cache entry {path} {why}; it is not used, and is recomputed", stacklevel=3)
    for p in (path, checksum_path(path)):
        try:
            p.unlink()
        except OSError:
            pass


def load_entry(path: Path, mmap: bool = False) -> np.ndarray | None:
    """The cached array at ``path``, or None when absent, unreadable or failing its checksum (then
    it is reported once by name, deleted, and its caller recomputes it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = verify_entry(path)
    except OSError:
        return None
    if state == "corrupt":
        _discard(path, "fails its checksum (its bytes changed after it was written)")
        return None
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except PermissionError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        _discard(path, f"is unreadable ({type(exc).__name__})")
        return None
    if state == "unchecked":  # written before checksums: adopt it, so later reads verify it
        try:
            atomic_write_text(checksum_path(path), file_sha256(path) + "\n")
            _verified.add(_memo(path))
        except OSError:
            pass
    return arr
