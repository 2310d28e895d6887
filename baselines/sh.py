"""SH: Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008).

The paper relaxes the balanced, uncorrelated graph-partitioning problem to the eigenfunctions of
the weighted Laplace-Beltrami operator, assuming the data are uniform on a box in PCA space
(Sec. 3-4). For a uniform density on [a, b] the 1-D eigenfunctions are
Phi_k(x) = sin(pi/2 + k pi/(b - a) x) with eigenvalue lambda_k = 1 - exp(-eps^2/2 |k pi/(b - a)|^2)
(paper eq. 6-7), so the smallest eigenvalues belong to the smallest angular frequencies
omega = k pi / (b - a). The algorithm (paper Sec. 4, reference ``SpectralHashing.m``):

1. PCA: the top ``npca = min(n_bits, d)`` principal directions, x~ = x W.
2. Fit a uniform distribution per direction: mn_j = min_j - eps, mx_j = max_j + eps, R_j = mx_j - mn_j.
3. Enumerate the single-direction modes k = 1..maxMode_j - 1 of every direction j, with
   maxMode_j = ceil((n_bits + 1) R_j / max R), plus the constant mode k = 0; sort by
   sum_j omega_j^2 (ascending = increasing eigenvalue), drop the constant mode and keep n_bits modes.
4. Hash: y_m(x) = cos(omega_m (x~_j - mn_j)) for mode m on direction j; bit = (y_m >= 0).

Departures from the reference code (Weiss' ``SpectralHashing.m`` / ``compressSH.m`` and the ZJU
wrapper in ZJULearning/MatlabFunc):
- bit = (y >= 0) (hashbench's convention) where the reference uses y > 0; y is exactly 0 only where
  cos vanishes, which floating point essentially never hits;
- the ZJU wrapper silently lowers n_bits to d when n_bits > d; hashbench keeps n_bits (the mode
  enumeration always has at least n_bits non-constant modes, since the widest direction alone has
  n_bits of them), as Weiss' original code does;
- ties in sum omega^2 are broken by enumeration order (direction, then k), as MATLAB's stable
  ``sort`` does;
- the data are not centred before PCA projection, as in the reference: the min/max fit absorbs
  the offset, so codes are unchanged.

SH is deterministic; ``random_state`` is accepted (and ignored) so every method shares the same
constructor interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashbench.methods import N_BITS, SEED, HashMethod, Interval, fit_context, validate_features

from .itq import pca_directions


def sh_modes(ranges: np.ndarray, n_bits: int) -> np.ndarray:
    """The ``n_bits`` lowest-eigenvalue non-constant 1-D modes for box side lengths ``ranges``.

    Returns an integer matrix (n_bits, len(ranges)); row m has a single non-zero entry k on the
    direction j of mode m (its angular frequency is k pi / ranges[j]). Rows are ordered by
    sum_j (k_j pi / ranges_j)^2 ascending, ties by enumeration order; the constant mode is dropped.
    """
    ranges = np.asarray(ranges, dtype=np.float64)
    npca = ranges.shape[0]
    max_mode = np.ceil((n_bits + 1) * ranges / ranges.max()).astype(int)
    # Rows: the constant mode, then for each direction j its modes 1..max_mode_j - 1.
    dims = np.concatenate([np.full(m - 1, j) for j, m in enumerate(max_mode)]).astype(int)
    ks = np.concatenate([np.arange(1, m) for m in max_mode]).astype(int)
    modes = np.zeros((1 + ks.size, npca), dtype=int)
    modes[1 + np.arange(ks.size), dims] = ks
    omegas = modes * (np.pi / ranges)
    eig = np.sum(omegas**2, axis=1)
    order = np.argsort(eig, kind="stable")
    return modes[order[1 : n_bits + 1]]


class SH(HashMethod):
    """Spectral Hashing: analytic eigenfunctions of a uniform distribution on the PCA box.

    Parameters:
        n_bits: code length.
        eps: margin added on both sides of the per-direction min/max (the reference uses
            MATLAB's ``eps``, 2.2e-16); it keeps a constant direction from giving a zero range.
        random_state: unused (SH is deterministic); kept for the uniform method interface.
    """

    version = 1
    display_rank = 10  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#ff7f0e", "s")  # colour and marker in every figure
    randomized = False
    parameter_constraints = {
        "n_bits": [N_BITS],
        "eps": [Interval(float, 0, None, closed="left")],
        "random_state": [SEED],
    }

    def __init__(self, n_bits: int = 32, eps: float = float(np.finfo(np.float64).eps), random_state: int = 0):
        self.n_bits = n_bits
        self.eps = eps
        self.random_state = random_state

    @fit_context
    def fit(self, X: Any, y: Any = None) -> SH:
        """PCA, the per-direction box, and the n_bits lowest-eigenvalue modes."""
        X = validate_features(X, self, fitting=True).astype(np.float64)
        n_bits = int(self.n_bits)
        self.n_features_in_ = X.shape[1]
        npca = min(n_bits, X.shape[1])
        self.pca_ = pca_directions(X - X.mean(axis=0), npca)
        Z = X @ self.pca_
        self.mn_ = Z.min(axis=0) - self.eps
        self.mx_ = Z.max(axis=0) + self.eps
        ranges = self.mx_ - self.mn_
        if not np.all(ranges > 0):
            ranges = np.maximum(ranges, np.finfo(np.float64).tiny)
            self.mx_ = self.mn_ + ranges
        self.modes_ = sh_modes(ranges, n_bits)
        self.mode_dims_ = np.argmax(self.modes_ != 0, axis=1)
        self.omegas_ = self.modes_[np.arange(n_bits), self.mode_dims_] * np.pi / ranges[self.mode_dims_]
        return self

    def project(self, X: Any) -> np.ndarray:
        """cos(omega_m (x W - mn)_j): the eigenfunction values whose signs are the bits."""
        X = validate_features(X, self)
        Z = X @ self.pca_ - self.mn_
        return np.cos(Z[:, self.mode_dims_] * self.omegas_)
