"""Figures from records: MAP against code length, precision-recall over Hamming radius, precision@N,
quality against cost, ours against published numbers, and deep methods' learning curves.

Everything is drawn from records only (the frame of :func:`hashbench.results.tables.load_frame` and the
per-record scores of :func:`hashbench.run.scoring.load_scores`); nothing is retrained. Figures go to
``DIR/<dataset>/plots/`` as PNG (for people and the HTML report) and SVG (for papers), under fixed
names (:data:`FIGURE_NAMES`).

One style across every figure: a method has the same colour and marker in every figure of every
dataset (:func:`method_style`: what each method class declares, read by :mod:`hashbench.results.display`; a
digest of the name into a qualitative palette for any other), the protocol and metric are stated in
each title, legends sit outside the axes. Drawing is headless: the Agg backend, matplotlib's object
API (``Figure``, never pyplot's global figure state). Output is deterministic: fixed SVG hash salt, no date in the SVG
metadata, fixed fonts and sizes, so drawing the same records twice gives byte-identical files.
"""

from __future__ import annotations

import functools
import io
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import reproductions
from ..io import atomic_write_bytes
from ..records import CorruptRecord, read_meta
from ..results.display import EXTRA_MARKERS, method_display, method_rank
from ..results.tables import load_frame, select
from ..run.scoring import load_scores, metric_label

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


@functools.cache
def _mpl() -> SimpleNamespace:
    """matplotlib, imported on first use, so the other commands (and ``hashbench --help``) never pay
    for it. Headless: the Agg backend is selected before pyplot could be imported (it never is here:
    figures are ``Figure`` objects with an Agg canvas, no global figure state)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return SimpleNamespace(matplotlib=matplotlib, Figure=Figure, Canvas=FigureCanvasAgg, Line2D=Line2D, Patch=Patch)


def _line(*args: Any, **kwargs: Any):
    return _mpl().Line2D(*args, **kwargs)


#: identity columns of a table row (one line in a figure); the seed is what is averaged over.
SERIES_KEYS = ["dataset", "protocol", "representation", "track", "method", "variant"]

LINESTYLES = ["-", "--", ":", "-."]

#: the stems of the files :func:`plot_dataset` writes (``pr_<bits>b`` once per code length).
FIGURE_NAMES = [
    "map_vs_bits",
    "pr_curves",
    "pr_<bits>b",
    "precision_at_n",
    "cost_train",
    "cost_query",
    "learning_curves",
    "published_vs_ours_<reproduction>_table<N>",
]

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 10.5,
    "axes.titlesize": 10,
    "axes.labelsize": 11,
    "figure.titlesize": 13,
    "legend.fontsize": 9.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linestyle": ":",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.dpi": 130,
    "svg.hashsalt": "hashbench",  # ids in the SVG (clip paths, glyphs) come from a fixed salt, not a random one
    "svg.fonttype": "path",
    "path.simplify": False,
}

ScoresLoader = Callable[[str], dict]


@dataclass
class Drawn:
    """One figure ready to save or embed: file stem, a one-line title and a caption for the report."""

    name: str
    title: str
    caption: str
    figure: Figure


@contextmanager
def _style() -> Iterator[None]:
    with _mpl().matplotlib.rc_context(STYLE):
        yield


def method_style(method: str) -> tuple[str, str]:
    """(colour, marker) of a method: the same in every figure and every dataset. Each method class
    declares its own (``display_style``, :mod:`hashbench.results.display`); others get one by a digest of the
    name."""
    shown = method_display(method)
    return shown.colour, shown.marker


def method_color(method: str) -> str:
    """The colour of a method in every figure (see :func:`method_style`)."""
    return method_style(method)[0]


def prepare_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a records frame with every identity column present as str ("" where absent or NaN)
    and ``n_bits``/``seed`` as int, so frames from older records and hand-made ones plot alike."""
    df = df.copy()
    for col in SERIES_KEYS:
        df[col] = df[col].fillna("").astype(str) if col in df else ""
    df["n_bits"] = df["n_bits"].astype(int)
    if "seed" in df:
        df["seed"] = df["seed"].astype(int)
    return df


