"""Records -> DataFrames -> CSV (for machines) and Markdown (for people).

``map.csv``: one row per method (and representation / track), one column per code length named by
the number, the mean over seeds. ``map.md``: the same with the protocol and metric convention
stated under it, plus the index-order MAP (the MATLAB-era convention published numbers mostly
use) and training times. ``results.csv``: every record's scores in long form.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_write_text
from .protocols import PROTOCOLS
from .records import cell_key, iter_record_paths, read_meta

#: the order of the paper's comparison (Table 4), then the other registered methods.
METHOD_ORDER = ["lsh", "sh", "sph", "itq", "dsh", "ssdh", "ssdh+ga", "hashgan", "usdh", "uhga", "uhga+ga"]
ROW_KEYS = ["method", "protocol", "representation", "track"]


def records_to_frame(metas: Iterable[dict]) -> pd.DataFrame:
    """One row per record: configuration, scalar scores and timings."""
    rows = []
    for meta in metas:
        c = meta["config"]
        row = {
            "dataset": c["dataset"], "protocol": c["protocol"], "representation": c["representation"],
            "track": c["track"], "method": c["method"], "n_bits": int(c["n_bits"]), "seed": int(c["seed"]),
            "split_checksum": c["split_checksum"], "metric_topk": c.get("metric", {}).get("topk"),
        }
        for k, v in meta["scores"].items():
            if isinstance(v, float):
                row[k] = v
        row.update(meta.get("timings", {}))
        row["dataset_source"] = meta.get("dataset_source", "")
        row["created"] = meta.get("created_ns") or _ns(meta.get("created", ""))
        row["command"] = meta.get("command", "")
        row["record_key"] = cell_key(c)
        # everything of the configuration but the seed: rows of one table share it
        row["config_id"] = cell_key({k: v for k, v in c.items() if k not in ("seed", "split_checksum")})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return records_to_frame_order(df)


def _ns(stamp: str) -> int:
    """Nanoseconds since the epoch of a record's ``created`` stamp (records written before ``created_ns``)."""
    try:
        return int(pd.Timestamp(stamp).value)
    except (ValueError, TypeError):
        return 0


def pivot(df: pd.DataFrame, value: str = "map", fmt: str | None = None) -> pd.DataFrame:
    """Method rows x code-length columns (named "16", "32", ...), the mean of ``value`` over seeds."""
    if df.empty:
        return pd.DataFrame()
    keys = [k for k in ROW_KEYS if df[k].nunique() > 1 or k == "method"]
    table = df.pivot_table(index=keys, columns="n_bits", values=value, aggfunc="mean", sort=False)
    table.columns = [str(int(c)) for c in table.columns]
    table = table.reset_index()
    table = table.assign(_order=_method_rank(table["method"])).sort_values(["_order", *keys], kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    if fmt:
        for col in table.columns[len(keys):]:
            table[col] = table[col].map(lambda v: "" if pd.isna(v) else format(v, fmt))
    return table


def _metric_label(df: pd.DataFrame) -> str:
    topk = df["metric_topk"].dropna().unique() if "metric_topk" in df else []
    return f"MAP@{int(topk[0])}" if len(topk) else "MAP (whole database)"


def describe(df: pd.DataFrame) -> list[str]:
    """The lines stated under a table: protocol, split, metric convention, seeds, data source."""
    lines = []
    for proto in df["protocol"].unique():
        p = PROTOCOLS.get(proto)
        text = p.description if p else "the split given by the dataset's list files"
        lines.append(f"- Protocol `{proto}`: {text}.")
    checks = df.groupby("seed")["split_checksum"].first()
    lines.append("- Split checksums (seed: sha256/16): " + ", ".join(f"{s}: `{c}`" for s, c in checks.items()) + ".")
    seeds = sorted(df["seed"].unique())
    label = _metric_label(df)
    lines.append(
        f"- Metric: tie-aware {label} — the exact expected AP when each group of equal Hamming distance is in "
        "random order (McSherry & Najork 2008); relevant = sharing at least one label; a query with no relevant "
        f"item scores AP 0 and counts. Mean over {len(seeds)} seed(s): {', '.join(map(str, seeds))}."
    )
    reps = ", ".join(sorted(df["representation"].unique()))
    tracks = ", ".join(sorted(df["track"].unique()))
    lines.append(f"- Input: representation {reps}; track {tracks}.")
    sources = sorted(s for s in df["dataset_source"].unique() if s)
    if sources:
        lines.append("- Data: " + "; ".join(sources) + ".")
    return lines


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, disable_numparse=True)


