"""Other tools' MAP conventions, reproduced exactly from codes: what they would report for the same codes.

hashbench's own score is the tie-aware MAP (docs/METRICS.md, section 2.1). Published numbers come
from tools that rank ties in some order and divide AP@K by different counts. Each convention here is
a transcription of one tool's rule (docs/METRICS.md, section 8):

- ``hashbench``: tie-aware MAP (``evaluate(...)["map"]``), AP@K over the relevant items in the top K.
- ``index-order``: ``map_index``: ties in database-index order (a stable sort of the distances), AP@K
  over the relevant items in the top K.
- ``trec_eval``: trec_eval's ``map`` (no cut-off) and ``map_cut_K``, as pytrec_eval computes them
  when database item ``j`` is the document ``str(j)`` (its position in the database, 0-based, no
  padding) and its score is minus its Hamming distance. trec_eval sorts a run by score descending,
  then by document id descending as ``strcmp`` compares them (``comp_sim_docno`` in its
  ``form_res_rels.c``): among items at one distance, ``"9"`` comes before ``"10"`` before ``"1"``.
  AP@K = (1/R) sum_{i<=K} rel_i P@i with R *all* relevant items of the query; a query without
  relevant items scores 0 (and counts in the mean, as in hashbench).
- ``deephash-pytorch``: DeepHash-pytorch's ``CalcTopMap``: distances 0.5 (B - q.d) of ±1 codes in
  float32, ranked by numpy's default ``argsort`` (quicksort: not stable, so the order of ties is
  numpy's, which depends on the numpy version and the CPU's SIMD sort), AP@K = mean over the
  relevant items in the top K of (their count so far / their rank), a query with none there scoring
  0 and counting in the mean. K None means the whole database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput

CONVENTIONS = ("hashbench", "index-order", "trec_eval", "deephash-pytorch")


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InvalidInput(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    return convention


def relevance(query_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """bool (nq, nd): sharing at least one label (1-D labels: the same class)."""
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(np.float64) @ dl.astype(np.float64).T) > 0


def hamming(query_codes: np.ndarray, db_codes: np.ndarray) -> np.ndarray:
    """int64 (nq, nd) Hamming distances of bool codes."""
    q = np.asarray(query_codes, dtype=np.float64)
    d = np.asarray(db_codes, dtype=np.float64)
    same = q @ d.T + (1 - q) @ (1 - d).T
    return (q.shape[1] - np.rint(same)).astype(np.int64)


def trec_docno_order(nd: int) -> np.ndarray:
    """Database positions in trec_eval's tie order for docnos ``str(j)``: descending ``strcmp`` order."""
    return np.array(sorted(range(nd), key=str, reverse=True), dtype=np.int64)


def _ap_ranked(rel_ranked: np.ndarray, k: int, divisor: str, n_rel: int) -> float:
    top = rel_ranked[:k].astype(np.float64)
    hits = np.cumsum(top)
    s = float(np.sum(top * hits / np.arange(1, len(top) + 1)))
    z = n_rel if divisor == "all" else int(top.sum())
    return s / z if z else 0.0


def _deephash_ap(gnd: np.ndarray, hamm: np.ndarray, topk: int) -> float:
    """One query of DeepHash-pytorch's CalcTopMap, transcribed."""
    ind = np.argsort(hamm)
    tgnd = gnd[ind][0:topk]
    tsum = np.sum(tgnd).astype(int)
    if tsum == 0:
        return 0.0
    count = np.linspace(1, tsum, tsum)
    tindex = np.asarray(np.where(tgnd == 1)) + 1.0
    return float(np.mean(count / tindex))


