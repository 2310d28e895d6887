"""The grid (dataset x method x bits x seed) -> records.

Each cell: draw the protocol's split for the seed, get the method's input (a representation's
features, cached on disk, or images), fit on the training part only, encode queries and database,
score the codes (``hashbench.metrics``), time faiss queries (``hashbench.search``), write one record
atomically. Finished cells are skipped unless ``force``.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import records as rec
from .errors import HashbenchError, InvalidInput, UnknownName, check_n_bits
from .methods import get_method, resolve_methods
from .protocols import GIVEN, get_protocol, given_split, make_split, split_checksum
from .training import resolve_device

#: parameters that change how a cell runs but not what it computes: kept out of the cache key.
RUNTIME_PARAMS = {"device", "verbose", "checkpoint_dir", "checkpoint_every", "n_jobs"}

#: the default representation of each dataset for methods that take vectors.
DEFAULT_REPRESENTATION = {"digits": "pixels", "mnist": "pixels", "synthetic": "pixels", "cifar10": "gist",
                          "nuswide21": "gist"}


@dataclass
class RunConfig:
    """What ``hashbench run`` asks for."""

    dataset: str
    methods: list[str]
    bits: list[int] = field(default_factory=lambda: [16, 32, 64])
    seeds: list[int] = field(default_factory=lambda: [0])
    data_root: str | None = None
    download: bool = False
    protocol: str | None = None
    representation: str | None = None
    weights: str | None = None
    track: str | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "auto"
    out: str = "runs"
    force: bool = False
    cache_dir: str | None = None
    progress: bool = True
    command: str = ""  # the command line that asked for this run, stored in each record


def parse_bits(spec: str | Iterable[int]) -> list[int]:
    """``"16,32,64"`` -> [16, 32, 64]; each in 1..1024, else InvalidInput."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for p in parts:
        if isinstance(p, str):
            p = p.strip()
            if not p:
                continue
            try:
                p = int(p)
            except ValueError:
                raise InvalidInput(
                    f"code length {p!r} is not an integer; give bits as e.g. --bits 16,32,64"
                ) from None
        out.append(check_n_bits(p))
    if not out:
        raise InvalidInput("no code length given; use e.g. --bits 16,32,64")
    return sorted(set(out))


def parse_seeds(spec: str | Iterable[int]) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> list of non-negative ints."""
    if not isinstance(spec, str):
        return [int(s) for s in spec]
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise InvalidInput(
                f"seed {part!r} is not an integer or range; use e.g. --seeds 0,1,2 or --seeds 0-4"
            ) from None
    if not out or min(out) < 0:
        raise InvalidInput("seeds must be non-negative integers, e.g. --seeds 0,1,2")
    return sorted(set(out))


def parse_params(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["itq.n_iter=10", "ssdh.epochs=3"]`` -> {"itq": {"n_iter": 10}, "ssdh": {"epochs": 3}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise InvalidInput(f"--set {item!r} is not of the form METHOD.PARAM=VALUE, e.g. --set itq.n_iter=10")
        key, value = item.split("=", 1)
        method, param = key.split(".", 1)
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        out.setdefault(method.strip().lower(), {})[param.strip()] = parsed
    return out


def build_method(name: str, n_bits: int, seed: int, user_params: dict[str, Any], device: str, track: str | None,
                 weights: str | None = None):
    """Instantiate a registered method with bits, seed, device, track, backbone weights and the user's parameters."""
    cls = get_method(name)
    accepted = cls().get_params(deep=False)
    kwargs: dict[str, Any] = {"n_bits": n_bits}
    if "random_state" in accepted:
        kwargs["random_state"] = seed
    if "device" in accepted:
        kwargs["device"] = device
    if track is not None and "track" in accepted:
        kwargs["track"] = track
    if weights is not None and "weights" in accepted:
        kwargs["weights"] = weights
    for k, v in user_params.items():
        if k not in accepted:
            raise InvalidInput(
                f"method {name!r} has no parameter {k!r}; its parameters: {', '.join(sorted(accepted))}"
            )
        if k in ("n_bits", "random_state"):
            raise InvalidInput(f"set {k} with --bits / --seeds, not --set {name}.{k}")
        default = accepted[k]
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise InvalidInput(f"--set {name}.{k}={v!r}: expected a number like its default {default!r}")
        if isinstance(default, bool) and not isinstance(v, bool):
            raise InvalidInput(f"--set {name}.{k}={v!r}: expected True or False")
        kwargs[k] = v
    return cls(**kwargs)


