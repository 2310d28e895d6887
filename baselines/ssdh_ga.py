"""SSDH+GA: SSDH (Yang et al., IJCAI 2018) trained with gradient attention (Huang et al., ICCV 2019).

The UHGA paper's Table 3 row "SSDH+GA": SSDH's similarity matrix, network, loss and optimiser
(:mod:`hashbench_baselines.ssdh`), every update made by
:meth:`hashbench_baselines.gradient_attention.GradientAttention.step` (the technique and its
departures from the reference code are documented in :mod:`hashbench_baselines.gradient_attention`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hashbench.deep import FitContext
from hashbench.methods import Boolean

from .gradient_attention import ATTENTION_CONSTRAINTS, AttentionTrained
from .ssdh import SSDH, ssdh_pair_loss


class SSDHGA(AttentionTrained, SSDH):
    """SSDH trained with gradient attention (UHGA paper, Table 3 "SSDH+GA").

    SSDH's similarity matrix, network, loss and optimiser (Adam; see :class:`hashbench_baselines.ssdh.SSDH`),
    with every update made by :meth:`GradientAttention.step`: the attention-weighted gradient, the
    Adam step (replayed functionally for the look-ahead), then the attention net's Adam step.

    Extra parameters: attention_lr (0.08, GA's CIFAR value), attention_hidden (100), and
    paired_batches: True (default) pairs each batch A with a second, independently drawn batch B of
    the same size and trains on the A x B similarity block, as GA does; False trains on A x A,
    SSDH's own pairing (the GA step then treats U as both sides).
    """

    version = 2  # 2: chunked attention net (same values to round-off; GA steps 1.2-2x faster at batch 24, 4-10x at 128)
    display_rank = 60  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#4a2377", ">")  # a darker shade of SSDH's hue: the pair reads together
    parameter_constraints = {**SSDH.parameter_constraints, **ATTENTION_CONSTRAINTS, "paired_batches": [Boolean()]}

    def __init__(
        self,
        *args: Any,
        attention_lr: float = 0.08,
        attention_hidden: int = 100,
        paired_batches: bool = True,
        **common: Any,
    ):
        super().__init__(*args, **common)
        self.attention_lr = attention_lr
        self.attention_hidden = attention_hidden
        self.paired_batches = paired_batches

    def training_state(self, ctx: FitContext) -> dict:
        """SSDH's net and Adam, plus the attention net and its optimiser."""
        return self.attach_attention(ctx, super().training_state(ctx))

    def _pair_loss(self, P: Tensor, S: Tensor) -> Tensor:
        return ssdh_pair_loss(P, S, int(self.n_bits))

    def train_step(self, ctx: FitContext, idx: Tensor) -> float:
        """One GA iteration on batch A (and an independently drawn batch B when ``paired_batches``)."""
        i = idx.to(ctx.device)
        if self.paired_batches:
            perm = torch.randperm(len(ctx.train_idx), generator=ctx.generator)[: len(idx)]
            idx_b = torch.as_tensor(ctx.train_idx)[perm]
            S = ctx.extra["S"][i][:, idx_b.to(ctx.device)]
            x_b = ctx.inputs(idx_b)
        else:
            S, x_b = ctx.extra["S"][i][:, i], None
        return ctx.extra["ga"].step(ctx.inputs(idx), x_b, S, self._pair_loss).loss
