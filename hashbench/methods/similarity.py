"""Pairwise semantic structure from features: cosine distances and SSDH's three-way similarity matrix.

SSDH (Yang et al., IJCAI 2018, Sec. 3.1; survey eq. 58) builds a similarity matrix for the training
images from the cosine distances of their pretrained fc7 features, and UHGA (Jiang et al., 2020,
eq. 2-3) does the same with AlexNet. The recipe (docs/METHODS.md 6.1):

1. d_ij = 1 - f_i.f_j / (|f_i| |f_j|) over all N x N pairs, diagonal and both triangles included;
2. histogram with bins of width 0.01; m = left edge of the most populated bin;
3. mirrored half-Gaussian fits: L = {d <= m} mirrored about m, R = {d > m} mirrored about m, each
   fitted by the maximum-likelihood normal (``scipy.stats.norm.fit`` in the reference code);
4. d_l = mu_l - alpha sigma_l, d_r = mu_r + beta sigma_r (alpha = beta = 2);
5. S_ij = +1 if d_ij < d_l, -1 if d_ij > d_r, 0 otherwise.

Because the mirrored sample is symmetric about m, its MLE mean is m and its MLE variance is the mean
of (d - m)^2 over the half, so both fits are closed forms of per-bin sums: one blocked pass gives
the histogram and the fits, a second gives S. Memory stays O(block_size x N); nothing N x N is held
in float64, and S is int8 (10,500^2 = 110 MB).

Departures from the reference code (yangerkun/IJCAI2018_SSDH), all documented in the docstrings:
- the histogram covers [0, 2] (cosine distances of features with negative entries reach 2) with the
  same bin width 1/bins; for non-negative features (fc7 after ReLU, GIST, pixels) all distances lie
  in [0, 1] and the bins are those of the reference code. Round-off outside [0, 2] is clipped.
- a zero feature vector has cosine similarity 0 with every other item (distance 1); the diagonal is
  always 0 (the reference's ``pdist`` would give NaN rows).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput

RULES = ("paper", "original")


def _check_features(features: np.ndarray, name: str = "features") -> np.ndarray:
    F = np.asarray(features)
    if F.ndim != 2 or F.shape[0] < 1:
        raise InvalidInput(f"{name} must be a 2-D array (n, d) with n >= 1, got shape {F.shape}")
    if F.dtype.kind not in "fiub":
        raise InvalidInput(f"{name} must be numeric, got dtype {F.dtype}")
    F = F.astype(np.float32, copy=False)
    if not np.isfinite(F).all():
        raise InvalidInput(f"{name} contain NaN or infinite values; recompute the representation")
    return F


def _unit_rows(F: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    # Zero rows stay zero, so their cosine similarity with everything is 0 (distance 1).
    return F / np.where(norms > 0, norms, 1.0).astype(np.float32)


def cosine_distance_matrix(A: np.ndarray, B: np.ndarray | None = None) -> np.ndarray:
    """Cosine distances 1 - a.b / (|a| |b|) between rows of A (n, d) and B (m, d) (B = A when None).

    float32 (n, m), clipped to [0, 2] (round-off). A zero row has distance 1 to every row; when
    B is None the diagonal is exactly 0.
    """
    UA = _unit_rows(_check_features(A, "A"))
    UB = UA if B is None else _unit_rows(_check_features(B, "B"))
    D = 1.0 - UA @ UB.T
    np.clip(D, 0.0, 2.0, out=D)
    if B is None:
        np.fill_diagonal(D, 0.0)
    return D


def _distance_blocks(U: np.ndarray, block_size: int):
    """Yield (start, D_block) for rows start:start+block of the cosine distance matrix of unit rows U."""
    n = U.shape[0]
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        D = 1.0 - U[start:stop] @ U.T
        np.clip(D, 0.0, 2.0, out=D)
        D[np.arange(stop - start), np.arange(start, stop)] = 0.0
        yield start, D


def half_gaussian_fits(distances: np.ndarray, *, bins: int = 100, block_size: int | None = None) -> dict[str, float]:
    """Mode and mirrored half-Gaussian fits of a set of distances (METHODS.md 6.1 steps 3-4).

    ``distances`` may be any array of values in [0, 2] (it is flattened). Bins have width 1/bins and
    cover [0, 2]; bin b holds floor(d * bins) == b (the last bin also holds d == 2); m is the left
    edge of the most populated bin (the first on ties, like ``argmax``). Returns a dict with
    ``mode`` (m), ``mu_l``, ``sigma_l``, ``mu_r``, ``sigma_r``, ``n_left``, ``n_right``.
    A side with no values gets sigma 0.
    """
    acc = _FitAccumulator(bins)
    d = np.asarray(distances, dtype=np.float32).ravel()
    step = block_size or 1 << 22
    for start in range(0, d.size, step):
        acc.add(d[start : start + step])
    return acc.result()


class _FitAccumulator:
    """Per-bin counts and centred moments, so the fits for any mode m follow without a second pass.

    For bin b with left edge e_b it keeps n_b, sum(d - e_b), sum((d - e_b)^2), separately for the
    values exactly at the left edge (d <= e_b after binning round-off) and for the rest. Then
    sum over a set of (d - m)^2 = sum (d - e_b)^2 + 2 (e_b - m) sum (d - e_b) + n (e_b - m)^2, which
    stays accurate in float64 because every term is small.
    """

    def __init__(self, bins: int):
        if int(bins) < 1:
            raise InvalidInput(f"bins must be a positive integer, got {bins!r}")
        self.bins = int(bins)
        self.nb = 2 * self.bins  # [0, 2] with width 1/bins
        self.edges = np.arange(self.nb, dtype=np.float64) / self.bins
        shape = (2, self.nb)  # row 0: values at the left edge, row 1: values strictly inside
        self.count = np.zeros(shape, dtype=np.int64)
        self.s1 = np.zeros(shape, dtype=np.float64)
        self.s2 = np.zeros(shape, dtype=np.float64)

    def add(self, d: np.ndarray) -> None:
        d64 = d.astype(np.float64).ravel()
        b = np.minimum(np.floor(d64 * self.bins).astype(np.int64), self.nb - 1)
        b = np.maximum(b, 0)
        off = d64 - self.edges[b]
        inside = (off > 0).astype(np.int64)
        key = inside * self.nb + b
        n = 2 * self.nb
        self.count += np.bincount(key, minlength=n).reshape(2, self.nb)
        self.s1 += np.bincount(key, weights=off, minlength=n).reshape(2, self.nb)
        self.s2 += np.bincount(key, weights=off * off, minlength=n).reshape(2, self.nb)

    def result(self) -> dict[str, float]:
        hist = self.count.sum(axis=0)
        if hist.sum() == 0:
            raise InvalidInput("no distances to fit; give at least one item")
        b_star = int(np.argmax(hist))
        m = float(self.edges[b_star])
        # Left = bins below the mode + the mode bin's values at its left edge (d <= m); right = the rest.
        left = np.zeros((2, self.nb), dtype=bool)
        left[:, :b_star] = True
        left[0, b_star] = True
        shift = self.edges - m  # e_b - m, broadcast over the two rows

        def moments(mask: np.ndarray) -> tuple[int, float]:
            n = int(self.count[mask].sum())
            if n == 0:
                return 0, 0.0
            sh = np.broadcast_to(shift, mask.shape)[mask]
            ss = self.s2[mask] + 2.0 * sh * self.s1[mask] + self.count[mask] * sh * sh
            return n, float(np.sqrt(max(ss.sum() / n, 0.0)))

        n_l, sigma_l = moments(left)
        n_r, sigma_r = moments(~left)
        return {
            "mode": m,
            "mu_l": m,
            "sigma_l": sigma_l,
            "mu_r": m,
            "sigma_r": sigma_r,
            "n_left": n_l,
            "n_right": n_r,
        }


def thresholds(
    fits: dict[str, float], *, alpha: float = 2.0, beta: float = 2.0, rule: str = "paper"
) -> tuple[float, float]:
    """(d_l, d_r) from the half-Gaussian fits.

    ``rule="paper"`` (SSDH paper, survey eq. 58, code HEAD 49d1938): d_l = mu_l - alpha sigma_l,
    d_r = mu_r + beta sigma_r. ``rule="original"`` (first code release 994c03f): the same d_l, but
    every pair beyond one left sigma is dissimilar, d_r = mu_l - sigma_l (beta and the right fit
    are unused), so most pairs are dissimilar.
    """
    if rule not in RULES:
        raise InvalidInput(f"unknown similarity rule {rule!r}; use one of {', '.join(RULES)}")
    d_l = fits["mu_l"] - float(alpha) * fits["sigma_l"]
    d_r = fits["mu_r"] + float(beta) * fits["sigma_r"] if rule == "paper" else fits["mu_l"] - fits["sigma_l"]
    return float(d_l), float(d_r)


def similarity_from_distances(D: np.ndarray, d_l: float, d_r: float) -> np.ndarray:
    """S (int8): +1 where D < d_l, -1 where D > d_r, 0 elsewhere (SSDH eq. 58, strict as in the code)."""
    D = np.asarray(D)
    S = np.zeros(D.shape, dtype=np.int8)
    S[D < d_l] = 1
    S[D > d_r] = -1
    return S


def semantic_similarity(
    features: np.ndarray,
    *,
    bins: int = 100,
    alpha: float = 2.0,
    beta: float = 2.0,
    rule: str = "paper",
    block_size: int | None = None,
) -> tuple[np.ndarray, dict]:
    """SSDH's similarity matrix of the rows of ``features`` (n, d) (METHODS.md 6.1).

    Returns ``(S, info)``: S is (n, n) int8 in {+1, 0, -1}, symmetric, with +1 on the diagonal
    whenever d_l > 0; info holds ``mode``, ``mu_l``, ``sigma_l``, ``mu_r``, ``sigma_r``, ``d_l``,
    ``d_r``, ``rule``, ``alpha``, ``beta``, ``bins`` and the fractions ``frac_similar``,
    ``frac_dissimilar`` of the n^2 entries.

    Distances are float32, computed in row blocks of ``block_size`` (default: about 4M entries per
    block), so memory is O(block_size x n) besides S.
    """
    if rule not in RULES:
        raise InvalidInput(f"unknown similarity rule {rule!r}; use one of {', '.join(RULES)}")
    U = _unit_rows(_check_features(features))
    n = U.shape[0]
    block = int(block_size) if block_size else max(1, (1 << 22) // n)
    if block < 1:
        raise InvalidInput(f"block_size must be positive, got {block_size!r}")
    acc = _FitAccumulator(bins)
    for _, D in _distance_blocks(U, block):
        acc.add(D)
    fits = acc.result()
    d_l, d_r = thresholds(fits, alpha=alpha, beta=beta, rule=rule)
    S = np.empty((n, n), dtype=np.int8)
    for start, D in _distance_blocks(U, block):
        S[start : start + D.shape[0]] = similarity_from_distances(D, d_l, d_r)
    n2 = float(n) * n
    info = {
        **{k: fits[k] for k in ("mode", "mu_l", "sigma_l", "mu_r", "sigma_r")},
        "d_l": d_l,
        "d_r": d_r,
        "rule": rule,
        "alpha": float(alpha),
        "beta": float(beta),
        "bins": int(bins),
        "frac_similar": float(np.count_nonzero(S == 1)) / n2,
        "frac_dissimilar": float(np.count_nonzero(S == -1)) / n2,
    }
    return S, info
