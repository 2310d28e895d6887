"""Paired comparisons (hashbench.results.stats) on known answers, and compare_table on a constructed frame."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from hashbench.digests import canonical_json
from hashbench.errors import InvalidInput, UnknownName
from hashbench.reproductions.base import Cells, cell_rows
from hashbench.results.stats import (
    Selector,
    compare_table,
    format_p,
    paired_difference,
    parse_selector,
    parse_variant,
    render_compare_markdown,
    same_params,
    select_rows,
)
from hashbench.results.tables import record_row
from hashbench.values import format_variant, stored_variant


def _exact_sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p of the sign-flip test by enumerating every sign pattern (the definition)."""
    t0 = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= t0 - 1e-12 for signs in itertools.product((1.0, -1.0), repeat=len(d)))
    return hits / 2 ** len(d)


# ----------------------------------------------------------------------------------------------
# paired_difference


def test_identical_inputs_give_zero_difference_and_p_one():
    a = np.random.default_rng(0).random(500)
    r = paired_difference(a, a.copy())
    assert r["diff"] == 0.0 and r["ci_low"] == 0.0 and r["ci_high"] == 0.0
    assert r["p_randomisation"] == 1.0 and r["p_ttest"] == 1.0
    assert r["n_queries"] == 500 and r["n_seeds"] == 1


def test_identical_inputs_over_seeds():
    rng = np.random.default_rng(1)
    a = [rng.random(100), rng.random(120)]
    r = paired_difference(a, [x.copy() for x in a], seeds=[0, 1])
    assert (r["diff"], r["ci_low"], r["ci_high"], r["p_randomisation"], r["p_ttest"]) == (0, 0, 0, 1, 1)
    assert r["n_queries_per_seed"] == (100, 120) and r["seeds"] == (0, 1)


def test_every_query_improved_gives_tiny_p():
    rng = np.random.default_rng(2)
    b = rng.random(300)
    a = b + rng.uniform(0.01, 0.05, size=300)  # every query better under a
    r = paired_difference(a, b, n_perm=2000)
    assert r["diff"] > 0 and r["ci_low"] > 0
    assert r["p_randomisation"] == pytest.approx(1 / 2001)  # the +1 correction: never 0
    assert r["p_method"] == "monte-carlo"
    assert r["p_ttest"] < 1e-50


def test_constant_improvement_zero_variance_t_test():
    b = np.random.default_rng(3).random(50)
    a = b + 0.125  # exact in binary: every difference is the same float
    r = paired_difference(a, b)
    assert r["p_ttest"] == 0.0  # defined: zero variance and a non-zero mean
    assert r["ci_low"] == pytest.approx(0.125) and r["ci_high"] == pytest.approx(0.125)
    assert r["diff"] == pytest.approx(0.125)


def test_direction_is_a_minus_b():
    b = np.zeros(20)
    a = np.full(20, 0.5)
    assert paired_difference(a, b)["diff"] == pytest.approx(0.5)
    assert paired_difference(b, a)["diff"] == pytest.approx(-0.5)


def test_small_case_matches_enumerated_randomisation_distribution():
    d = np.array([0.30, -0.10, 0.20, 0.05, -0.25, 0.15, 0.40])
    b = np.full(len(d), 0.5)
    r = paired_difference(b + d, b)
    assert r["p_method"] == "exact"  # 2**7 patterns <= n_perm: every pattern enumerated
    assert r["p_randomisation"] == pytest.approx(_exact_sign_flip_p(d), abs=1e-12)
    # ties at zero are left out of the flips and change nothing
    d0 = np.concatenate([d, np.zeros(30)])
    r0 = paired_difference(np.full(len(d0), 0.5) + d0, np.full(len(d0), 0.5))
    assert r0["p_randomisation"] == pytest.approx(_exact_sign_flip_p(d), abs=1e-12)


def test_monte_carlo_p_agrees_with_enumeration():
    rng = np.random.default_rng(4)
    d = rng.normal(0.02, 0.1, size=14)  # 16384 patterns: above n_perm, so the test samples them
    p_exact = _exact_sign_flip_p(d)
    r = paired_difference(d, np.zeros_like(d), n_perm=4000, rng=7)
    assert r["p_method"] == "monte-carlo"
    assert abs(r["p_randomisation"] - p_exact) < 4 * np.sqrt(p_exact * (1 - p_exact) / 4000) + 1e-3


def test_t_test_matches_scipy_on_seed_averaged_scores():
    rng = np.random.default_rng(5)
    a = [rng.random(80) for _ in range(3)]
    b = [x - rng.normal(0.01, 0.05, size=80) for x in a]
    r = paired_difference(a, b, n_boot=200, n_perm=200)
    expected = sps.ttest_rel(np.mean(a, axis=0), np.mean(b, axis=0)).pvalue
    assert r["p_ttest"] == pytest.approx(expected, rel=1e-12)


