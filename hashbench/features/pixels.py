"""``pixels``: the raw image as a vector, flattened in (H, W, C) order and scaled to [0, 1]."""

from __future__ import annotations

import numpy as np


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, H, W[, C]) -> float32 (n, H * W * C) with values v / 255."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
