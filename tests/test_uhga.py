"""UHGA and UHGA+GA (baselines/uhga.py): loss, similarity construction, training end to end."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hashbench_baselines.uhga import (
    UHGA,
    UHGAGA,
    derived_threshold,
    pairwise_likelihood_loss,
    similarity_matrix,
    threshold_similarity,
)

from hashbench.errors import InvalidInput
from hashbench.methods.similarity import cosine_distance_matrix

FAST = {"epochs": 2, "hidden": 16, "batch_size": 16, "device": "cpu"}  # sim_threshold derived


def blobs(n=80, d=12, seed=0):
    """Non-negative features in 4 clusters (like fc7 after ReLU)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (4, d)) ** 3
    labels = rng.integers(0, 4, n)
    X = np.abs(centres[labels] + 0.05 * rng.standard_normal((n, d)))
    return X.astype(np.float32), labels


def test_likelihood_loss_hand_computed():
    # theta = 0.2 P = [[0, 1], [-1, 2]]; S = I; rho = 2 gives weights [[2, 1], [1, 2]] (sum 6).
    P = torch.tensor([[0.0, 5.0], [-5.0, 10.0]], dtype=torch.float64)
    S = torch.eye(2, dtype=torch.int8)
    sp = lambda t: math.log1p(math.exp(t))  # noqa: E731
    expected = (2 * sp(0) + sp(1) + sp(-1) + 2 * (sp(2) - 2)) / 6
    got = pairwise_likelihood_loss(P, S, gamma=0.2, positive_weight=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # rho = 1 is the plain mean of the per-pair negative log-likelihoods.
    plain = pairwise_likelihood_loss(P, S, gamma=0.2, positive_weight=1.0)
    assert plain.item() == pytest.approx((sp(0) + sp(1) + sp(-1) + sp(2) - 2) / 4, rel=1e-12)


def test_likelihood_loss_is_finite_for_saturated_codes():
    # gamma u.v of 128-bit codes reaches +-25.6 with gamma 0.2; and +-1000 must not overflow either.
    P = torch.tensor([[1000.0, -1000.0]])
    S = torch.tensor([[0, 1]])
    assert torch.isfinite(pairwise_likelihood_loss(P, S, gamma=1.0))


def test_threshold_similarity_on_hand_made_distances():
    # cos >= 0.7  <=>  d <= 0.3: the pair at 0.25 is similar, 0.31 and 0.8 are not; d = 0 always is.
    D = np.array([[0.0, 0.25, 0.8], [0.25, 0.0, 0.31], [0.8, 0.31, 0.0]])
    S = threshold_similarity(D, 0.7)
    assert S.dtype == np.int8
    np.testing.assert_array_equal(S, [[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    # The boundary counts as similar (cos = 0.75 exactly at threshold 0.75).
    assert threshold_similarity(np.array([0.25]), 0.75)[0] == 1


def test_similarity_matrix_blocks_and_the_all_similar_end_of_table_2():
    X, _ = blobs(n=37)
    S = similarity_matrix(X, 0.9, block_size=8)
    np.testing.assert_array_equal(S, threshold_similarity(cosine_distance_matrix(X), 0.9))
    assert np.array_equal(S, S.T) and np.all(np.diag(S) == 1)
    # Non-negative features have cosine similarity >= 0, so threshold 0 makes every pair similar.
    assert similarity_matrix(X, 0.0).all()


def test_uhga_and_uhga_ga_fit_and_encode():
    X, _ = blobs()
    for cls in (UHGA, UHGAGA):
        m = cls(n_bits=8, **FAST)
        assert m.fit(X[:60]) is m
        codes = m.encode(X[60:])
        assert codes.dtype == bool and codes.shape == (20, 8)
        assert 0 < m.similarity_info_["frac_similar"] < 1
        assert len(m.history_["loss"]) == 2 and all(np.isfinite(m.history_["loss"]))


def test_uhga_ga_is_deterministic_under_a_seed():
    X, _ = blobs(n=48)
    a = UHGAGA(n_bits=8, random_state=3, **FAST).fit(X).project(X)
    b = UHGAGA(n_bits=8, random_state=3, **FAST).fit(X).project(X)
    np.testing.assert_array_equal(a, b)


class _NeutralUHGAGA(UHGAGA):
    """UHGA+GA with the attention frozen at alpha = 1/2 (its last layer zeroed)."""

    def training_state(self, ctx):
        state = super().training_state(ctx)
        with torch.no_grad():
            state["attention"].net[-1].weight.zero_()
            state["attention"].net[-1].bias.zero_()
        for q in state["attention"].parameters():
            q.requires_grad_(False)
        return state


def test_uhga_ga_with_neutral_attention_trains_like_uhga():
    # GA with alpha = 1/2 is the plain gradient: same batches, dropout masks and SGD steps as UHGA,
    # so the two fits agree up to float32 round-off.
    X, _ = blobs()
    plain = UHGA(n_bits=8, **FAST).fit(X).project(X)
    neutral = _NeutralUHGAGA(n_bits=8, **FAST).fit(X).project(X)
    np.testing.assert_allclose(neutral, plain, rtol=1e-4, atol=1e-5)
    # ...while the learned attention moves the fit away from it.
    learned = UHGAGA(n_bits=8, **FAST).fit(X).project(X)
    assert np.abs(learned - plain).max() > 1e-3


def test_validation_and_bad_parameters():
    X, _ = blobs()
    m = UHGA(n_bits=8, validation_fraction=0.2, **FAST).fit(X)
    assert len(m.history_["val_loss"]) == 2
    with pytest.raises(InvalidInput, match="sim_threshold"):
        UHGA(n_bits=8, **{**FAST, "sim_threshold": 1.5}).fit(X)
    with pytest.raises(InvalidInput, match="attention_lr"):
        UHGAGA(n_bits=8, attention_lr=0.0, **FAST).fit(X)


def test_a_threshold_that_makes_every_pair_similar_warns_with_a_fix():
    """Raw-pixel-like features (all similarities high) at the fc7 default: a warning naming the fix."""
    X = np.random.default_rng(0).random((60, 20)).astype(np.float32) + 1.0
    with pytest.warns(UserWarning, match=r"sim_threshold=0\.\d\d"):
        UHGA(n_bits=8, epochs=1, hidden=8, batch_size=16, device="cpu", sim_threshold=0.3).fit(X)


def test_derived_threshold_is_the_stated_quantile_of_the_distinct_pairs():
    X, _ = blobs(n=53)
    D = cosine_distance_matrix(X[:53], X)  # as similarity_matrix computes them (one row block here)
    pairs = np.sort(D[np.triu_indices(53, 1)])  # the 53 * 52 / 2 distinct pairs
    for q in (0.5, 0.9, 0.99):
        k = max(1, math.ceil((1 - q) * len(pairs)))
        t = derived_threshold(X, q)
        assert t == 1.0 - float(pairs[k - 1])
        assert derived_threshold(X, q, block_size=7) == pytest.approx(t, abs=1e-6)  # row blocks: same pairs
        S = similarity_matrix(X, t)
        similar_pairs = int(np.triu(S, 1).sum())
        assert similar_pairs >= k and similar_pairs == int((pairs <= pairs[k - 1]).sum())
    with pytest.raises(InvalidInput, match="sim_quantile"):
        derived_threshold(X, 1.0)


def test_default_threshold_is_derived_stored_and_never_collapses():
    """Pixel-like features whose pairs are all similar: the fc7 value 0.3 makes every pair similar; the
    derived threshold keeps about 10% of the distinct pairs similar, and its value is in resolved_params_."""
    X = np.random.default_rng(0).random((60, 20)).astype(np.float32) + 1.0
    assert similarity_matrix(X, 0.3).all()
    m = UHGA(n_bits=8, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no collapse warning
        m.fit(X)
    t = m.resolved_params_["sim_threshold"]
    assert t == derived_threshold(X, 0.9) and m.similarity_info_["sim_threshold"] == t
    distinct = (m.similarity_info_["frac_similar"] * 60 * 60 - 60) / (60 * 59)
    assert 0.1 <= distinct < 0.12
    assert m.sim_threshold is None, "fit must not overwrite the parameter"
    # A threshold set by hand is used as given, and nothing is reported as derived.
    set_by_hand = UHGA(n_bits=8, sim_threshold=0.999, **FAST).fit(X)
    assert set_by_hand.resolved_params_ == {} and set_by_hand.similarity_info_["sim_threshold"] == 0.999
