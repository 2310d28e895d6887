"""Records are atomic and self-describing; tables follow one stated selection rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashbench.errors import InvalidInput
from hashbench.records import CorruptRecord, cell_key, read_record, record_path, write_record
from hashbench.results.tables import pivot, record_row, render_markdown, select

SPLIT = {"query": np.arange(5), "train": np.arange(3), "database": np.arange(9)}


def meta_for(method, bits, seed, m, *, variant="", created=0, checksum="d0", protocol="digits"):
    config = {
        "dataset": "digits",
        "dataset_checksum": checksum,
        "protocol": protocol,
        "representation": {"name": "pixels", "version": 1},
        "track": "features",
        "method": method,
        "method_version": 1,
        "n_bits": bits,
        "seed": seed,
        "split_seed": seed,
        "split_checksum": f"c{seed}",
        "params": {"v": variant},
    }
    meta = {
        "config": config,
        "variant": variant,
        "timings": {"train_s": 1.0},
        "created_ns": created,
        "collapse": {"collapsed": m < 0.15, "note": "16 of 16 bits constant over the database" if m < 0.15 else ""},
    }
    scores = {"map": m, "map_index": m - 0.01, "map_min": m - 0.02, "map_max": m + 0.02, "topk": None}
    return meta, scores


def frame(*items) -> pd.DataFrame:
    return pd.DataFrame([record_row(Path(f"r{i}.npz"), meta, None, scores) for i, (meta, scores) in enumerate(items)])


def test_record_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    q, d = rng.random((5, 12)) > 0.5, rng.random((9, 12)) > 0.5
    meta, _ = meta_for("itq", 12, 0, 0.5)
    path = record_path(tmp_path, meta["config"])
    write_record(path, meta, q, d, SPLIT, np.arange(5) % 2, np.arange(9) % 3)
    r = read_record(path)
    assert np.array_equal(r.query_codes, q) and np.array_equal(r.db_codes, d)
    assert np.array_equal(r.db_labels, np.arange(9) % 3)
    assert r.meta["config"] == meta["config"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "a temporary file was left behind"


def test_codes_are_stored_in_faiss_bit_order(tmp_path):
    """One bit order everywhere: bit j of a code is bit j % 8 (least significant first) of byte j // 8."""
    q = np.zeros((1, 9), bool)
    q[0, 0] = q[0, 8] = True
    meta, _ = meta_for("itq", 9, 0, 0.5)
    path = write_record(tmp_path / "r.npz", meta, q, q, SPLIT, np.zeros(1), np.zeros(1))
    with np.load(path) as z:
        assert z["query_codes"].tolist() == [[1, 1]]


def test_cache_key_depends_on_every_config_value():
    a = meta_for("itq", 16, 0, 0.5)[0]["config"]
    assert cell_key(a) == cell_key(dict(reversed(list(a.items()))))
    for k, v in [
        ("params", {"n_iter": 10}),
        ("method_version", 2),
        ("dataset_checksum", "other"),
        ("representation", {"name": "pixels", "version": 2}),
    ]:
        assert cell_key(a) != cell_key({**a, k: v}), k


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """A write killed after the bytes hit the disk but before the rename leaves no file at all."""
    import os

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    meta, _ = meta_for("itq", 8, 0, 0.1)
    with pytest.raises(KeyboardInterrupt):
        write_record(
            tmp_path / "x.npz", meta, np.zeros((1, 8), bool), np.zeros((1, 8), bool), SPLIT, np.zeros(1), np.zeros(1)
        )
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_foreign_records_are_clear_errors(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(CorruptRecord, match="unreadable"):
        read_record(p)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, meta=np.array('{"hello": 1}'))
    with pytest.raises(InvalidInput, match="not a hashbench record"):
        read_record(foreign)


def test_pivot_means_and_spread_over_seeds():
    df = frame(
        meta_for("itq", 16, 0, 0.4),
        meta_for("itq", 16, 1, 0.6),
        meta_for("lsh", 16, 0, 0.2),
        meta_for("lsh", 32, 0, 0.3),
        meta_for("lsh", 32, 1, 0.5),
    )
    t = pivot(df, "map")
    assert list(t.columns) == ["method", "16", "32"]
    assert t.set_index("method").loc["itq", "16"] == pytest.approx(0.5)
    s = pivot(df, "map", ".4f", spread=True).set_index("method")
    assert s.loc["itq", "16"] == "0.5000 ± 0.1414"
    assert s.loc["lsh", "16"] == "0.2000 (n=1)", "a cell with fewer seeds than its neighbours says so"
    assert s.loc["itq", "n"] == 2
    md = render_markdown(df, "digits")
    assert "over 2 seed(s) (0, 1)" in md and "| itq" in md


