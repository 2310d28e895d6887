"""The method interface (scikit-learn conventions) and the registry of hashing methods.

A method is a class deriving from :class:`HashMethod`. ``__init__`` only stores its arguments;
``fit(X, y=None)`` learns state (attributes ending in ``_``) and returns ``self``; ``encode(X)``
returns an ``(n, n_bits)`` bool array with bit = (h >= 0), so sign(0) is +1.

Methods are found through the ``hashbench.methods`` entry-point group (setup.cfg), so a third-party
package adds a method the same way hashbench's own ``baselines`` do. :func:`register` adds one in
process (tests, notebooks).
"""

from __future__ import annotations

import fnmatch
from importlib.metadata import entry_points
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .errors import InvalidInput, UnknownName, check_n_bits

ENTRY_POINT_GROUP = "hashbench.methods"


class HashMethod(BaseEstimator):
    """Base class of every hashing method.

    Class attributes:
        input: ``"features"`` (vectors from a representation) or ``"images"`` (uint8 arrays
            ``(n, H, W, C)``, for end-to-end and generative methods). Deep methods with a
            ``track`` parameter make this a property: ``"images"`` when ``track="end2end"``.
        deep: True for methods trained by gradient descent (they accept ``device``).
    """

    input: str = "features"
    deep: bool = False
    #: keyword arguments that make fit fast enough for the shared ``check_method`` test suite
    #: (tiny epochs, small networks); never used outside tests.
    test_params: dict = {}
    #: for methods that need the representation of rotated training images (USDH's rotation
    #: invariance on the features track): the angles in degrees, multiples of 90. The runner then
    #: calls ``fit(X, y, rotated=[X_rot_angle1, ...])``.
    rotation_angles: tuple = ()

    # -- to implement -----------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> HashMethod:  # pragma: no cover
        raise NotImplementedError

    def project(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Real-valued outputs h (n, n_bits) whose sign gives the code. Override this or encode."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def encode(self, X: np.ndarray) -> np.ndarray:
        """Binary codes (n, n_bits), bool, bit = (h >= 0)."""
        check_is_fitted(self)
        h = np.asarray(self.project(X))
        return h >= 0

    def _validate_features(self, X: Any, *, fitting: bool = False) -> np.ndarray:
        """Check a feature matrix: 2-D, finite, float. Returns float64 (or float32 when given so)."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise InvalidInput(f"{type(self).__name__} expects a 2-D feature matrix (n, d), got shape {X.shape}")
        if X.dtype.kind not in "fiub":
            raise InvalidInput(f"{type(self).__name__} expects numeric features, got dtype {X.dtype}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if not np.isfinite(X).all():
            raise InvalidInput(
                f"{type(self).__name__}: features contain NaN or infinite values; "
                "clean the feature file or recompute the representation"
            )
        if fitting:
            check_n_bits(getattr(self, "n_bits", 1))
            if X.shape[0] < 2:
                raise InvalidInput(f"{type(self).__name__} needs at least 2 training items, got {X.shape[0]}")
        elif hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise InvalidInput(
                f"{type(self).__name__} was fitted on {self.n_features_in_} features, got {X.shape[1]}"
            )
        return X


_REGISTRY: dict[str, type[HashMethod]] = {}
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
        name = ep.name.lower()
        if name in _REGISTRY:
            continue
        try:
            _REGISTRY[name] = ep  # type: ignore[assignment]  # loaded lazily in get_method
        except Exception:  # pragma: no cover
            continue


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
    if not isinstance(obj, type):
        obj = obj.load()
        _REGISTRY[key] = obj
    return obj


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
