"""The conformance suite every hashing method must pass: :func:`check_method` and :func:`parametrize_with_checks`.

As scikit-learn's ``check_estimator`` / ``parametrize_with_checks``, for :class:`hashbench.methods.HashMethod`.
A third-party method is checked with::

    from hashbench.testing import check_method
    check_method(MyMethod(n_bits=16))          # raises CheckFailure (an AssertionError) naming the check

or, one pytest test per check::

    from hashbench.testing import parametrize_with_checks

    @parametrize_with_checks([MyMethod(n_bits=16), MyOther(n_bits=16)])
    def test_conformance(method, check):
        check(method)

The checks (each takes an unfitted method and works on clones of it, so the instance given is left
as it is) run on scikit-learn's digits: 120 training and 40 query items, as pixel features in
[0, 1] (64-d) or as uint8 images (8x8x1) for methods whose ``input`` is "images":

- ``check_init_stores_parameters``: get_params / set_params / clone round trip; ``__init__``
  learns nothing;
- ``check_parameter_constraints``: every constructor parameter is declared in
  ``parameter_constraints`` and the defaults satisfy them;
- ``check_params_rejects_out_of_range``: for every declared parameter, values outside its
  constraints make ``check_params`` raise InvalidInput naming it, and ``fit`` calls ``check_params``
  before anything else;
- ``check_encode_before_fit``: a clear error (NotFittedError or a HashbenchError);
- ``check_fit_encode``: fit returns self; codes are a bool ndarray (n, n_bits); not every item gets
  the same code;
- ``check_no_batch_dependence``: ``encode(X)[i] == encode(X[i:i+1])[0]`` and encoding a permuted
  or split batch gives the same codes (no transductive encoding, e.g. centring by the batch mean);
- ``check_projections_finite``: ``project`` (where defined) is finite with shape (n, n_bits):
  a NaN projection must never become a silent 0-bit;
- ``check_input_validation``: NaN, 1-D and wrongly sized inputs are rejected by fit and encode;
- ``check_n_bits_above_feature_count``: ``n_bits`` larger than the feature dimension is honoured
  (or refused with an error that says so);
- ``check_fit_does_not_mutate``: fit and encode leave X and the parameters unchanged;
- ``check_refit_same_seed``: two fits with one seed give the same codes, and refitting the same
  instance too (no state carried over);
- ``check_seed_changes_codes``: for ``randomized`` methods another ``random_state`` gives other
  codes; for the others it changes nothing;
- ``check_thread_independence``: the codes do not depend on the BLAS/torch thread count.

pytest is imported only by :func:`parametrize_with_checks`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from ..errors import HashbenchError, InvalidInput
from . import HashMethod, registered_name

Check = Callable[[HashMethod], None]

N_TRAIN = 120
N_QUERY = 40
#: columns of the narrow feature matrix for the n_bits > d check
N_NARROW = 16


class CheckFailure(AssertionError):
    """A method failed a conformance check; the message names the check, the method and what went wrong."""


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteData:
    """The suite's data: digits as features (float32, [0, 1]) and images (uint8, (n, 8, 8, 1))."""

    features_train: np.ndarray
    features_query: np.ndarray
    images_train: np.ndarray
    images_query: np.ndarray
    narrow_train: np.ndarray
    narrow_query: np.ndarray


@functools.lru_cache(maxsize=1)
def suite_data() -> SuiteData:
    """The fixed data of the suite (sklearn's digits, a seeded draw of 120 training and 40 query items)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.random.default_rng(0).permutation(len(d.target))
    train, query = idx[:N_TRAIN], idx[N_TRAIN : N_TRAIN + N_QUERY]
    feats = (d.data / 16.0).astype(np.float32)
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    narrow_cols = np.sort(np.argsort(-feats[train].var(axis=0), kind="stable")[:N_NARROW])
    narrow = np.ascontiguousarray(feats[:, narrow_cols])
    for a in (feats, images, narrow):
        a.setflags(write=False)
    return SuiteData(feats[train], feats[query], images[train], images[query], narrow[train], narrow[query])


def _data(method: HashMethod) -> tuple[np.ndarray, np.ndarray]:
    d = suite_data()
    if method.input == "images":
        return d.images_train, d.images_query
    return d.features_train, d.features_query


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def _name(method: HashMethod) -> str:
    return registered_name(type(method))


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """BLAS and (when imported) torch intra-op pools at ``n`` threads for the block; restored after."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


def _fit(method: HashMethod, X: np.ndarray, **params: Any) -> HashMethod:
    m = clone(method)
    if params:
        m.set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = m.fit(X)
    assert out is m, f"fit returned {type(out).__name__}, not self"
    return m


