"""The machinery every reproduction shares: a :class:`Reproduction` is a paper as data (its published
table, method labels, table layouts and claims), and its methods plan the cells, write the
``hashbench run`` commands that produce the missing ones, lay our records beside the published values
and test the claims. A paper's module (e.g. :mod:`hashbench.reproductions.uhga2020`) holds only
what is the paper's and builds one ``REPRODUCTION``.

A cell is a dict with keys method, bits, params ({} = the method's defaults; a sweep: {param: v}),
representation and track. Every method is pure (frames in, frames and strings out) apart from
reading the package's own published table.

**Claims** (:meth:`Reproduction.claims`) are tested on our records by a paired comparison over
queries and seeds (:func:`hashbench.results.stats.paired_difference`), with a verdict from the 95% interval:
*holds* (entirely on the side of the published effect), *does not hold* (entirely on the other
side) or *inconclusive at n seeds* (contains 0). No correction for the number of comparisons is
made: read a single "does not hold" among many "holds" with that in mind.
"""

from __future__ import annotations

import functools
import io
import math
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput, UnknownName
from ..results import markdown
from ..results.display import display_order as _display_order
from ..results.stats import (
    Selector,
    format_p,
    frame_variants,
    match_variants,
    one_configuration,
    paired_difference,
    paired_scores,
    registry_defaults,
    same_params,
    select_rows,
)
from .speedup import SPEEDUP_COLUMNS, SpeedupClaim, overall_verdict
from .speedup import compare as speedup_compare
from .speedup import render as render_speedups
from .speedup import summarise as summarise_speedups

Defaults = Callable[[str], Mapping[str, Any]] | None

FRAME_COLUMNS = ["dataset", "protocol", "method", "variant", "representation", "track", "n_bits", "seed",
                 "split_checksum", "map", "scores_path"]  # fmt: skip
TABLE_COLUMNS = ["table", "method", "param", "bits", "published", "ours", "ours_std", "n_seeds",
                 "ours_index_ties", "input"]  # fmt: skip
CLAIM_COLUMNS = ["claim", "statement", "a", "b", "bits", "published_a", "published_b", "published_effect",
                 "ours_a", "ours_b", "ours_effect", "ci_low", "ci_high", "p_randomisation", "n_seeds",
                 "n_queries", "verdict"]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# The paper as data


@dataclass(frozen=True)
class Sweep:
    """A table that sweeps one parameter of one method (registered name) over ``values``;
    ``column``: the name of the value's column in the rendered table; ``note``: a paragraph under
    its caption (how the value is read)."""

    method: str
    param: str
    values: tuple[float, ...]
    column: str = "value"
    note: str = ""


@dataclass(frozen=True)
class Table:
    """One published table: its caption, the paper labels of its rows (a sweep's table has none)
    and whether the reproduction's reference methods are shown first where they were run."""

    title: str
    methods: tuple[str, ...] = ()
    sweep: Sweep | None = None
    reference_rows: bool = False


@dataclass(frozen=True)
class Claim:
    """ "``a`` beats each of ``b`` at every length" (registered names), the published effect read
    from ``table``."""

    key: str
    statement: str
    a: str
    b: tuple[str, ...]
    table: int
    #: hashbench's own extension of the paper's comparison (methods published after it): no
    #: published effect; the b methods' cells are part of ``table``'s plan and shown last in it
    extension: bool = False


@dataclass(frozen=True)
class BestValueClaim:
    """ "The best value of ``table``'s sweep beats the runner-up": per length, the published best
    value against the strongest other value of our runs, and over all lengths (per-query scores of
    the lengths concatenated) the value with the best published mean against ours strongest other."""

    key: str
    statement: str
    table: int


@dataclass(frozen=True)
class PlannedRun:
    """One ``hashbench run`` that produces missing cells: its options as values.
    ``representation`` None: the methods take images (no --features or --track)."""

    dataset: str
    methods: tuple[str, ...]
    representation: str | None
    track: str | None
    bits: tuple[int, ...]
    seeds: tuple[int, ...]
    out: str
    sweep: str | None = None  # the --set item of a sweep, METHOD.PARAM=V1,V2,...
    data_root: str | None = None
    extra: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()  # further --set items (a speed-up claim's validation part and curve)

    @property
    def train_stages(self) -> str | None:
        """K of a fine-tuning regime ``finetune:K`` (its runs say --train-stages K), else None."""
        t = str(self.track)
        return t.split(":", 1)[1] if self.representation is not None and t.startswith("finetune:") else None

    def argv(self) -> list[str]:
        """The arguments after ``hashbench``."""
        args = ["run", "--dataset", self.dataset, "--methods", ",".join(self.methods)]
        if self.train_stages is not None:
            args += ["--features", str(self.representation), "--train-stages", self.train_stages]
        elif self.representation is not None:
            args += ["--features", self.representation, "--track", str(self.track)]
        args += ["--bits", ",".join(map(str, self.bits)), "--seeds", ",".join(map(str, self.seeds)), "--out", self.out]
        for item in ([self.sweep] if self.sweep else []) + list(self.sets):
            args += ["--set", item]
        if self.data_root:
            args += ["--data-root", str(self.data_root)]
        return args + list(self.extra)

    def command_line(self) -> str:
        return shlex.join(["hashbench", *self.argv()])

    @property
    def set_items(self) -> list[str]:
        """Every --set item of the run (the sweep's first)."""
        return ([self.sweep] if self.sweep else []) + list(self.sets)