def test_bootstrap_interval_covers_true_difference_about_95_percent():
    rng = np.random.default_rng(6)
    mu, covered, trials = 0.03, 0, 300
    for t in range(trials):
        b = rng.beta(2, 5, size=80)
        a = b + mu + rng.normal(0, 0.1, size=80)  # true mean difference mu
        r = paired_difference(a, b, n_boot=1000, n_perm=1, rng=t)
        covered += r["ci_low"] <= mu <= r["ci_high"]
    assert 0.91 <= covered / trials <= 0.985


def test_two_level_bootstrap_carries_seed_to_seed_variation():
    rng = np.random.default_rng(8)
    shift = [0.0, 0.04, 0.08]  # the difference itself varies from seed to seed
    b = [rng.random(400) for _ in shift]
    a = [x + s + rng.normal(0, 0.02, size=400) for x, s in zip(b, shift, strict=True)]
    two = paired_difference(a, b, n_boot=2000, n_perm=100)
    pooled = paired_difference(np.concatenate(a), np.concatenate(b), n_boot=2000, n_perm=100)
    assert two["diff"] == pytest.approx(pooled["diff"])  # equal query counts: the same point estimate
    assert (two["ci_high"] - two["ci_low"]) > 3 * (pooled["ci_high"] - pooled["ci_low"])


def test_seeded_results_repeat():
    rng = np.random.default_rng(9)
    a, b = rng.random(200), rng.random(200)
    r1, r2 = paired_difference(a, b, rng=11), paired_difference(a, b, rng=11)
    assert (r1["ci_low"], r1["ci_high"], r1["p_randomisation"]) == (r2["ci_low"], r2["ci_high"], r2["p_randomisation"])
    assert paired_difference(a, b, rng=12)["ci_low"] != r1["ci_low"]


def test_bad_inputs_raise_with_the_fix():
    with pytest.raises(InvalidInput, match="same split"):
        paired_difference(np.zeros(3), np.zeros(4))
    with pytest.raises(InvalidInput, match="seed"):
        paired_difference([np.zeros(3)], [np.zeros(3), np.zeros(3)])
    with pytest.raises(InvalidInput, match="NaN"):
        paired_difference(np.array([0.1, np.nan]), np.zeros(2))
    with pytest.raises(InvalidInput, match="confidence"):
        paired_difference(np.zeros(3), np.zeros(3), ci=95)


def test_format_p():
    assert format_p(1.0) == "1.000" and format_p(0.03) == "0.0300" and format_p(1e-7) == "1.0e-07"
    assert format_p(float("nan")) == ""


@pytest.mark.slow
def test_ten_thousand_resamples_of_ten_thousand_queries_in_seconds():
    rng = np.random.default_rng(10)
    a = rng.random(10000)
    b = a - rng.normal(0.005, 0.1, size=10000)
    t = time.process_time()
    r = paired_difference(a, b)
    cpu = time.process_time() - t
    assert r["ci_low"] < r["diff"] < r["ci_high"]
    assert cpu < 4.0, f"{cpu:.2f} s of CPU for 10,000 x 10,000 (bootstrap + randomisation)"


# ----------------------------------------------------------------------------------------------
# selectors


def test_parse_selector_forms():
    s = parse_selector("itq")
    assert (s.method, s.params, s.representation, s.track) == ("itq", {}, None, None)
    s = parse_selector("itq[n_iter=10]")
    assert s.params == {"n_iter": 10}
    s = parse_selector("UHGA+GA[sim_threshold=0.3,gamma=0.2]@cnn:efficientnet-lite0/features")
    assert s.method == "uhga+ga" and s.params == {"sim_threshold": 0.3, "gamma": 0.2}
    assert (s.representation, s.track) == ("cnn:efficientnet-lite0", "features")
    assert parse_selector("ssdh@cnn:alexnet").representation == "cnn:alexnet"
    for bad in ["", "itq[n_iter]", "itq[", "a b"]:
        with pytest.raises(InvalidInput):
            parse_selector(bad)


def test_variant_matching_numeric_and_defaults():
    assert parse_variant("") == {} and parse_variant("n_iter=10,alpha=0.5") == {"n_iter": 10, "alpha": 0.5}
    assert same_params({"t": 0.30000000000000004}, {"t": 0.3})
    assert not same_params({"t": 0.2}, {"t": 0.3})
    assert same_params({}, {"t": 0.3}, defaults={"t": 0.3})  # a default-variant row is t=0.3 too
    assert not same_params({}, {"t": 0.3})


