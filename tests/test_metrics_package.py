"""The metrics package around the numbers: its doctests, where numba caches its kernels, the metric spec
that keys cached scores, the per-query arrays records store, and the label checks."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hashbench.metrics
from hashbench.digests import json_digest
from hashbench.errors import InvalidInput
from hashbench.metrics import METRIC_VERSION, evaluate, metric_spec, per_query_scores

PACKAGE_DIR = Path(hashbench.metrics.__file__).parent
REPO = PACKAGE_DIR.parents[1]


def _modules():
    yield hashbench.metrics
    for info in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        yield importlib.import_module(f"hashbench.metrics.{info.name}")


def test_doctests_of_the_package_pass():
    """The examples in the docstrings (evaluate's hand-checkable case, metric_spec) are run, not just read."""
    attempted = 0
    for module in _modules():
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, f"doctest failed in {module.__name__}"
        attempted += result.attempted
    assert attempted >= 5


def test_the_layout_shows_the_parts():
    names = {info.name for info in pkgutil.iter_modules([str(PACKAGE_DIR)])}
    assert {"kernels", "closed_forms", "torch_backend", "validation", "jit"} <= names
    assert not (PACKAGE_DIR.parent / "metrics.py").exists()
    # the specification is the package's docstring
    assert "tie-aware" in hashbench.metrics.__doc__ and "map_index" in hashbench.metrics.__doc__


# ----------------------------------------------------------------------------------------------
# numba's cache: under $HASHBENCH_CACHE/numba, never next to the package
# ----------------------------------------------------------------------------------------------

# Prints every cached kernel's cache folder, then compiles one small kernel so its index file is written.
_PROBE = """
import json, sys
{pre}
import numba
import hashbench.metrics
from hashbench.metrics import closed_forms, jit, kernels
paths = []
for mod in (closed_forms, kernels):
    for name, obj in vars(mod).items():
        if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == mod.__name__:
            paths.append(getattr(obj._cache, "_cache_path", None))
if {compile}:
    closed_forms._harmonic(5)
print(json.dumps({{"paths": paths, "cache": jit.CACHE, "cache_dir": str(jit.CACHE_DIR),
                  "config": numba.config.CACHE_DIR}}))
"""


def _probe(tmp_path: Path, pre: str = "", compile: bool = True, **env_extra: str) -> tuple[dict, str]:
    """Run the probe in a fresh interpreter with HASHBENCH_CACHE=tmp_path/hb (unless env_extra says otherwise)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "HASHBENCH_CACHE")}
    env["HASHBENCH_CACHE"] = str(tmp_path / "hb")
    env.update(env_extra)
    code = _PROBE.format(pre=pre, compile=compile)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def _new_index_files_in_package(since: float) -> list[Path]:
    return [p for p in PACKAGE_DIR.rglob("*.nb[ic]") if p.stat().st_mtime >= since]


@pytest.mark.parametrize(
    "pre",
    ["", "import numba  # imported before hashbench.metrics, as hashbench.device.limit_threads does"],
    ids=["metrics-first", "numba-first"],
)
def test_numba_cache_goes_under_the_hashbench_cache_folder(tmp_path, pre):
    start = time.time() - 1
    info, _ = _probe(tmp_path, pre)
    want = tmp_path / "hb" / "numba"
    assert info["cache"] is True and Path(info["cache_dir"]) == want
    assert len(info["paths"]) >= 10 and all(p and Path(p).is_relative_to(want) for p in info["paths"])
    written = list(want.rglob("closed_forms._harmonic-*.nbi"))
    assert written, f"no index file under {want}"
    assert _new_index_files_in_package(start) == []


def test_a_numba_cache_dir_the_user_set_wins(tmp_path):
    info, _ = _probe(tmp_path, compile=False, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert Path(info["cache_dir"]) == tmp_path / "mine"
    assert info["paths"] and all(Path(p).is_relative_to(tmp_path / "mine") for p in info["paths"])
    assert not (tmp_path / "hb" / "numba").exists()


def test_an_unwritable_cache_folder_turns_caching_off_with_a_warning(tmp_path):
    """Rather than numba's fallback, which writes next to the installed package."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    start = time.time() - 1
    info, stderr = _probe(tmp_path, compile=False, HASHBENCH_CACHE=str(blocker))
    assert info["cache"] is False and "cannot write numba's cache folder" in stderr
    assert info["paths"] == [None] * len(info["paths"])  # a NullCache: nothing is written anywhere
    assert _new_index_files_in_package(start) == []


@pytest.mark.slow
def test_evaluate_in_a_fresh_process_writes_every_kernel_to_the_cache_folder(tmp_path):
    """The full first call (about a minute of compiling on a shared 2-core machine)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env["HASHBENCH_CACHE"] = str(tmp_path)
    start = time.time() - 1
    code = (
        "import numpy as np; from hashbench.metrics import evaluate; "
        "r = np.random.default_rng(0); q, d = r.random((3, 70)) < .5, r.random((40, 70)) < .5; "
        "evaluate(q, d, [0, 1, 2], r.integers(0, 3, 40)); evaluate(q, d, [0, 1, 2], r.integers(0, 3, 40), topk=5)"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=900)
    names = {p.name.split("-")[0] for p in (tmp_path / "numba").rglob("*.nbi")}
    assert {"kernels.histogram_kernel", "closed_forms.closed_form_scores", "kernels._query_cut_pass"} <= names
    assert _new_index_files_in_package(start) == []


# ----------------------------------------------------------------------------------------------
# the metric spec and the per-query arrays
# ----------------------------------------------------------------------------------------------


def _case(seed=0, nq=25, nd=300, n_bits=6, multi=False):
    rng = np.random.default_rng(seed)
    qc, dc = rng.random((nq, n_bits)) < 0.5, rng.random((nd, n_bits)) < 0.5
    if multi:
        return qc, dc, rng.random((nq, 7)) < 0.2, rng.random((nd, 7)) < 0.2
    # class 9 is absent from the database: those queries have no relevant item
    return qc, dc, rng.choice([0, 1, 2, 9], nq), rng.integers(0, 3, nd)


def test_metric_spec_names_what_the_scores_depend_on():
    spec = metric_spec(5000, precision_at=(1000, 100, 100))
    assert spec == {"metric_version": 1, "topk": 5000, "precision_at": [100, 1000], "zero_relevant": "count"}
    assert METRIC_VERSION == 1 and isinstance(METRIC_VERSION, int)
    assert metric_spec() == {"metric_version": 1, "topk": None, "precision_at": [100, 1000], "zero_relevant": "count"}
    # the order of the N does not change the scores, so it does not change the key; a new cut-off does
    assert json_digest(metric_spec(10, precision_at=(5, 1))) == json_digest(metric_spec(10, precision_at=[1, 5]))
    assert json_digest(metric_spec(10)) != json_digest(metric_spec(20))
    assert json_digest(metric_spec(10)) != json_digest(metric_spec(10, zero_relevant="skip"))
    json.dumps(spec)  # plain JSON types: digestible as it is
    with pytest.raises(InvalidInput, match="topk"):
        metric_spec(0)
    with pytest.raises(InvalidInput, match="precision_at"):
        metric_spec(precision_at=(0,))
    with pytest.raises(InvalidInput, match="zero_relevant"):
        metric_spec(zero_relevant="drop")


def test_scores_recomputed_from_the_spec_are_the_scores():
    """Rescoring stored codes from a spec reproduces the scores evaluate gave for those arguments."""
    qc, dc, ql, dl = _case(1)
    spec = metric_spec(40, precision_at=(10, 3), zero_relevant="skip")
    again = evaluate(qc, dc, ql, dl, **{k: v for k, v in spec.items() if k != "metric_version"})
    direct = evaluate(qc, dc, ql, dl, topk=40, precision_at=(3, 10), zero_relevant="skip")
    assert again["metric_version"] == spec["metric_version"] == METRIC_VERSION
    for key in ("map", "map_index", "map_min", "map_max", "p@3", "p@10", "p@r2", "n_queries"):
        assert again[key] == direct[key]


@pytest.mark.parametrize("topk", [None, 1, 17])
@pytest.mark.parametrize("multi", [False, True])
def test_per_query_means_are_the_scalar_scores(topk, multi):
    qc, dc, ql, dl = _case(2, multi=multi)
    out = evaluate(qc, dc, ql, dl, topk=topk, precision_at=(5,), per_query=True)
    pq = out["per_query"]
    assert set(pq) == {"ap", "ap_index", "ap_min", "ap_max", "n_relevant", "p@5"}
    assert all(a.shape == (25,) for a in pq.values())
    assert out["map"] == float(pq["ap"].mean()) and out["map_index"] == float(pq["ap_index"].mean())
    assert out["map_min"] == float(pq["ap_min"].mean()) and out["p@5"] == float(pq["p@5"].mean())
    skipped = evaluate(qc, dc, ql, dl, topk=topk, zero_relevant="skip", per_query=True)
    keep = skipped["per_query"]["n_relevant"] > 0
    assert (~keep).sum() == skipped["n_zero_relevant"]
    assert skipped["map"] == float(skipped["per_query"]["ap"][keep].mean())
    assert skipped["map_index"] == float(skipped["per_query"]["ap_index"][keep].mean())
    # the record form: float32, the same values to float32 rounding, means within 1e-6
    rec = per_query_scores(out)
    assert rec["ap"].dtype == rec["ap_index"].dtype == np.float32 and rec["n_relevant"].dtype == np.int32
    assert np.array_equal(rec["n_relevant"], pq["n_relevant"])
    np.testing.assert_allclose(rec["ap"], pq["ap"], rtol=1e-7, atol=0)
    assert abs(float(rec["ap"].mean(dtype=np.float64)) - out["map"]) < 1e-6
    assert abs(float(rec["ap_index"].mean(dtype=np.float64)) - out["map_index"]) < 1e-6
    assert "per_query" not in evaluate(qc, dc, ql, dl, topk=topk)
    with pytest.raises(InvalidInput, match="per_query=True"):
        per_query_scores(evaluate(qc, dc, ql, dl, topk=topk))


def test_per_query_ap_at_k_is_the_cut_off_ap():
    """With topk, the per-query arrays are AP@K: a query whose relevant items all lie beyond K has 0."""
    q = np.zeros((2, 3), bool)
    db = np.array([[0, 0, 0], [1, 1, 1], [1, 1, 1]], bool)
    out = evaluate(q, db, [0, 1], [0, 1, 1], topk=1, per_query=True)
    assert out["per_query"]["ap"].tolist() == [1.0, 0.0]
    assert out["per_query"]["ap_index"].tolist() == [1.0, 0.0]
    assert out["map"] == 0.5


# ----------------------------------------------------------------------------------------------
# labels: multi-hot must be 0/1 (issue 11, item 12)
# ----------------------------------------------------------------------------------------------


def test_plus_minus_one_multi_hot_labels_are_rejected_with_the_fix():
    """thulab's evaluation rewrites labels to ±1 in place: -1 must not read as "label present".

    Query [[1, -1]] against database [[0, 1], [1, 0]] made both items relevant (the -1 shares a
    nonzero entry with item 0); only item 1 shares the query's label.
    """
    q = np.zeros((1, 4), bool)
    db = np.zeros((2, 4), bool)
    with pytest.raises(
        InvalidInput, match=r"multi-hot labels must be 0/1 \(or bool\).*integer class ids.*labels = labels > 0"
    ):
        evaluate(q, db, np.array([[1, -1]]), np.array([[0, 1], [1, 0]]))
    with pytest.raises(InvalidInput, match="db_labels holds values other than 0 and 1"):
        evaluate(q, db, np.array([[1, 0]]), np.array([[-1, 1], [1, -1]]))
    # converted as the message says, only item 1 is relevant
    out = evaluate(q, db, np.array([[1, -1]]) > 0, np.array([[0, 1], [1, 0]]), per_query=True)
    assert out["per_query"]["n_relevant"].tolist() == [1]


def test_class_ids_in_a_column_are_rejected_and_zero_one_numbers_are_accepted():
    q = np.zeros((2, 4), bool)
    db = np.zeros((3, 4), bool)
    with pytest.raises(InvalidInput, match=r"labels\.ravel\(\)"):
        evaluate(q, db, np.array([[3], [5]]), np.array([[3], [5], [7]]))
    with pytest.raises(InvalidInput, match="0/1"):
        evaluate(q, db, np.array([[0.5, 0]] * 2), np.array([[1, 0]] * 3))
    with pytest.raises(InvalidInput, match="NaN"):
        evaluate(q, db, np.array([[np.nan, 0]] * 2), np.array([[1, 0]] * 3))
    with pytest.raises(InvalidInput, match="multi-hot"):
        evaluate(q, db, np.array([["a", "b"]] * 2), np.array([["a", "b"]] * 3))
    rng = np.random.default_rng(0)
    ql, dl = rng.random((2, 5)) < 0.5, rng.random((3, 5)) < 0.5
    ref = evaluate(q, db, ql, dl, per_query=True)["per_query"]["ap"]
    for dtype in (np.int8, np.uint8, np.int64, np.float32, np.float64):
        got = evaluate(q, db, ql.astype(dtype), dl.astype(dtype), per_query=True)["per_query"]["ap"]
        assert np.array_equal(got, ref)
