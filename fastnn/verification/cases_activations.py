"""Cases for the activation ops, forward and backward, ``dropout`` and ``all_finite``.

A backward op gets the input its formula reads from a consistent forward: ``y =
sigmoid(x)``, ``tanh(x)`` or ``softmax(x)`` by the reference in float64, rounded to float32.
"""

from __future__ import annotations

import numpy as np

from ..backends import get_ops
from .case import Case, OpCases
from .draws import elementwise_shape, matrix_shape, normal, rounded


def _forward(op: str, alpha=None):
    def build(rng, large):
        x = normal(rng, elementwise_shape(rng, large), scale=3.0)
        return Case(op, (x,) if alpha is None else (x, alpha))

    return OpCases(build)


def _backward(op: str, reads_output: bool, alpha=None):
    """``op``'s backward from dy and x, or from y = op(x) when ``reads_output``."""

    def build(rng, large):
        x = normal(rng, elementwise_shape(rng, large), scale=3.0)
        dy = normal(rng, x.shape)
        ref = rounded(getattr(get_ops("numpy"), op)(x)) if reads_output else x
        args = (dy, ref) if alpha is None else (dy, ref, alpha)
        return Case(op + "_backward", args, outputs=("dx",))

    return OpCases(build)


def _add_relu(rng, large):
    a = normal(rng, elementwise_shape(rng, large), scale=3.0)
    return Case("add_relu", (a, normal(rng, a.shape, scale=3.0)))


def _softmax(rng, large):
    return Case("softmax", (normal(rng, matrix_shape(rng, large), scale=4.0),))


def _softmax_backward(rng, large):
    x = normal(rng, matrix_shape(rng, large), scale=4.0)
    y = rounded(get_ops("numpy").softmax(x))
    return Case("softmax_backward", (normal(rng, x.shape), y), outputs=("dx",))


def _dropout(rng, large, p=0.5):
    """An elementwise array, drop probability ``p`` and a random 64-bit key."""
    x = normal(rng, elementwise_shape(rng, large), scale=3.0)
    return Case("dropout", (x, p, int(rng.integers(2**64, dtype=np.uint64))), outputs=("y", "mask"))


def _all_finite(rng, large, poison=None):
    """``poison``: None (all finite), "nan" or "inf" at one random place."""
    x = normal(rng, elementwise_shape(rng, large))
    if poison is not None:
        x.reshape(-1)[int(rng.integers(0, x.size))] = np.nan if poison == "nan" else -np.inf
    return Case("all_finite", (x,), outputs=("finite",))


SPECS = {
    "identity": _forward("identity"),
    "heaviside": _forward("heaviside"),
    "sigmoid": _forward("sigmoid"),
    "tanh": _forward("tanh"),
    "relu": _forward("relu"),
    "leaky_relu": _forward("leaky_relu", alpha=0.1),
    "add_relu": OpCases(_add_relu),
    "softmax": OpCases(_softmax),
    "identity_backward": _backward("identity", reads_output=False),
    "heaviside_backward": _backward("heaviside", reads_output=False),
    "sigmoid_backward": _backward("sigmoid", reads_output=True),
    "tanh_backward": _backward("tanh", reads_output=True),
    "relu_backward": _backward("relu", reads_output=False),
    "leaky_relu_backward": _backward("leaky_relu", reads_output=False, alpha=0.1),
    "softmax_backward": OpCases(_softmax_backward),
    "dropout": OpCases(_dropout, ({"p": 0.1}, {"p": 0.5}, {"p": 0.9})),
    "all_finite": OpCases(_all_finite, ({}, {"poison": "nan"}, {"poison": "inf"})),
}

__all__ = ["SPECS"]
