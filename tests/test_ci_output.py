"""CI-native output: check's Markdown job summary ($GITHUB_STEP_SUMMARY), JUnit XML (--junit), --json on
run, compare and check, check of imported codes, and the workflow files docs/CI.md gives."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A reference for lsh and itq at 16 bits on digits, with itq's value raised so that it drops."""
    root = tmp_path_factory.mktemp("ci")
    out = root / "runs"
    ref = root / "ref.csv"
    args = ["check", "--reference", str(ref), "--write", "--dataset", "digits", "--methods", "lsh,itq"]
    assert main([*args, "--bits", "16", "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(ref)
    table.loc[table["method"] == "itq", "map"] += 0.2
    table.to_csv(ref, index=False)
    return root, out, ref


def test_check_writes_the_github_step_summary_and_junit(checked, monkeypatch, capsys):
    root, out, ref = checked
    summary = root / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = root / "check.xml"
    rc = main(["check", "--reference", str(ref), "--out", str(out), "--junit", str(junit), "--no-progress"])
    assert rc == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, as GitHub asks
    assert "| dataset | method | bits | reference | now | difference | verdict |" in text
    assert re.search(r"\| digits \| itq \| 16 \| 0\.\d{4} \| 0\.\d{4} \| -0\.2000 \| ❌ dropped \|", text)
    assert re.search(r"\| digits \| lsh \| 16 \| .* \| \+0\.0000 \| ✅ ok \|", text)
    tree = ET.parse(junit).getroot()
    cases = tree.findall(".//testcase")
    assert sorted(c.get("name") for c in cases) == ["itq@16", "lsh@16"]
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert failed["itq@16"] is not None and failed["lsh@16"] is None
    assert "dropped" in failed["itq@16"].get("message")
    suite = tree.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"


def test_no_summary_without_the_variable(checked, monkeypatch, tmp_path):
    _, out, ref = checked
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)
    main(["check", "--reference", str(ref), "--out", str(out), "--no-progress"])
    assert list(tmp_path.iterdir()) == []


def test_json_on_check_run_and_compare(checked, capsys):
    _, out, ref = checked
    capsys.readouterr()
    assert main(["check", "--reference", str(ref), "--out", str(out), "--json", "--no-progress"]) == 1
    got = json.loads(capsys.readouterr().out)
    assert got["passed"] is False and {r["status"] for r in got["rows"]} == {"ok", "DROP"}
    args = ["run", "--dataset", "digits", "--methods", "lsh,itq", "--bits", "16", "--out", str(out)]
    assert main([*args, "--json", "--no-plots", "--no-progress"]) == 0
    got = json.loads(capsys.readouterr().out)  # notes about reused cells went to stderr
    assert {r["method"] for r in got["rows"]} == {"lsh", "itq"} and all(0 < r["map"] < 1 for r in got["rows"])
    assert main(["compare", "itq", "lsh", "--dataset", "digits", "--out", str(out), "--n-boot", "200", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    (row,) = got["rows"]
    assert row["n_bits"] == 16 and row["ci_low"] <= row["diff"] <= row["ci_high"]


def test_check_reads_imported_codes_from_their_records(checked, tmp_path, capsys):
    root, out, _ = checked
    assert main(["split", "--dataset", "digits", "--out", str(root / "split.npz")]) == 0
    with np.load(root / "split.npz") as z:
        nq, nd = len(z["query"]), len(z["database"])
    rng = np.random.default_rng(0)
    np.savez(root / "rand.npz", query=rng.random((nq, 16)) < 0.5, database=rng.random((nd, 16)) < 0.5)
    assert (
        main(
            ["import", "--dataset", "digits", "--name", "coin", "--codes", str(root / "rand.npz")]
            + [
                "--out",
                str(out),
            ]
        )
        == 0
    )
    ref = tmp_path / "ref.csv"
    ref.write_text("dataset,method,bits,map\ndigits,coin,16,0.05\ndigits,coin,32,0.05\n")
    capsys.readouterr()
    assert main(["check", "--reference", str(ref), "--out", str(out), "--json"]) == 1
    rows = {r["bits"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[16]["status"] == "ok" and 0.05 < rows[16]["ours"] < 0.3
    assert rows[32]["status"] == "MISSING"  # nothing imported at 32 bits, and coin cannot be run


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_docs_ci_has_complete_workflows():
    text = (ROOT / "docs" / "CI.md").read_text()
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    blocks = [yaml.safe_load(b) for b in _blocks(text, "yaml")]
    github = next(b for b in blocks if "jobs" in b)
    steps = [s.get("run", "") for job in github["jobs"].values() for s in job["steps"]]
    assert any("hashbench check" in s and "--junit" in s for s in steps)
    gitlab = next(b for b in blocks if any(isinstance(v, dict) and "script" in v for v in b.values()))
    job = next(v for v in gitlab.values() if isinstance(v, dict) and "script" in v)
    assert "junit" in job["artifacts"]["reports"]
    assert all(len(line) <= 100 for line in text.splitlines())
