"""The conformance suite every registered method passes (scikit-learn's parametrize_with_checks idea).

Each method is built with its class's ``test_params`` (tiny networks and schedules) and checked for
the interface the harness relies on: parameters stored as given, fit returning self, bool codes of
the right shape, determinism under a seed, encoding that does not change the model, and clear
errors for bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from hashbench.errors import HashbenchError, InvalidInput
from hashbench.methods import get_method, list_methods

N_BITS = 16


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(d.target))
    train, query = idx[:160], idx[160:190]
    images = (d.images * (255 / 16)).round().astype(np.uint8)[..., None]
    feats = (d.data / 16.0).astype(np.float32)
    return {"features": (feats[train], feats[query]), "images": (images[train], images[query])}


def build(name: str, seed: int = 0, **extra):
    cls = get_method(name)
    params = {"n_bits": N_BITS, **cls.test_params, **extra}
    accepted = cls().get_params()
    if "random_state" in accepted:
        params["random_state"] = seed
    if "device" in accepted:
        params["device"] = "cpu"
    if "verbose" in accepted:
        params["verbose"] = False
    return cls(**params)


def data_for(method, digits):
    return digits["images"] if method.input == "images" else digits["features"]


METHODS = list_methods()


def test_registry_lists_every_method_of_the_paper():
    """--methods all must cover every row of the paper's tables, plus the LSH floor."""
    for name in ["lsh", "sh", "sph", "itq", "dsh", "ssdh", "ssdh+ga", "hashgan", "usdh", "uhga", "uhga+ga"]:
        assert name in METHODS


@pytest.mark.parametrize("name", METHODS)
def test_init_stores_parameters_only(name):
    """__init__ stores its arguments under their names and learns nothing (sklearn convention)."""
    m = build(name)
    params = m.get_params(deep=False)
    assert clone(m).get_params(deep=False) == params
    learned = [k for k in vars(m) if k.endswith("_") and not k.startswith("_")]
    assert learned == [], f"{name} sets learned state in __init__: {learned}"
    with pytest.raises(NotFittedError):
        m.encode(_tiny(m))


def _tiny(m):
    if m.input == "images":
        return np.zeros((2, 8, 8, 1), dtype=np.uint8)
    return np.zeros((2, 64), dtype=np.float32)


@pytest.mark.parametrize("name", METHODS)
def test_fit_encode_shapes_and_determinism(name, digits):
    """fit returns self; codes are bool (n, n_bits); the same seed gives the same codes; encoding
    the queries does not change the model (it never learns from them)."""
    m = build(name)
    train, query = data_for(m, digits)
    assert m.fit(train) is m
    codes = m.encode(query)
    assert isinstance(codes, np.ndarray) and codes.dtype == bool and codes.shape == (len(query), N_BITS)
    codes_train = m.encode(train)
    assert codes_train.shape == (len(train), N_BITS)
    assert np.array_equal(m.encode(query), codes), "encoding is not a pure function of the fitted model"
    twin = build(name).fit(train)
    assert np.array_equal(twin.encode(query), codes), f"{name} is not deterministic under a fixed seed"
    # Not a constant code: the method learned something from the data.
    assert len({row.tobytes() for row in codes_train}) > 1, f"{name} maps every item to one code"


@pytest.mark.parametrize("name", METHODS)
def test_rejects_nan_features_and_bad_bits(name, digits):
    m = build(name)
    train, _ = data_for(m, digits)
    if m.input == "features":
        bad = train.copy()
        bad[0, 0] = np.nan
        with pytest.raises(InvalidInput, match="NaN"):
            build(name).fit(bad)
    with pytest.raises(HashbenchError):
        build(name, n_bits=0).fit(train)
