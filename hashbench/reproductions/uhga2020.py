"""Reproduction of Jiang, Wang, Cheng, Du, Li, "Unsupervised Hashing with Gradient Attention",
Symmetry 2020, 12(7):1193 (doi 10.3390/sym12071193): its Tables 2, 3 and 4 and the claims they support.

Everything specific to this paper lives here, so the harness names no paper: the paper's method labels
(:data:`PAPER_NAMES`), its display order (:func:`display_order`), which cells each table needs
(:func:`required_cells`), the ``hashbench run`` commands that produce them (:func:`commands`), the tables
beside the published values (:func:`tables`) and the claims with verdicts (:func:`claims`).

The tables, as read from the paper (values in ``data/uhga2020_published.csv``; CIFAR-10 MAP over the
whole database, NUS-WIDE MAP@5000):

- **Table 2** (section 3.2, hyperparameter analysis): UHGA+GA at 16/32/64/128 bits for a swept value
  0, 0.1, ..., 0.9 that the text does not name. hashbench reads it as the cosine-*similarity*
  threshold ``sim_threshold`` of the similarity matrix (S_ij = 1 iff cos(f_i, f_j) >= the threshold):
  that reading explains the published pattern (16-bit CIFAR-10 collapses at 0 and 0.1, every length
  degrades from 0.7 up); the distance reading predicts the opposite ends (the docstring of
  ``baselines/uhga.py`` and docs/METHODS.md section 10 give the argument).
- **Table 3** (section 3.3, the effect of gradient attention): SSDH, SSDH+GA, UHGA, UHGA+GA.
- **Table 4** (section 3.4, comparison): SH, SPH, ITQ, DSH, SSDH, HashGAN, USDH, UHGA+GA. LSH is not in
  the paper; where it was run it is shown first as a reference row (no published value).

**Input.** The paper uses AlexNet (fc7 features for the similarity, the network fine-tuned). By default
this reproduction runs every method on the CNN features ``cnn:efficientnet-lite0`` on the features
track (hash layers or shallow methods trained on fixed features, a CPU-sized run; HashGAN's generator
and discriminator/encoder are MLPs on the same features there, ``--track end2end`` trains the paper's
convolutional HashGAN from scratch on the images). Every function takes ``representation``/``track`` to
use another input; gaps to the published numbers are expected where the input differs.

**Claims** (:func:`claims`): GA improves SSDH at every length; GA improves UHGA at every length;
UHGA+GA beats every baseline at every length; the best threshold of Table 2 beats the runner-up. Each is
tested on our records by a paired comparison over queries and seeds (:func:`hashbench.stats.paired_difference`),
with a verdict from the 95% interval: *holds* (entirely on the side of the published effect), *does not
hold* (entirely on the other side) or *inconclusive at n seeds* (contains 0). No correction for the
number of comparisons is made: read a single "does not hold" among many "holds" with that in mind.
"""

from __future__ import annotations

import functools
import io
import math
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..display import display_order as _display_order
from ..errors import InvalidInput, UnknownName
from ..stats import (
    Selector,
    format_p,
    match_variants,
    one_configuration,
    paired_difference,
    paired_scores,
    registry_defaults,
    same_params,
    select_rows,
)

NAME = "uhga2020"
TITLE = "Jiang et al., Unsupervised Hashing with Gradient Attention (Symmetry 2020)"
CITATION = (
    "Jiang, Wang, Cheng, Du, Li, Unsupervised Hashing with Gradient Attention, Symmetry 2020, 12(7):1193, "
    "doi 10.3390/sym12071193"
)
PUBLISHED_FILE = "uhga2020_published.csv"

#: the paper's method labels -> hashbench's registered names.
PAPER_NAMES = {
    "SH": "sh", "SPH": "sph", "ITQ": "itq", "DSH": "dsh", "SSDH": "ssdh", "SSDH+GA": "ssdh+ga",
    "HashGAN": "hashgan", "USDH": "usdh", "UHGA": "uhga", "UHGA+GA": "uhga+ga",
}  # fmt: skip
#: registered name -> the paper's label.
LABELS = {v: k for k, v in PAPER_NAMES.items()}
#: methods shown first as reference rows of Table 4 where they were run (no published value).
REFERENCE_METHODS = ("lsh",)
BITS = (16, 32, 64, 128)
#: Table 2: the method, its swept parameter and the values.
SWEPT_METHOD = "uhga+ga"
SWEPT_PARAM = "sim_threshold"
THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))
DEFAULT_REPRESENTATION = "cnn:efficientnet-lite0"
DEFAULT_TRACK = "features"
#: methods that take images whatever the representation: (representation, track) of their records
#: (none since HashGAN has a features track)
IMAGE_INPUT: dict[str, tuple[str, str]] = {}
#: dataset -> the paper's metric there (label, the K of MAP@K) and the value of the published CSV's column.
DATASETS = {
    "cifar10": {"metric": "MAP@ALL", "topk": None, "published_metric": "map@all"},
    "nuswide21": {"metric": "MAP@5000", "topk": 5000, "published_metric": "map@5000"},
}
TABLE_METHODS = {
    3: ("SSDH", "SSDH+GA", "UHGA", "UHGA+GA"),
    4: ("SH", "SPH", "ITQ", "DSH", "SSDH", "HashGAN", "USDH", "UHGA+GA"),
}
TABLE_TITLES = {
    2: "Table 2, hyperparameter analysis (UHGA+GA's similarity threshold)",
    3: "Table 3, the effect of gradient attention",
    4: "Table 4, comparison",
}
#: the baselines UHGA+GA is claimed to beat (Table 4 less UHGA+GA).
BASELINES = tuple(PAPER_NAMES[label] for label in TABLE_METHODS[4] if label != "UHGA+GA")
CLAIMS = {
    "ga_improves_ssdh": "GA improves SSDH at every length (Table 3)",
    "ga_improves_uhga": "GA improves UHGA at every length (Table 3)",
    "uhga_ga_beats_baselines": "UHGA+GA beats every baseline at every length (Table 4)",
    "best_threshold": "the best threshold of Table 2 beats the runner-up",
}
Defaults = Callable[[str], Mapping[str, Any]] | None


