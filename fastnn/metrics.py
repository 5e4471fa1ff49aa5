"""Metrics computed from a network's outputs and the targets."""

from __future__ import annotations

import numpy as np

__all__ = ["count_correct"]


def count_correct(y: np.ndarray, t: np.ndarray) -> int:
    """Correct predictions in a batch.

    With several outputs per sample the prediction is ``y.argmax(axis=1)``, compared
    with class indices t (N,) or the argmax of one-hot t (N, C); with one output it is
    ``y > 0.5``, compared with t rounded to 0 or 1.
    """
    if y.ndim == 2 and y.shape[1] > 1:
        predicted = y.argmax(axis=1)
        truth = t if t.ndim == 1 else t.argmax(axis=1)
    else:
        predicted = (y.reshape(len(y), -1)[:, 0] > 0.5).astype(np.int64)
        truth = np.rint(t.reshape(len(t), -1)[:, 0]).astype(np.int64)
    return int(np.count_nonzero(predicted == truth))