def per_query_ap(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    topk: int | None = None,
    convention: str = "trec_eval",
) -> np.ndarray:
    """Each query's AP (AP@K with ``topk``) under a ranked convention (``index-order``, ``trec_eval``,
    ``deephash-pytorch``), float64 (nq,)."""
    from ..metrics.validation import check_codes

    _check_convention(convention)
    qc, dc = check_codes(query_codes, db_codes)
    nq, nd = len(qc), len(dc)
    if len(query_labels) != nq or len(db_labels) != nd:
        raise InvalidInput(f"labels ({len(query_labels)}, {len(db_labels)}) do not match the codes ({nq}, {nd})")
    k = nd if topk is None else min(int(topk), nd)
    if k < 1:
        raise InvalidInput(f"topk must be >= 1, got {topk}")
    out = np.zeros(nq)
    order = trec_docno_order(nd) if convention == "trec_eval" else None
    chunk = max(1, 2_000_000 // max(nd, 1))
    for start in range(0, nq, chunk):
        stop = min(start + chunk, nq)
        rel = relevance(np.asarray(query_labels)[start:stop], db_labels)
        if convention == "deephash-pytorch":
            # CalcHammingDist: 0.5 * (B - qB @ rB.T) on ±1 float32 codes (exact integers in float32)
            qs = np.where(qc[start:stop], 1.0, -1.0).astype(np.float32)
            ds = np.where(dc, 1.0, -1.0).astype(np.float32)
            hamm = 0.5 * (qc.shape[1] - qs @ ds.T)
            for i in range(stop - start):
                out[start + i] = _deephash_ap(rel[i].astype(np.float32), np.ascontiguousarray(hamm[i]), k)
            continue
        dist = hamming(qc[start:stop], dc)
        for i in range(stop - start):
            if convention == "trec_eval":
                ranked = order[np.argsort(dist[i][order], kind="stable")]
                out[start + i] = _ap_ranked(rel[i][ranked], k, "all", int(rel[i].sum()))
            else:
                ranked = np.argsort(dist[i], kind="stable")
                out[start + i] = _ap_ranked(rel[i][ranked], k, "top", int(rel[i].sum()))
    return out


def map_convention(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    topk: int | None = None,
    convention: str = "hashbench",
) -> float:
    """MAP (MAP@K with ``topk``) as the named tool reports it (module docstring); every query counts."""
    from ..metrics import evaluate

    _check_convention(convention)
    if convention == "hashbench":
        return float(evaluate(query_codes, db_codes, query_labels, db_labels, topk=topk)["map"])
    ap = per_query_ap(query_codes, db_codes, query_labels, db_labels, topk, convention)
    if convention == "deephash-pytorch":
        total = 0.0
        for v in ap:  # CalcTopMap sums query by query, then divides
            total = total + v
        return total / len(ap)
    return float(np.mean(ap))


def convention_scores(df, convention: str, topk: int | None = None):
    """MAP under ``convention`` of every record of a tables frame (its ``record_path`` column), from
    the stored codes: a copy of ``df`` with the column ``map[CONVENTION]`` (what ``tables`` and
    ``rescore --convention`` show)."""
    from ..records import read_record

    _check_convention(convention)
    out = df.copy()
    values = []
    for path in out["record_path"]:
        r = read_record(path)
        values.append(map_convention(r.query_codes, r.db_codes, r.query_labels, r.db_labels, topk, convention))
    out[f"map[{convention}]"] = values
    return out


# -- the command ------------------------------------------------------------------------------------
def _load_array(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{what} file {path} does not exist")
    try:
        if p.suffix.lower() == ".npy":
            return np.load(p, allow_pickle=False)
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if len(z.files) != 1:
                    raise InvalidInput(f"{what} file {path} holds {len(z.files)} arrays; give one array per file")
                return z[z.files[0]]
        return np.loadtxt(p, delimiter="," if p.suffix.lower() == ".csv" else None, ndmin=1)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"{what} file {path} is unreadable ({type(exc).__name__}: {exc})") from None


def evaluate_files(
    query_codes: str | Path,
    db_codes: str | Path,
    query_labels: str | Path,
    db_labels: str | Path,
    *,
    signed: bool = False,
    topk: int | None = None,
    precision_at: str | tuple[int, ...] = "100,1000",
    convention: str = "hashbench",
) -> dict[str, Any]:
    """Every metric of codes and labels stored in files (.npy, .npz, .csv or .txt), as JSON-able
    values; with ``convention`` other than ``hashbench``, also MAP as that tool computes it.
    ``precision_at``: the N of precision@N (a comma list), each at most the database's size."""
    from ..metrics import evaluate
    from ..run.export import as_bits
    from ..run.scoring import _jsonable

    q = as_bits(_load_array(query_codes, "query codes"), "query", signed=signed)
    db = as_bits(_load_array(db_codes, "database codes"), "database", signed=signed)
    ql, dl = _load_array(query_labels, "query labels"), _load_array(db_labels, "database labels")
    if ql.ndim == 1 and np.issubdtype(ql.dtype, np.floating) and np.all(ql == np.rint(ql)):
        ql = ql.astype(np.int64)
    if dl.ndim == 1 and np.issubdtype(dl.dtype, np.floating) and np.all(dl == np.rint(dl)):
        dl = dl.astype(np.int64)
    try:
        pa = tuple(int(x) for x in str(precision_at).split(",") if x.strip())
    except ValueError:
        raise InvalidInput(f"--precision-at {precision_at!r}: give integers, e.g. 100,1000") from None
    pa = tuple(n for n in pa if n <= len(db)) or (len(db),)
    scores = _jsonable(evaluate(q, db, ql, dl, topk=topk, precision_at=pa))
    if convention != "hashbench":
        scores["convention"] = convention
        scores[f"map[{convention}]"] = map_convention(q, db, ql, dl, topk, convention)
    return scores
