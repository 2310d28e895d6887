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
from hashbench.run.scoring import load_scores, scores_path

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
    from hashbench.results.tables import default_spec
    from hashbench.run.scoring import score_record

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
    graph = cdir / "onnx" / "net-0123.onnx"  # an exported graph: a cache entry with a checksum too
    graph.parent.mkdir()
    graph.write_bytes(bytes(range(256)) * 4)
    cache.checksum_path(graph).write_text(cache.file_sha256(graph) + "\n")
    assert main(["verify", "--out", str(out), "--cache-dir", str(cdir)]) == 0
    assert "no corrupt artifact" in capsys.readouterr().out
    _flip(_record(out), n=16)
    _flip(entry, n=16)
    _flip(graph, n=1)
    cache._verified.clear()
    assert main(["verify", "--out", str(out), "--cache-dir", str(cdir)]) == 2
    text = capsys.readouterr().out
    assert "CORRUPT record" in text and "CORRUPT cache entry" in text and "x-0123.npy" in text
    assert "net-0123.onnx" in text and "2 checked, 0 fine" in text
    assert entry.exists()  # verify changes nothing


def test_verify_finds_a_flipped_byte_in_a_checkpoint(tmp_path, capsys):
    """Checkpoints are found where the records' commands put them (--set ssdh.checkpoint_dir), under
    --out and under --checkpoint-dir; a flipped byte is reported by name with exit 2."""
    import torch

    from hashbench.methods.loop import save_checkpoint

    out, ck, other = tmp_path / "o", tmp_path / "ck", tmp_path / "other"
    run = [*RUN, "--methods", "ssdh", "--bits", "16", "--set", "ssdh.epochs=1", "--device", "cpu"]
    assert main([*run, "--set", f"ssdh.checkpoint_dir={ck}", "--out", str(out)]) == 0
    (named,) = ck.glob("*.pt")
    save_checkpoint(out / "kept" / "a.pt", {"w": torch.ones(2)})
    save_checkpoint(other / "b.pt", {"w": torch.ones(2)})
    verify = ["verify", "--out", str(out), "--no-cache", "--checkpoint-dir", str(other)]
    assert main(verify) == 0
    assert "checkpoints under" in (text := capsys.readouterr().out) and "3 checked, 3 fine, 0 corrupt" in text
    for p in (named, other / "b.pt"):
        _flip(p, n=4)
    cache._verified.clear()
    assert main(verify) == 2
    text = capsys.readouterr().out
    assert f"CORRUPT checkpoint {named} fails its checksum" in text and "b.pt" in text and "kept" not in text
    assert "3 checked, 1 fine, 2 corrupt" in text and "trains from scratch" in text
    assert named.exists()  # verify changes nothing


# -- 3. no code runs from data --------------------------------------------------------------------


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: what a crafted data file could do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_cifar(root: Path, marker: Path) -> None:
    from hashbench.datasets.cifar10 import CLASSES, OFFICIAL_MD5

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in OFFICIAL_MD5:
        body = {"label_names": list(CLASSES)} if name == "batches.meta" else {"data": np.zeros((1, 3072), np.uint8)}
        if name == "data_batch_1":
            body = {"data": _Payload(marker), "labels": [0]}
        with open(folder / name, "wb") as f:
            pickle.dump(body, f, protocol=2)


def test_malicious_cifar_pickle_is_refused_before_unpickling(tmp_path):
    from hashbench.datasets import load_dataset
    from hashbench.errors import InvalidInput

    marker = tmp_path / "pwned"
    _plant_cifar(tmp_path / "data", marker)
    with pytest.raises(InvalidInput, match="not the official one.*official archive.*train/<class>/\\*.jpg"):
        load_dataset("cifar10", tmp_path / "data")
    assert not marker.exists()


def test_malicious_cifar_pickle_with_official_md5_runs_nothing(tmp_path, monkeypatch):
    """Even a file that matched the md5 list (a collision, a patched list) is read without code."""
    from hashbench.datasets import cifar10, load_dataset
    from hashbench.errors import InvalidInput

    marker = tmp_path / "pwned"
    _plant_cifar(tmp_path / "data", marker)
    folder = tmp_path / "data" / "cifar-10-batches-py"
    monkeypatch.setattr(cifar10, "OFFICIAL_MD5", {n: cifar10._md5(folder / n) for n in cifar10.OFFICIAL_MD5})
    with pytest.raises(InvalidInput, match="data_batch_1 is corrupt.*refusing to load"):
        load_dataset("cifar10", tmp_path / "data")
    assert not marker.exists()