def method_track(method) -> str:
    """What a number is computed from: ``features`` (hash layers / shallow method on a representation),
    ``end2end`` (a backbone trained end to end) or ``images`` (a network trained from scratch on images)."""
    track = getattr(method, "track", None)
    if track:
        return str(track)
    return "images" if method.input == "images" else "features"


class Cell:
    """One (method, bits, seed) of a run, with its configuration and record path."""

    def __init__(self, method_name: str, n_bits: int, seed: int, method, config: dict[str, Any], path: Path):
        self.method_name, self.n_bits, self.seed = method_name, n_bits, seed
        self.method, self.config, self.path = method, config, path


def run_grid(cfg: RunConfig, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every cell of the grid (skipping finished ones unless ``cfg.force``) and return the
    metadata of their records (configuration, scores, timings; the codes stay on disk)."""
    from .datasets import load_dataset

    methods = resolve_methods(",".join(cfg.methods)) if cfg.methods else resolve_methods("all")
    bits = parse_bits(cfg.bits)
    seeds = parse_seeds(cfg.seeds)
    unknown = set(cfg.params) - set(methods)
    if unknown:
        raise UnknownName(f"--set names method(s) not in this run: {', '.join(sorted(unknown))}")
    if cfg.track not in (None, "features", "end2end"):
        raise InvalidInput(f"unknown track {cfg.track!r}; use --track features or --track end2end")
    device = str(resolve_device(cfg.device))

    dataset = load_dataset(cfg.dataset, data_root=cfg.data_root, download=cfg.download)
    protocol_name = cfg.protocol or dataset.protocol or ("given" if dataset.given_split is not None else "generic")
    base_name = cfg.dataset.split(":", 1)[0]
    representation = cfg.representation or (
        "features" if dataset.features is not None else DEFAULT_REPRESENTATION.get(base_name, "pixels")
    )
    topk = None if protocol_name == GIVEN else get_protocol(protocol_name).topk
    records_dir = Path(cfg.out) / dataset_dirname(cfg.dataset) / "records"

    splits: dict[int, dict[str, np.ndarray]] = {}

    def split_for(seed: int) -> dict[str, np.ndarray]:
        if seed not in splits:
            if protocol_name == GIVEN:
                if dataset.given_split is None:
                    raise InvalidInput(f"protocol 'given' needs a dataset with fixed lists; {cfg.dataset} has none")
                splits[seed] = given_split(dataset.given_split, len(dataset))
            else:
                splits[seed] = make_split(protocol_name, dataset.labels, seed)
        return splits[seed]

    cells: list[Cell] = []
    for name in methods:
        for b in bits:
            for s in seeds:
                method = build_method(name, b, s, cfg.params.get(name, {}), device, cfg.track, cfg.weights)
                track = method_track(method)
                split = split_for(s)
                params = {k: v for k, v in method.get_params(deep=False).items() if k not in RUNTIME_PARAMS}
                config = {
                    "dataset": dataset_dirname(cfg.dataset),
                    "dataset_checksum": dataset.checksum or dataset.source,
                    "protocol": protocol_name,
                    "split_checksum": split_checksum(split),
                    "representation": representation if method.input == "features" else "images",
                    # the weights file matters only where a backbone computes the input
                    "weights": cfg.weights if (str(representation).startswith("cnn:") or track == "end2end")
                    else None,
                    "track": track,
                    "method": name,
                    "params": params,
                    "n_bits": b,
                    "seed": s,
                    "metric": {"topk": topk, "zero_relevant": "count"},
                }
                if getattr(method, "default_epochs", None) is not None:
                    # parameters left at None resolve through class defaults (epochs per track): key them too
                    config["class_defaults"] = {"default_epochs": method.default_epochs}
                cells.append(Cell(name, b, s, method, config, rec.record_path(records_dir, config)))

    for c in cells:  # fail before any cell runs, not halfway through the grid
        if c.method.input == "images" and dataset.images is None:
            raise InvalidInput(f"method {c.method_name!r} trains on images, but dataset {cfg.dataset!r} holds only "
                               "features; use an image dataset (cifar10, mnist, digits, imagefolder:DIR)")
    todo = [c for c in cells if cfg.force or not c.path.exists()]
    if len(todo) < len(cells):
        log(f"{len(cells) - len(todo)} of {len(cells)} cells already finished in {records_dir}; "
            "reusing them (--force re-runs)")

    feature_cache: dict[tuple, np.ndarray] = {}

    def features(rotate: int = 0, indices: np.ndarray | None = None) -> np.ndarray:
        from .features import compute_features

        key = (representation, rotate, None if indices is None else indices.tobytes())
        if key not in feature_cache:
            if rotate == 0 and dataset.features is not None and representation == "features":
                X = dataset.features
            else:
                X = compute_features(dataset, representation, indices=indices, rotate=rotate,
                                     cache_dir=cfg.cache_dir, weights=cfg.weights, device=device,
                                     progress=cfg.progress, download=cfg.download)
            feature_cache[key] = np.asarray(X)
        return feature_cache[key]

    bar = _progress(todo, cfg.progress)
    for cell in bar:
        if hasattr(bar, "set_description"):
            bar.set_description(f"{cell.method_name} {cell.n_bits}b seed {cell.seed}")
        _run_cell(cell, dataset, split_for(cell.seed), features, topk, device, cfg.command)
    return [rec.read_meta(c.path) for c in cells]


def _progress(items: list, enabled: bool):
    if not enabled or not items:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, unit="cell", leave=True)


def _inputs(method, dataset, idx: np.ndarray, features) -> np.ndarray:
    if method.input == "images":
        if dataset.images is None:
            raise InvalidInput(
                f"method {type(method).__name__} trains on images, but dataset {dataset.name!r} holds only "
                "features; use an image dataset (cifar10, mnist, digits, imagefolder:DIR)"
            )
        return dataset.images.load(idx)
    return features()[idx]


def _run_cell(cell: Cell, dataset, split, features, topk, device, command: str = "") -> None:
    from .metrics import evaluate
    from .search import time_queries

    method = cell.method
    train_idx, query_idx, db_idx = split["train"], split["query"], split["database"]
    fit_kwargs: dict[str, Any] = {}
    if getattr(method, "rotation_angles", ()) and method.input == "features":
        fit_kwargs["rotated"] = [features(rotate=a, indices=train_idx) for a in method.rotation_angles]
    X_train = _inputs(method, dataset, train_idx, features)
    try:
        t0 = time.perf_counter()
        method.fit(X_train, **fit_kwargs)  # unsupervised: labels never reach fit
        train_s = time.perf_counter() - t0
        del X_train
        t0 = time.perf_counter()
        q_codes = np.asarray(method.encode(_inputs(method, dataset, query_idx, features)), dtype=bool)
        db_codes = _encode_in_chunks(method, dataset, db_idx, features)
        encode_s = time.perf_counter() - t0
    except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError) as exc:
        # A method rejecting its hyperparameters or data; a user can fix it with --set or the data.
        raise InvalidInput(
            f"method {cell.method_name!r} failed at {cell.n_bits} bits, seed {cell.seed}: "
            f"{type(exc).__name__}: {exc}; check its --set {cell.method_name}.* values and the input data"
        ) from exc
    if q_codes.shape != (len(query_idx), cell.n_bits) or db_codes.shape != (len(db_idx), cell.n_bits):
        raise HashbenchError(f"method {cell.method_name} returned codes of shape {q_codes.shape} / {db_codes.shape}, "
                             f"expected (n, {cell.n_bits})")
    scores = evaluate(q_codes, db_codes, dataset.labels[query_idx], dataset.labels[db_idx], topk=topk)
    query_s = time_queries(db_codes, q_codes, k=100)
    meta = {
        "config": cell.config,
        "dataset_source": dataset.source,
        "split_sizes": {k: int(len(v)) for k, v in split.items()},
        "scores": _jsonable_scores(scores),
        "timings": {
            "train_s": train_s,
            "encode_us_per_item": 1e6 * encode_s / (len(query_idx) + len(db_idx)),
            "query_us_per_query": 1e6 * query_s,
        },
        "bytes_per_code": (cell.n_bits + 7) // 8,
        "versions": rec.versions(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_ns": time.time_ns(),
        "command": command,
    }
    rec.write_record(cell.path, meta, q_codes, db_codes, split)


def _encode_in_chunks(method, dataset, idx: np.ndarray, features, chunk: int = 20000) -> np.ndarray:
    parts = [np.asarray(method.encode(_inputs(method, dataset, idx[i : i + chunk], features)), dtype=bool)
             for i in range(0, len(idx), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, method.n_bits), dtype=bool)


def _jsonable_scores(scores: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in scores.items():
        if isinstance(v, (int, float, np.integer, np.floating)):
            out[k] = float(v)
        elif isinstance(v, np.ndarray) and v.ndim == 1 and v.size <= 2048:
            out[k] = [float(x) for x in v]
        elif isinstance(v, dict):
            inner = _jsonable_scores(v)
            if inner:
                out[k] = inner
        elif isinstance(v, str):
            out[k] = v
    return out


def dataset_dirname(name: str) -> str:
    """The folder a dataset's tables and records go to: ``features:/a/b.npz`` -> ``features-b``."""
    if ":" in name:
        kind, arg = name.split(":", 1)
        return f"{kind}-{Path(arg).stem or 'data'}"
    return name
