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
  closed form in harmonic numbers (:func:`_group_expected`).
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
  relevant items kept in the top K that maximises (minimises) AP@K. Departure from METRICS.md's
  wording ("relevant last / first"), made so that ``map_min <= map <= map_max`` always holds.

Conventions: relevance = sharing at least one label (1-D labels: equal class). A query with no
relevant item in the database has AP = 0 and counts in the means (``zero_relevant="count"``) or is
dropped from every mean (``"skip"``). ``p@N`` is the expected precision of the top min(N, nd)
items. ``pr`` is the precision (0 for an empty ball) and recall (0 for a query without relevant
items) of the Hamming ball of radius r = 0..B; ``p@r2`` is its precision at radius 2.

Speed: a fused numba kernel (packed-bit XOR + popcount, relevance from packed label bitmasks, the
histogram and the stable-order ranks in one pass over the database, queries in parallel) replaces
the usual per-query label product, distance product and argsort. Memory is O(threads x nd) beside
the inputs; nothing of size nq x nd is ever formed. ``device="cuda"`` (or ``"cpu"`` through torch)
computes the histograms and ``map_index`` with torch on chunks of queries and the closed forms with
the same code, so the numbers agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .errors import InvalidInput

__all__ = ["evaluate", "hamming_histograms"]


# ----------------------------------------------------------------------------------------------
# numba building blocks
# ----------------------------------------------------------------------------------------------


@intrinsic
def _popcount(typingctx, x):
    """Population count of a uint64 as int64 (LLVM ``ctpop``: one ``popcnt`` instruction)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def _cttz(typingctx, x):
    """Count of trailing zero bits of a non-zero uint64 as int64 (LLVM ``cttz``: one ``tzcnt``)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _first_sum(o, j, r0):
    """sum_{i=1..j} (r0+i)/(o+i): j relevant items at the start of a group placed after o items."""
    if j == 0:
        return 0.0
    return j + (r0 - o) * _hdiff(o, o + j)


@njit(cache=True)
def _distance(qw, q, dw, i, n_words):
    d = 0
    for w in range(n_words):
        d += _popcount(qw[q, w] ^ dw[i, w])
    return d


@njit(cache=True)
def _relevant(qk, q, dk, i, n_lab, multi):
    if not multi:
        return qk[q, 0] == dk[i, 0]
    hit = np.uint64(0)
    for j in range(n_lab):
        hit |= qk[q, j] & dk[i, j]
    return hit != 0


@njit(cache=True)
def _query_list_pass(qw, qk, dw, dk, q, multi, cnt, lst):
    """Histogram of distances, and (rank inside its tie group, distance) of each relevant item, in
    database order. Returns the number of relevant items. cnt must be zero on entry."""
    nd = dw.shape[0]
    n_words = qw.shape[1]
    n_lab = qk.shape[1]
    nr = 0
    if n_words == 1 and n_lab == 1:
        c0 = qw[q, 0]
        l0 = qk[q, 0]
        for i in range(nd):
            d = _popcount(c0 ^ dw[i, 0])
            c = cnt[d] + 1
            cnt[d] = c
            # written for every item, kept only for relevant ones: no branch to mispredict
            lst[nr] = (c << 16) | d
            if multi:
                nr += (l0 & dk[i, 0]) != 0
            else:
                nr += l0 == dk[i, 0]
    else:
        for i in range(nd):
            d = _distance(qw, q, dw, i, n_words)
            c = cnt[d] + 1
            cnt[d] = c
            lst[nr] = (c << 16) | d
            nr += _relevant(qk, q, dk, i, n_lab, multi)
    return nr


