"""UHGA: Unsupervised Hashing with Gradient Attention (Jiang, Wang, Cheng, Du, Li, Symmetry 12(7):1193, 2020).

``UHGA`` ("Ours" in the paper's Table 3) trains the hash network with the plain gradient;
``UHGAGA`` ("Ours+GA", the full method of Tables 2 and 4) trains it with GA's gradient attention
(:mod:`hashbench_baselines.gradient_attention`). Both share the similarity matrix, the loss and the schedule.

**Reconstruction.** Only the paper's abstract, outline and the Algorithm 1 box (symbols stripped)
were readable (docs/METHODS.md section 10); equations (2)-(18) were rebuilt as follows [infer]:

- (1) codes u = tanh(beta W^T fc7(x) + c), b = sign(.), with GA's annealed scale
  beta = (1 + 0.005 t)^0.5 updated every 200 iterations (Algorithm 1 follows GA's loop step for step).
- (2) cosine distance d_ij = 1 - f_i.f_j / (|f_i| |f_j|) of the training items' reference features
  (AlexNet fc7 after ReLU, eval mode, before training, on the end-to-end track; the representation's
  features on the features track).
- (3) similarity S_ij = 1 if cos(f_i, f_j) >= ``sim_threshold`` (i.e. d_ij <= 1 - sim_threshold),
  else 0 (:func:`threshold_similarity`). A {1, 0} matrix because GA's likelihood loss expects
  s_ij in {0, 1}; the SSDH-style three-way matrix would need a loss that ignores pairs.
- (4)-(8) GA's pairwise likelihood loss with s_ij := S_ij (:func:`pairwise_likelihood_loss`):
  theta_ij = gamma u_i.v_j, w_ij = 1 + (rho - 1) S_ij,
  L = sum_ij w_ij [log(1 + e^{theta_ij}) - S_ij theta_ij] / sum_ij w_ij, over pairs of two
  independently shuffled batches A, B (GA's sampling).
- (9)-(18) GA's attention net, re-weighted code gradients (16)-(17), update (18) and the
  look-ahead update of the attention net: :class:`hashbench_baselines.gradient_attention.GradientAttention`.

**Table 2's swept parameter** (0, 0.1, ..., 0.9; the text does not name it) is read as the
cosine-*similarity* threshold ``sim_threshold`` of (3). This reading explains the published pattern
(16-bit CIFAR-10 collapses to chance at 0 and 0.1 while 32+ bits train; from 0.7 up every length
degrades):

- at a low threshold most pairs are "similar" (all of them at 0 for non-negative fc7 features; about
  half if the features are centred or taken before the ReLU). The loss then mostly pulls codes
  together, and a similar pair stops pulling only once gamma u.v reaches a few units
  (sigmoid(3) = 0.95), i.e. u.v >~ 3 / gamma = 15 for gamma = 0.2. A 16-bit code cannot get there
  even when all codes are identical (gamma K = 3.2, sigmoid 0.96), so the similar pairs keep
  pulling until the codes collapse; with 32+ bits the pairs are satisfied while codes still differ
  in many bits (the residual pull at full agreement falls as e^{-gamma K}: 0.04, 0.002, 3e-6 for
  16, 32, 64 bits), so the few dissimilar pairs keep the structure.
- at 0.7 and above only near-duplicates are "similar": the loss is almost pure repulsion with little
  semantic attraction, so every length degrades, gradually, short codes most.
- the other reading, a cosine-*distance* threshold (S_ij = 1 iff d_ij <= tau), puts the all-similar
  end at 0.9 and the pure-repulsion end at 0. It predicts collapse at the high end and a gradual
  loss at 0, the opposite of Table 2. gamma is ruled out too: gamma = 0 makes the loss constant.
- check on sklearn digits pixels (500 training items, UHGA without GA, 30 epochs, MAP over 1,697
  items; similar fraction in brackets): 16 bits 0.10 / 0.35 / 0.66 / 0.55 / 0.45 and 32 bits
  0.10 / 0.58 / 0.72 / 0.60 / 0.52 at thresholds 0 (100%) / 0.7 (46%) / 0.85 (6%) / 0.95 (0.6%) /
  1.0 (self-pairs only): many similar pairs hurt 16 bits far more than 32, and pure repulsion (1.0,
  the distance reading's tau = 0) degrades gradually without collapsing.

**The threshold is derived from the training features** unless set (``sim_threshold=None``, the
default): it is the ``sim_quantile`` = 0.9 quantile of the cosine similarities of the distinct
training pairs (i < j), so about 10% of the pairs are similar whatever the representation
(:func:`derived_threshold`). The paper gives no rule (METHODS.md 10: Table 2 sweeps the parameter
on AlexNet fc7, whose plateau 0.2-0.4 is an absolute value that suits fc7 only: on GIST or raw
pixels, whose similarities are all high, 0.3 makes nearly every pair similar and the codes
collapse). The quantile is what the earlier collapse warning suggested and what the committed
CIFAR-10 GIST runs applied by hand (``--set uhga.sim_threshold=0.83``); on the digits protocol's
500 training pixels it gives 0.819 (the committed digits runs used 0.82 by hand). The resolved value is
``resolved_params_["sim_threshold"]`` (stored in the record); ``similarity_info_["frac_similar"]``
says how many pairs are similar. A threshold set by hand that makes most pairs similar warns, with
the derived value as the fix.

Other defaults follow GA's CIFAR-10 settings (docs/METHODS.md 9.2, 9.4): gamma = 0.2, rho = 10,
attention lr 0.08, batch 128 (x2), SGD with Nesterov momentum 0.9, weight decay 5e-4, lr x10 on the
hash layer, lr halved every 30 epochs. Departure: on the features track (a freshly initialised MLP
head instead of a pretrained backbone) ``lr`` defaults to 1e-2 rather than GA's 1e-3, which barely
moves a new head in 50 epochs. ``positive_weight`` rho: GA's value 10 balances supervised CIFAR
pairs (10% similar); the UHGA paper's weighting is unknown. Schedule: 10 epochs on both tracks by
default (SSDH's reference schedule; the paper's is unknown). GA's attention net sees every (pair, bit)
of the batch, so a step costs O(batch^2 * bits): on a CPU, ``batch_size=32`` keeps a CIFAR-10
features-track fit to minutes (README.md gives the measured times).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from hashbench.deep import DeepHashMethod, FitContext
from hashbench.errors import InvalidInput
from hashbench.methods import Interval, registered_name
from hashbench.methods.similarity import cosine_distance_matrix

from .gradient_attention import ATTENTION_CONSTRAINTS, AttentionTrained


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------
def threshold_similarity(distances: np.ndarray, sim_threshold: float) -> np.ndarray:
    """UHGA's similarity matrix (reconstructed eq. 3) from cosine distances: int8, 1 where the cosine
    similarity 1 - d_ij is >= ``sim_threshold`` (d_ij <= 1 - sim_threshold), else 0."""
    D = np.asarray(distances)
    return (D <= 1.0 - float(sim_threshold)).astype(np.int8)


def derived_threshold(features: np.ndarray, quantile: float = 0.9, block_size: int = 1024) -> float:
    """The cosine-similarity threshold at which a ``1 - quantile`` share of the training pairs is similar.

    Over the n (n - 1) / 2 distinct pairs i < j of the rows of ``features`` (cosine distances as
    :func:`similarity_matrix` computes them: float32, in the same row blocks), let d* be the k-th smallest
    distance with k = max(1, ceil((1 - quantile) n (n - 1) / 2)); the threshold is 1 - d*, so
    :func:`threshold_similarity` marks at least k distinct pairs similar (more only on ties). With
    ``quantile = 0.9``: the 90th percentile of the pair similarities. Exact (no sampling), O(n^2)
    float32 memory for the pair values.
    """
    F = np.asarray(features, dtype=np.float32)
    n = F.shape[0]
    if n < 2:
        raise InvalidInput(f"deriving a similarity threshold needs at least 2 training items, got {n}")
    if not 0.0 < float(quantile) < 1.0:
        raise InvalidInput(f"sim_quantile must be in (0, 1), got {quantile!r}")
    m = n * (n - 1) // 2
    pairs = np.empty(m, dtype=np.float32)
    pos = 0
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        D = cosine_distance_matrix(F[start:stop], F)
        for r in range(stop - start):
            row = D[r, start + r + 1 :]
            pairs[pos : pos + len(row)] = row
            pos += len(row)
    k = max(1, math.ceil((1.0 - float(quantile)) * m))
    d_star = float(np.partition(pairs, k - 1)[k - 1])
    return 1.0 - d_star


def similarity_matrix(features: np.ndarray, sim_threshold: float, block_size: int = 1024) -> np.ndarray:
    """:func:`threshold_similarity` of all pairs of rows of ``features`` (n, d), int8 (n, n), in row blocks."""
    F = np.asarray(features, dtype=np.float32)
    n = F.shape[0]
    S = np.empty((n, n), dtype=np.int8)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        D = cosine_distance_matrix(F[start:stop], F)
        # A row's distance to itself is 0 by definition (the blocked product only rounds to it).
        D[np.arange(stop - start), np.arange(start, stop)] = 0.0
        S[start:stop] = threshold_similarity(D, sim_threshold)
    return S


def pairwise_likelihood_loss(
    P: torch.Tensor, S: torch.Tensor, gamma: float = 0.2, positive_weight: float = 1.0
) -> torch.Tensor:
    """GA's weighted pairwise likelihood loss (GA "eq. 8"; UHGA eq. 4-8 reconstructed).

    theta = gamma P, w = 1 + (rho - 1) S; L = sum w [log(1 + e^theta) - S theta] / sum w, with P the
    code inner products (n, m) and S in {0, 1} (n, m). softplus keeps log(1 + e^theta) finite.
    """
    S = S.to(P.dtype)
    theta = float(gamma) * P
    w = 1.0 + (float(positive_weight) - 1.0) * S
    return (w * (torch.nn.functional.softplus(theta) - S * theta)).sum() / w.sum()


# ----------------------------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------------------------
class _Counter:
    """The iteration count of a fit, checkpointed with the rest of the training state."""

    def __init__(self) -> None:
        self.t = 0

    def state_dict(self) -> dict:
        return {"t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])


class UHGA(DeepHashMethod):
    """UHGA without gradient attention (Table 3 "Ours"); see the module docstring.

    Parameters: those of :class:`hashbench.deep.DeepHashMethod` plus
        sim_threshold: cosine-similarity threshold of S (Table 2's parameter, our reading); None
            (default): derived from the training features as their ``sim_quantile`` quantile.
        sim_quantile: the quantile of the training-pair similarities that ``sim_threshold=None``
            takes (0.9: about 10% of the pairs similar).
        gamma: scale of the inner products in the loss (GA's sigmoid_param), 0.2.
        positive_weight: rho, weight of similar pairs, 10.
        lr: base learning rate (None: 1e-3 end-to-end as GA, 1e-2 on the features track).
        hash_lr_mult: learning-rate multiplier of the hash layer (GA: 10).
        momentum, weight_decay: SGD with Nesterov momentum (GA: 0.9, 5e-4).
        lr_step_epochs: the learning rate halves every this many epochs (GA: 30).
        scale_growth, scale_every: beta = (1 + scale_growth t)^0.5, updated every scale_every
            iterations (GA: 0.005, 200); scale_growth = 0 keeps beta = 1.

    Fitted: ``net_``, ``history_``, ``similarity_info_`` (threshold used, fraction of similar pairs),
    ``resolved_params_`` (``{"sim_threshold": value}`` when it was derived, else empty).
    """

    version = 1
    display_rank = 90  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#e0474c", "P")  # colour and marker in every figure
    default_epochs = {"features": 10, "end2end": 10}
    test_params = {"epochs": 2, "hidden": 16, "batch_size": 16, "device": "cpu"}
    use_attention = False
    parameter_constraints = {
        **DeepHashMethod.parameter_constraints,
        "lr": [None, Interval(float, 0, None, closed="neither")],
        "sim_threshold": [None, Interval(float, -1, 1)],
        "sim_quantile": [Interval(float, 0, 1, closed="neither")],
        "gamma": [Interval(float, 0, None, closed="neither")],
        "positive_weight": [Interval(float, 0, None, closed="neither")],
        "hash_lr_mult": [Interval(float, 0, None, closed="neither")],
        "momentum": [Interval(float, 0, 1, closed="left")],
        "weight_decay": [Interval(float, 0, None)],
        "lr_step_epochs": [Interval(int, 1, None)],
        "scale_growth": [Interval(float, 0, None)],
        "scale_every": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *args: Any,
        batch_size: int = 128,
        lr: float | None = None,
        sim_threshold: float | None = None,
        sim_quantile: float = 0.9,
        gamma: float = 0.2,
        positive_weight: float = 10.0,
        hash_lr_mult: float = 10.0,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lr_step_epochs: int = 30,
        scale_growth: float = 0.005,
        scale_every: int = 200,
        **common: Any,
    ):
        super().__init__(*args, batch_size=batch_size, lr=lr, **common)
        self.sim_threshold = sim_threshold
        self.sim_quantile = sim_quantile
        self.gamma = gamma
        self.positive_weight = positive_weight
        self.hash_lr_mult = hash_lr_mult
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_step_epochs = lr_step_epochs
        self.scale_growth = scale_growth
        self.scale_every = scale_every

    # -- parameters ---------------------------------------------------------------------------
    def _base_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 1e-3 if self.regime == "end2end" else 1e-2

    # -- extension points ---------------------------------------------------------------------
    def prepare(self, ctx: FitContext) -> None:
        """S from the reference features at the set or derived threshold; the iterations per epoch."""
        F = ctx.reference_features()
        if self.sim_threshold is None:
            threshold = derived_threshold(F, float(self.sim_quantile))
            ctx.resolved["sim_threshold"] = threshold
        else:
            threshold = float(self.sim_threshold)
        S = similarity_matrix(F, threshold)
        ctx.extra["S"] = torch.from_numpy(S).to(ctx.device)
        n = S.shape[0]
        frac = float(np.count_nonzero(S)) / (float(n) * n)
        self.similarity_info_ = {"sim_threshold": threshold, "frac_similar": frac}
        if self.sim_threshold is not None and frac > 0.5:
            suggested = derived_threshold(F, float(self.sim_quantile))
            warnings.warn(
                f"{type(self).__name__}: {frac:.1%} of training pairs count as similar at "
                f"sim_threshold={self.sim_threshold}, so the codes will collapse toward one value. Leave "
                f"sim_threshold unset to derive it from the features (here the {self.sim_quantile:g} quantile "
                f"of pair similarity is {suggested:.2f}), e.g. --set {registered_name(type(self))}"
                f".sim_threshold={suggested:.2f}",
                stacklevel=4,
            )
        ctx.extra["iters_per_epoch"] = max(1, math.ceil(len(ctx.train_idx) / int(self.batch_size)))

    def make_optimizer(self, params: Any = None) -> torch.optim.Optimizer:
        """GA's SGD: Nesterov momentum, weight decay, the hash layer at ``hash_lr_mult`` x the base lr."""
        net = self.net_
        hash_params = [q for q in net.hash_layer.parameters() if q.requires_grad]
        hash_ids = {id(q) for q in hash_params}
        stages = self.backbone_parameters()  # fine-tuning: the trainable backbone stages, at backbone_lr x
        stage_ids = {id(q) for q in stages}
        body = [q for q in net.parameters() if q.requires_grad and id(q) not in hash_ids and id(q) not in stage_ids]
        lr = self._base_lr()
        groups = [{"params": hash_params, "lr": lr * float(self.hash_lr_mult), "lr_mult": float(self.hash_lr_mult)}]
        if body:
            groups.insert(0, {"params": body, "lr": lr, "lr_mult": 1.0})
        if stages:
            mult = float(self.backbone_lr)
            groups.insert(0, {"params": stages, "lr": lr * mult, "lr_mult": mult})
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=float(self.momentum),
            nesterov=float(self.momentum) > 0,
            weight_decay=float(self.weight_decay),
        )

    def training_state(self, ctx: FitContext) -> dict:
        """Net, optimiser and the iteration counter (the lr schedule and the tanh scale read it)."""
        return {"net": self.net_, "optimizer": self.make_optimizer(), "counter": _Counter()}

    def _scale(self, t: int) -> float:
        """GA's annealed tanh scale beta = (1 + growth t')^0.5, t' = t rounded down to scale_every."""
        step = int(self.scale_every)
        return math.sqrt(1.0 + float(self.scale_growth) * (t // step) * step)

    def _loss(self, P: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        return pairwise_likelihood_loss(P, S, float(self.gamma), float(self.positive_weight))

    def batch_loss(self, ctx: FitContext, idx: torch.Tensor) -> torch.Tensor:
        """The loss of a batch with itself (validation); training pairs two batches (:meth:`train_step`)."""
        t = ctx.state["counter"].t if "counter" in ctx.state else 0
        u = ctx.codes(idx, self._scale(t))
        i = idx.to(ctx.device)
        return self._loss(u @ u.T, ctx.extra["S"][i][:, i])

    def _second_batch(self, ctx: FitContext, size: int) -> torch.Tensor:
        """GA's batch B: ``size`` training items drawn from an independent permutation."""
        perm = torch.randperm(len(ctx.train_idx), generator=ctx.generator)[:size]
        return torch.as_tensor(ctx.train_idx)[perm]

    def _schedule(self, ctx: FitContext) -> float:
        """Set the step-decayed learning rates for this iteration; return the tanh scale."""
        t = ctx.state["counter"].t
        epoch = t // ctx.extra["iters_per_epoch"]
        factor = 0.5 ** (epoch // int(self.lr_step_epochs))
        for group in ctx.state["optimizer"].param_groups:
            group["lr"] = self._base_lr() * group["lr_mult"] * factor
        return self._scale(t)

    def train_step(self, ctx: FitContext, idx: torch.Tensor) -> float:
        """One iteration on batch A and an independently drawn batch B (GA's sampling)."""
        scale = self._schedule(ctx)
        idx_b = self._second_batch(ctx, len(idx))
        S = ctx.extra["S"][idx.to(ctx.device)][:, idx_b.to(ctx.device)]
        xa, xb = ctx.inputs(idx), ctx.inputs(idx_b)
        if self.use_attention:
            loss = ctx.extra["ga"].step(xa, xb, S, self._loss).loss
        else:
            opt = ctx.state["optimizer"]
            opt.zero_grad(set_to_none=True)
            U, V = self.net_(xa, scale), self.net_(xb, scale)
            loss_t = self._loss(U @ V.T, S)
            loss_t.backward()
            opt.step()
            loss = float(loss_t.detach())
        ctx.state["counter"].t += 1
        return loss


class UHGAGA(AttentionTrained, UHGA):
    """UHGA with gradient attention (Table 3 "Ours+GA", the full method of Tables 2 and 4).

    Parameters: those of :class:`UHGA` plus attention_lr (Adam lr of the attention net, GA: 0.08)
    and attention_hidden (width of its hidden layer, GA: 100). Every hash-net step is
    :meth:`hashbench_baselines.gradient_attention.GradientAttention.step`: attention-weighted
    gradient, SGD step, then the attention net's Adam step on the look-ahead loss (same batches,
    same dropout masks).
    """

    version = 2  # 2: chunked attention net (same values to round-off; GA steps 1.2-2x faster at batch 24, 4-10x at 128)
    display_rank = 100  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#8b0000", "X")  # a darker shade of UHGA's hue: the pair reads together
    use_attention = True
    parameter_constraints = {**UHGA.parameter_constraints, **ATTENTION_CONSTRAINTS}

    def __init__(
        self,
        *args: Any,
        attention_lr: float = 0.08,
        attention_hidden: int = 100,
        **common: Any,
    ):
        super().__init__(*args, **common)
        self.attention_lr = attention_lr
        self.attention_hidden = attention_hidden

    def training_state(self, ctx: FitContext) -> dict:
        """UHGA's state plus the attention net, stepping through the annealed tanh scale."""
        state = super().training_state(ctx)
        net = self.net_

        def forward(values: dict, x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(net, values, (x, self._scale(state["counter"].t)))

        return self.attach_attention(ctx, state, forward)