# ----------------------------------------------------------------------------------------------
# Published values and names


@functools.lru_cache(maxsize=1)
def _published_text() -> str:
    return (resources.files(__package__) / "data" / PUBLISHED_FILE).read_text(encoding="utf-8")


def published() -> pd.DataFrame:
    """The published values: columns table, method (paper label), param (Table 2's value, else NaN),
    dataset, metric, bits, value (NaN where unreadable), note. Read from the package's data."""
    return pd.read_csv(io.StringIO(_published_text()))


def _check_dataset(dataset: str) -> dict[str, Any]:
    if dataset not in DATASETS:
        raise UnknownName(f"the UHGA paper reports {', '.join(DATASETS)}; got dataset {dataset!r}")
    return DATASETS[dataset]


def display_order(methods: Iterable[str]) -> list[str]:
    """Methods in display order: each method class's ``display_rank`` (hashbench's own methods declare
    this paper's order: LSH, a reference not in the paper, first, then Table 4's order with the
    Table 3 variants beside their base method), others after it alphabetically."""
    return _display_order(methods)


def label(method: str) -> str:
    """The paper's label of a registered method (``"uhga+ga"`` -> ``"UHGA+GA"``); others upper-cased."""
    return LABELS.get(method, method.upper())


def input_for(method: str, representation: str = DEFAULT_REPRESENTATION, track: str = DEFAULT_TRACK) -> tuple[str, str]:
    """The (representation, track) a method's records of this reproduction have. On a fine-tuning
    regime (``finetune:K``) the methods that cannot fine-tune backbone stages (the shallow ones,
    HashGAN) keep the features track: the regime changes only what the deep methods train."""
    if method in IMAGE_INPUT:
        return IMAGE_INPUT[method]
    if str(track).startswith("finetune:") and "train_stages" not in _params_of(method):
        return representation, "features"
    return representation, track


def _params_of(method: str) -> Mapping[str, Any]:
    from ..methods import get_method

    try:
        return get_method(method)().get_params(deep=False)
    except Exception:  # noqa: BLE001 - a name this installation does not register
        return {}


# ----------------------------------------------------------------------------------------------
# The plan: which cells each table needs, what is missing, the commands that produce it


def _params_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def required_cells(
    dataset: str,
    *,
    representation: str = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    tables: Iterable[int] = (2, 3, 4),
    bits: Iterable[int] = BITS,
) -> list[dict[str, Any]]:
    """Every cell Tables 2, 3 and 4 need: one dict per (method, bits, params, input) with keys method,
    bits, params ({} = the method's defaults; Table 2: {"sim_threshold": v}), representation, track and
    tables (the tables that show it). Tables 3 and 4 share their SSDH and UHGA+GA cells."""
    _check_dataset(dataset)
    tables = sorted(set(tables))
    bad = set(tables) - {2, 3, 4}
    if bad:
        raise InvalidInput(f"the UHGA paper has Tables 2, 3 and 4; got {sorted(bad)}")
    bits = [int(b) for b in bits]
    cells: dict[tuple, dict[str, Any]] = {}

    def add(method: str, b: int, params: dict[str, Any], table: int) -> None:
        rep, trk = input_for(method, representation, track)
        key = (method, b, _params_key(params), rep, trk)
        cell = cells.setdefault(
            key,
            {"method": method, "bits": b, "params": dict(params), "representation": rep, "track": trk, "tables": ()},
        )
        cell["tables"] = tuple(sorted({*cell["tables"], table}))

    for t in (3, 4):
        if t in tables:
            for lab in TABLE_METHODS[t]:
                for b in bits:
                    add(PAPER_NAMES[lab], b, {}, t)
    if 2 in tables:
        for v in THRESHOLDS:
            for b in bits:
                add(SWEPT_METHOD, b, {SWEPT_PARAM: v}, 2)
    return list(cells.values())


