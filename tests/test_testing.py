"""The conformance suite (hashbench.testing) catches broken methods: each buggy method below fails the check
written for its defect, and check_method as a whole; a correct method passes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hashbench.errors import InvalidInput
from hashbench.methods import N_BITS, SEED, HashMethod, Interval, fit_context, validate_features
from hashbench.testing import (
    CheckFailure,
    check_fit_encode,
    check_method,
    check_no_batch_dependence,
    check_parameter_constraints,
    check_params_rejects_out_of_range,
    check_projections_finite,
    check_seed_changes_codes,
    method_checks,
    parametrize_with_checks,
)


class GoodLSH(HashMethod):
    """A correct method: centred random projections (the training mean, fixed at fit)."""

    parameter_constraints = {"n_bits": [N_BITS], "random_state": [SEED]}

    def __init__(self, n_bits: int = 16, random_state: int = 0):
        self.n_bits = n_bits
        self.random_state = random_state

    @fit_context
    def fit(self, X, y=None):
        X = validate_features(X, self, fitting=True)
        rng = np.random.default_rng(self.random_state)
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        self.projection_ = rng.standard_normal((X.shape[1], int(self.n_bits)))
        return self

    def project(self, X):
        X = validate_features(X, self)
        return (X - self.mean_) @ self.projection_


class BatchCentred(GoodLSH):
    """Bug: centres each encode batch by that batch's mean (transductive encoding)."""

    def project(self, X):
        X = validate_features(X, self)
        return (X - X.mean(axis=0)) @ self.projection_


class NaNThird(GoodLSH):
    """Bug: NaN projections on a third of the rows (which would become 0-bits)."""

    def project(self, X):
        h = super().project(X)
        h[::3] = np.nan
        return h


class NaNThirdOwnEncode(NaNThird):
    """The same bug, hidden by an encode that does not go through HashMethod.encode."""

    def encode(self, X):
        return np.nan_to_num(self.project(X)) >= 0


class IgnoresSeed(GoodLSH):
    """Bug: accepts random_state but always draws from seed 0."""

    @fit_context
    def fit(self, X, y=None):
        X = validate_features(X, self, fitting=True)
        rng = np.random.default_rng(0)  # the bug: self.random_state is never read
        self.n_features_in_ = X.shape[1]
        self.mean_ = X.mean(axis=0)
        self.projection_ = rng.standard_normal((X.shape[1], int(self.n_bits)))
        return self


class Undeclared(GoodLSH):
    """Bug: a parameter without a constraint (so --set accepts anything)."""

    def __init__(self, n_bits: int = 16, random_state: int = 0, scale: float = 1.0):
        super().__init__(n_bits, random_state)
        self.scale = scale


class NoCheckInFit(GoodLSH):
    """Bug: fit does not check the parameters (no fit_context), so n_bits=0 reaches the data."""

    def fit(self, X, y=None):
        return GoodLSH.fit.__wrapped__(self, X)


def test_a_correct_method_passes_the_whole_suite():
    m = GoodLSH()
    check_method(m)
    assert not hasattr(m, "mean_"), "check_method must leave the instance it was given unfitted"


def test_batch_centring_is_caught():
    with pytest.raises(CheckFailure, match="depends on the batch"):
        check_no_batch_dependence(BatchCentred())
    with pytest.raises(CheckFailure, match="check_no_batch_dependence"):
        check_method(BatchCentred())


def test_nan_projections_are_caught():
    with pytest.raises(CheckFailure, match="NaN"):
        check_fit_encode(NaNThird())  # HashMethod.encode refuses NaN projections
    with pytest.raises(CheckFailure, match="NaN"):
        check_projections_finite(NaNThirdOwnEncode())  # and the suite looks at project itself
    for cls in (NaNThird, NaNThirdOwnEncode):
        with pytest.raises(CheckFailure, match="NaN"):
            check_method(cls())


def test_an_ignored_random_state_is_caught():
    with pytest.raises(CheckFailure, match="random_state does not change the codes"):
        check_seed_changes_codes(IgnoresSeed())
    with pytest.raises(CheckFailure, match="check_seed_changes_codes"):
        check_method(IgnoresSeed())


def test_undeclared_parameters_and_unchecked_fits_are_caught():
    with pytest.raises(CheckFailure, match="scale"):
        check_parameter_constraints(Undeclared())
    with pytest.raises(CheckFailure, match="n_bits"):
        check_params_rejects_out_of_range(NoCheckInFit())


def test_encode_itself_validates_its_input():
    m = GoodLSH().fit(np.random.default_rng(0).random((20, 5)))
    with pytest.raises(InvalidInput, match="NaN"):
        m.encode(np.array([[0.1, np.nan, 0.2, 0.3, 0.4]]))
    with pytest.raises(InvalidInput, match="fitted on 5 features"):
        m.encode(np.zeros((2, 4)))


def test_check_params_names_parameter_value_and_range():
    with pytest.raises(InvalidInput, match=r"^goodlsh\.n_bits=0: must be an integer in \[1, 1024\]$"):
        GoodLSH(n_bits=0).check_params()


def test_interval_descriptions_and_membership():
    assert Interval(int, 0, None).describe() == "an integer >= 0"
    assert Interval(float, 0, 1, closed="left").describe() == "a number in [0, 1)"
    assert Interval(float, 0, None, closed="neither").describe() == "a number > 0"
    assert not Interval(int, 0, None).is_satisfied_by(2.0)  # integral floats are not integers
    assert not Interval(int, 0, None).is_satisfied_by(True)
    assert not Interval(float, None, None).is_satisfied_by(float("nan"))
    assert Interval(float, 0, 1).is_satisfied_by(1)


def test_parametrize_with_checks_makes_one_case_per_check():
    mark = parametrize_with_checks([GoodLSH(), GoodLSH(n_bits=8)])
    assert mark.args[0] == ("method", "check")
    assert len(mark.args[1]) == 2 * len(method_checks())
    assert mark.kwargs["ids"][0].startswith("goodlsh(n_bits=16)-check_")


def test_importing_the_suite_does_not_import_pytest():
    code = "import sys, hashbench.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
