"""Records + scores -> one frame -> tables: CSV for machines, Markdown for people.

Which records a table shows (the same rule for ``run`` and ``tables``, so they agree by
construction):

- the records of the folder's newest data (dataset content checksum of the most recent record);
  records of an older copy of the data are left out and counted in a note;
- one row per configuration: (protocol, method, variant, representation, track), where the
  *variant* names the parameters that differ from the method's defaults (a sweep gives one row per
  value; default parameters give the row without a variant). The ``variant`` column is the label
  people read; ``variant_params`` holds the same parameters as JSON of the values the record
  stores, which selectors (``compare``, ``check``, the reproductions) match on;
- per (row, code length, seed), the most recent record (a newer method version replaces an older);
- cells: the mean over seeds (map.csv); mean ± standard deviation and the number of seeds (map.md).

Files: ``map.csv`` (one row per configuration, one column per code length, the mean),
``summary.csv`` (long form: configuration, n_bits, n_seeds, mean and std of every score),
``results.csv`` (one row per record: every score, timing and flag), ``map.md``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..datasets.protocols import PROTOCOLS
from ..digests import canonical_json
from ..errors import InvalidInput
from ..io import atomic_write_text
from ..records import cell_key, iter_metas
from ..run.scoring import load_scores, metric_label, metric_spec, score_record
from ..values import stored_variant
from . import markdown
from .display import display_order

ROW_KEYS = ["protocol", "method", "variant", "representation", "track"]
CELL_KEYS = [*ROW_KEYS, "n_bits"]
SCORE_COLUMNS = ["map", "map_index", "map_min", "map_max", "p@r2"]
COLLAPSE_MARK = "†"


def default_spec(protocol: str) -> dict[str, Any]:
    """The metric specification a protocol's tables use (its cut-off, the standard precision@N)."""
    topk = PROTOCOLS[protocol].topk if protocol in PROTOCOLS else None
    return metric_spec(topk)


def _representation_name(rep: Any) -> str:
    return rep["name"] if isinstance(rep, dict) else str(rep)


def _variant_params(config: dict[str, Any], meta: dict[str, Any]) -> str:
    """The row's variant as JSON of the values its record stores (``config["params"]``, see
    :func:`hashbench.values.stored_variant`); "" when they do not show the variant (matching then
    parses the ``variant`` label, as for frames and CSVs written before this column)."""
    found = stored_variant(config.get("params"), meta.get("variant", ""))
    return "" if found is None else canonical_json(found)


def record_row(path: Path, meta: dict[str, Any], scores_file: Path | None, scores: dict[str, Any] | None) -> dict:
    """One frame row for a record (and its scores under one specification)."""
    c = meta["config"]
    v = meta.get("versions", {})
    collapse = meta.get("collapse", {})
    row = {
        "dataset": c["dataset"],
        "protocol": c["protocol"],
        "method": c["method"],
        "variant": meta.get("variant", ""),
        "variant_params": _variant_params(c, meta),
        "representation": _representation_name(c["representation"]),
        "track": c["track"],
        "n_bits": int(c["n_bits"]),
        "seed": int(c["seed"]),
        "split_seed": int(c.get("split_seed", c["seed"])),
        "split_checksum": c["split_checksum"],
        "dataset_checksum": c.get("dataset_checksum", ""),
        "method_version": c.get("method_version", 1),
        "record_key": meta.get("key") or cell_key(c),
        "config_id": cell_key({k: val for k, val in c.items() if k not in ("seed", "split_seed", "split_checksum")}),
    }
    if scores is not None:
        row["metric_topk"] = scores.get("topk")
        for k, val in scores.items():
            if isinstance(val, (int, float)) and not isinstance(val, bool) and k not in ("topk", "metric_version"):
                row[k] = float(val)
        row["metric_version"] = scores.get("metric_version")
    row.update(meta.get("timings", {}))
    row["collapsed"] = bool(collapse.get("collapsed", False))
    row["collapse_note"] = collapse.get("note", "")
    row["label_note"] = meta.get("label_note", "")
    row["resolved_params"] = ",".join(
        f"{k}={val:.4g}" if isinstance(val, float) else f"{k}={val}"
        for k, val in sorted(meta.get("resolved_params", {}).items())
    )
    row["dataset_source"] = meta.get("dataset_source", "")
    row["hashbench_version"] = v.get("hashbench", "")
    row["torch_version"] = v.get("torch", "")
    row["faiss_version"] = v.get("faiss", "")
    row["device"] = v.get("device", "")
    row["created"] = int(meta.get("created_ns", 0))
    row["command"] = meta.get("command", "")
    row["record_path"] = str(path)
    row["scores_path"] = "" if scores_file is None else str(scores_file)
    return row