@njit(cache=True)
def _query_hist_pass(qw, qk, dw, dk, q, multi, h2):
    """Histogram over key 2 d + rel (one counter per item). h2 must be zero on entry."""
    nd = dw.shape[0]
    n_words = qw.shape[1]
    n_lab = qk.shape[1]
    if n_words == 1 and n_lab == 1:
        c0 = qw[q, 0]
        l0 = qk[q, 0]
        for i in range(nd):
            d = _popcount(c0 ^ dw[i, 0])
            if multi:
                h2[2 * d + ((l0 & dk[i, 0]) != 0)] += 1
            else:
                h2[2 * d + (l0 == dk[i, 0])] += 1
    else:
        for i in range(nd):
            h2[2 * _distance(qw, q, dw, i, n_words) + _relevant(qk, q, dk, i, n_lab, multi)] += 1


@njit(cache=True)
def _query_cut_pass(qw, qk, dw, dk, q, multi, dcut, m, first, rfirst, run, rrun, flags):
    """Second pass for small K: AP@K of the stable order. A vectorisable loop flags the items at
    distance <= dcut (the group that K cuts after its first m items, and those before it); the
    flags are then read eight at a time as uint64 words, so the few flagged items are visited in
    database order at little cost. run, rrun zero on entry; flags: uint8, length a multiple of 8,
    zero beyond nd."""
    nd = dw.shape[0]
    n_words = qw.shape[1]
    n_lab = qk.shape[1]
    if n_words == 1:
        c0 = qw[q, 0]
        for i in range(nd):
            flags[i] = _popcount(c0 ^ dw[i, 0]) <= dcut
    else:
        for i in range(nd):
            flags[i] = _distance(qw, q, dw, i, n_words) <= dcut
    fw = flags.view(np.uint64)
    s = 0.0
    z = 0
    for wi in range(fw.shape[0]):
        x = fw[wi]
        while x != 0:
            i = wi * 8 + (_cttz(x) >> 3)
            x &= x - np.uint64(1)
            d = _distance(qw, q, dw, i, n_words)
            c = run[d] + 1
            run[d] = c
            if (d < dcut or c <= m) and _relevant(qk, q, dk, i, n_lab, multi):
                rrun[d] += 1
                s += (rfirst[d] + rrun[d]) / (first[d] + c)
                z += 1
    return s / z if z > 0 else 0.0


