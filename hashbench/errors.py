"""Errors a user can cause. Each message says what is wrong and what to do; the CLI prints it and exits 2."""

from __future__ import annotations


class HashbenchError(Exception):
    """Base class of every error caused by user input (bad arguments, missing files, bad data)."""


class DatasetNotFound(HashbenchError):
    """A dataset's files are missing. The message names the files looked for and how to get them."""


class UnknownName(HashbenchError):
    """An unknown method, dataset, protocol or representation name."""


class InvalidInput(HashbenchError):
    """Bad values: bits outside 1..1024, NaN features, wrong shapes, corrupt files."""


class StorageError(HashbenchError):
    """A folder hashbench writes to is full or not writable (ENOSPC, EDQUOT, EACCES, EPERM, EROFS).

    The message names the folder and the fix; a run stops at the first one (every later cell would
    fail the same way), keeping what was written whole.
    """


class MissingWeights(HashbenchError):
    """Pretrained weights are needed and none are available offline."""


#: the longest code hashbench handles (bits); hashbench.methods.N_BITS constrains every method to it
MAX_BITS = 1024


def check_n_bits(n_bits: int) -> int:
    """Return n_bits as int, or raise InvalidInput when it is not in 1..MAX_BITS (1024)."""
    try:
        b = int(n_bits)
    except (TypeError, ValueError):
        raise InvalidInput(f"code length {n_bits!r} is not an integer; give bits as e.g. --bits 16,32,64") from None
    if b != n_bits or not 1 <= b <= MAX_BITS:
        raise InvalidInput(f"code length {n_bits!r} is outside 1..{MAX_BITS}; give bits as e.g. --bits 16,32,64")
    return b
