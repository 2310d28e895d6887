"""The second step of a run: train one cell and write its record. Runs wherever an executor puts it.

:func:`execute_cell` takes a :class:`RunContext` (what every cell of a run shares: the dataset's
name and root, representation, weights, cache, device, command) and a :class:`~hashbench.run.plan.Task`,
both plain picklable values. In its process it loads the dataset and the representation once
(memoised per process; features come from the content-keyed disk cache), fits the method on the
training part only, encodes queries and database, diagnoses collapsed codes, times faiss queries
and writes the record atomically. It returns the record's metadata. Scores are the next step
(:mod:`hashbench.run.scoring`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import records as rec
from ..datasets.protocols import split_checksum
from ..errors import HashbenchError, InvalidInput
from .plan import Task


@dataclass(frozen=True)
class RunContext:
    """What every cell of one run shares (picklable, hashable: the key of per-process memos)."""

    dataset: str
    data_root: str | None
    download: bool
    protocol: str
    representation: str
    weights: str | None
    cache_dir: str | None
    device: str
    progress: bool = False
    command: str = ""
    refresh_features: bool = False


@functools.lru_cache(maxsize=4)
def load_data(name: str, data_root: str | None, download: bool) -> Any:
    """A dataset, memoised per process (one load per run and worker): the runner's first step, and
    each worker's."""
    from ..datasets import load_dataset

    return load_dataset(name, data_root=data_root, download=download)


def reset() -> None:
    """Forget this process's memos (a new run re-reads data that may have changed on disk)."""
    load_data.cache_clear()
    _features_memo.clear()


def dataset_of(ctx: RunContext):
    return load_data(ctx.dataset, ctx.data_root, ctx.download)


def split_of(ctx: RunContext, dataset, split_seed: int) -> dict[str, np.ndarray]:
    from ..datasets.protocols import GIVEN, given_split, make_split

    if ctx.protocol == GIVEN:
        return given_split(dataset.given_split, len(dataset))
    return make_split(ctx.protocol, dataset.labels, split_seed)


_features_memo: dict[tuple, np.ndarray] = {}


def features_of(
    ctx: RunContext,
    dataset,
    rotate: int = 0,
    indices: np.ndarray | None = None,
    refresh: bool = False,
    representation: str | None = None,
) -> np.ndarray:
    """A representation (default: the run's) of the whole dataset (or of ``indices``), memoised per
    process."""
    from ..features import compute_features

    rep = ctx.representation if representation is None else representation
    key = (ctx, rep, rotate, None if indices is None else indices.tobytes())
    if key not in _features_memo or refresh:
        if rotate == 0 and dataset.features is not None and rep == "features":
            X = dataset.features
        else:
            X = compute_features(
                dataset,
                rep,
                indices=indices,
                rotate=rotate,
                cache_dir=ctx.cache_dir,
                weights=ctx.weights,
                device=ctx.device,
                progress=ctx.progress,
                download=ctx.download,
                **({"refresh": True} if refresh else {}),
            )
        _features_memo[key] = np.asarray(X)
    return _features_memo[key]


def prepare(ctx: RunContext, tasks: list[Task]) -> None:
    """Compute what cells share (the representation, rotated copies) once, in this process, so that
    workers find it in the disk cache instead of each computing it. ``--refresh-features`` applies here."""
    from ..methods import get_method

    dataset = dataset_of(ctx)
    refreshed: set[tuple] = set()
    for t in tasks:
        method = get_method(t.method)(**t.kwargs)
        if method.input != "features":
            continue
        rep = method.input_representation(ctx.representation)
        wanted: list[tuple[int, np.ndarray | None]] = [(0, None)]
        angles = [a for rotations in method.fit_extras().values() for a in rotations]
        if angles:
            train = split_of(ctx, dataset, t.split_seed)["train"]
            wanted += [(a, train) for a in angles]
        for rotate, idx in wanted:
            k = (rep, rotate, None if idx is None else idx.tobytes())
            refresh = ctx.refresh_features and k not in refreshed
            features_of(ctx, dataset, rotate, idx, refresh=refresh, representation=rep)
            refreshed.add(k)


def collapse_diagnosis(db_codes: np.ndarray) -> dict[str, Any]:
    """Whether codes collapsed: a bit constant over the database, or one code shared by most items."""
    from .. import bits

    n, b = db_codes.shape
    constant = int((db_codes.all(axis=0) | ~db_codes.any(axis=0)).sum())
    _, counts = np.unique(bits.pack(db_codes), axis=0, return_counts=True)
    top = float(counts.max() / n) if n else 0.0
    collapsed = constant > 0 or top >= 0.5
    note = ""
    if collapsed:
        parts = []
        if constant:
            parts.append(f"{constant} of {b} bits constant over the database")
        if top >= 0.5:
            parts.append(f"one code shared by {100 * top:.0f}% of the database")
        note = "; ".join(parts)
    return {
        "collapsed": collapsed,
        "constant_bits": constant,
        "top_code_share": top,
        "distinct_codes": int(len(counts)),
        "note": note,
    }


