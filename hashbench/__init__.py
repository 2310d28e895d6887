"""hashbench: a benchmark suite for learning-to-hash image retrieval with exact, reproducible MAP.

The documented Python API for scoring codes computed anywhere is :func:`hashbench.evaluate`
(:func:`hashbench.metrics.evaluate`, imported on first use so that ``import hashbench`` stays light):

>>> import numpy as np, hashbench
>>> q = np.array([[0, 0]], bool)
>>> db = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], bool)
>>> s = hashbench.evaluate(q, db, [0], [0, 0, 1, 0])
>>> round(s["map"], 4), round(s["map_index"], 4)  # tie-aware (the score) and ties in index order
(0.8611, 0.9167)
"""

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate"]


def __getattr__(name: str):
    if name == "evaluate":
        from .metrics import evaluate

        return evaluate
    raise AttributeError(f"module 'hashbench' has no attribute {name!r}")