def test_code_length_columns_are_in_order_when_the_first_row_lacks_some():
    """A partial grid (the first method's short codes not run yet) still lists 16, 32, 64, 128."""
    df = frame(
        meta_for("lsh", 64, 0, 0.30),
        meta_for("lsh", 128, 0, 0.35),
        meta_for("itq", 16, 0, 0.40),
        meta_for("itq", 32, 0, 0.45),
        meta_for("itq", 128, 0, 0.50),
    )
    for spread in (False, True):
        t = pivot(df, "map", ".4f", spread=spread)
        assert [c for c in t.columns if c.isdigit()] == ["16", "32", "64", "128"]
    s = pivot(df, "map", ".4f", spread=True).set_index("method")
    assert s.loc["itq", "128"] == "0.5000" and s.loc["lsh", "64"] == "0.3000" and s.loc["lsh", "16"] == ""


def test_collapsed_cells_are_flagged_in_the_table():
    df = frame(meta_for("uhga", 16, 0, 0.10), meta_for("lsh", 16, 0, 0.34))
    s = pivot(df, "map", ".4f", spread=True).set_index("method")
    assert s.loc["uhga", "16"].endswith("†") and not s.loc["lsh", "16"].endswith("†")
    assert "Collapsed codes" in render_markdown(df, "digits") and "16 of 16 bits constant" in render_markdown(df, "x")


def test_derived_values_name_the_seeds_and_lengths_that_derived_them():
    def cell(method, bits, seed, derived):
        meta, scores = meta_for(method, bits, seed, 0.3)
        meta["resolved_params"] = derived
        return meta, scores

    df = frame(
        *[cell("uhga", b, s, {"sim_threshold": t}) for b in (16, 32) for s, t in ((0, 0.5685), (1, 0.5675))],
        cell("usdh", 16, 0, {"k": 3}),
        cell("usdh", 32, 0, {"k": 4}),
        cell("usdh", 16, 1, {"k": 3}),
        cell("usdh", 32, 1, {"k": 4}),
        meta_for("lsh", 16, 0, 0.3),
    )
    text = " ".join(render_markdown(df, "digits").split())  # the bullet is wrapped to 100 characters
    line = text[text.index("- Values derived") : text.index("32 bits).") + len("32 bits).")]
    assert line.endswith(
        "uhga: sim_threshold=0.5685 (seed 0), sim_threshold=0.5675 (seed 1); usdh: k=3 (seeds 0, 1; 16 bits), "
        "k=4 (seeds 0, 1; 32 bits)."
    )
    assert "lsh" not in line


def test_selection_newest_record_per_cell_variants_as_rows_newest_data():
    """run and tables share this rule: every configuration is its own row, the newest record of a cell
    wins, and records of an older copy of the data are left out (and said so)."""
    default_old = meta_for("itq", 16, 0, 0.59, created=1)
    sweep = meta_for("itq", 16, 0, 0.51, variant="n_iter=0", created=2)
    default_new = meta_for("itq", 16, 0, 0.60, created=3)
    stale_data = meta_for("lsh", 16, 0, 0.9, created=0, checksum="old")
    df, notes = select(frame(default_old, sweep, default_new, stale_data))
    t = pivot(df, "map")
    assert t["variant"].tolist() == ["", "n_iter=0"]
    assert t["16"].tolist() == [pytest.approx(0.60), pytest.approx(0.51)]
    assert any("another copy of the data" in n for n in notes) and any("replaced" in n for n in notes)


def test_protocols_are_separate_rows():
    df = frame(meta_for("lsh", 16, 0, 0.34), meta_for("lsh", 16, 0, 0.32, protocol="generic"))
    t = pivot(df, "map")
    assert sorted(t["16"]) == [0.32, 0.34] and "protocol" in t.columns


def test_committed_tables_carry_no_machine_paths():
    """results.csv and map.md identify data by checksum and kind, never by where one machine kept it."""
    from hashbench.results.tables import portable

    cmd = "hashbench run --dataset cifar10 --data-root /srv/data/cifar10 --weights=/home/u/w.pth --out /tmp/o"
    assert portable(cmd) == "hashbench run --dataset cifar10 --data-root DIR --weights=FILE --out o"
    assert portable("CIFAR-10 JPEG image folders /srv/data/cifar10 (50000 train)") == (
        "CIFAR-10 JPEG image folders cifar10 (50000 train)"
    )
    assert portable("cnn:efficientnet-lite0 and p@100, 1/2") == "cnn:efficientnet-lite0 and p@100, 1/2"
    # relative, home and Windows paths locate data on one machine too (a data root given as ../x)
    assert portable("MNIST IDX files in ../shared/data/mnist: test (10000)") == "MNIST IDX files in mnist: test (10000)"
    assert portable("image folder ./data/pets (10 files)") == "image folder pets (10 files)"
    assert portable("features ~/f/x.npy (npy)") == "features x.npy (npy)"
    assert portable("image folder C:\\data\\pets (3 files)") == "image folder pets (3 files)"
    assert portable("--out ../runs/ft --set a.b=1/2") == "--out ft --set a.b=1/2"
    assert portable("image folder C:/data/pets and ..\\data\\cats") == "image folder pets and cats"
    assert (
        portable("see https://example.org/a/b.html, 1/2, train/test")
        == "see https://example.org/a/b.html, 1/2, train/test"
    )
    assert portable("--dataset features:/srv/x/emb.npz") == "--dataset features:emb.npz"
    assert portable("hashbench run --out o --data-root=../x") == "hashbench run --out o --data-root=DIR"
