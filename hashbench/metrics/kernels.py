"""The fused numba kernel: Hamming distances, relevance, histograms and index-order AP in one pass.

Per query it streams the database once: XOR + popcount of packed uint64 code words (LLVM ``ctpop``),
relevance from packed label bitmasks (or class-id equality), the histograms ``n[d]`` and ``r[d]``
over distance d = 0..B, and for each relevant item its rank inside its tie group in database order,
which with the group offsets is its exact position in the stable order (``map_index``, no sort).
With K well below nd a second pass visits only the items that reach the top K. Queries run in
parallel blocks; memory is O(threads x nd) beside the inputs, nothing of size nq x nd is formed.
The package docstring (:mod:`hashbench.metrics`) states what is computed.
"""

from __future__ import annotations

import numpy as np

from ..bits import pack_words
from .jit import CACHE, intrinsic, ir, njit, numba, prange, types

__all__ = ["histogram_kernel", "histograms_numba"]


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


@njit(cache=CACHE)
def _distance(qw, q, dw, i, n_words):
    d = 0
    for w in range(n_words):
        d += _popcount(qw[q, w] ^ dw[i, w])
    return d


@njit(cache=CACHE)
def _relevant(qk, q, dk, i, n_lab, multi):
    if not multi:
        return qk[q, 0] == dk[i, 0]
    hit = np.uint64(0)
    for j in range(n_lab):
        hit |= qk[q, j] & dk[i, j]
    return hit != 0


@njit(cache=CACHE)
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


@njit(cache=CACHE)
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


@njit(cache=CACHE)
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


@njit(parallel=True, cache=CACHE, nogil=True)
def histogram_kernel(qw, dw, qk, dk, multi, topk, n_blocks, hist_n, hist_r, ap_index):
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


def histograms_numba(qc, dc, qk, dk, multi, topk, chunk_size):
    """``(hist_n, hist_r, ap_index)`` of bool codes and label keys (:func:`.validation.label_keys`)."""
    qw, dw = pack_words(qc), pack_words(dc)
    nq, n_bins = qc.shape[0], qc.shape[1] + 1
    hist_n = np.zeros((nq, n_bins), np.int64)
    hist_r = np.zeros((nq, n_bins), np.int64)
    ap_index = np.zeros(nq, np.float64)
    step = nq if chunk_size is None else int(chunk_size)
    for s in range(0, nq, step):
        e = min(nq, s + step)
        # a few blocks per thread balance the load; each block allocates its buffers once
        n_blocks = min(e - s, 4 * numba.get_num_threads())
        histogram_kernel(qw[s:e], dw, qk[s:e], dk, multi, topk, n_blocks, hist_n[s:e], hist_r[s:e], ap_index[s:e])
    return hist_n, hist_r, ap_index
