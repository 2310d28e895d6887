"""Bring your own model: the split exported, codes made outside hashbench imported as records, then
compared, tabled and reported like any shipped method; bad files refused with one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hashbench import bits
from hashbench.cli import main
from hashbench.datasets.protocols import make_split, split_checksum
from hashbench.records import iter_record_paths, read_record


def _digits_features() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data / 16.0


def _pca_codes(split: dict, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes computed with numpy alone from the exported split: PCA on the training part, then sign."""
    X = _digits_features()
    train = X[split["train"]]
    mu = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mu, full_matrices=False)
    W = vt[:n_bits].T
    return (X[split["query"]] - mu) @ W >= 0, (X[split["database"]] - mu) @ W >= 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("byom")
    out = root / "runs"
    assert (
        main(["run", "--dataset", "digits", "--methods", "itq", "--bits", "16", "--out", str(out), "--no-plots"]) == 0
    )
    assert main(["split", "--dataset", "digits", "--seed", "0", "--out", str(root / "split.npz")]) == 0
    return root, out


def test_split_npz_is_the_protocols_split(world):
    root, _ = world
    with np.load(root / "split.npz", allow_pickle=False) as z:
        got = {k: z[k] for k in z.files}
    from sklearn.datasets import load_digits

    y = load_digits().target
    want = make_split("digits", y, 0)
    for part in ("query", "train", "database"):
        np.testing.assert_array_equal(got[part], want[part])
        np.testing.assert_array_equal(got[f"{part}_labels"], y[want[part]])
    import json

    meta = json.loads(str(got["meta"]))
    assert meta["split_checksum"] == split_checksum(want)
    assert meta["sizes"] == {"query": 100, "train": 500, "database": 1697}


def test_split_csv_and_split_seed(tmp_path, capsys):
    assert main(["split", "--dataset", "digits", "--split-seed", "3", "--out", str(tmp_path / "s.csv")]) == 0
    df = pd.read_csv(tmp_path / "s.csv", comment="#")
    assert list(df.columns) == ["part", "position", "index", "label", "path"]
    assert df.groupby("part").size().to_dict() == {"database": 1697, "query": 100, "train": 500}
    from sklearn.datasets import load_digits

    want = make_split("digits", load_digits().target, 3)
    np.testing.assert_array_equal(df[df.part == "query"]["index"].to_numpy(), want["query"])
    header = (tmp_path / "s.csv").read_text().splitlines()
    assert f"# split_checksum: {split_checksum(want)}" in header
    assert main(["split", "--dataset", "digits", "--out", str(tmp_path / "s.txt")]) == 2
    assert "npz or .csv" in capsys.readouterr().err


def test_split_of_an_image_folder_names_paths_relative_to_its_root(tmp_path):
    data = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        (data / cls).mkdir(parents=True)
        for i in range(15):
            Image.fromarray(np.full((4, 4), 10 * i, np.uint8), "L").save(data / cls / f"{i}.png")
    assert main(["split", "--dataset", f"imagefolder:{data}", "--out", str(tmp_path / "s.csv")]) == 0
    df = pd.read_csv(tmp_path / "s.csv", comment="#")
    assert len(df[df.part == "query"]) == 3  # generic: min(1000, n/10)
    assert all(p.split("/")[0] in ("cat", "dog") and p.endswith(".png") for p in df["path"])
    assert not any(str(tmp_path) in p for p in df["path"])
    labels = dict(zip(df["path"], df["label"], strict=True))
    assert all(labels[p] == (0 if p.startswith("cat/") else 1) for p in labels)


def test_imported_codes_are_compared_tabled_and_reported(world, capsys):
    root, out = world
    with np.load(root / "split.npz") as z:
        split = {k: z[k] for k in ("query", "train", "database")}
    q, db = _pca_codes(split, 16)
    np.savez(root / "mine.npz", query=q, database=db)
    capsys.readouterr()
    rc = main(
        ["import", "--dataset", "digits", "--seed", "0", "--name", "pcah", "--codes", str(root / "mine.npz")]
        + ["--out", str(out)]
    )
    assert rc == 0
    rec = read_record([p for p in iter_record_paths(out / "digits" / "records") if p.name.startswith("pcah")][0])
    np.testing.assert_array_equal(rec.query_codes, q)
    np.testing.assert_array_equal(rec.db_codes, db)
    prov = rec.meta["provenance"]
    assert prov["source"] == "external" and prov["name"] == "pcah" and prov["n_bits"] == 16
    import hashlib

    assert prov["sha256"] == hashlib.sha256((root / "mine.npz").read_bytes()).hexdigest()
    capsys.readouterr()
    assert main(["compare", "pcah", "itq", "--dataset", "digits", "--out", str(out), "--n-boot", "200"]) == 0
    text = capsys.readouterr().out
    assert "95% CI" in text and "| 16 " in text
    assert main(["tables", "--out", str(out), "--no-plots"]) == 0
    assert "pcah" in set(pd.read_csv(out / "digits" / "map.csv")["method"])
    assert main(["report", "--out", str(out)]) == 0
    assert "pcah" in (out / "report.html").read_text()


