"""Speed-up claims (hashbench.reproductions.speedup): times to target from learning curves, the
interval over seeds, the verdicts, and the overview table claims.md opens with."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hashbench.reproductions import speedup
from hashbench.reproductions import uhga2020 as paper

CNN = "cnn:efficientnet-lite0"


def _curve(values, per_epoch_s=2.0, final=None):
    return {
        "epochs": list(range(1, len(values) + 1)),
        "seconds": [per_epoch_s * (i + 1) for i in range(len(values))],
        "val_epochs": list(range(1, len(values) + 1)),
        "val_map": list(values),
        "final_val_map": final,
    }


def test_time_to_target_and_final_map():
    c = _curve([0.1, 0.3, 0.5, 0.6], per_epoch_s=3.0)
    assert speedup.time_to_target(c, 0.5) == (3.0, 9.0)  # the first scored epoch at or above the target
    assert speedup.time_to_target(c, 0.05) == (1.0, 3.0)
    assert all(math.isnan(v) for v in speedup.time_to_target(c, 0.7))  # never reached
    assert speedup.final_map(c) == 0.6  # the last scored one when the record has no final value
    assert speedup.final_map({**c, "final_val_map": 0.55}) == 0.55
    sparse = {**c, "val_epochs": [2, 4], "val_map": [0.3, 0.6]}  # curve_every=2
    assert speedup.time_to_target(sparse, 0.5) == (4.0, 12.0)


def test_t_interval_and_verdicts():
    lo, hi = speedup.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))
    assert all(math.isnan(v) for v in speedup.t_interval([1.0]))
    assert speedup.verdict(0.5, 3.0, 3) == "holds"
    assert speedup.verdict(-3.0, -0.5, 3) == "does not hold"
    assert speedup.verdict(-1.0, 2.0, 3) == "inconclusive at 3 seeds"
    assert speedup.verdict(math.nan, math.nan, 1) == "inconclusive at 1 seed"
    assert speedup.verdict(math.nan, math.nan, 0) == "not run"


class Curves:
    """A frame of curve records (the speed-up claims' cells) and their curves, by record path."""

    def __init__(self):
        self.rows, self.curves = [], {}

    def add(self, method, seeds, make, bits=paper.BITS):
        for s in seeds:
            for b in bits:
                path = f"rec/{method}-{b}-{s}"
                self.curves[path] = make(s)
                self.rows.append(
                    {
                        "dataset": "cifar10",
                        "protocol": "cifar10",
                        "method": method,
                        "variant": "validation_fraction=0.1",
                        "representation": CNN,
                        "track": "features",
                        "n_bits": b,
                        "seed": s,
                        "split_checksum": f"split{s}",
                        "config_id": f"{method}{b}",
                        "map": 0.5,
                        "record_path": path,
                        "scores_path": path,
                        "created": len(self.rows),
                    }
                )
        return self

    @property
    def frame(self):
        return pd.DataFrame(self.rows)


def _ramp(reach_at: int, epochs: int = 10, top: float = 0.5):
    """A curve rising linearly to ``top`` at epoch ``reach_at``, then flat."""
    return [top * min(1.0, e / reach_at) for e in range(1, epochs + 1)]


def _tested(c: Curves, seeds=None):
    return paper.REPRODUCTION.test_speedups(c.frame, "cifar10", seeds, read_curve=c.curves.get, defaults=None)


def test_faster_method_holds_in_epochs_and_seconds_are_reported():
    c = Curves()
    # GA reaches 0.9 of the final MAP 3-4 epochs earlier, at 1.5x the seconds per epoch
    c.add("ssdh+ga", [0, 1, 2], lambda s: _curve(_ramp(4 + s % 2), per_epoch_s=3.0))
    c.add("ssdh", [0, 1, 2], lambda s: _curve(_ramp(8), per_epoch_s=2.0))
    t = _tested(c)
    assert list(t.columns) == speedup.SPEEDUP_COLUMNS
    e = t[(t["claim"] == "ga_speeds_up_ssdh") & (t["unit"] == "epochs")]
    assert len(e) == 4 and (e["verdict"] == "holds").all() and (e["n_seeds"] == 3).all()
    # target 0.45: ramp(4) reaches it at epoch 4, ramp(5) at 5, ramp(8) at 8 (7.2 is the exact crossing)
    assert e["ours_a"].iloc[0] == pytest.approx((4 + 5 + 4) / 3) and e["ours_b"].iloc[0] == 8.0
    assert e["ours_effect"].iloc[0] == pytest.approx(8 - 13 / 3)
    s = t[(t["claim"] == "ga_speeds_up_ssdh") & (t["unit"] == "seconds")]
    assert s["ours_a"].iloc[0] == pytest.approx(3.0 * 13 / 3) and s["ours_b"].iloc[0] == 16.0
    # UHGA's cells were not run
    u = t[t["claim"] == "ga_speeds_up_uhga"]
    assert (u["verdict"] == "not run").all() and (u["n_seeds"] == 0).all()
    assert speedup.summarise(t) == {"ga_speeds_up_ssdh": "holds", "ga_speeds_up_uhga": "not run"}


def test_slower_and_equal_methods():
    c = Curves()
    c.add("ssdh+ga", [0, 1, 2], lambda s: _curve(_ramp(8 + s)))
    c.add("ssdh", [0, 1, 2], lambda s: _curve(_ramp(4)))
    c.add("uhga+ga", [0, 1], lambda s: _curve(_ramp(5 + s)))
    c.add("uhga", [0, 1], lambda s: _curve(_ramp(6 - s)))
    t = _tested(c)
    verdicts = speedup.summarise(t)
    assert verdicts["ga_speeds_up_ssdh"] == "does not hold (16, 32, 64, 128)"
    assert verdicts["ga_speeds_up_uhga"] == "inconclusive at 2 seeds"
    one = _tested(c, seeds=[0])
    assert (one.loc[one["unit"] == "epochs", "verdict"] == "inconclusive at 1 seed").all()


def test_overview_opens_claims_md_and_names_the_command_of_what_was_not_run():
    c = (
        Curves()
        .add("ssdh+ga", [0, 1, 2], lambda s: _curve(_ramp(4)))
        .add("ssdh", [0, 1, 2], lambda s: _curve(_ramp(8)))
    )
    sp = _tested(c)
    claims = paper.claims(pd.DataFrame(), lambda p: {}, "cifar10", n_boot=10, n_perm=10, defaults=None)
    cmd = "hashbench paper uhga2020 --dataset cifar10 --out runs --run --data-root DIR"
    ov = paper.REPRODUCTION.claim_overview(claims, sp, regime="features", run_command=cmd)
    assert list(ov.columns) == ["claim", "regime", "verdict", "effect [95% CI]", "reason"]
    assert len(ov) == len(paper.CLAIM_LIST) and (ov["regime"] == "features").all()
    by = ov.set_index("claim")
    ssdh = by.loc[paper.CLAIMS["ga_speeds_up_ssdh"]]
    assert ssdh["verdict"] == "holds" and ssdh["effect [95% CI]"].startswith("+4.0 epochs")
    for key in ("ga_improves_ssdh", "ga_speeds_up_uhga"):
        row = by.loc[paper.CLAIMS[key]]
        assert row["verdict"] == "not run" and f"`{cmd}`" in row["reason"]
    text = paper.render_claims_markdown(claims, "cifar10", speedups=sp, regime="features", run_command=cmd)
    first_table = text.split("\n\n")[1]
    assert first_table.startswith("| claim") and "GA speeds up SSDH" in first_table
    assert "## Speed of learning" in text and "epochs saved [95% CI]" in text
    # without a run command the speed-up table still shows (the library's default)
    bare = paper.render_claims_markdown(claims, "cifar10", speedups=sp, regime="features")
    assert "epochs saved [95% CI]" in bare and "Not run" not in bare.split("## Speed of learning")[1]


def test_real_curves_from_a_digits_run(tmp_path):
    """Records of a real run carry the curves the claim reads: times within the epochs run, seconds
    growing with them."""
    from hashbench.results.tables import load_frame
    from hashbench.run.runner import RunConfig, run_grid

    small = {"validation_fraction": [0.2], "epochs": [3], "curve_every": [1], "hidden": [32], "batch_size": [50]}
    cfg = RunConfig(
        dataset="digits",
        methods=["ssdh,ssdh+ga"],
        bits=[16],
        seeds=[0, 1],
        params={"ssdh": small, "ssdh+ga": small},
        device="cpu",
        out=str(tmp_path),
        progress=False,
    )
    run_grid(cfg, log=lambda _: None).raise_for_failures()
    df = load_frame(tmp_path / "digits")
    rows = {m: df[df["method"] == m] for m in ("ssdh", "ssdh+ga")}
    claim = speedup.SpeedupClaim("k", "GA speeds up SSDH", "ssdh+ga", "ssdh", validation_fraction=0.2)
    t = pd.DataFrame(speedup.compare(claim, "s", rows["ssdh+ga"], rows["ssdh"], 16, ("a", "b"), _read))
    assert list(t["unit"]) == ["epochs", "seconds"] and (t["n_seeds"] == 2).all()
    e, s = t.iloc[0], t.iloc[1]
    assert 1 <= e["ours_a"] <= 3 and 1 <= e["ours_b"] <= 3 and np.isfinite(e["ci_low"])
    assert s["ours_a"] > 0 and s["ours_b"] > 0


def _read(path):
    from hashbench.records import read_meta

    return read_meta(path).get("curve") or {}


def test_paper_run_command_and_one_bar_over_the_plan():
    from hashbench.cli.paper import plan_bar, run_command_of

    cmd = run_command_of(["paper", "uhga2020", "--out", "/abs/runs", "--dataset", "cifar10", "--seeds", "0,1,2"])
    assert cmd == "hashbench paper uhga2020 --out runs --dataset cifar10 --seeds 0,1,2 --run --data-root DIR"
    assert run_command_of(["paper", "--run", "--data-root", "/d/cifar"]).count("--run") == 1
    assert plan_bar(0, 0) is None
    bar = plan_bar(5, 2)
    assert bar.total == 5 and "5 cells in 2 runs" in bar.desc
    bar.close()


def test_equal_times_in_every_seed_say_so():
    assert speedup.verdict(0.0, 0.0, 3) == "inconclusive at 3 seeds: no difference in any seed"
    c = (
        Curves()
        .add("uhga+ga", [0, 1, 2], lambda s: _curve(_ramp(3)))
        .add("uhga", [0, 1, 2], lambda s: _curve(_ramp(3)))
    )
    assert speedup.summarise(_tested(c))["ga_speeds_up_uhga"] == "inconclusive at 3 seeds"
