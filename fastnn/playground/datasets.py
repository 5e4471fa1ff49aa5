"""The playground's toy data sets: points (x1, x2) in the square [-6, 6]² with labels.

The generators follow the TensorFlow Neural Network Playground (``dataset.ts``), with a
seeded NumPy generator so the same settings always give the same points:

==============  ==============  =====================================================
name            problem         points
==============  ==============  =====================================================
``circle``      2 classes       a disc of radius 2.5 (class 1) inside a ring 3.5-5
``xor``         2 classes       the four quadrants; class 1 where x1 * x2 >= 0
``gauss``       2 classes       two Gaussians centred at (2, 2) and (-2, -2)
``spiral``      2 classes       two interleaved spiral arms
``blobs``       2-6 classes     one Gaussian per class, on a circle of radius 3.5
``plane``       regression      label (x1 + x2) / 10, in [-1, 1]
``multigauss``  regression      six signed Gaussian bumps, labels in [-1, 1]
==============  ==============  =====================================================

``noise`` is a fraction, 0 to 0.5, as the original's 0-50 % slider. Classes are int64
``0 .. K-1``; in the original's two-colour picture class 0 is orange (-1) and class 1 blue (+1).
"""

from __future__ import annotations

import numpy as np

#: The side of the plotted square: points and the heatmap grid lie in [-RADIUS, RADIUS]².
RADIUS = 6.0

CLASSIFICATION = ("circle", "xor", "gauss", "spiral", "blobs")
REGRESSION = ("plane", "multigauss")
DATASETS = CLASSIFICATION + REGRESSION


def problem_of(name: str) -> str:
    """The problem a data set poses: "classification" or "regression"."""
    return "regression" if name in REGRESSION else "classification"


def generate(name: str, num_samples: int = 500, noise: float = 0.0, seed: int = 0, classes: int = 3):
    """Points x (N, 2) float32 and labels y: int64 classes (N,), or float32 (N,) in [-1, 1]
    for the regression sets. ``classes`` is used by ``blobs`` only."""
    if name not in DATASETS:
        raise ValueError(f"playground dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
    rng = np.random.default_rng(seed)
    x, y = _GENERATORS[name](rng, int(num_samples), float(noise), int(classes))
    order = rng.permutation(len(x))
    x = np.asarray(x, dtype=np.float32)[order]
    y = np.asarray(y)[order]
    return x, (y.astype(np.float32) if name in REGRESSION else y.astype(np.int64))


def split(x: np.ndarray, y: np.ndarray, train_fraction: float):
    """(x_train, y_train), (x_test, y_test): the first ``train_fraction`` of the (already
    shuffled) points train; at least one point lands on each side."""
    n = len(x)
    cut = min(max(int(round(n * train_fraction)), 1), max(n - 1, 1))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _uniform(rng, low, high, n):
    return rng.uniform(low, high, n)


def _circle(rng, n, noise, _classes):
    radius = 5.0
    half = n // 2
    r = np.concatenate([_uniform(rng, 0, radius * 0.5, half), _uniform(rng, radius * 0.7, radius, n - half)])
    angle = _uniform(rng, 0, 2 * np.pi, n)
    x = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    jitter = _uniform(rng, -radius, radius, (n, 2)) * noise
    label = (np.hypot(*(x + jitter).T) < radius * 0.5).astype(np.int64)
    return x, label


def _xor(rng, n, noise, _classes):
    padding = 0.3
    x = _uniform(rng, -5, 5, (n, 2))
    x += np.where(x > 0, padding, -padding)
    jitter = _uniform(rng, -5, 5, (n, 2)) * noise
    noisy = x + jitter
    return x, (noisy[:, 0] * noisy[:, 1] >= 0).astype(np.int64)


def _gauss(rng, n, noise, _classes):
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5
    half = n // 2
    centres = np.array([[2.0, 2.0]] * half + [[-2.0, -2.0]] * (n - half))
    x = centres + rng.normal(0, np.sqrt(variance), (n, 2))
    return x, np.array([1] * half + [0] * (n - half))


def _spiral(rng, n, noise, _classes):
    half = n // 2
    xs, labels = [], []
    for delta, label, count in ((0.0, 1, half), (np.pi, 0, n - half)):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * np.pi + delta
        points = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        xs.append(points + _uniform(rng, -1, 1, (count, 2)) * noise)
        labels.append(np.full(count, label))
    return np.concatenate(xs), np.concatenate(labels)


def _blobs(rng, n, noise, classes):
    label = np.arange(n) % classes
    angle = 2 * np.pi * label / classes + np.pi / 4
    centres = 3.5 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    spread = np.sqrt(0.3 + 4.0 * noise)
    return centres + rng.normal(0, spread, (n, 2)), label


def _plane(rng, n, noise, _classes):
    x = _uniform(rng, -RADIUS, RADIUS, (n, 2))
    noisy = x + _uniform(rng, -RADIUS, RADIUS, (n, 2)) * noise
    return x, np.clip(noisy.sum(axis=1) / 10.0, -1, 1)


#: (cx, cy, sign) of the ``multigauss`` bumps (the original's regressGaussian).
BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def multigauss_label(x: np.ndarray) -> np.ndarray:
    """The signed bump of largest magnitude: sign * clip(1 - distance / 2, 0, 1)."""
    label = np.zeros(len(x))
    for cx, cy, sign in BUMPS:
        value = sign * np.clip(1 - np.hypot(x[:, 0] - cx, x[:, 1] - cy) / 2, 0, 1)
        label = np.where(np.abs(value) > np.abs(label), value, label)
    return label


def _multigauss(rng, n, noise, _classes):
    x = _uniform(rng, -RADIUS, RADIUS, (n, 2))
    return x, multigauss_label(x + _uniform(rng, -RADIUS, RADIUS, (n, 2)) * noise)


_GENERATORS = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "blobs": _blobs,
    "plane": _plane,
    "multigauss": _multigauss,
}
