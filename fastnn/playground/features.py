"""The playground's input features: what the first layer sees of a point (x1, x2)."""

from __future__ import annotations

import numpy as np

#: name -> f(x1, x2), in the order the page lists them.
FEATURES = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1sq": lambda a, b: a * a,
    "x2sq": lambda a, b: b * b,
    "x1x2": lambda a, b: a * b,
    "sinx1": lambda a, b: np.sin(a),
    "sinx2": lambda a, b: np.sin(b),
}


def featurize(points: np.ndarray, names) -> np.ndarray:
    """Points (N, 2) -> the chosen features (N, len(names)), float32, in the order given."""
    points = np.asarray(points, dtype=np.float32)
    a, b = points[:, 0], points[:, 1]
    return np.stack([FEATURES[name](a, b) for name in names], axis=1).astype(np.float32)
