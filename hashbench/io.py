"""Atomic file writes: the one place hashbench writes a file that a later run will trust.

Every writer goes to a temporary file in the destination's folder, then ``os.replace`` renames it,
so a killed run never leaves a half-written record, cache entry, checkpoint or table. Files get the
permissions the umask allows (``mkstemp`` alone would make them 0600): results are meant to be shared.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from .errors import InvalidInput, StorageError

_UMASK = os.umask(0)
os.umask(_UMASK)


#: errors that mean "this folder cannot take the file": full, over quota, or not writable
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def storage_error(path: str | os.PathLike, exc: OSError) -> StorageError:
    """One line naming the folder that could not take ``path`` and what to do about it."""
    folder = Path(path).parent
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space on that disk, or point --out / --cache-dir ($HASHBENCH_CACHE) at another disk"
    else:
        fix = "fix its permissions, or point --out / --cache-dir ($HASHBENCH_CACHE) at a writable folder"
    return StorageError(
        f"cannot write to {folder} ({exc.strerror or errno.errorcode.get(exc.errno, exc)}): {fix}; "
        "the run stopped there, and everything written before is complete (re-run to resume)"
    )


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """``with atomic_writer(p) as f: f.write(...)``: the file appears whole at ``p`` or not at all.

    A full or unwritable folder raises :class:`~hashbench.errors.StorageError` naming it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise storage_error(path, exc) from None
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            raise storage_error(path, exc) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` to ``path`` atomically (no pickles)."""
    with atomic_writer(path) as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
    return Path(path)


def ensure_writable_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create ``path`` if needed and check a file can be written in it, before any work is done.

    Raises InvalidInput naming the problem (a file in the way, no permission) and the fix.
    """
    p = Path(path).expanduser()
    for parent in (p, *p.parents):
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInput(f"{what} {path}: {parent} is a file, not a folder; give a folder path")
            break
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p, prefix=".hashbench-write-test.")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InvalidInput(
            f"{what} {path} is not a writable folder ({exc.strerror or exc}); "
            "choose another folder or fix its permissions"
        ) from None
    return p