def summarize(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``columns`` per table cell (series keys + ``n_bits``).

    Returns one row per cell with ``<col>`` (mean), ``<col>_std`` (sample std, ddof=1; NaN for one
    seed) and ``n`` (the number of seeds), rows in the paper's method order.
    """
    df = prepare_frame(df)
    cols = [c for c in columns if c in df]
    keys = [*SERIES_KEYS, "n_bits"]
    g = df.groupby(keys, sort=False)
    out = g[cols].mean() if cols else g.size().to_frame("_n").drop(columns="_n")
    if cols:
        out = out.join(g[cols].std(ddof=1).add_suffix("_std"))
    out = out.join(g.size().rename("n")).reset_index()
    order = out["method"].map(method_rank)
    out = out.assign(_o=order).sort_values(
        ["_o", "variant", "representation", "track", "protocol", "n_bits"], kind="stable"
    )
    return out.drop(columns="_o").reset_index(drop=True)


def _protocol_text(df: pd.DataFrame) -> str:
    protos = sorted({p for p in df["protocol"] if p}) if "protocol" in df else []
    return "protocol " + ", ".join(protos) if protos else "protocol unknown"


def _seed_text(df: pd.DataFrame) -> str:
    seeds = sorted({int(s) for s in df["seed"]}) if "seed" in df else []
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" if seeds else ""


class _Series:
    """The lines of one figure: one per (protocol, representation, track, method, variant), with a
    label that names only what differs between the lines, a colour per method and a line style per
    variant or input of the same method."""

    def __init__(self, df: pd.DataFrame):
        keys = [k for k in SERIES_KEYS if k != "dataset"]
        cells = df[keys].drop_duplicates()
        self.keys = keys
        self.varying = {k: cells[k].nunique() > 1 for k in keys}
        tuples = [tuple(r) for r in cells.itertuples(index=False)]
        m = keys.index("method")
        self.order = sorted(tuples, key=lambda t: (method_rank(t[m]), t))
        self._dash: dict[tuple, str] = {}
        seen: dict[str, int] = {}
        for t in self.order:
            i = seen.get(t[m], 0)
            seen[t[m]] = i + 1
            self._dash[t] = LINESTYLES[i % len(LINESTYLES)]

    def groups(self, df: pd.DataFrame) -> Iterator[tuple[tuple, pd.DataFrame]]:
        for t in self.order:
            mask = np.ones(len(df), bool)
            for k, v in zip(self.keys, t, strict=True):
                mask &= (df[k] == v).to_numpy()
            if mask.any():
                yield t, df[mask]

    def label(self, t: tuple, n: int | None = None) -> str:
        d = dict(zip(self.keys, t, strict=True))
        text = d["method"]
        if d["variant"]:
            text += f" [{d['variant']}]"
        inputs = [d[k] for k in ("representation", "track") if self.varying[k] and d[k]]
        if inputs:
            text += " · " + "/".join(inputs)
        if self.varying["protocol"] and d["protocol"]:
            text += f" · {d['protocol']}"
        if n is not None and n > 1:
            text += f" (n={n})"
        return text

    def style(self, t: tuple) -> dict[str, Any]:
        colour, marker = method_style(t[self.keys.index("method")])
        return {"color": colour, "marker": marker, "linestyle": self._dash[t]}


def _new_figure() -> Figure:
    mpl = _mpl()
    fig = mpl.Figure(figsize=(6.0, 4.0))  # resized by _finish, once the legend's size is known
    mpl.Canvas(fig)
    return fig


def _panels(n: int) -> tuple[Figure, list]:
    """A figure with ``n`` panels: up to 3 in a row (4 as 2 x 2), so each stays readable at report width."""
    cols = n if n <= 3 else (2 if n == 4 else 3)
    rows = math.ceil(n / cols)
    fig = _new_figure()
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _finish(
    fig: Figure,
    title: str,
    handles: list,
    labels: list[str],
    *,
    panel: tuple[float, float] = (3.6, 3.0),
    panel_titles: bool = True,
    legend: str = "auto",
) -> None:
    """Size the figure and place its axes and legend by fixed margins in inches.

    The layout is computed, not solved (no constrained/tight layout: those lay the figure out again on
    every save and cost as much as drawing it): margins for tick labels, axis labels and titles at the
    fixed font sizes of :data:`STYLE`. The legend sits outside every axes: ``"right"``, a column as
    wide as its longest label; ``"top"``, rows under the title across the panels (for figures of
    several panels, which would otherwise be too wide to read at report width); ``"auto"``: top when
    there are several panels in a row.
    """
    grid = fig.axes[0].get_subplotspec().get_gridspec() if fig.axes else None
    rows, cols = (grid.nrows, grid.ncols) if grid is not None else (1, 1)
    if legend == "auto":
        legend = "top" if cols > 1 else "right"
    pw, ph = panel
    left, bottom, right_gap = 0.8, 0.62, 0.25
    wgap, hgap = 0.85, 0.62 + (0.3 if panel_titles else 0.0)
    plot_w = cols * pw + (cols - 1) * wgap
    plot_h = rows * ph + (rows - 1) * hgap
    title_h = 0.3 + 0.24 * (title.count("\n") + 1)
    longest = max((max(len(line) for line in str(lab).split("\n")) for lab in labels), default=0)
    item_w = 0.75 + 0.075 * longest  # marker, gap and text at the legend's 9.5 pt
    n_lines = sum(str(lab).count("\n") + 1 for lab in labels)
    ncol, legend_w, legend_h = 1, 0.0, 0.0
    if labels and legend == "top":
        ncol = max(1, min(len(labels), int(plot_w // item_w)))
        legend_h = 0.25 * math.ceil(len(labels) / ncol) + 0.15
    elif labels:
        legend_w = min(5.0, item_w)
    top = title_h + legend_h + (0.3 if panel_titles else 0.0)
    width = left + plot_w + right_gap + legend_w
    height = max(top + plot_h + bottom, title_h + 0.22 * n_lines + 0.3)
    fig.set_size_inches(width, height)
    fig.subplots_adjust(
        left=left / width,
        right=(left + plot_w) / width,
        top=1 - top / height,
        bottom=(height - top - plot_h) / height,
        wspace=wgap / pw,
        hspace=hgap / ph,
    )
    fig.suptitle(title, y=1 - 0.12 / height, va="top", fontsize=12, linespacing=1.5)
    if not labels:
        return
    if legend == "top":
        fig.legend(
            handles,
            labels,
            loc="upper left",
            ncol=ncol,
            borderaxespad=0.0,
            columnspacing=1.5,
            bbox_to_anchor=(left / width, 1 - (title_h + 0.05) / height),
        )
    else:
        fig.legend(
            handles,
            labels,
            loc="upper left",
            borderaxespad=0.0,
            bbox_to_anchor=((left + plot_w + right_gap) / width, 1 - top / height),
        )


def _finite_or_zero(x: Any) -> float:
    """A standard deviation for an error bar: 0 where there is one seed (NaN)."""
    v = float(x)
    return v if np.isfinite(v) else 0.0


def map_vs_bits(df: pd.DataFrame) -> Drawn | None:
    """MAP against code length: one line per (method, variant, input), mean over seeds with the
    standard deviation as error bars, and the tie range (mean map_min to mean map_max: what tie order
    alone can do) as a translucent bar behind each point. Points of different lines are spread a
    little along x so the bars do not hide each other."""
    df = prepare_frame(df)
    if "map" not in df or df["map"].dropna().empty:
        return None
    s = summarize(df, ["map", "map_min", "map_max"])
    series = _Series(s)
    bits = sorted(s["n_bits"].unique())
    label = metric_label(df)
    with _style():
        fig = _new_figure()
        ax = fig.subplots()
        n_lines = len(series.order)
        step = min(0.045, 0.25 / max(n_lines - 1, 1))  # log2 units: all lines within ±9% of their length
        handles, labels = [], []
        for i, (t, g) in enumerate(series.groups(s)):
            st = series.style(t)
            shift = 2 ** (step * (i - (n_lines - 1) / 2))
            x = g["n_bits"].to_numpy(float) * shift
            if {"map_min", "map_max"} <= set(g):
                ax.vlines(
                    x,
                    g["map_min"].to_numpy(float),
                    g["map_max"].to_numpy(float),
                    color=st["color"],
                    linewidth=7,
                    alpha=0.22,
                    zorder=1,
                )
            err = g["map_std"].fillna(0.0).to_numpy()
            line = ax.errorbar(
                x,
                g["map"].to_numpy(float),
                yerr=err,
                color=st["color"],
                marker=st["marker"],
                linestyle=st["linestyle"],
                linewidth=1.8,
                markersize=6,
                capsize=3.5,
                zorder=3,
            )
            handles.append(line)
            labels.append(series.label(t, int(g["n"].max())))
        handles += [
            _line([], [], color="#333", marker="|", linestyle="none", markersize=10),
            _mpl().Patch(facecolor="#333", alpha=0.22),
        ]
        labels += ["error bar: std over seeds", "shaded bar: tie range\n(map_min – map_max)"]
        ax.set_xscale("log", base=2)
        ax.set_xticks(bits, [str(b) for b in bits])
        ax.minorticks_off()
        ax.set_xlabel("code length (bits)")
        ax.set_ylabel(f"tie-aware {label}")
        dataset = ", ".join(sorted(set(df["dataset"]))) or "records"
        title = f"{dataset}: tie-aware {label} against code length"
        _finish(
            fig,
            f"{title}\n{_protocol_text(df)} · mean over {_seed_text(df)}",
            handles,
            labels,
            panel=(6.4, 4.2),
            panel_titles=False,
        )
    caption = (
        f"Tie-aware {label} (mean over seeds) against code length, {_protocol_text(df)}. Error bars: "
        "standard deviation over seeds (n in the legend where above 1). Shaded bars: the range of MAP that "
        "the order within groups of equal Hamming distance alone can produce (map_min to map_max)."
    )
    return Drawn("map_vs_bits", title, caption, fig)


def _default_loader() -> ScoresLoader:
    return load_scores


def pr_table(df: pd.DataFrame, scores_loader: ScoresLoader | None = None) -> pd.DataFrame:
    """Precision and recall of the Hamming ball of radius r = 0..B per table cell, mean over seeds.

    Reads each record's scores file (``scores_path``); records without one are left out. Returns
    columns series keys, ``n_bits``, ``radius``, ``precision``, ``recall`` (arrays), ``n`` (seeds).
    """
    df = prepare_frame(df)
    if "scores_path" not in df:
        return pd.DataFrame()
    load = scores_loader or _default_loader()
    rows = []
    for key, g in df.groupby([*SERIES_KEYS, "n_bits"], sort=False):
        curves = []
        for p in g["scores_path"]:
            if not isinstance(p, str) or not p:
                continue
            pr = load(p).get("pr")
            if pr is not None and len(pr.get("precision", [])):
                curves.append((np.asarray(pr["precision"], float), np.asarray(pr["recall"], float)))
        lengths = {len(c[0]) for c in curves}
        if not curves or len(lengths) != 1:
            continue
        rows.append(
            {
                **dict(zip([*SERIES_KEYS, "n_bits"], key, strict=True)),
                "radius": np.arange(lengths.pop()),
                "precision": np.nanmean([c[0] for c in curves], axis=0),
                "recall": np.nanmean([c[1] for c in curves], axis=0),
                "n": len(curves),
            }
        )
    return pd.DataFrame(rows)


def pr_curves(
    df: pd.DataFrame,
    scores_loader: ScoresLoader | None = None,
    bits: list[int] | None = None,
    pr: pd.DataFrame | None = None,
) -> Drawn | None:
    """Precision against recall of the Hamming ball as its radius grows from 0 to B, one panel per code
    length (only ``bits`` when given), mean over queries and seeds; the point at radius 2 (the
    classic "hash lookup" precision) is marked."""
    df = prepare_frame(df)
    pr = pr_table(df, scores_loader) if pr is None else pr
    if pr.empty:
        return None
    lengths = sorted(int(b) for b in pr["n_bits"].unique() if bits is None or int(b) in bits)
    if not lengths:
        return None
    series = _Series(pr)
    with _style():
        fig, axes = _panels(len(lengths))
        handles: dict[str, Any] = {}
        for ax, b in zip(axes, lengths, strict=True):
            for t, g in series.groups(pr[pr["n_bits"] == b]):
                r = g.iloc[0]
                st = series.style(t)
                (line,) = ax.plot(
                    r["recall"], r["precision"], color=st["color"], linestyle=st["linestyle"], linewidth=1.7
                )
                if len(r["radius"]) > 2:
                    ax.plot(
                        r["recall"][2],
                        r["precision"][2],
                        color=st["color"],
                        marker=st["marker"],
                        markersize=6,
                        linestyle="none",
                    )
                handles.setdefault(
                    series.label(t, int(r["n"])),
                    _line([], [], color=st["color"], linestyle=st["linestyle"], marker=st["marker"]),
                )
            ax.set_title(f"{b} bits")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        dataset = ", ".join(sorted(set(df["dataset"]))) or "records"
        title = f"{dataset}: precision–recall of Hamming balls, radius 0 to B"
        _finish(
            fig,
            f"{title}\n{_protocol_text(df)} · mean over queries and {_seed_text(df)} · marker: radius 2",
            list(handles.values()),
            list(handles),
        )
    name = "pr_curves" if bits is None else "pr_" + "_".join(f"{b}b" for b in lengths)
    caption = (
        "Precision and recall of the items within Hamming radius r of the query, r from 0 (top left) to "
        f"the code length (recall 1), one panel per code length, {_protocol_text(df)}; the marker is r = 2."
    )
    return Drawn(name, title, caption, fig)


def _precision_columns(df: pd.DataFrame) -> list[tuple[int, str]]:
    cols = []
    for c in df.columns:
        if c.startswith("p@") and c[2:].isdigit() and not df[c].dropna().empty:
            cols.append((int(c[2:]), c))
    return sorted(cols)


def precision_at_n(df: pd.DataFrame) -> Drawn | None:
    """Tie-aware precision of the top N against N (the ``p@N`` columns: N up to 5,000 or the database
    size), one panel per code length, mean over seeds with std as error bars."""
    df = prepare_frame(df)
    cols = _precision_columns(df)
    if not cols:
        return None
    s = summarize(df, [c for _, c in cols])
    series = _Series(s)
    lengths = sorted(s["n_bits"].unique())
    ns = [n for n, _ in cols]
    with _style():
        fig, axes = _panels(len(lengths))
        handles: dict[str, Any] = {}
        for ax, b in zip(axes, lengths, strict=True):
            for t, g in series.groups(s[s["n_bits"] == b]):
                r = g.iloc[0]
                st = series.style(t)
                y = np.array([r[c] for _, c in cols], float)
                err = np.nan_to_num(np.array([r[c + "_std"] for _, c in cols], float))
                ok = np.isfinite(y)
                ax.errorbar(np.array(ns)[ok], y[ok], yerr=err[ok], capsize=3, linewidth=1.7, markersize=5, **st)
                handles.setdefault(series.label(t, int(r["n"])), _line([], [], **st))
            ax.set_xscale("log")
            ax.set_xticks(ns, [f"{n:,}" for n in ns])
            ax.minorticks_off()
            ax.set_title(f"{b} bits")
            ax.set_xlabel("N (top of the ranking)")
            ax.set_ylabel("precision@N")
            ax.set_ylim(0, 1.02)
        dataset = ", ".join(sorted(set(df["dataset"]))) or "records"
        title = f"{dataset}: tie-aware precision of the top N"
        _finish(
            fig,
            f"{title}\n{_protocol_text(df)} · mean over {_seed_text(df)} · error bars: std over seeds",
            list(handles.values()),
            list(handles),
        )
    caption = (
        "Tie-aware precision@N (the expected share of relevant items among the first N when ties in "
        f"Hamming distance are in random order), one panel per code length, {_protocol_text(df)}."
    )
    return Drawn("precision_at_n", title, caption, fig)


COST = {
    "cost_train": ("train_s", "training time (s)", "training time"),
    "cost_query": ("query_us_per_query", "query time (µs per query, top-100 Hamming search)", "query time"),
}


def _plain(x: float, _pos: object = None) -> str:
    return f"{x:g}"


def _log_x(ax, values: pd.Series) -> None:
    """A log x axis over ``values`` padded by a factor 3 each side, labelled with plain numbers at
    powers of ten (and at 2 and 5 times them when the range is under two decades), no minor labels:
    matplotlib's defaults labelled minor ticks on a narrow range and they ran into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    v = values[np.isfinite(values) & (values > 0)]
    ax.set_xscale("log")
    if not len(v):
        return
    lo, hi = float(v.min()) / 3, float(v.max()) * 3
    ax.set_xlim(lo, hi)
    decades = math.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(_plain) if decades < 7 else ax.xaxis.get_major_formatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def map_vs_cost(df: pd.DataFrame, kind: str = "cost_train") -> Drawn | None:
    """Quality against cost: MAP (mean over seeds, std as vertical bars) against training time
    (``cost_train``) or query time (``cost_query``), log x, one panel per code length. Up and to
    the left is better."""
    column, xlabel, what = COST[kind]
    df = prepare_frame(df)
    if column not in df or "map" not in df or pd.to_numeric(df[column], errors="coerce").dropna().empty:
        return None
    df[column] = pd.to_numeric(df[column], errors="coerce")
    s = summarize(df, ["map", column])
    s = s[np.isfinite(s[column]) & (s[column] > 0)]
    if s.empty:
        return None
    series = _Series(s)
    lengths = sorted(s["n_bits"].unique())
    label = metric_label(df)
    with _style():
        fig, axes = _panels(len(lengths))
        handles: dict[str, Any] = {}
        for ax, b in zip(axes, lengths, strict=True):
            for t, g in series.groups(s[s["n_bits"] == b]):
                r = g.iloc[0]
                st = {**series.style(t), "linestyle": "none"}
                yerr = [_finite_or_zero(r["map_std"])]
                ax.errorbar([r[column]], [r["map"]], yerr=yerr, capsize=3, markersize=8, **st)
                handles.setdefault(series.label(t, int(r["n"])), _line([], [], **st))
            _log_x(ax, s[column])
            ax.set_title(f"{b} bits")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"tie-aware {label}")
        dataset = ", ".join(sorted(set(df["dataset"]))) or "records"
        title = f"{dataset}: tie-aware {label} against {what}"
        _finish(
            fig,
            f"{title}\n{_protocol_text(df)} · mean over {_seed_text(df)} · up and left is better",
            list(handles.values()),
            list(handles),
        )
    caption = (
        f"Tie-aware {label} against {xlabel} (log scale), one panel per code length, {_protocol_text(df)}. "
        "Times were measured on the machine that produced the records (see versions and devices)."
    )
    return Drawn(kind, title, caption, fig)


