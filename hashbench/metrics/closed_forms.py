"""Closed forms of the tie-aware metrics from the two histograms per query (numba).

From ``n[d]`` (items at Hamming distance d) and ``r[d]`` (relevant ones) alone: the expected AP (or
AP@K) over uniformly random orders inside every tie group, in harmonic numbers (McSherry & Najork,
ECIR 2008); at a cut-off K that splits a tie group, the exact expectation of the ratio over the
hypergeometric number of that group's relevant items in the top K; the least and greatest AP that
tie order can produce; and the expected precision@N. The derivations are in the package docstring
(:mod:`hashbench.metrics`).
"""

from __future__ import annotations

import math

from .jit import CACHE, njit, prange

__all__ = ["closed_form_scores"]


@njit(cache=CACHE)
def _harmonic(x):
    """H_x = sum_{i=1..x} 1/i (x >= 0); asymptotic series for x >= 64 (error below 1e-20)."""
    if x < 64:
        h = 0.0
        for i in range(1, x + 1):
            h += 1.0 / i
        return h
    xf = float(x)
    x2 = 1.0 / (xf * xf)
    return (
        math.log(xf) + 0.5772156649015329 + 0.5 / xf - x2 * (1.0 / 12 - x2 * (1.0 / 120 - x2 * (1.0 / 252 - x2 / 240)))
    )


@njit(cache=CACHE)
def _hdiff(a, b):
    """H_b - H_a = sum_{i=a+1..b} 1/i without the cancellation of subtracting two large H values."""
    if b - a <= 16:
        s = 0.0
        for i in range(a + 1, b + 1):
            s += 1.0 / i
        return s
    if a < 64:
        return _harmonic(b) - _harmonic(a)
    af = float(a)
    bf = float(b)
    # log1p and the exact difference of the 1/(2x) terms carry the value; the higher terms are tiny.
    ia2 = 1.0 / (af * af)
    ib2 = 1.0 / (bf * bf)
    t = math.log1p((bf - af) / af) + (af - bf) / (2.0 * af * bf)
    t -= (ib2 - ia2) / 12.0
    t += (ib2 * ib2 - ia2 * ia2) / 120.0
    t -= (ib2 * ib2 * ib2 - ia2 * ia2 * ia2) / 252.0
    t += (ib2 * ib2 * ib2 * ib2 - ia2 * ia2 * ia2 * ia2) / 240.0
    return t


@njit(cache=CACHE)
def _group_expected(o, n, r, r0):
    """E[sum_{p=1..n} rel_p P@(o+p)] for a tie group of n items (r relevant) in uniformly random order.

    Item p is relevant with probability r/n and then has r0 + 1 + (p-1)(r-1)/(n-1) relevant items
    up to it (METRICS.md, "Facts"). Writing the numerator as alpha + beta (o + p) gives
    n beta + alpha (H_{o+n} - H_o).
    """
    if r == 0:
        return 0.0
    if n == 1:
        return (r0 + 1.0) / (o + 1.0)
    beta = (r / n) * (r - 1.0) / (n - 1.0)
    alpha = (r / n) * (r0 + 1.0) - beta * (o + 1.0)
    return n * beta + alpha * _hdiff(o, o + n)


@njit(cache=CACHE)
def _first_sum(o, j, r0):
    """sum_{i=1..j} (r0+i)/(o+i): j relevant items at the start of a group placed after o items."""
    if j == 0:
        return 0.0
    return j + (r0 - o) * _hdiff(o, o + j)


@njit(cache=CACHE)
def _cut_expected(o, m, j, r0, hd):
    """_group_expected(o, m, j, r0) with hd = H_{o+m} - H_o given (it does not depend on j)."""
    if j == 0:
        return 0.0
    if m == 1:
        return (r0 + 1.0) / (o + 1.0)
    beta = (j / m) * (j - 1.0) / (m - 1.0)
    alpha = (j / m) * (r0 + 1.0) - beta * (o + 1.0)
    return m * beta + alpha * hd


