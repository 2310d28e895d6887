"""The first step of a run: the grid expanded into cells, validated before anything trains.

``plan(cfg, dataset)`` is pure: a :class:`RunConfig` and a loaded dataset in, a :class:`Plan` out —
one :class:`Task` per (method, parameter values, code length, seed) with its configuration, record
key and record path. Every method is instantiated and its parameters checked here, so a bad
``--set`` value fails before the first cell trains. Tasks are small, picklable values: an executor
(:mod:`hashbench.run.executors`) ships them to wherever cells run (:mod:`hashbench.run.execute`).

Sweeps: ``--set METHOD.PARAM=v1,v2,...`` (or ``start:stop:step``, inclusive) gives one
configuration per value; several swept parameters of one method give their product. Each
configuration is its own table row, labelled by its *variant*: the parameters that differ from
the method's defaults (``n_iter=10``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import records as rec
from ..datasets.protocols import GIVEN, get_protocol, given_split, make_split, split_checksum
from ..errors import InvalidInput, UnknownName, check_n_bits
from ..methods import RUNTIME_PARAMS, get_method, list_methods, resolve_methods
from ..values import NOT_VARIANT, format_variant, parse_value

#: the default representation of each dataset for methods that take vectors (README says why).
DEFAULT_REPRESENTATION = {
    "digits": "pixels",
    "mnist": "pixels",
    "synthetic": "pixels",
    "cifar10": "cnn:efficientnet-lite0",
    "nuswide21": "cnn:efficientnet-lite0",
}
DEFAULT_BITS = (16, 32, 64)


def default_representation(name: str, dataset: Any) -> str:
    """The representation ``run`` uses when ``--features`` is not given: a dataset's own features
    where it has them, else :data:`DEFAULT_REPRESENTATION` of its kind (``pixels`` otherwise)."""
    if dataset.features is not None:
        return "features"
    return DEFAULT_REPRESENTATION.get(name.split(":", 1)[0], "pixels")


@dataclass
class RunConfig:
    """What ``hashbench run`` asks for."""

    dataset: str
    methods: list[str] = field(default_factory=lambda: ["all"])
    bits: list[int] = field(default_factory=lambda: list(DEFAULT_BITS))
    seeds: list[int] = field(default_factory=lambda: [0])
    split_seed: int | None = None
    data_root: str | None = None
    download: bool = False
    protocol: str | None = None
    representation: str | None = None
    weights: str | None = None
    track: str | None = None
    train_stages: str | None = None  # deep methods: backbone stages to fine-tune (0, K or "all")
    params: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    device: str = "auto"
    out: str = "runs"
    force: bool = False
    refresh_features: bool = False
    cache_dir: str | None = None
    progress: bool = True
    jobs: int = 1
    command: str = ""  # the command line that asked for this run, stored in each record


@dataclass(frozen=True)
class Task:
    """One cell: everything a worker needs to train it and write its record (picklable)."""

    method: str
    kwargs: dict[str, Any]  # constructor arguments, runtime ones (device) included
    n_bits: int
    seed: int
    split_seed: int
    config: dict[str, Any]  # what the record key digests
    variant: str
    path: str

    @property
    def key(self) -> str:
        return rec.cell_key(self.config)

    @property
    def label(self) -> str:
        v = f"[{self.variant}] " if self.variant else ""
        return f"{self.method} {v}{self.n_bits}b seed {self.seed}"


@dataclass
class Plan:
    """The expanded grid of one run."""

    tasks: list[Task]
    records_dir: Path
    protocol: str
    representation: str
    topk: int | None


# -- parsing -------------------------------------------------------------------------------------
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
                raise InvalidInput(f"code length {p!r} is not an integer; give bits as e.g. --bits 16,32,64") from None
        out.append(check_n_bits(p))
    if not out:
        raise InvalidInput("no code length given; use e.g. --bits 16,32,64")
    return sorted(set(out))


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise InvalidInput(f"seed {text!r} is not an integer or range; use e.g. --seeds 0,1,2 or --seeds 0-4") from None
    if v < 0:
        raise InvalidInput(f"seed {v} is negative; seeds must be non-negative integers, e.g. --seeds 0,1,2")
    return v


def parse_seeds(spec: str | Iterable[int]) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> sorted non-negative ints."""
    if not isinstance(spec, str):
        return sorted({_seed(str(s)) for s in spec}) or parse_seeds("")
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.startswith("-"):
            raise InvalidInput(f"seed {part} is negative; seeds must be non-negative integers, e.g. --seeds 0,1,2")
        if "-" in part:
            a, b = (_seed(x.strip()) for x in part.split("-", 1))
            if b < a:
                raise InvalidInput(f"seed range {part!r} is empty; write it as LOW-HIGH, e.g. --seeds 0-4")
            out.extend(range(a, b + 1))
        else:
            out.append(_seed(part))
    if not out:
        raise InvalidInput("no seed given; use e.g. --seeds 0 or --seeds 0,1,2")
    return sorted(set(out))