CURVE_COLUMNS = [*SERIES_KEYS, "n_bits", "seed", "epoch", "seconds", "val_map"]


def curve_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The learning curves of a frame's records (:func:`hashbench.results.tables.load_frame`), read from the
    records' ``curve`` (deep methods, ``DeepHashMethod.learning_curve``): one row per record and
    epoch whose validation MAP was scored, with the training seconds up to that epoch
    (:data:`CURVE_COLUMNS`). Records without a scored curve add nothing."""
    rows: list[dict[str, Any]] = []
    if df is None or df.empty or "record_path" not in df:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    for r in df.itertuples(index=False):
        try:
            curve = read_meta(r.record_path).get("curve") or {}
        except CorruptRecord:
            continue
        seconds = curve.get("seconds") or []
        for epoch, value in zip(curve.get("val_epochs") or [], curve.get("val_map") or [], strict=False):
            if value is None:
                continue
            sec = seconds[epoch - 1] if 0 < epoch <= len(seconds) else None
            row = {k: getattr(r, k) for k in SERIES_KEYS}
            row.update(n_bits=int(r.n_bits), seed=int(r.seed), epoch=int(epoch), val_map=float(value))
            row["seconds"] = float(sec) if sec is not None else math.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def learning_curves(
    df: pd.DataFrame, methods: list[str] | None = None, curves: pd.DataFrame | None = None
) -> Drawn | None:
    """Validation MAP against epoch (left) and against training seconds (right), one row of panels per
    code length, one line per (method, variant, input): the mean over seeds at each scored epoch, with
    a band of one standard deviation when there are several seeds. On the right, a point sits at the
    mean over seeds of the seconds spent in training steps up to that epoch.

    ``methods`` keeps only those methods (default: every method whose records hold a curve);
    ``curves`` is :func:`curve_frame` of ``df`` when already read. The validation part is a part of
    the training set (``validation_fraction``) scored against the rest of it, never the queries.
    """
    c = curve_frame(df) if curves is None else curves
    if methods:
        c = c[c["method"].isin(methods)]
    if c.empty:
        return None
    series = _Series(c)
    lengths = sorted(c["n_bits"].unique())
    with _style():
        mpl = _mpl()
        fig = mpl.Figure(figsize=(6.0, 4.0))
        mpl.Canvas(fig)
        axes = fig.subplots(len(lengths), 2, squeeze=False)
        handles: dict[str, Any] = {}
        for row, b in zip(axes, lengths, strict=True):
            for t, g in series.groups(c[c["n_bits"] == b]):
                st = {**series.style(t), "markersize": 4}
                agg = g.groupby("epoch").agg(
                    val_map=("val_map", "mean"), std=("val_map", "std"), seconds=("seconds", "mean")
                )
                std = agg["std"].fillna(0.0).to_numpy()
                y = agg["val_map"].to_numpy()
                for ax, x in ((row[0], agg.index.to_numpy()), (row[1], agg["seconds"].to_numpy())):
                    ax.plot(x, y, **st)
                    if g["seed"].nunique() > 1:
                        ax.fill_between(x, y - std, y + std, color=st["color"], alpha=0.18, linewidth=0)
                handles.setdefault(series.label(t, int(g["seed"].nunique())), _line([], [], **st))
            row[0].set_title(f"{b} bits, by epoch")
            row[1].set_title(f"{b} bits, by training time")
            row[0].set_xlabel("epoch")
            row[1].set_xlabel("training seconds (steps only)")
            for ax in row:
                ax.set_ylabel("validation MAP")
        dataset = ", ".join(sorted(set(c["dataset"]))) or "records"
        title = f"{dataset}: learning curves"
        _finish(
            fig,
            f"{title}\nvalidation part against the rest of the training set · mean over {_seed_text(c)}, ±1 std",
            list(handles.values()),
            list(handles),
            legend="top",
        )
    caption = (
        "Learning curves of the deep methods: tie-aware MAP (whole database) of the validation part of "
        "the training set (queries) against the training part (database), scored every curve_every "
        "epochs and after the last, never on the test queries; left by epoch, right by the seconds "
        "spent in training steps (validation and scoring excluded, on the machine that produced the "
        "records). Lines: mean over seeds; bands: one standard deviation."
    )
    return Drawn("learning_curves", title, caption, fig)


def published_vs_ours(
    table: pd.DataFrame, title: str = "ours against published", metric: str = "MAP", name: str = "published_vs_ours"
) -> Drawn | None:
    """Ours against published: one point per (method, code length) of a frame with columns
    ``method``, ``bits``, ``published``, ``ours``; colour per method, marker per code length, the
    diagonal where the two agree. Rows with either value missing are left out."""
    t = table.dropna(subset=["published", "ours"]) if len(table) else table
    if t.empty:
        return None
    t = t.assign(bits=t["bits"].astype(int), mname=t["method"].astype(str))
    lengths = sorted(t["bits"].unique())
    markers = dict(zip(lengths, EXTRA_MARKERS, strict=False))
    methods = sorted(dict.fromkeys(t["mname"]), key=lambda m: method_rank(m.lower()))
    with _style():
        fig = _new_figure()
        ax = fig.subplots()
        lo = float(min(t["published"].min(), t["ours"].min()))
        hi = float(max(t["published"].max(), t["ours"].max()))
        pad = 0.05 * max(hi - lo, 0.05)
        lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
        ax.plot([lo, hi], [lo, hi], color="#555", linestyle="--", linewidth=1, zorder=1)
        for r in t.itertuples():
            colour = method_color(r.mname.lower())
            ax.plot(
                r.published,
                r.ours,
                marker=markers[r.bits],
                color=colour,
                markersize=8,
                linestyle="none",
                markeredgecolor="white",
                markeredgewidth=0.6,
                zorder=3,
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"published {metric}")
        ax.set_ylabel(f"ours ({metric}, mean over seeds)")
        handles = [_line([], [], color=method_color(m.lower()), marker="o", linestyle="none") for m in methods]
        handles += [_line([], [], color="#444", marker=markers[b], linestyle="none") for b in lengths]
        handles.append(_line([], [], color="#555", linestyle="--"))
        labels = [*methods, *[f"{b} bits" for b in lengths], "ours = published"]
        _finish(
            fig,
            f"{title}\n{metric}; above the dashed diagonal ours is higher",
            handles,
            labels,
            panel=(4.6, 4.6),
            panel_titles=False,
        )
    caption = (
        f"Our {metric} against the published one, one point per method and code length; on the dashed "
        "diagonal the two agree."
    )
    return Drawn(name, title, caption, fig)


def published_vs_ours_sweep(
    table: pd.DataFrame,
    title: str,
    metric: str = "MAP",
    name: str = "published_vs_ours",
    column: str = "swept value",
) -> Drawn | None:
    """A swept table (columns ``param``, ``bits``, ``published``, ``ours``, ``ours_std``): MAP against
    the swept value, one colour per code length, the published values dashed with open markers and
    ours solid (with a band of one standard deviation over seeds where there are several)."""
    if not len(table) or table["param"].isna().all():
        return None
    t = table.dropna(subset=["param"]).assign(
        bits=lambda d: d["bits"].astype(int), param=lambda d: d["param"].astype(float)
    )
    lengths = sorted(t["bits"].unique())
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    with _style():
        fig = _new_figure()
        ax = fig.subplots()
        handles, labels = [], []
        for i, b in enumerate(lengths):
            g = t[t["bits"] == b].sort_values("param")
            colour = colours[i % len(colours)]
            pub = g.dropna(subset=["published"])
            if len(pub):
                ax.plot(pub["param"], pub["published"], color=colour, linestyle="--", marker="o", markersize=5,
                        markerfacecolor="white", linewidth=1.2)  # fmt: skip
            ours = g.dropna(subset=["ours"])
            if len(ours):
                ax.plot(
                    ours["param"], ours["ours"], color=colour, linestyle="-", marker="o", markersize=5, linewidth=1.6
                )
                std = ours["ours_std"].astype(float) if "ours_std" in ours else None
                if std is not None and std.notna().any():
                    ax.fill_between(ours["param"], ours["ours"] - std.fillna(0), ours["ours"] + std.fillna(0),
                                    color=colour, alpha=0.15, linewidth=0)  # fmt: skip
            handles.append(_line([], [], color=colour, linestyle="-", marker="o"))
            labels.append(f"{b} bits")
        dashed = _line([], [], color="#444", linestyle="--", marker="o", markerfacecolor="white")
        handles += [_line([], [], color="#444", linestyle="-"), dashed]
        labels += ["ours", "published"]
        ax.set_xlabel(column)
        ax.set_ylabel(metric)
        _finish(fig, f"{title}\n{metric} against the swept value", handles, labels, panel=(5.0, 3.4),
                panel_titles=False)  # fmt: skip
    caption = (
        f"{metric} against the swept value: published (dashed, open markers) and ours (solid; mean over "
        "seeds, band of one standard deviation where there are several), one colour per code length."
    )
    return Drawn(name, title, caption, fig)


def _swept_column(reproduction: str, table: str) -> str:
    """The name a reproduction gives its table's swept value ("threshold"), else "swept value"."""
    try:
        sweep = reproductions.reproduction(reproduction).tables[int(table)].sweep
    except Exception:  # noqa: BLE001 - a table of a reproduction this installation does not know
        sweep = None
    return sweep.column if sweep is not None else "swept value"