def _for_dataset(frame: pd.DataFrame | None, dataset: str) -> pd.DataFrame:
    """The frame's rows of this dataset under the paper's protocol (the dataset's own)."""
    if frame is None or frame.empty:
        return pd.DataFrame(
            columns=[
                "dataset",
                "protocol",
                "method",
                "variant",
                "representation",
                "track",
                "n_bits",
                "seed",
                "split_checksum",
                "map",
                "scores_path",
            ]
        )
    out = frame
    if "dataset" in out:
        out = out[out["dataset"] == dataset]
    if "protocol" in out:
        out = out[out["protocol"] == dataset]
    return out


def cell_rows(frame: pd.DataFrame, cell: Mapping[str, Any], defaults: Defaults = registry_defaults) -> pd.DataFrame:
    """The records of one cell (any seed), one per (seed, split); ``frame`` already of one dataset."""
    if frame.empty:
        return frame
    sel = Selector(
        cell["method"],
        dict(cell.get("params") or {}),
        cell.get("representation"),
        cell.get("track"),
        text=cell_name(cell),
    )
    rows = select_rows(frame[frame["n_bits"] == int(cell["bits"])], sel, defaults)
    return one_configuration(rows, sel) if len(rows) else rows


class _Cells:
    """The records of one dataset indexed by (method, bits, representation, track), looked up per cell:
    one pass over the frame instead of a filter per cell (a plan has 80 cells)."""

    def __init__(self, frame: pd.DataFrame, defaults: Defaults):
        self._defaults, self._dflt_memo, self._memo = defaults, {}, {}
        self._groups: dict[tuple, pd.DataFrame] = {}
        if len(frame):
            keys = zip(frame["method"].astype(str).str.lower(), frame["n_bits"].astype(int), frame["representation"],
                       frame["track"], strict=True)  # fmt: skip
            positions: dict[tuple, list[int]] = {}
            for i, k in enumerate(keys):
                positions.setdefault(k, []).append(i)
            self._groups = {k: frame.iloc[v] for k, v in positions.items()}

    def defaults(self, method: str) -> Mapping[str, Any]:
        if method not in self._dflt_memo:
            self._dflt_memo[method] = self._defaults(method) if self._defaults else {}
        return self._dflt_memo[method]

    def rows(self, cell: Mapping[str, Any]) -> pd.DataFrame:
        params = dict(cell.get("params") or {})
        key = (cell["method"], int(cell["bits"]), cell["representation"], cell["track"])
        memo_key = (*key, _params_key(params))
        if memo_key not in self._memo:
            g = self._groups.get(key)
            if g is None:
                rows = pd.DataFrame(columns=["seed", "split_checksum", "scores_path", "map"])
            else:
                variants = g["variant"].to_numpy() if "variant" in g else [""] * len(g)
                rows = g[match_variants(variants, params, self.defaults(cell["method"]) if params else {})]
                if len(rows):
                    rows = one_configuration(rows, cell_name(cell))
            self._memo[memo_key] = rows
        return self._memo[memo_key]


def cell_name(cell: Mapping[str, Any]) -> str:
    """A cell as a selector string, e.g. ``uhga+ga[sim_threshold=0.2]@cnn:efficientnet-lite0/features``."""
    params = cell.get("params") or {}
    text = cell["method"] + ("[" + ",".join(f"{k}={_fmt_value(v)}" for k, v in params.items()) + "]" if params else "")
    if cell.get("representation"):
        text += f"@{cell['representation']}" + (f"/{cell['track']}" if cell.get("track") else "")
    return text


def missing_cells(
    frame: pd.DataFrame | None,
    dataset: str,
    seeds: Iterable[int] = (0,),
    *,
    representation: str = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    tables: Iterable[int] = (2, 3, 4),
    defaults: Defaults = registry_defaults,
) -> list[dict[str, Any]]:
    """The required cells lacking a record for some of ``seeds``, each with ``missing_seeds``. A Table 2
    cell whose value is the method's default is satisfied by default-variant records."""
    seeds = [int(s) for s in seeds]
    index = _Cells(_for_dataset(frame, dataset), defaults)
    out = []
    for cell in required_cells(dataset, representation=representation, track=track, tables=tables):
        rows = index.rows(cell)
        have = set(rows["seed"].astype(int)) if len(rows) else set()
        lacking = [s for s in seeds if s not in have]
        if lacking:
            out.append({**cell, "missing_seeds": lacking})
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return format(v, "g")
    return str(v)


def _fmt_seeds(seeds: Iterable[int]) -> str:
    return ",".join(str(s) for s in sorted(set(seeds)))