@njit(cache=CACHE)
def _cut_group(o, n, r, r0, m, s_exp, s_max, s_min):
    """Expected, greatest and least AP@K when K cuts a tie group after its first m of n items.

    o, r0: items and relevant items before the group (all inside the top K); s_exp: expected sum of
    rel_i P@i over those items; s_max / s_min: the same sum with relevant items first / last in
    every earlier group. J, the number of the group's relevant items in the top K, is
    hypergeometric; its probabilities are built by ratios from the mode outwards and normalised
    (terms below 1e-20 of the mode are dropped: they change nothing in double precision). Every
    j costs O(1): the harmonic sums are updated from j to j + 1.
    """
    jlo = max(0, r - (n - m))
    jhi = min(r, m)
    mode = ((m + 1) * (r + 1)) // (n + 2)
    mode = min(max(mode, jlo), jhi)
    hd = _hdiff(o, o + m)
    tot_w = 0.0
    acc_a = 0.0
    acc_b = 0.0
    # upwards from the mode (inclusive), then downwards
    w = 1.0
    j = mode
    while True:
        tot_w += w
        z = r0 + j
        if z > 0:
            acc_a += w / z
            acc_b += w * _cut_expected(o, m, j, r0, hd) / z
        if j >= jhi:
            break
        w *= (r - j) * (m - j) / ((j + 1.0) * (n - r - m + j + 1.0))
        j += 1
        if w < 1e-20:
            break
    w = 1.0
    j = mode
    while j > jlo:
        w *= j * (n - r - m + j) / ((r - j + 1.0) * (m - j + 1.0))
        j -= 1
        if w < 1e-20:
            break
        tot_w += w
        z = r0 + j
        if z > 0:
            acc_a += w / z
            acc_b += w * _cut_expected(o, m, j, r0, hd) / z
    ap = (s_exp * acc_a + acc_b) / tot_w
    # extremes over j: f_first(j) = sum_{i<=j} (r0+i)/(o+i) (relevant first in the cut part),
    # f_last(j) = sum_{i<=j} (r0+i)/(o+m-j+i) (relevant last), with
    # f_last(j+1) = f_last(j) + (r0+1)/(o+m-j) + (H_{o+m} - H_{o+m-j})
    f_first = _first_sum(o, jlo, r0)
    f_last = _first_sum(o + m - jlo, jlo, r0)
    tail = _hdiff(o + m - jlo, o + m)
    best = -1.0
    worst = 2.0
    for j in range(jlo, jhi + 1):
        z = r0 + j
        if z == 0:
            vmax = 0.0
            vmin = 0.0
        else:
            vmax = (s_max + f_first) / z
            vmin = (s_min + f_last) / z
        best = max(best, vmax)
        worst = min(worst, vmin)
        if j == jhi:
            break
        f_first += (r0 + j + 1.0) / (o + j + 1.0)
        f_last += (r0 + 1.0) / (o + m - j) + tail
        tail += 1.0 / (o + m - j)
    return ap, best, worst


@njit(parallel=True, cache=CACHE, nogil=True)
def closed_form_scores(hist_n, hist_r, topk, precision_at, ap, ap_max, ap_min, prec):
    """Tie-aware AP@topk, its extremes over tie orders, and expected precision@N, from histograms."""
    nq, n_bins = hist_n.shape
    n_prec = precision_at.shape[0]
    for q in prange(nq):
        nd = 0
        for d in range(n_bins):
            nd += hist_n[q, d]
        kk = min(topk, nd)
        o = 0
        r0 = 0
        s_exp = 0.0
        s_max = 0.0
        s_min = 0.0
        cut = False
        for d in range(n_bins):
            n = hist_n[q, d]
            r = hist_r[q, d]
            if n == 0:
                continue
            if o + n <= kk:
                if r > 0:
                    s_exp += _group_expected(o, n, r, r0)
                    s_max += _first_sum(o, r, r0)
                    s_min += _first_sum(o + n - r, r, r0)
                o += n
                r0 += r
                if o == kk:
                    break
            else:
                a, b, c = _cut_group(o, n, r, r0, kk - o, s_exp, s_max, s_min)
                ap[q] = a
                ap_max[q] = b
                ap_min[q] = c
                cut = True
                break
        if not cut:
            if r0 > 0:
                ap[q] = s_exp / r0
                ap_max[q] = s_max / r0
                ap_min[q] = s_min / r0
            else:
                ap[q] = 0.0
                ap_max[q] = 0.0
                ap_min[q] = 0.0
        for t in range(n_prec):
            big_n = min(precision_at[t], nd)
            o = 0
            rel = 0.0
            for d in range(n_bins):
                n = hist_n[q, d]
                if o + n <= big_n:
                    rel += hist_r[q, d]
                    o += n
                else:
                    rel += (big_n - o) * hist_r[q, d] / n
                    break
            prec[q, t] = rel / big_n if big_n > 0 else 0.0
