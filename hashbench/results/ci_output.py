"""What CI systems read: a Markdown job summary, JUnit XML, JSON (docs/CI.md).

``hashbench check`` compares every (dataset, method, bits) cell with a reference. Its report, a frame
with columns dataset, method, bits, reference, ours, delta, status (``ok``, ``DROP``, ``MISSING``),
is written here in the forms CI systems render:

- :func:`write_step_summary`: a Markdown table appended to ``$GITHUB_STEP_SUMMARY`` (GitHub Actions
  shows it on the run's page) when that variable is set;
- :func:`write_junit`: JUnit XML, one test case per cell, a ``<failure>`` for a drop or a missing
  cell (GitLab's ``artifacts:reports:junit``, Jenkins, Azure and GitHub test-report actions);
- :func:`to_json`: the same rows as JSON, for scripts (``--json`` on ``run``, ``compare``, ``check``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd

from ..io import atomic_write_text

VERDICTS = {"ok": "ok", "DROP": "dropped", "MISSING": "missing"}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _clean(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def to_json(frame: pd.DataFrame, **extra: Any) -> str:
    """Rows of a frame (NaN as null) plus ``extra`` top-level keys, as indented JSON."""
    rows = [{str(k): _clean(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return json.dumps({**{k: _clean(v) for k, v in extra.items()}, "rows": rows}, indent=1)


def _fmt(v: Any, signed: bool = False) -> str:
    f = _num(v)
    if f is None:
        return "—"
    return f"{f:+.4f}" if signed else f"{f:.4f}"


def summary_markdown(report: pd.DataFrame, tolerance: float, reference: str) -> str:
    """The job summary: one row per cell (reference, now, difference, verdict) and a one-line outcome."""
    bad = int((report["status"] != "ok").sum())
    head = (
        f"### hashbench check: {len(report) - bad} of {len(report)} cells within {tolerance} of `{reference}`"
        if bad == 0
        else f"### hashbench check: {bad} of {len(report)} cells fell more than {tolerance} below `{reference}`"
    )
    lines = [
        head,
        "",
        "| dataset | method | bits | reference | now | difference | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.itertuples():
        mark = "✅" if r.status == "ok" else "❌"
        verdict = f"{mark} {VERDICTS.get(r.status, r.status)}"
        lines.append(
            f"| {r.dataset} | {r.method} | {int(r.bits)} | {_fmt(r.reference)} | {_fmt(r.ours)} | "
            f"{_fmt(r.delta, signed=True)} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def write_step_summary(report: pd.DataFrame, tolerance: float, reference: str) -> Path | None:
    """Append the summary to ``$GITHUB_STEP_SUMMARY`` when set (GitHub Actions); returns the file or None."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with open(path, "a", encoding="utf-8") as fh:  # the runner's file: appended to, as its docs ask
        fh.write(summary_markdown(report, tolerance, reference) + "\n")
    return path


def junit_xml(report: pd.DataFrame, tolerance: float, reference: str) -> str:
    """JUnit XML: one ``<testcase>`` per cell (class ``hashbench.check.<dataset>``, name
    ``<method>@<bits>``), a ``<failure>`` for a drop or a missing cell."""
    failures = int((report["status"] != "ok").sum())
    suites = ET.Element("testsuites", name="hashbench check", tests=str(len(report)), failures=str(failures))
    suite = ET.SubElement(
        suites, "testsuite", name="hashbench check", tests=str(len(report)), failures=str(failures), errors="0"
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="reference", value=str(reference))
    ET.SubElement(props, "property", name="tolerance", value=str(tolerance))
    for r in report.itertuples():
        case = ET.SubElement(
            suite, "testcase", classname=f"hashbench.check.{r.dataset}", name=f"{r.method}@{int(r.bits)}", time="0"
        )
        text = f"reference {_fmt(r.reference)}, now {_fmt(r.ours)}, difference {_fmt(r.delta, signed=True)}"
        if r.status == "DROP":
            ET.SubElement(case, "failure", message=f"MAP dropped more than {tolerance}", type="drop").text = text
        elif r.status != "ok":
            ET.SubElement(case, "failure", message="no result for this cell", type="missing").text = text
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(path: str | Path, report: pd.DataFrame, tolerance: float, reference: str) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically."""
    return atomic_write_text(path, junit_xml(report, tolerance, reference))


def recorded_map(out: str | Path, dataset: str, methods: list[str], seeds: list[int]) -> dict[tuple[str, int], float]:
    """{(method, bits): mean MAP over ``seeds``} from the records under ``out`` (methods that ``check``
    cannot run: codes imported with ``hashbench import``)."""
    from ..run.plan import dataset_dirname
    from .tables import load_frame, mean_map, select

    folder = Path(out) / dataset_dirname(dataset)
    if not (folder / "records").is_dir():
        return {}
    df, _ = select(load_frame(folder))
    if df.empty:
        return {}
    df = df[df["method"].isin(methods) & df["seed"].isin(seeds)]
    return {(r.method, int(r.n_bits)): r.map for r in mean_map(df).itertuples()}