def render_markdown(df: pd.DataFrame, title: str, command: str | None = None) -> str:
    """The ``map.md`` text for one dataset's records."""
    label = _metric_label(df)
    out = [f"# {title}", "", f"Tie-aware {label}, mean over seeds:", "", to_markdown(pivot(df, "map", ".4f")), ""]
    out += describe(df)
    if "map_index" in df:
        out += ["", f"{label} with ties broken by database index (stable sort; the convention of most published "
                "code), for comparison with published numbers:", "", to_markdown(pivot(df, "map_index", ".4f"))]
    if "map_min" in df and "map_max" in df:
        spread = df.assign(tie_range=df["map_max"] - df["map_min"])
        out += ["", "Range of MAP that tie order alone can produce (map_max - map_min):", "",
                to_markdown(pivot(spread, "tie_range", ".4f"))]
    if "train_s" in df:
        out += ["", "Training time in seconds (mean over seeds):", "", to_markdown(pivot(df, "train_s", ".2f"))]
    runs = [c for c in dict.fromkeys(df.get("command", pd.Series(dtype=str)).fillna("")) if c]
    if runs:
        out += ["", "Records produced by:", "", *[f"- `{c}`" for c in runs]]
    if command:
        out += ["", f"Tables written by `{command}`."]
    return "\n".join(out) + "\n"


def write_tables(df: pd.DataFrame, out_dir: str | Path, title: str, command: str | None = None) -> list[Path]:
    """Write ``map.csv``, ``map.md`` and ``results.csv`` for one dataset's records (atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "map.csv", out_dir / "map.md", out_dir / "results.csv"]
    table = pivot(df, "map")
    atomic_write_text(paths[0], table.to_csv(index=False, float_format="%.6f"))
    atomic_write_text(paths[1], render_markdown(df, title, command))
    atomic_write_text(paths[2], df.to_csv(index=False, float_format="%.6f"))
    return paths


def load_frame(records_root: str | Path) -> pd.DataFrame:
    """Every record below a folder, as a frame (metadata only; codes are not read)."""
    return records_to_frame(read_meta(p) for p in iter_record_paths(records_root))


TABLE_CELL = ["dataset", "protocol", "method", "representation", "track", "n_bits"]


def latest_per_cell(df: pd.DataFrame, prefer: Iterable[str] = ()) -> pd.DataFrame:
    """One configuration per table cell (dataset, protocol, method, input, bits) and one record per seed.

    The configuration kept is that of the records in ``prefer`` (the run just made), else the most
    recent one. Records of other hyperparameters or other data copies are older runs: averaging them
    in would pass them off as further seeds.
    """
    if df.empty:
        return df
    ranked = df.assign(_pref=df["record_key"].isin(set(prefer))).sort_values(["_pref", "created"], kind="stable")
    chosen = ranked.drop_duplicates(TABLE_CELL, keep="last")[[*TABLE_CELL, "config_id"]]
    kept = ranked.merge(chosen, on=[*TABLE_CELL, "config_id"])
    kept = kept.drop_duplicates([*TABLE_CELL, "seed"], keep="last").drop(columns="_pref")
    return records_to_frame_order(kept)


def _method_rank(methods: pd.Series) -> pd.Series:
    """Position of each method in the paper's order; other methods after, alphabetically by the caller."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return methods.map(lambda m: order.get(m, len(order)))


def records_to_frame_order(df: pd.DataFrame) -> pd.DataFrame:
    df = df.assign(_order=_method_rank(df["method"]))
    df = df.sort_values(["dataset", "_order", "method", "representation", "track", "n_bits", "seed"])
    return df.drop(columns="_order").reset_index(drop=True)


def mean_map(df: pd.DataFrame) -> pd.DataFrame:
    """Long form (dataset, method, n_bits, map) of means over seeds, for ``check``."""
    if df.empty:
        return pd.DataFrame(columns=["dataset", "method", "n_bits", "map"])
    g = df.groupby(["dataset", "method", "n_bits"], sort=False)["map"].agg(["mean", "count"]).reset_index()
    return g.rename(columns={"mean": "map", "count": "n_seeds"})