# ----------------------------------------------------------------------------------------------
# compare_table on a constructed frame


def _frame_and_scores(nq: int = 200):
    """itq, itq[n_iter=10] (same scores as itq), lsh (itq minus 0.05 everywhere), sh (noise around itq);
    16 and 32 bits; seeds 0 and 1 with different splits."""
    rng = np.random.default_rng(0)
    rows, store = [], {}
    for seed in (0, 1):
        for bits in (16, 32):
            base = rng.uniform(0.2, 0.8, size=nq).astype(np.float32)
            per = {
                ("itq", ""): base,
                ("itq", "n_iter=10"): base.copy(),
                ("lsh", ""): base - np.float32(0.05),
                ("sh", ""): base + rng.normal(0, 0.05, size=nq).astype(np.float32),
            }
            for (method, variant), ap in per.items():
                path = f"scores/{method}-{variant}-{bits}-{seed}.npz"
                store[path] = {"per_query": {"ap": ap}, "map": float(ap.mean())}
                rows.append(
                    {
                        "dataset": "digits",
                        "protocol": "digits",
                        "representation": "pixels",
                        "track": "features",
                        "method": method,
                        "variant": variant,
                        "n_bits": bits,
                        "seed": seed,
                        "split_checksum": f"split{seed}",
                        "config_id": f"{method}{variant}{bits}",
                        "map": float(ap.mean()),
                        "scores_path": path,
                        "created": seed,
                    }
                )
    return pd.DataFrame(rows), store.__getitem__


def test_compare_table_known_answers():
    frame, load = _frame_and_scores()
    t = compare_table(frame, load, "itq", "lsh", n_boot=500, n_perm=500, defaults=None)
    assert list(t.columns) == [
        "n_bits",
        "map_a",
        "map_b",
        "diff",
        "ci_low",
        "ci_high",
        "p_randomisation",
        "p_ttest",
        "n_queries",
        "n_seeds",
        "verdict",
    ]
    assert list(t["n_bits"]) == [16, 32] and set(t["n_seeds"]) == {2} and set(t["n_queries"]) == {200}
    assert np.allclose(t["diff"], 0.05, atol=1e-6) and (t["verdict"] == "a better").all()
    assert np.allclose(t["map_a"] - t["map_b"], t["diff"])
    assert (t["p_randomisation"] == 1 / 501).all()

    same = compare_table(frame, load, "itq[n_iter=10]", "itq", n_boot=200, n_perm=200, defaults=None)
    assert (same["diff"] == 0).all() and (same["p_randomisation"] == 1).all()
    assert (same["verdict"] == "no significant difference").all()

    back = compare_table(frame, load, "lsh", "itq", n_boot=200, n_perm=200, defaults=None)
    assert (back["verdict"] == "b better").all()


def test_compare_table_seed_filter_and_unmatched_seeds():
    frame, load = _frame_and_scores()
    t = compare_table(frame, load, "itq", "lsh", seeds=[1], n_boot=100, n_perm=100, defaults=None)
    assert set(t["n_seeds"]) == {1}
    # lsh's seed-1 records on another split: only seed 0 pairs up
    moved = frame.copy()
    moved.loc[(moved["method"] == "lsh") & (moved["seed"] == 1), "split_checksum"] = "other"
    t = compare_table(moved, load, "itq", "lsh", n_boot=100, n_perm=100, defaults=None)
    assert set(t["n_seeds"]) == {1}


def test_compare_table_selector_errors():
    frame, load = _frame_and_scores()
    with pytest.raises(UnknownName, match=r"itq\[n_iter=10\]"):  # names the runs there are
        compare_table(frame, load, "itq[n_iter=99]", "lsh", defaults=None)
    two_inputs = pd.concat([frame, frame[frame["method"] == "lsh"].assign(representation="gist")])
    with pytest.raises(InvalidInput, match="lsh@"):
        compare_table(two_inputs, load, "itq", "lsh", defaults=None)
    ok = compare_table(two_inputs, load, "itq", "lsh@gist", n_boot=100, n_perm=100, defaults=None)
    assert (ok["verdict"] == "a better").all()


def test_compare_table_missing_per_query_scores():
    frame, load = _frame_and_scores()

    def no_per_query(path):
        return {"map": 0.5}

    with pytest.raises(InvalidInput, match="rescore"):
        compare_table(frame, no_per_query, "itq", "lsh", defaults=None)


def test_selector_uses_registry_defaults():
    frame, _ = _frame_and_scores()
    # ITQ's registered default n_iter is 50: the default-variant rows are itq[n_iter=50]
    rows = select_rows(frame, "itq[n_iter=50]")
    assert len(rows) and set(rows["variant"]) == {""}
    assert select_rows(frame, "itq[n_iter=50]", defaults=None).empty


