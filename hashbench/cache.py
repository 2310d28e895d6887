"""The on-disk cache of computed arrays (representations, decoded image folders, file digests).

Entries are ``.npy`` files named from a digest of their canonical key (a dict), written atomically
(:mod:`hashbench.io`), so a killed run never leaves a half-written entry that a later run would
trust. A JSON sidecar keeps the key in readable form for people browsing the folder.

The folder is ``$HASHBENCH_CACHE`` when set, else ``~/.cache/hashbench``. This module sits below
both ``datasets`` and ``features`` so that neither imports the other for caching.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .digests import json_digest
from .io import atomic_save_npy, atomic_write_text

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


def save_entry(path: Path, array: np.ndarray, key: dict[str, Any] | None = None) -> None:
    """Write ``array`` to ``path`` (.npy) atomically; with ``key``, a readable ``.json`` sidecar too."""
    atomic_save_npy(path, array)
    if key is not None:
        atomic_write_text(Path(path).with_suffix(".json"), json.dumps(key, sort_keys=True, indent=1, default=str))


def load_entry(path: Path, mmap: bool = False) -> np.ndarray | None:
    """The cached array at ``path``, or None when absent or unreadable (then it is recomputed)."""
    if not Path(path).is_file():
        return None
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
