"""Paired comparisons of two methods over the same queries: is a MAP difference more than noise?

MAP is a mean over queries, and two methods scored on one split answer the *same* queries, so the
comparison is paired, query by query, as in trec_eval-style IR evaluation (Smucker, Allan &
Carterette, "A comparison of statistical significance tests for information retrieval evaluation",
CIKM 2007: the randomisation test, the bootstrap and the t-test mostly agree; the sign and Wilcoxon
tests do not, and are not offered here).

Conventions (the same everywhere in hashbench):

- **Direction**: every difference is **a minus b** (``diff > 0``: a scores higher).
- **Seeds**: with several seeds, ``a`` and ``b`` are lists of per-query arrays, one per seed, each pair
  aligned query by query (a seed may redraw the split, so different seeds may hold different queries
  and even different numbers of them). The estimate is the mean over seeds of the per-seed mean
  difference: every seed weighs the same, as a mean-over-seeds table cell does.
- **Interval**: percentile bootstrap over queries. With one seed, queries are resampled with
  replacement. With several, a two-level bootstrap: resample seeds with replacement, then resample
  queries within each drawn seed independently (a seed drawn twice gets two query resamples), so the
  interval carries both the query-to-query and the seed-to-seed (split and initialisation) variation.
  With 2-3 seeds the seed level is coarse; the interval is honest about queries, approximate about seeds.
- **Randomisation test** (two-sided, sign flips): under the null hypothesis that a and b are
  exchangeable on every query, each (seed, query) difference keeps its size and gets a random sign;
  ``p = (1 + #{|T*| >= |T|}) / (n_perm + 1)`` (the +1 counts the observed assignment, so
  ``p >= 1/(n_perm+1)`` and the test is exact in size). When the number of non-zero differences ``m``
  is small enough that ``2**m <= n_perm``, all sign patterns are enumerated instead and ``p`` is the
  exact fraction (``p_method`` says which). Queries with equal scores contribute nothing and are
  left out of the flips.
- **t-test**: ``scipy.stats.ttest_rel`` on the per-query scores averaged over seeds (all seeds must then
  have the same number of queries; with ragged seeds, a one-sample t-test on all (seed, query)
  differences). When the differences have zero variance, the t statistic is undefined; we define
  ``p = 0`` if their mean is non-zero (every query moved by the same amount) and ``p = 1`` if it is zero.
- **Identical inputs** give ``diff = 0``, interval ``[0, 0]`` and both p-values exactly 1.

``compare_table`` applies this per code length to records of the contract's frame, naming the two sides
with *selectors* (see :func:`parse_selector`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput, UnknownName
from ..values import parse_value

#: elements per chunk of resampling work (int32 indices + float64 gathers: about 48 MB at most).
CHUNK_ELEMENTS = 1 << 22
ALPHA = 0.05


# ----------------------------------------------------------------------------------------------
# Paired difference of two score vectors


def _as_seed_list(x: Any, name: str) -> list[np.ndarray]:
    """One 1-D float64 array per seed, from a 1-D array (one seed) or a sequence of them."""
    if isinstance(x, np.ndarray) and x.ndim == 1:
        arrays = [x]
    elif isinstance(x, np.ndarray) and x.ndim == 2:
        arrays = list(x)
    elif isinstance(x, (list, tuple)) and x and all(np.ndim(v) == 1 for v in x):
        arrays = list(x)
    elif isinstance(x, (list, tuple)) and x and all(np.ndim(v) == 0 for v in x):
        arrays = [np.asarray(x)]
    else:
        raise InvalidInput(
            f"{name}: expected per-query scores as a 1-D array or a list of 1-D arrays (one per "
            f"seed), got {type(x).__name__}"
        )
    out = []
    for i, v in enumerate(arrays):
        v = np.asarray(v, dtype=np.float64)
        if v.size == 0:
            raise InvalidInput(f"{name}: seed {i} has no queries")
        if not np.all(np.isfinite(v)):
            raise InvalidInput(f"{name}: seed {i} has NaN or infinite scores; rescore the record")
        out.append(v)
    return out


def _boot_means(d: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` bootstrap means of ``d`` (each a resample of len(d) items with replacement), chunked."""
    q = len(d)
    out = np.empty(n, dtype=np.float64)
    rows = max(1, CHUNK_ELEMENTS // q)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        idx = rng.integers(0, q, size=(k, q), dtype=np.int32)
        out[start : start + k] = d[idx].sum(axis=1) / q
    return out


def _bootstrap(diffs: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap distribution of the mean over seeds of the per-seed mean difference (one or two levels)."""
    s = len(diffs)
    if s == 1:
        return _boot_means(diffs[0], n_boot, rng)
    picks = rng.integers(0, s, size=(n_boot, s))  # level 1: which seeds each replicate draws
    vals = np.empty((n_boot, s), dtype=np.float64)
    for j in range(s):  # level 2: an independent query resample for every time seed j is drawn
        mask = picks == j
        vals[mask] = _boot_means(diffs[j], int(mask.sum()), rng)
    return vals.mean(axis=1)


def _sign_flip_p(w: np.ndarray, n_perm: int, rng: np.random.Generator) -> tuple[float, str]:
    """Two-sided sign-flip p-value of T = sum(w) where w are the (weighted) non-zero differences."""
    m = len(w)
    t0 = abs(float(w.sum()))
    tol = 1e-9 * float(np.abs(w).sum())  # equal sums computed in another order still count as ties
    total = float(w.sum())
    if m <= 24 and 2**m <= n_perm:
        patterns = (np.arange(2**m, dtype=np.int64)[:, None] >> np.arange(m)) & 1
        t = total - 2.0 * (patterns.astype(np.float64) @ w)
        return float(np.count_nonzero(np.abs(t) >= t0 - tol)) / 2**m, "exact"
    hits = 0
    rows = max(1, CHUNK_ELEMENTS // m)
    nbytes = (m + 7) // 8
    for start in range(0, n_perm, rows):
        k = min(rows, n_perm - start)
        flips = np.unpackbits(rng.integers(0, 256, size=(k, nbytes), dtype=np.uint8), axis=1, count=m)
        t = total - 2.0 * (flips.astype(np.float64) @ w)  # sign = 1 - 2*flip
        hits += int(np.count_nonzero(np.abs(t) >= t0 - tol))
    return (1.0 + hits) / (n_perm + 1.0), "monte-carlo"


def _t_test_p(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Paired t-test p-value on per-query scores averaged over seeds (see the module docstring)."""
    from scipy import stats as sps

    if len({len(v) for v in a}) == 1:
        ma, mb = np.mean(a, axis=0), np.mean(b, axis=0)
        d = ma - mb
    else:
        ma = mb = None
        d = np.concatenate([x - y for x, y in zip(a, b, strict=True)])
    if len(d) < 2:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return 0.0 if mean != 0 else 1.0
    res = sps.ttest_rel(ma, mb) if ma is not None else sps.ttest_1samp(d, 0.0)
    return float(res.pvalue)


def paired_difference(
    a: Any,
    b: Any,
    *,
    seeds: Sequence[Any] | None = None,
    n_boot: int = 10000,
    n_perm: int = 10000,
    rng: int | np.random.Generator | None = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Mean difference **a minus b** of paired per-query scores, with a bootstrap interval and two p-values.

    ``a`` and ``b``: per-query scores (e.g. AP), a 1-D array each, or a list of 1-D arrays, one per seed,
    ``a[i]`` and ``b[i]`` aligned query by query. ``seeds``: labels of the seeds (reported back).
    ``rng``: an int seed or a ``numpy.random.Generator``; the same seed gives the same interval and p.

    Returns a dict: ``diff``, ``mean_a``, ``mean_b`` (means over seeds of per-seed means; ``diff ==
    mean_a - mean_b``), ``ci_low``, ``ci_high``, ``ci`` (level), ``p_randomisation``, ``p_method``
    ("exact", "monte-carlo" or "identical"), ``p_ttest``, ``n_queries`` (queries per seed when all
    seeds have the same number, else the total), ``n_queries_per_seed``, ``n_seeds``, ``seeds``,
    ``n_boot``, ``n_perm``. The module docstring defines each part.
    """
    if not 0 < ci < 1:
        raise InvalidInput(f"ci={ci!r}: give a confidence level between 0 and 1, e.g. 0.95")
    if int(n_boot) < 1 or int(n_perm) < 1:
        raise InvalidInput("n_boot and n_perm must be at least 1 (10000 is the default)")
    la, lb = _as_seed_list(a, "a"), _as_seed_list(b, "b")
    if len(la) != len(lb):
        raise InvalidInput(f"a has {len(la)} seed(s) but b has {len(lb)}: pair them seed by seed")
    for i, (x, y) in enumerate(zip(la, lb, strict=True)):
        if len(x) != len(y):
            raise InvalidInput(
                f"seed {i}: a has {len(x)} queries but b has {len(y)}; paired scores must come "
                "from the same split (same seed and split checksum)"
            )
    if seeds is not None and len(seeds) != len(la):
        raise InvalidInput(f"{len(seeds)} seed label(s) for {len(la)} seed(s) of scores")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    diffs = [x - y for x, y in zip(la, lb, strict=True)]
    s = len(diffs)
    mean_a = float(np.mean([x.mean() for x in la]))
    mean_b = float(np.mean([y.mean() for y in lb]))
    diff = float(np.mean([d.mean() for d in diffs]))
    per_seed = tuple(len(d) for d in diffs)
    out: dict[str, Any] = {
        "diff": diff,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "ci": float(ci),
        "n_queries": per_seed[0] if len(set(per_seed)) == 1 else int(sum(per_seed)),
        "n_queries_per_seed": per_seed,
        "n_seeds": s,
        "seeds": tuple(seeds) if seeds is not None else None,
        "n_boot": int(n_boot),
        "n_perm": int(n_perm),
    }
    if all(not np.any(d) for d in diffs):
        out.update(diff=0.0, ci_low=0.0, ci_high=0.0, p_randomisation=1.0, p_method="identical", p_ttest=1.0)
        return out
    boot = _bootstrap(diffs, int(n_boot), gen)
    lo, hi = np.quantile(boot, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    # randomisation statistic: the same seed-weighted mean, each (seed, query) difference with a random sign
    w = np.concatenate([d / (s * len(d)) for d in diffs])
    p_rand, method = _sign_flip_p(w[w != 0], int(n_perm), gen)
    out.update(ci_low=float(lo), ci_high=float(hi), p_randomisation=p_rand, p_method=method, p_ttest=_t_test_p(la, lb))
    return out


# ----------------------------------------------------------------------------------------------
# Selectors: which rows of the frame one side of a comparison is


_SELECTOR = re.compile(r"^\s*(?P<method>[^\[\]@\s]+)\s*(?:\[(?P<params>[^\]]*)\])?\s*(?:@(?P<input>\S+))?\s*$")
_TRACKS = ("features", "end2end", "images")
_PARAM_SPLIT = re.compile(r",\s*(?=[A-Za-z_][\w.]*\s*=)")


def parse_variant(text: str | None) -> dict[str, Any]:
    """``"n_iter=10,alpha=0.5"`` -> ``{"n_iter": 10, "alpha": 0.5}``; ``""`` -> ``{}``: a selector's
    parameters, and a frame row's where the frame has no ``variant_params`` (:func:`row_params`)."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return {}
    out = {}
    for item in _PARAM_SPLIT.split(str(text).strip()):
        if "=" not in item:
            raise InvalidInput(f"variant {text!r}: {item!r} is not PARAM=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def _same_value(x: Any, y: Any) -> bool:
    numbers = (int, float, np.integer, np.floating)
    if isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool) and not isinstance(y, bool):
        return math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):  # stored JSON holds a tuple as a list
        return len(x) == len(y) and all(_same_value(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def same_params(p: Mapping[str, Any], q: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether two parameter dicts name the same configuration (a parameter left out takes its default)."""
    defaults = defaults or {}
    missing = object()
    for k in set(p) | set(q):
        x, y = p.get(k, defaults.get(k, missing)), q.get(k, defaults.get(k, missing))
        if x is missing or y is missing or not _same_value(x, y):
            return False
    return True


@dataclass(frozen=True)
class Selector:
    """One side of a comparison: a method, its non-default parameters, and optionally the input."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    representation: str | None = None
    track: str | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.method


def parse_selector(text: str) -> Selector:
    """Parse ``METHOD``, ``METHOD[PARAM=VALUE,...]``, each optionally followed by ``@REPRESENTATION`` or
    ``@REPRESENTATION/TRACK``.

    - ``itq``: ITQ with its default parameters (the frame's ``variant == ""``).
    - ``itq[n_iter=10]``: the configuration run with ``--set itq.n_iter=10`` (values parsed as Python
      literals, numbers compared numerically, so ``0.3`` matches ``0.30000000000000004``).
    - ``uhga+ga[sim_threshold=0.3,gamma=0.2]``: several parameters, comma separated.
    - ``itq@gist``, ``ssdh@cnn:alexnet/end2end``: where a method was run on several inputs, which one.
    """
    m = _SELECTOR.match(text or "")
    if not m:
        raise InvalidInput(
            f"selector {text!r}: expected METHOD, METHOD[PARAM=VALUE,...] or METHOD@REPRESENTATION, "
            "e.g. itq, itq[n_iter=10], uhga+ga[sim_threshold=0.3]@cnn:efficientnet-lite0"
        )
    params = parse_variant(m["params"]) if m["params"] is not None else {}
    rep = track = None
    if m["input"]:
        rep = m["input"]
        head, sep, tail = rep.rpartition("/")
        if sep and tail in _TRACKS:
            rep, track = head, tail
    return Selector(method=m["method"].lower(), params=params, representation=rep, track=track, text=text.strip())


def registry_defaults(method: str) -> dict[str, Any]:
    """A registered method's default parameters (so ``itq[n_iter=50]`` also matches default-variant rows
    when 50 is ITQ's default); ``{}`` when the method cannot be loaded."""
    try:
        from ..methods import get_method

        return dict(get_method(method)().get_params(deep=False))
    except Exception:  # an unloadable method just gets no defaults: matching falls back to exact variants
        return {}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip()


def row_params(variant: Any, stored: Any = None) -> dict[str, Any]:
    """A frame row's non-default parameters: the JSON of its ``variant_params`` column (the values its
    record stores, :func:`hashbench.values.stored_variant`) when there is one, else its ``variant``
    label parsed back (:func:`parse_variant`: frames and ``results.csv`` files written before the
    column existed, and records whose stored parameters do not show their variant)."""
    if not _missing(stored):
        try:
            params = json.loads(str(stored))
        except ValueError:
            params = None
        if isinstance(params, dict):
            return params
    return parse_variant(None if _missing(variant) else str(variant))


def match_variants(
    variants: Iterable[Any],
    params: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    stored: Iterable[Any] | None = None,
) -> np.ndarray:
    """Which rows name the configuration ``params``: their stored parameters (``stored``, the frame's
    ``variant_params`` aligned with ``variants``) where present, else their ``variant`` strings
    parsed back (:func:`row_params`); each distinct row read once."""
    variants = list(variants)
    stored = [None] * len(variants) if stored is None else list(stored)
    if len(stored) != len(variants):
        raise InvalidInput(f"{len(stored)} stored parameter sets for {len(variants)} variants")
    seen: dict[tuple[str, str], bool] = {}
    out = []
    for v, p in zip(variants, stored, strict=True):
        key = ("" if _missing(v) else str(v), "" if _missing(p) else str(p))
        if key not in seen:
            seen[key] = same_params(row_params(*key), params, defaults)
        out.append(seen[key])
    return np.asarray(out, dtype=bool)


def frame_variants(frame: pd.DataFrame) -> tuple[Any, Any]:
    """A frame's (``variant``, ``variant_params``) columns for :func:`match_variants` (None for a
    column the frame lacks: older frames have no ``variant_params``)."""
    variants = frame["variant"].to_numpy() if "variant" in frame else [""] * len(frame)
    stored = frame["variant_params"].to_numpy() if "variant_params" in frame else None
    return variants, stored


def select_rows(
    frame: pd.DataFrame,
    selector: Selector | str,
    defaults: Callable[[str], Mapping[str, Any]] | None = registry_defaults,
) -> pd.DataFrame:
    """The rows of ``frame`` a selector names (any code length, any seed)."""
    sel = parse_selector(selector) if isinstance(selector, str) else selector
    if frame.empty or "method" not in frame:
        return frame.iloc[0:0]
    mask = frame["method"].astype(str).str.lower().to_numpy() == sel.method
    if sel.representation is not None:
        mask &= frame["representation"].to_numpy() == sel.representation
    if sel.track is not None:
        mask &= frame["track"].to_numpy() == sel.track
    if mask.any():
        dflt = defaults(sel.method) if (defaults and sel.params) else {}
        variants, stored = frame_variants(frame[mask])
        mask[mask] = match_variants(variants, sel.params, dflt, stored)
    return frame[mask]


def one_configuration(rows: pd.DataFrame, sel: Selector | str) -> pd.DataFrame:
    """The rows a selector matched, reduced to one input (protocol, representation, track) and one record
    per (seed, split): the most recent (``created``) where a cell was run twice (for instance once with
    the default variant and once with the same value set explicitly)."""
    sel = parse_selector(sel) if isinstance(sel, str) else sel
    inputs = sorted(set(zip(rows["protocol"], rows["representation"], rows["track"], strict=True)))
    if len(inputs) > 1:
        names = ", ".join(f"{rep}/{track} (protocol {proto})" for proto, rep, track in inputs)
        raise InvalidInput(
            f"{sel} has records on {len(inputs)} inputs: {names}; name one, e.g. {sel.method}@{inputs[0][1]}"
        )
    keys = list(zip(rows["seed"], rows["split_checksum"], strict=True))
    if len(set(keys)) == len(keys):
        return rows
    if "created" in rows:
        rows = rows.sort_values("created", kind="stable")
    return rows.drop_duplicates(["seed", "split_checksum"], keep="last")


def verdict(diff: float, p: float, alpha: float = ALPHA) -> str:
    """``"a better"`` / ``"b better"`` when the randomisation p is below alpha, else no significant difference."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "not comparable"
    if p < alpha and diff > 0:
        return "a better"
    if p < alpha and diff < 0:
        return "b better"
    return "no significant difference"


COMPARE_COLUMNS = [
    "map_a",
    "map_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_randomisation",
    "p_ttest",
    "n_queries",
    "n_seeds",
    "verdict",
]


def paired_scores(
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    scores_loader: Callable[[str], Mapping[str, Any]],
    per_query: str = "ap",
    seeds: Iterable[int] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Per-query arrays of two selections (one record per seed each, see :func:`one_configuration`) paired by
    (seed, split_checksum), in seed order: (a arrays, b arrays, seeds)."""

    def by_key(rows: pd.DataFrame) -> dict[tuple[int, str], str]:
        cols = (rows["seed"], rows["split_checksum"], rows["scores_path"])
        return {(int(s), str(c)): str(p) for s, c, p in zip(*cols, strict=True)}

    ia, ib = by_key(rows_a), by_key(rows_b)
    keys = sorted(set(ia) & set(ib))
    if seeds is not None:
        wanted = {int(s) for s in seeds}
        keys = [k for k in keys if k[0] in wanted]
    xa, xb = [], []
    for k in keys:
        arrays = []
        for path in (ia[k], ib[k]):
            scores = scores_loader(path)
            pq = scores.get("per_query") if isinstance(scores, Mapping) else None
            if not pq or per_query not in pq:
                raise InvalidInput(
                    f"{path} holds no per-query {per_query!r} scores; rescore the folder "
                    "(`hashbench rescore --out DIR`) so every record has them"
                )
            arrays.append(np.asarray(pq[per_query], dtype=np.float64))
        xa.append(arrays[0])
        xb.append(arrays[1])
    return xa, xb, [k[0] for k in keys]


def _match(df: pd.DataFrame, by: list[str], key: tuple) -> pd.DataFrame:
    return df[np.logical_and.reduce([(df[c] == v).to_numpy() for c, v in zip(by, key, strict=True)])]


def compare_table(
    frame: pd.DataFrame,
    scores_loader: Callable[[str], Mapping[str, Any]],
    a: Selector | str,
    b: Selector | str,
    *,
    by: Sequence[str] = ("n_bits",),
    per_query: str = "ap",
    seeds: Iterable[int] | None = None,
    alpha: float = ALPHA,
    n_boot: int = 10000,
    n_perm: int = 10000,
    rng: int = 0,
    defaults: Callable[[str], Mapping[str, Any]] | None = registry_defaults,
) -> pd.DataFrame:
    """For each group of ``by`` (each code length), the paired difference a minus b over queries and seeds.

    ``frame``: the contract's frame (``hashbench.results.tables.load_frame``) of one dataset. ``a``, ``b``:
    selectors (:func:`parse_selector`). Records are paired by ``seed`` and ``split_checksum``; a seed only
    one side has is left out. ``scores_loader(scores_path)`` returns a dict with
    ``"per_query": {per_query: array}``. ``verdict`` uses the randomisation p at ``alpha``.

    Columns: the ``by`` columns, map_a, map_b, diff, ci_low, ci_high, p_randomisation, p_ttest,
    n_queries, n_seeds, verdict (rows where no seed pairs up say "no common seed/split").
    """
    sa = parse_selector(a) if isinstance(a, str) else a
    sb = parse_selector(b) if isinstance(b, str) else b
    by = list(by)
    ra, rb = select_rows(frame, sa, defaults), select_rows(frame, sb, defaults)
    for sel, rows in ((sa, ra), (sb, rb)):
        if rows.empty:
            have = sorted(frame["method"].unique()) if "method" in frame and not frame.empty else []
            variants = []
            if "variant" in frame and not frame.empty:
                mine = frame[frame["method"].astype(str).str.lower() == sel.method]
                variants = sorted({f"{sel.method}[{v}]" if v else sel.method for v in mine["variant"].fillna("")})
            hint = (
                f"; runs of {sel.method}: {', '.join(variants)}"
                if variants
                else f"; methods with records: {', '.join(map(str, have)) or 'none'}"
            )
            raise UnknownName(f"no records match {sel}{hint}")
    keys = pd.concat([ra[by], rb[by]]).drop_duplicates().sort_values(by)
    gen = np.random.default_rng(rng)
    rows = []
    for key in keys.itertuples(index=False, name=None):
        ga, gb = _match(ra, by, key), _match(rb, by, key)
        row = dict(zip(by, key, strict=True))
        if ga.empty or gb.empty:
            row.update(
                {c: np.nan for c in COMPARE_COLUMNS[:-3]},
                n_queries=0,
                n_seeds=0,
                verdict=f"only {sb if ga.empty else sa} has records",
            )
            rows.append(row)
            continue
        xa, xb, used = paired_scores(
            one_configuration(ga, sa), one_configuration(gb, sb), scores_loader, per_query, seeds
        )
        if not used:
            row.update(
                {c: np.nan for c in COMPARE_COLUMNS[:-3]}, n_queries=0, n_seeds=0, verdict="no common seed/split"
            )
            rows.append(row)
            continue
        r = paired_difference(xa, xb, seeds=used, n_boot=n_boot, n_perm=n_perm, rng=gen)
        row.update(
            map_a=r["mean_a"],
            map_b=r["mean_b"],
            diff=r["diff"],
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            p_randomisation=r["p_randomisation"],
            p_ttest=r["p_ttest"],
            n_queries=r["n_queries"],
            n_seeds=r["n_seeds"],
            verdict=verdict(r["diff"], r["p_randomisation"], alpha),
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*by, *COMPARE_COLUMNS])
    for c in by:
        if c == "n_bits":
            out[c] = out[c].astype(int)
    out["n_queries"] = out["n_queries"].astype(int)
    out["n_seeds"] = out["n_seeds"].astype(int)
    return out


def format_p(p: float) -> str:
    """A p-value for people: 3 significant digits, ``< 1e-4`` style below the resolution that matters."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    if p == 0:
        return "0"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}" if p < 0.1 else f"{p:.3f}"


def render_compare_markdown(
    table: pd.DataFrame, a: Selector | str, b: Selector | str, *, alpha: float = ALPHA, metric: str = "MAP"
) -> str:
    """Markdown for a :func:`compare_table` result: one row per code length, the difference a - b with
    its interval and both p-values, and the conventions stated under it."""
    by = [c for c in table.columns if c not in COMPARE_COLUMNS]
    view = pd.DataFrame({c: table[c].astype(str) for c in by})

    def f4(v: float) -> str:
        return "" if pd.isna(v) else f"{v:.4f}"

    def signed(v: float) -> str:
        return "" if pd.isna(v) else f"{v:+.4f}"

    view[f"{metric} {a}"] = table["map_a"].map(f4)
    view[f"{metric} {b}"] = table["map_b"].map(f4)
    view["a - b"] = table["diff"].map(signed)
    bounds = zip(table["ci_low"], table["ci_high"], strict=True)
    view["95% CI"] = ["" if pd.isna(lo) else f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in bounds]
    view["p (randomisation)"] = table["p_randomisation"].map(format_p)
    view["p (t-test)"] = table["p_ttest"].map(format_p)
    view["queries"] = table["n_queries"].astype(str)
    view["seeds"] = table["n_seeds"].astype(str)
    view["verdict"] = table["verdict"].str.replace("a better", f"{a} better").str.replace("b better", f"{b} better")
    lines = [
        f"# {a} vs {b}",
        "",
        view.to_markdown(index=False, disable_numparse=True),
        "",
        f"- a = `{a}`, b = `{b}`; differences are a minus b, per query (tie-aware AP), mean over seeds.",
        "- CI: percentile bootstrap over queries (two-level, seeds then queries, where there are several seeds).",
        "- p (randomisation): two-sided paired sign-flip test, (1 + hits) / (1 + permutations); "
        "p (t-test): paired t-test on per-query scores averaged over seeds.",
        f"- verdict: from the randomisation p at alpha = {alpha} (no correction for testing several lengths).",
    ]
    return "\n".join(lines) + "\n"
