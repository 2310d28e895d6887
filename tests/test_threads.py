"""On a CPU the same seed gives the same codes whatever the thread count, for every registered method.

The digits protocol (500 training items, the 1,697 database items encoded) at 64 bits, each method
with its ``test_params``, fitted and encoded once with BLAS and torch at one thread and once at two
(``hashbench.testing.threads`` restores the previous settings). Before fits ran single-threaded
(``hashbench.methods.fit_context``), ITQ's codes differed in 9 bits and HashGAN's in 19 here:
OpenBLAS rounds a (500 x 64) @ (64 x 64) product differently with two threads, and ITQ's
alternating sign/SVD steps amplify the last-digit difference into flipped bits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hashbench.methods import get_method, list_methods
from hashbench.testing import threads

N_BITS = 64
#: gradient attention costs O(batch^2 bits) per step: these run with -m slow (the conformance suite's
#: check_thread_independence covers them on 120 items in the default run)
SLOW = {"ssdh+ga", "uhga+ga"}


@pytest.fixture(scope="module")
def digits():
    from hashbench.datasets.digits import load_digits
    from hashbench.datasets.protocols import make_split
    from hashbench.features.pixels import pixels

    ds = load_digits()
    split = make_split("digits", ds.labels, 0)
    images = ds.images.load(np.arange(len(ds.labels)))
    return {"images": images, "features": pixels(images), "train": split["train"], "database": split["database"]}


def _codes(name: str, data: dict, n_threads: int) -> np.ndarray:
    cls = get_method(name)
    params = {"n_bits": N_BITS, **cls.test_params}
    if "device" in cls().get_params():
        params["device"] = "cpu"
    method = cls(**params)
    X = data["images"] if method.input == "images" else data["features"]
    with threads(n_threads):
        method.fit(X[data["train"]])
        return method.encode(X[data["database"]])


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in list_methods()])
def test_codes_do_not_depend_on_the_thread_count(name, digits):
    before = torch.get_num_threads()
    one = _codes(name, digits, 1)
    two = _codes(name, digits, 2)
    assert torch.get_num_threads() == before, "the thread settings were not restored"
    assert one.shape == (len(digits["database"]), N_BITS)
    diff = int((one != two).sum())
    assert diff == 0, f"{name}: {diff} bits differ between 1 and 2 threads"