def _paper_tables(folder: Path) -> list[Drawn]:
    """Ours against published for each paper table ``hashbench paper`` left in a dataset folder:
    ``paper/<reproduction>/table<N>.csv`` (and the older ``paper_table<N>.csv``)."""
    found = [(p, "UHGA paper", p.stem.removeprefix("paper_table"), "") for p in sorted(folder.glob("paper_table*.csv"))]
    found += [
        (p, p.parent.name, p.stem.removeprefix("table"), f"{p.parent.name}_")
        for p in sorted(folder.glob("paper/*/table*.csv"))
    ]
    out = []
    for path, source, n, prefix in found:
        try:
            t = pd.read_csv(path)
        except Exception:  # noqa: BLE001 - a half-written table is not a reason to fail the figures
            continue
        if not {"method", "bits", "published", "ours"} <= set(t.columns):
            continue
        if "param" in t and t["param"].notna().any():  # a sweep (Table 2): MAP against the swept value
            d = published_vs_ours_sweep(
                t,
                title=f"{folder.name}: ours against {source}, Table {n}",
                name=f"published_vs_ours_{prefix}table{n}",
                column=_swept_column(source, n),
            )
            if d is not None:
                out.append(d)
            continue
        d = published_vs_ours(
            t,
            title=f"{folder.name}: ours against {source}, Table {n}",
            metric="MAP",
            name=f"published_vs_ours_{prefix}table{n}",
        )
        if d is not None:
            out.append(d)
    return out


