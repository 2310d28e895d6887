"""SSDH's semantic structure (METHODS.md 6.1) on hand-made distances and features."""

import numpy as np
import pytest
from scipy.stats import norm

from hashbench.errors import InvalidInput
from hashbench.methods.similarity import (
    cosine_distance_matrix,
    half_gaussian_fits,
    semantic_similarity,
    similarity_from_distances,
    thresholds,
)


def test_cosine_distances_of_hand_vectors():
    # orthogonal -> 1, 45 degrees -> 1 - 1/sqrt(2), a zero row is at distance 1 from everything but itself.
    F = np.array([[1, 0], [0, 2], [3, 3], [0, 0]], dtype=np.float32)
    D = cosine_distance_matrix(F)
    c = 1 - 1 / np.sqrt(2)
    expected = np.array([[0, 1, c, 1], [1, 0, c, 1], [c, c, 0, 1], [1, 1, 1, 0]])
    np.testing.assert_allclose(D, expected, atol=1e-6)
    assert D.dtype == np.float32


def test_opposite_vectors_are_at_distance_two():
    # Signed features (not post-ReLU) reach d = 2; nothing is clipped to 1.
    D = cosine_distance_matrix(np.array([[1.0, 0.0]]), np.array([[-2.0, 0.0]]))
    np.testing.assert_allclose(D, [[2.0]])


def test_mode_and_mirrored_fits_of_hand_made_distances():
    # Four values in [0.30, 0.31) make that bin the mode, m = 0.30. Left {0.2, 0.25}: sigma_l^2 =
    # (0.1^2 + 0.05^2) / 2. Right {0.305 x4, 0.5, 0.6}: sigma_r^2 = (4 * 0.005^2 + 0.2^2 + 0.3^2) / 6.
    d = np.array([0.305] * 4 + [0.2, 0.25, 0.5, 0.6], dtype=np.float32)
    fits = half_gaussian_fits(d)
    assert fits["mode"] == pytest.approx(0.30)
    assert fits["mu_l"] == pytest.approx(0.30) and fits["mu_r"] == pytest.approx(0.30)
    assert fits["sigma_l"] == pytest.approx(np.sqrt(0.00625), abs=1e-6)
    assert fits["sigma_r"] == pytest.approx(np.sqrt(0.1301 / 6), abs=1e-6)
    d_l, d_r = thresholds(fits)
    assert d_l == pytest.approx(0.30 - 2 * np.sqrt(0.00625), abs=1e-6)
    assert d_r == pytest.approx(0.30 + 2 * np.sqrt(0.1301 / 6), abs=1e-6)
    assert (fits["n_left"], fits["n_right"]) == (2, 6)


def test_values_at_the_mode_edge_go_left():
    # The diagonal zeros make bin 0 the mode, m = 0: L = {d <= 0} = the zeros (sigma_l = 0), R = {0.5}.
    fits = half_gaussian_fits(np.array([0.0, 0.0, 0.0, 0.5], dtype=np.float32))
    assert fits["mode"] == 0.0
    assert (fits["n_left"], fits["n_right"]) == (3, 1)
    assert fits["sigma_l"] == 0.0 and fits["sigma_r"] == pytest.approx(0.5)


def test_fits_match_scipy_norm_fit_of_the_mirrored_samples():
    # The reference code fits scipy.stats.norm to L u (2m - L) and (2m - R) u R; the closed form must agree.
    rng = np.random.default_rng(0)
    F = np.abs(rng.standard_normal((120, 16))).astype(np.float32)
    D = cosine_distance_matrix(F)
    counts, _ = np.histogram(D, bins=100, range=(0.0, 1.0))
    m = np.argmax(counts) / 100
    L, R = D[D <= m].astype(np.float64), D[D > m].astype(np.float64)
    mu_l, s_l = norm.fit(np.concatenate([L, 2 * m - L]))
    mu_r, s_r = norm.fit(np.concatenate([2 * m - R, R]))
    fits = half_gaussian_fits(D)
    assert fits["mode"] == pytest.approx(m)
    np.testing.assert_allclose(
        [fits["mu_l"], fits["sigma_l"], fits["mu_r"], fits["sigma_r"]], [mu_l, s_l, mu_r, s_r], rtol=1e-9, atol=1e-9
    )


def test_similarity_thresholds_are_strict():
    D = np.array([[0.0, 0.1, 0.5], [0.1, 0.2, 0.9], [0.5, 0.9, 0.0]])
    S = similarity_from_distances(D, d_l=0.1, d_r=0.5)
    # 0.1 is not < 0.1 and 0.5 is not > 0.5: both unknown (0).
    np.testing.assert_array_equal(S, [[1, 0, 0], [0, 0, -1], [0, -1, 1]])
    assert S.dtype == np.int8


def _clustered_features(n_per=15, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((4, 32)))
    return np.vstack([c + 0.3 * np.abs(rng.standard_normal((n_per, 32))) for c in centres]).astype(np.float32)


def test_semantic_similarity_equals_the_dense_recipe_and_is_blocked_consistently():
    F = _clustered_features()
    S, info = semantic_similarity(F)
    D = cosine_distance_matrix(F)
    fits = half_gaussian_fits(D)
    d_l, d_r = thresholds(fits)
    assert (info["d_l"], info["d_r"]) == pytest.approx((d_l, d_r))
    np.testing.assert_array_equal(S, similarity_from_distances(D, d_l, d_r))
    S_blocked, info_b = semantic_similarity(F, block_size=7)
    np.testing.assert_array_equal(S_blocked, S)
    # float32 products differ in the last bits between block shapes; the fits agree to round-off.
    assert info_b["d_l"] == pytest.approx(info["d_l"], rel=1e-5)
    np.testing.assert_array_equal(S, S.T)
    assert set(np.unique(S)) <= {-1, 0, 1}
    assert info["frac_similar"] == pytest.approx(np.mean(S == 1))


def test_original_rule_marks_more_pairs_dissimilar():
    # First code release: d > mu_l - sigma_l is dissimilar, left of the mode, so most pairs are.
    F = _clustered_features()
    S_paper, info_p = semantic_similarity(F, rule="paper")
    S_orig, info_o = semantic_similarity(F, rule="original")
    assert info_o["d_r"] == pytest.approx(info_o["mu_l"] - info_o["sigma_l"])
    assert info_o["d_l"] == pytest.approx(info_p["d_l"])
    assert info_o["frac_dissimilar"] > 0.5 > info_p["frac_dissimilar"]
    np.testing.assert_array_equal(S_orig == 1, S_paper == 1)


def test_bad_inputs_raise_invalid_input():
    with pytest.raises(InvalidInput, match="NaN"):
        semantic_similarity(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(InvalidInput, match="rule"):
        semantic_similarity(np.eye(3), rule="nope")
    with pytest.raises(InvalidInput, match="2-D"):
        semantic_similarity(np.ones(3))
