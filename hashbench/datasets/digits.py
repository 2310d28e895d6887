"""``digits``: scikit-learn's embedded 1,797 handwritten digits (8x8, UCI optdigits test set).

Nothing to download. The pixel counts 0..16 are scaled to uint8 0..255 (round(v * 255 / 16)) so the
images look like every other source's.
"""

from __future__ import annotations

import numpy as np

from .base import ArrayImages, Dataset, content_checksum


def load_digits() -> Dataset:
    """``digits`` -> images uint8 (1797, 8, 8, 1), labels int64 (1797,)."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    X = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = d.target.astype(np.int64)
    return Dataset(
        name="digits",
        labels=y,
        images=ArrayImages(X),
        protocol="digits",
        source="scikit-learn load_digits (embedded, 1797 images 8x8, 0..16 scaled to 0..255)",
        extra={"format": "sklearn", "classes": [str(i) for i in range(10)]},
        checksum=content_checksum(X, y),
    )