def label_note(query_labels: np.ndarray, db_labels: np.ndarray) -> str:
    """A warning when relevance is trivial (one class): MAP is then 1 whatever the codes."""
    if db_labels.ndim == 1 and len(np.unique(np.concatenate([query_labels, db_labels]))) == 1:
        return (
            "every item has the same label, so every database item is relevant to every query and MAP is 1 "
            "whatever the codes"
        )
    return ""


def _inputs(method, dataset, ctx: RunContext, idx: np.ndarray) -> np.ndarray:
    if method.input == "images":
        return dataset.images.load(idx)
    return features_of(ctx, dataset, representation=method.input_representation(ctx.representation))[idx]


def _encode_in_chunks(method, dataset, ctx, idx: np.ndarray, chunk: int = 20000) -> np.ndarray:
    parts = [
        np.asarray(method.encode(_inputs(method, dataset, ctx, idx[i : i + chunk])), dtype=bool)
        for i in range(0, len(idx), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, method.n_bits), dtype=bool)


def execute_cell(ctx: RunContext, task: Task) -> dict[str, Any]:
    """Train one cell and write its record; returns the record's metadata."""
    from ..methods import get_method
    from ..search import time_queries

    dataset = dataset_of(ctx)
    split = split_of(ctx, dataset, task.split_seed)
    if task.config.get("split_checksum") not in (None, split_checksum(split)):
        raise HashbenchError(
            f"cell {task.label}: the split drawn here ({split_checksum(split)}) is not the one planned "
            f"({task.config['split_checksum']}); the data under {ctx.data_root or ctx.dataset} changed during the run"
        )
    method = get_method(task.method)(**task.kwargs)
    train_idx, query_idx, db_idx = split["train"], split["query"], split["database"]
    rep = method.input_representation(ctx.representation)
    fit_kwargs = {
        name: [features_of(ctx, dataset, a, train_idx, representation=rep) for a in rotations]
        for name, rotations in method.fit_extras().items()
    }
    if getattr(method, "curve_monitored", False):
        # only the learning curve's validation MAP reads them (codes are bitwise those without)
        fit_kwargs["curve_labels"] = dataset.labels[train_idx]
    try:
        X_train = _inputs(method, dataset, ctx, train_idx)
        t0 = time.perf_counter()
        method.fit(X_train, **fit_kwargs)  # unsupervised: labels never reach the loss
        train_s = time.perf_counter() - t0
        del X_train
        t0 = time.perf_counter()
        q_codes = np.asarray(method.encode(_inputs(method, dataset, ctx, query_idx)), dtype=bool)
        db_codes = _encode_in_chunks(method, dataset, ctx, db_idx)
        encode_s = time.perf_counter() - t0
    except HashbenchError:
        raise
    except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
        # A method rejecting its hyperparameters or data; a user can fix it with --set or the data.
        raise InvalidInput(
            f"method {task.method!r} failed at {task.n_bits} bits, seed {task.seed}: "
            f"{type(exc).__name__}: {exc}; check its --set {task.method}.* values and the input data"
        ) from exc
    if q_codes.shape != (len(query_idx), task.n_bits) or db_codes.shape != (len(db_idx), task.n_bits):
        raise HashbenchError(
            f"method {task.method} returned codes of shape {q_codes.shape} / {db_codes.shape}, "
            f"expected (n, {task.n_bits})"
        )
    q_labels, db_labels = dataset.labels[query_idx], dataset.labels[db_idx]
    meta = {
        "config": task.config,
        "key": task.key,
        "variant": task.variant,
        "resolved_params": dict(getattr(method, "resolved_params_", {}) or {}),
        "dataset_source": dataset.source,
        "split_sizes": {k: int(len(v)) for k, v in split.items()},
        "collapse": collapse_diagnosis(db_codes),
        "label_note": label_note(q_labels, db_labels),
        "timings": {
            "train_s": train_s,
            "encode_us_per_item": 1e6 * encode_s / (len(query_idx) + len(db_idx)),
            "query_us_per_query": 1e6 * (tq := time_queries(db_codes, q_codes, k=100)),  # the median
            "query_us_p25": 1e6 * tq.p25,
            "query_us_p75": 1e6 * tq.p75,
            "query_repeats": tq.repeats,
        },
        "bytes_per_code": (task.n_bits + 7) // 8,
        **({"curve": method.curve_} if getattr(method, "curve_", None) is not None else {}),
        "versions": rec.versions(ctx.device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_ns": time.time_ns(),
        "command": ctx.command,
    }
    rec.write_record(task.path, meta, q_codes, db_codes, split, q_labels, db_labels)
    return meta