@njit(parallel=True, cache=True, nogil=True)
def _histogram_kernel(qw, dw, qk, dk, multi, topk, n_blocks, hist_n, hist_r, ap_index):
    """Per query: distance, relevance and histogram in one pass over the database, plus AP@topk of
    the order with ties broken by database index.

    qw, dw: packed codes (n, W) uint64; qk, dk: labels (n, L) uint64, compared for equality
    (``multi`` False, L = 1) or as bitmasks sharing a bit (``multi`` True). Fills hist_n, hist_r
    (nq, B+1) and ap_index (nq,). With topk well below nd, a first pass counts (distance,
    relevance) pairs and a second visits only the items that reach the top K; otherwise one pass
    also records each relevant item's rank inside its tie group (its running group count).
    """
    nq = qw.shape[0]
    nd = dw.shape[0]
    n_bins = hist_n.shape[1]
    two_pass = 4 * topk <= nd
    for blk in prange(n_blocks):
        lo = blk * nq // n_blocks
        hi = (blk + 1) * nq // n_blocks
        cnt = np.zeros(n_bins, np.int64)
        rcnt = np.zeros(n_bins, np.int64)
        h2 = np.zeros(2 * n_bins, np.int64)
        first = np.zeros(n_bins, np.int64)
        rfirst = np.zeros(n_bins, np.int64)
        # relevant items' (group rank, distance) in one pass, or the flags of the second pass
        lst = np.empty(0 if two_pass else nd, np.int64)
        flags = np.zeros(-(-nd // 8) * 8 if two_pass else 0, np.uint8)
        for q in range(lo, hi):
            nr = 0
            if two_pass:
                h2[:] = 0
                _query_hist_pass(qw, qk, dw, dk, q, multi, h2)
                for d in range(n_bins):
                    rcnt[d] = h2[2 * d + 1]
                    cnt[d] = h2[2 * d] + rcnt[d]
            else:
                cnt[:] = 0
                nr = _query_list_pass(qw, qk, dw, dk, q, multi, cnt, lst)
                rcnt[:] = 0
                for k in range(nr):
                    rcnt[lst[k] & 65535] += 1
            o = 0
            r0 = 0
            dcut = n_bins - 1
            m = 0
            found = False
            for d in range(n_bins):
                first[d] = o
                rfirst[d] = r0
                if not found and o + cnt[d] >= topk:
                    dcut = d
                    m = topk - o
                    found = True
                o += cnt[d]
                r0 += rcnt[d]
                hist_n[q, d] = cnt[d]
                hist_r[q, d] = rcnt[d]
            if two_pass:
                cnt[:] = 0
                rcnt[:] = 0
                ap_index[q] = _query_cut_pass(qw, qk, dw, dk, q, multi, dcut, m, first, rfirst, cnt, rcnt, flags)
                continue
            # rcnt becomes the running count of relevant items met so far in each group
            rcnt[:] = 0
            s = 0.0
            z = 0
            for k in range(nr):
                d = lst[k] & 65535
                rcnt[d] += 1
                pos = first[d] + (lst[k] >> 16)
                if pos <= topk:
                    s += (rfirst[d] + rcnt[d]) / pos
                    z += 1
            ap_index[q] = s / z if z > 0 else 0.0


@njit(cache=True)
def _cut_expected(o, m, j, r0, hd):
    """_group_expected(o, m, j, r0) with hd = H_{o+m} - H_o given (it does not depend on j)."""
    if j == 0:
        return 0.0
    if m == 1:
        return (r0 + 1.0) / (o + 1.0)
    beta = (j / m) * (j - 1.0) / (m - 1.0)
    alpha = (j / m) * (r0 + 1.0) - beta * (o + 1.0)
    return m * beta + alpha * hd


@njit(cache=True)
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


@njit(parallel=True, cache=True, nogil=True)
def _closed_forms(hist_n, hist_r, topk, precision_at, ap, ap_max, ap_min, prec):
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


# ----------------------------------------------------------------------------------------------
# input preparation
# ----------------------------------------------------------------------------------------------


def _as_codes(codes, name: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D array (n, n_bits) of bool codes; got shape {c.shape}")
    if c.shape[0] == 0 or c.shape[1] == 0:
        raise InvalidInput(f"{name} is empty (shape {c.shape}); give at least one code of at least one bit")
    if c.dtype != np.bool_:
        if not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)) or not np.all(
            (c == 0) | (c == 1)
        ):
            raise InvalidInput(
                f"{name} must hold bool codes (or 0/1); got dtype {c.dtype}. Binarise with codes = h >= 0"
            )
        c = c.astype(bool)
    return c


def _pack_words(codes: np.ndarray) -> np.ndarray:
    """Pack bool rows into little-endian uint64 words (n, ceil(B/64)); padding bits are 0 in every row."""
    packed = np.packbits(codes, axis=1, bitorder="little")
    n_bytes = -(-packed.shape[1] // 8) * 8
    if n_bytes != packed.shape[1]:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], n_bytes - packed.shape[1]), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)


