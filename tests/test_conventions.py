"""Other tools' MAP conventions (hashbench.results.conventions, docs/METRICS.md section 8): each equals the tool
itself where it installs (pip install 'hashbench[compare]': pytrec_eval-terrier, torchmetrics, ranx)
and a transcription of the tool's rule in every case."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from hashbench.cli import main
from hashbench.metrics import evaluate
from hashbench.results.conventions import hamming, map_convention, per_query_ap, relevance, trec_docno_order


def _data(seed=0, nq=25, nd=1300, n_bits=8, n_classes=6):
    """Short codes (many ties) with labels loosely tied to them; query 0 has no relevant item."""
    rng = np.random.default_rng(seed)
    q = rng.random((nq, n_bits)) < 0.5
    db = rng.random((nd, n_bits)) < 0.5
    ql = rng.integers(0, n_classes, nq)
    dl = np.where(rng.random(nd) < 0.5, db[:, :3] @ [1, 2, 4] % n_classes, rng.integers(0, n_classes, nd))
    ql[0] = n_classes  # a class nobody in the database has
    return q, db, ql, dl


# ------------------------------------------------------------------ transcriptions of the tools' rules
def trec_eval_ap(scores: np.ndarray, rel: np.ndarray, k: int | None) -> float:
    """trec_eval: sort by score descending, then docno descending by strcmp (comp_sim_docno);
    AP@K divides by every relevant item of the query."""

    def comp_sim_docno(a, b):
        if scores[a] > scores[b]:
            return -1
        if scores[a] < scores[b]:
            return 1
        da, db = str(a), str(b)
        return (db > da) - (db < da)  # strcmp(ptr2->docno, ptr1->docno)

    order = sorted(range(len(scores)), key=functools.cmp_to_key(comp_sim_docno))[: k or len(scores)]
    n_rel, hits, s = int(rel.sum()), 0, 0.0
    for i, j in enumerate(order, 1):
        if rel[j]:
            hits += 1
            s += hits / i
    return s / n_rel if n_rel else 0.0


def CalcHammingDist(B1, B2):  # noqa: N802 - DeepHash-pytorch's names, transcribed
    q = B2.shape[1]
    distH = 0.5 * (q - np.dot(B1, B2.transpose()))
    return distH


def CalcTopMap(rB, qB, retrievalL, queryL, topk):  # noqa: N802, N803
    num_query = queryL.shape[0]
    topkmap = 0
    for it in range(num_query):
        gnd = (np.dot(queryL[it, :], retrievalL.transpose()) > 0).astype(np.float32)
        hamm = CalcHammingDist(qB[it, :], rB)
        ind = np.argsort(hamm)
        gnd = gnd[ind]
        tgnd = gnd[0:topk]
        tsum = np.sum(tgnd).astype(int)
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        topkmap_ = np.mean(count / (tindex))
        topkmap = topkmap + topkmap_
    topkmap = topkmap / num_query
    return topkmap


def _one_hot(labels, n):
    return np.eye(n, dtype=np.float32)[labels]


# --------------------------------------------------------------------------------- transcriptions
@pytest.mark.parametrize("k", [None, 1, 40, 700])
def test_trec_eval_convention_equals_its_transcription(k):
    q, db, ql, dl = _data(nd=300)
    dist, rel = hamming(q, db), relevance(ql, dl)
    want = [trec_eval_ap(-dist[i].astype(float), rel[i], k) for i in range(len(q))]
    np.testing.assert_allclose(per_query_ap(q, db, ql, dl, k, "trec_eval"), want, rtol=0, atol=1e-15)


def test_trec_docno_order_is_strcmp_descending():
    assert trec_docno_order(12).tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 11, 10, 1, 0]


@pytest.mark.parametrize("k", [None, 1, 100, 5000])
def test_deephash_convention_equals_calc_top_map_exactly(k):
    q, db, ql, dl = _data(seed=1, n_bits=16)
    n = int(max(ql.max(), dl.max())) + 1
    qB, rB = np.where(q, 1.0, -1.0).astype(np.float32), np.where(db, 1.0, -1.0).astype(np.float32)
    want = CalcTopMap(rB, qB, _one_hot(dl, n), _one_hot(ql, n), k or len(db))
    assert map_convention(q, db, ql, dl, k, "deephash-pytorch") == want


@pytest.mark.parametrize("k", [None, 50])
def test_index_order_convention_is_map_index(k):
    q, db, ql, dl = _data(seed=2)
    assert abs(map_convention(q, db, ql, dl, k, "index-order") - evaluate(q, db, ql, dl, topk=k)["map_index"]) < 1e-12


def test_conventions_differ_where_the_docs_say():
    """Under a cut-off, dividing by every relevant item gives less than dividing by those in the top K."""
    q, db, ql, dl = _data(seed=3)
    trec = per_query_ap(q, db, ql, dl, 50, "trec_eval")
    idx = per_query_ap(q, db, ql, dl, 50, "index-order")
    assert (trec <= idx + 1e-15).all() and trec.mean() < idx.mean() - 0.05
    assert map_convention(q, db, ql, dl, None, "hashbench") != map_convention(q, db, ql, dl, None, "trec_eval")


def test_unknown_convention_is_a_one_line_error(tmp_path, capsys):
    q, db, ql, dl = _data(nd=50)
    for name, a in {"q": q, "d": db, "lq": ql, "ld": dl}.items():
        np.save(tmp_path / f"{name}.npy", a)
    files = ["--query-codes", "q", "--db-codes", "d", "--query-labels", "lq", "--db-labels", "ld"]
    files = [str(tmp_path / f"{f}.npy") if not f.startswith("--") else f for f in files]
    with pytest.raises(SystemExit):
        main(["evaluate", *files, "--convention", "nope"])
    assert main(["evaluate", *files]) == 0
    text = capsys.readouterr().out
    assert "map_index" in text and "p@r2" in text and "radius" in text


# ------------------------------------------------------------------------------- the tools themselves
def _cli_scores(tmp_path, q, db, ql, dl, *extra):
    for name, a in {"q": q, "d": db, "lq": ql, "ld": dl}.items():
        np.save(tmp_path / f"{name}.npy", a)
    args = ["evaluate", "--query-codes", str(tmp_path / "q.npy"), "--db-codes", str(tmp_path / "d.npy")]
    args += ["--query-labels", str(tmp_path / "lq.npy"), "--db-labels", str(tmp_path / "ld.npy"), "--json", *extra]
    return args


def test_trec_eval_convention_equals_pytrec_eval(tmp_path, capsys):
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval-terrier not installed (extra 'compare')")
    q, db, ql, dl = _data(seed=4)
    dist, rel = hamming(q, db), relevance(ql, dl)
    qrel = {f"q{i}": {str(j): int(rel[i, j]) for j in range(len(db))} for i in range(len(q))}
    run = {f"q{i}": {str(j): float(-dist[i, j]) for j in range(len(db))} for i in range(len(q))}
    res = pytrec_eval.RelevanceEvaluator(qrel, {"map", "map_cut.1000,50"}).evaluate(run)
    for measure, k in (("map", None), ("map_cut_1000", 1000), ("map_cut_50", 50)):
        theirs = np.array([res[f"q{i}"][measure] for i in range(len(q))])
        ours = per_query_ap(q, db, ql, dl, k, "trec_eval")
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        capsys.readouterr()
        extra = ["--convention", "trec_eval"] + (["--topk", str(k)] if k else [])
        assert main(_cli_scores(tmp_path, q, db, ql, dl, *extra)) == 0
        got = json.loads(capsys.readouterr().out)["map[trec_eval]"]
        assert abs(got - theirs.mean()) < 1e-12, measure


def test_index_order_equals_torchmetrics_retrieval_map():
    torchmetrics = pytest.importorskip("torchmetrics", reason="torchmetrics not installed (extra 'compare')")
    import torch

    q, db, ql, dl = _data(seed=5, nd=400)
    dist, rel = hamming(q, db), relevance(ql, dl)
    # positive scores (torchmetrics ignores targets with score <= 0), ties broken by index
    scores = (q.shape[1] + 1 - dist) - np.arange(len(db))[None, :] * 1e-6
    for k in (None, 30):
        metric = torchmetrics.retrieval.RetrievalMAP(top_k=k)
        idx = torch.arange(len(q)).repeat_interleave(len(db))
        theirs = float(metric(torch.tensor(scores.ravel()), torch.tensor(rel.ravel()), indexes=idx))
        ours = map_convention(q, db, ql, dl, k, "index-order")
        assert abs(ours - theirs) < 1e-6  # torchmetrics computes AP in float32


def test_trec_eval_convention_equals_ranx():
    ranx = pytest.importorskip("ranx", reason="ranx not installed (extra 'compare')")
    q, db, ql, dl = _data(seed=6, nd=400)
    q, ql = q[1:], ql[1:]  # ranx needs a relevant item per query
    dist, rel = hamming(q, db), relevance(ql, dl)
    # ranx gets trec_eval's tie order as distinct scores: earlier in strcmp-descending order scores higher
    pos = np.empty(len(db))
    pos[trec_docno_order(len(db))] = np.arange(len(db))
    scores = -dist - pos[None, :] * 1e-6
    qrels = ranx.Qrels({f"q{i}": {str(j): 1 for j in np.flatnonzero(rel[i])} for i in range(len(q))})
    run = ranx.Run({f"q{i}": {str(j): float(scores[i, j]) for j in range(len(db))} for i in range(len(q))})
    res = ranx.evaluate(qrels, run, ["map", "map@30"])
    assert abs(res["map"] - map_convention(q, db, ql, dl, None, "trec_eval")) < 1e-12
    assert abs(res["map@30"] - map_convention(q, db, ql, dl, 30, "trec_eval")) < 1e-12


def test_tables_and_rescore_show_a_peers_convention(tmp_path, capsys):
    """`tables --convention` / `rescore --convention` print MAP as that tool computes it from the
    stored codes, labelled with the convention (the stored tables keep hashbench's MAP)."""
    import glob

    from hashbench.cli import main
    from hashbench.records import read_record
    from hashbench.results.conventions import map_convention

    out = str(tmp_path)
    assert main(["run", "--methods", "itq", "--dataset", "digits", "--bits", "16", "--out", out, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["tables", "--out", out, "--no-plots", "--convention", "trec_eval"]) == 0
    text = capsys.readouterr().out
    r = read_record(glob.glob(f"{out}/digits/records/itq-16b*")[0])
    expected = map_convention(r.query_codes, r.db_codes, r.query_labels, r.db_labels, None, "trec_eval")
    assert "MAP as trec_eval computes it" in text and f"{expected:.4f}" in text
    assert main(["rescore", "--out", out, "--topk", "100", "--convention", "deephash-pytorch"]) == 0
    text = capsys.readouterr().out
    at100 = map_convention(r.query_codes, r.db_codes, r.query_labels, r.db_labels, 100, "deephash-pytorch")
    assert "MAP@100 as deephash-pytorch computes it" in text and f"{at100:.4f}" in text
