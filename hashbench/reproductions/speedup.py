"""Claims that a method *learns faster* than another, tested on learning curves.

A :class:`SpeedupClaim` ("GA accelerates SSDH") is read from the learning curves that deep methods
record with a validation part of the training set (``validation_fraction``; never the test
queries): :attr:`hashbench.deep.DeepHashMethod.curve_every` scores the validation MAP of the network
as it is after each epoch, and the record keeps it with the training seconds so far.

**What is compared.** Per code length and seed, the target is ``fraction`` (0.9) of the *lower* of
the two methods' final validation MAPs, so that both reach it; each method's time to target is the
first scored epoch whose validation MAP reaches it, and the training seconds up to that epoch (the
steps only: validation, scoring and checkpoints excluded). The effect is b's time minus a's (the
epochs, or seconds, that a saves; positive supports the claim), per seed; the interval is Student's
t over seeds (95%), so it needs two seeds or more. Verdict: *holds* where the interval lies above 0,
*does not hold* where it lies below, otherwise *inconclusive at n seeds*; *not run* without curves.

The verdict is given twice: in epochs (the paper's sense, updates to reach a quality) and in
seconds (what a user waits for: GA's look-ahead makes each epoch dearer). The claim counts as
holding only where it holds in epochs; the seconds are reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: the columns of one comparison (a vs b at one length, in one unit)
SPEEDUP_COLUMNS = ["claim", "statement", "a", "b", "bits", "unit", "target", "ours_a", "ours_b", "ours_effect",
                   "ci_low", "ci_high", "n_seeds", "never_reached", "verdict"]  # fmt: skip


@dataclass(frozen=True)
class SpeedupClaim:
    """ "``a`` learns faster than ``b``" (registered names): epochs and training seconds to reach
    ``fraction`` of the lower final validation MAP of the two, from curves recorded with
    ``validation_fraction`` held out and the validation MAP scored every ``curve_every`` epochs."""

    key: str
    statement: str
    a: str
    b: str
    fraction: float = 0.9
    validation_fraction: float = 0.1
    curve_every: int = 1

    @property
    def params(self) -> dict[str, Any]:
        """The parameters that name the cells (part of the record key)."""
        return {"validation_fraction": self.validation_fraction}

    @property
    def runtime(self) -> dict[str, Any]:
        """Parameters the runs need that name no cell (observers: :data:`hashbench.methods.RUNTIME_PARAMS`)."""
        return {"curve_every": self.curve_every}


def time_to_target(curve: Mapping[str, Any], target: float) -> tuple[float, float]:
    """(epochs, seconds) until the curve's validation MAP first reaches ``target``; (nan, nan) if never.

    ``curve``: a record's ``curve`` (:meth:`hashbench.deep.DeepHashMethod.learning_curve`): scored
    epochs ``val_epochs`` with ``val_map``, and ``seconds`` (cumulative training seconds) per epoch."""
    seconds = curve.get("seconds") or []
    for epoch, value in zip(curve.get("val_epochs") or [], curve.get("val_map") or [], strict=False):
        if value is not None and value >= target:
            sec = seconds[epoch - 1] if 0 < epoch <= len(seconds) and seconds[epoch - 1] is not None else math.nan
            return float(epoch), float(sec)
    return math.nan, math.nan


def final_map(curve: Mapping[str, Any]) -> float:
    """The validation MAP of the network the fit returned (the last scored one where not stored)."""
    value = curve.get("final_val_map")
    if value is None:
        scored = [v for v in curve.get("val_map") or [] if v is not None]
        value = scored[-1] if scored else None
    return math.nan if value is None else float(value)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean of ``values``; (nan, nan) with fewer than two."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    from scipy import stats  # scikit-learn's dependency

    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def verdict(ci_low: float, ci_high: float, n_seeds: int) -> str:
    """``holds`` (interval above 0: a faster), ``does not hold`` (below), ``inconclusive at n
    seeds`` (contains 0, or one seed; "no difference in any seed" where every seed's difference is
    0, i.e. below the curve's resolution), ``not run`` (no curves)."""
    if n_seeds == 0:
        return "not run"
    if not (math.isnan(ci_low) or math.isnan(ci_high)):
        if ci_low > 0:
            return "holds"
        if ci_high < 0:
            return "does not hold"
        if ci_low == ci_high == 0:
            return f"inconclusive at {n_seeds} seeds: no difference in any seed"
    return f"inconclusive at {n_seeds} seed{'s' if n_seeds != 1 else ''}"


def compare(
    claim: SpeedupClaim,
    statement: str,
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    bits: int,
    names: tuple[str, str],
    read_curve: Callable[[str], Mapping[str, Any]],
    seeds: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Two rows of :data:`SPEEDUP_COLUMNS` (epochs, seconds) for one length: the seeds both cells
    have curves for (``seeds``: only these)."""
    curves_a = _curves(rows_a, read_curve)
    curves_b = _curves(rows_b, read_curve)
    common = sorted(set(curves_a) & set(curves_b) & (set(seeds) if seeds is not None else set(curves_a)))
    per: dict[str, list[tuple[float, float]]] = {"epochs": [], "seconds": []}
    targets, never = [], 0
    for s in common:
        target = claim.fraction * min(final_map(curves_a[s]), final_map(curves_b[s]))
        targets.append(target)
        (ea, sa), (eb, sb) = time_to_target(curves_a[s], target), time_to_target(curves_b[s], target)
        never += int(math.isnan(ea) or math.isnan(eb))
        per["epochs"].append((ea, eb))
        per["seconds"].append((sa, sb))
    out = []
    for unit, pairs in per.items():
        saved = [b - a for a, b in pairs]
        lo, hi = t_interval(saved)
        n = sum(not math.isnan(v) for v in saved)
        out.append({
            "claim": claim.key, "statement": statement, "a": names[0], "b": names[1], "bits": str(bits),
            "unit": unit, "target": float(np.mean(targets)) if targets else math.nan,
            "ours_a": _mean(a for a, _ in pairs), "ours_b": _mean(b for _, b in pairs), "ours_effect": _mean(saved),
            "ci_low": lo, "ci_high": hi, "n_seeds": n, "never_reached": never, "verdict": verdict(lo, hi, n),
        })  # fmt: skip
    return out


def _mean(values) -> float:
    x = [v for v in values if not math.isnan(v)]
    return float(np.mean(x)) if x else math.nan


def _curves(rows: pd.DataFrame, read_curve: Callable[[str], Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """seed -> the record's scored curve (records without one are left out)."""
    out = {}
    if rows is None or rows.empty or "record_path" not in rows:
        return out
    for r in rows.itertuples(index=False):
        curve = read_curve(r.record_path) or {}
        if any(v is not None for v in curve.get("val_map") or []):
            out[int(r.seed)] = curve
    return out


def overall_verdict(verdicts: Sequence[str], n_seeds: Sequence[int], places: Sequence[str], unit: str) -> str:
    """A claim's verdict over its comparisons (one verdict, seed count and place each): ``does not
    hold (places)`` where any does not, ``holds`` where all hold, ``not run`` where none ran,
    ``incomplete: k of n <unit> not run`` where some did not, else ``inconclusive at n seeds``.
    The claims of every kind (:meth:`~hashbench.reproductions.base.Reproduction.summarise_claims`,
    :func:`summarise`) are summarised by it."""
    verdicts = list(verdicts)
    fails = [p for p, v in zip(places, verdicts, strict=True) if v == "does not hold"]
    missing = sum(v == "not run" for v in verdicts)
    if fails:
        return f"does not hold ({', '.join(fails)})"
    if all(v == "holds" for v in verdicts):
        return "holds"
    if missing == len(verdicts):
        return "not run"
    if missing:
        return f"incomplete: {missing} of {len(verdicts)} {unit} not run"
    seeds = sorted({int(n) for n in n_seeds if n > 0})
    return f"inconclusive at {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"


def summarise(table: pd.DataFrame) -> dict[str, str]:
    """claim -> its verdict over lengths, from the epochs rows (:data:`SPEEDUP_COLUMNS`)."""
    epochs = table[table["unit"] == "epochs"]
    return {
        claim: overall_verdict(g["verdict"], g["n_seeds"], list(g["bits"]), "lengths")
        for claim, g in epochs.groupby("claim", sort=False)
    }


def render(table: pd.DataFrame) -> str:
    """The speed-up comparisons as Markdown (one row per length, epochs and seconds side by side)."""
    if table.empty or (table["n_seeds"] == 0).all():
        return ""

    def num(v: float, unit: str) -> str:
        return "—" if pd.isna(v) else (f"{v:.1f}" if unit == "epochs" else f"{v:.0f}")

    def ci(lo: float, hi: float, unit: str) -> str:
        return "—" if pd.isna(lo) else f"[{num(lo, unit)}, {num(hi, unit)}]"

    rows = []
    for (claim, bits), g in table.groupby(["claim", "bits"], sort=False):
        e, s = (g[g["unit"] == u].iloc[0] for u in ("epochs", "seconds"))
        rows.append({
            "claim": claim, "a vs b": f"{_short(e['a'])} vs {_short(e['b'])}", "bits": bits,
            "target MAP": _f4(e["target"]),
            "epochs a / b": f"{num(e['ours_a'], 'epochs')} / {num(e['ours_b'], 'epochs')}",
            "epochs saved [95% CI]": f"{num(e['ours_effect'], 'epochs')} {ci(e['ci_low'], e['ci_high'], 'epochs')}",
            "seconds a / b": f"{num(s['ours_a'], 'seconds')} / {num(s['ours_b'], 'seconds')}",
            "seconds saved [95% CI]": f"{num(s['ours_effect'], 'seconds')} {ci(s['ci_low'], s['ci_high'], 'seconds')}",
            "seeds": str(int(e["n_seeds"])), "verdict (epochs)": e["verdict"], "verdict (seconds)": s["verdict"],
        })  # fmt: skip
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def _short(cell: str) -> str:
    """A cell's method without its parameters and input (the section's text states them)."""
    return str(cell).split("@", 1)[0].split("[", 1)[0]


def _f4(v: float) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.4f}"