@dataclass(frozen=True)
class Reproduction:
    """A published paper's tables and claims, as data; the methods reproduce them from records.

    ``paper_names``: the paper's labels -> registered names; ``datasets``: dataset -> {"metric":
    label, "topk": K or None, "published_metric": the published CSV's metric}; ``tables``: number ->
    :class:`Table`; ``claims``: :class:`Claim` and :class:`BestValueClaim` in report order;
    ``published_file``: the CSV (columns table, method, param, dataset, metric, bits, value, note)
    in ``package``'s ``data`` folder; ``short_name`` names the paper in captions ("UHGA paper");
    ``paper_input``: the paper's own input (gaps are expected where ours differs)."""

    name: str
    title: str
    citation: str
    short_name: str
    package: str
    published_file: str
    paper_names: Mapping[str, str]
    datasets: Mapping[str, Mapping[str, Any]]
    tables: Mapping[int, Table]
    claims: tuple[Claim | BestValueClaim | SpeedupClaim, ...] = ()
    bits: tuple[int, ...] = (16, 32, 64, 128)
    reference_methods: tuple[str, ...] = ()
    #: display labels of methods that are not the paper's (an extension claim's b methods) -> names
    extension_names: Mapping[str, str] = field(default_factory=dict)
    default_representation: str = "cnn:efficientnet-lite0"
    default_track: str = "features"
    paper_input: str = "the paper's"
    labels: Mapping[str, str] = field(init=False)

    def __post_init__(self):
        names = {**self.extension_names, **self.paper_names}
        object.__setattr__(self, "labels", {v: k for k, v in names.items()})

    # -- published values and names ----------------------------------------------------------

    def published(self) -> pd.DataFrame:
        """The published values: columns table, method (paper label), param (a sweep's value, else
        NaN), dataset, metric, bits, value (NaN where unreadable), note. Read from the package's data."""
        return pd.read_csv(io.StringIO(_read_text(self.package, self.published_file)))

    def check_dataset(self, dataset: str) -> Mapping[str, Any]:
        if dataset not in self.datasets:
            raise UnknownName(f"the {self.short_name} reports {', '.join(self.datasets)}; got dataset {dataset!r}")
        return self.datasets[dataset]

    def label(self, method: str) -> str:
        """The paper's label of a registered method; others upper-cased."""
        return self.labels.get(method, method.upper())

    def extension_methods(self, table: int) -> list[str]:
        """The methods an extension claim compares with on ``table`` (not the paper's), in order."""
        out: list[str] = []
        for c in self.claims:
            if isinstance(c, Claim) and c.extension and c.table == table:
                out += [m for m in c.b if m not in out]
        return out

    def claim_statements(self) -> dict[str, str]:
        return {c.key: c.statement for c in self.claims}

    def input_for(self, method: str, representation: str | None = None, track: str | None = None) -> tuple[str, str]:
        """The (representation, track) a method's records of this reproduction have. On a
        fine-tuning regime (``finetune:K``) the methods that cannot fine-tune backbone stages (no
        ``train_stages`` parameter) keep the features track: the regime changes only what the deep
        methods train."""
        representation = self.default_representation if representation is None else representation
        track = self.default_track if track is None else track
        if str(track).startswith("finetune:") and "train_stages" not in _params_of(method):
            return representation, "features"
        return representation, track

    # -- the plan: which cells each table needs, what is missing, the commands -----------------

    def _check_tables(self, tables: Iterable[int]) -> list[int]:
        tables = sorted(set(tables))
        bad = set(tables) - set(self.tables)
        if bad:
            raise InvalidInput(f"the {self.short_name} has Tables {_and(self.tables)}; got {sorted(bad)}")
        return tables

    def required_cells(
        self,
        dataset: str,
        *,
        representation: str | None = None,
        track: str | None = None,
        tables: Iterable[int] | None = None,
        bits: Iterable[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Every cell the tables need: one dict per (method, bits, params, input) with keys method,
        bits, params, representation, track and tables (the tables that show it). Tables share
        their common cells; the sweeps' cells come next, and last (when ``tables`` is None: every
        table) the learning-curve cells of the speed-up claims (:mod:`.speedup`), with ``tables``
        empty and ``runtime`` holding what their runs must also set."""
        self.check_dataset(dataset)
        speedups = tables is None
        tables = self._check_tables(self.tables if tables is None else tables)
        bits = [int(b) for b in (self.bits if bits is None else bits)]
        cells: dict[tuple, dict[str, Any]] = {}

        def add(method: str, b: int, params: dict[str, Any], table: int) -> None:
            rep, trk = self.input_for(method, representation, track)
            key = (method, b, _params_key(params), rep, trk)
            cell = cells.setdefault(
                key,
                {"method": method, "bits": b, "params": dict(params), "representation": rep, "track": trk,
                 "tables": ()},
            )  # fmt: skip
            cell["tables"] = tuple(sorted({*cell["tables"], table}))

        for t in tables:
            if self.tables[t].sweep is None:
                for lab in self.tables[t].methods:
                    for b in bits:
                        add(self.paper_names[lab], b, {}, t)
                for method in self.extension_methods(t):
                    for b in bits:
                        add(method, b, {}, t)
        for t in tables:
            sweep = self.tables[t].sweep
            if sweep is not None:
                for v in sweep.values:
                    for b in bits:
                        add(sweep.method, b, {sweep.param: v}, t)
        for c in self.claims if speedups else ():
            if isinstance(c, SpeedupClaim):
                for method in (c.a, c.b):
                    rep, trk = self.input_for(method, representation, track)
                    for b in bits:
                        key = (method, b, _params_key(c.params), rep, trk)
                        cells.setdefault(
                            key,
                            {"method": method, "bits": b, "params": dict(c.params), "representation": rep,
                             "track": trk, "tables": (), "runtime": dict(c.runtime)},
                        )  # fmt: skip
        return list(cells.values())

    def missing_cells(
        self,
        frame: pd.DataFrame | None,
        dataset: str,
        seeds: Iterable[int] = (0,),
        *,
        representation: str | None = None,
        track: str | None = None,
        tables: Iterable[int] | None = None,
        defaults: Defaults = registry_defaults,
    ) -> list[dict[str, Any]]:
        """The required cells lacking a record for some of ``seeds``, each with ``missing_seeds``. A
        sweep cell whose value is the method's default is satisfied by default-variant records."""
        seeds = [int(s) for s in seeds]
        index = Cells(for_dataset(frame, dataset), defaults)
        out = []
        for cell in self.required_cells(dataset, representation=representation, track=track, tables=tables):
            rows = index.rows(cell)
            have = set(rows["seed"].astype(int)) if len(rows) else set()
            lacking = [s for s in seeds if s not in have]
            if lacking:
                out.append({**cell, "missing_seeds": lacking})
        return out

    def runs(
        self,
        dataset: str,
        out: str,
        *,
        frame: pd.DataFrame | None = None,
        seeds: Iterable[int] = (0,),
        representation: str | None = None,
        track: str | None = None,
        tables: Iterable[int] | None = None,
        data_root: str | None = None,
        extra: Sequence[str] = (),
        defaults: Defaults = registry_defaults,
    ) -> list[PlannedRun]:
        """The runs that produce the missing cells (every cell when ``frame`` is None).

        One run per input for the default-parameter cells, one per sweep. A run covers the union of
        its cells' methods, lengths and seeds: the runner skips the cells that already have a record,
        so nothing finished is rerun. A sweep value equal to the method's default is left to the
        default cell's run when that runs too. ``extra``: further arguments of every command line
        (e.g. ``["--threads", "2"]``)."""
        seeds = [int(s) for s in seeds]
        kw = {"representation": representation, "track": track, "tables": tables}
        if frame is None:
            cells = [{**c, "missing_seeds": seeds} for c in self.required_cells(dataset, **kw)]
        else:
            cells = self.missing_cells(frame, dataset, seeds, defaults=defaults, **kw)
        default_cells = {(c["method"], c["bits"], c["representation"], c["track"]) for c in cells if not c["params"]}
        groups: dict[tuple, dict[str, set]] = {}
        for c in cells:
            params = c["params"]
            if c.get("runtime"):  # a speed-up claim's curves: one run per input, every --set spelled out
                key = (c["representation"], c["track"], "", "curves")
                g = groups.setdefault(key, {"methods": set(), "bits": set(), "seeds": set(), "values": set()})
                g["methods"].add(c["method"])
                g["bits"].add(c["bits"])
                g["seeds"].update(c["missing_seeds"])
                g["values"].update(f"{c['method']}.{k}={fmt_value(v)}" for k, v in {**params, **c["runtime"]}.items())
                continue
            if params:
                dflt = defaults(c["method"]) if defaults else {}
                if (c["method"], c["bits"], c["representation"], c["track"]) in default_cells and same_params(
                    {}, params, dflt
                ):
                    continue  # produced by the default cell's run
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
        runs = []
        for (rep, trk, sweep_method, param), g in sorted(
            groups.items(), key=lambda kv: (kv[0][3] == "curves", kv[0][2] != "", kv[0][0] == "images")
        ):
            sweep, sets = None, ()
            if sweep_method:
                sweep = f"{sweep_method}.{param}=" + ",".join(fmt_value(v) for v in sorted(g["values"]))
            elif param == "curves":  # the --set items grouped by method, in display order
                order = {m: i for i, m in enumerate(_display_order(g["methods"]))}
                sets = tuple(sorted(g["values"], key=lambda item: (order[item.split(".", 1)[0]], item)))
            runs.append(
                PlannedRun(
                    dataset=dataset,
                    methods=tuple(_display_order(g["methods"])),
                    representation=None if rep == "images" else rep,
                    track=None if rep == "images" else trk,
                    bits=tuple(sorted(g["bits"])),
                    seeds=tuple(sorted(g["seeds"])),
                    out=str(out),
                    sweep=sweep,
                    data_root=data_root,
                    extra=tuple(extra),
                    sets=sets,
                )
            )
        return runs

    def commands(self, dataset: str, out: str, **kw) -> list[str]:
        """The ``hashbench run`` command lines of :meth:`runs` (same arguments)."""
        return [r.command_line() for r in self.runs(dataset, out, **kw)]

    # -- tables beside the published values ----------------------------------------------------

    def paper_table(
        self,
        frame: pd.DataFrame,
        published_values: pd.DataFrame | None,
        table: int,
        dataset: str,
        *,
        representation: str | None = "",
        track: str | None = None,
        defaults: Defaults = registry_defaults,
    ) -> pd.DataFrame:
        """One published table for one dataset in long form: per method (paper label), swept value
        and code length, the published MAP, ours (tie-aware, mean and standard deviation over seeds,
        the number of seeds), ours with ties broken by index, the gap (ours - published) and our input.

        ``representation=None``: one row per input each method was run on (never averaged across
        inputs), instead of the planned input only (the default, ``""``: the reproduction's). A cell
        we have no record for has ``n_seeds == 0`` and NaN values."""
        self.check_dataset(dataset)
        if table not in self.tables:
            raise InvalidInput(f"the {self.short_name} has Tables {_and(self.tables)}; got {table!r}")
        representation = self.default_representation if representation == "" else representation
        layout = self.tables[table]
        pub = self.published() if published_values is None else published_values
        pub = pub[(pub["table"] == table) & (pub["dataset"] == dataset)]
        ours = for_dataset(frame, dataset)
        index = Cells(ours, defaults)
        bits_list = sorted(int(b) for b in pub["bits"].unique())

        def inputs_of(method: str) -> list[tuple[str, str]]:
            if representation is not None:
                return [self.input_for(method, representation, track)]
            mine = ours[ours["method"] == method] if len(ours) else ours
            found = sorted(set(zip(mine["representation"], mine["track"], strict=True))) if len(mine) else []
            return found or [self.input_for(method)]

        def row(lab: str, method: str, params: dict, v: float, b: int, rep: str, trk: str) -> dict[str, Any]:
            cell = {"method": method, "bits": b, "params": params, "representation": rep, "track": trk}
            return {"table": table, "method": lab, "param": v, "bits": b,
                    "published": published_value(pub, lab, b, None if params == {} else v),
                    **_summary(index.rows(cell)), "input": f"{rep}/{trk}"}  # fmt: skip

        rows = []
        if layout.sweep is not None:
            s = layout.sweep
            for v in s.values:
                for rep, trk in inputs_of(s.method):
                    rows += [row(self.label(s.method), s.method, {s.param: v}, v, b, rep, trk) for b in bits_list]
        else:
            labels = list(dict.fromkeys(pub["method"]))
            if layout.reference_rows:
                present = set(ours["method"]) if len(ours) else set()
                labels = [self.label(m) for m in self.reference_methods if m in present] + labels
            labels += [self.label(m) for m in self.extension_methods(table)]  # not the paper's: last
            names = {**self.extension_names, **self.paper_names}
            for lab in labels:
                method = names.get(lab, lab.lower())
                for rep, trk in inputs_of(method):
                    rows += [row(lab, method, {}, np.nan, b, rep, trk) for b in bits_list]
        out = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        out["gap"] = out["ours"] - out["published"]
        return out

    def all_tables(
        self,
        frame: pd.DataFrame,
        dataset: str,
        *,
        representation: str | None = "",
        track: str | None = None,
        defaults: Defaults = registry_defaults,
    ) -> dict[str, pd.DataFrame]:
        """Every table beside the published values: ``{"table2": ..., ...}`` (each as
        :meth:`paper_table` returns it)."""
        kw = {"representation": representation, "track": track, "defaults": defaults}
        return {f"table{t}": self.paper_table(frame, None, t, dataset, **kw) for t in sorted(self.tables)}

    def render_paper_table(self, t: pd.DataFrame, table: int, dataset: str, metric: str | None = None) -> str:
        """Markdown of one :meth:`paper_table`: a row per method (a sweep: per value), for each code
        length 'published / ours' (ours ± the standard deviation over seeds where there are several),
        then the gaps (ours - published)."""
        metric = metric or self.check_dataset(dataset)["metric"]
        sweep = self.tables[table].sweep
        full = int(t["n_seeds"].max()) if len(t) else 0
        wide: dict[tuple, dict] = {}
        gaps: dict[tuple, dict] = {}
        for r in t.itertuples():
            first = (sweep.column, fmt_value(float(r.param))) if sweep else ("method", r.method)
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
        if sweep and t["input"].nunique() <= 1:  # one input: said once in the text, not on every row
            for d in (*wide.values(), *gaps.values()):
                d.pop("our input", None)
        body, gap_body = pd.DataFrame(list(wide.values())), pd.DataFrame(list(gaps.values()))
        seeds = f"mean ± standard deviation over {full} seeds" if full > 1 else "one seed"
        return (
            f"# {self.short_name} {self.tables[table].title}: {dataset}, {metric}\n\n"
            f"Each cell: published / ours (tie-aware {metric}, {seeds}; '(n=k)' marks a cell with fewer seeds). "
            f"Published values: {self.citation}. Where 'our input' differs from the paper's ({self.paper_input}), "
            "gaps are expected."
            + (f"\n\n{sweep.note}" if sweep and sweep.note else "")
            + (
                f"\n\n{_and_names([self.label(m) for m in self.extension_methods(table)])} came after the paper "
                "(no published value): hashbench's own extension of its comparison."
                if self.extension_methods(table)
                else ""
            )
            + "\n\n" + body.to_markdown(index=False, disable_numparse=True)
            + "\n\nGap, ours - published:\n\n" + gap_body.to_markdown(index=False, disable_numparse=True) + "\n"
        )  # fmt: skip

    # -- claims with verdicts ------------------------------------------------------------------

    def test_claims(
        self,
        frame: pd.DataFrame,
        scores_loader: Callable[[str], Mapping[str, Any]],
        dataset: str,
        seeds: Iterable[int] | None = None,
        *,
        representation: str | None = "",
        track: str | None = None,
        n_boot: int = 10000,
        n_perm: int = 10000,
        rng: int = 0,
        defaults: Defaults = registry_defaults,
    ) -> pd.DataFrame:
        """Each claim tested on our records: one row per comparison (a vs b at one length, or over
        all lengths for a best-value claim), in :data:`CLAIM_COLUMNS`: the cells as selectors, the
        published values and effect (a - b), ours (mean over seeds of per-seed MAP), the 95% interval
        (bootstrap over queries and seeds), the randomisation p-value, seeds, queries, the verdict
        (:func:`claim_verdict`). ``representation`` and ``track``: one input (default, ``""`` and
        None: the reproduction's). ``seeds``: the seeds to use (None: every seed both cells have).
        ``scores_loader(scores_path)`` returns a dict with ``"per_query": {"ap": array}``."""
        self.check_dataset(dataset)
        if representation == "":
            representation = self.default_representation
        if track is None:
            track = self.default_track
        if not representation or not track:
            raise InvalidInput(
                "claims compare one input: give representation and track (default "
                f"{self.default_representation}/{self.default_track})"
            )
        seeds = None if seeds is None else [int(s) for s in seeds]
        pub = self.published()
        pub = pub[pub["dataset"] == dataset]
        index = Cells(for_dataset(frame, dataset), defaults)
        gen = np.random.default_rng(rng)
        statements = self.claim_statements()

        def cell(method: str, params: dict | None = None) -> dict[str, Any]:
            rep, trk = self.input_for(method, representation, track)
            return {"method": method, "params": dict(params or {}), "representation": rep, "track": trk}

        def pv(table: int, method: str, b: int) -> float:
            return published_value(pub[pub["table"] == table], self.label(method), b)

        def compare(claim, cell_a, cell_b, bits, pub_a, pub_b):
            return claim_row(claim, statements[claim], index, scores_loader, cell_a, cell_b, bits, pub_a, pub_b,
                             seeds=seeds, gen=gen, n_boot=n_boot, n_perm=n_perm)  # fmt: skip

        rows = []
        for c in self.claims:
            if isinstance(c, SpeedupClaim):  # tested on learning curves: test_speedups
                continue
            if isinstance(c, Claim):
                for b in c.b:
                    for bits in self.bits:
                        rows.append(compare(c.key, cell(c.a), cell(b), [bits], pv(c.table, c.a, bits),
                                            pv(c.table, b, bits)))  # fmt: skip
                continue
            # the published best value against the strongest other value of ours
            sweep = self.tables[c.table].sweep
            sp = pub[pub["table"] == c.table].assign(param=lambda d: d["param"].astype(float))
            if not len(sp):
                continue
            mine_all = self.paper_table(
                frame, None, c.table, dataset, representation=representation, track=track, defaults=defaults
            )
            for bits_group in [[b] for b in self.bits] + [list(self.bits)]:
                pub_mean = sp[sp["bits"].isin(bits_group)].groupby("param")["value"].mean().sort_values(ascending=False)
                best, runner_up = float(pub_mean.index[0]), float(pub_mean.index[1])
                mine = mine_all[mine_all["bits"].isin(bits_group) & (mine_all["n_seeds"] > 0)]
                lengths = mine.groupby("param")["bits"].nunique()
                ours_mean = mine.groupby("param")["ours"].mean()[lengths == len(bits_group)]  # run at every length
                others = ours_mean.drop(index=[v for v in ours_mean.index if math.isclose(v, best)])
                rival = float(others.idxmax()) if len(others) else runner_up
                row = compare(
                    c.key,
                    cell(sweep.method, {sweep.param: best}),
                    cell(sweep.method, {sweep.param: rival}),
                    bits_group,
                    float(pub_mean.iloc[0]),
                    float(pub_mean.get(rival, np.nan)),
                )
                row["published_effect"] = float(pub_mean.iloc[0] - pub_mean.iloc[1])  # best minus published runner-up
                row["verdict"] = claim_verdict(row["published_effect"], row["ci_low"], row["ci_high"], row["n_seeds"])
                rows.append(row)
        return pd.DataFrame(rows, columns=CLAIM_COLUMNS)

    def test_speedups(
        self,
        frame: pd.DataFrame,
        dataset: str,
        seeds: Iterable[int] | None = None,
        *,
        representation: str | None = "",
        track: str | None = None,
        defaults: Defaults = registry_defaults,
        read_curve: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> pd.DataFrame:
        """Each speed-up claim (:class:`~hashbench.reproductions.speedup.SpeedupClaim`) tested on
        the learning curves of our records, per length: two rows (epochs, seconds) of
        :data:`~hashbench.reproductions.speedup.SPEEDUP_COLUMNS`. ``read_curve(record_path)``
        returns a record's ``curve`` (default: read from the record)."""
        self.check_dataset(dataset)
        representation = self.default_representation if representation == "" else representation
        read_curve = read_curve or _record_curve
        seeds = None if seeds is None else [int(s) for s in seeds]
        index = Cells(for_dataset(frame, dataset), defaults)
        statements = self.claim_statements()
        rows: list[dict[str, Any]] = []
        for c in self.claims:
            if not isinstance(c, SpeedupClaim):
                continue
            cells = []
            for method in (c.a, c.b):
                rep, trk = self.input_for(method, representation, track)
                cells.append({"method": method, "params": dict(c.params), "representation": rep, "track": trk})
            for b in self.bits:
                ra, rb = (index.rows({**cell, "bits": b}) for cell in cells)
                names = (cell_name(cells[0]), cell_name(cells[1]))
                rows += speedup_compare(c, statements[c.key], ra, rb, b, names, read_curve, seeds)
        return pd.DataFrame(rows, columns=SPEEDUP_COLUMNS)

    def summarise_claims(self, table: pd.DataFrame) -> pd.DataFrame:
        """One row per claim: ``holds`` where every comparison holds, ``does not hold`` where any does
        not, otherwise ``inconclusive at n seeds`` (or ``incomplete`` where cells were not run)."""
        statements = self.claim_statements()
        several_b = {c.key for c in self.claims if isinstance(c, Claim) and len(c.b) > 1}
        out = []
        for claim, g in table.groupby("claim", sort=False):
            counts = g["verdict"].map(lambda v: "inconclusive" if v.startswith("inconclusive") else v).value_counts()
            places = [
                f"{str(r.b).split('@')[0]} at {r.bits}" if claim in several_b else f"{r.bits}" for r in g.itertuples()
            ]
            verdict = overall_verdict(g["verdict"], g["n_seeds"], places, "comparisons")
            detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
            out.append({"claim": claim, "statement": statements.get(claim, claim), "verdict": verdict,
                        "comparisons": len(g), "detail": detail})  # fmt: skip
        return pd.DataFrame(out, columns=["claim", "statement", "verdict", "comparisons", "detail"])

    def claim_overview(
        self,
        table: pd.DataFrame,
        speedups: pd.DataFrame | None = None,
        *,
        regime: str = "",
        run_command: str | None = None,
    ) -> pd.DataFrame:
        """The short table ``claims.md`` opens with, one row per claim in report order: the claim,
        the regime, the verdict, the deciding effect with its 95% interval (the comparison that
        failed, or else the weakest one: lowest interval bound) and a one-line reason. A claim not
        (fully) run names ``run_command``, the command that runs its cells."""
        summary = self.summarise_claims(table).set_index("claim") if len(table) else pd.DataFrame()
        speed = speedups if speedups is not None else pd.DataFrame(columns=SPEEDUP_COLUMNS)
        speed_verdicts = summarise_speedups(speed) if len(speed) else {}
        several_b = {c.key for c in self.claims if isinstance(c, Claim) and len(c.b) > 1}
        todo = f"; run `{run_command}`" if run_command else ""
        out = []
        for c in self.claims:
            if isinstance(c, SpeedupClaim):
                g = speed[(speed["claim"] == c.key) & (speed["unit"] == "epochs")]
                verdict = speed_verdicts.get(c.key, "not run")
                unit = "epochs"
            else:
                g = table[table["claim"] == c.key] if len(table) else table
                verdict = summary.loc[c.key, "verdict"] if c.key in summary.index else "not run"
                unit = ""
            ran = g[g["n_seeds"] > 0] if len(g) else g
            effect, reason = "—", ""
            if len(ran):
                failed = ran[ran["verdict"] == "does not hold"]
                pick = (failed if len(failed) else ran).sort_values("ci_low" if not len(failed) else "ci_high")
                r = pick.iloc[0]
                where = f"{r['bits']} bits" if str(r["bits"]).isdigit() else str(r["bits"]).replace("mean", "mean of")
                if c.key in several_b:
                    where = f"vs {str(r['b']).split('@')[0]} at {where}"
                else:
                    where = f"at {where}"
                if unit:
                    lo_hi = "—" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]"
                    effect = f"{r['ours_effect']:+.1f} epochs {lo_hi} {where}"
                else:
                    lo_hi = "—" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
                    effect = f"{r['ours_effect']:+.4f} {lo_hi} {where}"
            counts = g["verdict"].map(lambda v: "inconclusive" if v.startswith("inconclusive") else v).value_counts()
            n = len(g)
            if verdict == "not run":
                reason = "no records yet" + todo
            elif verdict.startswith("incomplete"):
                reason = f"{counts.get('not run', 0)} of {n} comparisons not run" + todo
            elif verdict == "holds":
                reason = f"every interval ({n}) lies on the claimed side of 0"
            elif verdict.startswith("does not hold"):
                reason = f"{counts.get('does not hold', 0)} of {n} intervals lie on the other side of 0"
            else:
                reason = (
                    f"{counts.get('inconclusive', 0)} of {n} intervals contain 0 (more seeds could decide), "
                    f"{counts.get('holds', 0)} hold"
                )
            if unit and len(ran):
                secs = speed[(speed["claim"] == c.key) & (speed["unit"] == "seconds")]
                sv = secs["verdict"]
                reason += f"; in training seconds: {int((sv == 'holds').sum())} of {len(secs)} lengths faster"
            out.append({"claim": c.statement, "regime": regime or "—", "verdict": verdict,
                        "effect [95% CI]": effect, "reason": reason})  # fmt: skip
        return pd.DataFrame(out, columns=["claim", "regime", "verdict", "effect [95% CI]", "reason"])

    def render_claims_markdown(
        self,
        table: pd.DataFrame,
        dataset: str,
        *,
        command: str | None = None,
        speedups: pd.DataFrame | None = None,
        regime: str = "",
        run_command: str | None = None,
    ) -> str:
        """``claims.md``: a short table (claim, regime, verdict, effect, reason: :meth:`claim_overview`),
        then the verdict of each claim with its counts, every comparison with the published effect and
        ours with its 95% interval, and the speed-up claims' times to target."""
        metric = self.check_dataset(dataset)["metric"]
        summary = self.summarise_claims(table)
        overview = self.claim_overview(table, speedups, regime=regime, run_command=run_command)
        detail = pd.DataFrame({
            "claim": table["claim"],
            "a vs b": table["a"].str.split("@").str[0] + " vs " + table["b"].str.split("@").str[0],
            "bits": table["bits"],
            "published a - b": table["published_effect"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
            "ours a - b": table["ours_effect"].map(lambda v: "—" if pd.isna(v) else f"{v:+.4f}"),
            "95% CI": ["—" if pd.isna(lo) else f"[{lo:+.4f}, {hi:+.4f}]"
                       for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)],
            "p": table["p_randomisation"].map(format_p), "seeds": table["n_seeds"].astype(str),
            "verdict": table["verdict"],
        })  # fmt: skip
        inputs = sorted({a.split("@", 1)[1] for a in (*table["a"], *table["b"]) if "@" in a})
        best = [self.tables[c.table].sweep.column for c in self.claims if isinstance(c, BestValueClaim)]
        published_note = (
            f"- published a - b: from the paper's Tables {min(self.tables)}-{max(self.tables)} ({self.citation})"
        )
        if best:
            published_note += (
                f"; for the {best[0]} claim, the published best value minus the published runner-up, while ours "
                "compares the best value with the strongest other value of our runs (b)."
            )
        else:
            published_note += "."
        lines = [
            f"# Claims of the {self.short_name} on {dataset} ({metric})", "",
            overview.to_markdown(index=False, disable_numparse=True), "",
            "Effect: ours a minus b (MAP) for the comparisons, epochs saved for the speed-up claims; the "
            "deciding comparison is shown (the one that failed, else the weakest). Details follow.", "",
            "## Verdicts and their counts", "",
            summary[["statement", "verdict", "detail"]].to_markdown(index=False, disable_numparse=True), "",
            "## Every comparison", "",
            "a minus b; ours: tie-aware AP per query, mean over seeds.", "",
            detail.to_markdown(index=False, disable_numparse=True), "",
            published_note,
            "- 95% CI: paired bootstrap over queries (and over seeds, two-level, where there are several); p: "
            "two-sided paired randomisation (sign-flip) test.",
            "- verdict: holds = the interval lies entirely on the side of the published effect; does not hold = "
            "entirely on the other side; inconclusive = it contains 0 (more seeds or queries could decide). No "
            "correction for the number of comparisons.",
            "- our inputs: " + (", ".join(inputs) or "—") + f" (the paper: {self.paper_input}).",
        ]  # fmt: skip
        speed_claims = [c for c in self.claims if isinstance(c, SpeedupClaim)]
        if speed_claims:
            c0 = speed_claims[0]
            lines += [
                "", "## Speed of learning", "",
                f"Learning curves recorded with {c0.validation_fraction:g} of the training set held out "
                f"(validation MAP every {c0.curve_every} epoch{'s' if c0.curve_every != 1 else ''}, never "
                f"on the queries; the cells carry `validation_fraction={c0.validation_fraction:g}`, the input "
                f"is the claims' regime). Target: {c0.fraction:g} of the lower final validation MAP of a and b, per "
                "seed; time to target: the first scored epoch at or above it, and the training seconds up to "
                "it. Saved: b minus a (positive: a is faster); 95% interval: Student's t over seeds.", "",
                (render_speedups(speedups) if speedups is not None else "")
                or (markdown.command("Not run", run_command) if run_command else "Not run."),
            ]  # fmt: skip
        if command:
            lines += ["", markdown.command("Produced by", command)]
        return markdown.wrap("\n".join(lines)) + "\n"

    def metric_warning(self, frame: pd.DataFrame, dataset: str) -> str | None:
        """A sentence when our records are scored under another cut-off than the paper's metric."""
        want = self.check_dataset(dataset)["topk"]
        ours = for_dataset(frame, dataset)
        if ours.empty or "metric_topk" not in ours:
            return None
        have = {None if pd.isna(k) else int(k) for k in ours["metric_topk"]}
        if have != {want}:
            shown = ", ".join("whole database" if k is None else f"MAP@{k}" for k in sorted(have, key=lambda k: k or 0))
            return (
                f"Warning: our records are scored as {shown}; the paper reports {self.datasets[dataset]['metric']} "
                f"(rescore with that cut-off to compare like with like)."
            )
        return None

    def render_outputs(
        self,
        frame: pd.DataFrame,
        scores_loader: Callable[[str], Mapping[str, Any]] | None,
        dataset: str,
        seeds: Iterable[int] | None = None,
        *,
        command: str | None = None,
        representation: str | None = "",
        track: str | None = None,
        n_boot: int = 10000,
        n_perm: int = 10000,
        defaults: Defaults = registry_defaults,
        run_command: str | None = None,
    ) -> dict[str, str]:
        """Every output file of ``hashbench paper NAME`` as text: ``tableN.md`` and ``tableN.csv``
        per table and, with a ``scores_loader``, ``claims.md`` and ``claims.csv`` (and
        ``speedup.csv`` where there are speed-up claims). ``run_command``: the command that runs the
        missing cells, named by every claim not run. The caller writes them (atomically)."""
        warn = self.metric_warning(frame, dataset)
        produced = markdown.command("Produced by", command) if command else ""
        footer = (f"\n{warn}\n" if warn else "") + (f"\n{produced}\n" if produced else "")
        files = {}
        kw = {"representation": representation, "track": track, "defaults": defaults}
        for t in sorted(self.tables):
            table = self.paper_table(frame, None, t, dataset, **kw)
            files[f"table{t}.md"] = markdown.wrap(self.render_paper_table(table, t, dataset) + footer)
            files[f"table{t}.csv"] = table.to_csv(index=False, float_format="%.6f")
        if scores_loader is not None and self.claims:
            c = self.test_claims(frame, scores_loader, dataset, seeds, n_boot=n_boot, n_perm=n_perm, **kw)
            sp = None
            if any(isinstance(x, SpeedupClaim) for x in self.claims):
                sp = self.test_speedups(frame, dataset, seeds, **kw)
                files["speedup.csv"] = sp.to_csv(index=False, float_format="%.6f")
            regime = str(track if track is not None else self.default_track)
            files["claims.md"] = self.render_claims_markdown(
                c, dataset, command=command, speedups=sp, regime=regime, run_command=run_command
            ) + (markdown.wrap(f"\n{warn}\n") if warn else "")
            files["claims.csv"] = c.to_csv(index=False, float_format="%.6f")
        return files

    def summary_file(self, files: Mapping[str, str]) -> str:
        """The output ``hashbench paper`` prints: the claims, else the last table."""
        return files.get("claims.md", files.get(f"table{max(self.tables)}.md", ""))


# ----------------------------------------------------------------------------------------------
# Helpers


@functools.lru_cache(maxsize=8)
def _read_text(package: str, name: str) -> str:
    return (resources.files(package) / "data" / name).read_text(encoding="utf-8")


def _record_curve(path: str) -> Mapping[str, Any]:
    """A record's learning curve (``{}`` where it has none or cannot be read)."""
    from ..records import CorruptRecord, read_meta

    try:
        return read_meta(path).get("curve") or {}
    except (CorruptRecord, OSError):
        return {}


def _and_names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _and(numbers: Iterable[int]) -> str:
    n = [str(x) for x in sorted(numbers)]
    return n[0] if len(n) == 1 else ", ".join(n[:-1]) + " and " + n[-1]


def _params_of(method: str) -> Mapping[str, Any]:
    from ..methods import get_method  # the registry loads scikit-learn; needed on fine-tuning regimes only

    try:
        return get_method(method)().get_params(deep=False)
    except Exception:  # noqa: BLE001 - a name this installation does not register
        return {}


def _params_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return format(v, "g")
    return str(v)


def _f4(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.4f}"


def published_value(pub: pd.DataFrame, lab: str, b: int, param: float | None = None) -> float:
    """The published value of a label at a length (a sweep: at ``param``) in ``pub``, NaN if none."""
    p = pub[(pub["method"] == lab) & (pub["bits"] == b)]
    if param is not None:
        p = p[np.isclose(p["param"].astype(float), param)]
    return float(p["value"].iloc[0]) if len(p) and not pd.isna(p["value"].iloc[0]) else np.nan


def for_dataset(frame: pd.DataFrame | None, dataset: str) -> pd.DataFrame:
    """The frame's rows of this dataset under the paper's protocol (the dataset's own)."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=FRAME_COLUMNS)
    out = frame
    if "dataset" in out:
        out = out[out["dataset"] == dataset]
    if "protocol" in out:
        out = out[out["protocol"] == dataset]
    return out


def cell_name(cell: Mapping[str, Any]) -> str:
    """A cell as a selector string, e.g. ``uhga+ga[sim_threshold=0.2]@cnn:efficientnet-lite0/features``."""
    params = cell.get("params") or {}
    text = cell["method"] + ("[" + ",".join(f"{k}={fmt_value(v)}" for k, v in params.items()) + "]" if params else "")
    if cell.get("representation"):
        text += f"@{cell['representation']}" + (f"/{cell['track']}" if cell.get("track") else "")
    return text


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


class Cells:
    """The records of one dataset indexed by (method, bits, representation, track), looked up per
    cell: one pass over the frame instead of a filter per cell (a plan has dozens of cells)."""

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
                variants, stored = frame_variants(g)
                rows = g[match_variants(variants, params, self.defaults(cell["method"]) if params else {}, stored)]
                if len(rows):
                    rows = one_configuration(rows, cell_name(cell))
            self._memo[memo_key] = rows
        return self._memo[memo_key]


def summary_of(rows: pd.DataFrame) -> dict[str, float]:
    if rows.empty:
        return {"ours": np.nan, "ours_std": np.nan, "n_seeds": 0, "ours_index_ties": np.nan}
    m = rows["map"].astype(float)
    return {
        "ours": float(m.mean()), "ours_std": float(m.std(ddof=1)) if len(m) > 1 else np.nan, "n_seeds": int(len(m)),
        "ours_index_ties": float(rows["map_index"].astype(float).mean()) if "map_index" in rows else np.nan,
    }  # fmt: skip


_summary = summary_of


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


def _paired(index: Cells, loader, cell_a: dict, cell_b: dict, bits: Sequence[int], seeds):
    """Per-seed per-query arrays of two cells, concatenated over ``bits`` (only seeds every length has)."""
    per_bits = []
    for b in bits:
        ra, rb = index.rows({**cell_a, "bits": b}), index.rows({**cell_b, "bits": b})
        if ra.empty or rb.empty:
            return [], [], []
        xa, xb, used = paired_scores(ra, rb, loader, "ap", seeds)
        per_bits.append({s: (a, b_) for a, b_, s in zip(xa, xb, used, strict=True)})
    common = sorted(set.intersection(*(set(d) for d in per_bits))) if per_bits else []
    xa = [np.concatenate([d[s][0] for d in per_bits]) for s in common]
    xb = [np.concatenate([d[s][1] for d in per_bits]) for s in common]
    return xa, xb, common


def claim_row(
    claim: str,
    statement: str,
    index: Cells,
    loader,
    cell_a: dict,
    cell_b: dict,
    bits: Sequence[int],
    pub_a: float,
    pub_b: float,
    *,
    seeds,
    gen,
    n_boot: int,
    n_perm: int,
) -> dict[str, Any]:
    """One comparison of two cells over ``bits``: a row of :data:`CLAIM_COLUMNS`."""
    xa, xb, used = _paired(index, loader, cell_a, cell_b, bits, seeds)
    row = {
        "claim": claim, "statement": statement, "a": cell_name(cell_a), "b": cell_name(cell_b),
        "bits": str(bits[0]) if len(bits) == 1 else f"mean {bits[0]}-{bits[-1]}",
        "published_a": pub_a, "published_b": pub_b, "published_effect": pub_a - pub_b,
    }  # fmt: skip
    if not used:
        row.update(ours_a=np.nan, ours_b=np.nan, ours_effect=np.nan, ci_low=np.nan, ci_high=np.nan,
                   p_randomisation=np.nan, n_seeds=0, n_queries=0)  # fmt: skip
    else:
        r = paired_difference(xa, xb, seeds=used, n_boot=n_boot, n_perm=n_perm, rng=gen)
        row.update(ours_a=r["mean_a"], ours_b=r["mean_b"], ours_effect=r["diff"], ci_low=r["ci_low"],
                   ci_high=r["ci_high"], p_randomisation=r["p_randomisation"], n_seeds=r["n_seeds"],
                   n_queries=r["n_queries"] // len(bits))  # fmt: skip  # per length: the lengths share the queries
    row["verdict"] = claim_verdict(row["published_effect"], row["ci_low"], row["ci_high"], row["n_seeds"])
    return row
