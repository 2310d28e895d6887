"""One self-contained HTML report of a run folder: ``hashbench report --out DIR`` -> ``DIR/report.html``.

Per dataset: the tables (tie-aware MAP as mean ± std over seeds with n, index-order MAP, the tie
range, training time — the same cells as ``map.md``, from :mod:`hashbench.results.tables`), the figures of
:mod:`hashbench.figures.plots` embedded as base64 PNG, the protocol with its split checksums and metric
convention, the commands that produced the records, and the versions and devices. A table of
contents links every section; each section links back.

Self-contained by construction: images are ``data:`` URIs, CSS sits in one ``<style>`` block, there
is no script and no reference to anything outside the file, so it opens the same from a laptop's
disk, a CI artifact or an e-mail. All text from records (method names, variants, commands, notes)
is HTML-escaped. The report carries no clock time of its own, so the same records give the same file.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import InvalidInput
from ..io import atomic_write_text
from ..results.tables import COLLAPSE_MARK, dataset_folders, describe, load_frame, pivot, select
from ..run.scoring import metric_label
from .plots import dataset_figures, figure_bytes

REPORT_NAME = "report.html"

CSS = """
:root { --fg: #1d2330; --muted: #5b6372; --line: #d9dde5; --band: #f5f7fa; --accent: #1f5fa8; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 1.5rem 1.5rem 4rem; }
h1 { font-size: 1.9rem; margin: 0.4rem 0 0.3rem; }
h2 { font-size: 1.5rem; margin: 2.8rem 0 0.6rem; padding-top: 0.8rem; border-top: 3px solid var(--fg); }
h3 { font-size: 1.15rem; margin: 1.8rem 0 0.5rem; }
p, li { max-width: 80ch; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.88em;
       background: var(--band); padding: 0.05em 0.3em; border-radius: 3px; overflow-wrap: anywhere; }
.lead { color: var(--muted); margin-top: 0; }
nav.toc { background: var(--band); border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem 1.2rem; }
nav.toc ol { margin: 0.2rem 0; padding-left: 1.3rem; }
nav.toc > ol > li { margin: 0.35rem 0; font-weight: 600; }
nav.toc ol ol { font-weight: 400; columns: 2; column-gap: 2rem; }
.table-wrap { overflow-x: auto; margin: 0.5rem 0 0.4rem; }
table { border-collapse: collapse; font-size: 0.92rem; }
.tcap { font-weight: 600; margin: 1rem 0 0.3rem; max-width: 34rem; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2.5rem; align-items: flex-start; }
.table-block { max-width: 100%; }
th, td { padding: 0.32rem 0.7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--fg); background: #fff; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--band); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td .sd { color: var(--muted); }
td .flag { color: #b3261e; font-weight: 700; }
.note { color: var(--muted); font-size: 0.9rem; margin: 0.2rem 0 1rem; }
figure { margin: 1.2rem 0 2rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 0.4rem; max-width: 90ch; }
ul.commands li { margin: 0.3rem 0; }
.back { font-size: 0.85rem; margin-top: 1.5rem; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--line);
         padding-top: 0.8rem; }
"""


def esc(value: object) -> str:
    """HTML-escaped text of any value (quotes too, so it is safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _inline(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code> (the lines of tables.describe use them)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def slug(text: str) -> str:
    """An HTML id from a name: letters, digits, '-' and '_' kept, the rest '-'."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-")
    return s or "x"


#: frame columns the tables' text functions read, with the value a hand-made frame lacking one gets.
_DEFAULTS = {
    "variant": "",
    "representation": "",
    "track": "",
    "resolved_params": "",
    "dataset_source": "",
    "label_note": "",
    "collapse_note": "",
    "collapsed": False,
    "command": "",
    "dataset_checksum": "",
}


def _complete(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column the report reads (a frame from older records or built by hand may
    lack some); ``split_seed`` defaults to the seed, as records written before --split-seed mean."""
    df = df.copy()
    for col, value in _DEFAULTS.items():
        if col not in df:
            df[col] = value
    if "split_seed" not in df:
        df["split_seed"] = df["seed"]
    return df


@dataclass
class DatasetSection:
    """What the report shows of one dataset folder: the selected records and the notes on the rest."""

    name: str
    df: pd.DataFrame
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "ds-" + slug(self.name)


_SD = re.compile(r" ± ([0-9.eE+-]+|nan)")


def _cell(text: str) -> str:
    """A table cell's text with the ± part and the collapse mark styled (escaped first)."""
    out = _SD.sub(r' <span class="sd">± \1</span>', esc(text))
    return out.replace(
        esc(COLLAPSE_MARK), f'<span class="flag" title="codes collapsed in some seed">{esc(COLLAPSE_MARK)}</span>'
    )


def html_table(table: pd.DataFrame, caption: str, table_id: str = "") -> str:
    """A pivot table (configuration rows, code-length columns named by number) as an HTML table."""
    if table.empty:
        return ""
    num = [c for c in table.columns if str(c).isdigit()]
    head = "".join(
        f'<th class="num" scope="col">{esc(c)} bits</th>'
        if c in num
        else f'<th{" class=num" if c == "n" else ""} scope="col">{esc(c)}</th>'
        for c in table.columns
    )
    rows = []
    for r in table.itertuples(index=False):
        cells = []
        for c, v in zip(table.columns, r, strict=True):
            text = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
            if c in num or c == "n":
                cells.append(f'<td class="num">{_cell(text)}</td>')
            elif c == "method":
                cells.append(f'<th scope="row">{esc(text)}</th>')
            else:
                cells.append(f"<td>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return table_block(caption, table_id, head, "".join(rows))


def table_block(caption: str, table_id: str, head: str, rows: str) -> str:
    """A table under its caption. The caption is a paragraph, not ``<caption>``: a caption is only as
    wide as its table, so a narrow table (two code lengths) squeezed its caption into a column."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cap_id = f' id="{esc(table_id)}-caption"' if table_id else ""
    label = f' aria-labelledby="{esc(table_id)}-caption"' if table_id else ""
    return (
        f'<div class="table-block"><p class="tcap"{cap_id}>{esc(caption)}</p><div class="table-wrap">'
        f"<table{ident}{label}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div></div>"
    )


def _tables_html(sec: DatasetSection) -> str:
    df = sec.df
    label = metric_label(df)
    parts = [
        html_table(
            pivot(df, "map", ".4f", spread=True),
            f"Tie-aware {label}: mean ± standard deviation over seeds (n = seeds)",
            f"{sec.id}-map",
        )
    ]
    parts.append(
        '<p class="note">Standard deviation with ddof 1; a cell with fewer seeds than its table says '
        "(n=k); † marks codes that collapsed in some seed (see Protocol and split).</p>"
    )
    if "map_index" in df:
        parts.append(
            html_table(
                pivot(df, "map_index", ".4f", spread=True),
                f"{label} with ties broken by database index (the convention of most published code)",
                f"{sec.id}-map-index",
            )
        )
    if {"map_min", "map_max"} <= set(df.columns):
        spread = df.assign(tie_range=df["map_max"] - df["map_min"])
        parts.append(
            html_table(
                pivot(spread, "tie_range", ".4f"),
                "Tie range: map_max − map_min, what the order of equal-distance items alone can do (mean over seeds)",
                f"{sec.id}-ties",
            )
        )
    if "train_s" in df and pd.to_numeric(df["train_s"], errors="coerce").notna().any():
        seconds = pd.to_numeric(df["train_s"], errors="coerce")
        fast = float(seconds.max()) < 10  # shallow methods train in milliseconds: seconds would print 0.00
        timed = df.assign(train_time=seconds * (1000 if fast else 1))
        unit = "milliseconds" if fast else "seconds"
        parts.append(
            html_table(
                pivot(timed, "train_time", ".2f" if fast else ".1f", spread=True),
                f"Training time in {unit} (mean ± std over seeds)",
                f"{sec.id}-train",
            )
        )
    if "query_us_per_query" in df and pd.to_numeric(df["query_us_per_query"], errors="coerce").notna().any():
        parts.append(
            html_table(
                pivot(df, "query_us_per_query", ".1f"),
                "Query time in µs per query (top-100 Hamming search, mean over seeds)",
                f"{sec.id}-query",
            )
        )
    first, rest = parts[:2], [p for p in parts[2:] if p]
    return "\n".join(first) + '<div class="tables">' + "\n".join(rest) + "</div>"


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    return struct.unpack(">II", data[16:24])


def _figures_html(sec: DatasetSection, scores_loader=None) -> tuple[str, list[tuple[str, str]]]:
    """The embedded figures and their (id, title) entries for the table of contents."""
    parts, toc = [], []
    for k, d in enumerate(dataset_figures(sec.df, sec.folder, scores_loader=scores_loader), start=1):
        png = figure_bytes(d.figure, "png")
        w, h = _png_size(png)
        fid = f"{sec.id}-fig-{slug(d.name)}"
        src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        # shown at 100 CSS px per inch of figure (the PNG is drawn at 130 dpi: sharp on high-density screens)
        css_w, css_h = round(w / 1.3), round(h / 1.3)
        parts.append(
            f'<figure id="{fid}"><img src="{src}" width="{css_w}" height="{css_h}" alt="{esc(d.title)}">'
            f"<figcaption><strong>Figure {k}.</strong> {esc(d.caption)} "
            f"<span>(<code>{esc(d.name)}.png</code> / <code>.svg</code> in "
            f"<code>{esc(sec.name)}/plots/</code>)</span></figcaption></figure>"
        )
        toc.append((fid, f"Figure {k}: {d.title.split(': ', 1)[-1]}"))
    return "\n".join(parts), toc


def _protocol_html(sec: DatasetSection) -> str:
    df = sec.df
    items = [line[2:] if line.startswith("- ") else line for line in describe(df)]
    items += list(sec.notes)
    out = ["<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>"]
    seed_col = "split_seed" if "split_seed" in df else "seed"
    rows_ = []
    for (seed, proto), g in df.groupby([seed_col, "protocol"], sort=True):
        queries = int(g["n_queries"].max()) if "n_queries" in g and g["n_queries"].notna().any() else ""
        rows_.append((seed, proto, ", ".join(dict.fromkeys(g["split_checksum"].astype(str))), len(g), queries))
    checks = pd.DataFrame(rows_, columns=["split seed", "protocol", "split checksum (sha256/16)", "records", "queries"])
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(_int_text(v))}</td>" for v in r) + "</tr>" for r in checks.itertuples(index=False)
    )
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in checks.columns)
    out.append(
        table_block(
            "Splits: numbers are comparable exactly when protocol and split checksum match",
            f"{sec.id}-splits",
            head,
            rows,
        )
    )
    return "\n".join(out)


def _int_text(v: object) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _provenance_html(sec: DatasetSection) -> str:
    df = sec.df
    out = []
    if "command" in df:
        ordered = df.sort_values("created", kind="stable") if "created" in df else df
        commands = [c for c in dict.fromkeys(ordered["command"].fillna("").astype(str)) if c]
        if commands:
            out.append("<p>The records were produced by:</p>")
            out.append('<ul class="commands">' + "".join(f"<li><code>{esc(c)}</code></li>" for c in commands) + "</ul>")
    cols = [c for c in ("hashbench_version", "torch_version", "faiss_version", "device") if c in df]
    if cols:
        v = df[cols].fillna("").astype(str).groupby(cols, sort=True).size().reset_index(name="records")
        head = "".join(f'<th scope="col">{esc(c.replace("_version", ""))}</th>' for c in v.columns)
        rows = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>" for r in v.itertuples(index=False))
        out.append(table_block("Versions and devices of the records", f"{sec.id}-versions", head, rows))
    facts = [f"{len(df)} records"]
    if "created" in df and (df["created"] > 0).any():
        t = pd.to_datetime(df.loc[df["created"] > 0, "created"], unit="ns", utc=True)
        facts.append(f"created {t.min():%Y-%m-%d %H:%M} to {t.max():%Y-%m-%d %H:%M} UTC")
    if "dataset_checksum" in df:
        sums = sorted({s for s in df["dataset_checksum"].astype(str) if s})
        if sums:
            facts.append("dataset checksum " + ", ".join(f"`{s}`" for s in sums))
    out.append(f'<p class="note">{_inline("; ".join(facts))}.</p>')
    return "\n".join(out)


def _section_html(sec: DatasetSection, scores_loader=None) -> tuple[str, list[tuple[str, str]]]:
    figures, fig_toc = _figures_html(sec, scores_loader)
    df = sec.df
    methods = ", ".join(dict.fromkeys(df["method"].astype(str)))
    bits = ", ".join(str(b) for b in sorted(df["n_bits"].astype(int).unique()))
    seeds = ", ".join(str(s) for s in sorted(df["seed"].astype(int).unique()))
    toc = [
        (f"{sec.id}-tables", "Tables"),
        (f"{sec.id}-figures", "Figures"),
        *fig_toc,
        (f"{sec.id}-protocol", "Protocol and split"),
        (f"{sec.id}-provenance", "Commands, versions and devices"),
    ]
    body = [
        f'<section id="{sec.id}"><h2>{esc(sec.name)}</h2>',
        f'<p class="lead">Methods {esc(methods)}; code lengths {esc(bits)} bits; seeds {esc(seeds)}. '
        f'Figures: <a href="#{sec.id}-figures">below the tables</a>; protocol and split checksums: '
        f'<a href="#{sec.id}-protocol">after the figures</a>.</p>',
        f'<section id="{sec.id}-tables"><h3>Tables</h3>{_tables_html(sec)}</section>',
        f'<section id="{sec.id}-figures"><h3>Figures</h3>{figures or "<p>No figures: no scores to draw.</p>"}'
        "</section>",
        f'<section id="{sec.id}-protocol"><h3>Protocol and split</h3>{_protocol_html(sec)}</section>',
        f'<section id="{sec.id}-provenance"><h3>Commands, versions and devices</h3>{_provenance_html(sec)}</section>',
        '<p class="back"><a href="#contents">↑ Contents</a></p></section>',
    ]
    return "\n".join(body), toc


def render_report(
    sections: Iterable[DatasetSection],
    title: str = "hashbench report",
    command: str | None = None,
    source: str | None = None,
    scores_loader=None,
) -> str:
    """The report's HTML text for some datasets' selected records (no file is written)."""
    sections = [
        DatasetSection(s.name, _complete(s.df), s.folder, s.notes)
        for s in sections
        if s.df is not None and not s.df.empty
    ]
    bodies, tocs = [], []
    for sec in sections:
        body, toc = _section_html(sec, scores_loader)
        bodies.append(body)
        sub = "".join(f'<li><a href="#{esc(i)}">{esc(t)}</a></li>' for i, t in toc)
        tocs.append(f'<li><a href="#{sec.id}">{esc(sec.name)}</a><ol>{sub}</ol></li>')
    overview = ""
    if sections:
        rows = "".join(
            f'<tr><th scope="row"><a href="#{s.id}">{esc(s.name)}</a></th><td>{esc(s.df["method"].nunique())}</td>'
            f"<td>{esc(', '.join(str(b) for b in sorted(s.df['n_bits'].astype(int).unique())))}</td>"
            f'<td class="num">{esc(s.df["seed"].nunique())}</td><td class="num">{len(s.df)}</td></tr>'
            for s in sections
        )
        head = (
            '<th scope="col">dataset</th><th scope="col">methods</th><th scope="col">code lengths</th>'
            '<th class="num" scope="col">seeds</th><th class="num" scope="col">records</th>'
        )
        overview = table_block("Datasets in this report", "overview", head, rows)
    intro = (
        "Tie-aware MAP (the exact expected average precision when items at equal Hamming distance are in "
        "random order), with the index-order MAP most published code reports and the range tie order alone "
        "can produce. Every number is computed from stored codes; each dataset's section states its protocol, "
        "split checksums and the commands that produced its records."
    )
    src = f" Records from <code>{esc(source)}</code>." if source else ""
    made = (
        f"Written by <code>{esc(command)}</code> with hashbench {esc(__version__)}."
        if command
        else (f"Written by hashbench {esc(__version__)}.")
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style></head>",
            "<body><main>",
            f'<header><h1>{esc(title)}</h1><p class="lead">{esc(intro)}{src}</p></header>',
            '<nav class="toc" id="contents" aria-label="Contents"><strong>Contents</strong><ol>'
            + "".join(tocs)
            + "</ol></nav>",
            overview,
            *bodies,
            f"<footer>{made}</footer>",
            "</main></body></html>",
            "",
        ]
    )


def build_report(
    out: str | Path, dataset: str | None = None, *, command: str | None = None, scores_loader=None
) -> Path:
    """Write ``out/report.html`` (atomically) for every dataset folder under ``out`` with records, or
    only ``dataset``; the records shown are those the tables show (:func:`hashbench.results.tables.select`)."""
    out = Path(out)
    sections = []
    for folder in dataset_folders(out, dataset):
        df, notes = select(load_frame(folder))
        if not df.empty:
            sections.append(DatasetSection(folder.name, df, folder, notes))
    if not sections:
        raise InvalidInput(f"no readable records under {out}; run `hashbench run --out {out} ...` first")
    text = render_report(sections, command=command, source=str(out), scores_loader=scores_loader)
    return atomic_write_text(out / REPORT_NAME, text)
