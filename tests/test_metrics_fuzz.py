"""Property-based tests of hashbench.metrics.evaluate against a brute-force pure-Python reference (issue 11, item 15).

hypothesis draws the shape of a case (sizes, bit lengths 1..130, codes random, from a small pool
or all equal, single-label ids or multi-hot labels, the cut-off K: 1, inside a tie group, nd, beyond
nd, or any) and a seed for its arrays. The reference knows nothing of histograms or harmonic numbers:

- small cases: every distinct arrangement of relevant items inside each tie group is enumerated
  (each is equally likely under a uniformly random tie order), giving the exact mean, least and
  greatest AP@K and the mean precision@N;
- larger cases: the expected AP@K by linearity of expectation over positions, in exact fractions,
  conditioning on how many of the cut group's relevant items reach the top K; the extremes by
  writing out the relevant-first and relevant-last rankings for each such count.

Index-order AP comes from a stable sort, the precision-recall curve from counting the Hamming ball.
The default runs are derandomised (the same examples every run) and quick; ``-m slow`` runs many more.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashbench.metrics import evaluate, hamming_histograms

TOL = 1e-12

QUICK = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,  # no .hypothesis folder in the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
THOROUGH = settings(QUICK, max_examples=800, derandomize=False)


# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------


@st.composite
def cases(draw, max_nd: int):
    """(qc, dc, ql, dl, topk, precision_at, chunk_size): one random evaluation problem."""
    code_kind = draw(st.sampled_from(["random", "pool", "all_equal", "random", "pool", "pool"]))
    label_kind = draw(st.sampled_from(["ids", "multi_bool", "multi_int"]))
    k_kind = draw(st.sampled_from(["none", "one", "tie", "nd", "beyond", "any", "tie", "tie"]))
    seed = draw(st.integers(0, 2**32 - 1))
    # sizes come from the seed: hypothesis's own integers put a third of a short run at the minimum
    rng = np.random.default_rng(seed)
    n_bits = (
        int(rng.choice([1, 2, 7, 8, 63, 64, 65, 128, 129, 130])) if rng.random() < 0.4 else int(rng.integers(1, 131))
    )
    nq = int(rng.integers(1, 5))
    nd = 1 if rng.random() < 0.05 else int(rng.integers(2, max_nd + 1))
    n_classes = int(rng.integers(1, 7)) if label_kind == "ids" else int(rng.choice([1, 3, 8, 64, 65, 70, 130]))
    density = float(rng.choice([0.05, 0.2, 0.5, 0.9]))

    if code_kind == "all_equal":
        code = rng.random(n_bits) < 0.5
        dc = np.tile(code, (nd, 1))
        qc = np.tile(code, (nq, 1)) if rng.random() < 0.5 else np.tile(rng.random(n_bits) < 0.5, (nq, 1))
    elif code_kind == "pool":
        pool = rng.random((int(rng.integers(2, 7)), n_bits)) < 0.5
        dc = pool[rng.integers(0, len(pool), nd)]
        qc = pool[rng.integers(0, len(pool), nq)] if rng.random() < 0.7 else rng.random((nq, n_bits)) < 0.5
    else:
        p = rng.choice([0.1, 0.5])
        dc, qc = rng.random((nd, n_bits)) < p, rng.random((nq, n_bits)) < p

    if label_kind == "ids":
        dl = rng.integers(0, n_classes, nd)
        # class n_classes is absent from the database: such a query has no relevant item
        ql = rng.integers(0, n_classes + 1, nq)
    else:
        dl = rng.random((nd, n_classes)) < density
        ql = rng.random((nq, n_classes)) < density
        if n_classes > 64 and rng.random() < 0.5:
            # labels only beyond the first 64 classes: relevance must come from the second mask word
            dl[:, :64] = ql[:, :64] = False
        if label_kind == "multi_int":
            dl, ql = dl.astype(np.int64), ql.astype(np.uint8)

    dist0 = np.sort((qc[0][None, :] != dc).sum(1))
    if k_kind == "none":
        topk = None
    elif k_kind == "one":
        topk = 1
    elif k_kind == "nd":
        topk = nd
    elif k_kind == "beyond":
        topk = nd + int(rng.integers(1, 5))
    elif k_kind == "tie":
        # a K that splits a tie group of the first query (after its first item, before its last)
        inside = [i for i in range(1, nd) if dist0[i - 1] == dist0[i]]
        topk = int(rng.choice(inside)) if inside else int(rng.integers(1, nd + 1))
    else:
        topk = int(rng.integers(1, nd + 3))
    precision_at = tuple(int(n) for n in rng.integers(1, nd + 4, size=int(rng.integers(1, 4))))
    chunk_size = [None, None, 1, 3][int(rng.integers(0, 4))]
    return qc, dc, ql, dl, topk, precision_at, chunk_size


# ----------------------------------------------------------------------------------------------
# the reference, from the definitions
# ----------------------------------------------------------------------------------------------


def relevance(ql, dl) -> np.ndarray:
    ql, dl = np.asarray(ql), np.asarray(dl)
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(int) @ dl.astype(int).T) > 0


def ap_at(rel_seq, k) -> float:
    """AP@k of one ranking (list of 0/1): (1/Z) sum_{i<=k} rel_i P@i, Z = relevant items in the top k."""
    top = rel_seq[: len(rel_seq) if k is None else k]
    hits, total = 0, []
    for i, r in enumerate(top, 1):
        if r:
            hits += 1
            total.append(hits / i)
    return math.fsum(total) / hits if hits else 0.0


def groups(dist_row, rel_row):
    """(n, r) of each tie group in ascending distance."""
    return [(int((dist_row == d).sum()), int(rel_row[dist_row == d].sum())) for d in np.unique(dist_row)]


def top_groups(grp, k):
    """The groups that reach the top k (the last one possibly cut)."""
    out, o = [], 0
    for n, r in grp:
        if o >= k:
            break
        out.append((n, r))
        o += n
    return out


def n_arrangements(grp, depth) -> int:
    return math.prod(math.comb(n, r) for n, r in top_groups(grp, depth))


def enumerate_all(grp, k, precision_at):
    """Mean, min, max of AP@k and mean p@N over every arrangement of relevant items in every tie group
    that reaches the deepest position any of them reads (each arrangement is equally likely)."""
    nd = sum(n for n, _ in grp)
    kk = nd if k is None else min(k, nd)
    part = top_groups(grp, enumeration_depth(grp, k, precision_at))
    aps, precs = [], []
    for choice in itertools.product(*(itertools.combinations(range(n), r) for n, r in part)):
        seq = []
        for (n, _), pos in zip(part, choice, strict=True):
            seq += [int(p in pos) for p in range(n)]
        aps.append(ap_at(seq, kk))
        precs.append([sum(seq[: min(m, nd)]) / min(m, nd) for m in precision_at])
    return math.fsum(aps) / len(aps), min(aps), max(aps), np.mean(precs, axis=0)


def enumeration_depth(grp, k, precision_at) -> int:
    nd = sum(n for n, _ in grp)
    return max([nd if k is None else min(k, nd)] + [min(m, nd) for m in precision_at])


def expected_sum(o, n, r, r0) -> Fraction:
    """E[sum_{p=1..n} rel_p P@(o+p)] for a group of n items, r relevant, in uniformly random order.

    By linearity, position p contributes P(rel_p) (r0 + 1) / (o + p) plus, for each earlier position p'
    of the group, P(rel_p and rel_p') / (o + p) = r (r-1) / (n (n-1)) / (o + p).
    """
    if r == 0:
        return Fraction(0)
    total = Fraction(0)
    for p in range(1, n + 1):
        both = Fraction(r * (r - 1), n * (n - 1)) if n > 1 else Fraction(0)
        total += (Fraction(r, n) * (r0 + 1) + (p - 1) * both) / (o + p)
    return total


def expected_ap(grp, k) -> Fraction:
    """Exact E[AP@k] over uniformly random tie orders."""
    nd = sum(n for n, _ in grp)
    kk = nd if k is None else min(k, nd)
    o, r0, s = 0, 0, Fraction(0)
    for n, r in grp:
        if o + n <= kk:
            s += expected_sum(o, n, r, r0)
            o, r0 = o + n, r0 + r
            if o == kk:
                return s / r0 if r0 else Fraction(0)
            continue
        # K cuts this group after m of its n items: J of its r relevant items land in the top K,
        # hypergeometric; given J = j they sit at uniformly random places among the m
        m, ap = kk - o, Fraction(0)
        for j in range(max(0, r - (n - m)), min(r, m) + 1):
            pj = Fraction(math.comb(r, j) * math.comb(n - r, m - j), math.comb(n, m))
            if r0 + j:
                ap += pj * (s + expected_sum(o, m, j, r0)) / (r0 + j)
        return ap
    return s / r0 if r0 else Fraction(0)


def extremes(grp, k) -> tuple[float, float]:
    """Least and greatest AP@k over tie orders: for each count j of the cut group's relevant items in
    the top k, relevant items last (first) in every group, written out as a ranking."""
    nd = sum(n for n, _ in grp)
    kk = nd if k is None else min(k, nd)
    part = top_groups(grp, kk)
    n_c, r_c = part[-1]
    m = kk - sum(n for n, _ in part[:-1])
    lo, hi = [], []
    for j in range(max(0, r_c - (n_c - m)), min(r_c, m) + 1):
        first, last = [], []
        for n, r in part[:-1]:
            first += [1] * r + [0] * (n - r)
            last += [0] * (n - r) + [1] * r
        first += [1] * j + [0] * (m - j)
        last += [0] * (m - j) + [1] * j
        hi.append(ap_at(first, kk))
        lo.append(ap_at(last, kk))
    return min(lo), max(hi)


def expected_precision(grp, big) -> float:
    o, rel = 0, Fraction(0)
    for n, r in grp:
        take = min(n, big - o)
        if take <= 0:
            break
        rel += Fraction(r * take, n)
        o += take
    return float(rel / big)


def stable_ap(dist_row, rel_row, k) -> float:
    order = sorted(range(len(dist_row)), key=lambda i: (dist_row[i], i))
    return ap_at([int(rel_row[i]) for i in order], k)


# ----------------------------------------------------------------------------------------------
# the property
# ----------------------------------------------------------------------------------------------


def check_case(case, enumerate_limit: int) -> None:
    qc, dc, ql, dl, topk, precision_at, chunk_size = case
    nq, nd = len(qc), len(dc)
    out = evaluate(qc, dc, ql, dl, topk=topk, precision_at=precision_at, per_query=True, chunk_size=chunk_size)
    pq = out["per_query"]
    dist = (qc[:, None, :] != dc[None, :, :]).sum(-1)
    rel = relevance(ql, dl)
    ref_ap = np.zeros(nq)
    for i in range(nq):
        grp = groups(dist[i], rel[i])
        exp = float(expected_ap(grp, topk))
        lo, hi = extremes(grp, topk)
        prec = [expected_precision(grp, min(m, nd)) for m in precision_at]
        if n_arrangements(grp, enumeration_depth(grp, topk, precision_at)) <= enumerate_limit:
            e_mean, e_lo, e_hi, e_prec = enumerate_all(grp, topk, precision_at)
            assert exp == pytest.approx(e_mean, abs=TOL)
            assert (lo, hi) == (pytest.approx(e_lo, abs=TOL), pytest.approx(e_hi, abs=TOL))
            np.testing.assert_allclose(prec, e_prec, rtol=0, atol=TOL)
        ref_ap[i] = exp
        assert pq["ap"][i] == pytest.approx(exp, abs=TOL)
        assert pq["ap_min"][i] == pytest.approx(lo, abs=TOL)
        assert pq["ap_max"][i] == pytest.approx(hi, abs=TOL)
        assert pq["ap_index"][i] == pytest.approx(stable_ap(dist[i], rel[i], topk), abs=TOL)
        assert lo - TOL <= pq["ap_index"][i] <= hi + TOL and lo - TOL <= pq["ap"][i] <= hi + TOL
        for t, m in enumerate(precision_at):
            assert pq[f"p@{m}"][i] == pytest.approx(prec[t], abs=TOL)
    n_rel = rel.sum(1)
    assert np.array_equal(pq["n_relevant"], n_rel)

    # means under both zero_relevant rules
    assert out["map"] == pytest.approx(ref_ap.mean(), abs=TOL)
    assert out["n_queries"] == nq and out["n_zero_relevant"] == int((n_rel == 0).sum())
    skipped = evaluate(qc, dc, ql, dl, topk=topk, precision_at=precision_at, zero_relevant="skip")
    keep = n_rel > 0
    if keep.any():
        assert skipped["map"] == pytest.approx(ref_ap[keep].mean(), abs=TOL)
    else:
        assert math.isnan(skipped["map"]) and skipped["n_queries"] == 0

    # the Hamming-ball precision-recall curve and p@r2
    n_bits = qc.shape[1]
    for radius in range(n_bits + 1):
        inside = dist <= radius
        n_in, rel_in = inside.sum(1), (inside & rel).sum(1)
        p = np.where(n_in > 0, rel_in / np.maximum(n_in, 1), 0.0)
        r = np.where(n_rel > 0, rel_in / np.maximum(n_rel, 1), 0.0)
        assert out["pr"]["precision"][radius] == pytest.approx(p.mean(), abs=TOL)
        assert out["pr"]["recall"][radius] == pytest.approx(r.mean(), abs=TOL)
    assert out["p@r2"] == pytest.approx(out["pr"]["precision"][min(2, n_bits)], abs=TOL)


@QUICK
@given(cases(max_nd=10))
def test_small_cases_equal_the_enumeration_of_every_tie_order(case):
    check_case(case, enumerate_limit=5000)


@QUICK
@given(cases(max_nd=70))
def test_larger_cases_equal_the_exact_expectation(case):
    check_case(case, enumerate_limit=300)


@settings(QUICK, max_examples=15)
@given(cases(max_nd=40))
def test_torch_histograms_equal_numba_histograms(case):
    qc, dc, ql, dl, topk, _, chunk_size = case
    a = hamming_histograms(qc, dc, ql, dl, topk)
    b = hamming_histograms(qc, dc, ql, dl, topk, device="torch-cpu", chunk_size=chunk_size)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    np.testing.assert_allclose(a[2], b[2], rtol=0, atol=TOL)


@pytest.mark.slow
@THOROUGH
@given(cases(max_nd=12))
def test_small_cases_thoroughly(case):
    check_case(case, enumerate_limit=20000)


@pytest.mark.slow
@THOROUGH
@given(cases(max_nd=150))
def test_larger_cases_thoroughly(case):
    check_case(case, enumerate_limit=300)