def fmt_float(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


#: the paper's method labels -> hashbench's registered names.
PAPER_NAMES = {"SH": "sh", "SPH": "sph", "ITQ": "itq", "DSH": "dsh", "SSDH": "ssdh", "SSDH+GA": "ssdh+ga",
               "HashGAN": "hashgan", "USDH": "usdh", "UHGA": "uhga", "UHGA+GA": "uhga+ga"}


def paper_table(df: pd.DataFrame, published: pd.DataFrame, table: int, dataset: str) -> pd.DataFrame:
    """The paper's Table 3 or 4 for one dataset: per method and code length, the published MAP, ours
    (tie-aware and index-order, mean over seeds), and the track our number comes from.

    Rows follow the paper's order; a method we have no record for shows empty cells.
    """
    pub = published[(published["table"] == table) & (published["dataset"] == dataset)]
    rows = []
    ours = df[(df["dataset"] == dataset) & (df["protocol"] == dataset)] if not df.empty else df
    for label in dict.fromkeys(pub["method"]):
        name = PAPER_NAMES.get(label, label.lower())
        mine = ours[ours["method"] == name] if not ours.empty else ours
        inputs = sorted(set(mine["representation"] + "/" + mine["track"])) if len(mine) else [""]
        for inp in inputs:  # one row per input we ran the method on: never averaged across tracks
            m = mine[mine["representation"] + "/" + mine["track"] == inp] if inp else mine
            for bits in sorted(pub["bits"].unique()):
                p = pub[(pub["method"] == label) & (pub["bits"] == bits)]["value"]
                mb = m[m["n_bits"] == bits] if len(m) else m
                rows.append({
                    "method": label, "bits": int(bits),
                    "published": float(p.iloc[0]) if len(p) and not pd.isna(p.iloc[0]) else np.nan,
                    "ours": float(mb["map"].mean()) if len(mb) else np.nan,
                    "ours_index_ties": float(mb["map_index"].mean()) if len(mb) else np.nan,
                    "track": inp,
                })
    out = pd.DataFrame(rows)
    out["gap"] = out["ours"] - out["published"]
    return out


def render_paper_table(t: pd.DataFrame, table: int, dataset: str, metric: str) -> str:
    """Markdown: one row per method, for each code length 'published / ours'."""
    wide: dict[tuple, dict] = {}
    for r in t.itertuples():
        cell = f"{fmt_float(r.published) or '—'} / {fmt_float(r.ours) or '—'}"
        row = wide.setdefault((r.method, r.track), {"method": r.method, "our input": r.track or "not run"})
        row[str(r.bits)] = cell
    body = pd.DataFrame(list(wide.values()))
    title = {3: "Table 3, the effect of gradient attention", 4: "Table 4, comparison"}[table]
    return (f"# UHGA paper {title}: {dataset}, {metric}\n\nEach cell: published / ours (tie-aware). Published "
            "values: Jiang et al., Symmetry 2020, 12(7):1193. Our inputs differ from the paper's where the "
            "'our input' column says so (representation/track), so gaps are expected; README.md discusses them.\n\n"
            + to_markdown(body) + "\n")


def compare_published(df: pd.DataFrame, published: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Ours beside published numbers given as ``method,bits,map[,source]`` rows: one row per method,
    code length and source, with our tie-aware and index-order MAP and the gaps."""
    ours = df[df["dataset"] == dataset]
    mean = ours.groupby(["method", "n_bits"])[["map", "map_index"]].mean()
    rows = []
    for r in published.itertuples():
        key = (str(r.method).lower(), int(r.bits))
        have = key in mean.index
        rows.append({
            "method": key[0], "bits": key[1], "published": float(r.map),
            "ours": float(mean.loc[key, "map"]) if have else np.nan,
            "ours_index_ties": float(mean.loc[key, "map_index"]) if have else np.nan,
            "source": getattr(r, "source", ""),
        })
    out = pd.DataFrame(rows)
    out["gap"] = out["ours_index_ties"] - out["published"]
    return out
