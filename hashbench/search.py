"""Hamming search of binary codes with faiss: exact k-NN, radius search, query timing.

Codes are bool arrays (n, B), bit = (h >= 0), or already packed uint8 rows. faiss's binary indexes
take uint8 rows of d/8 bytes, bit i of a code in bit (i mod 8) of byte i // 8 (least significant
first, as faiss's own ``fvecs2bitvecs`` packs), and need d to be a multiple of 8: exactly the order
of :func:`hashbench.bits.pack`, which pads the last byte with zero bits. Every code has the same
zeros there, so they XOR to 0 and no Hamming distance changes.

:func:`knn` uses ``faiss.GpuIndexBinaryFlat`` when faiss sees a GPU and k <= 2048 (the GPU limit),
else ``faiss.IndexBinaryFlat`` (exhaustive XOR + popcount on the CPU). faiss promises no order
among tied distances, so its output is for retrieval and timing, never for order-dependent metrics
(those come from :mod:`hashbench.metrics`). :func:`radius_search` returns the items with
d <= r; faiss's CPU range search is strict (d < radius), so it is called with radius r + 1, and it
always runs on the CPU (the GPU index has no range search). faiss uses its own thread pool with
every core; this module does not change it.
"""

from __future__ import annotations

import time

import faiss
import numpy as np

from .bits import as_codes, pack
from .errors import InvalidInput

__all__ = [
    "GPU_MAX_K",
    "OUTLIER_FACTOR",
    "QueryTiming",
    "build_index",
    "knn",
    "knn_bruteforce",
    "radius_search",
    "time_queries",
    "timing_stats",
]

#: the largest k faiss's GPU binary index answers
GPU_MAX_K = 2048


def _gpu_available() -> bool:
    return hasattr(faiss, "GpuIndexBinaryFlat") and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def build_index(db_codes: np.ndarray, *, k: int | None = None, use_gpu: bool | None = None):
    """An exhaustive faiss binary index holding ``db_codes`` (bool (n, B) or packed uint8).

    use_gpu: None picks the GPU when faiss has one and ``k`` (if given) is at most 2048; True
    demands it (InvalidInput when impossible); False keeps the CPU.
    """
    packed = _as_packed(db_codes, "db_codes")
    gpu_ok = _gpu_available() and (k is None or k <= GPU_MAX_K)
    if use_gpu and not gpu_ok:
        raise InvalidInput(
            "a GPU faiss index was asked for, but faiss sees no GPU or k > 2048; "
            "install faiss-gpu (extra 'gpu') or pass use_gpu=False"
        )
    d = 8 * packed.shape[1]
    if gpu_ok and use_gpu is not False:
        res = faiss.StandardGpuResources()
        index = faiss.GpuIndexBinaryFlat(res, d)
        # the index must not outlive its GPU resources
        index.referenced_objects = [res]
    else:
        index = faiss.IndexBinaryFlat(d)
    index.add(packed)
    return index


def _as_packed(codes, name: str) -> np.ndarray:
    """Packed uint8 rows as given; bool (or 0/1) codes checked, then packed in faiss's order (bits.pack)."""
    if isinstance(codes, np.ndarray) and codes.dtype == np.uint8 and codes.ndim == 2:
        return codes
    return pack(as_codes(codes, name))


def _queries(query_codes, n_bytes: int) -> np.ndarray:
    q = _as_packed(query_codes, "query_codes")
    if q.shape[1] != n_bytes:
        raise InvalidInput(
            f"query codes have {q.shape[1]} bytes per code and the database {n_bytes}; encode both with one model"
        )
    return q


