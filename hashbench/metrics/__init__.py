"""Ranking metrics of binary codes: exact tie-aware MAP, MAP@K, precision@N, precision-recall (docs/METRICS.md).

Everything is computed from two histograms per query over the Hamming distances d = 0..B: the
number of database items at each distance, ``n[d]``, and the number of relevant ones, ``r[d]``.
Items at one distance form a tie group. No ranking is ever sorted:

- ``map`` is the *expected* AP when every tie group is in uniformly random order (McSherry &
  Najork, "Computing information retrieval performance measures efficiently in the presence of
  tied scores", ECIR 2008; He et al., "Hashing as tie-aware learning to rank", CVPR 2018). For a
  group of n items holding r relevant ones, placed after o items of which r0 are relevant, the item
  at group position p is relevant with probability r/n and, given that, the expected number of
  relevant items up to it is r0 + 1 + (p-1)(r-1)/(n-1). The sum over p of that over (o + p) has a
  closed form in harmonic numbers (:mod:`.closed_forms`).
- ``map@K`` (``topk=K``): AP@K = (1/Z) sum_{i<=K} rel_i P@i with Z the number of relevant items in
  the top K (0 when Z = 0), the convention of the deep-hashing code that publishes MAP@5000. When K
  cuts a tie group, Z itself is random: the number J of the group's relevant items that land in
  the top m = K - o positions is hypergeometric (population n, r successes, m draws), and given
  J = j those j items sit at uniformly random positions of the m. The groups before the cut are
  independent of the cut group's order, so with S their (random) sum of rel_i P@i,
  E[AP@K] = E[S] * E[1/(r0+J)] + sum_j P(J=j) E[T | J=j] / (r0+j), where T is the cut part's sum and
  E[T | J=j] is the closed form of a full group of m items holding j relevant ones. This is the
  exact expectation of the ratio (not the ratio of expectations); tests check it against the
  average over every order of small cases.
- ``map_index``: ties broken by database index (a stable sort), the order of MATLAB-era code. The
  kernel records, for each relevant item, its rank inside its tie group in index order (the running
  count of the group when the item is met); with the group offsets from the histogram that is its
  exact position in the stable order, so AP and AP@K need no sort.
- ``map_min`` / ``map_max``: the least and greatest AP that tie order alone can produce. Over the
  whole database they are AP with relevant items last / first inside every tie group. With
  ``topk`` the two orders are not always the extremes (putting a relevant item of the cut group
  inside the top K can lower AP@K, because it adds a low precision to the mean), so hashbench takes
  the exact extremes: relevant-first (last) in every group and, in the cut group, the number j of
  relevant items kept in the top K that maximises (minimises) AP@K, so that ``map_min <= map <=
  map_max`` always holds: a departure from the earlier specification, recorded in docs/METRICS.md
  section 6.

Conventions: relevance = sharing at least one label (1-D labels: equal class). A query with no
relevant item in the database has AP = 0 and counts in the means (``zero_relevant="count"``) or is
dropped from every mean (``"skip"``). ``p@N`` is the expected precision of the top min(N, nd)
items. ``pr`` is the precision (0 for an empty ball) and recall (0 for a query without relevant
items) of the Hamming ball of radius r = 0..B; ``p@r2`` is its precision at radius 2.

Speed: a fused numba kernel (packed-bit XOR + popcount, relevance from packed label bitmasks, the
histogram and the stable-order ranks in one pass over the database, queries in parallel) replaces
the usual per-query label product, distance product and argsort. Memory is O(threads x nd) beside
the inputs; nothing of size nq x nd is ever formed. ``device="cuda"`` (or ``"torch-cpu"``) computes
the histograms and ``map_index`` with torch on chunks of queries and the closed forms with the same
code, so the numbers agree to rounding. Compiled kernels are cached under hashbench's cache folder
(``$HASHBENCH_CACHE/numba``, :mod:`.jit`), never next to the installed package.

Per-query scores and the metric spec: ``evaluate(..., per_query=True)`` also returns every query's
AP (tie-aware, and in index order), whose means are the scalar scores, so two methods can be
compared query by query without recomputing anything; :func:`per_query_scores` gives them in the
float32 form records store. :func:`metric_spec` names everything the scores depend on
(:data:`METRIC_VERSION`, ``topk``, ``precision_at``, ``zero_relevant``): scores cached under its
digest stay valid until one of those changes, and a new cut-off needs only the stored codes.

Layout:

- :mod:`.validation`: input checks (codes, labels, arguments), each failure an ``InvalidInput``;
- :mod:`.kernels`: the fused numba kernel (histograms and ``map_index``);
- :mod:`.torch_backend`: the same histograms with torch (CUDA, or the CPU for testing);
- :mod:`.closed_forms`: the tie-aware AP, AP@K, their extremes and p@N from the histograms (numba);
- :mod:`.jit`: numba, with its cache folder set before any kernel is defined;
- this module: :func:`evaluate`, :func:`hamming_histograms`, :func:`metric_spec`, :func:`per_query_scores`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .closed_forms import closed_form_scores
from .kernels import histograms_numba
from .torch_backend import histograms_torch
from .validation import check_args, check_codes, label_keys

__all__ = ["METRIC_VERSION", "evaluate", "hamming_histograms", "metric_spec", "per_query_scores"]

#: version of the metric definitions above; bump it when any number evaluate returns would change
METRIC_VERSION = 1


def metric_spec(
    topk: int | None = None, *, precision_at: Iterable[int] = (100, 1000), zero_relevant: str = "count"
) -> dict[str, Any]:
    """Everything the scores of :func:`evaluate` depend on, as a plain dict to digest into a cache key.

    The scores of given codes and labels are a function of this dict alone: the metric definitions
    (``metric_version``), the cut-off ``topk`` (None: the whole database), the N of ``p@N`` (sorted,
    duplicates dropped: the scores do not depend on their order) and the ``zero_relevant`` rule.
    ``device`` and ``chunk_size`` are left out: they change numbers only by rounding. Every key but
    ``metric_version`` is a keyword of :func:`evaluate`, so stored codes are rescored with
    ``evaluate(q, db, ql, dl, **{k: v for k, v in spec.items() if k != "metric_version"})``.

    >>> metric_spec(5000, precision_at=(1000, 100))
    {'metric_version': 1, 'topk': 5000, 'precision_at': [100, 1000], 'zero_relevant': 'count'}
    """
    topk, pa = check_args(topk, precision_at, zero_relevant, None, "cpu")
    return {
        "metric_version": METRIC_VERSION,
        "topk": topk,
        "precision_at": sorted(set(pa.tolist())),
        "zero_relevant": zero_relevant,
    }


def per_query_scores(scores: dict[str, Any]) -> dict[str, np.ndarray]:
    """The per-query arrays a record stores, from ``evaluate(..., per_query=True)``.

    ``ap`` (float32) is each query's tie-aware AP (AP@K where ``topk`` is set) and ``ap_index``
    (float32) its AP with ties in database-index order, over all queries in query order; a query
    without relevant items has 0 in both. ``n_relevant`` (int32) says which those are, so the
    ``zero_relevant="skip"`` means (over ``n_relevant > 0``) can be taken from the record too.
    float32 halves the size; the means reproduce ``map`` and ``map_index`` to about 1e-7.
    """
    pq = scores.get("per_query") if isinstance(scores, dict) else None
    if pq is None:
        raise InvalidInput("these scores hold no per-query arrays; compute them with evaluate(..., per_query=True)")
    return {
        "ap": np.asarray(pq["ap"], dtype=np.float32),
        "ap_index": np.asarray(pq["ap_index"], dtype=np.float32),
        "n_relevant": np.asarray(pq["n_relevant"], dtype=np.int32),
    }


def hamming_histograms(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    topk: int | None = None,
    *,
    chunk_size: int | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query histograms over Hamming distance 0..B, and AP@topk with ties in database-index order.

    Returns ``(hist_n, hist_r, ap_index)``: items and relevant items at each distance, (nq, B+1)
    int64 each, and (nq,) float64. ``device``: ``"cpu"`` (numba kernel), ``"cuda[:i]"`` (torch on
    that GPU) or ``"torch-cpu"`` (the torch code on the CPU, for testing).
    """
    qc, dc = check_codes(query_codes, db_codes)
    nq, nd = qc.shape[0], dc.shape[0]
    qk, dk, multi = label_keys(query_labels, db_labels, nq, nd)
    kk = nd if topk is None else min(int(topk), nd)
    if device == "cpu":
        return histograms_numba(qc, dc, qk, dk, multi, kk, chunk_size)
    return histograms_torch(qc, dc, qk, dk, multi, kk, chunk_size, "cpu" if device == "torch-cpu" else device)


