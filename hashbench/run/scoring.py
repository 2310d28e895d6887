"""Scores from stored codes: the third step of a run (plan -> execute -> score -> tables).

A record holds codes and labels, not scores. :func:`score_record` computes the metrics of one
record under a metric specification (:func:`metric_spec`: metric version, cut-off K, the N of
precision@N, the zero-relevant rule) and caches them beside the records, one file per (record,
specification)::

    DIR/<dataset>/scores/<record stem>-<spec digest>.npz

The specification is not part of the record key, so a new cut-off (MAP@1000) or another
precision@N needs no retraining: ``hashbench rescore --out DIR --topk 1000``. A scores file holds
the scalar scores and the precision-recall curve (JSON ``meta``) and per-query float32 arrays
(``ap``, ``ap_index``: tie-aware and index-order AP, @K where K is set) for paired comparisons.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..digests import canonical_json, json_digest
from ..io import atomic_write_bytes
from ..records import CHECKSUM, CorruptRecord, Record, members_digest, read_record

#: the N of precision@N every table reports (those larger than the database are left out)
PRECISION_AT = (100, 500, 1000, 2000, 5000)
SCORES_DIR = "scores"


def metric_spec(
    topk: int | None = None, precision_at: Iterable[int] = PRECISION_AT, zero_relevant: str = "count"
) -> dict[str, Any]:
    """Everything a record's scores depend on besides its codes and labels (:func:`hashbench.metrics.metric_spec`)."""
    from .. import metrics

    return metrics.metric_spec(topk, precision_at=tuple(precision_at), zero_relevant=zero_relevant)


def spec_digest(spec: dict[str, Any]) -> str:
    return json_digest(spec, length=12)


def scores_path(record_path: str | Path, spec: dict[str, Any]) -> Path:
    """Where the scores of a record under ``spec`` live."""
    record_path = Path(record_path)
    return record_path.parent.parent / SCORES_DIR / f"{record_path.stem}-{spec_digest(spec)}.npz"


def _jsonable(scores: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in scores.items():
        if k == "per_query":
            continue
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = float(v)
        elif isinstance(v, np.ndarray):
            out[k] = v.tolist()
        elif isinstance(v, dict):
            out[k] = _jsonable(v)
        elif v is None or isinstance(v, str):
            out[k] = v
    return out


def compute_scores(record_path: str | Path | Record, spec: dict[str, Any]) -> dict[str, Any]:
    """The metrics of a stored record under ``spec`` (not cached): scalars, ``pr`` and ``per_query``."""
    from ..metrics import evaluate, per_query_scores

    rec = record_path if isinstance(record_path, Record) else read_record(record_path)
    nd = len(rec.arrays["db_codes"])
    pa = [n for n in spec["precision_at"] if n <= nd] or [min(spec["precision_at"][0], nd)]
    scores = evaluate(
        rec.query_codes,
        rec.db_codes,
        rec.query_labels,
        rec.db_labels,
        topk=spec["topk"],
        precision_at=pa,
        zero_relevant=spec["zero_relevant"],
        per_query=True,
    )
    scores["per_query"] = per_query_scores(scores)
    return scores


def _record_digest(rec: Record) -> str:
    """The checksum of a record's content (its stored one is verified by :func:`read_record`)."""
    return members_digest({**rec.arrays, "meta": np.array(canonical_json(rec.meta))})


def score_record(record_path: str | Path, spec: dict[str, Any], *, force: bool = False) -> Path:
    """Compute and cache the scores of one record under ``spec``; returns the scores file.

    The record is read whole and its checksum verified first, so no score of a corrupt record is
    ever returned (:class:`CorruptRecord` names it). An existing scores file is kept unless
    ``force``, unless it is unreadable, fails its own checksum, or was computed from other content
    than the record now holds; then it is recomputed.
    """
    rec = read_record(record_path)
    digest = _record_digest(rec)
    out = scores_path(record_path, spec)
    if not force and out.exists():
        try:
            cached = load_scores(out)
        except CorruptRecord as exc:
            warnings.warn(f"{exc}; recomputing it", stacklevel=2)
        else:
            if cached.get("record_sha256") in (None, digest):
                return out
    scores = compute_scores(rec, spec)
    meta = {"spec": spec, "record": Path(record_path).name, "record_sha256": digest, "scores": _jsonable(scores)}
    members = {"meta": np.array(canonical_json(meta)), **scores["per_query"]}
    buf = io.BytesIO()
    np.savez_compressed(buf, **members, **{CHECKSUM: np.array(members_digest(members))})
    atomic_write_bytes(out, buf.getvalue())
    return out


def load_scores(path: str | Path) -> dict[str, Any]:
    """A scores file as a dict: the scalar scores, ``pr`` curves, ``spec`` and ``per_query`` arrays.

    A file with a checksum (written since checksums exist) is verified; a mismatch raises
    :class:`CorruptRecord` naming it.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            members = {k: z[k] for k in z.files}
        stored = members.pop(CHECKSUM, None)
        meta = json.loads(str(members["meta"]))
    except Exception as exc:
        raise CorruptRecord(
            f"scores file {path} is unreadable ({type(exc).__name__}); `hashbench rescore` rewrites it"
        ) from None
    if stored is not None and str(stored) != members_digest(members):
        raise CorruptRecord(f"scores file {path} fails its checksum; `hashbench rescore` rewrites it")
    per_query = {k: v for k, v in members.items() if k != "meta"}
    out = dict(meta["scores"])
    out["spec"] = meta["spec"]
    out["record_sha256"] = meta.get("record_sha256")
    if "pr" in out:
        out["pr"] = {k: np.asarray(v) for k, v in out["pr"].items()}
    out["per_query"] = per_query
    return out


def score_all(
    record_paths: Iterable[str | Path], spec: dict[str, Any], *, force: bool = False, progress: bool = False
) -> dict[Path, Path]:
    """Scores for many records (cached ones reused unless ``force``); corrupt records are skipped with
    a warning. Returns {record path: scores path}."""
    paths = list(record_paths)
    if progress and len(paths) > 1:
        from tqdm.auto import tqdm

        paths = tqdm(paths, unit="record", desc="scoring", leave=False)
    out: dict[Path, Path] = {}
    for p in paths:
        try:
            out[Path(p)] = score_record(p, spec, force=force)
        except CorruptRecord as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
    return out


def metric_label(df) -> str:
    """The name of the MAP a frame's records were scored with, for tables, figures and the report:
    ``MAP@K`` under a cut-off K (``MAP@50/MAP@5000`` when they mix), else ``MAP (whole database)``."""
    import pandas as pd

    if "metric_topk" not in df:
        return "MAP (whole database)"
    ks = sorted({int(k) for k in pd.to_numeric(df["metric_topk"], errors="coerce").dropna()})
    return "/".join(f"MAP@{k}" for k in ks) if ks else "MAP (whole database)"
