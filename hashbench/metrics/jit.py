"""numba for the metrics package, configured so that compiled kernels are cached under hashbench's cache folder.

numba caches an ``@njit(cache=True)`` function next to its source file (``__pycache__``) by default,
which for an installed wheel means site-packages: often read-only, shared by every user of the
environment, and left behind on uninstall. hashbench keeps them in
``hashbench.cache.default_cache_dir() / "numba"`` instead (``$HASHBENCH_CACHE/numba``, else
``~/.cache/hashbench/numba``); a ``NUMBA_CACHE_DIR`` that the user set wins.

numba reads ``NUMBA_CACHE_DIR`` once, when ``numba.config`` is first imported, and fixes each cached
function's folder when the function is decorated. So when numba is not imported yet, this module sets
the variable before importing it (child processes inherit it too); when another module imported
numba first (``hashbench.device.limit_threads`` does), it assigns ``numba.config.CACHE_DIR``, which
works because every kernel of this package is decorated after this module ran. The environment is
left alone in that case: a changed ``NUMBA_*`` variable makes numba re-read its whole configuration
at the next compile, undoing settings made in code. When the folder cannot be created or written,
caching is off (:data:`CACHE` is False) with a warning, rather than numba's fallback of writing
next to the package. Every module of the package imports numba from here, never directly.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from ..cache import default_cache_dir

__all__ = ["CACHE", "CACHE_DIR", "intrinsic", "ir", "njit", "numba", "prange", "types"]


def _cache_dir() -> Path:
    user = os.environ.get("NUMBA_CACHE_DIR")
    return Path(user).expanduser() if user else default_cache_dir() / "numba"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK | os.X_OK)


#: the folder that holds this package's compiled kernels
CACHE_DIR: Path = _cache_dir()

if "numba" not in sys.modules and not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(CACHE_DIR)

import numba  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, prange, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

if not numba.config.CACHE_DIR:
    numba.config.CACHE_DIR = str(CACHE_DIR)
# a numba config file or an earlier assignment in code may name another folder: that one is used
CACHE_DIR = Path(numba.config.CACHE_DIR)

#: whether the kernels are cached on disk (False: compiled in every process, about a minute)
CACHE: bool = _writable(CACHE_DIR)
if not CACHE:
    warnings.warn(
        f"hashbench cannot write numba's cache folder {CACHE_DIR}; the metric kernels will be compiled in "
        "every process. Set HASHBENCH_CACHE (or NUMBA_CACHE_DIR) to a writable folder",
        RuntimeWarning,
        stacklevel=2,
    )
