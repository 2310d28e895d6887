"""The command line as a user meets it: the digits run, its tables, resumption, check, and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hashbench.cli import main
from hashbench.methods import HashMethod, register
from hashbench.records import iter_record_paths, read_record


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    rc = main(
        ["run", "--methods", "itq,lsh", "--dataset", "digits", "--bits", "16,32,64", "--out", str(out), "--no-progress"]
    )
    assert rc == 0
    return out


def test_run_writes_three_tables(digits_run):
    folder = digits_run / "digits"
    for name in ("map.csv", "map.md", "results.csv"):
        assert (folder / name).is_file()
    table = pd.read_csv(folder / "map.csv")
    assert list(table.columns) == ["method", "16", "32", "64"]
    assert set(table["method"]) == {"itq", "lsh"}
    md = (folder / "map.md").read_text()
    assert "tie-aware" in md and "Protocol `digits`" in md
    long = pd.read_csv(folder / "results.csv")
    assert len(long) == 6 and {"map", "map_index", "train_s", "split_checksum"} <= set(long.columns)


def test_itq_beats_lsh_at_every_length(digits_run):
    """The floor: a learned method must beat random projections on digits."""
    table = pd.read_csv(digits_run / "digits" / "map.csv").set_index("method")
    for bits in ("16", "32", "64"):
        assert table.loc["itq", bits] > table.loc["lsh", bits]


def test_records_hold_codes_split_and_versions(digits_run):
    paths = iter_record_paths(digits_run / "digits" / "records")
    assert len(paths) == 6
    r = read_record(paths[0])
    assert r.query_codes.shape == (100, r.meta["config"]["n_bits"])
    assert r.db_codes.shape == (1697, r.meta["config"]["n_bits"])
    assert r.meta["split_sizes"] == {"query": 100, "train": 500, "database": 1697}
    assert {"hashbench", "numpy", "torch", "faiss"} <= set(r.meta["versions"])
    assert r.meta["timings"]["query_us_per_query"] > 0


def test_rerun_skips_finished_cells_and_force_reruns(digits_run, capsys):
    paths = iter_record_paths(digits_run / "digits" / "records")
    mtimes = {p: p.stat().st_mtime_ns for p in paths}
    assert (
        main(
            [
                "run",
                "--methods",
                "itq",
                "--dataset",
                "digits",
                "--bits",
                "16",
                "--out",
                str(digits_run),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "already finished" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in paths)
    assert (
        main(
            [
                "run",
                "--methods",
                "itq",
                "--dataset",
                "digits",
                "--bits",
                "16",
                "--out",
                str(digits_run),
                "--no-progress",
                "--force",
            ]
        )
        == 0
    )
    assert sum(p.stat().st_mtime_ns != mtimes[p] for p in paths) == 1


def test_tables_rebuilds_from_records(digits_run, tmp_path):
    (digits_run / "digits" / "map.csv").unlink()
    assert main(["tables", "--out", str(digits_run)]) == 0
    assert (digits_run / "digits" / "map.csv").is_file()


def test_check_passes_and_fails(digits_run, tmp_path, capsys):
    """check exits 0 within tolerance and 1, with a table of drops, when a MAP falls below the reference."""
    table = pd.read_csv(digits_run / "digits" / "map.csv").set_index("method")
    ok = pd.DataFrame({"dataset": ["digits"], "method": ["itq"], "bits": [32], "map": [table.loc["itq", "32"]]})
    ok.to_csv(tmp_path / "ok.csv", index=False)
    assert main(["check", "--reference", str(tmp_path / "ok.csv"), "--out", str(digits_run), "--no-progress"]) == 0
    high = ok.assign(map=ok["map"] + 0.05)
    high.to_csv(tmp_path / "high.csv", index=False)
    assert main(["check", "--reference", str(tmp_path / "high.csv"), "--out", str(digits_run), "--no-progress"]) == 1
    assert "DROP" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "--methods", "nosuch", "--dataset", "digits"], "unknown method 'nosuch'"),
        (["run", "--methods", "itq", "--dataset", "nosuch"], "nosuch"),
        (["run", "--methods", "itq", "--dataset", "digits", "--bits", "0"], "outside 1..1024"),
        (["run", "--methods", "itq", "--dataset", "digits", "--bits", "2048"], "outside 1..1024"),
        (["run", "--methods", "itq", "--dataset", "digits", "--bits", "x"], "not an integer"),
        (["run", "--methods", "itq", "--dataset", "digits", "--set", "itq.nope=1"], "no parameter 'nope'"),
        (["run", "--methods", "itq", "--dataset", "mnist", "--data-root", "/nonexistent"], "/nonexistent"),
        (["check", "--reference", "/nonexistent.csv"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_message(argv, needle, tmp_path, capsys):
    rc = main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv)
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.npz")), "a failed run left files behind"


def test_nan_features_exit_2(tmp_path, capsys):
    X = np.random.default_rng(0).random((300, 8))
    X[3, 2] = np.nan
    np.savez(tmp_path / "f.npz", X=X, y=np.arange(300) % 3)
    rc = main(["run", "--methods", "itq", "--dataset", f"features:{tmp_path / 'f.npz'}", "--out", str(tmp_path)])
    assert rc == 2 and "NaN" in capsys.readouterr().err


class _Spy(HashMethod):
    """Records what fit receives, to prove the harness never shows it queries or database items."""

    seen: list = []

    def __init__(self, n_bits=8, random_state=0):
        self.n_bits = n_bits
        self.random_state = random_state

    def fit(self, X, y=None):
        _Spy.seen.append((np.array(X), y))
        self.w_ = np.random.default_rng(self.random_state).standard_normal((X.shape[1], self.n_bits))
        return self

    def project(self, X):
        return np.asarray(X) @ self.w_


def test_fit_sees_only_training_items_and_no_labels(tmp_path):
    from hashbench import methods
    from hashbench.datasets import load_dataset
    from hashbench.datasets.protocols import make_split

    register("spy", _Spy)
    _Spy.seen.clear()
    yield_back = methods._REGISTRY.pop
    assert (
        main(["run", "--methods", "spy", "--dataset", "digits", "--bits", "8", "--out", str(tmp_path), "--no-progress"])
        == 0
    )
    ((X, y),) = _Spy.seen
    ds = load_dataset("digits")
    train = make_split("digits", ds.labels, 0)["train"]
    yield_back("spy")  # keep `--methods all` of later tests to the real methods
    assert y is None
    assert np.allclose(X, ds.images.load(train).reshape(len(train), -1) / 255.0)


def test_datasets_and_methods_listings(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "cifar10" in out and "digits" in out and "mnist" in out and "nuswide21" in out
    assert main(["methods", "ssdh*"]) == 0
    out = capsys.readouterr().out
    assert "ssdh" in out and "ssdh+ga" in out and "itq" not in out


def test_paper_uhga2020_lays_records_beside_published(digits_run, tmp_path, capsys):
    """`hashbench paper uhga2020` lists the missing cells' commands and matches our records to the
    paper's rows by method and code length; a cell we did not run stays empty, never invented."""
    import shutil

    from hashbench.records import read_record, write_record

    shutil.copytree(digits_run / "digits" / "records", tmp_path / "cifar10" / "records")
    for p in (tmp_path / "cifar10" / "records").iterdir():  # pose digits records as cifar10 ones
        r = read_record(p)
        r.meta["config"]["dataset"] = r.meta["config"]["protocol"] = "cifar10"
        write_record(
            p,
            r.meta,
            r.query_codes,
            r.db_codes,
            {k[6:]: v for k, v in r.arrays.items() if k.startswith("split_")},
            r.query_labels,
            r.db_labels,
        )
    assert main(["paper", "uhga2020", "--out", str(tmp_path), "--dataset", "cifar10", "--features", "pixels"]) == 0
    out = capsys.readouterr().out
    assert "hashbench run --dataset cifar10" in out and "--methods" in out
    t = pd.read_csv(tmp_path / "cifar10" / "paper" / "uhga2020" / "table4.csv")
    itq = t[(t["method"] == "ITQ") & (t["bits"] == 16)].iloc[0]
    assert itq["published"] == pytest.approx(0.1999)  # Table 4, ITQ, CIFAR-10, 16 bits
    assert not np.isnan(itq["ours"])
    assert np.isnan(t[t["method"] == "HashGAN"]["ours"]).all()


