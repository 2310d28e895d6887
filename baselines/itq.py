"""ITQ: Iterative Quantization (Gong & Lazebnik, CVPR 2011; TPAMI 35(12), 2013).

Centre the training features, project on the top ``n_bits`` principal directions (V = X W), then
find the orthogonal rotation R minimising the quantisation loss ||B - V R||_F^2 by alternating
B = sgn(V R) and the orthogonal Procrustes solution R = U_A U_B^T from the SVD of B^T V
(paper Sec. 3, eq. 2-4). Codes are b = [(x - mean) W R >= 0].

Departures from the reference code (ZJULearning/MatlabFunc ``ITQ_learn.m``):
- the data are centred before projection (``ITQ_learn.m`` projects the un-centred data, while Gong's
  original demo centres; the paper centres);
- exactly ``n_iter`` = 50 rotation updates (the MATLAB loop ``for iter=0:n_iter`` makes 51);
- when ``n_bits`` exceeds the feature dimension, PCA keeps all d directions and the rest of the
  bits come from a random Gaussian projection of the centred data (the MATLAB code fails there).
"""

from __future__ import annotations

import numpy as np

from hashbench.methods import HashMethod


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random n x n orthogonal matrix (SVD of a Gaussian matrix, as the reference code does)."""
    u, _, vt = np.linalg.svd(rng.standard_normal((n, n)))
    return u @ vt


def itq_rotation(V: np.ndarray, n_iter: int, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Learn the ITQ rotation for projected data V (n, c). Returns R and the loss before each update."""
    c = V.shape[1]
    R = random_orthogonal(c, rng)
    losses = []
    for _ in range(n_iter):
        Z = V @ R
        B = np.where(Z >= 0, 1.0, -1.0)
        losses.append(float(np.sum((B - Z) ** 2)))
        # Orthogonal Procrustes: maximise tr(B^T V R) over orthogonal R.
        U_b, _, Vt_a = np.linalg.svd(B.T @ V)
        R = (U_b @ Vt_a).T
    return R, losses


class ITQ(HashMethod):
    """Iterative Quantization on PCA-projected, centred features."""

    def __init__(self, n_bits: int = 32, n_iter: int = 50, random_state: int = 0):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        X = self._validate_features(X, fitting=True).astype(np.float64)
        rng = np.random.default_rng(self.random_state)
        n_bits = int(self.n_bits)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        n_pca = min(n_bits, X.shape[1])
        cov = Xc.T @ Xc / max(X.shape[0] - 1, 1)
        evals, evecs = np.linalg.eigh(cov)
        W = evecs[:, np.argsort(evals)[::-1][:n_pca]]
        if n_pca < n_bits:
            W = np.hstack([W, rng.standard_normal((X.shape[1], n_bits - n_pca))])
        V = Xc @ W
        R, losses = itq_rotation(V, int(self.n_iter), rng)
        self.pca_ = W
        self.rotation_ = R
        self.quantization_loss_ = losses
        return self

    def project(self, X):
        X = self._validate_features(X)
        return (X - self.mean_) @ self.pca_ @ self.rotation_