def commands(
    dataset: str,
    out: str,
    *,
    frame: pd.DataFrame | None = None,
    seeds: Iterable[int] = (0,),
    representation: str = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    tables: Iterable[int] = (2, 3, 4),
    data_root: str | None = None,
    extra: Sequence[str] = (),
    defaults: Defaults = registry_defaults,
) -> list[str]:
    """The ``hashbench run`` command lines that produce the missing cells (every cell when ``frame`` is None).

    One command per input for the default-parameter cells, one for the Table 2 sweep
    (``--set uhga+ga.sim_threshold=0,0.1,...``). A command covers the union of its cells' methods, lengths
    and seeds: the runner skips the cells that already have a record, so nothing finished is rerun. A
    sweep value equal to the method's default is left to the default cell's command when that runs too.
    ``extra``: further arguments appended to every command (e.g. ``["--threads", "2"]``).
    """
    seeds = [int(s) for s in seeds]
    if frame is None:
        cells = [
            {**c, "missing_seeds": seeds}
            for c in required_cells(dataset, representation=representation, track=track, tables=tables)
        ]
    else:
        cells = missing_cells(
            frame, dataset, seeds, representation=representation, track=track, tables=tables, defaults=defaults
        )
    default_cells = {(c["method"], c["bits"], c["representation"], c["track"]) for c in cells if not c["params"]}
    groups: dict[tuple, dict[str, set]] = {}
    for c in cells:
        params = c["params"]
        if params:
            dflt = defaults(c["method"]) if defaults else {}
            if (c["method"], c["bits"], c["representation"], c["track"]) in default_cells and same_params(
                {}, params, dflt
            ):
                continue  # produced by the default cell's command
            ((param, value),) = params.items()
            key = (c["representation"], c["track"], c["method"], param)
        else:
            value, key = None, (c["representation"], c["track"], "", "")
        g = groups.setdefault(key, {"methods": set(), "bits": set(), "seeds": set(), "values": set()})
        g["methods"].add(c["method"])
        g["bits"].add(c["bits"])
        g["seeds"].update(c["missing_seeds"])
        if value is not None:
            g["values"].add(value)
    lines = []
    for (rep, trk, sweep_method, param), g in sorted(
        groups.items(), key=lambda kv: (kv[0][2] != "", kv[0][0] == "images")
    ):
        args = ["hashbench", "run", "--dataset", dataset, "--methods", ",".join(display_order(g["methods"]))]
        if rep != "images" and str(trk).startswith("finetune:"):
            args += ["--features", rep, "--train-stages", str(trk).split(":", 1)[1]]
        elif rep != "images":
            args += ["--features", rep, "--track", trk]
        args += [
            "--bits",
            ",".join(str(b) for b in sorted(g["bits"])),
            "--seeds",
            _fmt_seeds(g["seeds"]),
            "--out",
            str(out),
        ]
        if sweep_method:
            args += ["--set", f"{sweep_method}.{param}=" + ",".join(_fmt_value(v) for v in sorted(g["values"]))]
        if data_root:
            args += ["--data-root", str(data_root)]
        args += list(extra)
        lines.append(shlex.join(args))
    return lines


# ----------------------------------------------------------------------------------------------
# Tables beside the published values


def _summary(rows: pd.DataFrame) -> dict[str, float]:
    if rows.empty:
        return {"ours": np.nan, "ours_std": np.nan, "n_seeds": 0, "ours_index_ties": np.nan}
    m = rows["map"].astype(float)
    return {
        "ours": float(m.mean()), "ours_std": float(m.std(ddof=1)) if len(m) > 1 else np.nan, "n_seeds": int(len(m)),
        "ours_index_ties": float(rows["map_index"].astype(float).mean()) if "map_index" in rows else np.nan,
    }  # fmt: skip


