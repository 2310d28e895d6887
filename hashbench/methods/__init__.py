"""The method interface (scikit-learn conventions), parameter constraints, and the registry of hashing methods.

A method is a class deriving from :class:`HashMethod`. ``__init__`` only stores its arguments;
``fit(X, y=None)`` learns state (attributes ending in ``_``) and returns ``self``; ``encode(X)``
returns an ``(n, n_bits)`` bool array with bit = (h >= 0), so sign(0) is +1.

What the base class guarantees, so that a method cannot get it wrong:

- **Parameters are declared.** ``parameter_constraints`` maps every constructor parameter to the
  values it accepts (scikit-learn's ``_parameter_constraints`` idea, with hashbench's own small
  declarations :class:`Interval`, :class:`Options`, :class:`Boolean`, :class:`Instance`,
  :class:`Device` and ``None``). :meth:`HashMethod.check_params` raises :class:`InvalidInput` naming
  the parameter, the value and what is valid ("itq.n_iter=-5: must be an integer >= 0").
- **fit is wrapped by** :func:`fit_context`: it checks the parameters first, and runs the fit with
  BLAS and (on the CPU) torch limited to one thread, so the same seed gives the same codes whatever
  the thread count of the process (multi-threaded BLAS/torch reductions round differently for
  different thread counts; ITQ's iterations amplify that into flipped bits). Encoding stays
  multi-threaded: it is a row-wise function whose rounding cannot move a code except exactly at 0.
- **encode validates** its input (:func:`validate_features` for feature methods: 2-D, numeric,
  finite, the fitted width) and its projections (the right shape, no NaN: a NaN would silently
  become a 0-bit).
- ``version`` is part of the record key. Bump it when a change alters the codes the method produces
  for the same inputs and parameters (a bug fix, a new default inside the algorithm); not for
  refactors, speed-ups that keep the codes, or new parameters whose default keeps the old codes.
- ``resolved_params_`` (after fit): the values the fit derived from the training data for
  parameters left at ``None`` ("derive"), e.g. ``{"sim_threshold": 0.83}``; empty for most methods.
  The runner stores it in the record.

Methods are found through the ``hashbench.methods`` entry-point group (pyproject.toml), so a
third-party package adds a method the same way hashbench's own ``hashbench_baselines`` do.
:func:`register` adds one in process (tests, notebooks). ``hashbench.testing.check_method`` is the
conformance suite a method must pass.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..errors import MAX_BITS, HashbenchError, InvalidInput, UnknownName

ENTRY_POINT_GROUP = "hashbench.methods"

#: parameters that change how a fit runs but not what it computes: left out of record and
#: checkpoint keys and of variant labels (the runner imports this set from here). ``curve_every``
#: (deep methods' learning curve) only observes: the codes are bitwise those of a fit without it.
RUNTIME_PARAMS: frozenset[str] = frozenset(
    {"device", "verbose", "checkpoint_dir", "checkpoint_every", "n_jobs", "curve_every"}
)


# ------------------------------------------------------------------------------------------------
# Parameter constraints
# ------------------------------------------------------------------------------------------------
class Constraint:
    """A set of valid values for a parameter: ``is_satisfied_by(value)`` and a description for messages."""

    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def invalid_examples(self) -> list[Any]:
        """Values outside this constraint (the conformance suite tries them); may be empty."""
        return []


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Interval(Constraint):
    """Numbers of one kind (``int`` or ``float``) in a range; ``None`` bounds are open-ended.

    ``closed`` says which finite bounds belong to the range: "both" (default), "left", "right" or
    "neither". ``float`` accepts integers too and rejects NaN and infinities; ``int`` rejects
    floats, even integral ones (2.0), and booleans.
    """

    def __init__(self, kind: type, low: float | None, high: float | None, closed: str = "both"):
        if kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if self.kind is int:
            if not _is_int(value):
                return False
        elif not _is_real(value) or not math.isfinite(float(value)):
            return False
        v = float(value) if self.kind is float else int(value)
        if self.low is not None:
            if v < self.low or (v == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if v > self.high or (v == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        lo_in = self.closed in ("both", "left")
        hi_in = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return f"{what} in {'[' if lo_in else '('}{self.low:g}, {self.high:g}{']' if hi_in else ')'}"
        if self.low is not None:
            return f"{what} {'>=' if lo_in else '>'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'<=' if hi_in else '<'} {self.high:g}"
        return what

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = ["x"]
        if self.kind is int:
            out.append(2.5)
        if self.low is not None:
            out.append(self.kind(self.low - 1) if self.closed in ("both", "left") else self.kind(self.low))
        if self.high is not None:
            out.append(self.kind(self.high + 1) if self.closed in ("both", "right") else self.kind(self.high))
        return out


class Options(Constraint):
    """One of a fixed set of values (strings, or e.g. ``True, False, "auto"``); compared by equality and type."""

    def __init__(self, *values: Any):
        self.values = tuple(values)

    def is_satisfied_by(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(repr(v) for v in self.values)

    def invalid_examples(self) -> list[Any]:
        return ["no-such-option"]


class Boolean(Constraint):
    """True or False (Python or numpy booleans; not 0/1)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        return "True or False"

    def invalid_examples(self) -> list[Any]:
        return ["yes", 2]


