"""The mathematics of the shallow baselines: SH, SpH, DSH and ITQ (shapes and determinism are the
shared check_method suite's job)."""

from __future__ import annotations

import numpy as np
import pytest
from hashbench_baselines.dsh import DSH, adjacent_pairs, bisectors, minority_mass, select_best, split_score
from hashbench_baselines.itq import ITQ
from hashbench_baselines.lsh import LSH
from hashbench_baselines.sh import SH, sh_modes
from hashbench_baselines.sph import SPH, pivot_forces, sphere_statistics, spherical_hamming_distance
from sklearn.datasets import load_digits

from hashbench.errors import InvalidInput


def clustered(n: int, d: int, n_clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * 3.0
    return centres[rng.integers(n_clusters, size=n)] + rng.standard_normal((n, d))


# -- SH ---------------------------------------------------------------------------------------------


def test_sh_modes_follow_eigenvalue_order_on_a_2d_box():
    # Box sides 2.5 x 1: omega^2 / pi^2 is k^2/6.25 on the long side and k^2 on the short one, so the
    # order is (1,0) 0.16 < (2,0) 0.64 < (0,1) 1 < (3,0) 1.44 < (4,0) 2.56; the constant mode is dropped.
    assert sh_modes(np.array([2.5, 1.0]), 5).tolist() == [[1, 0], [2, 0], [0, 1], [3, 0], [4, 0]]


def test_sh_modes_break_eigenvalue_ties_by_enumeration_order():
    # Sides 2 x 1: (2,0) and (0,1) both have omega = pi; MATLAB's stable sort keeps direction 0 first.
    assert sh_modes(np.array([2.0, 1.0]), 3).tolist() == [[1, 0], [2, 0], [0, 1]]


def test_sh_fit_on_a_uniform_grid_finds_the_box_modes_and_halves_the_long_side():
    # A uniform grid on [0, 2.5] x [0, 1]: PCA direction 0 is the long side, and the first bit,
    # cos(pi (x~ - mn) / R), cuts it at its middle x = 1.25 (which half is 1 depends on the sign PCA
    # gives the direction).
    gx, gy = np.meshgrid(np.linspace(0, 2.5, 51), np.linspace(0, 1, 21))
    X = np.column_stack([gx.ravel(), gy.ravel()])
    sh = SH(n_bits=4).fit(X)
    assert sh.modes_.tolist() == [[1, 0], [2, 0], [0, 1], [3, 0]]
    assert abs(abs(sh.pca_[0, 0]) - 1.0) < 1e-12
    codes = sh.encode(X)
    off_cut = ~np.isclose(X[:, 0], 1.25)
    first_half = (X[:, 0] < 1.25)[off_cut]
    bit = codes[off_cut, 0]
    assert np.array_equal(bit, first_half) or np.array_equal(bit, ~first_half)


def test_sh_keeps_n_bits_beyond_the_feature_dimension():
    # The ZJU wrapper would cap 8 bits at d = 3; the widest direction alone has enough modes.
    X = clustered(200, 3, 4, seed=0)
    assert SH(n_bits=8).fit(X).encode(X).shape == (200, 8)


# -- SpH --------------------------------------------------------------------------------------------


def test_sph_vectorised_forces_equal_the_reference_double_loop():
    rng = np.random.default_rng(0)
    N, c, d = 40, 5, 3
    P = rng.standard_normal((c, d))
    O = rng.integers(0, N // 2, size=(c, c)).astype(float)
    O = (O + O.T) / 2
    expected = np.zeros_like(P)
    for i in range(c - 1):
        for j in range(i + 1, c):
            f = 0.5 * (O[i, j] - N / 4) / (N / 4) * (P[i] - P[j])
            expected[i] += f / c
            expected[j] -= f / c
    np.testing.assert_allclose(pivot_forces(O, P, N), expected, rtol=1e-12, atol=1e-12)


def test_sph_radius_is_the_median_distance():
    # Distances 1..6 to one pivot: the floor(6/2) = 3rd smallest is 3, so points at 1, 2, 3 are inside.
    D = np.array([[4.0], [1.0], [6.0], [3.0], [2.0], [5.0]])
    radii, O, _, _ = sphere_statistics(D)
    assert radii.tolist() == [3.0] and O.tolist() == [[3.0]]


def test_sph_converges_to_balanced_nearly_independent_bits():
    # At convergence each sphere holds floor(N/2) training points and the pairwise overlaps meet the
    # paper's stopping rule: mean |o_ij - N/4| <= 0.10 N/4 and std(o_ij) <= 0.15 N/4.
    X = clustered(1000, 16, 10, seed=1)
    sph = SPH(n_bits=16, random_state=0).fit(X)
    assert sph.converged_ and 0 < sph.n_iter_ < sph.max_iter
    B = sph.encode(X).astype(float)
    N = X.shape[0]
    assert B.sum(axis=0).tolist() == [N // 2] * 16
    o = (B.T @ B)[np.triu_indices(16, k=1)]
    assert np.mean(np.abs(o - N / 4)) <= 0.10 * N / 4
    assert np.std(o) <= 0.15 * N / 4


def test_sph_iteration_cap_stops_an_unreachable_criterion():
    # eps = 0 demands exact N/4 overlaps, which random data never reach; the cap must end the loop.
    X = clustered(300, 8, 5, seed=2)
    sph = SPH(n_bits=8, eps_m=0.0, eps_s=0.0, max_iter=3).fit(X)
    assert sph.n_iter_ == 3 and not sph.converged_


def test_spherical_hamming_distance_by_hand():
    # 1100 vs 1010: xor has 2 ones, and has 1 -> 2. 1000 vs 0100 share no sphere -> inf.
    # 0000 vs 0000 are identical -> 0. 1111 vs 1111 -> 0 / 4 = 0.
    Q = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    D = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    dist = spherical_hamming_distance(Q, D)
    assert [dist[i, i] for i in range(4)] == [2.0, np.inf, 0.0, 0.0]


def test_sph_rejects_an_unknown_distance():
    with pytest.raises(InvalidInput):
        SPH(n_bits=4, distance="cosine").fit(clustered(50, 4, 2, seed=0))


# -- DSH --------------------------------------------------------------------------------------------


def test_dsh_bisector_puts_each_centre_on_its_own_side():
    # w = mu_i - mu_j, t = w.(mu_i + mu_j)/2 gives w.mu_i - t = ||w||^2/2 and w.mu_j - t = -||w||^2/2.
    X = clustered(2000, 10, 12, seed=3)
    dsh = DSH(n_bits=16, random_state=0).fit(X)
    mu = dsh.centres_
    hi = np.einsum("ld,dl->l", mu[dsh.pairs_[:, 0]], dsh.projections_) - dsh.intercepts_
    lo = np.einsum("ld,dl->l", mu[dsh.pairs_[:, 1]], dsh.projections_) - dsh.intercepts_
    half_sq_norm = np.sum(dsh.projections_**2, axis=0) / 2
    np.testing.assert_allclose(hi, half_sq_norm, rtol=1e-9)
    np.testing.assert_allclose(lo, -half_sq_norm, rtol=1e-9)


def test_dsh_scores_a_hand_made_line_of_clusters():
    # Four equal clusters at 0, 1, 2, 3 on a line: the bisector of (1, 2) splits 2 | 2 and is the most
    # balanced; (0, 1) and (2, 3) split 1 | 3. Entropy of the balanced split is log 2.
    centres = np.array([[0.0], [1.0], [2.0], [3.0]])
    sizes = np.array([10, 10, 10, 10])
    pairs = adjacent_pairs(centres, r=1)
    assert pairs.tolist() == [[0, 1], [1, 2], [2, 3]]
    W, t = bisectors(centres, pairs)
    minority = minority_mass(centres, sizes, W, t)
    assert minority.tolist() == [10, 20, 10]
    np.testing.assert_allclose(split_score(minority, 40, "entropy")[1], np.log(2))
    assert split_score(minority, 40, "ratio").tolist() == [1 / 3, 1.0, 1 / 3]
    assert select_best(split_score(minority, 40), 2).tolist() == [1, 0]


def test_dsh_entropy_and_ratio_scores_are_strictly_monotone_in_the_minority_count():
    # Both scores are strictly increasing functions of min(P0, P1), so they rank identically.
    n = 5001
    m = np.arange(n // 2 + 1)
    assert np.all(np.diff(split_score(m, n, "entropy")) > 0)
    assert np.all(np.diff(split_score(m, n, "ratio")) > 0)


def test_dsh_entropy_and_ratio_select_the_same_projections():
    rng = np.random.default_rng(4)
    for _ in range(200):
        minority = rng.integers(0, 51, size=rng.integers(5, 40))
        n_select = int(rng.integers(1, minority.size + 1))
        assert np.array_equal(
            select_best(split_score(minority, 101, "entropy"), n_select),
            select_best(split_score(minority, 101, "ratio"), n_select),
        )
    X = clustered(1500, 12, 8, seed=5)
    a = DSH(n_bits=24, score="entropy").fit(X)
    b = DSH(n_bits=24, score="ratio").fit(X)
    assert np.array_equal(a.pairs_, b.pairs_)


def test_dsh_widens_the_neighbourhood_when_candidates_are_too_few():
    # 4 training points give at most 4 clusters and 6 centre pairs; r = 1 finds fewer than 6.
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    dsh = DSH(n_bits=6, r=1).fit(X)
    assert dsh.r_ == 3 and len({tuple(p) for p in dsh.pairs_.tolist()}) == 6
    with pytest.raises(InvalidInput, match="more training points"):
        DSH(n_bits=7).fit(X)


# -- ITQ --------------------------------------------------------------------------------------------


def test_itq_quantization_loss_never_increases():
    # Each half-step minimises ||B - V R||^2 over B or over R with the other fixed.
    X = clustered(800, 32, 6, seed=6)
    itq = ITQ(n_bits=16).fit(X)
    loss = np.array(itq.quantization_loss_)
    assert loss.size == itq.n_iter + 1
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])
    assert loss[-1] < loss[0]


def test_itq_centres_the_data_and_rotates_orthogonally():
    X = clustered(500, 20, 5, seed=7) + 10.0
    itq = ITQ(n_bits=8).fit(X)
    np.testing.assert_allclose(itq.project(X).mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(itq.rotation_.T @ itq.rotation_, np.eye(8), atol=1e-10)


# -- retrieval sanity ------------------------------------------------------------------------------


def hamming_map(Bq: np.ndarray, Bd: np.ndarray, yq: np.ndarray, yd: np.ndarray) -> float:
    """MAP over the whole database, ranking by Hamming distance with ties by database index."""
    Bq, Bd = Bq.astype(np.float32), Bd.astype(np.float32)
    ham = Bq.sum(axis=1)[:, None] + Bd.sum(axis=1)[None, :] - 2.0 * Bq @ Bd.T
    aps = []
    for i in range(len(Bq)):
        rel = yd[np.argsort(ham[i], kind="stable")] == yq[i]
        hits = np.cumsum(rel)[rel]
        aps.append(np.mean(hits / (np.flatnonzero(rel) + 1)))
    return float(np.mean(aps))


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[200:]], y[order[200:]], X[order[:200]], y[order[:200]]


@pytest.mark.parametrize("cls", [SH, SPH, DSH, ITQ])
def test_codes_retrieve_digits_far_better_than_chance(cls, digits_split):
    # Ten balanced classes: a random ranking has MAP about 0.1; every method stays well above
    # (measured at 16 bits: SH 0.37, SpH 0.37, DSH 0.48, ITQ 0.62).
    Xd, yd, Xq, yq = digits_split
    method = cls(n_bits=16).fit(Xd)
    assert hamming_map(method.encode(Xq), method.encode(Xd), yq, yd) > 0.25


def test_itq_beats_lsh_on_digits(digits_split):
    # The ITQ paper's headline: a learned rotation of PCA beats random projections at short codes.
    Xd, yd, Xq, yq = digits_split
    maps = [hamming_map(m.encode(Xq), m.encode(Xd), yq, yd) for m in (ITQ(16).fit(Xd), LSH(16).fit(Xd))]
    assert maps[0] > maps[1] + 0.1