def _range(text: str, item: str) -> list[Any]:
    parts = text.split(":")
    values = [parse_value(p) for p in parts]
    if len(parts) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise InvalidInput(f"--set {item!r}: a range is START:STOP:STEP with numbers, e.g. 0:0.9:0.1")
    a, b, s = values
    if s <= 0 or b < a:
        raise InvalidInput(f"--set {item!r}: the range needs STEP > 0 and STOP >= START")
    n = int(math.floor((b - a) / s + 1e-9)) + 1
    if n > 1000:
        raise InvalidInput(f"--set {item!r}: the range has {n} values; give at most 1000")
    if all(isinstance(v, int) for v in values):
        return [a + i * s for i in range(n)]
    return [round(a + i * s, 12) for i in range(n)]


def parse_params(items: Iterable[str]) -> dict[str, dict[str, list[Any]]]:
    """``["itq.n_iter=0,10,50", "ssdh.epochs=3"]`` -> {"itq": {"n_iter": [0, 10, 50]}, "ssdh": {"epochs": [3]}}.

    A value is a Python literal (``10``, ``0.5``, ``True``, ``'adam'``, or a bare word); a comma list
    or ``START:STOP:STEP`` range is a sweep; a list or tuple value is written in brackets.
    """
    out: dict[str, dict[str, list[Any]]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise InvalidInput(f"--set {item!r} is not of the form METHOD.PARAM=VALUE, e.g. --set itq.n_iter=10")
        key, value = item.split("=", 1)
        method, param = (x.strip() for x in key.split(".", 1))
        value = value.strip()
        if not method or not param or not value:
            raise InvalidInput(f"--set {item!r} is not of the form METHOD.PARAM=VALUE, e.g. --set itq.n_iter=10")
        if value[0] in "[({'\"":
            values = [parse_value(value)]
        elif ":" in value and all(c.isdigit() or c in ".:-e" for c in value):
            values = _range(value, item)
        else:
            values = [parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if not values:
            raise InvalidInput(f"--set {item!r} gives no value")
        seen = out.setdefault(method.lower(), {})
        if param in seen:
            raise InvalidInput(
                f"--set {method}.{param} is given twice; give every value in one --set, e.g. --set {method}.{param}=a,b"
            )
        seen[param] = list(dict.fromkeys(values))
    return out


def resolve_method_names(spec: Iterable[str]) -> list[str]:
    """``--methods`` values -> registered names. An empty list is an error; only ``all`` means all."""
    text = ",".join(s for s in spec if s is not None)
    if not text.strip(" ,"):
        raise InvalidInput("--methods is empty; name methods (e.g. --methods itq,lsh) or use --methods all")
    return resolve_methods(text)


# -- methods ---------------------------------------------------------------------------------------
def build_method(
    name: str,
    n_bits: int,
    seed: int,
    user_params: dict[str, Any],
    device: str,
    track: str | None,
    weights: str | None = None,
    representation: str | None = None,
    train_stages: str | int | None = None,
):
    """Instantiate a registered method with bits, seed, device, track, backbone weights and the user's
    parameters, and check its parameters (InvalidInput naming the bad one).

    A deep method fine-tuning backbone stages (``train_stages``) fine-tunes the run's CNN
    representation (``arch`` from ``representation``) unless ``arch`` is set."""
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
    if train_stages is not None and "train_stages" in accepted:
        kwargs["train_stages"] = train_stages
    for k, v in user_params.items():
        if k not in accepted:
            raise InvalidInput(f"method {name!r} has no parameter {k!r}; its parameters: {', '.join(sorted(accepted))}")
        if k in ("n_bits", "random_state"):
            raise InvalidInput(f"set {k} with --bits / --seeds, not --set {name}.{k}")
        kwargs[k] = v
    method = cls(**kwargs)
    regime = str(getattr(method, "regime", ""))
    if regime.startswith("finetune:") and "arch" not in user_params and "arch" in accepted:
        rep = str(representation or "")
        if not rep.startswith("cnn:"):
            raise InvalidInput(
                f"{name}.train_stages={kwargs['train_stages']!r} fine-tunes the stages of a CNN, but this run's "
                f"representation is {rep or 'none'}; use --features cnn:efficientnet-lite0 (or set {name}.arch)"
            )
        kwargs["arch"] = rep[4:]
        method = cls(**kwargs)
    method.check_params()  # declared types and ranges: InvalidInput naming the parameter
    return method, kwargs


def method_track(method) -> str:
    """What a number is computed from: ``features`` (hash layers / shallow method on a representation),
    ``end2end`` (a network trained end to end on the images: a pretrained backbone fine-tuned, or, for
    HashGAN, its own networks from scratch) or ``images`` (a method without tracks that takes images)."""
    track = getattr(method, "regime", None) or getattr(method, "track", None)
    if track:
        return str(track)
    return "images" if method.input == "images" else "features"


def variant_label(method, defaults: dict[str, Any]) -> str:
    """The parameters that differ from the class defaults, as ``k=v,k2=v2`` ("" at the defaults): the
    display form (:func:`hashbench.values.format_variant`). Matching reads the values a record stores
    instead (:func:`hashbench.values.stored_variant`, the frame's ``variant_params``)."""
    params = method.get_params(deep=False)
    return format_variant(
        {k: v for k, v in params.items() if k not in RUNTIME_PARAMS and k not in NOT_VARIANT and v != defaults.get(k)}
    )


def _param_grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not params:
        return [{}]
    keys = sorted(params)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(params[k] for k in keys))]


