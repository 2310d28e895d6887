"""Evaluation at the speed of the hardware: hashbench.metrics against the bare XOR-popcount histogram
(the floor) and the common per-query loop, and faiss k-NN against numpy brute force.

    python -m benchmarks.eval [--quick] [--loop-queries N] [--seed S] [--threads T] [--repeats R]
                              [--cases cifar10,nuswide,knn]

Cases (random codes with structure, fixed seed: each class has a prototype code and an item's code
is the prototype of one of its labels with 30% of the bits flipped, so MAP is far from trivial):

- CIFAR-10 scale: 1,000 queries x 59,000 database items, 10 classes (single label), 64 bits,
  MAP over the whole database.
- NUS-WIDE scale: 2,100 x 193,734, 21 multi-hot labels, 64 bits, MAP@5000.

The floor (the headline ratio): the least work any exact Hamming-ranking MAP must do, for every
query XOR + popcount against every database code and the histogram of the distances; no labels, no
relevance counts, no ranks, no AP (:func:`xor_popcount_histograms`). It is timed in numpy, in two
forms, and the faster one (by median) is the floor:

- plain: per query, ``np.bitwise_xor`` of the packed uint64 code words against the query's,
  ``np.bitwise_count`` into uint8 distances, one ``np.bincount``;
- paired: the same distances for the two halves of the database, combined into one key
  ``d1 * (B+1) + d2`` per pair of items (uint16 for B <= 255), one ``np.bincount`` over (B+1)^2
  bins and the two marginals: half the elements through bincount, which dominates the plain form.

hashbench's time is one full ``evaluate`` call (every metric: map, map_index, map_min/max, p@N,
p@r2, the PR curve, per-query arrays) on all queries. hashbench and the floor run side by side in one
process on the same codes: one warm-up call each, then ``--repeats`` rounds that alternate them;
the table gives the median and the range (min-max) of each, and the ratio hashbench / floor as the
median (and range) of the per-round ratios. The floor's histograms must equal hashbench's.

The loop (the secondary figure) is the form found in the deep-hashing code that publishes these
numbers: for each query, a label product for relevance, Hamming distance from the inner product of
+-1 codes, ``np.argsort`` (numpy's default, unstable, kind), AP over the hits of the top K. It runs
once. With ``--loop-queries N`` it runs on the first N queries and its time is extrapolated linearly
to all of them (the table says so). Its ratio to hashbench moves with the machine's BLAS.

"identical": hashbench's ``map_index`` against the same loop with a stable argsort (ties by
database index) on the looped queries, per query; and every per-query AP of the timed (unstable)
loop must lie in hashbench's [ap_min, ap_max] for that query.

Peak memory: the largest resident-set growth over the call (hashbench's warm-up call, the loop),
sampled every 2 ms (numba's allocations are invisible to tracemalloc, so RSS is the honest measure).
The timed rounds run without the sampler.

``--threads T`` caps numba, BLAS/OpenMP (faiss too) and torch at T threads
(:func:`hashbench.device.limit_threads`); numpy's element-wise functions use one thread anyway.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time

import numba
import numpy as np

from hashbench.bits import pack, pack_words
from hashbench.metrics import evaluate, hamming_histograms
from hashbench.metrics.closed_forms import closed_form_scores
from hashbench.metrics.validation import label_keys
from hashbench.search import knn, knn_bruteforce

# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------


def make_case(nq: int, nd: int, n_bits: int, n_classes: int, multi: bool, seed: int):
    rng = np.random.default_rng(seed)
    protos = rng.random((n_classes, n_bits)) < 0.5

    def labels(n):
        if not multi:
            y = rng.integers(0, n_classes, n)
            return y, y
        y = rng.random((n, n_classes)) < 0.08
        primary = rng.integers(0, n_classes, n)
        y[np.arange(n), primary] = True
        return y, primary

    ql, qp = labels(nq)
    dl, dp = labels(nd)
    qc = protos[qp] ^ (rng.random((nq, n_bits)) < 0.3)
    dc = protos[dp] ^ (rng.random((nd, n_bits)) < 0.3)
    return qc, dc, ql, dl


# ----------------------------------------------------------------------------------------------
# the floor: XOR + popcount + histogram of distances, nothing else
# ----------------------------------------------------------------------------------------------


def _distances(q, cols, x, out, tmp):
    """Hamming distances of one query's packed words ``q`` to the database columns ``cols`` (one
    contiguous uint64 array per word) into ``out``; ``x`` (uint64) and ``tmp`` are scratch."""
    np.bitwise_xor(cols[0], q[0], out=x)
    np.bitwise_count(x, out=out)
    for w in range(1, len(cols)):
        np.bitwise_xor(cols[w], q[w], out=x)
        np.bitwise_count(x, out=tmp)
        np.add(out, tmp, out=out)


def xor_popcount_histograms(qc, dc, paired=True):
    """(nq, B+1) int64: per query, the number of database items at each Hamming distance.

    The least work an exact Hamming-ranking MAP must do, in numpy: the codes are packed into uint64
    words (as hashbench's ``evaluate`` does inside its call), then per query XOR + ``np.bitwise_count``
    against every database code and a histogram by ``np.bincount``. ``paired=False``: one bincount of
    the nd distances. ``paired=True``: the distances of the two halves of the database are combined
    into one key ``d1 * (B+1) + d2`` per pair of items, so bincount (the costly step) sees half as
    many elements, over (B+1)^2 bins whose two marginals add up to the histogram (an odd last item
    is counted at the end for all queries at once). Buffers are allocated once.
    """
    qw, dw = pack_words(qc), pack_words(dc)
    n_bits = qc.shape[1]
    nb = n_bits + 1
    nq, nd = qw.shape[0], dw.shape[0]
    dist_t = np.uint8 if n_bits <= 255 else np.uint16
    hist = np.empty((nq, nb), np.int64)
    if not paired:
        cols = [np.ascontiguousarray(dw[:, w]) for w in range(dw.shape[1])]
        x = np.empty(nd, np.uint64)
        d, t = np.empty(nd, dist_t), np.empty(nd, dist_t)
        for i in range(nq):
            _distances(qw[i], cols, x, d, t)
            hist[i] = np.bincount(d, minlength=nb)
        return hist
    h = nd // 2
    cols_a = [np.ascontiguousarray(dw[:h, w]) for w in range(dw.shape[1])]
    cols_b = [np.ascontiguousarray(dw[h : 2 * h, w]) for w in range(dw.shape[1])]
    key_t = np.uint16 if nb * nb <= 1 << 16 else np.intp
    x = np.empty(h, np.uint64)
    a, b, t = np.empty(h, dist_t), np.empty(h, dist_t), np.empty(h, dist_t)
    key = np.empty(h, key_t)
    scale = key.dtype.type(nb)
    for i in range(nq):
        _distances(qw[i], cols_a, x, a, t)
        _distances(qw[i], cols_b, x, b, t)
        np.multiply(a, scale, out=key)
        np.add(key, b, out=key)
        pairs = np.bincount(key, minlength=nb * nb).reshape(nb, nb)
        hist[i] = pairs.sum(0) + pairs.sum(1)
    if nd % 2:
        last = np.bitwise_count(qw ^ dw[-1]).sum(axis=1, dtype=np.int64)
        hist[np.arange(nq), last] += 1
    return hist


# ----------------------------------------------------------------------------------------------
# the common per-query loop
# ----------------------------------------------------------------------------------------------


def loop_ap(q_pm, d_pm, q_onehot, d_onehot, topk, stable=False):
    """Per-query AP@topk as the usual deep-hashing evaluation code computes it."""
    n_bits = q_pm.shape[1]
    aps = np.zeros(q_pm.shape[0])
    for i in range(q_pm.shape[0]):
        gnd = (q_onehot[i] @ d_onehot.T > 0).astype(np.float32)
        hamm = 0.5 * (n_bits - q_pm[i] @ d_pm.T)
        ind = np.argsort(hamm, kind="stable") if stable else np.argsort(hamm)
        tgnd = gnd[ind][:topk]
        tsum = int(tgnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.flatnonzero(tgnd == 1) + 1.0
        aps[i] = np.mean(count / tindex)
    return aps


def loop_inputs(qc, dc, ql, dl):
    def onehot(y):
        if y.ndim == 2:
            return y.astype(np.float32)
        return np.eye(int(max(ql.max(), dl.max())) + 1, dtype=np.float32)[y]

    return (qc * 2.0 - 1).astype(np.float32), (dc * 2.0 - 1).astype(np.float32), onehot(ql), onehot(dl)


# ----------------------------------------------------------------------------------------------
# a pure-numpy fused alternative (for the record: why the numba kernel)
# ----------------------------------------------------------------------------------------------


def numpy_histograms(qc, dc, ql, dl, chunk=64):
    """Histograms by np.bitwise_count on packed uint64 words and one bincount per chunk of queries."""
    qw, dw = pack_words(qc), pack_words(dc)
    qk, dk, multi = label_keys(ql, dl, len(qc), len(dc))
    nb = qc.shape[1] + 1
    hn = np.zeros((len(qc), nb), np.int64)
    hr = np.zeros((len(qc), nb), np.int64)
    for s in range(0, len(qc), chunk):
        e = min(len(qc), s + chunk)
        dist = np.zeros((e - s, len(dc)), np.int64)
        for w in range(qw.shape[1]):
            dist += np.bitwise_count(qw[s:e, w, None] ^ dw[None, :, w])
        if multi:
            rel = np.zeros(dist.shape, bool)
            for j in range(qk.shape[1]):
                rel |= (qk[s:e, j, None] & dk[None, :, j]) != 0
        else:
            rel = qk[s:e, 0, None] == dk[None, :, 0]
        key = (np.arange(e - s)[:, None] * nb + dist) * 2 + rel
        h = np.bincount(key.ravel(), minlength=(e - s) * nb * 2).reshape(e - s, nb, 2)
        hn[s:e] = h.sum(2)
        hr[s:e] = h[:, :, 1]
    return hn, hr


# ----------------------------------------------------------------------------------------------
# measuring
# ----------------------------------------------------------------------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _trim() -> None:
    """Hand freed heap memory back to the OS (glibc), so the RSS growth of the next call is its own."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(fn, *args, **kwargs):
    """(result, wall seconds, cpu seconds, peak RSS growth in bytes) of fn(*args, **kwargs)."""
    _trim()
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    th.join()
    peak[0] = max(peak[0], _rss())
    return out, wall, cpu, peak[0] - base


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed_rounds(fns: dict, repeats: int) -> dict:
    """{name: ([wall seconds], [cpu seconds])} of ``repeats`` rounds, each calling every fn once in turn."""
    out = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _trim()
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            out[name][0].append(time.perf_counter() - t0)
            out[name][1].append(time.process_time() - c0)
    return out


def metric_case(name, nq, nd, n_bits, n_classes, multi, topk, loop_queries, seed, repeats):
    qc, dc, ql, dl = make_case(nq, nd, n_bits, n_classes, multi, seed)
    k = nd if topk is None else topk

    # warm-up calls (hashbench's also gives its peak memory), then the alternating timed rounds
    res, _, _, mem = measure(evaluate, qc, dc, ql, dl, topk=topk, per_query=True)
    pq = res["per_query"]
    floors = {
        "plain": xor_popcount_histograms(qc, dc, paired=False),
        "paired": xor_popcount_histograms(qc, dc, paired=True),
    }
    hist_n = hamming_histograms(qc, dc, ql, dl, topk)[0]
    floor_same = all(np.array_equal(h, hist_n) for h in floors.values())
    rounds = timed_rounds(
        {
            "hb": lambda: evaluate(qc, dc, ql, dl, topk=topk, per_query=True),
            "plain": lambda: xor_popcount_histograms(qc, dc, paired=False),
            "paired": lambda: xor_popcount_histograms(qc, dc, paired=True),
        },
        repeats,
    )
    hb_t, hb_c = rounds["hb"]
    floor_name = min(("plain", "paired"), key=lambda f: statistics.median(rounds[f][0]))
    ratios = [h / f for h, f in zip(hb_t, rounds[floor_name][0], strict=True)]
    wall, cpu = statistics.median(hb_t), statistics.median(hb_c)

    nl = nq if loop_queries is None else min(loop_queries, nq)
    q_pm, d_pm, q_oh, d_oh = loop_inputs(qc, dc, ql, dl)
    loop_res, lwall, lcpu, lmem = measure(loop_ap, q_pm[:nl], d_pm, q_oh[:nl], d_oh, k)
    scale = nq / nl
    n_check = min(nl, 100)
    stable = loop_ap(q_pm[:n_check], d_pm, q_oh[:n_check], d_oh, k, stable=True)
    diff = float(np.abs(stable - pq["ap_index"][:n_check]).max())
    in_range = bool(np.all((pq["ap_min"][:nl] - 1e-12 <= loop_res) & (loop_res <= pq["ap_max"][:nl] + 1e-12)))

    (hn, hr), nwall, ncpu, nmem = measure(numpy_histograms, qc, dc, ql, dl)
    ap = np.zeros(nq)
    closed_form_scores(hn, hr, min(k, nd), np.zeros(0, np.int64), ap, np.zeros(nq), np.zeros(nq), np.zeros((nq, 0)))
    numpy_same = bool(np.allclose(ap, pq["ap"], rtol=0, atol=1e-12))

    return {
        "case": name,
        "hb_times": hb_t,
        "plain_times": rounds["plain"][0],
        "paired_times": rounds["paired"][0],
        "floor": floor_name,
        "floor_s": statistics.median(rounds[floor_name][0]),
        "floor_same": floor_same,
        "ratios": ratios,
        "loop_s": lwall * scale,
        "loop_cpu_s": lcpu * scale,
        "extrapolated": nl < nq,
        "loop_queries": nl,
        "hb_s": wall,
        "hb_cpu_s": cpu,
        "numpy_s": nwall,
        "numpy_same": numpy_same,
        "identical": diff <= 1e-12 and in_range,
        "max_diff": diff,
        "n_check": n_check,
        "in_range": in_range,
        "hb_mem": mem,
        "loop_mem": lmem,
        "numpy_mem": nmem,
        "map": res["map"],
        "map_index": res["map_index"],
        "map_min": res["map_min"],
        "map_max": res["map_max"],
        "loop_map": float(loop_res.mean()),
    }


def _spread(times) -> str:
    """median (min-max) of a list of seconds."""
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


def faiss_case(n_db, n_bits, k, n_queries, n_numpy_queries, seed):
    rng = np.random.default_rng(seed)
    db = pack(rng.random((n_db, n_bits)) < 0.5)
    q = pack(rng.random((n_queries, n_bits)) < 0.5)
    knn(db[:1000], q[:2], k)  # load faiss and its thread pool
    best = float("inf")
    for _ in range(3):
        (fd, fi), wall, _, _ = measure(knn, db, q, k)
        best = min(best, wall)
    (nd_, ni), nwall, _, nmem = measure(knn_bruteforce, db, q[:n_numpy_queries], k)
    same = bool(np.array_equal(fd[:n_numpy_queries], nd_))
    return {"faiss_qps": n_queries / best, "numpy_qps": n_numpy_queries / nwall, "same": same, "numpy_mem": nmem}


CASES = ("cifar10", "nuswide", "knn")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="loop on a few queries only; smaller faiss query set")
    ap.add_argument(
        "--loop-queries", type=int, default=None, help="time the loop on the first N queries and extrapolate"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=None, help="cap numba, BLAS/OpenMP and torch threads (default: all cores)"
    )
    ap.add_argument(
        "--repeats", type=int, default=5, help="timed rounds of hashbench and the floor, after a warm-up (default 5)"
    )
    ap.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)} (default: all)"
    )
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown or not cases:
        ap.error(f"--cases: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(CASES)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.threads is not None:
        from hashbench.device import limit_threads

        limit_threads(args.threads)
    loop_q = args.loop_queries if args.loop_queries is not None else (50 if args.quick else None)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {cpu_model()}, {cores} cores available, numba threads {numba.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} at start; numpy {np.__version__}, numba {numba.__version__}"
    )

    # load (or compile, on a first run) the numba kernels outside the timings
    qc, dc, ql, dl = make_case(3, 50, 64, 3, False, 0)
    _, first, _, _ = measure(evaluate, qc, dc, ql, dl)
    qc, dc, ql, dl = make_case(3, 50, 64, 3, True, 0)
    evaluate(qc, dc, ql, dl, topk=5)
    print(f"first evaluate call in this process (numba cache load or compile): {first:.2f} s")

    rows = []
    if "cifar10" in cases:
        rows.append(
            metric_case(
                "CIFAR-10 scale: 1,000 x 59,000, 10 classes, 64 bits, MAP",
                1000,
                59000,
                64,
                10,
                False,
                None,
                loop_q,
                args.seed,
                args.repeats,
            )
        )
    if "nuswide" in cases:
        rows.append(
            metric_case(
                "NUS-WIDE scale: 2,100 x 193,734, 21 multi-hot, 64 bits, MAP@5000",
                2100,
                193734,
                64,
                21,
                True,
                5000,
                loop_q,
                args.seed + 1,
                args.repeats,
            )
        )
    mib = 1 << 20
    if rows:
        print()
        print(
            f"Against the floor (XOR + popcount + histogram in numpy), side by side: seconds as median "
            f"(min-max) of {args.repeats} alternating rounds after a warm-up"
        )
        print()
        print(
            "| case | hashbench evaluate s | floor, plain s | floor, paired s | hashbench / floor | same histograms |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            ratios = r["ratios"]
            print(
                f"| {r['case']} | {_spread(r['hb_times'])} | {_spread(r['plain_times'])} "
                f"| {_spread(r['paired_times'])} "
                f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}; floor: {r['floor']}) "
                f"| {r['floor_same']} |"
            )
        print()
        print("Against the per-query loop (run once; hashbench: the median above)")
        print()
        print(
            "| case | loop s | hashbench s | ratio | cpu-time ratio | identical "
            "| peak RSS: hashbench / loop | numpy-fused s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            extra = f" (timed on {r['loop_queries']} queries, extrapolated)" if r["extrapolated"] else ""
            ident = "yes" if r["identical"] else "NO"
            print(
                f"| {r['case']} | {r['loop_s']:.2f}{extra} | {r['hb_s']:.3f} | {r['loop_s'] / r['hb_s']:.0f}x "
                f"| {r['loop_cpu_s'] / r['hb_cpu_s']:.0f}x "
                f"| {ident} (max diff {r['max_diff']:.1e} on {r['n_check']} q; loop AP in [min, max]: "
                f"{r['in_range']}) "
                f"| {r['hb_mem'] / mib:.0f} MiB / {r['loop_mem'] / mib:.0f} MiB "
                f"| {r['numpy_s']:.2f} (same map: {r['numpy_same']}; {r['numpy_mem'] / mib:.0f} MiB) |"
            )
        print()
        for r in rows:
            print(
                f"{r['case']}: map {r['map']:.4f}, map_index {r['map_index']:.4f}, range [{r['map_min']:.4f}, "
                f"{r['map_max']:.4f}], loop (unstable argsort) {r['loop_map']:.4f}"
            )

    if "knn" in cases:
        nq_f = 200 if args.quick else 1000
        f = faiss_case(1_000_000, 64, 100, nq_f, 20 if args.quick else 50, args.seed + 2)
        print()
        print("| k-NN, k=100, 1,000,000 codes x 64 bits | queries/s | distances equal |")
        print("|---|---|---|")
        print(f"| faiss IndexBinaryFlat (CPU), {nq_f} queries | {f['faiss_qps']:.0f} | {f['same']} |")
        print(f"| numpy brute force (XOR + bitwise_count + argpartition) | {f['numpy_qps']:.0f} | reference |")
        print(f"faiss / numpy: {f['faiss_qps'] / f['numpy_qps']:.0f}x")
    print(
        f"load average at end {os.getloadavg()[0]:.1f} (on a shared machine wall times include other "
        "processes' load; the ratios to the floor are side by side in one process)"
    )


if __name__ == "__main__":
    main()
