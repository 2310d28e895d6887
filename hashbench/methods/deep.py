"""The framework of deep hashing methods: :class:`DeepHashMethod`, its :class:`FitContext`, checkpoint keys.

A deep method (SSDH, SSDH+GA, UHGA, UHGA+GA, USDH) is a :class:`DeepHashMethod` subclass that
implements :meth:`DeepHashMethod.batch_loss` and overrides, where it needs to, the other documented
extension points (listed in the class docstring). The fit template, the epoch loop
(:mod:`hashbench.methods.loop`), seeding (:mod:`hashbench.device`), validation, checkpoints and batched
encoding are shared.

Extending for GA's look-ahead (METHODS.md 9.4): override :meth:`DeepHashMethod.training_state` to
add the attention net and its optimiser (everything in that dict with ``state_dict`` is
checkpointed), and :meth:`DeepHashMethod.train_step` to do the custom update; draw the second,
independently shuffled batch with ``torch.randperm(len(ctx.train_idx), generator=ctx.generator)``;
the pairwise loss comes from the method (e.g. ``hashbench_baselines.ssdh.ssdh_loss(u, S_ab, v)``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..device import resolve_device, seeded, torch_generator
from ..digests import array_digest, json_digest
from ..errors import InvalidInput
from . import (
    FOLDER,
    N_BITS,
    RUNTIME_PARAMS,
    SEED,
    Boolean,
    Constraint,
    Device,
    HashMethod,
    Instance,
    Interval,
    Options,
    fit_context,
    validate_features,
)
from .loop import run_isolated, split_validation, train_epochs
from .nets import END2END_ARCHS, END2END_VERSION, FINETUNE_VERSION

TRACKS = ("features", "end2end")
#: batch-norm statistics of the trainable backbone stages: the pretrained ones, or each batch's
BACKBONE_BN = ("frozen", "batch")
#: parameters of the fine-tuning regime: left out of the record key where they change nothing
FINETUNE_PARAMS = ("train_stages", "backbone_lr", "backbone_bn")
#: backbones of the end-to-end track (``hashbench.nets.end2end_net``)
ARCHS = END2END_ARCHS
#: the learning curve's default: validation MAP every this many epochs (and after the last)
CURVE_EVERY = 5


class Backbone(Constraint):
    """An end-to-end backbone of :data:`ARCHS`, optionally ``@SIZE`` (its input side, 32..1024)."""

    def is_satisfied_by(self, value: Any) -> bool:
        from .nets import end2end_arch_size

        if not isinstance(value, str):
            return False
        try:
            end2end_arch_size(value)
        except InvalidInput:
            return False
        return True

    def describe(self) -> str:
        return f"one of {', '.join(map(repr, ARCHS))}, optionally @SIZE (e.g. 'efficientnet-lite0@96')"

    def invalid_examples(self) -> list[Any]:
        return ["resnet50", "alexnet@big"]


def config_key(params: Mapping[str, Any], *arrays: np.ndarray) -> str:
    """A 64-hex-digit digest of a method's parameters (minus :data:`~hashbench.methods.RUNTIME_PARAMS`) and data.

    Names a checkpoint: a checkpoint is resumed only by a fit with the same parameters and the same
    training data.
    """
    clean = {k: repr(v) for k, v in sorted(params.items()) if k not in RUNTIME_PARAMS}
    return json_digest({"params": clean, "data": array_digest(*arrays, length=64)}, length=64)


def _merged_signature(init: Any, parent_init: Any) -> inspect.Signature | None:
    """The signature of a subclass's ``init`` that passes ``*args`` and ``**common`` on to
    ``parent_init``: ``self``, the parent's positional parameters that ``*args`` passes on (none
    without ``*args``), ``init``'s own parameters as declared, then the parent's other parameters
    in its order, keyword-only. None where ``init`` takes no ``**`` (it lists every parameter)."""
    own = inspect.signature(init)
    kinds = {p.kind for p in own.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        return None
    self_param, *declared = own.parameters.values()
    listed = [p for p in declared if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = {p.name for p in listed}
    inherited = [p for p in list(inspect.signature(parent_init).parameters.values())[1:] if p.name not in names]
    positional = (
        [p for p in inherited if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if inspect.Parameter.VAR_POSITIONAL in kinds
        else []
    )
    rest = [p.replace(kind=p.KEYWORD_ONLY) for p in inherited if p not in positional]
    return own.replace(parameters=[self_param, *positional, *listed, *rest])


@dataclass
class FitContext:
    """Everything a deep method's extension points need during one fit.

    Attributes:
        method: the method being fitted (its ``net_`` is the hash network).
        X: training input, a torch tensor on ``device`` (features track, float32 (n, d)) or a numpy
            uint8 array (n, H, W, C) (end-to-end track; preprocessed per batch).
        device: where the network runs.
        generator: the shuffling generator (CPU); draw extra permutations from it.
        train_idx, val_idx: the training and validation parts (int64 indices into X).
        state: the objects :func:`hashbench.methods.loop.train_epochs` checkpoints (``"net"``, ``"optimizer"``, ...).
        extra: what ``prepare`` computed (e.g. ``"S"``, the similarity matrix on ``device``).
        resolved: values derived from the training data for parameters left at None
            (e.g. ``{"sim_threshold": 0.83}``); they become the method's ``resolved_params_``.
    """

    method: DeepHashMethod
    X: Any
    device: torch.device
    generator: torch.Generator
    train_idx: np.ndarray
    val_idx: np.ndarray
    state: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of training items (both parts)."""
        return len(self.X)

    def inputs(self, idx: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The network input for training items ``idx``, on ``device``."""
        return self.method.batch_inputs(self.X, idx, self.device)

    def codes(self, idx: torch.Tensor | np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """Continuous codes h = tanh(scale * logits) (len(idx), n_bits) of training items, with grad."""
        return self.method.net_(self.inputs(idx), scale)

    def reference_features(self, batch_size: int = 64) -> np.ndarray:
        """float32 (n, d) features of all training items for similarity structure (SSDH, UHGA).

        Features track: the representation's features as given. End-to-end track: the backbone's
        fc7 (post-ReLU) in eval mode, computed now, so before any training step.
        """
        if self.method.regime == "features":
            return self.X.detach().cpu().numpy()
        pooled = getattr(self.method, "_pooled_init", None)
        if pooled is not None:  # fine-tuning: the stages' pooled features before any step
            return pooled
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
    """Base class of the deep hashing methods (SSDH, SSDH+GA, UHGA, UHGA+GA, USDH).

    Declaring parameters: a subclass's ``__init__`` takes ``*args`` (``n_bits``, the one positional
    parameter), then, keyword-only, its own parameters and those of the common ones below whose
    default it changes, then ``**common``; it passes ``*args``, the common ones it lists and
    ``**common`` to ``super().__init__`` and stores each of its own under its name::

        def __init__(self, *args: Any, arch: str = "vgg16", alpha: float = 2.0, **common: Any):
            super().__init__(*args, arch=arch, **common)
            self.alpha = alpha

    :meth:`__init_subclass__` gives that ``__init__`` the merged signature, which scikit-learn's
    ``get_params``, ``set_params`` and ``clone`` (and ``help``) read: ``n_bits``, the subclass's
    parameters in its order, then the other inherited ones in the parent's order, defaults as
    declared: ``SSDH(n_bits=32, *, arch='vgg16', ..., track='features', ...)``. A subclass of a
    subclass (SSDH+GA of SSDH) declares its ``__init__`` the same way and inherits its parent's
    merged parameters. An ``__init__`` without ``**common`` lists every parameter itself and keeps
    its own signature. ``parameter_constraints`` extends the parent's
    (``{**DeepHashMethod.parameter_constraints, "alpha": [...]}``).

    Common parameters:

        n_bits: code length K.
        track: ``"features"`` (train a hash head on a representation's features; ``input`` is
            "features") or ``"end2end"`` (train backbone + hash layer on uint8 images; ``input`` is
            "images"; images are resized to 224 and ImageNet-normalised).
        arch: the end-to-end backbone (:data:`ARCHS`), optionally ``@SIZE`` for a smaller input
            (``"efficientnet-lite0@96"``: a CPU-sized fine-tuning; default: the backbone's own 224).
        weights: ``"imagenet"`` (default), a path to a state dict, or None (random backbone: tests
            only). Unused on the features track.
        epochs: passes over the training set; None = the class's ``default_epochs[track]``.
        batch_size, lr: the schedule; the optimiser is the subclass's (``make_optimizer``).
        hidden: width of the features-track MLP (0 = linear hash layer); see ``hashbench.nets``.
        validation_fraction: share of the training set held out for model selection (0 = none, the
            papers' fixed schedule); patience: early stopping on it (None = never).
        checkpoint_dir: folder for resumable checkpoints (None = none); checkpoint_every: epochs.
        curve_every: the learning curve's validation MAP every this many epochs and after the last
            (0 = never; needs a validation part and ``fit(X, curve_labels=...)``). It observes
            only: codes are bitwise those of a fit without it, and, like ``device``, it is in no
            record or checkpoint key (:data:`hashbench.methods.RUNTIME_PARAMS`).
        device: "auto" | "cpu" | "cuda"; random_state: the seed; verbose: progress bar.

    Extension points (public API; override what the method needs, call ``super()`` where noted):

        - :meth:`batch_loss` ``(ctx, idx) -> Tensor``: the scalar loss of a batch. **Required.**
        - :meth:`prepare` ``(ctx)``: compute what the loss needs before training (a similarity
          matrix into ``ctx.extra``; data-derived parameter values into ``ctx.resolved``).
        - :meth:`make_optimizer` ``(params) -> Optimizer``: the hash network's optimiser (Adam(lr)).
        - :meth:`training_state` ``(ctx) -> dict``: what the loop trains and checkpoints; must hold
          ``"net"`` (default: net and optimizer).
        - :meth:`train_step` ``(ctx, idx) -> float``: one update (default: zero grads, backward
          of ``batch_loss``, optimizer step).
        - :meth:`validation_loss` ``(ctx) -> float``: the model-selection criterion (mean
          ``batch_loss`` over the validation part).
        - :meth:`build_net` ``(X) -> nn.Module``: the hash network (``hashbench.nets``).
        - :meth:`batch_inputs` ``(X, idx, device) -> Tensor``: network input of some items.
        - :meth:`validate_input` ``(X, fitting=False)``: the checked fit/encode input.
        - :meth:`check_params`: extend for rules tying parameters together (call super first).
        - :meth:`n_epochs`: the epochs the fit runs (``epochs`` or the track's default).

    Fitted attributes: ``net_`` (:class:`hashbench.nets.HashNet`, eval mode), ``history_`` (dict of
    :class:`hashbench.methods.loop.TrainHistory`), ``curve_`` (the learning curve, :meth:`learning_curve`),
    ``n_features_in_`` (features track) or ``image_shape_`` (end-to-end), ``resolved_params_``.
    """

    deep = True
    #: epochs when ``epochs=None``, per track
    default_epochs: ClassVar[dict[str, int]] = {"features": 50, "end2end": 10}
    #: epochs when ``epochs=None`` on the fine-tuning regimes (None: the features track's)
    finetune_epochs: ClassVar[int | None] = None
    #: dropout after the features-track hidden layer
    feature_dropout: ClassVar[float] = 0.1
    #: items per forward pass in ``project`` (features, images)
    encode_batch_size: ClassVar[dict[str, int]] = {"features": 1024, "end2end": 64}

    parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_bits": [N_BITS],
        "track": [Options(*TRACKS)],
        "arch": [Backbone()],
        "weights": [None, Instance(str, Path, description="'imagenet' or the path of a state dict")],
        "epochs": [None, Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "hidden": [Interval(int, 0, None)],
        "train_stages": [None, Interval(int, 0, None), Options("all")],
        "backbone_lr": [Interval(float, 0, None, closed="neither")],
        "backbone_bn": [Options(*BACKBONE_BN)],
        "validation_fraction": [Interval(float, 0, 1, closed="left")],
        "patience": [None, Interval(int, 1, None)],
        "checkpoint_dir": [None, FOLDER],
        "checkpoint_every": [Interval(int, 1, None)],
        "curve_every": [Interval(int, 0, None)],
        "device": [Device()],
        "random_state": [SEED],
        "verbose": [Boolean()],
    }

    def __init__(
        self,
        n_bits: int = 32,
        *,
        track: str = "features",
        arch: str = "alexnet",
        weights: str | None = "imagenet",
        epochs: int | None = None,
        batch_size: int = 24,
        lr: float = 1e-3,
        hidden: int = 1024,
        train_stages: int | str | None = None,
        backbone_lr: float = 0.01,
        backbone_bn: str = "frozen",
        validation_fraction: float = 0.0,
        patience: int | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        curve_every: int = CURVE_EVERY,
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
        self.train_stages = train_stages
        self.backbone_lr = backbone_lr
        self.backbone_bn = backbone_bn
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.curve_every = curve_every
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give a subclass's ``__init__`` that ends in ``**common`` the merged signature (see the class
        docstring), so that scikit-learn sees every parameter it passes on."""
        init = cls.__dict__.get("__init__")
        if init is not None:
            signature = _merged_signature(init, super(cls, cls).__init__)
            if signature is not None:
                init.__signature__ = signature
        super().__init_subclass__(**kwargs)

    @property
    def regime(self) -> str:
        """What trains, as records and tables name it: ``features`` (a head on frozen features),
        ``finetune:K`` (the last K backbone stages and the head), ``finetune:all`` (the whole
        backbone and the head) or ``end2end`` (the end-to-end track's network: backbone -> hash
        layer, :func:`hashbench.nets.end2end_net`).

        ``train_stages`` decides when it is set (0 is the features track, whatever ``track`` says);
        left at None, ``track`` does.
        """
        k = getattr(self, "train_stages", None)
        if k is None:
            return "end2end" if getattr(self, "track", "features") == "end2end" else "features"
        if k == "all":
            return "finetune:all"
        return "features" if int(k) == 0 else f"finetune:{int(k)}"

    @property
    def input(self) -> str:  # type: ignore[override]
        return "images" if self.regime in ("end2end", "finetune:all") else "features"

    def input_representation(self, representation: str) -> str:
        """The representation the fit and encode inputs come from, for a run on ``representation``:
        the activations in front of the trainable stages (``cnn:ARCH#cutK``) on ``finetune:K``, else
        ``representation`` itself."""
        regime = self.regime
        if regime.startswith("finetune:") and regime != "finetune:all":
            from ..features.cnn import CUT_SEP

            return f"cnn:{self.arch}{CUT_SEP}{int(self.train_stages)}"
        return representation

    def key_params(self) -> dict[str, Any]:
        """The parameters that name a record: all but the runtime ones, less the fine-tuning
        parameters where the regime does not fine-tune (so the features track's keys are those it
        had before they existed, and ``train_stages=0`` names the same records as the features
        track)."""
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in RUNTIME_PARAMS}
        if self.regime in ("features", "end2end"):
            for k in FINETUNE_PARAMS:
                params.pop(k, None)
            if self.regime == "features":
                params["track"] = "features"
        else:  # train_stages decides what trains; track changes nothing
            params.pop("track", None)
        return params

    def key_fields(self) -> dict[str, Any]:
        """The class defaults that ``epochs=None`` resolves to, and the version of a regime that trains
        a backbone (``end2end_version``: :data:`hashbench.nets.END2END_VERSION`; ``finetune_version``:
        :data:`hashbench.nets.FINETUNE_VERSION`)."""
        regime = self.regime
        fields: dict[str, Any] = {"class_defaults": {"default_epochs": dict(self.default_epochs)}}
        if regime == "end2end":
            fields["end2end_version"] = END2END_VERSION
        elif regime.startswith("finetune:"):
            fields["finetune_version"] = FINETUNE_VERSION
            fields["class_defaults"]["finetune_epochs"] = self.finetune_epochs
        return fields

    @property
    def _epochs_key(self) -> str:
        regime = self.regime
        return "finetune" if regime.startswith("finetune:") else regime

    # -- extension points -------------------------------------------------------------------------
    def prepare(self, ctx: FitContext) -> None:
        """Compute what the loss needs before training (e.g. a similarity matrix into ``ctx.extra``)."""

    def make_optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of the hash network (default Adam(lr))."""
        return torch.optim.Adam(params, lr=float(self.lr))

    def training_state(self, ctx: FitContext) -> dict[str, Any]:
        """Objects the loop trains and checkpoints; must contain ``"net"`` (default: net + optimizer)."""
        return {"net": self.net_, "optimizer": self.make_optimizer(self.param_groups())}

    def backbone_parameters(self) -> list[torch.nn.Parameter]:
        """The trainable backbone stages' parameters (fine-tuning regimes; empty otherwise)."""
        if not self.regime.startswith("finetune:"):
            return []
        return [q for q in self.net_.body[0].parameters() if q.requires_grad]

    def param_groups(self) -> Any:
        """What :meth:`make_optimizer` gets: the network's parameters, or on the fine-tuning regimes
        two groups, the head's (at ``lr``) and the backbone stages' (at ``backbone_lr`` x ``lr``,
        with ``lr_mult`` set for schedules that rescale groups)."""
        stages = self.backbone_parameters()
        if not stages:
            return self.net_.parameters()
        ids = {id(q) for q in stages}
        head = [q for q in self.net_.parameters() if id(q) not in ids]
        mult = float(self.backbone_lr)
        return [{"params": head}, {"params": stages, "lr": float(self.lr) * mult, "lr_mult": mult}]

    def batch_loss(self, ctx: FitContext, idx: torch.Tensor) -> torch.Tensor:
        """The scalar loss of a batch of training items (differentiable)."""
        raise NotImplementedError(f"{type(self).__name__} must implement batch_loss(ctx, idx)")

    def train_step(self, ctx: FitContext, idx: torch.Tensor) -> float:
        """One update on a batch; default: zero grads, loss.backward(), optimizer.step()."""
        opt = ctx.state["optimizer"]
        opt.zero_grad(set_to_none=True)
        loss = self.batch_loss(ctx, idx)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def validation_loss(self, ctx: FitContext) -> float:
        """Mean batch loss over the validation part (fixed order, eval mode, no grad)."""
        idx = torch.as_tensor(ctx.val_idx)
        parts = torch.split(idx, max(int(self.batch_size), 2))
        vals = [float(self.batch_loss(ctx, p)) * len(p) for p in parts]
        return sum(vals) / len(idx)

    def build_net(self, X: np.ndarray) -> torch.nn.Module:
        """The hash network for training input X: an MLP head (features track), trainable backbone stages
        and that head (fine-tuning regimes, :func:`hashbench.nets.finetune_net`) or a backbone and a hash
        layer (end-to-end)."""
        from .nets import end2end_net, feature_net, finetune_net

        regime = self.regime
        if regime == "features":
            return feature_net(X, int(self.n_bits), hidden=int(self.hidden), dropout=self.feature_dropout)
        if regime.startswith("finetune:"):
            device = resolve_device(self.device)
            if regime == "finetune:all":
                inputs = lambda idx: self.batch_inputs(X, idx, torch.device("cpu"))  # noqa: E731
            else:
                inputs = lambda idx: torch.from_numpy(np.ascontiguousarray(X[idx]))  # noqa: E731
            net, pooled = finetune_net(
                self.arch,
                int(self.n_bits),
                self.train_stages,
                inputs,
                len(X),
                weights=self.weights,
                hidden=int(self.hidden),
                dropout=self.feature_dropout,
                freeze_batchnorm=self.backbone_bn == "frozen",
            )
            self._pooled_init = pooled  # the reference features of this fit (FitContext.reference_features)
            return net.to(device)
        return end2end_net(self.arch, int(self.n_bits), self.weights)

    def batch_inputs(self, X: Any, idx: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
        """The network input of items ``idx`` of X: rows of the feature tensor, or preprocessed images."""
        if isinstance(X, torch.Tensor):
            return X[torch.as_tensor(idx, device=X.device)]
        from .nets import preprocess_images

        return preprocess_images(X[np.asarray(idx)], arch=self.arch).to(device)

    def validate_input(self, X: Any, *, fitting: bool = False) -> np.ndarray:
        """Features track: :func:`hashbench.methods.validate_features` as float32; end-to-end: uint8 images."""
        if self.input == "features":
            return validate_features(X, self, fitting=fitting).astype(np.float32, copy=False)
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

    def n_epochs(self) -> int:
        """The number of epochs a fit runs: ``epochs``, or ``default_epochs[track]`` when it is None."""
        if self.epochs is not None:
            return int(self.epochs)
        key = self._epochs_key
        if key == "finetune":
            return int(self.finetune_epochs or self.default_epochs["features"])
        return int(self.default_epochs[key])

    # -- the learning curve ---------------------------------------------------------------------
    @property
    def curve_monitored(self) -> bool:
        """Whether a fit scores validation MAP for the learning curve (given ``curve_labels``):
        ``curve_every > 0`` and a validation part (``validation_fraction > 0``)."""
        return int(getattr(self, "curve_every", 0) or 0) > 0 and float(self.validation_fraction) > 0

    def _codes_of(self, ctx: FitContext, idx: np.ndarray) -> np.ndarray:
        """bool codes of training items ``idx`` from the current network, batched as :meth:`project`
        batches ``X[idx]`` (so they are bitwise the codes ``encode(X[idx])`` gives). The caller sets
        eval mode and no grad."""
        bs = int(self.encode_batch_size["features" if self.regime == "features" else "end2end"])
        out = [
            (self.net_.logits(ctx.inputs(idx[start : start + bs])) >= 0).cpu().numpy()
            for start in range(0, len(idx), bs)
        ]
        return np.concatenate(out) if out else np.zeros((0, int(self.n_bits)), dtype=bool)

    def validation_map(self, ctx: FitContext, labels: np.ndarray) -> float:
        """Tie-aware MAP (:func:`hashbench.metrics.evaluate`) of the validation part as queries against
        the training part (the items the fit trains on) as database, with the current network's
        codes. Only the learning curve calls it (never model selection, never on queries)."""
        from ..metrics import evaluate

        val, fit = ctx.val_idx, ctx.train_idx
        scores = evaluate(self._codes_of(ctx, val), self._codes_of(ctx, fit), labels[val], labels[fit], precision_at=())
        return float(scores["map"])

    @staticmethod
    def learning_curve(history: Mapping[str, Any], final_val_map: float | None, n_val: int, n_fit: int) -> dict:
        """The ``curve_`` of a fit (and the ``curve`` of its record), plain JSON data.

        ``epochs`` 1..E with the mean training ``loss`` and the training ``seconds`` so far (the
        steps only: validation, the curve's scoring and checkpoints excluded) of each;
        ``val_epochs`` and ``val_map``: the validation MAP of the network as it was after those
        epochs; ``final_val_map``: that of the network the fit returns (after model selection, the
        weights of ``best_epoch``), None when no MAP was scored; ``n_val`` / ``n_fit``: the sizes of
        the validation part (queries) and the training part (database).
        """

        def clean(values: Iterable[float]) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in values]

        return {
            "epochs": list(range(1, int(history["epochs_run"]) + 1)),
            "loss": clean(history["loss"]),
            "seconds": clean(history["seconds"]),
            "val_epochs": [int(e) for e in history["monitor_epochs"]],
            "val_map": clean(history["monitor"]),
            "final_val_map": final_val_map,
            "best_epoch": history["best_epoch"],
            "n_val": int(n_val),
            "n_fit": int(n_fit),
            "metric": "map",
        }

    # -- the fit template ------------------------------------------------------------------------
    @fit_context
    def fit(self, X: Any, y: Any = None, *, curve_labels: Any = None) -> DeepHashMethod:
        """Train on training items X only (y is ignored: unsupervised). Returns self.

        ``curve_labels``: labels of X's items (class ids or multi-hot), used only to score the
        learning curve's validation MAP (:attr:`curve_monitored`); they never reach the loss or
        model selection, and the codes are bitwise those of a fit without them.
        """
        X = self.validate_input(X, fitting=True)
        if curve_labels is not None:
            curve_labels = np.asarray(curve_labels)
            if len(curve_labels) != len(X):
                raise InvalidInput(
                    f"{type(self).__name__}: curve_labels has {len(curve_labels)} rows for {len(X)} training items"
                )
        device = resolve_device(self.device)
        seed = int(self.random_state)
        with seeded(seed, device):
            generator = torch_generator(seed)
            net = self.build_net(X).to(device)
            self.net_ = net
            train_idx, val_idx = split_validation(len(X), self.validation_fraction, generator)
            data = torch.from_numpy(np.ascontiguousarray(X)).to(device) if self.input == "features" else X
            ctx = FitContext(self, data, device, generator, train_idx, val_idx)
            self.prepare(ctx)
            ctx.state = self.training_state(ctx)
            ckpt = None
            key = ""
            scored = curve_labels is not None and self.curve_monitored and len(val_idx) > 0
            monitor = (lambda: self.validation_map(ctx, curve_labels)) if scored else None
            if self.checkpoint_dir:
                identity = {"class": type(self).__name__, "version": self.version, **self.get_params(deep=False)}
                key = config_key(identity, X)
                ckpt = Path(self.checkpoint_dir) / f"{type(self).__name__.lower()}-{key[:20]}.pt"
            hist = train_epochs(
                lambda idx: self.train_step(ctx, idx),
                train_idx,
                epochs=self.n_epochs(),
                batch_size=int(self.batch_size),
                generator=generator,
                state=ctx.state,
                validate=(lambda: self.validation_loss(ctx)) if len(val_idx) else None,
                patience=self.patience,
                checkpoint_path=ckpt,
                checkpoint_every=int(self.checkpoint_every),
                checkpoint_key=key,
                monitor=monitor,
                monitor_every=int(getattr(self, "curve_every", 0) or 0),
                verbose=bool(self.verbose),
                desc=type(self).__name__,
            )
            final = run_isolated(monitor, generator, ctx.state) if monitor is not None else None
        self.net_.eval()
        self._pooled_init = None
        self.history_ = hist.as_dict()
        self.curve_ = self.learning_curve(self.history_, final, len(val_idx), len(train_idx))
        if self.input == "features":
            self.n_features_in_ = X.shape[1]
        else:
            self.image_shape_ = tuple(X.shape[1:])
        self.resolved_params_ = dict(ctx.resolved)
        return self

    def project(self, X: Any) -> np.ndarray:
        """Pre-activation outputs W body(x) + c (n, n_bits), float32; eval mode, in batches, no grad.

        ``encode`` = project >= 0, the sign of the continuous code (sign(0) = +1).
        """
        check_is_fitted(self, "net_")
        X = self.validate_input(X)
        net = self.net_
        net.eval()
        device = next(net.parameters()).device
        bs = int(self.encode_batch_size["features" if self.regime == "features" else "end2end"])
        out = []
        with torch.no_grad():
            for start in range(0, len(X), bs):
                chunk = X[start : start + bs]
                if self.input == "features":
                    xb = torch.from_numpy(np.ascontiguousarray(chunk)).to(device)
                else:
                    xb = self.batch_inputs(X, np.arange(start, start + len(chunk)), device)
                out.append(net.logits(xb).float().cpu().numpy())
        if not out:
            return np.zeros((0, int(self.n_bits)), dtype=np.float32)
        return np.concatenate(out)
