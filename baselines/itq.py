"""ITQ: Iterative Quantization (Gong & Lazebnik, CVPR 2011; TPAMI 35(12), 2013).

Centre the training features, project on the top ``n_bits`` principal directions (V = X W), then
find the orthogonal rotation R minimising the quantisation loss Q(B, R) = ||B - V R||_F^2 by
alternating B = sgn(V R) and the orthogonal Procrustes solution R = U_A U_B^T from the SVD
B^T V = U_B S U_A^T (paper Sec. 3, eq. 2-4). R starts as a random orthogonal matrix. Codes are
b = [(x - mean) W R >= 0].

Each half-step minimises Q over one variable with the other fixed, so Q never increases; the
sequence is kept in ``quantization_loss_`` (entry 0 at the random start, entry t after the t-th
rotation update) and tested in ``tests/test_shallow.py``.

Departures from the reference code (ZJULearning/MatlabFunc ``ITQ_learn.m`` / Gong's ``ITQ.m``):
- the data are centred before projection (``ITQ_learn.m`` projects the un-centred data, while Gong's
  original demo centres; the paper centres);
- exactly ``n_iter`` = 50 rotation updates (the MATLAB loop ``for iter=0:n_iter`` makes 51);
- bit = (h >= 0) (hashbench's convention) where the reference uses h > 0; h is exactly 0 only on a
  measure-zero set;
- when ``n_bits`` exceeds the feature dimension, PCA keeps all d directions and the rest of the
  bits come from a random Gaussian projection of the centred data (the MATLAB code fails there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigh

from hashbench.methods import N_BITS, SEED, HashMethod, Interval, fit_context, validate_features


def pca_directions(Xc: np.ndarray, n_components: int) -> np.ndarray:
    """The top ``n_components`` eigenvectors (d, n_components) of the covariance of centred ``Xc``.

    Columns are ordered by decreasing eigenvalue. Only the needed eigenpairs are computed, which
    keeps 4096-d features fast.
    """
    d = Xc.shape[1]
    k = min(int(n_components), d)
    cov = Xc.T @ Xc / max(Xc.shape[0] - 1, 1)
    evals, evecs = eigh(cov, subset_by_index=[d - k, d - 1])
    order = np.argsort(evals, kind="stable")[::-1]
    return evecs[:, order]


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random n x n orthogonal matrix (SVD of a Gaussian matrix, as the reference code does)."""
    u, _, vt = np.linalg.svd(rng.standard_normal((n, n)))
    return u @ vt


def quantization_loss(V: np.ndarray, R: np.ndarray) -> float:
    """ITQ's objective ||sgn(V R) - V R||_F^2 at the optimal B for rotation R (paper eq. 2)."""
    Z = V @ R
    B = np.where(Z >= 0, 1.0, -1.0)
    return float(np.sum((B - Z) ** 2))


def itq_rotation(V: np.ndarray, n_iter: int, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Learn the ITQ rotation for projected data V (n, c).

    Returns R and the losses [Q at the random start, Q after update 1, ..., Q after update n_iter].
    """
    c = V.shape[1]
    R = random_orthogonal(c, rng)
    losses = [quantization_loss(V, R)]
    for _ in range(n_iter):
        B = np.where(V @ R >= 0, 1.0, -1.0)
        # Orthogonal Procrustes: maximise tr(B^T V R) over orthogonal R.
        U_b, _, Vt_a = np.linalg.svd(B.T @ V)
        R = (U_b @ Vt_a).T
        losses.append(quantization_loss(V, R))
    return R, losses


class ITQ(HashMethod):
    """Iterative Quantization on PCA-projected, centred features.

    Parameters:
        n_bits: code length.
        n_iter: rotation updates (paper and reference: 50).
        random_state: seed of the random orthogonal start (and of the extra projections when
            n_bits > d).
    """

    version = 1
    display_rank = 30  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#1f77b4", "^")  # colour and marker in every figure
    parameter_constraints = {"n_bits": [N_BITS], "n_iter": [Interval(int, 0, None)], "random_state": [SEED]}

    def __init__(self, n_bits: int = 32, n_iter: int = 50, random_state: int = 0):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    @fit_context
    def fit(self, X: Any, y: Any = None) -> ITQ:
        """PCA of the centred training features, then n_iter alternating rotation updates."""
        X = validate_features(X, self, fitting=True).astype(np.float64)
        rng = np.random.default_rng(self.random_state)
        n_bits = int(self.n_bits)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        n_pca = min(n_bits, X.shape[1])
        W = pca_directions(Xc, n_pca)
        if n_pca < n_bits:
            W = np.hstack([W, rng.standard_normal((X.shape[1], n_bits - n_pca))])
        V = Xc @ W
        R, losses = itq_rotation(V, int(self.n_iter), rng)
        self.pca_ = W
        self.rotation_ = R
        self.quantization_loss_ = losses
        return self

    def project(self, X: Any) -> np.ndarray:
        """(x - mean) W R: the rotated PCA projections whose signs are the bits."""
        X = validate_features(X, self)
        return (X - self.mean_) @ self.pca_ @ self.rotation_
