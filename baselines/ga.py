"""Deprecated module path, kept for one release: the gradient-attention technique moved to
:mod:`hashbench_baselines.gradient_attention` and the ``ssdh+ga`` method to
:mod:`hashbench_baselines.ssdh_ga` (entry point ``hashbench_baselines.ssdh_ga:SSDHGA``)."""

from __future__ import annotations

from .gradient_attention import (  # noqa: F401
    AttentionNet,
    AttentionTrained,
    GAStep,
    GradientAttention,
    attention_weights,
    functional_step,
    preprocess_gradient,
    reweighted_code_gradients,
)
from .ssdh import ssdh_pair_loss  # noqa: F401
from .ssdh_ga import SSDHGA  # noqa: F401
