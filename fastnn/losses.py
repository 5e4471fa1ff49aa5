"""Losses: ``forward(y, t)`` returns the batch mean, ``backward()`` its gradient w.r.t. y."""

from __future__ import annotations

import numpy as np

from ._checks import check_binary_targets, check_targets
from .backends import get_ops
from .metrics import count_correct

LOSSES: dict[str, type] = {}


class Loss:
    """Base class: computes on the model's backend (``build``), numba by default."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LOSSES[cls.__name__] = cls

    def __init__(self):
        self.ops = get_ops("numba")

    def build(self, ops) -> "Loss":
        """Compute on ``ops`` (a backend object or its name, ``"numba"`` or ``"numpy"``); returns self."""
        self.ops = get_ops(ops) if isinstance(ops, str) else ops
        return self

    def get_config(self) -> dict:
        """The constructor's arguments, saved with the model (JSON data)."""
        return {}

    def __repr__(self):
        return f"{type(self).__name__}()"

    def forward(self, y: np.ndarray, t: np.ndarray) -> float:
        """The mean loss over the batch of network outputs y (N, C) against targets t."""
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """The gradient of the last ``forward``'s mean loss with respect to y, shaped like y."""
        raise NotImplementedError

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """The class probabilities this loss reads into the network's output y (N, C).

        Only classification losses have them; this base raises a TypeError naming the loss.
        """
        raise TypeError(
            f"{type(self).__name__} is not a classification loss, so the model's outputs are no "
            "probabilities: use predict() (a model trained with SoftmaxCrossEntropy or "
            "SigmoidCrossEntropy has predict_proba)"
        )

    def classes(self, y: np.ndarray) -> np.ndarray:
        """Predicted class indices (N,) int64 for the network's output y: ``y.argmax(axis=1)``
        with several outputs, ``y > 0.5`` with one."""
        if y.ndim == 2 and y.shape[1] > 1:
            return y.argmax(axis=1)
        return (y.reshape(len(y), -1)[:, 0] > 0.5).astype(np.int64)

    def count_correct(self, y: np.ndarray, t: np.ndarray) -> int:
        """Samples of the batch whose prediction from output y matches target t
        (:func:`fastnn.metrics.count_correct`); what "accuracy" counts in fit and evaluate."""
        return count_correct(y, t)


