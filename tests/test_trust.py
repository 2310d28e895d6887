"""Issue 11's cases: no stale number, no lost work, every bad input a clear one-line error (exit 2).

Each test reproduces one command of the issue; each failed on the previous main.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hashbench.cli import main
from hashbench.run.plan import dataset_dirname

FAST = ["--no-progress", "--no-plots"]


def _run(out, *args) -> int:
    return main(["run", "--out", str(out), *FAST, *args])


def _map(out, dataset="digits") -> pd.DataFrame:
    return pd.read_csv(Path(out) / dataset / "map.csv")


def _image_folder(root: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, size=(16, 16, 3))
        for i in range(30):
            img = np.clip(base + rng.normal(0, 25, size=base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / f"c{c}" / f"{i:03d}.png")
    return root


def test_changed_images_change_the_records_and_features(tmp_path, capsys):
    """1: overwrite the images with other pixels of the same size: nothing old is reused."""
    data = _image_folder(tmp_path / "imgs", 0)
    args = [
        "--methods",
        "lsh,itq",
        "--dataset",
        f"imagefolder:{data}",
        "--bits",
        "8",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert _run(tmp_path / "o", *args) == 0
    before = _map(tmp_path / "o", dataset_dirname(f"imagefolder:{data}")).set_index("method")["8"]
    noise = np.random.default_rng(1)
    for p in sorted(data.rglob("*.png")):  # same names, same sizes, other pixels
        Image.fromarray(noise.integers(0, 255, size=(16, 16, 3), dtype=np.uint8)).save(p)
    capsys.readouterr()
    assert _run(tmp_path / "o", *args) == 0
    assert "already finished" not in capsys.readouterr().out
    after = _map(tmp_path / "o", dataset_dirname(f"imagefolder:{data}")).set_index("method")["8"]
    assert abs(after["itq"] - before["itq"]) > 0.05, "the new pixels must give new features and new codes"


def test_records_do_not_depend_on_threads(tmp_path):
    """3: the same seed gives the same codes (and MAP) whatever --threads is."""
    from hashbench.records import read_record

    for t in ("1", "2"):
        assert _run(tmp_path / t, "--methods", "itq", "--dataset", "digits", "--bits", "64,128", "--threads", t) == 0
    torch_threads = __import__("torch").get_num_threads()
    assert torch_threads >= 1
    a = sorted((tmp_path / "1" / "digits" / "records").glob("*.npz"))
    b = sorted((tmp_path / "2" / "digits" / "records").glob("*.npz"))
    assert [p.name for p in a] == [p.name for p in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(read_record(x).db_codes, read_record(y).db_codes), x.name


def test_run_and_tables_agree(tmp_path):
    """4: run itq,lsh; run itq n_iter=0; run itq; then tables: the same map.csv, every configuration a row."""
    base = ["--dataset", "digits", "--bits", "16"]
    assert _run(tmp_path, "--methods", "itq,lsh", *base) == 0
    assert _run(tmp_path, "--methods", "itq", "--set", "itq.n_iter=0", *base) == 0
    assert _run(tmp_path, "--methods", "itq", *base) == 0
    after_run = _map(tmp_path)
    assert main(["tables", "--out", str(tmp_path), "--no-plots"]) == 0
    pd.testing.assert_frame_equal(after_run, _map(tmp_path))
    rows = after_run.fillna("").set_index(["method", "variant"])["16"]
    assert rows[("itq", "")] > rows[("itq", "n_iter=0")], "the default ITQ row is the 50-iteration one"
    assert "variant" in (tmp_path / "digits" / "map.md").read_text()


def test_out_that_is_a_file_or_unwritable_exits_2_before_any_work(tmp_path, capsys):
    """6: --out names a file / an unwritable folder: exit 2 with a message, nothing trained."""
    f = tmp_path / "F"
    f.write_text("x")
    assert _run(f, "--methods", "lsh", "--dataset", "digits", "--bits", "16") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        assert _run(ro, "--methods", "lsh", "--dataset", "digits", "--bits", "16") == 2
        assert "not a writable folder" in capsys.readouterr().err


def test_corrupt_record_is_redone_and_blocks_nothing(tmp_path, capsys):
    """7: a corrupt record is reported by name, its cell runs again, other cells and tables go on."""
    base = ["--methods", "lsh", "--dataset", "digits", "--bits", "16"]
    assert _run(tmp_path, *base) == 0
    (rec,) = (tmp_path / "digits" / "records").glob("*.npz")
    good = _map(tmp_path)
    rec.write_bytes(os.urandom(3000))
    with pytest.warns(UserWarning, match=rec.name):
        assert main(["tables", "--out", str(tmp_path), "--no-plots"]) == 0
    with pytest.warns(UserWarning, match=rec.name):
        assert _run(tmp_path, "--methods", "lsh,itq", "--dataset", "digits", "--bits", "16") == 0
    table = _map(tmp_path).set_index("method")["16"]
    assert table["lsh"] == pytest.approx(good.set_index("method")["16"]["lsh"]) and "itq" in table


def test_foreign_npz_in_records_is_skipped_with_a_warning(tmp_path):
    """8: a valid .npz without a configuration: one warning, no traceback."""
    assert _run(tmp_path, "--methods", "lsh", "--dataset", "digits", "--bits", "16") == 0
    np.savez(tmp_path / "digits" / "records" / "mine.npz", x=np.arange(3))
    with pytest.warns(UserWarning, match="mine.npz"):
        assert main(["tables", "--out", str(tmp_path), "--no-plots"]) == 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--methods", "", "--dataset", "digits"], "--methods is empty"),
        (["--methods", "itq", "--dataset", "digits", "--seeds", "-1"], "seeds must be non-negative"),
        (["--methods", "itq", "--dataset", "digits", "--set", "itq.n_iter=-5"], "n_iter"),
        (["--methods", "itq", "--dataset", "digits", "--set", "itq.n_iter=2.5"], "n_iter"),
        (["--methods", "sph", "--dataset", "digits", "--set", "sph.max_iter=-1"], "max_iter"),
        (["--methods", "dsh", "--dataset", "digits", "--set", "dsh.r=0"], "dsh"),
        (["--methods", "itq", "--dataset", "digits", "--jobs", "0"], "--jobs"),
        (["--methods", "itq", "--dataset", "digits", "--set", "itq.n_iter=1:0:1"], "range"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(argv, needle, tmp_path, capsys):
    """9-11: rejected before training, one line on stderr, no record written."""
    assert _run(tmp_path, *argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.rglob("*.npz"))


def test_collapsed_codes_are_flagged_in_tables(tmp_path, monkeypatch):
    """5: codes that collapse (a bit constant over the database) are flagged in map.md and results.csv."""
    from hashbench import methods
    from hashbench.methods import HashMethod

    class Constant(HashMethod):
        """Every item gets code 0...0 except one varying bit: collapsed."""

        def __init__(self, n_bits=8):
            self.n_bits = n_bits

        def fit(self, X, y=None):
            self.n_features_in_ = X.shape[1]
            return self

        def project(self, X):
            h = -np.ones((len(X), self.n_bits))
            h[:, 0] = X[:, 10] - np.median(X[:, 10])
            return h

    monkeypatch.setitem(methods._REGISTRY, "constant-test", Constant)  # registered for this test only
    assert _run(tmp_path, "--methods", "constant-test,lsh", "--dataset", "digits", "--bits", "8") == 0
    res = pd.read_csv(tmp_path / "digits" / "results.csv").set_index("method")
    assert bool(res.loc["constant-test", "collapsed"]) and not bool(res.loc["lsh", "collapsed"])
    md = (tmp_path / "digits" / "map.md").read_text()
    assert "†" in md and "7 of 8 bits constant over the database" in md


def test_single_class_features_warn_in_the_table_notes(tmp_path):
    """13: labels holding a single class make MAP 1 whatever the codes: the notes say so."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "one.npz", X=rng.normal(size=(300, 8)).astype(np.float32), y=np.zeros(300, np.int64))
    assert _run(tmp_path / "o", "--methods", "lsh", "--dataset", f"features:{tmp_path / 'one.npz'}", "--bits", "8") == 0
    md = (tmp_path / "o" / dataset_dirname(f"features:{tmp_path / 'one.npz'}") / "map.md").read_text()
    assert "MAP is 1 whatever the codes" in " ".join(md.split())  # notes are wrapped at 100 characters


