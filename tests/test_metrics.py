"""Specification tests of hashbench.metrics (docs/METRICS.md): each metric equals its definition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hashbench.errors import InvalidInput
from hashbench.metrics import evaluate, hamming_histograms

# ----------------------------------------------------------------------------------------------
# reference implementations: written from the definitions, as plainly as possible
# ----------------------------------------------------------------------------------------------


def relevance(ql, dl):
    """(nq, nd) bool: equal class (1-D labels) or at least one shared label (multi-hot)."""
    ql, dl = np.asarray(ql), np.asarray(dl)
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(int) @ dl.astype(int).T) > 0


def hamming(qc, dc):
    return (qc[:, None, :] != dc[None, :, :]).sum(-1)


def ap_of_ranking(rel_sorted, k=None):
    """AP@k = (1/Z) sum_{i<=k} rel_i P@i, Z = relevant items in the top k (0 when Z = 0)."""
    r = np.asarray(rel_sorted[: (len(rel_sorted) if k is None else k)], dtype=float)
    if r.sum() == 0:
        return 0.0
    prec = np.cumsum(r) / np.arange(1, len(r) + 1)
    return float((prec * r).sum() / r.sum())


def stable_sort_ap(qc, dc, ql, dl, k=None):
    """AP per query with ties broken by database index (np.argsort kind='stable')."""
    dist, rel = hamming(qc, dc), relevance(ql, dl)
    return np.array([ap_of_ranking(rel[i][np.argsort(dist[i], kind="stable")], k) for i in range(len(qc))])


def all_tie_orders(dist_row):
    """Every ranking consistent with ascending distance (all permutations inside each tie group)."""
    groups = [np.flatnonzero(dist_row == d) for d in np.unique(dist_row)]
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield np.concatenate(perms)


def brute_force(dist_row, rel_row, k=None, precision_at=()):
    """Mean, min and max of AP@k over all tie orders, and the mean of precision@N."""
    aps, precs = [], []
    for order in all_tie_orders(dist_row):
        r = rel_row[order]
        aps.append(ap_of_ranking(r, k))
        precs.append([r[: min(n, len(r))].mean() for n in precision_at])
    return float(np.mean(aps)), min(aps), max(aps), np.mean(precs, axis=0) if precision_at else None


def random_case(rng, nq, nd, n_bits, n_classes, multi=False, p_bit=0.5):
    qc = rng.random((nq, n_bits)) < p_bit
    dc = rng.random((nd, n_bits)) < p_bit
    if multi:
        ql = rng.random((nq, n_classes)) < 0.3
        dl = rng.random((nd, n_classes)) < 0.3
    else:
        ql = rng.integers(0, n_classes, nq)
        dl = rng.integers(0, n_classes, nd)
    return qc, dc, ql, dl


# ----------------------------------------------------------------------------------------------
# a hand-computed example
# ----------------------------------------------------------------------------------------------


def test_hand_computed_example():
    """One query, 4 items at distances 0, 1, 1, 2 with relevance 1, 1, 0, 1.

    map_index (ties by index): ranking 1 1 0 1 -> AP = (1/1 + 2/2 + 3/4) / 3 = 11/12.
    Tie group {items 1, 2}: relevant first gives 11/12, relevant last gives (1 + 2/3 + 3/4)/3 = 29/36,
    so map = their mean 31/36 (two orders, equally likely), map_min = 29/36, map_max = 11/12.
    map@2: orders [1, 1] -> 1 and [1, 0] -> 1, so 1. p@2 = (2 + 1)/2 / 2 = 0.75. p@r2 = 3/4.
    """
    q = np.array([[0, 0]], bool)
    db = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], bool)
    ql, dl = np.array([0]), np.array([0, 0, 1, 0])
    out = evaluate(q, db, ql, dl, precision_at=(2,))
    assert out["map_index"] == pytest.approx(11 / 12, abs=1e-15)
    assert out["map"] == pytest.approx(31 / 36, abs=1e-15)
    assert out["map_min"] == pytest.approx(29 / 36, abs=1e-15)
    assert out["map_max"] == pytest.approx(11 / 12, abs=1e-15)
    assert out["p@2"] == pytest.approx(0.75, abs=1e-15)
    assert out["p@r2"] == pytest.approx(0.75, abs=1e-15)
    np.testing.assert_allclose(out["pr"]["precision"], [1.0, 2 / 3, 3 / 4])
    np.testing.assert_allclose(out["pr"]["recall"], [1 / 3, 2 / 3, 1.0])
    assert evaluate(q, db, ql, dl, topk=2)["map"] == pytest.approx(1.0, abs=1e-15)


def test_cut_group_expectation_is_of_the_ratio_not_ratio_of_expectations():
    """Distances 0,0,1,1,1 with relevance 1,0,1,0,0 and K = 3 (hand-enumerated: 2 x 3 orders).

    Position of the relevant item in group 0 (1 or 2) x which item of group 1 lands at rank 3.
    rel first: rank-3 relevant (1/3) -> (1 + 2/3)/2, else 1 -> 17/18.
    rel second: rank-3 relevant (1/3) -> (1/2 + 2/3)/2, else 1/2 -> 19/36. Mean 53/72.
    """
    q = np.zeros((1, 2), bool)
    db = np.array([[0, 0], [0, 0], [1, 0], [1, 0], [1, 0]], bool)
    out = evaluate(q, db, np.array([1]), np.array([1, 0, 1, 0, 0]), topk=3)
    assert out["map"] == pytest.approx(53 / 72, abs=1e-15)
    # the order-extremes: relevant-first everywhere and 0 relevant of the cut group in the top 3 (AP 1)
    assert out["map_max"] == pytest.approx(1.0, abs=1e-15)
    assert out["map_min"] == pytest.approx(0.5, abs=1e-15)


# ----------------------------------------------------------------------------------------------
# tie-aware metrics equal their definitions: all orders, then Monte-Carlo
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [None, 1, 3, 5, 8])
def test_tie_aware_equals_average_over_all_orders(seed, k):
    """On 8 items with 2-bit codes (big tie groups) every tie order is enumerated."""
    rng = np.random.default_rng(seed)
    multi = seed % 2 == 1
    qc, dc, ql, dl = random_case(rng, 3, 8, 2, 3, multi=multi)
    out = evaluate(qc, dc, ql, dl, topk=k, precision_at=(1, 3, 6, 20), per_query=True)
    dist, rel = hamming(qc, dc), relevance(ql, dl)
    for i in range(len(qc)):
        mean, lo, hi, prec = brute_force(dist[i], rel[i], k, precision_at=(1, 3, 6, 20))
        pq = out["per_query"]
        assert pq["ap"][i] == pytest.approx(mean, abs=1e-12)
        assert pq["ap_min"][i] == pytest.approx(lo, abs=1e-12)
        assert pq["ap_max"][i] == pytest.approx(hi, abs=1e-12)
        for t, n in enumerate((1, 3, 6, 20)):
            assert pq[f"p@{n}"][i] == pytest.approx(prec[t], abs=1e-12)


def test_tie_aware_matches_monte_carlo_on_larger_case():
    """400 items, 6 bits: groups too large to enumerate; average 4000 random tie orders per query.

    Per-order AP values lie in [0, 1], so the Monte-Carlo mean has standard error <= 0.5/sqrt(4000)
    ~ 0.008; the observed spread is far smaller, and 5 standard errors estimated from the samples
    bounds the difference (a wrong formula, e.g. ratio of expectations at the cut, is off by more).
    """
    rng = np.random.default_rng(7)
    qc, dc, ql, dl = random_case(rng, 4, 400, 6, 4)
    dist, rel = hamming(qc, dc), relevance(ql, dl)
    for k in (None, 50):
        pq = evaluate(qc, dc, ql, dl, topk=k, per_query=True)["per_query"]
        for i in range(len(qc)):
            samples = []
            for _ in range(4000):
                order = np.lexsort((rng.random(400), dist[i]))
                samples.append(ap_of_ranking(rel[i][order], k))
            se = np.std(samples) / math.sqrt(len(samples))
            assert abs(pq["ap"][i] - np.mean(samples)) < 5 * se + 1e-12
            assert pq["ap_min"][i] <= min(samples) + 1e-12 and max(samples) <= pq["ap_max"][i] + 1e-12


# ----------------------------------------------------------------------------------------------
# map_index equals a stable sort; bounds; torch path
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("n_bits", [3, 8, 70])
@pytest.mark.parametrize("k", [None, 1, 37, 250, 10_000])
def test_map_index_equals_stable_sort(multi, n_bits, k):
    """Random codes, few bits -> many ties; 70 bits exercises the multi-word kernel path."""
    rng = np.random.default_rng(n_bits + (k or 0))
    qc, dc, ql, dl = random_case(rng, 20, 300, n_bits, 5, multi=multi)
    out = evaluate(qc, dc, ql, dl, topk=k, per_query=True)
    np.testing.assert_allclose(out["per_query"]["ap_index"], stable_sort_ap(qc, dc, ql, dl, k), rtol=0, atol=1e-13)
    pq = out["per_query"]
    assert np.all(pq["ap_min"] <= pq["ap"] + 1e-12) and np.all(pq["ap"] <= pq["ap_max"] + 1e-12)
    assert np.all(pq["ap_min"] <= pq["ap_index"] + 1e-12) and np.all(pq["ap_index"] <= pq["ap_max"] + 1e-12)


def test_more_than_64_classes_uses_multiword_label_masks():
    rng = np.random.default_rng(3)
    qc, dc, _, _ = random_case(rng, 10, 200, 5, 2)
    ql = rng.random((10, 100)) < 0.02
    dl = rng.random((200, 100)) < 0.02
    out = evaluate(qc, dc, ql, dl, topk=50, per_query=True)
    np.testing.assert_allclose(out["per_query"]["ap_index"], stable_sort_ap(qc, dc, ql, dl, 50), atol=1e-13)
    assert np.array_equal(out["per_query"]["n_relevant"], relevance(ql, dl).sum(1))


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("k", [None, 40])
def test_torch_path_equals_numba_path(multi, k):
    """device='torch-cpu' runs the code written for CUDA: same histograms, same numbers."""
    rng = np.random.default_rng(11)
    qc, dc, ql, dl = random_case(rng, 30, 500, 12, 4, multi=multi)
    hn, hr, api = hamming_histograms(qc, dc, ql, dl, k)
    tn, tr, tapi = hamming_histograms(qc, dc, ql, dl, k, device="torch-cpu", chunk_size=7)
    assert np.array_equal(hn, tn) and np.array_equal(hr, tr)
    np.testing.assert_allclose(api, tapi, atol=1e-13)
    a = evaluate(qc, dc, ql, dl, topk=k)
    b = evaluate(qc, dc, ql, dl, topk=k, device="torch-cpu")
    for key in ("map", "map_index", "map_min", "map_max", "p@100", "p@r2"):
        assert a[key] == pytest.approx(b[key], abs=1e-13)


def test_histograms_count_items_and_relevant_items_per_distance():
    rng = np.random.default_rng(5)
    qc, dc, ql, dl = random_case(rng, 6, 100, 9, 3, multi=True)
    hn, hr, _ = hamming_histograms(qc, dc, ql, dl, chunk_size=4)
    dist, rel = hamming(qc, dc), relevance(ql, dl)
    for i in range(6):
        assert np.array_equal(hn[i], np.bincount(dist[i], minlength=10))
        assert np.array_equal(hr[i], np.bincount(dist[i], weights=rel[i], minlength=10).astype(int))


def test_precision_recall_of_hamming_ball():
    rng = np.random.default_rng(9)
    qc, dc, ql, dl = random_case(rng, 8, 120, 6, 3)
    out = evaluate(qc, dc, ql, dl)
    dist, rel = hamming(qc, dc), relevance(ql, dl)
    for radius in range(7):
        inside = dist <= radius
        n_in, rel_in = inside.sum(1), (inside & rel).sum(1)
        prec = np.where(n_in > 0, rel_in / np.maximum(n_in, 1), 0.0)
        recall = np.where(rel.sum(1) > 0, rel_in / np.maximum(rel.sum(1), 1), 0.0)
        assert out["pr"]["precision"][radius] == pytest.approx(prec.mean(), abs=1e-14)
        assert out["pr"]["recall"][radius] == pytest.approx(recall.mean(), abs=1e-14)
    assert out["p@r2"] == pytest.approx(out["pr"]["precision"][2], abs=1e-15)


# ----------------------------------------------------------------------------------------------
# degenerate inputs
# ----------------------------------------------------------------------------------------------


def test_all_codes_equal_gives_one_tie_group():
    """One tie group of n = 4 items with r = 2 relevant: position p is relevant with probability 1/2
    and then has 1 + (p-1)/3 relevant items up to it, so E[AP] = (1/2) sum_p (1/2)(1 + (p-1)/3)/p
    = (1/4)(1 + 2/3 + 5/9 + 1/2) = 49/72, which the enumeration of all 24 orders confirms."""
    q = np.zeros((1, 8), bool)
    db = np.zeros((4, 8), bool)
    ql, dl = np.array([1]), np.array([1, 0, 1, 0])
    out = evaluate(q, db, ql, dl, precision_at=(2,))
    mean, lo, hi, _ = brute_force(np.zeros(4, int), dl == 1)
    assert mean == pytest.approx(49 / 72, abs=1e-15)
    assert out["map"] == pytest.approx(mean, abs=1e-15)
    # rel-first: AP 1; rel-last (0 0 1 1): (1/3 + 2/4)/2 = 5/12; stable order 1 0 1 0: (1 + 2/3)/2
    assert (out["map_max"], out["map_min"]) == (pytest.approx(1.0), pytest.approx(5 / 12))
    assert out["map_index"] == pytest.approx(5 / 6)
    assert out["p@2"] == pytest.approx(0.5)


def test_queries_without_relevant_items_count_as_zero_or_are_skipped():
    q = np.array([[0, 0], [1, 1]], bool)
    db = np.array([[0, 0], [0, 1], [1, 1]], bool)
    ql, dl = np.array([0, 7]), np.array([0, 1, 0])  # query 1 (class 7) has nothing relevant
    counted = evaluate(q, db, ql, dl, per_query=True)
    skipped = evaluate(q, db, ql, dl, zero_relevant="skip")
    ap0 = counted["per_query"]["ap"][0]
    assert counted["per_query"]["ap"][1] == 0.0 and counted["n_zero_relevant"] == 1
    assert counted["map"] == pytest.approx(ap0 / 2) and counted["n_queries"] == 2
    assert skipped["map"] == pytest.approx(ap0) and skipped["n_queries"] == 1
    assert skipped["zero_relevant"] == "skip"
    nothing = evaluate(q[1:], db, ql[1:], dl, zero_relevant="skip")
    assert math.isnan(nothing["map"]) and nothing["n_queries"] == 0


def test_one_query_one_item_and_k_beyond_database():
    q, db = np.array([[1, 0, 1]], bool), np.array([[1, 1, 1]], bool)
    out = evaluate(q, db, [2], [2], topk=1000, precision_at=(1, 5))
    for key in ("map", "map_index", "map_min", "map_max", "p@1", "p@5"):
        assert out[key] == 1.0
    assert evaluate(q, db, [2], [3])["map"] == 0.0
    rng = np.random.default_rng(1)
    qc, dc, ql, dl = random_case(rng, 5, 30, 4, 3)
    full, beyond = evaluate(qc, dc, ql, dl), evaluate(qc, dc, ql, dl, topk=31)
    for key in ("map", "map_index", "map_min", "map_max"):
        assert beyond[key] == pytest.approx(full[key], abs=1e-15)


def test_zero_one_integer_codes_are_accepted_and_bad_input_is_rejected():
    q, db = np.array([[1, 0]]), np.array([[1, 0], [0, 0]])
    assert evaluate(q, db, [0], [0, 1])["map"] == 1.0
    with pytest.raises(InvalidInput, match="bits"):
        evaluate(np.zeros((1, 3), bool), np.zeros((2, 4), bool), [0], [0, 0])
    with pytest.raises(InvalidInput, match="labels"):
        evaluate(np.zeros((1, 3), bool), np.zeros((2, 3), bool), [0], [0, 0, 0])
    with pytest.raises(InvalidInput, match="bool"):
        evaluate(np.full((1, 3), 0.5), np.zeros((2, 3), bool), [0], [0, 0])
    with pytest.raises(InvalidInput, match="topk"):
        evaluate(np.zeros((1, 3), bool), np.zeros((2, 3), bool), [0], [0, 0], topk=0)
    with pytest.raises(InvalidInput, match="zero_relevant"):
        evaluate(np.zeros((1, 3), bool), np.zeros((2, 3), bool), [0], [0, 0], zero_relevant="drop")
    with pytest.raises(InvalidInput, match="device"):
        evaluate(np.zeros((1, 3), bool), np.zeros((2, 3), bool), [0], [0, 0], device="tpu")
