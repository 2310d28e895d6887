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


def test_failed_write_leaves_nothing(tmp_path):
    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("boom")

    path = tmp_path / "x.npz"
    with pytest.raises(RuntimeError):
        write_record(path, meta_for("itq", 8, 0, 0.1), Boom(), np.zeros((1, 8), bool), {})
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
