"""Every registered method passes the public conformance suite (hashbench.testing), one test per check.

Each method is built with its class's ``test_params`` (tiny networks and schedules) at 16 bits. The
suite itself is tested against deliberately broken methods in tests/test_testing.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.errors import InvalidInput
from hashbench.methods import RUNTIME_PARAMS, get_method, list_methods
from hashbench.testing import parametrize_with_checks

N_BITS = 16


def build(name: str, **extra):
    """The registered method ``name`` with its test_params, 16 bits, on the CPU, quiet."""
    cls = get_method(name)
    params = {"n_bits": N_BITS, **cls.test_params, **extra}
    accepted = cls().get_params()
    if "device" in accepted:
        params["device"] = "cpu"
    if "verbose" in accepted:
        params["verbose"] = False
    return cls(**params)


METHODS = list_methods()


def test_registry_lists_every_method_of_the_paper():
    """--methods all must cover every row of the paper's tables, plus the LSH floor."""
    for name in ["lsh", "sh", "sph", "itq", "dsh", "ssdh", "ssdh+ga", "hashgan", "usdh", "uhga", "uhga+ga"]:
        assert name in METHODS


@parametrize_with_checks([build(name) for name in METHODS])
def test_conformance(method, check):
    check(method)


#: deep methods' other track where it trains without a pretrained backbone (nothing to load)
@parametrize_with_checks([build("hashgan", track="end2end")])
def test_conformance_of_hashgan_end_to_end(method, check):
    check(method)


@pytest.mark.parametrize(
    ("name", "param", "value", "message"),
    [
        ("itq", "n_iter", -5, "itq.n_iter=-5: must be an integer >= 0"),
        ("itq", "n_iter", 2.5, "itq.n_iter=2.5: must be an integer >= 0"),
        ("sph", "max_iter", -1, "sph.max_iter=-1: must be an integer >= 0"),
        ("dsh", "r", 0, "dsh.r=0: must be an integer >= 1"),
        ("ssdh", "epochs", 0, "ssdh.epochs=0: must be None or an integer >= 1"),
        ("ssdh+ga", "lr", -1.0, "ssdh+ga.lr=-1.0: must be a number > 0"),
        ("uhga", "sim_threshold", 1.5, "uhga.sim_threshold=1.5: must be None or a number in [-1, 1]"),
        ("hashgan", "batch_size", 0, "hashgan.batch_size=0: must be an integer >= 1"),
        ("usdh", "neighbors", 1.0, "usdh.neighbors=1.0: must be a number in (0, 1)"),
        ("lsh", "random_state", -1, "lsh.random_state=-1: must be an integer >= 0"),
    ],
)
def test_out_of_range_parameters_name_parameter_value_and_range(name, param, value, message):
    method = get_method(name)(**{param: value})
    with pytest.raises(InvalidInput) as err:
        method.check_params()
    assert str(err.value) == message


@pytest.mark.parametrize("name", METHODS)
def test_every_method_declares_a_version_and_every_parameter(name):
    cls = get_method(name)
    assert isinstance(cls.version, int) and cls.version >= 1
    assert "version" in vars(cls), f"{name} inherits its version; declare it on the class so a bump stays local"
    assert set(cls().get_params()) == set(cls.parameter_constraints)


def test_runtime_params_change_how_a_fit_runs_not_its_codes(tmp_path):
    """The parameters in RUNTIME_PARAMS stay out of record keys: they must not change the codes."""
    assert RUNTIME_PARAMS == frozenset(
        {"device", "verbose", "checkpoint_dir", "checkpoint_every", "n_jobs", "curve_every"}
    )
    from hashbench.testing import suite_data

    d = suite_data()
    plain = build("ssdh").fit(d.features_train).encode(d.features_query)
    runtime = build("ssdh", verbose=True, checkpoint_dir=str(tmp_path), checkpoint_every=2, curve_every=1)
    assert (runtime.fit(d.features_train).encode(d.features_query) == plain).all()
    assert list(tmp_path.glob("*.pt")), "the checkpoint folder was not used"


# -- defaults that never collapse ------------------------------------------------------------------
#: (method, bits) where a method at its defaults does not beat LSH on digits pixels (64-d), measured
#: (seed 0; LSH 0.3387 / 0.5082 / 0.5927 at 16 / 32 / 64 bits): SH, SpH and DSH lose to LSH's random
#: projections once the code length nears the dimension (SH 0.434 / 0.416, SpH 0.462 / 0.473, DSH
#: 0.490 / 0.545 at 32 / 64), and HashGAN on the pixels (features track: 500 training items are 250
#: steps of its 50-epoch schedule) at 32 / 64 bits (0.474 / 0.437; 0.464 > 0.339 at 16). These are the
#: algorithms at their published settings, not a threshold that collapses (none of them derives one);
#: strict, so that an improvement shows up.
LOSES_TO_LSH_ON_DIGITS: set[tuple[str, int]] = {
    ("sh", 32),
    ("sh", 64),
    ("sph", 32),
    ("sph", 64),
    ("dsh", 32),
    ("dsh", 64),
    ("hashgan", 32),
    ("hashgan", 64),
}


@pytest.fixture(scope="module")
def digits_protocol():
    from hashbench.datasets.digits import load_digits
    from hashbench.datasets.protocols import make_split
    from hashbench.features.pixels import pixels

    ds = load_digits()
    split = make_split("digits", ds.labels, 0)
    images = ds.images.load(np.arange(len(ds.labels)))
    return {"images": images, "features": pixels(images), "labels": ds.labels, **split}


def _digits_map(name: str, n_bits: int, data: dict) -> float:
    from hashbench.metrics import evaluate

    cls = get_method(name)
    kwargs = {"n_bits": n_bits, **({"device": "cpu"} if "device" in cls().get_params() else {})}
    method = cls(**kwargs)
    X = data["images"] if method.input == "images" else data["features"]
    method.fit(X[data["train"]])
    q, db = method.encode(X[data["query"]]), method.encode(X[data["database"]])
    return evaluate(q, db, data["labels"][data["query"]], data["labels"][data["database"]])["map"]


def _beats_lsh_cases():
    for name in METHODS:
        if name == "lsh":
            continue
        for b in (16, 32, 64):
            marks = [pytest.mark.slow]
            if (name, b) in LOSES_TO_LSH_ON_DIGITS:
                marks.append(pytest.mark.xfail(strict=True, reason="the algorithm loses to LSH here (see above)"))
            yield pytest.param(name, b, marks=marks, id=f"{name}-{b}")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "n_bits"), list(_beats_lsh_cases()))
def test_defaults_beat_lsh_on_digits(name, n_bits, digits_protocol):
    """At its defaults (data-derived thresholds included) a method beats LSH on the digits protocol."""
    lsh = _digits_map("lsh", n_bits, digits_protocol)
    got = _digits_map(name, n_bits, digits_protocol)
    assert got > lsh, f"{name} at {n_bits} bits: MAP {got:.4f} <= LSH {lsh:.4f}"