def load_frame(folder: str | Path, spec: dict[str, Any] | None = None, *, score_missing: bool = True) -> pd.DataFrame:
    """Every readable record of ``folder/records`` with its scores (computed and cached when missing),
    one row per record. ``spec`` None: each protocol's default metric specification."""
    folder = Path(folder)
    rows = []
    for path, meta in iter_metas(folder / "records"):
        s = spec or default_spec(meta["config"]["protocol"])
        try:
            sp = score_record(path, s) if score_missing else None
            rows.append(record_row(path, meta, sp, load_scores(sp) if sp else None))
        except Exception as exc:  # noqa: BLE001 - one bad record never blocks the tables
            warnings.warn(f"skipping record {path}: {exc}", stacklevel=2)
    df = pd.DataFrame(rows)
    return order(df) if not df.empty else df


def select(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The records a table shows (module docstring) and notes on what was left out."""
    if df.empty:
        return df, []
    notes = []
    newest = df.sort_values("created", kind="stable")["dataset_checksum"].iloc[-1]
    old = df[df["dataset_checksum"] != newest]
    if len(old):
        notes.append(
            f"{len(old)} record(s) of another copy of the data (checksum differs from the newest "
            f"records') are not shown."
        )
    df = df[df["dataset_checksum"] == newest]
    kept = df.sort_values("created", kind="stable").drop_duplicates([*CELL_KEYS, "seed"], keep="last")
    if len(kept) < len(df):
        notes.append(
            f"{len(df) - len(kept)} older record(s) of the same cells (earlier method versions or "
            "runs) are replaced by the newest."
        )
    return order(kept), notes


def method_rank(methods: pd.Series) -> pd.Series:
    """Display order from the registry: each method class's ``display_rank`` (hashbench's own methods
    declare the UHGA paper's comparison order, LSH first), then the name (:mod:`hashbench.results.display`)."""
    ordered = {m: i for i, m in enumerate(display_order(methods.unique()))}
    return methods.map(ordered)


def dataset_folders(root: str | Path, dataset: str | None = None) -> list[Path]:
    """The dataset folders under a run's ``--out`` (those with a ``records`` folder), or just ``dataset``."""
    from ..run.plan import dataset_dirname

    root = Path(root)
    if dataset:
        folder = root / dataset_dirname(dataset)
        if not (folder / "records").is_dir():
            have = ", ".join(p.parent.name for p in sorted(root.glob("*/records"))) or "none"
            raise InvalidInput(
                f"no records under {folder} (datasets with records under {root}: {have}); "
                f"run `hashbench run --dataset {dataset} --out {root} ...` first"
            )
        return [folder]
    folders = sorted(p.parent for p in root.glob("*/records") if p.is_dir())
    if not folders:
        raise InvalidInput(f"no records under {root}; run `hashbench run --out {root} ...` first")
    return folders


def order(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(_order=method_rank(df["method"]))
    df = df.sort_values(
        ["dataset", "protocol", "_order", "method", "variant", "representation", "track", "n_bits", "seed"],
        kind="stable",
    )
    return df.drop(columns="_order").reset_index(drop=True)


def _row_keys(df: pd.DataFrame) -> list[str]:
    return [
        k
        for k in ROW_KEYS
        if k == "method" or df[k].astype(str).nunique() > 1 or (k == "variant" and (df[k] != "").any())
    ]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (configuration, n_bits) with n_seeds and mean/std of every score."""
    if df.empty:
        return pd.DataFrame()
    values = [
        c
        for c in [
            *SCORE_COLUMNS,
            *sorted(c for c in df if c.startswith("p@") and c != "p@r2"),
            "train_s",
            "encode_us_per_item",
            "query_us_per_query",
        ]
        if c in df
    ]
    g = df.groupby(CELL_KEYS, sort=False, dropna=False)
    out = g.size().rename("n_seeds").to_frame()
    for v in values:
        out[f"{v}_mean"] = g[v].mean()
        out[f"{v}_std"] = g[v].std(ddof=1)
    out["collapsed_seeds"] = g["collapsed"].sum().astype(int)
    return out.reset_index()


def pivot(df: pd.DataFrame, value: str = "map", fmt: str | None = None, spread: bool = False) -> pd.DataFrame:
    """Configuration rows x code-length columns ("16", "32", ...): the mean of ``value`` over seeds.

    With ``spread``: "mean ± std" cells (std over seeds, ddof 1), a cell with fewer seeds than the most
    in its table says "(n=k)", and a cell whose codes collapsed in some seed is marked †.
    """
    if df.empty:
        return pd.DataFrame()
    keys = _row_keys(df)
    g = df.groupby([*keys, "n_bits"], sort=False, dropna=False)
    mean = g[value].mean().unstack("n_bits")
    mean = mean[sorted(mean.columns)]  # columns by code length, not by the first row's lengths
    if spread:
        std = g[value].std(ddof=1).unstack("n_bits")
        n = g[value].count().unstack("n_bits")
        bad = g["collapsed"].any().unstack("n_bits")
        n_max = int(np.nanmax(n.to_numpy())) if n.size else 1
        cells = mean.copy().astype(object)
        for r in mean.index:
            for c in mean.columns:
                m = mean.loc[r, c]
                if pd.isna(m):
                    cells.loc[r, c] = ""
                    continue
                text = format(m, fmt or ".4f")
                if n.loc[r, c] > 1:
                    text += f" ± {format(std.loc[r, c], fmt or '.4f')}"
                if n.loc[r, c] < n_max:
                    text += f" (n={int(n.loc[r, c])})"
                if bool(bad.loc[r, c]):
                    text += f" {COLLAPSE_MARK}"
                cells.loc[r, c] = text
        table = cells
    else:
        table = mean
    table.columns = [str(int(c)) for c in table.columns]
    table = table.reset_index()
    if spread:
        table.insert(len(keys), "n", g[value].count().groupby(level=list(range(len(keys))), sort=False).max().values)
    table = table.assign(_o=method_rank(table["method"])).sort_values(["_o", *keys], kind="stable")
    table = table.drop(columns="_o").reset_index(drop=True)
    if fmt and not spread:
        for col in [c for c in table.columns if c.isdigit()]:
            table[col] = table[col].map(lambda v: "" if pd.isna(v) else format(v, fmt))
    return table


def _derived_values(df: pd.DataFrame) -> str:
    """The values fits derived from their training data (``resolved_params``), each with the seeds
    (and, where it differs by length, the code lengths) of the cells that derived it:
    ``uhga: sim_threshold=0.5685 (seed 0), sim_threshold=0.5675 (seed 1)``; "" if none."""
    resolved = df[df["resolved_params"] != ""]
    parts = []
    for (method, variant), g in resolved.groupby(["method", "variant"], sort=False):
        all_bits = set(g["n_bits"])
        items = []
        for value, h in g.groupby("resolved_params", sort=False):
            seeds = sorted(set(h["seed"]))
            where = ("seeds " if len(seeds) > 1 else "seed ") + ", ".join(map(str, seeds))
            bits = sorted(set(h["n_bits"]))
            if set(bits) != all_bits:
                where += "; " + ", ".join(map(str, bits)) + " bits"
            items.append((seeds[0], bits[0], f"{value} ({where})"))
        label = f"{method} [{variant}]" if variant else method
        parts.append(f"{label}: " + ", ".join(t for *_, t in sorted(items)))
    return "; ".join(parts)


def describe(df: pd.DataFrame) -> list[str]:
    """The lines stated under a table: protocol, split, metric convention, seeds, data source, flags."""
    lines = []
    for proto in df["protocol"].unique():
        p = PROTOCOLS.get(proto)
        text = p.description if p else "the split given by the dataset's list files"
        lines.append(f"- Protocol `{proto}`: {text}.")
    checks = df.groupby("split_seed")["split_checksum"].first()
    lines.append(
        "- Split checksums (split seed: sha256/16): " + ", ".join(f"{s}: `{c}`" for s, c in checks.items()) + "."
    )
    seeds = sorted(df["seed"].unique())
    lines.append(
        f"- Metric: tie-aware {metric_label(df)} — the exact expected AP when each group of equal Hamming distance "
        "is in random order (McSherry & Najork 2008); relevant = sharing at least one label; a query with no "
        f"relevant item scores AP 0 and counts (docs/METRICS.md). Cells: mean ± standard deviation over "
        f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); a seed draws the split and initialises the method, "
        "unless the records used --split-seed (then only the method's initialisation varies)."
    )
    reps = ", ".join(sorted(df["representation"].unique()))
    tracks = ", ".join(sorted(df["track"].unique()))
    lines.append(f"- Input: representation {reps}; track {tracks}.")
    derived = _derived_values(df)
    if derived:
        lines.append("- Values derived from the training features (not set by hand): " + derived + ".")
    sources = sorted(s for s in df["dataset_source"].unique() if s)
    if sources:
        lines.append("- Data: " + "; ".join(sources) + ".")
    bad = df[df["collapsed"]]
    if len(bad):
        items = [
            f"{r.method}{f' [{r.variant}]' if r.variant else ''} {r.n_bits} bits seed {r.seed} ({r.collapse_note})"
            for r in bad.itertuples()
        ]
        lines.append(
            f"- {COLLAPSE_MARK} Collapsed codes (a bit constant over the database, or one code shared by "
            "most items): " + "; ".join(items) + "."
        )
    for note in sorted({n for n in df["label_note"] if n}):
        lines.append(f"- Warning: {note}.")
    return lines


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, disable_numparse=True)


def render_markdown(df: pd.DataFrame, title: str, command: str | None = None, notes: Iterable[str] = ()) -> str:
    """The ``map.md`` text for one dataset's selected records."""
    label = metric_label(df)
    out = [
        f"# {title}",
        "",
        f"Tie-aware {label}, mean ± standard deviation over seeds (n = seeds):",
        "",
        to_markdown(pivot(df, "map", ".4f", spread=True)),
        "",
    ]
    out += describe(df)
    out += [f"- {n}" for n in notes]
    out += [
        "",
        f"{label} with ties broken by database index (stable sort; the convention of most published "
        "code), for comparison with published numbers:",
        "",
        to_markdown(pivot(df, "map_index", ".4f")),
    ]
    spread = df.assign(tie_range=df["map_max"] - df["map_min"])
    out += [
        "",
        "Range of MAP that tie order alone can produce (map_max - map_min):",
        "",
        to_markdown(pivot(spread, "tie_range", ".4f")),
    ]
    if "train_s" in df:
        out += ["", "Training time in seconds (mean over seeds):", "", to_markdown(pivot(df, "train_s", ".2f"))]
    runs = [c for c in dict.fromkeys(df["command"].fillna("")) if c]
    if runs:
        out += ["", "Records produced by:", "", markdown.shell_block(runs)]
    if command:
        out += ["", markdown.command("Tables written by", command)]
    return markdown.wrap("\n".join(out)) + "\n"


#: command-line options whose value is where one machine keeps something: written as a placeholder
_PATH_OPTIONS = {"--data-root": "DIR", "--cache-dir": "DIR", "--weights": "FILE", "--checkpoint-dir": "DIR"}
#: a path that locates something on one machine: absolute (``/data``, ``C:\\data``, ``C:/data``) or
#: anchored at a home or working folder (``~/data``, ``./data``, ``../data``, ``..\\data``); not a
#: URL (``https://host/a``: no match inside ``//``)
_ABSOLUTE = re.compile(r"(?<![\w.~/\\-])(?:/(?!/)|~[/\\]|\.{1,2}[/\\]|[A-Za-z]:[/\\])[^\s,;'\"()]*")


def portable(text: str) -> str:
    """``text`` without machine paths, for committed tables: the values of path options become
    ``DIR`` / ``FILE``, any other path anchored at the root, a drive, the home or the working folder
    its last component (``/data/cifar10``, ``../data/cifar10`` -> ``cifar10``).
    The data is identified by its content checksum (column ``dataset_checksum``), not by a folder."""
    words = str(text).split(" ")
    for i, w in enumerate(words):
        if w in _PATH_OPTIONS and i + 1 < len(words):
            words[i + 1] = _PATH_OPTIONS[w]
        opt, eq, _ = w.partition("=")
        if eq and opt in _PATH_OPTIONS:
            words[i] = f"{opt}={_PATH_OPTIONS[opt]}"
    return _ABSOLUTE.sub(_last_component, " ".join(words))


def _last_component(match: re.Match[str]) -> str:
    path = match.group(0).replace("\\", "/").rstrip("/")
    return path.rsplit("/", 1)[-1] or "/"


def portable_frame(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The frame as tables store it: commands and data sources without machine paths, record and
    scores paths relative to the dataset folder."""
    out = df.copy()
    for col in ("command", "dataset_source"):
        if col in out:
            out[col] = out[col].fillna("").map(portable)
    for col in ("record_path", "scores_path"):
        if col in out:
            out[col] = out[col].fillna("").map(lambda p: _relative(p, folder))
    return out


def _relative(path: str, folder: Path) -> str:
    if not path:
        return ""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(folder.resolve().parent))
    except ValueError:
        return p.name if p.is_absolute() else str(p)


def write_tables(
    folder: str | Path, title: str | None = None, command: str | None = None, spec: dict[str, Any] | None = None
) -> list[Path]:
    """Select a dataset folder's records (module docstring) and write its tables atomically."""
    folder = Path(folder)
    df, notes = select(load_frame(folder, spec))
    if df.empty:
        return []
    paths = [folder / "map.csv", folder / "summary.csv", folder / "results.csv", folder / "map.md"]
    atomic_write_text(paths[0], pivot(df, "map").to_csv(index=False, float_format="%.6f"))
    atomic_write_text(paths[1], summary(df).to_csv(index=False, float_format="%.6f"))
    stored = portable_frame(df, folder)
    atomic_write_text(paths[2], stored.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(
        paths[3],
        render_markdown(
            stored,
            title or f"{folder.name}: hashing methods compared",
            None if command is None else portable(command),
            notes,
        ),
    )
    return paths


def mean_map(df: pd.DataFrame) -> pd.DataFrame:
    """Long form (dataset, method, n_bits, map) of means over seeds, for ``check``."""
    if df.empty:
        return pd.DataFrame(columns=["dataset", "method", "n_bits", "map"])
    g = df.groupby(["dataset", "method", "n_bits"], sort=False)["map"].agg(["mean", "count"]).reset_index()
    return g.rename(columns={"mean": "map", "count": "n_seeds"})


def compare_published(df: pd.DataFrame, published: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Ours beside published numbers given as ``method,bits,map[,source]`` rows: one row per method,
    code length and source, with our tie-aware and index-order MAP and the gaps."""
    ours = df[(df["dataset"] == dataset) & (df["variant"] == "")]
    mean = ours.groupby(["method", "n_bits"])[["map", "map_index"]].mean()
    rows = []
    for r in published.itertuples():
        key = (str(r.method).lower(), int(r.bits))
        have = key in mean.index
        rows.append(
            {
                "method": key[0],
                "bits": key[1],
                "published": float(r.map),
                "ours": float(mean.loc[key, "map"]) if have else np.nan,
                "ours_index_ties": float(mean.loc[key, "map_index"]) if have else np.nan,
                "source": getattr(r, "source", ""),
            }
        )
    out = pd.DataFrame(rows)
    out["gap"] = out["ours_index_ties"] - out["published"]
    return out