def _label_keys(query_labels, db_labels, nq: int, nd: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Labels as (n, L) uint64: class ids (L = 1, compared for equality) or multi-hot bitmasks."""
    ql = np.asarray(query_labels)
    dl = np.asarray(db_labels)
    if ql.shape[:1] != (nq,) or dl.shape[:1] != (nd,):
        raise InvalidInput(
            f"labels do not match the codes: {ql.shape[:1]} query labels for {nq} query codes, "
            f"{dl.shape[:1]} database labels for {nd} database codes"
        )
    if ql.ndim != dl.ndim or ql.ndim not in (1, 2):
        raise InvalidInput(
            "labels must both be 1-D class ids or both 2-D multi-hot; "
            f"got {ql.ndim}-D query and {dl.ndim}-D database labels"
        )
    if ql.ndim == 1:
        for arr, name in ((ql, "query_labels"), (dl, "db_labels")):
            if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
                if not (
                    np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
                ):
                    raise InvalidInput(f"{name} must be integer class ids; got dtype {arr.dtype}")
        qk = ql.astype(np.int64).view(np.uint64).reshape(nq, 1)
        dk = dl.astype(np.int64).view(np.uint64).reshape(nd, 1)
        return np.ascontiguousarray(qk), np.ascontiguousarray(dk), False
    if ql.shape[1] == 0:
        raise InvalidInput("multi-hot labels have no class column; give (n, C) arrays with C >= 1")
    if ql.shape[1] != dl.shape[1]:
        raise InvalidInput(
            f"multi-hot labels disagree in class count: {ql.shape[1]} (queries) vs {dl.shape[1]} (database)"
        )
    for arr, name in ((ql, "query_labels"), (dl, "db_labels")):
        if arr.dtype != np.bool_ and not np.all(np.isfinite(arr)):
            raise InvalidInput(f"{name} holds NaN or infinite values; multi-hot labels must be 0/1")
    return _pack_words(ql != 0), _pack_words(dl != 0), True


def _check_args(topk, precision_at, zero_relevant, chunk_size, device) -> tuple[int | None, np.ndarray]:
    if topk is not None:
        if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)) or topk < 1:
            raise InvalidInput(f"topk must be a positive integer or None (whole database); got {topk!r}")
    pa = list(precision_at) if isinstance(precision_at, Iterable) else [precision_at]
    for n in pa:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInput(f"precision_at must list positive integers, e.g. (100, 1000); got {precision_at!r}")
    if zero_relevant not in ("count", "skip"):
        raise InvalidInput(f"zero_relevant must be 'count' or 'skip'; got {zero_relevant!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
    ):
        raise InvalidInput(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
    if not isinstance(device, str) or not (device in ("cpu", "torch-cpu") or device.startswith("cuda")):
        raise InvalidInput(
            f"device must be 'cpu' (numba), 'cuda[:i]' or 'torch-cpu' (torch on the CPU); got {device!r}"
        )
    return (None if topk is None else int(topk)), np.asarray(pa, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# histograms: numba (CPU) or torch (CUDA, or CPU for testing)
# ----------------------------------------------------------------------------------------------


def _histograms_numba(qc, dc, qk, dk, multi, topk, chunk_size):
    qw, dw = _pack_words(qc), _pack_words(dc)
    nq, n_bins = qc.shape[0], qc.shape[1] + 1
    hist_n = np.zeros((nq, n_bins), np.int64)
    hist_r = np.zeros((nq, n_bins), np.int64)
    ap_index = np.zeros(nq, np.float64)
    step = nq if chunk_size is None else int(chunk_size)
    for s in range(0, nq, step):
        e = min(nq, s + step)
        # a few blocks per thread balance the load; each block allocates its buffers once
        n_blocks = min(e - s, 4 * numba.get_num_threads())
        _histogram_kernel(qw[s:e], dw, qk[s:e], dk, multi, topk, n_blocks, hist_n[s:e], hist_r[s:e], ap_index[s:e])
    return hist_n, hist_r, ap_index


def _histograms_torch(qc, dc, qk, dk, multi, topk, chunk_size, device):
    import torch

    dev = torch.device(device)
    nq, n_bits = qc.shape
    nd = dc.shape[0]
    # Hamming distance = (B - <q, x>)/2 on +-1 codes: exact in float32 (and TF32) for B <= 2^24
    ds = torch.from_numpy(dc).to(dev, torch.float32).mul_(2).sub_(1)
    qs = torch.from_numpy(qc).to(dev, torch.float32).mul_(2).sub_(1)
    tqk = torch.from_numpy(qk.view(np.int64)).to(dev)
    tdk = torch.from_numpy(dk.view(np.int64)).to(dev)
    kk = min(topk, nd)
    step = chunk_size or max(1, (1 << 22) // nd)
    ar = torch.arange(nd, device=dev, dtype=torch.int64)
    pos = torch.arange(1, kk + 1, device=dev, dtype=torch.float64)
    out_n, out_r, out_ap = [], [], []
    for s in range(0, nq, step):
        e = min(nq, s + step)
        dist = torch.round((n_bits - qs[s:e] @ ds.T) * 0.5).to(torch.int64)
        if multi:
            rel = torch.zeros(dist.shape, dtype=torch.bool, device=dev)
            for j in range(tqk.shape[1]):
                rel |= (tqk[s:e, j, None] & tdk[None, :, j]) != 0
        else:
            rel = tqk[s:e, 0, None] == tdk[None, :, 0]
        hn = torch.zeros((e - s, n_bits + 1), dtype=torch.int64, device=dev)
        hr = torch.zeros_like(hn)
        hn.scatter_add_(1, dist, torch.ones_like(dist))
        hr.scatter_add_(1, dist, rel.to(torch.int64))
        # keys are unique, so any sort of them is the stable order of distances
        key = dist * nd + ar
        if kk < nd:
            order = torch.topk(key, kk, dim=1, largest=False, sorted=True).indices
        else:
            order = torch.argsort(key, dim=1)
        rs = rel.gather(1, order).to(torch.float64)
        z = rs.sum(1)
        ssum = (rs * rs.cumsum(1) / pos).sum(1)
        out_ap.append(torch.where(z > 0, ssum / z.clamp(min=1), torch.zeros_like(z)).cpu())
        out_n.append(hn.cpu())
        out_r.append(hr.cpu())
    return (torch.cat(out_n).numpy(), torch.cat(out_r).numpy(), torch.cat(out_ap).numpy())


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
    qc = _as_codes(query_codes, "query_codes")
    dc = _as_codes(db_codes, "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise InvalidInput(
            f"query codes have {qc.shape[1]} bits and database codes {dc.shape[1]}; encode both with one model"
        )
    if qc.shape[1] > 65535:
        # the kernel stores a distance in 16 bits
        raise InvalidInput(f"codes of {qc.shape[1]} bits are too long; hashbench's metrics take up to 65535 bits")
    nq, nd = qc.shape[0], dc.shape[0]
    qk, dk, multi = _label_keys(query_labels, db_labels, nq, nd)
    kk = nd if topk is None else min(int(topk), nd)
    if device == "cpu":
        return _histograms_numba(qc, dc, qk, dk, multi, kk, chunk_size)
    return _histograms_torch(qc, dc, qk, dk, multi, kk, chunk_size, "cpu" if device == "torch-cpu" else device)


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
    """Ranking metrics of Hamming ranking (docs/METRICS.md, version 1).

    Args:
        query_codes, db_codes: (nq, B) and (nd, B) bool codes (0/1 accepted).
        query_labels, db_labels: 1-D integer class ids, or 2-D multi-hot (nq, C), (nd, C);
            relevant = sharing at least one label.
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
        ``"skip"`` leaves no query. With ``per_query``: ``per_query`` = {"ap", "ap_index",
        "ap_min", "ap_max", "n_relevant", "p@N"...} over all queries.
    """
    topk, pa = _check_args(topk, precision_at, zero_relevant, chunk_size, device)
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
    _closed_forms(hist_n, hist_r, kk, pa, ap, ap_max, ap_min, prec)

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
        metric_version=1,
    )
    if per_query:
        pq = {"ap": ap, "ap_index": ap_index, "ap_min": ap_min, "ap_max": ap_max, "n_relevant": n_rel}
        for t, n in enumerate(pa.tolist()):
            pq[f"p@{n}"] = prec[:, t]
        out["per_query"] = pq
    return out