class Instance(Constraint):
    """An instance of one of the given types (e.g. ``Instance(str, os.PathLike)`` for a folder)."""

    def __init__(self, *types: type, description: str | None = None):
        self.types = types
        self.description = description or "an instance of " + " or ".join(t.__name__ for t in types)

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, self.types) and not isinstance(value, bool)

    def describe(self) -> str:
        return self.description

    def invalid_examples(self) -> list[Any]:
        return [] if isinstance(3, self.types) else [3]


class Device(Constraint):
    """A device name: "auto", "cpu", "cuda" or "cuda:N" (whether a GPU exists is checked at fit)."""

    def is_satisfied_by(self, value: Any) -> bool:
        if not isinstance(value, str):
            return type(value).__name__ == "device"  # a torch.device
        v = value.strip().lower()
        return v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit())

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda' or 'cuda:N'"

    def invalid_examples(self) -> list[Any]:
        return ["tpu"]


#: the constraint of ``n_bits`` shared by every method
N_BITS = Interval(int, 1, MAX_BITS)
#: the constraint of ``random_state`` (a non-negative seed) shared by every method
SEED = Interval(int, 0, None)
#: a folder path (``checkpoint_dir``)
FOLDER = Instance(str, os.PathLike, description="a folder path")


def _describe(constraints: list[Any]) -> str:
    return " or ".join("None" if c is None else c.describe() for c in constraints)


def _satisfied(constraints: list[Any], value: Any) -> bool:
    return any((value is None) if c is None else c.is_satisfied_by(value) for c in constraints)


# ------------------------------------------------------------------------------------------------
# Feature validation
# ------------------------------------------------------------------------------------------------
def validate_features(X: Any, method: HashMethod | None = None, *, fitting: bool = False) -> np.ndarray:
    """Check a feature matrix and return it as float32 (when given so) or float64.

    Rejects, with an :class:`InvalidInput` that says what to do: anything not 2-D, non-numeric
    dtypes, NaN or infinite values; when ``fitting``, fewer than 2 rows; otherwise, when ``method``
    is fitted, a width other than its ``n_features_in_``. ``method`` only names the caller in the
    messages and gives the fitted width.
    """
    who = type(method).__name__ if method is not None else "features"
    X = np.asarray(X)
    if X.ndim != 2:
        raise InvalidInput(f"{who} expects a 2-D feature matrix (n, d), got shape {X.shape}")
    if X.dtype.kind not in "fiub":
        raise InvalidInput(f"{who} expects numeric features, got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise InvalidInput(
            f"{who}: features contain NaN or infinite values ({len(rows)} of {len(X)} rows, first row {rows[0]}); "
            "clean the feature file or recompute the representation"
        )
    if fitting:
        if X.shape[0] < 2:
            raise InvalidInput(f"{who} needs at least 2 training items, got {X.shape[0]}")
    elif method is not None and hasattr(method, "n_features_in_") and X.shape[1] != method.n_features_in_:
        raise InvalidInput(f"{who} was fitted on {method.n_features_in_} features, got {X.shape[1]}")
    return X