@pytest.mark.parametrize("form", ["signed", "packed", "npy", "pt", "mat"])
def test_every_file_form_gives_the_same_record(world, tmp_path, form):
    root, _ = world
    with np.load(root / "split.npz") as z:
        split = {k: z[k] for k in ("query", "train", "database")}
    q, db = _pca_codes(split, 12)
    args = ["--codes", str(tmp_path / "c.npz")]
    if form == "signed":
        np.savez(tmp_path / "c.npz", query=np.where(q, 1, -1), database=np.where(db, 1.0, -1.0))
        args.append("--signed")
    elif form == "packed":
        np.savez(tmp_path / "c.npz", query=bits.pack(q), database=bits.pack(db))
        args += ["--packed", "--bits", "12"]
    elif form == "npy":
        np.save(tmp_path / "q.npy", q.astype(np.uint8))
        np.save(tmp_path / "d.npy", db.astype(np.uint8))
        args = ["--codes", str(tmp_path / "q.npy"), "--db-codes", str(tmp_path / "d.npy")]
    elif form == "pt":
        import torch

        torch.save({"query": torch.from_numpy(q), "database": torch.from_numpy(db)}, tmp_path / "c.pt")
        args = ["--codes", str(tmp_path / "c.pt")]
    else:
        import scipy.io

        scipy.io.savemat(tmp_path / "c.mat", {"query": q.astype(np.float64), "database": db.astype(np.float64)})
        args = ["--codes", str(tmp_path / "c.mat")]
    out = tmp_path / "runs"
    assert main(["import", "--dataset", "digits", "--name", "ext", "--out", str(out), *args]) == 0
    (path,) = iter_record_paths(out / "digits" / "records")
    rec = read_record(path)
    np.testing.assert_array_equal(rec.query_codes, q)
    np.testing.assert_array_equal(rec.db_codes, db)


def _bad_cases(q, db):
    nan = q.astype(np.float32)
    nan[3, 2] = np.nan
    return {
        "wrong count": (dict(query=q[:-1], database=db), [], "99 query codes"),
        "NaN": (dict(query=nan, database=db), [], "NaN"),
        "non-binary": (dict(query=q.astype(int) * 2, database=db), [], "not binary"),
        "±1 without --signed": (dict(query=np.where(q, 1, -1), database=db), [], "--signed"),
        "widths": (dict(query=q, database=db[:, :8]), [], "same width"),
        "wrong split": (dict(query=q, database=db, split_checksum="0123456789abcdef"), [], "made for split"),
        "missing array": (dict(queries=q, database=db), [], "lacks array"),
        "packed without bits": (dict(query=bits.pack(q), database=bits.pack(db)), ["--packed"], "go together"),
    }


@pytest.mark.parametrize(
    "case",
    ["wrong count", "NaN", "non-binary", "±1 without --signed", "widths", "wrong split", "missing array"]
    + ["packed without bits"],
)
def test_bad_files_are_one_line_exit_2_nothing_written(world, tmp_path, capsys, case):
    root, _ = world
    with np.load(root / "split.npz") as z:
        split = {k: z[k] for k in ("query", "train", "database")}
    q, db = _pca_codes(split, 16)
    arrays, extra, words = _bad_cases(q, db)[case]
    np.savez(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "runs"
    capsys.readouterr()
    rc = main(
        ["import", "--dataset", "digits", "--name", "bad", "--codes", str(tmp_path / "bad.npz")]
        + extra
        + [
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("hashbench: error:")
    assert words in err
    assert not out.exists() or not list(out.rglob("*.npz"))


def test_codes_of_another_seed_are_still_codes_of_that_seed(world, tmp_path):
    """Row counts match for any seed of digits: the record names the split it was imported against."""
    root, _ = world
    with np.load(root / "split.npz") as z:
        split = {k: z[k] for k in ("query", "train", "database")}
    q, db = _pca_codes(split, 8)
    np.savez(tmp_path / "c.npz", query=q, database=db, split_checksum=np.array(split_checksum(split)))
    rc = main(
        ["import", "--dataset", "digits", "--seed", "1", "--name", "x", "--codes", str(tmp_path / "c.npz")]
        + ["--out", str(tmp_path / "runs")]
    )
    assert rc == 2 and not (tmp_path / "runs").exists()  # the file says which split it encodes, and seed 1 is another


def test_the_contributing_deep_method_runs_as_printed():
    """The worked deep method of CONTRIBUTING.md, extracted from the page, passes check_method with its
    test_params (applied by check_method itself) and learns codes better than chance on digits."""
    import re
    import time
    from pathlib import Path

    from hashbench.metrics import evaluate
    from hashbench.testing import check_method, suite_data

    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()
    section = text.split("## A deep method, worked through", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    ns: dict = {}
    exec(compile(code, "CONTRIBUTING.md", "exec"), ns)  # noqa: S102 - our own documentation
    cls = ns["CosineHash"]
    t0 = time.perf_counter()
    check_method(cls(n_bits=16))
    assert time.perf_counter() - t0 < 60
    d = suite_data()
    m = cls(n_bits=16, epochs=20, hidden=32, device="cpu").fit(d.features_train)
    from sklearn.datasets import load_digits

    y = load_digits().target
    idx = np.random.default_rng(0).permutation(len(y))
    yt, yq = y[idx[:120]], y[idx[120:160]]
    s = evaluate(m.encode(d.features_query), m.encode(d.features_train), yq, yt)
    assert s["map"] > 0.3  # chance is about 0.1 on ten classes


def test_check_method_applies_test_params_only_where_left_at_defaults():
    from hashbench_baselines.ssdh import SSDH

    from hashbench.testing import with_test_params

    m = with_test_params(SSDH(n_bits=16, epochs=3))
    assert m.epochs == 3 and m.hidden == SSDH.test_params["hidden"]
    assert with_test_params(SSDH(n_bits=16)).epochs == SSDH.test_params["epochs"]
