"""What every deep hashing method shares: device, seeding, the epoch loop, validation, checkpoints.

Public API (kept small and stable; GA/UHGA, HashGAN and USDH build on it):

- :func:`resolve_device` ``("auto" | "cpu" | "cuda" | "cuda:N") -> torch.device``.
- :func:`seeded` context: a fit that repeats bit for bit on the CPU (forked global torch RNG seeded
  for weight init and dropout, deterministic algorithms on), the caller's RNG state restored after.
  :func:`torch_generator` gives the explicit generator used for shuffling; :func:`seed_everything`
  is the script-level equivalent (global seeding, returns a numpy Generator).
- :func:`progress` ``(iterable, enabled=..., desc=...)``: a tqdm bar that can be disabled.
- :func:`split_validation` ``(n, fraction, generator) -> (train_idx, val_idx)``.
- :func:`train_epochs`: seeded permutation -> index batches -> ``step(idx) -> float``; tqdm bar
  (epoch, loss) when verbose; per-epoch loss history; optional validation with model selection and
  early stopping; optional atomic checkpoints with resume. Returns a :class:`TrainHistory`.
- :class:`DeepHashMethod`: the base class of deep methods (parameters, ``input`` property, fit
  template, batched ``project``/``encode``). A subclass implements :meth:`DeepHashMethod._batch_loss`
  and may override the hooks ``_prepare``, ``_make_optimizer``, ``_training_state``,
  ``_train_step``, ``_validation_loss``. Hooks receive a :class:`FitContext` whose ``codes(idx)``
  gives the continuous codes of a batch of training items (with grad).

Extending for GA's look-ahead (METHODS.md 9.4): override ``_training_state`` to add the attention
net and its optimiser (everything in that dict with ``state_dict`` is checkpointed), and
``_train_step`` to do the custom update; draw the second, independently shuffled batch with
``torch.randperm(len(ctx.train_idx), generator=ctx.generator)``; the pairwise loss comes from the
method (e.g. ``baselines.ssdh.ssdh_loss(u, S_ab, v)``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .device import resolve_device, seeded, torch_generator  # noqa: F401  (re-exported)
from .errors import HashbenchError, InvalidInput, check_n_bits
from .methods import HashMethod

TRACKS = ("features", "end2end")
ARCHS = ("alexnet", "vgg16")
#: parameters that change how a fit runs but not what it computes (left out of checkpoint keys)
RUNTIME_PARAMS = frozenset({"device", "verbose", "checkpoint_dir", "checkpoint_every"})


# -- the loop ------------------------------------------------------------------------------------
def progress(iterable: Any, *, enabled: bool = False, desc: str = "", total: int | None = None, **kwargs: Any) -> Any:
    """``iterable`` wrapped in a tqdm bar when ``enabled`` (disabled bars cost nothing and print nothing).

    The returned object iterates like ``iterable``; call ``.set_postfix(loss=...)`` on it to show
    a running value.
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not enabled, leave=False, **kwargs)


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
    """What :func:`train_epochs` did: per-epoch mean step loss, validation loss, selection, resume."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (validation only)
    epochs_run: int = 0
    resumed_from: int = 0  # epochs restored from a checkpoint
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _stateful(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if hasattr(v, "state_dict") and hasattr(v, "load_state_dict")}


def _modules(state: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
    return {k: v for k, v in state.items() if isinstance(v, torch.nn.Module)}


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a kill leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | Path) -> dict | None:
    """The payload saved by :func:`save_checkpoint`, or None when the file is absent."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InvalidInput(f"checkpoint {path} is unreadable ({exc}); delete it to train from scratch") from None


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
    verbose: bool = False,
    desc: str = "train",
) -> TrainHistory:
    """Run ``epochs`` epochs of ``step(idx)`` over seeded permutations of ``items``.

    Args:
        step: called with each batch (CPU int64 tensor of item indices); does one update and returns
            the batch loss (a float; NaN or inf stops training with an error).
        items: the indices the epoch permutes (the training part of the training set).
        epochs, batch_size: the fixed schedule.
        generator: shuffling randomness (:func:`torch_generator`).
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


def config_key(params: Mapping[str, Any], *arrays: np.ndarray) -> str:
    """A hex digest of a method's parameters (minus :data:`RUNTIME_PARAMS`) and its training data."""
    h = hashlib.sha256()
    clean = {k: repr(v) for k, v in sorted(params.items()) if k not in RUNTIME_PARAMS}
    h.update(json.dumps(clean, sort_keys=True).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


# -- the base class ------------------------------------------------------------------------------
@dataclass
class FitContext:
    """Everything a deep method's hooks need during one fit.

    Attributes:
        method: the method being fitted (its ``net_`` is the hash network).
        X: training input, a torch tensor on ``device`` (features track, float32 (n, d)) or a numpy
            uint8 array (n, H, W, C) (end-to-end track; preprocessed per batch).
        device: where the network runs.
        generator: the shuffling generator (CPU); draw extra permutations from it.
        train_idx, val_idx: the training and validation parts (int64 indices into X).
        state: the objects :func:`train_epochs` checkpoints (``"net"``, ``"optimizer"``, ...).
        extra: what ``_prepare`` computed (e.g. ``"S"``, the similarity matrix on ``device``).
    """

    method: DeepHashMethod
    X: Any
    device: torch.device
    generator: torch.Generator
    train_idx: np.ndarray
    val_idx: np.ndarray
    state: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.X)

    def inputs(self, idx: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The network input for training items ``idx``, on ``device``."""
        return self.method._inputs(self.X, idx, self.device)

    def codes(self, idx: torch.Tensor | np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """Continuous codes h = tanh(scale * logits) (len(idx), n_bits) of training items, with grad."""
        return self.method.net_(self.inputs(idx), scale)

    def reference_features(self, batch_size: int = 64) -> np.ndarray:
        """float32 (n, d) features of all training items for similarity structure (SSDH, UHGA).

        Features track: the representation's features as given. End-to-end track: the backbone's
        fc7 (post-ReLU) in eval mode, computed now, so before any training step.
        """
        if self.method.track == "features":
            return self.X.detach().cpu().numpy()
        net = self.method.net_
        was_training = net.training
        net.eval()
        out = []
        with torch.no_grad():
            for start in range(0, self.n, batch_size):
                idx = np.arange(start, min(start + batch_size, self.n))
                out.append(net.features(self.inputs(idx)).float().cpu().numpy())
        net.train(was_training)
        return np.concatenate(out).astype(np.float32, copy=False)


class DeepHashMethod(HashMethod):
    """Base class of the deep hashing methods (SSDH, GA/UHGA, HashGAN, USDH).

    Common parameters (a subclass's ``__init__`` lists these plus its own, storing each under
    its name, as scikit-learn requires):

        n_bits: code length K.
        track: ``"features"`` (train a hash head on a representation's features; ``input`` is
            "features") or ``"end2end"`` (train backbone + hash layer on uint8 images; ``input`` is
            "images"; images are resized to 224 and ImageNet-normalised).
        arch: ``"alexnet"`` or ``"vgg16"`` (end-to-end backbone).
        weights: ``"imagenet"`` (default), a path to a state dict, or None (random backbone: tests
            only). Unused on the features track.
        epochs: passes over the training set; None = the class's ``default_epochs[track]``.
        batch_size, lr: the schedule; the optimiser is the subclass's (``_make_optimizer``).
        hidden: width of the features-track MLP (0 = linear hash layer); see ``hashbench.nets``.
        validation_fraction: share of the training set held out for model selection (0 = none, the
            papers' fixed schedule); patience: early stopping on it (None = never).
        checkpoint_dir: folder for resumable checkpoints (None = none); checkpoint_every: epochs.
        device: "auto" | "cpu" | "cuda"; random_state: the seed; verbose: progress bar.

    Fitted attributes: ``net_`` (:class:`hashbench.nets.HashNet`, eval mode), ``history_`` (dict of
    :class:`TrainHistory`), ``n_features_in_`` (features track) or ``image_shape_`` (end-to-end).
    """

    deep = True
    #: epochs when ``epochs=None``, per track
    default_epochs: dict = {"features": 50, "end2end": 10}
    #: dropout after the features-track hidden layer
    feature_dropout: float = 0.1
    #: items per forward pass in ``project`` (features, images)
    encode_batch_size: dict = {"features": 1024, "end2end": 64}

    def __init__(
        self,
        n_bits: int = 32,
        track: str = "features",
        arch: str = "alexnet",
        weights: str | None = "imagenet",
        epochs: int | None = None,
        batch_size: int = 24,
        lr: float = 1e-3,
        hidden: int = 1024,
        validation_fraction: float = 0.0,
        patience: int | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        device: str = "auto",
        random_state: int = 0,
        verbose: bool = False,
    ):
        self.n_bits = n_bits
        self.track = track
        self.arch = arch
        self.weights = weights
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hidden = hidden
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def input(self) -> str:  # type: ignore[override]
        return "images" if getattr(self, "track", "features") == "end2end" else "features"

    # -- hooks for subclasses ---------------------------------------------------------------------
    def _prepare(self, ctx: FitContext) -> None:
        """Compute what the loss needs before training (e.g. a similarity matrix into ``ctx.extra``)."""

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        """The optimiser of the hash network (default Adam(lr))."""
        return torch.optim.Adam(params, lr=float(self.lr))

    def _training_state(self, ctx: FitContext) -> dict:
        """Objects the loop trains and checkpoints; must contain ``"net"`` (default: net + optimizer)."""
        return {"net": self.net_, "optimizer": self._make_optimizer(self.net_.parameters())}

    def _batch_loss(self, ctx: FitContext, idx: torch.Tensor) -> torch.Tensor:
        """The scalar loss of a batch of training items (differentiable)."""
        raise NotImplementedError

    def _train_step(self, ctx: FitContext, idx: torch.Tensor) -> float:
        """One update on a batch; default: zero grads, loss.backward(), optimizer.step()."""
        opt = ctx.state["optimizer"]
        opt.zero_grad(set_to_none=True)
        loss = self._batch_loss(ctx, idx)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _validation_loss(self, ctx: FitContext) -> float:
        """Mean batch loss over the validation part (fixed order, eval mode, no grad)."""
        idx = torch.as_tensor(ctx.val_idx)
        parts = torch.split(idx, max(int(self.batch_size), 2))
        vals = [float(self._batch_loss(ctx, p)) * len(p) for p in parts]
        return sum(vals) / len(idx)

    # -- shared machinery --------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_n_bits(self.n_bits)
        if self.track not in TRACKS:
            raise InvalidInput(f"{type(self).__name__}: unknown track {self.track!r}; use one of {', '.join(TRACKS)}")
        if self.track == "end2end" and self.arch not in ARCHS:
            raise InvalidInput(f"{type(self).__name__}: unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        if not float(self.lr) > 0:
            raise InvalidInput(f"{type(self).__name__}: lr must be > 0, got {self.lr!r}")

    def _n_epochs(self) -> int:
        return int(self.default_epochs[self.track] if self.epochs is None else self.epochs)

    def _check_input(self, X: Any, *, fitting: bool = False) -> np.ndarray:
        if self.input == "features":
            X = self._validate_features(X, fitting=fitting).astype(np.float32, copy=False)
            return X
        X = np.asarray(X)
        if X.ndim == 3:
            X = X[..., None]
        if X.ndim != 4 or X.shape[-1] not in (1, 3) or X.dtype != np.uint8:
            raise InvalidInput(
                f"{type(self).__name__} (track='end2end') expects uint8 images (n, H, W, C) with C in "
                f"{{1, 3}}, got {X.dtype} {X.shape}; use track='features' for feature vectors"
            )
        if fitting and X.shape[0] < 2:
            raise InvalidInput(f"{type(self).__name__} needs at least 2 training images, got {X.shape[0]}")
        return X

    def _inputs(self, X: Any, idx: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            return X[torch.as_tensor(idx, device=X.device)]
        from .nets import preprocess_images

        return preprocess_images(X[np.asarray(idx)]).to(device)

    def _build_net(self, X: np.ndarray) -> torch.nn.Module:
        from .nets import end2end_net, feature_net

        if self.track == "features":
            return feature_net(X, int(self.n_bits), hidden=int(self.hidden), dropout=self.feature_dropout)
        return end2end_net(self.arch, int(self.n_bits), self.weights)

    def fit(self, X, y=None):
        """Train on training items X only (y is ignored: unsupervised). Returns self."""
        self._check_params()
        X = self._check_input(X, fitting=True)
        device = resolve_device(self.device)
        seed = int(self.random_state or 0)
        with seeded(seed, device):
            generator = torch_generator(seed)
            net = self._build_net(X).to(device)
            self.net_ = net
            train_idx, val_idx = split_validation(len(X), self.validation_fraction, generator)
            data = torch.from_numpy(np.ascontiguousarray(X)).to(device) if self.track == "features" else X
            ctx = FitContext(self, data, device, generator, train_idx, val_idx)
            self._prepare(ctx)
            ctx.state = self._training_state(ctx)
            ckpt = None
            if self.checkpoint_dir:
                key = config_key({"class": type(self).__name__, **self.get_params(deep=False)}, X)
                ckpt = Path(self.checkpoint_dir) / f"{type(self).__name__.lower()}-{key[:20]}.pt"
            else:
                key = ""
            hist = train_epochs(
                lambda idx: self._train_step(ctx, idx),
                train_idx,
                epochs=self._n_epochs(),
                batch_size=int(self.batch_size),
                generator=generator,
                state=ctx.state,
                validate=(lambda: self._validation_loss(ctx)) if len(val_idx) else None,
                patience=self.patience,
                checkpoint_path=ckpt,
                checkpoint_every=int(self.checkpoint_every),
                checkpoint_key=key,
                verbose=bool(self.verbose),
                desc=type(self).__name__,
            )
        self.net_.eval()
        self.history_ = hist.as_dict()
        if self.track == "features":
            self.n_features_in_ = X.shape[1]
        else:
            self.image_shape_ = tuple(X.shape[1:])
        self._finish_fit(ctx)
        return self

    def _finish_fit(self, ctx: FitContext) -> None:
        """Keep what should outlive the fit (small things only: ``ctx`` and its data are dropped)."""

    def project(self, X) -> np.ndarray:
        """Pre-activation outputs W body(x) + c (n, n_bits), float32; eval mode, in batches, no grad.

        ``encode`` = project >= 0, the sign of the continuous code (sign(0) = +1).
        """
        check_is_fitted(self, "net_")
        X = self._check_input(X)
        net = self.net_
        net.eval()
        device = next(net.parameters()).device
        bs = int(self.encode_batch_size[self.track])
        out = []
        with torch.no_grad():
            for start in range(0, len(X), bs):
                chunk = X[start : start + bs]
                xb = torch.from_numpy(np.ascontiguousarray(chunk)).to(device) if self.track == "features" else None
                if xb is None:
                    xb = self._inputs(X, np.arange(start, start + len(chunk)), device)
                out.append(net.logits(xb).float().cpu().numpy())
        if not out:
            return np.zeros((0, int(self.n_bits)), dtype=np.float32)
        return np.concatenate(out)