class SoftmaxCrossEntropy(Loss):
    """loss = -(1/N) sum_n log softmax(y_n)[t_n]; t class indices (N,) or one-hot (N, C).

    backward: (softmax(y) - onehot(t)) / N.
    """

    def __init__(self):
        super().__init__()
        self._probs = self._t = None

    def forward(self, y, t):
        """-(1/N) sum_n log softmax(y_n)[t_n]; y (N, C) scores, t class indices (N,) or one-hot (N, C)."""
        if y.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: expected scores of shape (N, C), got {y.shape}")
        check_targets("SoftmaxCrossEntropy", t, y.shape[0], y.shape[1])
        loss, self._probs = self.ops.softmax_cross_entropy(y, t)
        self._t = t
        return loss

    def backward(self):
        """(softmax(y) - onehot(t)) / N, shaped (N, C)."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy: backward() called before forward()")
        return self.ops.softmax_cross_entropy_backward(self._probs, self._t)

    def probabilities(self, y):
        """softmax(y) over the classes, (N, C), rows summing to 1."""
        if y.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: expected scores of shape (N, C), got {y.shape}")
        return self.ops.softmax(y)

    def classes(self, y):
        """argmax over the classes, (N,) int64."""
        return y.argmax(axis=1)


class MeanSquaredError(Loss):
    """loss = (1/N) sum_n 0.5 * ||y_n - t_n||**2; backward: (y - t) / N.

    Class-index targets (N,) are one-hot encoded to y's width first.
    """

    def __init__(self):
        super().__init__()
        self._y = self._t = None

    def _dense_targets(self, y, t):
        if t.ndim == 1 and y.ndim == 2 and np.issubdtype(t.dtype, np.integer) and y.shape[1] > 1:
            classes = y.shape[1]
            if t.size and (t.min() < 0 or t.max() >= classes):
                raise ValueError(
                    f"MeanSquaredError: expected class labels in [0, {classes}), "
                    f"got labels in [{t.min()}, {t.max()}]"
                )
            onehot = np.zeros_like(y)
            onehot[np.arange(t.shape[0]), t] = 1
            return onehot
        if t.shape != y.shape and t.size == y.size and t.shape[:1] == y.shape[:1]:
            t = t.reshape(y.shape)
        if not np.issubdtype(t.dtype, np.floating):
            if np.issubdtype(t.dtype, np.integer) or t.dtype == np.bool_:
                t = t.astype(y.dtype)
            else:
                raise TypeError(f"MeanSquaredError: expected numeric targets, got dtype {t.dtype}")
        return t.astype(y.dtype, copy=False)

    def forward(self, y, t):
        """(1/N) sum_n 0.5 * sum_k (y_nk - t_nk)^2; t shaped like y, or class indices for one-hot targets."""
        t = self._dense_targets(y, t)
        self._y, self._t = y, t
        return self.ops.mse(y, t)

    def backward(self):
        """(y - t) / N, shaped like y."""
        if self._y is None:
            raise RuntimeError("MeanSquaredError: backward() called before forward()")
        return self.ops.mse_backward(self._y, self._t)


class SigmoidCrossEntropy(Loss):
    """Cross-entropy on sigmoid outputs (Nielsen, chapter 3), computed from the logits y (N, C).

    loss = -(1/N) sum_n sum_c [t log p + (1 - t) log(1 - p)], p = sigmoid(y), computed stably as
    (1/N) sum_n sum_c [max(y, 0) - y t + log(1 + exp(-|y|))]; backward: (sigmoid(y) - t) / N.
    Targets t are 0/1 (int, bool or float): (N, C) for C independent yes/no outputs (multi-label),
    or (N,) / (N, 1) with one output (binary).

    The network ends in its logits, without a Sigmoid layer: the loss applies the sigmoid. Like
    PyTorch's ``BCEWithLogitsLoss`` (not ``BCELoss``, which takes probabilities), but summed over
    the C outputs as Nielsen's C is, so it is C times ``BCEWithLogitsLoss()`` (mean reduction)
    and equal to it for one output. ``BinaryCrossEntropy`` is the same class.

    Predictions: ``probabilities(y)`` is sigmoid(y); ``classes(y)`` is (y > 0) as int64: (N,)
    with one output, (N, C) with several. ``count_correct`` (the "accuracy" of fit and evaluate)
    counts a sample when every one of its outputs is right (exact match, scikit-learn's
    ``accuracy_score`` for multi-label targets): with one output, binary accuracy.
    """

    def __init__(self):
        super().__init__()
        self._probs = self._t = None

    def _check(self, y, t):
        if not isinstance(y, np.ndarray) or y.ndim != 2:
            raise ValueError(
                f"SigmoidCrossEntropy: expected logits of shape (N, C), got {np.shape(y)}; "
                "end the network with Dense(..., C) (no Sigmoid: the loss applies it)"
            )
        if t is not None:
            check_binary_targets("SigmoidCrossEntropy", t, y.shape[0], y.shape[1])

    def forward(self, y, t):
        """-(1/N) sum_n sum_k [t log sigmoid(y) + (1 - t) log(1 - sigmoid(y))]; y logits (N, C), t of 0/1."""
        self._check(y, t)
        loss, self._probs = self.ops.sigmoid_cross_entropy(y, t)
        self._t = t
        return loss

    def backward(self):
        """(sigmoid(y) - t) / N, shaped (N, C)."""
        if self._probs is None:
            raise RuntimeError("SigmoidCrossEntropy: backward() called before forward()")
        return self.ops.sigmoid_cross_entropy_backward(self._probs, self._t)

    def probabilities(self, y):
        """sigmoid(y), (N, C): each output's probability of a 1, independently of the others."""
        self._check(y, None)
        return self.ops.sigmoid(y)

    def classes(self, y):
        """(y > 0) as int64 (sigmoid(y) > 0.5): (N,) with one output, the 0/1 matrix (N, C) with several."""
        self._check(y, None)
        predicted = (y > 0).astype(np.int64)
        return predicted[:, 0] if y.shape[1] == 1 else predicted

    def count_correct(self, y, t):
        """Samples whose every output is right (exact match); binary accuracy with one output."""
        self._check(y, t)
        truth = np.asarray(t).reshape(y.shape) != 0
        return int(np.count_nonzero(((y > 0) == truth).all(axis=1)))


#: PyTorch users look for this name: the same loss (from logits, like BCEWithLogitsLoss).
BinaryCrossEntropy = SigmoidCrossEntropy


def get_loss(spec) -> Loss:
    """A Loss from an instance, a class name, or a short name ("cross_entropy", "mse", "bce", ...)."""
    if isinstance(spec, Loss):
        return spec
    aliases = {
        "cross_entropy": "SoftmaxCrossEntropy",
        "softmax_cross_entropy": "SoftmaxCrossEntropy",
        "mse": "MeanSquaredError",
        "mean_squared_error": "MeanSquaredError",
        "sigmoid_cross_entropy": "SigmoidCrossEntropy",
        "BinaryCrossEntropy": "SigmoidCrossEntropy",
        "binary_cross_entropy": "SigmoidCrossEntropy",
        "bce": "SigmoidCrossEntropy",
    }
    name = aliases.get(spec, spec)
    if name not in LOSSES:
        raise ValueError(f"unknown loss {spec!r}; expected one of {sorted(LOSSES) + sorted(aliases)}")
    return LOSSES[name]()
