"""A reference of MAP values and the check of a run against it (``hashbench check``).

A reference is a CSV with columns dataset, method, bits, map and optionally seeds, protocol,
representation, track (:func:`read_reference` validates it; :func:`write_reference` writes one from a
run). :func:`check_against_reference` re-runs each group of the reference's cells as a
:class:`~hashbench.run.runner.RunConfig` and returns one row per cell: dataset, method, bits, reference,
ours, delta, status (``ok``, ``DROP`` when ours fell more than the tolerance below, ``MISSING``).
Methods the registry cannot run (codes imported with ``hashbench import``) are read from the records
under ``out`` instead.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from ..errors import InvalidInput
from ..io import atomic_write_text
from ..methods import list_methods
from ..run.runner import RunConfig, parse_bits, parse_seeds, run_grid
from .ci_output import recorded_map
from .tables import load_frame, mean_map

REFERENCE_COLUMNS = ["dataset", "method", "bits", "map", "seeds", "protocol", "representation", "track"]


def check_tolerance(value) -> float:
    """``--tolerance``: a finite number >= 0 (NaN would pass every drop, a negative one fail every cell)."""
    if not (isinstance(value, float) and math.isfinite(value) and value >= 0):
        raise InvalidInput(f"--tolerance {value!r}: give a finite number >= 0, e.g. --tolerance 0.01")
    return value


def _cell_text(v) -> str:
    """A CSV cell as text: empty for NaN, ``0`` for a seed pandas read as 0.0."""
    if pd.isna(v):
        return ""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def read_reference(path: str | Path) -> pd.DataFrame:
    """The reference CSV at ``path``, validated: bits int, map float, method lower-case, the optional
    columns as text ('' where absent)."""
    try:
        ref = pd.read_csv(path)
    except FileNotFoundError:
        raise InvalidInput(
            f"reference file {path} does not exist; create one with `hashbench check --reference "
            f"{path} --write --dataset digits --methods lsh,itq --bits 16,32,64`"
        ) from None
    except Exception as exc:
        raise InvalidInput(f"reference file {path} is not a readable CSV ({exc})") from None
    missing = {"dataset", "method", "bits", "map"} - set(ref.columns)
    if missing:
        raise InvalidInput(
            f"reference file {path} lacks column(s) {', '.join(sorted(missing))}; expected dataset,method,bits,map"
        )
    if ref.empty:
        raise InvalidInput(f"reference file {path} has no rows")
    for col in ("bits", "map"):
        values = pd.to_numeric(ref[col], errors="coerce")
        bad = ref.index[values.isna()]
        if len(bad):
            raise InvalidInput(f"reference file {path}, row {bad[0] + 2}: {col} {ref[col][bad[0]]!r} is not a number")
        ref[col] = values
    ref["bits"] = ref["bits"].astype(int)
    ref["method"] = ref["method"].astype(str).str.strip().str.lower()
    for col in ("seeds", "protocol", "representation", "track"):
        ref[col] = ref[col].map(_cell_text) if col in ref else ""
    return ref


def run_frame(cfg: RunConfig) -> pd.DataFrame:
    """Run a grid (a failed cell raises) and return the frame of exactly its records."""
    result = run_grid(cfg)
    result.raise_for_failures()
    df = load_frame(result.folder)
    return df[df["record_path"].isin({str(p) for p in result.record_paths})]


def write_reference(path: str | Path, cfg: RunConfig) -> int:
    """Run ``cfg`` (default hyperparameters) and write its mean MAP per method and length as the
    reference at ``path``; returns the number of rows."""
    if cfg.params:
        raise InvalidInput("check --write runs default hyperparameters only; a reference cannot store --set values")
    frame = run_frame(cfg)
    df = mean_map(frame).rename(columns={"n_bits": "bits"})
    df["dataset"] = cfg.dataset  # the name `check` runs again, not the output folder's
    df["seeds"] = ",".join(map(str, cfg.seeds))
    df["protocol"] = frame["protocol"].iloc[0]
    df["representation"] = cfg.representation or ""
    df["track"] = cfg.track or ""
    atomic_write_text(path, df[REFERENCE_COLUMNS].to_csv(index=False, float_format="%.6f"))
    return len(df)


def check_against_reference(reference: pd.DataFrame, base: RunConfig, tolerance: float) -> pd.DataFrame:
    """Run each group of ``reference``'s cells (one dataset, seeds, protocol and input) as ``base``
    with those fields replaced, and compare: one row per reference cell (module docstring). Methods
    this installation cannot run are read from the records under ``base.out``."""
    tolerance = check_tolerance(tolerance)
    runnable = set(list_methods("*"))
    rows = []
    group_cols = ["dataset", "seeds", "protocol", "representation", "track"]
    for (dataset, seeds, protocol, representation, track), group in reference.groupby(group_cols, sort=False):
        methods = list(dict.fromkeys(group["method"]))
        external = [m for m in methods if m not in runnable]  # imported codes: read, not run
        seed_list = parse_seeds(str(seeds) if str(seeds) else "0")
        got = {}
        if len(external) < len(methods):
            cfg = dataclasses.replace(
                base,
                dataset=dataset,
                methods=[",".join(m for m in methods if m not in external)],
                bits=parse_bits(",".join(str(b) for b in sorted(set(group["bits"].astype(int))))),
                seeds=seed_list,
                protocol=protocol or None,
                representation=representation or None,
                track=track or None,
            )
            frame = mean_map(run_frame(cfg))
            got = {(r.method, int(r.n_bits)): r.map for r in frame.itertuples()}
        if external:
            got.update(recorded_map(base.out, dataset, external, seed_list))
        for r in group.itertuples():
            ours = got.get((r.method, int(r.bits)))
            delta = None if ours is None else ours - float(r.map)
            status = "MISSING" if ours is None else ("DROP" if delta < -tolerance else "ok")
            rows.append(
                {
                    "dataset": dataset,
                    "method": r.method,
                    "bits": int(r.bits),
                    "reference": float(r.map),
                    "ours": ours,
                    "delta": delta,
                    "status": status,
                }
            )
    return pd.DataFrame(rows)