def dataset_dirname(name: str) -> str:
    """The folder a dataset's tables and records go to: a built-in name as it is (``cifar10``);
    ``kind:PATH`` as the kind, the path's stem and 6 hex digits of the sha256 of the kind and the
    absolute path (``features:/a/b.npz`` -> ``features-b-1f2e3d``), so that two folders with the
    same basename never share one. Folders of the layout before the digest (``features-b``) are
    still read wherever a results folder is listed (``tables``, ``report``, ``verify``)."""
    if ":" in name:
        import hashlib
        import os

        kind, arg = name.split(":", 1)
        ident = f"{kind.lower()}:{os.path.abspath(os.path.expanduser(arg))}" if arg else kind.lower()
        return f"{kind}-{Path(arg).stem or 'data'}-{hashlib.sha256(ident.encode()).hexdigest()[:6]}"
    return name


def representation_id(representation: str) -> dict[str, Any]:
    """A representation's name and version (bumped when its output changes), for the record key."""
    from ..features import representation_version

    return {"name": representation, "version": representation_version(representation)}


def expected_cost(task: Task) -> tuple[bool, bool, int]:
    """A cell's expected training time, as a sort key (larger runs longer): methods that train on
    images first, then other deep methods, then the rest; longer codes first within each.

    A ranking, not a figure: measured on the CIFAR-10 CNN grid (one core a cell), HashGAN's end-to-end
    cells (images, from scratch) take 370-710 s depending on the CPU, the deep feature methods 8-480 s
    (growing with the code length; HashGAN's features track about 80 s), the shallow ones under 2 s.
    """
    method = get_method(task.method)(**task.kwargs)  # its input follows its track (end to end: images)
    fine_tunes = str(getattr(method, "regime", "")).startswith("finetune:")
    return (method.input == "images" or fine_tunes, bool(method.deep), int(task.n_bits))


def longest_first(tasks: Iterable[Task]) -> list[Task]:
    """The tasks by decreasing :func:`expected_cost`, ties in plan order: the longest-processing-time
    rule, so that with several workers the long cells start first and short ones fill the end, instead
    of one worker finishing a long cell alone while the others idle."""
    return sorted(tasks, key=expected_cost, reverse=True)