def paper_table(
    frame: pd.DataFrame,
    published_values: pd.DataFrame | None,
    table: int,
    dataset: str,
    *,
    representation: str | None = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    defaults: Defaults = registry_defaults,
) -> pd.DataFrame:
    """The paper's Table 2, 3 or 4 for one dataset in long form: per method (paper label), Table 2 value
    and code length, the published MAP, ours (tie-aware, mean and standard deviation over seeds, the
    number of seeds), ours with ties broken by index, the gap (ours - published) and our input.

    ``representation=None``: one row per input each method was run on (never averaged across inputs),
    instead of the planned input only. A cell we have no record for has ``n_seeds == 0`` and NaN values.
    """
    _check_dataset(dataset)
    if table not in TABLE_TITLES:
        raise InvalidInput(f"the UHGA paper has Tables 2, 3 and 4; got {table!r}")
    pub = published() if published_values is None else published_values
    pub = pub[(pub["table"] == table) & (pub["dataset"] == dataset)]
    ours = _for_dataset(frame, dataset)
    index = _Cells(ours, defaults)
    bits_list = sorted(int(b) for b in pub["bits"].unique())

    def pub_value(lab: str, b: int, param: float | None = None) -> float:
        p = pub[(pub["method"] == lab) & (pub["bits"] == b)]
        if param is not None:
            p = p[np.isclose(p["param"].astype(float), param)]
        return float(p["value"].iloc[0]) if len(p) and not pd.isna(p["value"].iloc[0]) else np.nan

    def inputs_of(method: str) -> list[tuple[str, str]]:
        if representation is not None:
            return [input_for(method, representation, track)]
        mine = ours[ours["method"] == method] if len(ours) else ours
        found = sorted(set(zip(mine["representation"], mine["track"], strict=True))) if len(mine) else []
        return found or [input_for(method)]

    rows = []
    if table == 2:
        for v in THRESHOLDS:
            for rep, trk in inputs_of(SWEPT_METHOD):
                for b in bits_list:
                    cell = {
                        "method": SWEPT_METHOD,
                        "bits": b,
                        "params": {SWEPT_PARAM: v},
                        "representation": rep,
                        "track": trk,
                    }
                    rows.append(
                        {
                            "table": 2,
                            "method": label(SWEPT_METHOD),
                            "param": v,
                            "bits": b,
                            "published": pub_value(label(SWEPT_METHOD), b, v),
                            **_summary(index.rows(cell)),
                            "input": f"{rep}/{trk}",
                        }
                    )
    else:
        labels = list(dict.fromkeys(pub["method"]))
        if table == 4:
            present = set(ours["method"]) if len(ours) else set()
            labels = [label(m) for m in REFERENCE_METHODS if m in present] + labels
        for lab in labels:
            method = PAPER_NAMES.get(lab, lab.lower())
            for rep, trk in inputs_of(method):
                for b in bits_list:
                    cell = {"method": method, "bits": b, "params": {}, "representation": rep, "track": trk}
                    rows.append(
                        {
                            "table": table,
                            "method": lab,
                            "param": np.nan,
                            "bits": b,
                            "published": pub_value(lab, b),
                            **_summary(index.rows(cell)),
                            "input": f"{rep}/{trk}",
                        }
                    )
    out = pd.DataFrame(
        rows,
        columns=[
            "table",
            "method",
            "param",
            "bits",
            "published",
            "ours",
            "ours_std",
            "n_seeds",
            "ours_index_ties",
            "input",
        ],
    )
    out["gap"] = out["ours"] - out["published"]
    return out


def tables(
    frame: pd.DataFrame,
    dataset: str,
    *,
    representation: str | None = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    defaults: Defaults = registry_defaults,
) -> dict[str, pd.DataFrame]:
    """Tables 2, 3 and 4 beside the published values: ``{"table2": ..., "table3": ..., "table4": ...}``
    (each as :func:`paper_table` returns it)."""
    return {
        f"table{t}": paper_table(frame, None, t, dataset, representation=representation, track=track, defaults=defaults)
        for t in (2, 3, 4)
    }


def _f4(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.4f}"