def dataset_figures(
    df: pd.DataFrame,
    folder: str | Path | None = None,
    *,
    scores_loader: ScoresLoader | None = None,
    per_length_pr: bool = False,
    curve_methods: list[str] | None = None,
) -> list[Drawn]:
    """Every figure of one dataset's records, in report order (figures without data are left out).

    ``folder`` (the dataset's output folder) adds the ours-against-published figures of the paper
    tables found there. ``per_length_pr`` adds one PR figure per code length beside the combined one.
    The learning curves (:func:`learning_curves`) are drawn when records hold them, for
    ``curve_methods`` (default: every method that has them).
    """
    if df is None or df.empty:
        return []
    figs: list[Drawn | None] = [map_vs_bits(df)]
    pr = pr_table(df, scores_loader)
    figs.append(pr_curves(df, pr=pr))
    figs.append(precision_at_n(df))
    figs += [map_vs_cost(df, "cost_train"), map_vs_cost(df, "cost_query")]
    figs.append(learning_curves(df, curve_methods))
    if folder is not None:
        figs += _paper_tables(Path(folder))
    if per_length_pr and not pr.empty:
        figs += [pr_curves(df, pr=pr, bits=[int(b)]) for b in sorted(pr["n_bits"].unique())]
    return [f for f in figs if f is not None]


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """A figure as PNG or SVG bytes, deterministic (no date, fixed SVG salt)."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with _style():
        fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


def save_figure(drawn: Drawn, out_dir: str | Path) -> list[Path]:
    """Write a figure as ``<name>.png`` and ``<name>.svg`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    return [
        atomic_write_bytes(out_dir / f"{drawn.name}.{fmt}", figure_bytes(drawn.figure, fmt)) for fmt in ("png", "svg")
    ]


def _is_ours(path: Path) -> bool:
    stem = path.stem
    return path.suffix in (".png", ".svg") and (
        stem in ("map_vs_bits", "pr_curves", "precision_at_n", "cost_train", "cost_query", "learning_curves")
        or (stem.startswith("pr_") and stem.endswith("b"))
        or stem.startswith("published_vs_ours")
    )


def plot_dataset(
    folder: str | Path,
    df: pd.DataFrame | None = None,
    *,
    scores_loader: ScoresLoader | None = None,
    per_length_pr: bool = False,
    curve_methods: list[str] | None = None,
) -> list[Path]:
    """Draw every figure of one dataset folder (``DIR/<dataset>``) into ``DIR/<dataset>/plots/``.

    ``df`` is the frame to draw (default: the folder's records chosen as the tables choose them,
    :func:`hashbench.results.tables.select`). ``per_length_pr`` adds ``pr_<bits>b`` files, one PR panel each;
    ``curve_methods`` chooses the methods of the learning curves (default: all that have them).
    Figures this call did not draw (their data is gone) are removed, so the folder never shows a stale
    figure beside fresh ones. Returns the files written.
    """
    folder = Path(folder)
    if df is None:
        df, _ = select(load_frame(folder))
    drawn = dataset_figures(
        df, folder, scores_loader=scores_loader, per_length_pr=per_length_pr, curve_methods=curve_methods
    )
    out = folder / "plots"
    paths: list[Path] = []
    for d in drawn:
        paths += save_figure(d, out)
    if out.is_dir():
        keep = set(paths)
        for p in out.iterdir():
            if _is_ours(p) and p not in keep:
                p.unlink()
    return paths