def test_rescore_gives_the_stored_scores_and_a_new_cutoff_needs_no_training(tmp_path, monkeypatch, capsys):
    """House issue: scores come from stored codes; MAP@K for a new K without retraining."""
    from hashbench_baselines.itq import ITQ

    assert _run(tmp_path, "--methods", "itq,lsh", "--dataset", "digits", "--bits", "16") == 0
    before = _map(tmp_path)
    monkeypatch.setattr(ITQ, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    assert main(["rescore", "--out", str(tmp_path)]) == 0
    pd.testing.assert_frame_equal(before, _map(tmp_path))
    assert main(["rescore", "--out", str(tmp_path), "--topk", "50"]) == 0
    scores = sorted((tmp_path / "digits" / "scores").glob("itq-*.npz"))
    assert len(scores) == 2, "one scores file per metric specification"
    from hashbench.run.scoring import load_scores

    tops = sorted(str(load_scores(s)["spec"]["topk"]) for s in scores)
    assert tops == ["50", "None"]


def test_sweep_gives_one_row_per_value_and_split_seed_fixes_the_split(tmp_path):
    """Statistics issue: --set itq.n_iter=0,10,50 gives three rows; --split-seed varies only the method."""
    assert _run(tmp_path, "--methods", "itq", "--dataset", "digits", "--bits", "16", "--set", "itq.n_iter=0,10,50") == 0
    t = _map(tmp_path)
    assert sorted(t["variant"].fillna("").tolist()) == ["", "n_iter=0", "n_iter=10"]
    assert (
        main(
            [
                "run",
                "--out",
                str(tmp_path / "s"),
                *FAST,
                "--methods",
                "lsh",
                "--dataset",
                "digits",
                "--bits",
                "16",
                "--seeds",
                "0,1",
                "--split-seed",
                "0",
            ]
        )
        == 0
    )
    res = pd.read_csv(tmp_path / "s" / "digits" / "results.csv")
    assert res["split_checksum"].nunique() == 1 and res["seed"].tolist() == [0, 1]
    assert res["map"].nunique() == 2