def test_render_compare_markdown():
    frame, load = _frame_and_scores()
    t = compare_table(frame, load, "itq", "sh", n_boot=200, n_perm=200, defaults=None)
    text = render_compare_markdown(t, "itq", "sh")
    assert text.startswith("# itq vs sh")
    assert "95% CI" in text and "p (randomisation)" in text and "a minus b" in text
    assert "| 16 " in text and "| 32 " in text


# ----------------------------------------------------------------------------------------------
# Matching on the parameters a record stores, not on its variant label read back


def _stored_params_frame() -> pd.DataFrame:
    """Rows of a method ``m`` built from records as ``load_frame`` builds them: each stores its key
    parameters (``config["params"]``, through JSON as on disk) and its variant label."""
    runs = {
        "comma": {"note": "x,b=1"},  # label note=x,b=1: reads back as note=x and b=1
        "two": {"note": "x", "b": 1},  # label b=1,note=x
        "tuple": {"sizes": (64, 32)},  # stored as a JSON list
        "text": {"act": "1"},  # label act=1: reads back as the integer 1
        "default": {},
    }
    rows = []
    for seed, (name, changed) in enumerate(runs.items()):
        params = json.loads(canonical_json({**_M_DEFAULTS, **changed, "n_bits": 16}))
        config = {"dataset": "d", "protocol": "p", "method": "m", "representation": {"name": "pixels"},
                  "track": "features", "n_bits": 16, "seed": seed, "split_checksum": name,
                  "params": params}  # fmt: skip
        meta = {"config": config, "variant": format_variant(changed)}
        rows.append(record_row(Path(f"{name}.npz"), meta, None, None))
    return pd.DataFrame(rows)


_M_DEFAULTS = {"note": "", "b": 0, "sizes": (8,), "act": "relu"}


def _m_defaults(method):
    return dict(_M_DEFAULTS) if method == "m" else {}


def _matched(frame, params) -> set[str]:
    return set(select_rows(frame, Selector("m", params), _m_defaults)["split_checksum"])


def test_selectors_match_stored_params_where_the_label_is_ambiguous_or_lossy(tmp_path):
    frame = _stored_params_frame()
    assert parse_variant("note=x,b=1") == parse_variant("b=1,note=x")  # the label cannot tell them apart
    assert parse_variant("act=1") == {"act": 1}  # nor a string from a number
    assert _matched(frame, {"note": "x,b=1"}) == {"comma"}
    assert _matched(frame, {"note": "x", "b": 1}) == {"two"}
    assert _matched(frame, {"sizes": (64, 32)}) == {"tuple"}
    assert set(select_rows(frame, "m[sizes=(64, 32)]", _m_defaults)["split_checksum"]) == {"tuple"}
    assert _matched(frame, {"act": "1"}) == {"text"}
    assert _matched(frame, {}) == _matched(frame, {"act": "relu"}) == {"default"}
    # results.csv keeps the column as text: the same matches read back
    frame.to_csv(tmp_path / "results.csv", index=False)
    back = pd.read_csv(tmp_path / "results.csv")
    assert _matched(back, {"note": "x,b=1"}) == {"comma"} and _matched(back, {"act": "1"}) == {"text"}
    # the reproductions' cell look-ups go through the same matching
    cell = {"method": "m", "bits": 16, "params": {"note": "x", "b": 1}, "representation": "pixels",
            "track": "features"}  # fmt: skip
    assert list(cell_rows(frame, cell, _m_defaults)["split_checksum"]) == ["two"]
    assert list(Cells(frame, _m_defaults).rows(cell)["split_checksum"]) == ["two"]


def test_frames_without_stored_params_fall_back_to_the_label():
    old = _stored_params_frame().drop(columns="variant_params")  # a frame or CSV from before the column
    assert _matched(old, {"note": "x", "b": 1}) == {"comma", "two"}  # what parsing the label gives
    assert _matched(old, {"act": "1"}) == set()
    assert _matched(old, {"sizes": (64, 32)}) == {"tuple"} and _matched(old, {}) == {"default"}


def test_stored_variant_formats_forward():
    stored = {"a": "x,b=1", "b": 0, "c": [1, 2], "n_bits": 16}
    assert stored_variant(stored, "") == {}
    assert stored_variant(stored, format_variant({"a": "x,b=1"})) == {"a": "x,b=1"}
    assert stored_variant(stored, "a=x,b=1,c=(1, 2)") == {"a": "x,b=1", "c": [1, 2]}
    assert stored_variant(stored, "c=[1, 2]") == {"c": [1, 2]}
    assert stored_variant(stored, "b=5") is None  # the stored value does not show the label
    assert stored_variant(None, "b=0") is None
