"""Devices, seeds and thread pools: where a computation runs, and how it repeats bit for bit.

- :func:`resolve_device` ``("auto" | "cpu" | "cuda" | "cuda:N") -> torch.device``, validated.
- :func:`torch_generator` an explicit seeded CPU generator (shuffling, sampling).
- :func:`seeded` a block with torch's global RNG forked and seeded, deterministic algorithms on.
- :func:`limit_threads` caps torch, BLAS/OpenMP and numba pools for this process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from .errors import InvalidInput


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when torch sees a GPU, else CPU; ``"cpu"``; ``"cuda"`` / ``"cuda:N"``.

    Raises InvalidInput for an unknown name, or for CUDA when torch sees no GPU.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidInput(
                f"device {device!r} was asked for but torch sees no GPU (torch {torch.__version__}); "
                "use device='cpu' or 'auto' (--device cpu)"
            )
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise InvalidInput(f"bad CUDA device {device!r}; use 'cuda' or 'cuda:N'") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInput(f"device {device!r}: torch sees only {torch.cuda.device_count()} GPU(s)")
        return dev
    raise InvalidInput(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: the explicit source of shuffling randomness."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with torch's global RNG forked and seeded, and deterministic algorithms on.

    Inside, weight initialisation and dropout draw from ``torch.manual_seed(seed)``; on exit the
    caller's RNG state and determinism settings are restored, so a fit leaves no trace in global
    state. On the CPU, ``torch.use_deterministic_algorithms(True, warn_only=True)`` makes runs repeat
    bit for bit (for a fixed torch build and thread count). On CUDA it is enabled only when
    ``CUBLAS_WORKSPACE_CONFIG`` is set (cuBLAS needs it); cuDNN is made deterministic either way.
    """
    device = torch.device(device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(int(seed))
        try:
            if device.type == "cpu" or os.environ.get("CUBLAS_WORKSPACE_CONFIG"):
                torch.use_deterministic_algorithms(True, warn_only=True)
            if device.type == "cuda":
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


def limit_threads(n: int | None) -> None:
    """Cap the thread pools of this process (torch, BLAS, numba); oversubscribed OpenMP pools spin."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInput(f"--threads {n}: give a positive number of threads")
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    try:  # numba first: starting its OpenMP layer resets the process's OpenMP pools (faiss's too)
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        pass
    threadpool_limits(n)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Make glibc's malloc keep freed blocks for reuse instead of returning them to the system.

    Training frees and reallocates the same activation-sized buffers at every step (HashGAN's
    [300, 32, 16, 16] float tensors are 9.8 MB). By default glibc serves such blocks with mmap and
    gives them back on free, so every step page-faults them in again and zero-fills them (11% of a
    HashGAN step in a profile). Serving blocks up to ``mmap_threshold`` from the heap (32 MB, the
    ceiling of glibc's own dynamic threshold on 64-bit systems) and trimming the heap only past
    ``trim_threshold`` removes that cost; it changes no number, only where memory comes from, and a
    process keeps up to ``trim_threshold`` of freed memory. Worker processes of the local executor
    call it. True when set (glibc), False elsewhere.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:  # pragma: no cover - not glibc
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt (musl, macOS)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
    )
