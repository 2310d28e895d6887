"""SSDH: Semantic Structure-based unsupervised Deep Hashing (Yang, Deng, Liu, Liu, Tao, IJCAI 2018).

1. Semantic structure (paper Sec. 3.1; survey eq. 58): cosine distances of pretrained fc7 features
   of the training images, a histogram mode m, mirrored half-Gaussian fits left and right of m, and
   S_ij = +1 below mu_l - alpha sigma_l, -1 above mu_r + beta sigma_r, 0 (ignored) between
   (:func:`hashbench.methods.similarity.semantic_similarity`).
2. Hash network: backbone fc7 -> fc8 (4096 -> K) -> tanh, h in (-1, 1)^K; codes b = sign(h).
3. Loss (survey eq. 59; official ``main.py``): J = mean over the B x B batch pairs of
   |S_ij| (h_i.h_j / K - S_ij)^2 (:func:`ssdh_loss`), minimised by Adam(lr 1e-3, eps 1.0), batch 24,
   10 epochs over a random permutation of the training set (the reference schedule).

Tracks: ``end2end`` (the paper: VGG16 fine-tuned on 224x224 images, S from the pretrained VGG16
fc7 in eval mode, before training) and ``features`` (fast track: S from the representation's
features, and an MLP hash head on them, see ``hashbench.nets``).

Departures from the reference code (yangerkun/IJCAI2018_SSDH, HEAD 49d1938):
- ``rule="paper"`` is the HEAD / paper rule; ``rule="original"`` reproduces the first release
  (994c03f), where every pair beyond mu_l - sigma_l is dissimilar;
- no data augmentation: images are resized to 224 (as the official ``imresize``);
- features-track schedule: the reference's 10 epochs (``pre_epochs = 10``) on both tracks (about
  0.7 s of one CPU core per epoch on 5,000 x 512 features; ``python -m benchmarks.deep``), which
  also keeps the gradient-attention variant affordable on a CPU, with Adam eps 1e-8
  instead of 1.0. eps = 1.0 turns Adam into plain SGD at lr 1e-3 for these small gradients, which
  fine-tunes a pretrained backbone gently but barely moves a freshly initialised head: on the
  ``digits`` protocol (pixels, 32 bits) MAP is 0.364 with eps 1.0 against 0.640 with 1e-8 (LSH
  0.508; 20 or 100 epochs give 0.636). Set ``adam_eps=1.0`` for the reference optimiser; the
  end-to-end track keeps it by default.
- the last batch of an epoch may be smaller than 24 (the reference drops it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from hashbench.deep import DeepHashMethod, FitContext
from hashbench.methods import Interval, Options
from hashbench.methods.similarity import RULES, semantic_similarity


def ssdh_loss(u: torch.Tensor, S: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
    """SSDH's pairwise loss: mean over pairs (i, j) of |S_ij| (u_i.v_j / K - S_ij)^2 (survey eq. 59).

    u: (a, K) continuous codes; v: (b, K) codes of a second batch (None: v = u, the SSDH batch);
    S: (a, b) similarity block in {+1, 0, -1} (any dtype). The mean runs over all a*b entries,
    zeros included, as the official ``reduce_mean``; so the gradient w.r.t. u (v = u, S symmetric)
    is 4 / (a^2 K) (|S| o (u u^T / K - S)) u.
    """
    v = u if v is None else v
    return ssdh_pair_loss(u @ v.T, S, u.shape[1])


def ssdh_pair_loss(P: torch.Tensor, S: torch.Tensor, n_bits: int) -> torch.Tensor:
    """SSDH's loss as a function of the inner products P = U V^T: mean |S| (P / K - S)^2.

    The form gradient attention needs (it re-weights dL/dP); :func:`ssdh_loss` is this on u v^T.
    """
    S = S.to(dtype=P.dtype)
    return (S.abs() * (P / n_bits - S) ** 2).mean()


class SSDH(DeepHashMethod):
    """SSDH (Yang et al., IJCAI 2018): a pairwise loss toward a similarity mined from fc7 distances.

    Parameters: those of :class:`DeepHashMethod`, plus

    alpha, beta: the threshold widths (2, 2); bins: histogram bins on [0, 1) (100);
    rule: "paper" or "original" (see module docstring); adam_eps: Adam's epsilon (None = 1.0 on the
    end-to-end track, the reference; 1e-8 on the features track).

    Fitted: ``net_``, ``history_``, ``similarity_info_`` (mode, fits, thresholds, fractions of
    similar / dissimilar pairs).
    """

    version = 1
    display_rank = 50  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#9467bd", "<")  # colour and marker in every figure
    default_epochs = {"features": 10, "end2end": 10}
    test_params = {"epochs": 2, "hidden": 16, "batch_size": 16, "device": "cpu"}
    parameter_constraints = {
        **DeepHashMethod.parameter_constraints,
        "adam_eps": [None, Interval(float, 0, None, closed="neither")],
        "alpha": [Interval(float, 0, None)],
        "beta": [Interval(float, 0, None)],
        "bins": [Interval(int, 1, None)],
        "rule": [Options(*RULES)],
    }

    def __init__(
        self,
        *args: Any,
        arch: str = "vgg16",
        adam_eps: float | None = None,
        alpha: float = 2.0,
        beta: float = 2.0,
        bins: int = 100,
        rule: str = "paper",
        **common: Any,
    ):
        super().__init__(*args, arch=arch, **common)
        self.adam_eps = adam_eps
        self.alpha = alpha
        self.beta = beta
        self.bins = bins
        self.rule = rule

    def prepare(self, ctx: FitContext) -> None:
        """SSDH's three-way similarity matrix of the reference features, on the device."""
        S, info = semantic_similarity(
            ctx.reference_features(), bins=int(self.bins), alpha=self.alpha, beta=self.beta, rule=self.rule
        )
        ctx.extra["S"] = torch.from_numpy(S).to(ctx.device)
        self.similarity_info_ = info

    def make_optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """Adam(lr, eps): eps 1.0 end to end (the reference), 1e-8 on the features track, or ``adam_eps``."""
        eps = self.adam_eps
        if eps is None:
            eps = 1.0 if self.regime == "end2end" else 1e-8
        return torch.optim.Adam(params, lr=float(self.lr), eps=float(eps))

    def batch_loss(self, ctx: FitContext, idx: torch.Tensor) -> torch.Tensor:
        """:func:`ssdh_loss` of the batch's codes against its block of S."""
        h = ctx.codes(idx)
        i = idx.to(ctx.device)
        return ssdh_loss(h, ctx.extra["S"][i][:, i])