# ------------------------------------------------------------------------------------------------
# Fitting
# ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def single_threaded(torch_threads: bool = True) -> Iterator[None]:
    """A block with the BLAS pools (numpy, scipy) and, when ``torch_threads``, torch's intra-op pool at one thread.

    The previous limits are restored on exit. torch is touched only when it is already imported.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch") if torch_threads else None
    with threadpool_limits(limits=1, user_api="blas"):
        if torch is None:
            yield
            return
        previous = torch.get_num_threads()
        if previous != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if previous != 1:
                torch.set_num_threads(previous)


def _runs_on_cpu(method: Any) -> bool:
    device = getattr(method, "device", "cpu")
    name = str(device).strip().lower()
    if name == "auto":
        torch = sys.modules.get("torch")
        return not (torch is not None and torch.cuda.is_available())
    return not name.startswith("cuda")


F = TypeVar("F", bound=Callable[..., Any])


def fit_context(fit: F) -> F:
    """Decorator of every method's ``fit``: check the parameters, then fit thread-count independently.

    1. :meth:`HashMethod.check_params` (a bad value fails before any work);
    2. the fit runs with BLAS at one thread and, when the method runs on the CPU, torch at one
       intra-op thread (:func:`single_threaded`). Small eigen/SVD/matmul problems gain little from
       threads, and multi-threaded reductions round differently for each thread count, so the
       codes would otherwise depend on ``--threads``. On a GPU torch's CPU pool is left alone (its
       kernels do not depend on it and image preprocessing needs it). Parallelism across cells
       (``--jobs``) is where the cores go;
    3. ``resolved_params_`` is reset before and always present after (``{}`` unless the fit set it).
    """

    @functools.wraps(fit)
    def wrapper(self: HashMethod, X: Any, *args: Any, **kwargs: Any) -> Any:
        self.check_params()
        self.__dict__.pop("resolved_params_", None)
        with single_threaded(torch_threads=_runs_on_cpu(self)):
            out = fit(self, X, *args, **kwargs)
        if "resolved_params_" not in self.__dict__:
            self.resolved_params_ = {}
        return out

    wrapper.__hashbench_fit_context__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# The base class
# ------------------------------------------------------------------------------------------------
class HashMethod(BaseEstimator):
    """Base class of every hashing method.

    Class attributes:
        input: ``"features"`` (vectors from a representation) or ``"images"`` (uint8 arrays
            ``(n, H, W, C)``, for end-to-end and generative methods). Deep methods with a
            ``track`` parameter make this a property: ``"images"`` when ``track="end2end"``.
        deep: True for methods trained by gradient descent (they accept ``device``).
        version: part of the record key; bump it when a change alters the codes produced for the
            same inputs and parameters.
        randomized: True when fit draws from ``random_state`` (different seeds give different
            codes); False for methods whose codes are a function of the data alone (SH).
        parameter_constraints: constructor parameter -> list of accepted value sets (any may
            match; ``None`` in the list admits None). Every constructor parameter must appear.
        test_params: keyword arguments that make fit fast enough for the conformance suite (tiny
            epochs, small networks); never used outside tests.

    Further inputs of ``fit`` (e.g. the representation of the training images rotated, for a
    rotation-invariance loss) are declared by :meth:`fit_extras`; the runner computes and passes them.

    To implement: ``__init__`` (store the arguments), ``fit`` decorated with :func:`fit_context`,
    and ``project`` (real-valued outputs whose sign is the code) or ``encode``.
    """

    input: ClassVar[str] = "features"
    deep: ClassVar[bool] = False
    version: ClassVar[int] = 1
    #: where the method's row goes in tables (lower first; ties by name); not part of any key
    display_rank: ClassVar[int] = 1000
    #: (matplotlib colour, marker) of the method in every figure; None: chosen by a digest of the name
    #: (:mod:`hashbench.results.display` reads both; the harness names no method). Not part of any key.
    display_style: ClassVar[tuple[str, str] | None] = None
    randomized: ClassVar[bool] = True
    parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    test_params: ClassVar[dict[str, Any]] = {}

    # -- to implement -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> HashMethod:  # pragma: no cover
        raise NotImplementedError

    def project(self, X: Any) -> np.ndarray:  # pragma: no cover
        """Real-valued outputs h (n, n_bits) whose sign gives the code. Override this or encode."""
        raise NotImplementedError

    # -- what the harness asks of a method (override where a method needs more) --------------
    def input_representation(self, representation: str) -> str:
        """The representation whose vectors ``fit`` and ``encode`` take, in a run on
        ``representation`` (default: that one; deep methods fine-tuning backbone stages take the
        activations at their cut, ``cnn:ARCH#cutK``)."""
        return representation

    def key_params(self) -> dict[str, Any]:
        """The parameters that name the method's records (default: all but the runtime ones)."""
        return {k: v for k, v in self.get_params(deep=False).items() if k not in RUNTIME_PARAMS}

    def fit_extras(self) -> dict[str, tuple[int, ...]]:
        """Further inputs ``fit`` takes as keyword arguments: name -> rotations in degrees (multiples of
        90). The runner passes ``fit(X, name=[R_1, ...])`` with ``R_i`` the method's input
        representation of the training images turned counter-clockwise by the i-th angle (rows as
        in X). Default: none."""
        return {}

    def key_fields(self) -> dict[str, Any]:
        """Fields beside the parameters that name the method's records: what decides its codes but is
        no constructor parameter (class defaults that parameters left at None resolve to, the
        version of a training regime). Default: none."""
        return {}

    # -- shared -----------------------------------------------------------------------------
    def check_params(self) -> None:
        """Raise InvalidInput for the first parameter outside its declared constraints.

        The message names the method's registry name, the parameter, the value and the valid
        range, e.g. ``itq.n_iter=-5: must be an integer >= 0``. Subclasses with rules that tie
        parameters together extend this (calling ``super().check_params()`` first).
        """
        params = self.get_params(deep=False)
        for key, constraints in self.parameter_constraints.items():
            if key not in params:
                continue
            value = params[key]
            if not _satisfied(constraints, value):
                raise InvalidInput(f"{registered_name(type(self))}.{key}={value!r}: must be {_describe(constraints)}")

    def validate_input(self, X: Any, *, fitting: bool = False) -> np.ndarray:
        """The checked input of fit/encode; feature methods: :func:`validate_features`. Image methods override."""
        return validate_features(X, self, fitting=fitting)

    def encode(self, X: Any) -> np.ndarray:
        """Binary codes (n, n_bits), bool, bit = (h >= 0) with h = ``project(X)``.

        Checks the input (shape, NaN) and the projections: a projection of the wrong shape or with
        NaN/infinite entries is an error (HashbenchError naming the rows), never a silent 0-bit.
        """
        check_is_fitted(self)
        X = self.validate_input(X)
        h = np.asarray(self.project(X))
        expected = (len(X), int(self.n_bits))
        if h.shape != expected:
            raise HashbenchError(f"{type(self).__name__}.project returned shape {h.shape}, expected {expected}")
        if h.dtype.kind not in "fiub":
            raise HashbenchError(f"{type(self).__name__}.project returned dtype {h.dtype}, expected numbers")
        finite = np.isfinite(h).all(axis=1) if h.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            rows = np.flatnonzero(~finite)
            raise HashbenchError(
                f"{type(self).__name__} produced NaN or infinite projections for {len(rows)} of {len(h)} items "
                f"(first row {rows[0]}); their codes would be meaningless. This is a defect of the method or a "
                "numerical failure on these inputs: check the input features' scale, or report it"
            )
        return h >= 0


# ------------------------------------------------------------------------------------------------
# The registry
# ------------------------------------------------------------------------------------------------
_REGISTRY: dict[str, type[HashMethod] | EntryPoint] = {}
_LOADED = False


def register(name: str, cls: type[HashMethod]) -> None:
    """Register a method class under a name in this process (entry points are the durable way)."""
    _REGISTRY[name.lower()] = cls


def _load_entry_points() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _REGISTRY.setdefault(ep.name.lower(), ep)  # loaded lazily in get_method


def regimes_of(cls: type[HashMethod]) -> list[str]:
    """What a method class can train on, read from its declared constraints: the values of its
    ``track`` parameter, plus ``finetune:K`` and ``finetune:all`` when it takes ``train_stages``;
    else its ``input`` ("features" or "images")."""
    constraints = getattr(cls, "parameter_constraints", {})
    out = [str(v) for c in constraints.get("track", []) if isinstance(c, Options) for v in c.values]
    if "train_stages" in constraints:
        out += ["finetune:K", "finetune:all"]
    if not out:
        inp = cls.input if isinstance(cls.__dict__.get("input"), str) else None
        out = [inp or str(cls().input)]
    return out


def list_methods(pattern: str = "*") -> list[str]:
    """Names of the registered methods matching a shell-style pattern, sorted."""
    _load_entry_points()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern.lower()))