def knn(db_codes: np.ndarray, query_codes: np.ndarray, k: int, *, use_gpu: bool | None = None):
    """The k nearest database codes of each query in Hamming distance.

    Returns ``(distances, indices)``, int32 and int64 arrays (nq, min(k, nd)), by ascending
    distance; the order among equal distances is faiss's and is not specified.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer; got {k!r}")
    db = _as_packed(db_codes, "db_codes")
    k = min(int(k), db.shape[0])
    index = build_index(db, k=k, use_gpu=use_gpu)
    dist, idx = index.search(_queries(query_codes, db.shape[1]), k)
    return dist.astype(np.int32), idx.astype(np.int64)


def knn_bruteforce(db_codes: np.ndarray, query_codes: np.ndarray, k: int, chunk_size: int = 256):
    """numpy reference for :func:`knn`: XOR + popcount, ties broken by database index.

    Returns ``(distances, indices)`` like :func:`knn`. Works on chunks of queries so memory stays
    at chunk_size x nd distances.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer; got {k!r}")
    db = _as_packed(db_codes, "db_codes")
    q = _queries(query_codes, db.shape[1])
    k = min(int(k), db.shape[0])
    # uint64 words make popcount 8x fewer operations; zero padding keeps distances unchanged
    n_words = -(-db.shape[1] // 8)

    def words(a):
        out = np.zeros((a.shape[0], 8 * n_words), np.uint8)
        out[:, : a.shape[1]] = a
        return out.view(np.uint64)

    dbw, qw = words(db), words(q)
    dists = np.empty((q.shape[0], k), np.int32)
    idxs = np.empty((q.shape[0], k), np.int64)
    for s in range(0, q.shape[0], chunk_size):
        e = min(q.shape[0], s + chunk_size)
        dist = np.zeros((e - s, dbw.shape[0]), np.int32)
        for w in range(n_words):
            dist += np.bitwise_count(qw[s:e, w, None] ^ dbw[None, :, w])
        if k < dist.shape[1]:
            # candidates by partition, then a stable order of (distance, index) among them
            part = np.argpartition(dist, k - 1, axis=1)[:, :k]
            kth = np.take_along_axis(dist, part, 1).max(1, keepdims=True)
            for i in range(e - s):
                cand = np.flatnonzero(dist[i] <= kth[i])
                order = cand[np.argsort(dist[i, cand], kind="stable")[:k]]
                idxs[s + i] = order
                dists[s + i] = dist[i, order]
        else:
            order = np.argsort(dist, axis=1, kind="stable")
            idxs[s:e] = order
            dists[s:e] = np.take_along_axis(dist, order, 1)
    return dists, idxs


def radius_search(db_codes: np.ndarray, query_codes: np.ndarray, r: int):
    """Every database code within Hamming distance r (d <= r) of each query, on the CPU.

    Returns ``(lims, distances, indices)`` in faiss's layout: the results of query i are
    ``distances[lims[i]:lims[i+1]]`` and ``indices[lims[i]:lims[i+1]]``, here sorted by
    (distance, index) so the output is deterministic.
    """
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 0:
        raise InvalidInput(f"radius must be a non-negative integer; got {r!r}")
    db = _as_packed(db_codes, "db_codes")
    index = build_index(db, use_gpu=False)
    # faiss keeps d < radius
    lims, dist, idx = index.range_search(_queries(query_codes, db.shape[1]), int(r) + 1)
    dist = dist.astype(np.int32)
    idx = idx.astype(np.int64)
    for i in range(len(lims) - 1):
        a, b = lims[i], lims[i + 1]
        order = np.lexsort((idx[a:b], dist[a:b]))
        dist[a:b], idx[a:b] = dist[a:b][order], idx[a:b][order]
    return lims.astype(np.int64), dist, idx


#: a timed pass slower than this many times the median of the passes is measured again
OUTLIER_FACTOR = 3.0
#: at most this many re-measurements of outliers per timing
MAX_REMEASURE = 10


class QueryTiming(float):
    """Seconds per query (the median over timed passes), with the spread it was measured with.

    A float, so callers that only want the number keep working. Attributes (seconds per query):
    ``median`` (= the value), ``p25`` and ``p75`` (the quartiles of the passes), ``min``, ``max``;
    ``repeats`` (passes kept), ``remeasured`` (passes measured again as outliers),
    ``outlier_factor`` and ``samples`` (every kept pass, in order of measurement).
    """

    median: float
    p25: float
    p75: float
    min: float
    max: float
    repeats: int
    remeasured: int
    outlier_factor: float
    samples: tuple[float, ...]

    @property
    def spread(self) -> float:
        """The interquartile range ``p75 - p25``."""
        return self.p75 - self.p25


def timing_stats(measure, repeats: int, per: int = 1, factor: float = OUTLIER_FACTOR) -> QueryTiming:
    """``repeats`` calls of ``measure()`` (seconds of one pass) -> the median per item and its quartiles.

    A pass slower than ``factor`` times the median of the passes so far (a descheduled process,
    a page fault storm) is measured again in place, at most :data:`MAX_REMEASURE` times in all; the
    statistic is then the median and quartiles (``numpy.percentile``, linear) of the kept passes,
    divided by ``per`` (the number of queries in a pass).
    """
    if repeats < 1:
        raise InvalidInput(f"repeats must be at least 1; got {repeats}")
    samples = [float(measure()) for _ in range(repeats)]
    remeasured = 0
    while remeasured < MAX_REMEASURE:
        med = float(np.median(samples))
        worst = int(np.argmax(samples))
        if not samples[worst] > factor * med:
            break
        samples[worst] = float(measure())
        remeasured += 1
    a = np.asarray(samples) / per
    p25, med, p75 = (float(v) for v in np.percentile(a, [25, 50, 75]))
    t = QueryTiming(med)
    t.median, t.p25, t.p75, t.min, t.max = med, p25, p75, float(a.min()), float(a.max())
    t.repeats, t.remeasured, t.outlier_factor, t.samples = len(samples), remeasured, factor, tuple(a.tolist())
    return t


def time_queries(
    db_codes: np.ndarray, query_codes: np.ndarray, k: int = 100, repeats: int = 7, *, use_gpu: bool | None = None
) -> QueryTiming:
    """Seconds per query of a faiss k-NN search, as a :class:`QueryTiming` (a float: the median).

    The index is built once, outside the timing; one untimed pass over all queries warms up faiss's
    thread pool and the caches; then ``repeats`` timed passes over all queries give the median and
    quartiles per query, a pass beyond :data:`OUTLIER_FACTOR` times the median being measured again
    (:func:`timing_stats`).
    """
    if repeats < 1:
        raise InvalidInput(f"repeats must be at least 1; got {repeats}")
    db = _as_packed(db_codes, "db_codes")
    q = _queries(query_codes, db.shape[1])
    k = min(int(k), db.shape[0])
    index = build_index(db, k=k, use_gpu=use_gpu)
    index.search(q, k)  # warm-up pass, not timed

    def one_pass() -> float:
        t = time.perf_counter()
        index.search(q, k)
        return time.perf_counter() - t

    return timing_stats(one_pass, repeats, per=q.shape[0])
