"""The epoch loop of deep methods: seeded batches, validation and model selection, resumable checkpoints.

- :func:`split_validation` ``(n, fraction, generator) -> (train_idx, val_idx)``: a seeded hold-out
  inside the training set.
- :func:`index_batches`: one epoch of index batches from a seeded permutation.
- :func:`train_epochs`: seeded permutation -> index batches -> ``step(idx) -> float``; tqdm bar
  (epoch, loss) when verbose; per-epoch loss and training-seconds history; optional validation with
  model selection and early stopping; an optional monitor (a learning curve) that cannot change the
  fit; optional atomic checkpoints with resume. Returns a :class:`TrainHistory`.
- :func:`save_checkpoint` / :func:`load_checkpoint`: atomic ``torch.save`` and its reader.

Nothing here knows about hashing: :mod:`hashbench.deep` builds the methods' fit on it, and
HashGAN uses :func:`train_epochs` directly. Seeding and devices live in :mod:`hashbench.device`.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import cache
from ..errors import HashbenchError, InvalidInput
from ..io import atomic_write_text, atomic_writer


def split_validation(n: int, fraction: float, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices 0..n-1 into (train, validation) parts, both sorted int64 arrays.

    The validation part is round(n * fraction) items (at least 2 when fraction > 0, so a pairwise
    loss has a pair), drawn by a permutation from ``generator``. ``fraction = 0`` gives all items to
    training and an empty validation part. It is always a part of the training set: queries and the
    database never reach a fit.
    """
    fraction = float(fraction)
    if not 0.0 <= fraction < 1.0:
        raise InvalidInput(f"validation_fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)
    n_val = max(2, int(round(n * fraction)))
    if n - n_val < 2:
        raise InvalidInput(
            f"validation_fraction={fraction} leaves {n - n_val} of {n} training items for training; lower it"
        )
    perm = torch.randperm(n, generator=generator).numpy()
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def index_batches(items: np.ndarray | torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch of index batches: ``items`` permuted by ``generator`` and cut into batch_size pieces.

    The last batch may be smaller. Batches are CPU int64 tensors of item indices.
    """
    items = torch.as_tensor(np.asarray(items), dtype=torch.int64)
    perm = items[torch.randperm(len(items), generator=generator)]
    return list(torch.split(perm, int(batch_size)))


@dataclass
class TrainHistory:
    """What :func:`train_epochs` did: per-epoch mean step loss, validation loss, selection, resume.

    ``seconds[e]`` is the wall time spent in the steps of epochs 1..e+1 (validation, the monitor
    and checkpoints excluded; NaN for epochs restored from a checkpoint written before it was
    recorded). ``monitor`` holds the monitor's values at the epochs ``monitor_epochs`` (1-based).
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    monitor_epochs: list[int] = field(default_factory=list)
    monitor: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (validation only)
    epochs_run: int = 0
    resumed_from: int = 0  # epochs restored from a checkpoint
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The history as plain data (what methods keep in ``history_``)."""
        return asdict(self)


def _stateful(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if hasattr(v, "state_dict") and hasattr(v, "load_state_dict")}


def _modules(state: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
    return {k: v for k, v in state.items() if isinstance(v, torch.nn.Module)}


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` through :func:`hashbench.io.atomic_writer` (a kill never leaves a half-written
    checkpoint), with a sha256 sidecar of its bytes (:func:`hashbench.cache.checksum_path`)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    atomic_write_text(cache.checksum_path(path), hashlib.sha256(data).hexdigest() + "\n")
    with atomic_writer(path) as f:
        f.write(data)


def load_checkpoint(path: str | Path) -> dict | None:
    """The payload saved by :func:`save_checkpoint`, or None when the file is absent or its bytes do
    not match their checksum (reported once by name, deleted: the fit starts from scratch)."""
    path = Path(path)
    if not path.exists():
        return None
    if cache.verify_entry(path) == "corrupt":
        warnings.warn(
            f"checkpoint {path} does not match its checksum; it is not used (training from scratch)", stacklevel=2
        )
        for p in (path, cache.checksum_path(path)):
            p.unlink(missing_ok=True)
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InvalidInput(
            f"checkpoint {path} is unreadable or holds more than tensors and plain values "
            f"({type(exc).__name__}); delete it to train from scratch"
        ) from None


def _rng_states(generator: torch.Generator) -> dict:
    states = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict, generator: torch.Generator) -> None:
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def run_isolated(fn: Callable[[], Any], generator: torch.Generator, state: Mapping[str, Any]) -> Any:
    """``fn()`` with the modules of ``state`` in eval mode and without grad, leaving the fit as it found it.

    Every module (and submodule) gets back its train/eval mode, and the RNG states (``generator``,
    torch's global CPU and CUDA generators, numpy's global one) are restored, so that nothing ``fn``
    draws is missing from the fit's streams: a fit with a monitor gives bitwise the codes of one
    without.
    """
    rng = _rng_states(generator)
    np_state = np.random.get_state()
    modules = _modules(state)
    modes = [(m, m.training) for root in modules.values() for m in root.modules()]
    try:
        for root in modules.values():
            root.eval()
        with torch.no_grad():
            return fn()
    finally:
        for m, mode in modes:
            m.training = mode
        _set_rng_states(rng, generator)
        np.random.set_state(np_state)


def train_epochs(
    step: Callable[[torch.Tensor], float],
    items: np.ndarray | torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    state: Mapping[str, Any] | None = None,
    validate: Callable[[], float] | None = None,
    patience: int | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 1,
    checkpoint_key: str = "",
    monitor: Callable[[], float | None] | None = None,
    monitor_every: int = 0,
    verbose: bool = False,
    desc: str = "train",
) -> TrainHistory:
    """Run ``epochs`` epochs of ``step(idx)`` over seeded permutations of ``items``.

    Args:
        step: called with each batch (CPU int64 tensor of item indices); does one update and returns
            the batch loss (a float; NaN or inf stops training with an error).
        items: the indices the epoch permutes (the training part of the training set).
        epochs, batch_size: the fixed schedule.
        generator: shuffling randomness (:func:`hashbench.device.torch_generator`).
        state: named objects of the fit (``"net"``, ``"optimizer"``, ...). ``nn.Module`` entries are
            switched to train mode for steps and eval mode for ``validate``; everything with
            ``state_dict`` goes into checkpoints; modules are what model selection restores.
        validate: when given, called after every epoch (eval mode, no grad) and returning a loss on
            a validation part of the training set; the modules of the epoch with the lowest value
            are restored at the end (model selection).
        patience: with ``validate``, stop after this many epochs without improvement (None: never).
        checkpoint_path: when given, save state + RNG states + history there every
            ``checkpoint_every`` epochs and at the end (atomically), and resume from it when it
            exists with the same ``checkpoint_key``. A resumed run gives the same result as an
            uninterrupted one.
        monitor: when given with ``monitor_every > 0``, called after every ``monitor_every``-th
            epoch and after the last one (early stop included), through :func:`run_isolated` (eval
            mode, no grad, modes and RNG states restored: it cannot change the fit); a returned float
            goes into ``TrainHistory.monitor`` with its epoch (None records nothing). It observes;
            it never selects (model selection is ``validate``'s).
        verbose: show a tqdm bar over epochs with the last epoch's loss.
    """
    from tqdm.auto import tqdm

    epochs, batch_size = int(epochs), int(batch_size)
    if epochs < 0:
        raise InvalidInput(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be >= 1, got {batch_size}")
    if patience is not None and int(patience) < 1:
        raise InvalidInput(f"patience must be >= 1 or None, got {patience!r}")
    monitor_every = int(monitor_every)
    if monitor_every < 0:
        raise InvalidInput(f"monitor_every must be >= 0, got {monitor_every}")
    state = dict(state or {})
    stateful, modules = _stateful(state), _modules(state)
    hist = TrainHistory()
    best_val, best_states, bad = math.inf, None, 0

    ckpt = load_checkpoint(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.get("key") == checkpoint_key:
        for k, obj in stateful.items():
            obj.load_state_dict(ckpt["state"][k])
        _set_rng_states(ckpt["rng"], generator)
        hist = TrainHistory(**ckpt["history"])
        hist.resumed_from = hist.epochs_run
        # a checkpoint written before seconds were recorded: those epochs' times are unknown
        hist.seconds = [math.nan] * (hist.epochs_run - len(hist.seconds)) + hist.seconds
        best_val, best_states, bad = ckpt["best_val"], ckpt["best_states"], ckpt["bad"]

    def checkpoint() -> None:
        if checkpoint_path is None:
            return
        save_checkpoint(
            checkpoint_path,
            {
                "key": checkpoint_key,
                "state": {k: obj.state_dict() for k, obj in stateful.items()},
                "rng": _rng_states(generator),
                "history": hist.as_dict(),
                "best_val": best_val,
                "best_states": best_states,
                "bad": bad,
            },
        )

    bar = tqdm(total=epochs, initial=hist.epochs_run, desc=desc, disable=not verbose, leave=False)
    try:
        while hist.epochs_run < epochs and not hist.stopped_early:
            for m in modules.values():
                m.train()
            losses, sizes = [], []
            t0 = time.perf_counter()
            for idx in index_batches(items, batch_size, generator):
                value = float(step(idx))
                if not math.isfinite(value):
                    raise HashbenchError(
                        f"{desc}: the loss became {value} at epoch {hist.epochs_run + 1}; "
                        "lower the learning rate (--set METHOD.lr=...) or check the input features"
                    )
                losses.append(value)
                sizes.append(len(idx))
            hist.loss.append(float(np.average(losses, weights=sizes)) if losses else float("nan"))
            hist.seconds.append((hist.seconds[-1] if hist.seconds else 0.0) + time.perf_counter() - t0)
            hist.epochs_run += 1
            postfix = {"loss": f"{hist.loss[-1]:.4g}"}
            if validate is not None:
                for m in modules.values():
                    m.eval()
                with torch.no_grad():
                    val = float(validate())
                hist.val_loss.append(val)
                postfix["val"] = f"{val:.4g}"
                if val < best_val:
                    best_val, bad, hist.best_epoch = val, 0, hist.epochs_run
                    best_states = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}
                else:
                    bad += 1
                    if patience is not None and bad >= int(patience):
                        hist.stopped_early = True
            if monitor is not None and monitor_every > 0:
                last = hist.epochs_run == epochs or hist.stopped_early
                if hist.epochs_run % monitor_every == 0 or last:
                    value = run_isolated(monitor, generator, modules)
                    if value is not None:
                        hist.monitor_epochs.append(hist.epochs_run)
                        hist.monitor.append(float(value))
                        postfix["monitor"] = f"{float(value):.4g}"
            bar.set_postfix(postfix)
            bar.update(1)
            if hist.epochs_run % max(1, int(checkpoint_every)) == 0 or hist.epochs_run == epochs:
                checkpoint()
    finally:
        bar.close()
    if hist.stopped_early:
        checkpoint()
    if best_states is not None:
        for k, m in modules.items():
            m.load_state_dict(best_states[k])
    for m in modules.values():
        m.eval()
    return hist
