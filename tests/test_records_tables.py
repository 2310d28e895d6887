"""Records are atomic and self-describing; tables are means over seeds with columns named by bits."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.errors import InvalidInput
from hashbench.records import cell_key, read_record, record_path, write_record
from hashbench.tables import pivot, records_to_frame, render_markdown


def meta_for(method, bits, seed, m):
    config = {"dataset": "digits", "protocol": "digits", "representation": "pixels", "track": "features",
              "method": method, "n_bits": bits, "seed": seed, "split_checksum": f"c{seed}", "params": {},
              "metric": {"topk": None}}
    return {"config": config, "scores": {"map": m, "map_index": m - 0.01, "map_min": m - 0.02, "map_max": m + 0.02},
            "timings": {"train_s": 1.0}}


def test_record_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    q, d = rng.random((5, 12)) > 0.5, rng.random((9, 12)) > 0.5
    meta = meta_for("itq", 12, 0, 0.5)
    path = record_path(tmp_path, meta["config"])
    write_record(path, meta, q, d, {"query": np.arange(5), "train": np.arange(3), "database": np.arange(9)})
    r = read_record(path)
    assert np.array_equal(r.query_codes, q) and np.array_equal(r.db_codes, d)
    assert r.meta["scores"]["map"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "a temporary file was left behind"


def test_cache_key_depends_on_every_config_value():
    a = meta_for("itq", 16, 0, 0.5)["config"]
    b = {**a, "params": {"n_iter": 10}}
    assert cell_key(a) == cell_key(dict(reversed(list(a.items()))))
    assert cell_key(a) != cell_key(b)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A write killed after the bytes hit the disk but before the rename leaves no file at all."""
    import os

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    path = tmp_path / "x.npz"
    with pytest.raises(KeyboardInterrupt):
        write_record(path, meta_for("itq", 8, 0, 0.1), np.zeros((1, 8), bool), np.zeros((1, 8), bool),
                     {"query": np.arange(1), "train": np.arange(1), "database": np.arange(1)})
    assert list(tmp_path.iterdir()) == []


def test_corrupt_record_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="--force"):
        read_record(p)


def test_pivot_means_over_seeds_in_paper_order():
    df = records_to_frame([meta_for("itq", 16, 0, 0.4), meta_for("itq", 16, 1, 0.6), meta_for("lsh", 16, 0, 0.2),
                           meta_for("sh", 32, 0, 0.3)])
    t = pivot(df, "map")
    assert list(t.columns) == ["method", "16", "32"]
    assert t["method"].tolist() == ["lsh", "sh", "itq"]
    assert t.set_index("method").loc["itq", "16"] == pytest.approx(0.5)
    md = render_markdown(df, "digits")
    assert "Mean over 2 seed(s): 0, 1" in md and "| itq" in md


def test_other_configurations_are_not_averaged_as_seeds():
    """Seed 1 re-run with other hyperparameters replaces the configuration; it is not a second seed."""
    from hashbench.tables import latest_per_cell

    a0, a1 = meta_for("itq", 16, 0, 0.6), meta_for("itq", 16, 1, 0.6)
    b1 = meta_for("itq", 16, 1, 0.2)
    b1["config"]["params"] = {"n_iter": 0}
    for i, m in enumerate([a0, a1, b1]):
        m["created_ns"] = i
    df = latest_per_cell(records_to_frame([a0, a1, b1]))
    assert len(df) == 1 and df["map"].iloc[0] == pytest.approx(0.2)
    df = latest_per_cell(records_to_frame([a0, a1, b1]), prefer=records_to_frame([a0, a1])["record_key"])
    assert len(df) == 2 and df["map"].mean() == pytest.approx(0.6)


def test_protocols_are_separate_rows():
    a, b = meta_for("lsh", 16, 0, 0.34), meta_for("lsh", 16, 0, 0.32)
    b["config"]["protocol"] = "generic"
    t = pivot(records_to_frame([a, b]), "map")
    assert sorted(t["16"]) == [0.32, 0.34] and "protocol" in t.columns
