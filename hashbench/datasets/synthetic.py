"""``synthetic``: labelled Gaussian clusters for tests, with tiny images derived from them.

``synthetic`` or ``synthetic:n=1000,d=32,classes=10,seed=0,size=8,sep=3.0``. Class ``c`` has a
centre drawn from N(0, sep^2 I); an item is its class centre plus N(0, I) noise, classes balanced
(item ``i`` has class ``i mod classes`` before a seeded shuffle). Each item also gets a grey
``size`` x ``size`` image, 255 * sigmoid(x W) for a fixed random W, so image-based methods and
representations see the same cluster structure. Same parameters, same data, on every machine.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput
from .base import ArrayImages, Dataset, content_checksum

DEFAULTS = {"n": 1000, "d": 32, "classes": 10, "seed": 0, "size": 8, "sep": 3.0}


def parse_options(spec: str) -> dict:
    """``"n=500,d=16"`` -> dict merged over :data:`DEFAULTS` (types follow the defaults)."""
    opts = dict(DEFAULTS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in DEFAULTS:
            raise InvalidInput(
                f"synthetic option {part!r} not understood; use key=value with keys {', '.join(DEFAULTS)}, "
                "e.g. synthetic:n=500,d=16,classes=5"
            )
        try:
            opts[key] = type(DEFAULTS[key])(value)
        except ValueError:
            raise InvalidInput(f"synthetic option {key}={value!r} is not a {type(DEFAULTS[key]).__name__}") from None
    if opts["n"] < 2 or opts["d"] < 1 or opts["classes"] < 1 or opts["size"] < 1 or opts["n"] < opts["classes"]:
        raise InvalidInput(
            f"synthetic options out of range: {opts} (need n >= classes >= 1, n >= 2, d >= 1, size >= 1)"
        )
    return opts


def load_synthetic(spec: str = "") -> Dataset:
    """``synthetic[:k=v,...]`` -> features float32 (n, d), images uint8 (n, size, size, 1), labels (n,)."""
    o = parse_options(spec)
    n, d, k, size = o["n"], o["d"], o["classes"], o["size"]
    rng = np.random.default_rng(o["seed"])
    centres = rng.normal(0.0, o["sep"], size=(k, d))
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    X = (centres[y] + rng.normal(size=(n, d))).astype(np.float32)
    W = rng.normal(size=(d, size * size)) / np.sqrt(d * max(o["sep"], 1.0) ** 2 + d)
    images = np.rint(255.0 / (1.0 + np.exp(-(X.astype(np.float64) @ W)))).astype(np.uint8).reshape(n, size, size, 1)
    name = "synthetic" + (f":{spec}" if spec else "")
    return Dataset(
        name=name,
        labels=y,
        images=ArrayImages(images),
        features=X,
        protocol="",
        source=f"synthetic Gaussian clusters {o}",
        extra={"format": "synthetic", "options": o},
        checksum=content_checksum(X, images, y),
    )
