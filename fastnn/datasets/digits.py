"""scikit-learn's 8x8 handwritten digits (shipped with scikit-learn, so offline)."""

from __future__ import annotations

import numpy as np


def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 handwritten digits with a stratified train/test split.

    Each class is shuffled with ``numpy.random.default_rng(seed)`` and
    ``round(test_fraction * class size)`` of its examples go to the test set;
    both sets are then shuffled. The same seed gives the same split.

    Returns:
        ``(x_train, t_train), (x_test, t_test)``. ``x``: float32 in [0, 1] (pixel / 16),
        shape ``(N, 1, 8, 8)``; ``t``: int64 in 0..9, shape ``(N,)``; 1797 examples in all.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ImportError("load_digits needs scikit-learn: pip install 'fastnn[data]'") from exc
    bunch = sklearn_digits()
    x = np.divide(bunch.images, np.float32(16), dtype=np.float32).reshape(-1, 1, 8, 8)
    t = np.asarray(bunch.target, dtype=np.int64)
    train, test = _stratified_split(t, test_fraction, np.random.default_rng(seed))
    return (x[train], t[train]), (x[test], t[test])


def _stratified_split(t: np.ndarray, test_fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test) with each class split in the same proportion."""
    train, test = [], []
    for label in np.unique(t):
        idx = rng.permutation(np.flatnonzero(t == label))
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