def _encode(method: HashMethod, X: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return method.encode(X)


_MEMO: dict[tuple, tuple[HashMethod, np.ndarray]] = {}


def _reference(method: HashMethod) -> tuple[HashMethod, np.ndarray]:
    """A fresh fit of ``method`` on the training data and its query codes (memoised per class and parameters;
    the fitted model handed out is a copy)."""
    key = (type(method), repr(sorted(method.get_params(deep=False).items())))
    if key not in _MEMO:
        if len(_MEMO) > 32:
            _MEMO.clear()
        train, query = _data(method)
        m = _fit(method, train)
        _MEMO[key] = (m, np.array(_encode(m, query), copy=True))
    m, codes = _MEMO[key]
    return copy.deepcopy(m), codes.copy()


def _has_own_project(method: HashMethod) -> bool:
    return type(method).project is not HashMethod.project


# ------------------------------------------------------------------------------------------------
# The checks
# ------------------------------------------------------------------------------------------------
def _check(check: Check) -> Check:
    """Make a check raise CheckFailure naming itself and the method, whatever went wrong inside."""

    @functools.wraps(check)
    def run(method: HashMethod) -> None:
        try:
            check(method)
        except CheckFailure:
            raise
        except Exception as exc:
            raise CheckFailure(f"{check.__name__} failed for {_name(method)} ({type(method).__name__}): {exc}") from exc

    return run


@_check
def check_init_stores_parameters(method: HashMethod) -> None:
    """__init__ stores its arguments under their names and learns nothing; get/set_params and clone round trip."""
    params = method.get_params(deep=False)
    assert clone(method).get_params(deep=False) == params, "clone changed the parameters"
    fresh = type(method)()
    fresh.set_params(**params)
    assert fresh.get_params(deep=False) == params, "set_params did not store the parameters as given"
    learned = [k for k in vars(clone(method)) if k.endswith("_") and not k.startswith("_")]
    assert not learned, f"__init__ sets learned state: {learned}"


@_check
def check_parameter_constraints(method: HashMethod) -> None:
    """Every constructor parameter has a declared constraint, and the defaults and given values satisfy them."""
    params = method.get_params(deep=False)
    missing = sorted(set(params) - set(method.parameter_constraints))
    assert not missing, f"parameters without a declared constraint in parameter_constraints: {missing}"
    unknown = sorted(set(method.parameter_constraints) - set(params))
    assert not unknown, f"parameter_constraints names parameters the constructor lacks: {unknown}"
    type(method)().check_params()
    method.check_params()


@_check
def check_params_rejects_out_of_range(method: HashMethod) -> None:
    """Out-of-range values fail check_params with InvalidInput naming the parameter; fit checks them first."""
    tried = 0
    for key, constraints in method.parameter_constraints.items():
        for bad in [ex for c in constraints if c is not None for ex in c.invalid_examples()]:
            accepted = any((bad is None) if c is None else c.is_satisfied_by(bad) for c in constraints)
            if accepted:
                continue
            m = clone(method).set_params(**{key: bad})
            try:
                m.check_params()
            except InvalidInput as exc:
                assert f".{key}=" in str(exc), f"the message for {key}={bad!r} does not name the parameter: {exc}"
            else:
                raise AssertionError(f"check_params accepted {key}={bad!r}")
            tried += 1
    m = clone(method).set_params(n_bits=0)
    try:
        m.check_params()
    except InvalidInput:
        pass
    else:
        raise AssertionError("check_params accepted n_bits=0")
    # fit must call check_params before using the data: even an unusable X gives the parameter error
    try:
        m.fit(np.full((3, 2), np.nan))
    except InvalidInput as exc:
        assert "n_bits" in str(exc), f"fit with n_bits=0 did not report n_bits first: {exc}"
    else:
        raise AssertionError("fit accepted n_bits=0")
    assert tried or not method.parameter_constraints, "no out-of-range value could be derived from the constraints"


@_check
def check_encode_before_fit(method: HashMethod) -> None:
    """encode before fit is a clear error, not an AttributeError from deep inside."""
    _, query = _data(method)
    try:
        clone(method).encode(query)
    except (NotFittedError, HashbenchError):
        return
    except Exception as exc:
        raise AssertionError(f"encode before fit raised {type(exc).__name__}: {exc}; expected NotFittedError") from exc
    raise AssertionError("encode before fit returned codes")


@_check
def check_fit_encode(method: HashMethod) -> None:
    """fit returns self; codes are a bool ndarray (n, n_bits); the codes are not all equal."""
    m, codes = _reference(method)
    train, query = _data(method)
    n_bits = int(method.n_bits)
    assert isinstance(codes, np.ndarray), f"encode returned {type(codes).__name__}, not a numpy array"
    assert codes.dtype == bool, f"codes have dtype {codes.dtype}, expected bool"
    assert codes.shape == (len(query), n_bits), f"codes have shape {codes.shape}, expected {(len(query), n_bits)}"
    codes_train = _encode(m, train)
    assert codes_train.shape == (len(train), n_bits), f"training codes have shape {codes_train.shape}"
    assert len({row.tobytes() for row in codes_train}) > 1, "every training item gets the same code"


@_check
def check_no_batch_dependence(method: HashMethod) -> None:
    """An item's code does not depend on the other items encoded with it."""
    m, codes = _reference(method)
    _, query = _data(method)
    for i in (0, len(query) // 2, len(query) - 1):
        single = _encode(m, query[i : i + 1])
        assert single.shape == (1, codes.shape[1]), f"encode of one item has shape {single.shape}"
        assert np.array_equal(single[0], codes[i]), (
            f"encode(X)[{i}] != encode(X[{i}:{i + 1}])[0]: the code depends on the batch (transductive encoding)"
        )
    perm = np.random.default_rng(1).permutation(len(query))
    assert np.array_equal(_encode(m, query[perm]), codes[perm]), "encoding a permuted batch changes the codes"
    half = len(query) // 3
    parts = np.concatenate([_encode(m, query[:half]), _encode(m, query[half:])])
    assert np.array_equal(parts, codes), "encoding a batch in two parts changes the codes"


@_check
def check_projections_finite(method: HashMethod) -> None:
    """project gives finite values of shape (n, n_bits); encode never turns NaN into bits."""
    m, _ = _reference(method)
    train, query = _data(method)
    if not _has_own_project(method):
        return
    for X in (train, query):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = np.asarray(m.project(X))
        assert h.shape == (len(X), int(method.n_bits)), f"project returned shape {h.shape}"
        bad = ~np.isfinite(h).all(axis=1)
        assert not bad.any(), f"project returned NaN or infinite values for {int(bad.sum())} of {len(X)} items"


@_check
def check_input_validation(method: HashMethod) -> None:
    """fit and encode reject NaN, 1-D and wrongly shaped inputs with InvalidInput."""
    m, _ = _reference(method)
    train, query = _data(method)
    if method.input == "features":
        bad = np.array(train, dtype=np.float32, copy=True)
        bad[3, 5] = np.nan
        with _raises(InvalidInput, "fit with a NaN feature"):
            _fit(method, bad)
        badq = np.array(query, dtype=np.float32, copy=True)
        badq[1, 0] = np.nan
        with _raises(InvalidInput, "encode with a NaN feature"):
            _encode(m, badq)
        with _raises(InvalidInput, "encode with a wrong number of features"):
            _encode(m, query[:, :-1])
        with _raises(InvalidInput, "encode of a 1-D array"):
            _encode(m, query[0])
    else:
        with _raises(InvalidInput, "encode of a float feature matrix instead of images"):
            _encode(m, np.zeros((4, 64), dtype=np.float32))
        with _raises(InvalidInput, "fit on a float feature matrix instead of images"):
            _fit(method, np.zeros((8, 64), dtype=np.float32))


@contextlib.contextmanager
def _raises(kind: type[BaseException], what: str) -> Iterator[None]:
    try:
        yield
    except kind:
        return
    except Exception as exc:
        raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}; expected {kind.__name__}") from exc
    raise AssertionError(f"{what} was accepted; expected {kind.__name__}")


@_check
def check_n_bits_above_feature_count(method: HashMethod) -> None:
    """n_bits > the feature dimension gives n_bits bits, or an error at fit that says so."""
    if method.input != "features":
        return
    d = suite_data()
    n_bits = N_NARROW + 8
    try:
        m = _fit(method, d.narrow_train, n_bits=n_bits)
    except HashbenchError as exc:
        assert "bit" in str(exc), f"fit refused n_bits={n_bits} > {N_NARROW} features without saying why: {exc}"
        return
    codes = _encode(m, d.narrow_query)
    assert codes.shape == (len(d.narrow_query), n_bits), (
        f"with {N_NARROW} features and n_bits={n_bits} the codes have shape {codes.shape}"
    )


@_check
def check_fit_does_not_mutate(method: HashMethod) -> None:
    """fit and encode leave their input arrays and the method's parameters unchanged."""
    train, query = _data(method)
    X, Q = np.array(train, copy=True), np.array(query, copy=True)
    m = clone(method)
    before = m.get_params(deep=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X)
        m.encode(Q)
    assert np.array_equal(X, train) and X.dtype == train.dtype, "fit changed its input array"
    assert np.array_equal(Q, query), "encode changed its input array"
    after = m.get_params(deep=False)
    changed = sorted(k for k in before if repr(before[k]) != repr(after.get(k)))
    assert not changed, f"fit changed the parameters {changed} (store learned values in attributes ending in _)"


@_check
def check_refit_same_seed(method: HashMethod) -> None:
    """The same seed gives the same codes: in a second fresh fit, and when the fitted instance is refitted."""
    m, codes = _reference(method)
    train, query = _data(method)
    again = _fit(method, train)
    assert np.array_equal(_encode(again, query), codes), "two fits with the same seed give different codes"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(train)
    assert np.array_equal(_encode(m, query), codes), "refitting a fitted instance gives other codes than a fresh fit"


@_check
def check_seed_changes_codes(method: HashMethod) -> None:
    """Randomised methods give other codes for another random_state; the others ignore it."""
    params = method.get_params(deep=False)
    if "random_state" not in params:
        assert not method.randomized, "a randomized method must take a random_state parameter"
        return
    _, codes = _reference(method)
    train, query = _data(method)
    other = _encode(_fit(method, train, random_state=int(params["random_state"]) + 1), query)
    if method.randomized:
        assert not np.array_equal(other, codes), (
            "random_state does not change the codes of a randomized method (is the seed used?); "
            "set the class attribute randomized = False if the codes are a function of the data alone"
        )
    else:
        assert np.array_equal(other, codes), "random_state changes the codes of a method declared randomized = False"


@_check
def check_thread_independence(method: HashMethod) -> None:
    """The same seed gives the same codes with one and with two BLAS/torch threads."""
    train, query = _data(method)
    with threads(1):
        one = _encode(_fit(method, train), query)
    with threads(2):
        two = _encode(_fit(method, train), query)
    diff = int((one != two).sum())
    assert diff == 0, f"{diff} bits differ between 1 and 2 threads (fit the small dense problems single-threaded)"


ALL_CHECKS: tuple[Check, ...] = (
    check_init_stores_parameters,
    check_parameter_constraints,
    check_params_rejects_out_of_range,
    check_encode_before_fit,
    check_fit_encode,
    check_no_batch_dependence,
    check_projections_finite,
    check_input_validation,
    check_n_bits_above_feature_count,
    check_fit_does_not_mutate,
    check_refit_same_seed,
    check_seed_changes_codes,
    check_thread_independence,
)


def method_checks(method: HashMethod | None = None) -> list[Check]:
    """The checks of the suite (all of them apply to every method), each raising :class:`CheckFailure`."""
    return list(ALL_CHECKS)


def with_test_params(method: HashMethod) -> HashMethod:
    """A clone of ``method`` with its class's ``test_params`` applied to the parameters still at their
    defaults (the method itself when there is nothing to apply): a value the caller set is kept."""
    test_params = dict(getattr(type(method), "test_params", None) or {})
    if not test_params:
        return method
    current = method.get_params(deep=False)
    defaults = type(method)().get_params(deep=False)
    changes = {
        k: v
        for k, v in test_params.items()
        if k in current and type(current[k]) is type(defaults.get(k)) and current[k] == defaults.get(k)
    }
    return clone(method).set_params(**changes) if changes else method


def check_method(method: HashMethod, *, checks: Sequence[str] | None = None) -> None:
    """Run the conformance suite (or the named ``checks``) on an unfitted method; CheckFailure on the first failure.

    The class's ``test_params`` (small networks and schedules) replace the parameters left at their
    defaults; a parameter the instance sets is kept. The instance given is not changed: every check
    works on clones.
    """
    wanted = set(checks) if checks is not None else None
    known = {c.__name__ for c in ALL_CHECKS}
    if wanted is not None and wanted - known:
        raise ValueError(f"unknown checks {sorted(wanted - known)}; known: {sorted(known)}")
    method = with_test_params(method)
    for check in method_checks(method):
        if wanted is None or check.__name__ in wanted:
            check(method)


def _method_id(method: HashMethod) -> str:
    params = method.get_params(deep=False)
    return f"{_name(method)}(n_bits={params.get('n_bits')})"


def parametrize_with_checks(methods: Iterable[HashMethod]) -> Any:
    """A ``pytest.mark.parametrize`` over (method, check) pairs: one test per check and method.

    The test function takes ``method`` and ``check`` and calls ``check(method)``.
    """
    import pytest

    methods = list(methods)
    cases, ids = [], []
    for m in methods:
        for check in method_checks(m):
            cases.append((m, check))
            ids.append(f"{_method_id(m)}-{check.__name__}")
    return pytest.mark.parametrize(("method", "check"), cases, ids=ids)
