"""DSH: Density Sensitive Hashing (Jin, Li, Lin & Cai, IEEE T-Cybernetics 44(8):1362-1371, 2014).

DSH replaces LSH's random hyperplanes by hyperplanes that cut the data between dense regions
(official ZJU ``DSH_learn.m``, v2.0 Nov 2016, by Yue Lin and Deng Cai):

1. Quantise the training set with k-means, k = round(alpha L) clusters (alpha = 1.5), for only 3
   iterations. Cluster sizes give the weights pi_l = |C_l| / N.
2. r-adjacent groups: for every centre, its r = 3 nearest other centres; keep the unique pairs.
3. Each adjacent pair (i, j) gives the perpendicular bisector of its centres,
   w = mu_i - mu_j,  t = w . (mu_i + mu_j) / 2.
4. Score each candidate by how evenly it splits the size-weighted centres:
   P_1 = sum_{l: w.mu_l >= t} pi_l, P_0 = 1 - P_1. The paper uses the binary entropy
   H = -P_0 log P_0 - P_1 log P_1; the code uses min(P_0, P_1) / max(P_0, P_1).
5. Keep the L best candidates, best first. Encode b = [w . x - t >= 0].

Entropy and ratio select the same projections: with m = min(P_0, P_1) in [0, 1/2], H = h(m) where
h(m) = -m log m - (1 - m) log(1 - m) is strictly increasing on [0, 1/2] (h'(m) = log((1 - m)/m) > 0
for m < 1/2), and the ratio m / (1 - m) is strictly increasing too; both are functions of m alone,
so they order candidates identically. hashbench computes P_1 from integer cluster counts, so equal
m are exactly equal floats and ties fall to the same candidate (the shorter centre pair, then index)
under either score. ``tests/test_shallow.py`` checks this.

k-means: seeded, initialised like the reference ``litekmeans`` ('sample' start: k distinct training
points drawn at random), 3 Lloyd iterations, an empty cluster refilled with the points farthest
from their centre (as ``litekmeans``). ``init="k-means++"`` is offered as an option.

Departures from the reference code:
- candidate pairs are de-duplicated by centre pair; ``DSH_learn.m`` de-duplicates by distance
  *value* and looks the pair up again with ``find(Du == d)``, which merges distinct pairs at equal
  distance (rare with real data). Candidates keep the reference's order (ascending centre distance),
  which breaks score ties;
- a centre on the hyperplane counts on the positive side (w.mu - t >= 0), the same rule as the bits;
  the code uses ``>`` for both;
- bit = (w . x - t >= 0) (hashbench's convention) where the reference uses ``> t``;
- fewer candidates than L: the reference would fail. This happens only when few clusters exist
  (k is capped at the number of training points, or some centres coincide). hashbench then widens
  the neighbourhood r up to all pairs of centres (``r_`` records the value used); if even all
  k (k - 1) / 2 pairs are fewer than L it raises ``InvalidInput`` (more training points needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashbench.errors import InvalidInput
from hashbench.methods import N_BITS, SEED, HashMethod, Interval, Options, fit_context, validate_features

_SCORES = ("entropy", "ratio")
_INITS = ("random", "k-means++")


def _sq_dist_to_centres(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """||x||^2-free squared distances ||c||^2 - 2 x.c (n, k): enough for the argmin."""
    return np.sum(C * C, axis=1)[None, :] - 2.0 * (X @ C.T)


def kmeans(
    X: np.ndarray, k: int, n_iter: int, rng: np.random.Generator, init: str = "random"
) -> tuple[np.ndarray, np.ndarray]:
    """A few Lloyd iterations of k-means. Returns (labels (n,), centres (k, d)).

    ``init="random"`` draws k distinct training points (as ``litekmeans``' default 'sample' start);
    ``"k-means++"`` uses D^2 sampling. An empty cluster takes the points farthest from their
    nearest centre, so every cluster is non-empty. The labels are those of the last assignment and
    the centres are the means of those labels, as ``litekmeans`` returns them.
    """
    n = X.shape[0]
    if init == "random":
        C = X[rng.choice(n, k, replace=False)].copy()
    elif init == "k-means++":
        xx = np.sum(X * X, axis=1)
        C = np.empty((k, X.shape[1]))
        C[0] = X[rng.integers(n)]
        d2 = np.maximum(xx - 2.0 * X @ C[0] + C[0] @ C[0], 0.0)
        for i in range(1, k):
            total = d2.sum()
            idx = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
            C[i] = X[idx]
            d2 = np.minimum(d2, np.maximum(xx - 2.0 * X @ C[i] + C[i] @ C[i], 0.0))
    else:
        raise InvalidInput(f"k-means init must be one of {_INITS}, got {init!r}")
    labels = np.full(n, -1)
    xx = np.sum(X * X, axis=1)
    for _ in range(max(int(n_iter), 1)):
        D = _sq_dist_to_centres(X, C)
        new = np.argmin(D, axis=1)
        missing = np.setdiff1d(np.arange(k), new)
        if missing.size:
            far = np.argsort(-(D[np.arange(n), new] + xx), kind="stable")[: missing.size]
            new[far] = missing
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        C = np.zeros_like(C)
        np.add.at(C, labels, X)
        C /= counts[:, None]
    return labels, C


def adjacent_pairs(centres: np.ndarray, r: int) -> np.ndarray:
    """Unique pairs (i, j), i < j, where j is among the r nearest centres of i or vice versa.

    Ordered by centre distance, then (i, j) (the reference enumerates by ascending distance).
    Pairs of coincident centres are dropped: their bisector is undefined.
    """
    k = centres.shape[0]
    sq = np.sum(centres * centres, axis=1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2.0 * centres @ centres.T, 0.0)
    np.fill_diagonal(D, np.inf)
    r = min(int(r), k - 1)
    nn = np.argsort(D, axis=1, kind="stable")[:, :r]
    i = np.repeat(np.arange(k), r)
    j = nn.ravel()
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    dist = D[pairs[:, 0], pairs[:, 1]]
    distinct = np.any(centres[pairs[:, 0]] != centres[pairs[:, 1]], axis=1)
    pairs, dist = pairs[distinct], dist[distinct]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0], dist))]


def bisectors(centres: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Perpendicular bisectors of centre pairs: W (d, m) with w = mu_i - mu_j and t = w.(mu_i + mu_j)/2."""
    a, b = centres[pairs[:, 0]], centres[pairs[:, 1]]
    W = (a - b).T
    t = np.sum((a - b) * (a + b), axis=1) / 2.0
    return W, t


def minority_mass(centres: np.ndarray, sizes: np.ndarray, W: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each candidate, the number of training points (by cluster) on its smaller side: min(n_1, N - n_1)."""
    side = (centres @ W - t[None, :]) >= 0
    n1 = sizes.astype(np.int64) @ side.astype(np.int64)
    return np.minimum(n1, int(sizes.sum()) - n1)


def split_score(minority: np.ndarray, n: int, score: str = "entropy") -> np.ndarray:
    """Balance score of a split with ``minority`` of ``n`` points on the smaller side.

    ``"entropy"``: the paper's binary entropy -P_0 log P_0 - P_1 log P_1 (nats).
    ``"ratio"``: the reference code's min(P_0, P_1) / max(P_0, P_1).
    """
    m = np.asarray(minority, dtype=np.float64) / n
    if score == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            return -(np.where(m > 0, m * np.log(m), 0.0) + (1 - m) * np.log1p(-m))
    if score == "ratio":
        return m / (1.0 - m)
    raise InvalidInput(f"DSH score must be one of {_SCORES}, got {score!r}")


def select_best(scores: np.ndarray, n_select: int) -> np.ndarray:
    """Indices of the n_select highest scores, best first, ties by candidate order."""
    return np.argsort(-np.asarray(scores), kind="stable")[:n_select]


class DSH(HashMethod):
    """Density Sensitive Hashing: bisectors of adjacent k-means centres, chosen by split entropy.

    Parameters:
        n_bits: code length L.
        alpha: clusters per bit, k = round(alpha L) (reference: 1.5).
        r: adjacent centres per centre (reference: 3).
        kmeans_iter: k-means iterations (reference: 3).
        score: "entropy" (paper) or "ratio" (reference code); the selection is identical.
        init: k-means start, "random" (reference) or "k-means++".
        random_state: seed of the k-means start.

    Learned: ``projections_`` (d, L), ``intercepts_`` (L,), ``centres_`` (k, d), ``cluster_sizes_``,
    ``pairs_`` (L, 2, the centre pair of each bit), ``scores_`` (L,), ``r_`` (the r used).
    """

    version = 1
    display_rank = 40  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#8c564b", "v")  # colour and marker in every figure
    parameter_constraints = {
        "n_bits": [N_BITS],
        "alpha": [Interval(float, 0, None, closed="neither")],
        "r": [Interval(int, 1, None)],
        "kmeans_iter": [Interval(int, 1, None)],
        "score": [Options(*_SCORES)],
        "init": [Options(*_INITS)],
        "random_state": [SEED],
    }

    def __init__(
        self,
        n_bits: int = 32,
        alpha: float = 1.5,
        r: int = 3,
        kmeans_iter: int = 3,
        score: str = "entropy",
        init: str = "random",
        random_state: int = 0,
    ):
        self.n_bits = n_bits
        self.alpha = alpha
        self.r = r
        self.kmeans_iter = kmeans_iter
        self.score = score
        self.init = init
        self.random_state = random_state

    @fit_context
    def fit(self, X: Any, y: Any = None) -> DSH:
        """k-means, the bisectors of adjacent centres, and the n_bits most balanced of them."""
        X = validate_features(X, self, fitting=True).astype(np.float64)
        L = int(self.n_bits)
        n = X.shape[0]
        self.n_features_in_ = X.shape[1]
        rng = np.random.default_rng(self.random_state)
        # MATLAB's round (half away from zero), not Python's banker's rounding.
        k = min(max(int(np.floor(self.alpha * L + 0.5)), 2), n)
        labels, centres = kmeans(X, k, int(self.kmeans_iter), rng, init=self.init)
        sizes = np.bincount(labels, minlength=k)

        r = int(self.r)
        pairs = adjacent_pairs(centres, r)
        while pairs.shape[0] < L and r < k - 1:
            r += 1
            pairs = adjacent_pairs(centres, r)
        if pairs.shape[0] < L:
            raise InvalidInput(
                f"DSH with {L} bits needs at least {L} distinct pairs of k-means centres, but the "
                f"{n} training points give only {pairs.shape[0]}; use more training points or fewer bits"
            )
        W, t = bisectors(centres, pairs)
        scores = split_score(minority_mass(centres, sizes, W, t), n, self.score)
        best = select_best(scores, L)

        self.centres_ = centres
        self.cluster_sizes_ = sizes
        self.r_ = r
        self.pairs_ = pairs[best]
        self.scores_ = scores[best]
        self.projections_ = W[:, best]
        self.intercepts_ = t[best]
        return self

    def project(self, X: Any) -> np.ndarray:
        """w . x - t for each selected bisector."""
        X = validate_features(X, self)
        return X @ self.projections_ - self.intercepts_