def test_malicious_checkpoint_runs_nothing(tmp_path):
    import torch

    from hashbench.errors import InvalidInput
    from hashbench.methods.loop import load_checkpoint, save_checkpoint

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"key": "k", "evil": _Payload(marker)}, ckpt)
    with pytest.raises(InvalidInput, match="delete it to train from scratch"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    # what training saves loads with weights_only=True
    save_checkpoint(ckpt, {"key": "k", "state": {"w": torch.ones(2)}, "history": {"loss": [0.5]}, "best_val": math.inf})
    assert load_checkpoint(ckpt)["best_val"] == math.inf


def test_every_torch_load_is_weights_only():
    import re

    root = Path(__file__).resolve().parents[1]
    for py in [*root.glob("hashbench/**/*.py"), *root.glob("baselines/*.py")]:
        for m in re.finditer(r"torch\.load\(([^)]*)\)", py.read_text()):
            assert "weights_only=True" in m.group(1), f"{py.name}: torch.load({m.group(1)})"


# -- 4. the CI gate cannot be switched off by its own flag ----------------------------------------


@pytest.mark.parametrize("tol", ["nan", "-1", "inf", "-inf", "-0.01"])
def test_check_tolerance_must_be_finite_and_non_negative(tol, tmp_path, capsys):
    ref = tmp_path / "ref.csv"
    ref.write_text("dataset,method,bits,map\ndigits,lsh,16,0.99\n")
    assert main(["check", "--reference", str(ref), f"--tolerance={tol}", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tolerance" in err[0] and "finite number >= 0" in err[0]
    assert not (tmp_path / "o").exists()  # refused before anything ran


# -- 5. worker processes end when their parent dies -----------------------------------------------

_PARENT = textwrap.dedent(
    """
    import os, time
    from hashbench.run.executors import LocalExecutor

    if __name__ == "__main__":
        pool = LocalExecutor(2, threads_per_job=1).pool(2)
        pids = set()
        while len(pids) < 2:  # each worker ran its initializer before any task
            pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(8)]}
        for _ in range(4):
            pool.submit(time.sleep, 120)
        print(" ".join(map(str, sorted(pids))), flush=True)
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids), line
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "workers outlived their killed parent"
    finally:
        proc.kill()
        for p in pids if "pids" in locals() else []:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_watchdog_alone_ends_an_orphan(monkeypatch):
    """Without prctl (other systems), the watchdog thread ends a worker whose parent changed."""
    from hashbench.run import executors

    exits = []
    monkeypatch.setattr(executors, "WATCHDOG_S", 0.01)
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    monkeypatch.setattr(sys, "platform", "other")
    executors._die_with_parent(os.getppid())  # still our parent: nothing happens
    time.sleep(0.1)
    assert exits == []
    executors._die_with_parent(-5)  # not our parent: ends at once
    assert exits[:1] == [1]


# -- 6, 7. a full disk or an unwritable folder: one line, exit 2, the run stops ------------------


def _fail_writes_under(monkeypatch, folder: Path, err: int) -> list[str]:
    """Make every atomic write whose destination lies under ``folder`` fail with ``err`` at its rename
    (after the bytes went to the temporary file, as a disk filling up mid-write does); returns the
    destinations tried. File modes alone would not do: CI runs as root."""
    import hashbench.io as hio

    tried: list[str] = []
    real = os.replace

    def replace(src, dst):
        if str(dst).startswith(str(folder)):
            tried.append(str(dst))
            raise OSError(err, os.strerror(err), str(dst))
        return real(src, dst)

    monkeypatch.setattr(hio.os, "replace", replace)
    return tried


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")] if folder.exists() else []


def test_full_disk_on_out_stops_the_run_at_the_first_record(tmp_path, monkeypatch, capsys):
    import hashbench.run.execute as execute

    cells = []
    real = execute.execute_cell
    monkeypatch.setattr(execute, "execute_cell", lambda ctx, t: cells.append(t) or real(ctx, t))
    monkeypatch.setattr("hashbench.run.executors.execute_cell", execute.execute_cell)
    out = tmp_path / "out"
    tried = _fail_writes_under(monkeypatch, out / "digits" / "records", errno.ENOSPC)
    rc = main([*RUN, "--methods", "lsh,itq", "--bits", "16,32", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert str(out / "digits" / "records") in err[0] and "free space" in err[0]
    assert len(cells) == 1 and len(tried) == 1  # stopped at the first failure
    assert _leftovers(out) == [] and not list((out / "digits" / "records").glob("*.npz"))


def test_unwritable_cache_stops_before_any_cell(tmp_path, monkeypatch, capsys):
    import hashbench.run.execute as execute

    monkeypatch.setattr("hashbench.run.executors.execute_cell", lambda *a: pytest.fail("a cell ran"))
    monkeypatch.setattr(execute, "execute_cell", lambda *a: pytest.fail("a cell ran"))
    cdir = tmp_path / "cache"
    _fail_writes_under(monkeypatch, cdir, errno.EACCES)
    rc = main(
        [*RUN, "--methods", "itq", "--bits", "16", "--features", "gist", "--cache-dir", str(cdir)]
        + ["--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert str(cdir / "features") in err[0] and "permissions" in err[0]
    assert _leftovers(cdir) == []


@pytest.mark.parametrize("command", [["tables", "--no-plots"], ["rescore"]])
def test_read_only_results_folder_gives_one_line(small_run, tmp_path, monkeypatch, capsys, command):
    out = _copy_run(small_run, tmp_path / "o")
    _fail_writes_under(monkeypatch, out, errno.EROFS)
    assert main([command[0], "--out", str(out), *command[1:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / "digits") in err[0], err


def test_oserror_outside_hashbench_writers_is_one_line(monkeypatch, capsys):
    from hashbench.cli import install as cli  # the module that defines `datasets`

    def boom(args, argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/somewhere/fig.png")

    monkeypatch.setattr(cli, "cmd_datasets", boom)
    assert main(["datasets"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/somewhere" in err[0] and "free space" in err[0]


# -- 8. query timing a figure can rest on ---------------------------------------------------------


def test_timing_statistic_is_the_median_with_outliers_measured_again():
    from hashbench.search import OUTLIER_FACTOR, timing_stats

    # seven passes of 10 queries; the fourth is 50x slow, its re-measurement is normal
    passes = iter([1.0, 1.2, 0.9, 50.0, 1.1, 1.0, 1.3, 1.05])
    t = timing_stats(lambda: next(passes), repeats=7, per=10)
    kept = np.array([1.0, 1.2, 0.9, 1.05, 1.1, 1.0, 1.3]) / 10
    assert t.remeasured == 1 and t.repeats == 7 and t.outlier_factor == OUTLIER_FACTOR
    assert t == pytest.approx(np.median(kept)) and float(t) == t.median
    assert (t.p25, t.p75) == pytest.approx(tuple(np.percentile(kept, [25, 75])))
    assert t.spread == pytest.approx(t.p75 - t.p25)
    assert t.samples == pytest.approx(tuple(kept))
    # a pass within the factor is kept as measured
    t = timing_stats(iter([1.0, 2.9, 1.0]).__next__, repeats=3)
    assert t.remeasured == 0 and t.max == 2.9


def test_time_queries_warms_up_and_repeats(monkeypatch):
    import hashbench.search as search

    calls = []

    class Index:
        def search(self, q, k):
            calls.append(len(q))

    monkeypatch.setattr(search, "build_index", lambda db, k=None, use_gpu=None: Index())
    rng = np.random.default_rng(0)
    t = search.time_queries(rng.random((50, 16)) < 0.5, rng.random((6, 16)) < 0.5, k=5)
    assert calls[0] == 6 and len(calls) >= 1 + 7  # one untimed pass over all queries, then 7 timed
    assert t.repeats == 7 and t.p25 <= t.median <= t.p75


def test_records_store_the_median_and_quartiles(small_run):
    meta = read_record(_record(small_run)).meta["timings"]
    assert meta["query_us_p25"] <= meta["query_us_per_query"] <= meta["query_us_p75"]
    assert meta["query_repeats"] == 7


# -- 9. two data folders with one basename never share an output folder ---------------------------


def test_same_basename_different_folders_get_different_output_folders(tmp_path):
    from hashbench.run.plan import dataset_dirname

    a, b = dataset_dirname("imagefolder:/a/imgs"), dataset_dirname("imagefolder:/b/imgs")
    assert a != b and a.startswith("imagefolder-imgs-") and b.startswith("imagefolder-imgs-")
    assert dataset_dirname("imagefolder:/a/imgs/") == dataset_dirname("imagefolder:/a/imgs")
    for name in ("cifar10", "digits", "mnist", "nuswide21"):  # committed results/ stay where they are
        assert dataset_dirname(name) == name
    rng = np.random.default_rng(0)
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        np.savez(tmp_path / sub / "data.npz", X=rng.normal(size=(200, 8)).astype(np.float32), y=np.arange(200) % 3)
        argv = ["run", "--methods", "lsh", "--bits", "8", "--no-progress", "--no-plots", "--out", str(tmp_path / "o")]
        assert main([*argv, "--dataset", f"features:{tmp_path / sub / 'data.npz'}"]) == 0
    folders = sorted(p.parent.name for p in (tmp_path / "o").glob("*/records"))
    assert len(folders) == 2 and all(f.startswith("features-data-") for f in folders)


def test_old_layout_folder_is_still_read(small_run, tmp_path, capsys):
    out = tmp_path / "o"
    _copy_run(small_run / "digits", out / "features-data")  # a folder named as before the digest
    assert main(["tables", "--out", str(out), "--no-plots"]) == 0
    assert (out / "features-data" / "map.csv").is_file()
    assert main(["verify", "--out", str(out), "--no-cache"]) == 0


# -- 10. smaller items ----------------------------------------------------------------------------


def test_pickled_features_file_is_named_as_such_not_corrupt(tmp_path):
    from hashbench.datasets import load_dataset
    from hashbench.errors import InvalidInput

    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}] * 3, dtype=object), y=np.zeros(3))
    with pytest.raises(InvalidInput, match="pickled Python objects.*np.savez") as e:
        load_dataset(f"features:{tmp_path / 'obj.npz'}")
    assert "corrupt" not in str(e.value)


def test_help_prints_each_default_once(capsys):
    from hashbench.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["check"].format_help()
    assert "(default: None)" not in text and text.count("0.01") == 1


def test_warnings_print_as_one_line(monkeypatch):
    from hashbench.cli import install as cli  # the module that defines `datasets`

    seen = []
    monkeypatch.setattr(
        cli, "cmd_datasets", lambda a, v: seen.append(warnings.formatwarning("careful", UserWarning, "f.py", 3, "x"))
    )
    before = warnings.formatwarning
    assert main(["datasets"]) == 0
    assert seen == ["hashbench: warning: careful\n"] and warnings.formatwarning is before


def test_rescore_with_a_cutoff_says_which(small_run, tmp_path, capsys):
    out = _copy_run(small_run, tmp_path / "o")
    assert main(["rescore", "--out", str(out), "--topk", "1000"]) == 0
    assert "MAP@1000" in capsys.readouterr().out


def test_corrupt_images_are_reported_together_and_empty_classes_warned(tmp_path):
    """Every corrupt image of a decode in one message with the count; an empty class folder is named."""
    from PIL import Image

    from hashbench.datasets.imagefolder import decode_many, load_imagefolder
    from hashbench.errors import InvalidInput

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "empty").mkdir()
    for name in ("a/1.png", "b/2.png"):
        (tmp_path / name).write_bytes(b"not an image")
    with pytest.warns(UserWarning, match=r"1 class folder\(s\) without images left out \(empty\)"):
        ds = load_imagefolder(tmp_path)
    with pytest.raises(InvalidInput, match=r"^2 of 6 image files cannot be decoded: "):
        decode_many(ds.extra["paths"], size=(8, 8), processes=1)


def test_set_for_an_unknown_method_says_unknown():
    from hashbench.datasets import load_dataset
    from hashbench.errors import UnknownName
    from hashbench.run.plan import RunConfig, plan

    ds = load_dataset("digits")
    cfg = RunConfig(dataset="digits", methods=["lsh"], params={"nosuch": {"x": [1]}}, out="unused")
    with pytest.raises(UnknownName, match="unknown method"):
        plan(cfg, ds, "cpu")
    cfg = RunConfig(dataset="digits", methods=["lsh"], params={"itq": {"n_iter": [1]}}, out="unused")
    with pytest.raises(UnknownName, match="not in this run"):
        plan(cfg, ds, "cpu")


def test_corrupt_checkpoint_is_not_used(tmp_path):
    """A checkpoint carries a checksum; flipped bytes are reported by name and the fit starts over,
    giving the codes of a fit that never had a checkpoint."""
    import torch
    from hashbench_baselines.ssdh import SSDH

    from hashbench.methods.loop import load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.arange(4.0)})
    assert load_checkpoint(path)["w"].tolist() == [0.0, 1.0, 2.0, 3.0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        assert load_checkpoint(path) is None
    assert not path.exists()

    X = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    kw = dict(n_bits=8, epochs=2, batch_size=16, hidden=8, device="cpu")
    ref = SSDH(**kw).fit(X).encode(X)
    ck = tmp_path / "ck"
    SSDH(**kw, checkpoint_dir=str(ck)).fit(X)
    for f in ck.glob("*.pt"):
        b = bytearray(f.read_bytes())
        b[100] ^= 0xFF
        f.write_bytes(bytes(b))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        again = SSDH(**kw, checkpoint_dir=str(ck)).fit(X).encode(X)
    np.testing.assert_array_equal(again, ref)


def test_corrupt_onnx_graph_is_exported_again(tmp_path):
    """The cached ONNX graph carries a checksum like every cache entry: flipped bytes are reported and
    the graph is exported again, never loaded."""
    pytest.importorskip("onnxruntime")
    from hashbench.features import cnn

    spec = cnn.parse_cnn("efficientnet-lite0@32")
    net = cnn.backbone(spec, "imagenet")
    wid = cnn.weights_id(spec.name, "imagenet")
    path = cnn._onnx_model(net, spec, wid, tmp_path)
    good = path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        again = cnn._onnx_model(net, spec, wid, tmp_path)
    assert again == path and path.read_bytes() == good
