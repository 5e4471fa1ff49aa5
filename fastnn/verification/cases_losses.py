"""Cases for the loss ops: softmax and sigmoid cross-entropy and the mean squared error.

Targets come as class labels (int64) or as one-hot / soft / 0-1 arrays; a backward op
gets ``probs`` from its forward by the reference in float64, rounded to float32.
"""

from __future__ import annotations

import numpy as np

from ..backends import get_ops
from .case import Case, OpCases
from .draws import elementwise_shape, matrix_shape, normal, rounded


def _class_targets(rng, n: int, classes: int, targets: str):
    """``targets``: "labels" (int64 (N,)), "one-hot" or "soft" (float (N, C), rows summing to 1)."""
    labels = rng.integers(0, classes, size=n)
    if targets == "labels":
        return labels
    if targets == "one-hot":
        return np.eye(classes)[labels]
    weights = rng.uniform(0.0, 1.0, size=(n, classes))
    return rounded(weights / weights.sum(axis=1, keepdims=True))


def _softmax_cross_entropy(rng, large, targets="labels"):
    n, classes = matrix_shape(rng, large)
    logits = normal(rng, (n, classes), scale=4.0)
    return Case(
        "softmax_cross_entropy", (logits, _class_targets(rng, n, classes, targets)), outputs=("loss", "probs")
    )


def _softmax_cross_entropy_backward(rng, large, targets="labels"):
    n, classes = matrix_shape(rng, large)
    probs = rounded(get_ops("numpy").softmax(normal(rng, (n, classes), scale=4.0)))
    t = _class_targets(rng, n, classes, targets)
    return Case("softmax_cross_entropy_backward", (probs, t), outputs=("dlogits",))


def _binary_targets(rng, n: int, outputs: int, targets: str):
    """``targets``: "int" (0/1 int64 (N, C)), "float" (0/1 floats (N, C)) or "column"
    (0/1 int64 (N,) for a single output)."""
    t = rng.integers(0, 2, size=(n, outputs))
    if targets == "float":
        return t.astype(np.float64)
    return t.reshape(n) if targets == "column" else t


def _sigmoid_shape(rng, large, targets):
    n, outputs = matrix_shape(rng, large)
    return (n, 1) if targets == "column" else (n, outputs)


def _sigmoid_cross_entropy(rng, large, targets="int"):
    n, outputs = _sigmoid_shape(rng, large, targets)
    logits = normal(rng, (n, outputs), scale=4.0)
    t = _binary_targets(rng, n, outputs, targets)
    return Case("sigmoid_cross_entropy", (logits, t), outputs=("loss", "probs"))


def _sigmoid_cross_entropy_backward(rng, large, targets="int"):
    n, outputs = _sigmoid_shape(rng, large, targets)
    probs = rounded(get_ops("numpy").sigmoid(normal(rng, (n, outputs), scale=4.0)))
    t = _binary_targets(rng, n, outputs, targets)
    return Case("sigmoid_cross_entropy_backward", (probs, t), outputs=("dlogits",))


def _mse(op: str, output: str):
    def build(rng, large):
        shape = elementwise_shape(rng, large)
        return Case(op, (normal(rng, shape), normal(rng, shape)), outputs=(output,))

    return OpCases(build)


_CLASS_TARGETS = ({"targets": "labels"}, {"targets": "one-hot"}, {"targets": "soft"})
_BINARY_TARGETS = ({"targets": "int"}, {"targets": "float"}, {"targets": "column"})

SPECS = {
    "softmax_cross_entropy": OpCases(_softmax_cross_entropy, _CLASS_TARGETS),
    "softmax_cross_entropy_backward": OpCases(_softmax_cross_entropy_backward, _CLASS_TARGETS),
    "sigmoid_cross_entropy": OpCases(_sigmoid_cross_entropy, _BINARY_TARGETS),
    "sigmoid_cross_entropy_backward": OpCases(_sigmoid_cross_entropy_backward, _BINARY_TARGETS),
    "mse": _mse("mse", "loss"),
    "mse_backward": _mse("mse_backward", "dy"),
}

__all__ = ["SPECS"]
