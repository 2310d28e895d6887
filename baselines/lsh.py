"""LSH: random Gaussian projections of centred features, the floor every learned method must beat.

Charikar (STOC 2002) sign-random-projection hashing. The features are centred with the training
mean so that bits are roughly balanced (as in the ITQ paper's LSH baseline).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashbench.methods import N_BITS, SEED, HashMethod, fit_context, validate_features


class LSH(HashMethod):
    """Sign of random Gaussian projections: h(x) = W^T (x - mean), W ~ N(0, 1)."""

    version = 1
    display_rank = 0  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#7f7f7f", "o")  # grey: the data-independent floor
    parameter_constraints = {"n_bits": [N_BITS], "random_state": [SEED]}

    def __init__(self, n_bits: int = 32, random_state: int = 0):
        self.n_bits = n_bits
        self.random_state = random_state

    @fit_context
    def fit(self, X: Any, y: Any = None) -> LSH:
        """Draw the projections and learn the training mean."""
        X = validate_features(X, self, fitting=True)
        rng = np.random.default_rng(self.random_state)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        self.projection_ = rng.standard_normal((X.shape[1], int(self.n_bits)))
        return self

    def project(self, X: Any) -> np.ndarray:
        """(x - mean) W, the projections whose signs are the bits."""
        X = validate_features(X, self)
        return (X - self.mean_) @ self.projection_