def evaluate(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    topk: int | None = None,
    *,
    precision_at: Iterable[int] = (100, 1000),
    zero_relevant: str = "count",
    per_query: bool = False,
    chunk_size: int | None = None,
    device: str = "cpu",
) -> dict:
    """Ranking metrics of Hamming ranking (docs/METRICS.md, version :data:`METRIC_VERSION`).

    Args:
        query_codes, db_codes: (nq, B) and (nd, B) bool codes (0/1 accepted).
        query_labels, db_labels: 1-D integer class ids, or 2-D multi-hot (nq, C), (nd, C) of 0/1 or
            bool (±1 labels are rejected: convert with ``labels > 0``); relevant = sharing at least
            one label.
        topk: None for MAP over the whole database, K for MAP@K (AP@K = (1/Z) sum_{i<=K} rel_i P@i,
            Z = relevant items in the top K). K > nd means the whole database.
        precision_at: the N of the tie-aware ``p@N`` entries.
        zero_relevant: ``"count"`` (a query without relevant items has AP = 0 and counts in every
            mean) or ``"skip"`` (it is dropped from every mean).
        per_query: also return per-query arrays under ``"per_query"``.
        chunk_size: queries per kernel call (numba) or per torch chunk (default: all queries for
            numba, whose memory does not grow with them; about 4M query-item pairs for torch).
        device: ``"cpu"`` (numba), ``"cuda[:i]"`` or ``"torch-cpu"`` (torch). Same numbers.

    Returns:
        dict with ``map``, ``map_index``, ``map_min``, ``map_max`` (all @topk when given),
        ``p@N`` for each N, ``p@r2``, ``pr`` = {"radius", "precision", "recall"} arrays over
        r = 0..B, and metadata ``topk``, ``n_queries`` (queries in the means),
        ``n_zero_relevant``, ``zero_relevant``, ``metric_version``. Means are nan when
        ``"skip"`` leaves no query.

        With ``per_query``: ``per_query`` = a dict of (nq,) arrays over all queries, in query order:
        ``"ap"`` (tie-aware AP, AP@K with ``topk``), ``"ap_index"`` (AP with ties in index order),
        ``"ap_min"``, ``"ap_max"`` (float64), ``"n_relevant"`` (int64: relevant items in the
        database) and ``"p@N"`` for each N. ``map`` is the mean of ``ap`` and ``map_index`` that of
        ``ap_index`` over the queries in the means (all, or those with ``n_relevant > 0`` under
        ``"skip"``). :func:`per_query_scores` gives the float32 form a record stores.

    Example: one query, four items at Hamming distances 0, 1, 1, 2, relevant, relevant, not, relevant.
    Items 1 and 2 tie. In index order the ranking reads 1 1 0 1, AP = (1/1 + 2/2 + 3/4)/3 = 11/12;
    with the tie reversed, 1 0 1 1, AP = (1 + 2/3 + 3/4)/3 = 29/36; ``map`` is the mean over the two
    equally likely orders, 31/36, and the top 2 holds 1.5 relevant items on average:

    >>> from fractions import Fraction
    >>> q = np.array([[0, 0]], bool)
    >>> db = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], bool)
    >>> s = evaluate(q, db, [0], [0, 0, 1, 0], precision_at=(2,))
    >>> [Fraction(s[k]).limit_denominator(100) for k in ("map", "map_index", "map_min", "map_max", "p@2")]
    [Fraction(31, 36), Fraction(11, 12), Fraction(29, 36), Fraction(11, 12), Fraction(3, 4)]
    >>> evaluate(q, db, [0], [0, 0, 1, 0], topk=2)["map"]  # both orders put relevant items in the top 2
    1.0
    """
    topk, pa = check_args(topk, precision_at, zero_relevant, chunk_size, device)
    hist_n, hist_r, ap_index = hamming_histograms(
        query_codes, db_codes, query_labels, db_labels, topk, chunk_size=chunk_size, device=device
    )
    nq, n_bins = hist_n.shape
    nd = int(hist_n[0].sum())
    kk = nd if topk is None else min(topk, nd)
    ap = np.zeros(nq)
    ap_max = np.zeros(nq)
    ap_min = np.zeros(nq)
    prec = np.zeros((nq, pa.size))
    closed_form_scores(hist_n, hist_r, kk, pa, ap, ap_max, ap_min, prec)

    cum_n = np.cumsum(hist_n, axis=1)
    cum_r = np.cumsum(hist_r, axis=1)
    n_rel = cum_r[:, -1]
    ball_p = np.divide(cum_r, cum_n, out=np.zeros(cum_n.shape), where=cum_n > 0)
    ball_r = np.divide(cum_r, n_rel[:, None], out=np.zeros(cum_r.shape), where=n_rel[:, None] > 0)

    keep = n_rel > 0 if zero_relevant == "skip" else np.ones(nq, bool)
    n_used = int(keep.sum())

    def mean(x):
        return float(x[keep].mean(axis=0)) if n_used else float("nan")

    out = {
        "map": mean(ap),
        "map_index": mean(ap_index),
        "map_min": mean(ap_min),
        "map_max": mean(ap_max),
    }
    for t, n in enumerate(pa.tolist()):
        out[f"p@{n}"] = mean(prec[:, t])
    out["p@r2"] = mean(ball_p[:, min(2, n_bins - 1)])
    nan_curve = np.full(n_bins, np.nan)
    out["pr"] = {
        "radius": np.arange(n_bins),
        "precision": ball_p[keep].mean(axis=0) if n_used else nan_curve,
        "recall": ball_r[keep].mean(axis=0) if n_used else nan_curve.copy(),
    }
    out.update(
        topk=topk,
        n_queries=n_used,
        n_zero_relevant=int((n_rel == 0).sum()),
        zero_relevant=zero_relevant,
        metric_version=METRIC_VERSION,
    )
    if per_query:
        pq = {"ap": ap, "ap_index": ap_index, "ap_min": ap_min, "ap_max": ap_max, "n_relevant": n_rel}
        for t, n in enumerate(pa.tolist()):
            pq[f"p@{n}"] = prec[:, t]
        out["per_query"] = pq
    return out