def get_method(name: str) -> type[HashMethod]:
    """The class registered under ``name`` (case-insensitive). Raises UnknownName when absent."""
    _load_entry_points()
    key = name.strip().lower()
    if key not in _REGISTRY:
        known = ", ".join(list_methods()) or "none (is hashbench installed with `pip install -e .`?)"
        raise UnknownName(f"unknown method {name!r}; known methods: {known}")
    obj = _REGISTRY[key]
    if isinstance(obj, EntryPoint):
        obj = obj.load()
        _REGISTRY[key] = obj
    return obj


def registered_name(cls: type) -> str:
    """The registry name of a method class (``SSDHGA`` -> ``"ssdh+ga"``); the lower-cased class name if unregistered.

    Only entry points whose attribute has the class's name are loaded to compare.
    """
    _load_entry_points()
    for name, obj in _REGISTRY.items():
        if obj is cls:
            return name
    for name, obj in list(_REGISTRY.items()):
        if isinstance(obj, EntryPoint) and obj.attr == cls.__name__:
            with contextlib.suppress(Exception):
                if get_method(name) is cls:
                    return name
    return cls.__name__.lower()


def resolve_methods(spec: str) -> list[str]:
    """Expand a ``--methods`` value (``all``, ``a,b``, wildcards like ``ssdh*``) to method names."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.lower() == "all":
            found = list_methods()
        elif any(c in part for c in "*?["):
            found = list_methods(part)
            if not found:
                raise UnknownName(f"no method matches {part!r}; known methods: {', '.join(list_methods())}")
        else:
            get_method(part)
            found = [part.lower()]
        names.extend(n for n in found if n not in names)
    if not names:
        raise UnknownName("no method given; use --methods all or e.g. --methods itq,lsh")
    return names