def test_compare_two_methods_gives_intervals_and_p_values(digits_run, capsys):
    assert main(["compare", "itq", "lsh", "--out", str(digits_run), "--dataset", "digits"]) == 0
    text = capsys.readouterr().out
    assert "CI" in text and "p" in text
    t = pd.read_csv(next((digits_run / "digits" / "compare").glob("itq-vs-lsh.csv")))
    assert (t["diff"] > 0).all() and (t["ci_low"] <= t["diff"]).all() and (t["p_randomisation"] < 0.05).all()


@pytest.mark.parametrize(
    "extra", [["--methods", "itq", "--features", "cnn:alexnet"], ["--methods", "ssdh", "--track", "end2end"]]
)
def test_missing_pretrained_weights_exit_2_with_how_to(extra, tmp_path, monkeypatch, capsys):
    """No ImageNet weights offline: a message saying how to supply them, never a random network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path / "cache"))
    rc = main(["run", *extra, "--dataset", "digits", "--bits", "8", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--weights" in err and "Traceback" not in err
    assert not list((tmp_path / "o").rglob("*.npz"))


def test_runs_accumulate_into_one_table(tmp_path):
    """A second run into the same folder adds its method's row; a run with other hyperparameters adds a
    row of its own (its variant) instead of being averaged in as another seed or replacing the default."""
    base = ["--dataset", "digits", "--bits", "16", "--out", str(tmp_path), "--no-progress"]
    assert main(["run", "--methods", "itq", *base]) == 0
    assert main(["run", "--methods", "lsh", *base]) == 0
    table = pd.read_csv(tmp_path / "digits" / "map.csv").set_index("method")
    assert set(table.index) == {"itq", "lsh"}
    before = table.loc["itq", "16"]
    assert main(["run", "--methods", "itq", "--set", "itq.n_iter=0", *base]) == 0
    after = pd.read_csv(tmp_path / "digits" / "map.csv").fillna("").set_index(["method", "variant"])
    assert len(after) == 3 and after.loc[("itq", ""), "16"] == before
    assert after.loc[("itq", "n_iter=0"), "16"] != before
    assert "itq.n_iter=0" in (tmp_path / "digits" / "map.md").read_text()
    # each record's variant also as the parameters it stores, which selectors match on
    stored = pd.read_csv(tmp_path / "digits" / "results.csv", keep_default_na=False)
    pairs = set(zip(stored["variant"], stored["variant_params"], strict=True))
    assert pairs == {("", "{}"), ("n_iter=0", '{"n_iter":0}')}


def test_image_method_on_feature_dataset_fails_before_any_cell(tmp_path, capsys):
    """lsh would run first; the grid is checked whole, so nothing is written before the error."""
    X = np.random.default_rng(0).random((300, 8))
    np.savez(tmp_path / "f.npz", X=X, y=np.arange(300) % 3)
    rc = main(
        [
            "run",
            "--methods",
            "lsh,hashgan",
            "--track",
            "end2end",  # HashGAN end to end trains on images
            "--dataset",
            f"features:{tmp_path / 'f.npz'}",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    assert rc == 2 and "trains on images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").rglob("*.npz"))


def test_set_value_of_the_wrong_type_exits_2(tmp_path, capsys):
    rc = main(["run", "--methods", "itq", "--dataset", "digits", "--set", "itq.n_iter=abc", "--out", str(tmp_path)])
    assert rc == 2 and "must be an integer" in capsys.readouterr().err


def test_check_write_then_check_round_trip(tmp_path, capsys):
    """A reference written by check --write names the dataset so that check can run it again."""
    X = np.random.default_rng(0).random((300, 8))
    np.savez(tmp_path / "f.npz", X=X, y=np.arange(300) % 3)
    ref = tmp_path / "ref.csv"
    base = ["--dataset", f"features:{tmp_path / 'f.npz'}", "--methods", "lsh", "--bits", "8", "--no-progress"]
    assert main(["check", "--reference", str(ref), "--write", *base, "--out", str(tmp_path / "a")]) == 0
    assert pd.read_csv(ref)["protocol"].iloc[0] == "generic"
    assert main(["check", "--reference", str(ref), "--out", str(tmp_path / "b"), "--no-progress"]) == 0


def test_bad_reference_rows_exit_2(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("dataset,method,bits,map\ndigits,itq,32,\n")
    assert main(["check", "--reference", str(tmp_path / "r.csv")]) == 2
    assert "row 2: map" in capsys.readouterr().err


def test_compare_puts_ours_beside_published(digits_run, tmp_path, capsys):
    pub = tmp_path / "pub.csv"
    pd.DataFrame({"method": ["ITQ", "sh"], "bits": [16, 16], "map": [0.5, 0.4], "source": ["x", "y"]}).to_csv(
        pub, index=False
    )
    assert main(["compare", "--published", str(pub), "--out", str(digits_run), "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert "| itq" in out and "| sh " not in out  # sh was not run: no invented row