# -- the plan ------------------------------------------------------------------------------------
def plan(cfg: RunConfig, dataset, device: str) -> Plan:
    """Expand ``cfg`` over ``dataset`` into tasks; raise before any work on any invalid cell."""
    methods = resolve_method_names(cfg.methods)
    bits = parse_bits(cfg.bits)
    seeds = parse_seeds(cfg.seeds)
    unknown = set(cfg.params) - set(methods)
    if unknown:
        registered = set(list_methods())
        missing = sorted(unknown - registered)
        if missing:
            raise UnknownName(
                f"--set names unknown method(s): {', '.join(missing)}; see `hashbench methods` for the names"
            )
        raise UnknownName(f"--set names method(s) not in this run: {', '.join(sorted(unknown))}; add them to --methods")
    if cfg.track not in (None, "features", "end2end"):
        raise InvalidInput(f"unknown track {cfg.track!r}; use --track features or --track end2end")
    if cfg.split_seed is not None:
        _seed(str(cfg.split_seed))
    protocol = cfg.protocol or dataset.protocol or ("given" if dataset.given_split is not None else "generic")
    if protocol == GIVEN and dataset.given_split is None:
        raise InvalidInput(f"protocol 'given' needs a dataset with fixed lists; {cfg.dataset} has none")
    topk = None if protocol == GIVEN else get_protocol(protocol).topk
    representation = cfg.representation or default_representation(cfg.dataset, dataset)
    records_dir = Path(cfg.out) / dataset_dirname(cfg.dataset) / "records"

    splits: dict[int, dict[str, np.ndarray]] = {}
    for s in {cfg.split_seed if cfg.split_seed is not None else s for s in seeds}:
        splits[s] = (
            given_split(dataset.given_split, len(dataset))
            if protocol == GIVEN
            else make_split(protocol, dataset.labels, s)
        )
    checks = {s: split_checksum(sp) for s, sp in splits.items()}

    tasks: list[Task] = []
    for name in methods:
        defaults = get_method(name)().get_params(deep=False)
        for values in _param_grid(cfg.params.get(name, {})):
            for b in bits:
                for s in seeds:
                    method, kwargs = build_method(
                        name, b, s, values, device, cfg.track, cfg.weights, representation, cfg.train_stages
                    )
                    if method.input == "images" and dataset.images is None:
                        raise InvalidInput(
                            f"method {name!r} trains on images, but dataset {cfg.dataset!r} holds only features; "
                            "use an image dataset (cifar10, mnist, digits, imagefolder:DIR), or --track features"
                        )
                    track = method_track(method)
                    # an arch taken from the representation (fine-tuning) is no variant of the method
                    vdefaults = (
                        {**defaults, "arch": kwargs["arch"]} if "arch" in kwargs and "arch" not in values else defaults
                    )
                    split_seed = cfg.split_seed if cfg.split_seed is not None else s
                    # a pretrained backbone: a CNN representation, or an end-to-end net built on one (HashGAN's
                    # end-to-end nets train from scratch: no weights, no backbone fine-tuning regime)
                    fine_tunes = track == "end2end" and "weights" in defaults
                    uses_backbone = str(representation).startswith("cnn:") or fine_tunes
                    config = {
                        "dataset": dataset_dirname(cfg.dataset),
                        "dataset_checksum": dataset.checksum or dataset.source,
                        "protocol": protocol,
                        "split_seed": split_seed,
                        "split_checksum": checks[split_seed],
                        "representation": representation_id(representation)
                        if method.input == "features"
                        else {"name": "images", "version": 1},
                        "weights": cfg.weights if uses_backbone else None,
                        "track": track,
                        "method": name,
                        "method_version": int(getattr(method, "version", 1)),
                        "params": method.key_params(),
                        "n_bits": b,
                        "seed": s,
                    }
                    config.update(method.key_fields())  # what else names the method's numbers (versions of regimes)
                    path = rec.record_path(records_dir, config)
                    tasks.append(
                        Task(name, kwargs, b, s, split_seed, config, variant_label(method, vdefaults), str(path))
                    )
    return Plan(tasks, records_dir, protocol, representation, topk)
