"""Fault injection: corrupt artifacts, data that carries code, bad gate flags, killed parents, full
disks, noisy timings, folders that share a basename. Each test pins one case of issue 29 on the
embedded digits dataset with tiny runs, so a regression of any of them fails CI."""

from __future__ import annotations

import errno
import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashbench import cache
from hashbench.cli import main
from hashbench.records import CorruptRecord, is_finished, iter_record_paths, read_record
from hashbench.scoring import load_scores, scores_path

RUN = ["run", "--dataset", "digits", "--no-progress", "--no-plots", "--threads", "1"]


def _flip(path: Path, offset: int | None = None, n: int = 16) -> None:
    """XOR ``n`` bytes of a file in place (in its middle unless ``offset``)."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 if offset is None else offset
    for i in range(start, min(start + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _map(out: Path, method: str, bits: int) -> float:
    df = pd.read_csv(out / "digits" / "results.csv")
    return float(df[(df["method"] == method) & (df["n_bits"] == bits)]["map"].iloc[0])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """itq at 16 bits, seed 0, on digits pixels: one record and its scores."""
    out = tmp_path_factory.mktemp("faults-run")
    assert main([*RUN, "--methods", "itq", "--bits", "16", "--out", str(out)]) == 0
    return out


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


# -- 1. a corrupted feature cache is never used -------------------------------------------------


def test_cache_entry_checksum_round_trip_and_flip(tmp_path):
    path = tmp_path / "features" / "x-abc.npy"
    a = np.arange(4000, dtype=np.float32).reshape(40, 100)
    cache.save_entry(path, a, {"k": 1})
    assert cache.checksum_path(path).is_file()
    assert cache.verify_entry(path) == "ok"
    np.testing.assert_array_equal(cache.load_entry(path), a)
    _flip(path, n=400)
    cache._verified.clear()
    assert cache.verify_entry(path) == "corrupt"
    with pytest.warns(UserWarning, match=r"x-abc\.npy fails its checksum"):
        assert cache.load_entry(path, mmap=True) is None
    assert not path.exists()  # reported once: the bad entry is gone, the caller recomputes it


def test_cache_entry_without_checksum_is_read_and_adopted(tmp_path):
    from hashbench.io import atomic_save_npy

    path = tmp_path / "old.npy"
    atomic_save_npy(path, np.ones((3, 2), np.float32))  # the layout before checksums
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cache.load_entry(path), np.ones((3, 2)))
    assert cache.verify_entry(path) == "ok"  # its checksum was written at that read


def test_corrupt_feature_cache_is_recomputed_not_used(tmp_path, monkeypatch):
    """Case 1: XOR 400 bytes of a cached GIST entry; the re-run gives the same MAP, with a warning."""
    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path / "cache"))
    argv = [*RUN, "--methods", "itq", "--bits", "16", "--features", "gist"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    entries = list((tmp_path / "cache" / "features").glob("digits-gist-*.npy"))
    assert len(entries) == 1
    _flip(entries[0], n=400)
    cache._verified.clear()
    with pytest.warns(UserWarning, match="fails its checksum"):
        assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert _map(tmp_path / "b", "itq", 16) == _map(tmp_path / "a", "itq", 16)
    assert cache.verify_entry(entries[0]) == "ok"  # recomputed and stored again


def test_chunk_parts_are_verified(tmp_path, monkeypatch):
    import hashbench.features as features
    from hashbench.datasets import load_dataset

    monkeypatch.setattr(features, "CHUNK_ROWS", 600)
    ds = load_dataset("digits")
    full = features.compute_features(ds, "gist", cache_dir=tmp_path)
    entry = next((tmp_path / "features").glob("digits-gist-*.npy"))
    # a killed run's parts: write them, flip one, drop the whole entry
    parts = features.parts_dir(entry)
    for s in range(0, len(ds), 600):
        e = min(s + 600, len(ds))
        cache.save_entry(parts / f"rows-{s:09d}-{e:09d}.npy", full[s:e])
    bad = parts / "rows-000000600-000001200.npy"
    _flip(bad, n=64)
    entry.unlink()
    calls = []
    real = features._compute
    monkeypatch.setattr(features, "_compute", lambda d, idx, *a, **k: calls.append(len(idx)) or real(d, idx, *a, **k))
    cache._verified.clear()
    with pytest.warns(UserWarning, match="rows-000000600-000001200.npy fails its checksum"):
        again = features.compute_features(ds, "gist", cache_dir=tmp_path)
    assert calls == [600]  # only the corrupt chunk was recomputed
    np.testing.assert_array_equal(again, full)


# -- 2. records with corrupt codes are never reused or shown ------------------------------------


def _record(out: Path) -> Path:
    (p,) = iter_record_paths(out / "digits" / "records")
    return p


def test_record_checksum_catches_a_flip(small_run, tmp_path):
    out = _copy_run(small_run, tmp_path / "o")
    rec = _record(out)
    assert is_finished(rec)
    _flip(rec, n=16)
    with pytest.raises(CorruptRecord, match=str(rec.name)):
        read_record(rec)
    with pytest.warns(UserWarning, match="runs again"):
        assert not is_finished(rec)


def test_record_checksum_catches_a_changed_member(small_run, tmp_path):
    """A record rewritten with changed codes but its old checksum (a valid zip) fails too."""
    out = _copy_run(small_run, tmp_path / "o")
    rec = _record(out)
    with np.load(rec, allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members["db_codes"] = members["db_codes"] ^ 1
    np.savez_compressed(rec, **members)
    with pytest.raises(CorruptRecord, match="fails its checksum"):
        read_record(rec)


def test_corrupt_record_reruns_and_tables_never_show_it(small_run, tmp_path, capsys):
    """Case 2: run re-runs the cell; tables (--recompute) leave it out; rescore goes on past it."""
    out = _copy_run(small_run, tmp_path / "o")
    rec = _record(out)
    before = _map(out, "itq", 16)
    _flip(rec, n=16)
    with pytest.warns(UserWarning):
        assert main(["tables", "--out", str(out), "--no-plots"]) == 0
    assert not (out / "digits" / "results.csv").exists() or "itq" not in (out / "digits" / "results.csv").read_text()
    with pytest.warns(UserWarning):
        assert main(["tables", "--out", str(out), "--no-plots", "--recompute"]) == 0
    with pytest.warns(UserWarning):
        assert main(["rescore", "--out", str(out)]) == 0
    assert "skipped 1 unreadable record" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="runs again"):
        assert main([*RUN, "--methods", "itq", "--bits", "16", "--out", str(out)]) == 0
    assert read_record(rec).n_bits == 16
    assert _map(out, "itq", 16) == before


def test_scores_checksum_and_link_to_record(small_run, tmp_path):
    from hashbench.scoring import score_record
    from hashbench.tables import default_spec

    out = _copy_run(small_run, tmp_path / "o")
    rec = _record(out)
    spec = default_spec(read_record(rec).meta["config"]["protocol"])
    sp = scores_path(rec, spec)
    assert load_scores(sp)["record_sha256"]
    _flip(sp, n=8)
    with pytest.raises(CorruptRecord):
        load_scores(sp)
    with pytest.warns(UserWarning, match="recomputing"):
        assert score_record(rec, spec) == sp
    load_scores(sp)


def test_foreign_npz_in_records_is_named_not_rerun(small_run, tmp_path):
    out = _copy_run(small_run, tmp_path / "o")
    foreign = out / "digits" / "records" / "mine.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(CorruptRecord, match="not a hashbench record.*move it out"):
        read_record(foreign)


def test_verify_finds_flipped_bytes_in_record_and_cache(small_run, tmp_path, capsys):
    out = _copy_run(small_run, tmp_path / "o")
    cdir = tmp_path / "cache"
    entry = cdir / "features" / "x-0123.npy"
    cache.save_entry(entry, np.ones((50, 50), np.float32))
    assert main(["verify", "--out", str(out), "--cache-dir", str(cdir)]) == 0
    assert "no corrupt artifact" in capsys.readouterr().out
    _flip(_record(out), n=16)
    _flip(entry, n=16)
    cache._verified.clear()
    assert main(["verify", "--out", str(out), "--cache-dir", str(cdir)]) == 2
    text = capsys.readouterr().out
    assert "CORRUPT record" in text and "CORRUPT cache entry" in text and "x-0123.npy" in text
    assert entry.exists()  # verify changes nothing