def render_paper_table(t: pd.DataFrame, table: int, dataset: str, metric: str | None = None) -> str:
    """Markdown of one :func:`paper_table`: a row per method (Table 2: per threshold value), for each code
    length 'published / ours' (ours ± the standard deviation over seeds where there are several), then the
    gaps (ours - published)."""
    metric = metric or _check_dataset(dataset)["metric"]
    full = int(t["n_seeds"].max()) if len(t) else 0
    wide: dict[tuple, dict] = {}
    gaps: dict[tuple, dict] = {}
    for r in t.itertuples():
        first = ("threshold", _fmt_value(float(r.param))) if table == 2 else ("method", r.method)
        key = (first[1], r.input)
        row = wide.setdefault(key, {first[0]: first[1], "our input": r.input})
        ours = _f4(r.ours)
        if r.n_seeds > 1 and not pd.isna(r.ours_std):
            ours += f" ± {r.ours_std:.4f}"
        if 0 < r.n_seeds < full:
            ours += f" (n={r.n_seeds})"
        if r.n_seeds == 0:
            ours = "not run"
        row[str(r.bits)] = f"{_f4(r.published)} / {ours}"
        g = gaps.setdefault(key, {first[0]: first[1], "our input": r.input})
        g[str(r.bits)] = "" if pd.isna(r.gap) else f"{r.gap:+.4f}"
    if table == 2 and t["input"].nunique() <= 1:  # one input: said once in the text, not on every row
        for d in (*wide.values(), *gaps.values()):
            d.pop("our input", None)
    body, gap_body = pd.DataFrame(list(wide.values())), pd.DataFrame(list(gaps.values()))
    seeds = f"mean ± standard deviation over {full} seeds" if full > 1 else "one seed"
    return (
        f"# UHGA paper {TABLE_TITLES[table]}: {dataset}, {metric}\n\n"
        f"Each cell: published / ours (tie-aware {metric}, {seeds}; '(n=k)' marks a cell with fewer seeds). "
        f"Published values: {CITATION}. Where 'our input' differs from the paper's (AlexNet), gaps are expected."
        + ("\n\nThe swept value is read as UHGA+GA's cosine-similarity threshold `sim_threshold` (the paper does not "
           "name it; hashbench_baselines.uhga explains the reading)." if table == 2 else "")
        + "\n\n" + body.to_markdown(index=False, disable_numparse=True)
        + "\n\nGap, ours - published:\n\n" + gap_body.to_markdown(index=False, disable_numparse=True) + "\n"
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Claims with verdicts


def claim_verdict(published_effect: float, ci_low: float, ci_high: float, n_seeds: int) -> str:
    """``holds`` (the interval lies entirely on the side of the published effect), ``does not hold``
    (entirely on the other side) or ``inconclusive at n seeds`` (it contains 0); ``not run`` without data."""
    if n_seeds == 0 or pd.isna(ci_low) or pd.isna(ci_high):
        return "not run"
    side = 1.0 if pd.isna(published_effect) or published_effect >= 0 else -1.0  # claims are "a beats b"
    lo, hi = (ci_low, ci_high) if side > 0 else (-ci_high, -ci_low)
    if lo > 0:
        return "holds"
    if hi < 0:
        return "does not hold"
    return f"inconclusive at {n_seeds} seed{'s' if n_seeds != 1 else ''}"


def _paired(index: _Cells, loader, cell_a: dict, cell_b: dict, bits: Sequence[int], seeds):
    """Per-seed per-query arrays of two cells, concatenated over ``bits`` (only seeds every length has)."""
    per_bits = []
    for b in bits:
        ra, rb = index.rows({**cell_a, "bits": b}), index.rows({**cell_b, "bits": b})
        if ra.empty or rb.empty:
            return [], [], []
        per_bits.append(_by_seed(*paired_scores(ra, rb, loader, "ap", seeds)))
    common = sorted(set.intersection(*(set(d) for d in per_bits))) if per_bits else []
    xa = [np.concatenate([d[s][0] for d in per_bits]) for s in common]
    xb = [np.concatenate([d[s][1] for d in per_bits]) for s in common]
    return xa, xb, common


def _by_seed(xa: list, xb: list, used: list) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {s: (a, b) for a, b, s in zip(xa, xb, used, strict=True)}


def _claim_row(
    claim: str,
    index: _Cells,
    loader,
    cell_a: dict,
    cell_b: dict,
    bits: Sequence[int],
    pub_a: float,
    pub_b: float,
    seeds,
    gen,
    n_boot: int,
    n_perm: int,
) -> dict[str, Any]:
    xa, xb, used = _paired(index, loader, cell_a, cell_b, bits, seeds)
    row = {
        "claim": claim, "statement": CLAIMS[claim], "a": cell_name(cell_a), "b": cell_name(cell_b),
        "bits": str(bits[0]) if len(bits) == 1 else f"mean {bits[0]}-{bits[-1]}",
        "published_a": pub_a, "published_b": pub_b, "published_effect": pub_a - pub_b,
    }  # fmt: skip
    if not used:
        row.update(
            ours_a=np.nan,
            ours_b=np.nan,
            ours_effect=np.nan,
            ci_low=np.nan,
            ci_high=np.nan,
            p_randomisation=np.nan,
            n_seeds=0,
            n_queries=0,
        )
    else:
        r = paired_difference(xa, xb, seeds=used, n_boot=n_boot, n_perm=n_perm, rng=gen)
        row.update(
            ours_a=r["mean_a"],
            ours_b=r["mean_b"],
            ours_effect=r["diff"],
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            p_randomisation=r["p_randomisation"],
            n_seeds=r["n_seeds"],
            n_queries=r["n_queries"] // len(bits),
        )  # per length: the lengths share the queries
    row["verdict"] = claim_verdict(row["published_effect"], row["ci_low"], row["ci_high"], row["n_seeds"])
    return row


CLAIM_COLUMNS = [
    "claim",
    "statement",
    "a",
    "b",
    "bits",
    "published_a",
    "published_b",
    "published_effect",
    "ours_a",
    "ours_b",
    "ours_effect",
    "ci_low",
    "ci_high",
    "p_randomisation",
    "n_seeds",
    "n_queries",
    "verdict",
]


def claims(
    frame: pd.DataFrame,
    scores_loader: Callable[[str], Mapping[str, Any]],
    dataset: str,
    seeds: Iterable[int] | None = None,
    *,
    representation: str = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    n_boot: int = 10000,
    n_perm: int = 10000,
    rng: int = 0,
    defaults: Defaults = registry_defaults,
) -> pd.DataFrame:
    """Each claim of the paper tested on our records: one row per comparison (a vs b at one length).

    - ``ga_improves_ssdh``: ssdh+ga vs ssdh, per length (published effect from Table 3);
    - ``ga_improves_uhga``: uhga+ga vs uhga, per length (Table 3);
    - ``uhga_ga_beats_baselines``: uhga+ga vs each Table 4 baseline, per length (Table 4);
    - ``best_threshold``: per length, Table 2's best value vs the strongest other value *in our runs*
      (the published effect: best minus the published runner-up), and, over all lengths (per-query scores of
      the lengths concatenated), the value with the best published mean over lengths vs ours strongest other.

    Columns: claim, statement, a, b (cells as selectors), bits, published_a, published_b, published_effect
    (a - b), ours_a, ours_b, ours_effect (a - b, mean over seeds of per-seed MAP), ci_low, ci_high (95%,
    bootstrap over queries and seeds), p_randomisation, n_seeds, n_queries, verdict (:func:`claim_verdict`).
    ``seeds``: the seeds to use (None: every seed both cells have). ``scores_loader(scores_path)`` returns a
    dict with ``"per_query": {"ap": array}``.
    """
    _check_dataset(dataset)
    if not representation or not track:
        raise InvalidInput(
            "claims compare one input: give representation and track (default "
            f"{DEFAULT_REPRESENTATION}/{DEFAULT_TRACK})"
        )
    seeds = None if seeds is None else [int(s) for s in seeds]
    pub = published()
    pub = pub[pub["dataset"] == dataset]
    index = _Cells(_for_dataset(frame, dataset), defaults)
    gen = np.random.default_rng(rng)
    bits_list = list(BITS)

    def cell(method: str, params: dict | None = None) -> dict[str, Any]:
        rep, trk = input_for(method, representation, track)
        return {"method": method, "params": dict(params or {}), "representation": rep, "track": trk}

    def pv(table: int, method: str, b: int, param: float | None = None) -> float:
        p = pub[(pub["table"] == table) & (pub["method"] == label(method)) & (pub["bits"] == b)]
        if param is not None:
            p = p[np.isclose(p["param"].astype(float), param)]
        return float(p["value"].iloc[0]) if len(p) and not pd.isna(p["value"].iloc[0]) else np.nan

    common = {"seeds": seeds, "gen": gen, "n_boot": n_boot, "n_perm": n_perm}
    rows = []
    for claim, a, b in (("ga_improves_ssdh", "ssdh+ga", "ssdh"), ("ga_improves_uhga", "uhga+ga", "uhga")):
        for bits in bits_list:
            rows.append(
                _claim_row(
                    claim, index, scores_loader, cell(a), cell(b), [bits], pv(3, a, bits), pv(3, b, bits), **common
                )
            )
    for base in BASELINES:
        for bits in bits_list:
            rows.append(
                _claim_row(
                    "uhga_ga_beats_baselines",
                    index,
                    scores_loader,
                    cell("uhga+ga"),
                    cell(base),
                    [bits],
                    pv(4, "uhga+ga", bits),
                    pv(4, base, bits),
                    **common,
                )
            )
    # Table 2: the published best value against the strongest other value of ours
    t2 = pub[pub["table"] == 2].assign(param=lambda d: d["param"].astype(float))
    if len(t2):
        sweep = paper_table(frame, None, 2, dataset, representation=representation, track=track, defaults=defaults)
        for bits_group in [[b] for b in bits_list] + [bits_list]:
            pub_mean = t2[t2["bits"].isin(bits_group)].groupby("param")["value"].mean().sort_values(ascending=False)
            best, runner_up = float(pub_mean.index[0]), float(pub_mean.index[1])
            mine = sweep[sweep["bits"].isin(bits_group) & (sweep["n_seeds"] > 0)]
            lengths = mine.groupby("param")["bits"].nunique()
            ours_mean = mine.groupby("param")["ours"].mean()[lengths == len(bits_group)]  # values run at every length
            others = ours_mean.drop(index=[v for v in ours_mean.index if math.isclose(v, best)])
            rival = float(others.idxmax()) if len(others) else runner_up
            row = _claim_row(
                "best_threshold",
                index,
                scores_loader,
                cell(SWEPT_METHOD, {SWEPT_PARAM: best}),
                cell(SWEPT_METHOD, {SWEPT_PARAM: rival}),
                bits_group,
                float(pub_mean.iloc[0]),
                float(pub_mean.get(rival, np.nan)),
                **common,
            )
            row["published_effect"] = float(pub_mean.iloc[0] - pub_mean.iloc[1])  # best minus published runner-up
            row["verdict"] = claim_verdict(row["published_effect"], row["ci_low"], row["ci_high"], row["n_seeds"])
            rows.append(row)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def summarise_claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: ``holds`` where every comparison holds, ``does not hold`` where any does not,
    otherwise ``inconclusive at n seeds`` (or ``incomplete`` where cells were not run), with the detail."""
    out = []
    for claim, g in table.groupby("claim", sort=False):
        counts = g["verdict"].map(lambda v: "inconclusive" if v.startswith("inconclusive") else v).value_counts()
        fails = g[g["verdict"] == "does not hold"]
        if len(fails):
            where = ", ".join(
                f"{r.b} at {r.bits}" if claim == "uhga_ga_beats_baselines" else f"{r.bits}" for r in fails.itertuples()
            )
            verdict = f"does not hold ({where})"
        elif counts.get("holds", 0) == len(g):
            verdict = "holds"
        elif counts.get("not run", 0) == len(g):
            verdict = "not run"
        elif counts.get("not run", 0):
            verdict = f"incomplete: {counts['not run']} of {len(g)} comparisons not run"
        else:
            seeds = sorted({int(n) for n in g["n_seeds"] if n > 0})
            verdict = f"inconclusive at {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
        out.append(
            {
                "claim": claim,
                "statement": CLAIMS.get(claim, claim),
                "verdict": verdict,
                "comparisons": len(g),
                "detail": detail,
            }
        )
    return pd.DataFrame(out, columns=["claim", "statement", "verdict", "comparisons", "detail"])


def render_claims_markdown(table: pd.DataFrame, dataset: str, *, command: str | None = None) -> str:
    """``claims.md``: the verdict of each claim, then every comparison with the published effect and ours
    with its 95% interval."""
    metric = _check_dataset(dataset)["metric"]
    summary = summarise_claims(table)
    detail = pd.DataFrame({
        "claim": table["claim"], "a vs b": table["a"].str.split("@").str[0] + " vs " + table["b"].str.split("@").str[0],
        "bits": table["bits"],
        "published a - b": table["published_effect"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
        "ours a - b": table["ours_effect"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
        "95% CI": ["—" if pd.isna(lo) else f"[{lo:+.4f}, {hi:+.4f}]"
                   for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)],
        "p": table["p_randomisation"].map(format_p), "seeds": table["n_seeds"].astype(str),
        "verdict": table["verdict"],
    })  # fmt: skip
    inputs = sorted({a.split("@", 1)[1] for a in (*table["a"], *table["b"]) if "@" in a})
    lines = [
        f"# Claims of the UHGA paper on {dataset} ({metric})", "",
        summary[["statement", "verdict", "detail"]].to_markdown(index=False, disable_numparse=True), "",
        "Every comparison (a minus b; ours: tie-aware AP per query, mean over seeds):", "",
        detail.to_markdown(index=False, disable_numparse=True), "",
        "- published a - b: from the paper's Tables 2-4 (" + CITATION + "); for the threshold claim, the "
        "published best value minus the published runner-up, while ours compares the best value with the strongest "
        "other value of our runs (b).",
        "- 95% CI: paired bootstrap over queries (and over seeds, two-level, where there are several); p: two-sided "
        "paired randomisation (sign-flip) test.",
        "- verdict: holds = the interval lies entirely on the side of the published effect; does not hold = entirely "
        "on the other side; inconclusive = it contains 0 (more seeds or queries could decide). No correction for the "
        "number of comparisons.",
        "- our inputs: " + (", ".join(inputs) or "—") + " (the paper: AlexNet).",
    ]  # fmt: skip
    if command:
        lines += ["", f"Produced by `{command}`."]
    return "\n".join(lines) + "\n"


def metric_warning(frame: pd.DataFrame, dataset: str) -> str | None:
    """A sentence when our records are scored under another cut-off than the paper's metric, else None."""
    want = _check_dataset(dataset)["topk"]
    ours = _for_dataset(frame, dataset)
    if ours.empty or "metric_topk" not in ours:
        return None
    have = {None if pd.isna(k) else int(k) for k in ours["metric_topk"]}
    if have != {want}:
        shown = ", ".join("whole database" if k is None else f"MAP@{k}" for k in sorted(have, key=lambda k: k or 0))
        return (
            f"Warning: our records are scored as {shown}; the paper reports {DATASETS[dataset]['metric']} "
            f"(rescore with that cut-off to compare like with like)."
        )
    return None


def render_outputs(
    frame: pd.DataFrame,
    scores_loader: Callable[[str], Mapping[str, Any]] | None,
    dataset: str,
    seeds: Iterable[int] | None = None,
    *,
    command: str | None = None,
    representation: str = DEFAULT_REPRESENTATION,
    track: str = DEFAULT_TRACK,
    n_boot: int = 10000,
    n_perm: int = 10000,
    defaults: Defaults = registry_defaults,
) -> dict[str, str]:
    """Every output file of ``hashbench paper uhga2020`` as text: ``table2.md``, ``table2.csv``, ... ``table4.csv``
    and, with a ``scores_loader``, ``claims.md`` and ``claims.csv``. The caller writes them (atomically)."""
    warn = metric_warning(frame, dataset)
    footer = (f"\n{warn}\n" if warn else "") + (f"\nProduced by `{command}`.\n" if command else "")
    files = {}
    for name, t in tables(frame, dataset, representation=representation, track=track, defaults=defaults).items():
        files[f"{name}.md"] = render_paper_table(t, int(name[-1]), dataset) + footer
        files[f"{name}.csv"] = t.to_csv(index=False, float_format="%.6f")
    if scores_loader is not None:
        c = claims(
            frame,
            scores_loader,
            dataset,
            seeds,
            representation=representation,
            track=track,
            n_boot=n_boot,
            n_perm=n_perm,
            defaults=defaults,
        )
        files["claims.md"] = render_claims_markdown(c, dataset, command=command) + (f"\n{warn}\n" if warn else "")
        files["claims.csv"] = c.to_csv(index=False, float_format="%.6f")
    return files
