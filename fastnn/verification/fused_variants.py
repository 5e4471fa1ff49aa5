"""The fused-activation keywords a conv or affine case runs with, and what its backward takes."""

from __future__ import annotations

import numpy as np

#: Forward keywords: no activation, the ``relu=True`` shorthand, and each fused activation.
ACTIVATIONS = (
    {},
    {"relu": True},
    {"activation": "relu"},
    {"activation": "sigmoid"},
    {"activation": "tanh"},
    {"activation": "leaky_relu", "alpha": 0.1},
)


def backward_keywords(forward_output, relu=False, activation=None, alpha=0.0) -> dict:
    """The backward op's keywords after a forward run with these fused-activation keywords:
    ``relu_out=y`` for the shorthand, else ``activation``, ``act_out=y`` and ``alpha``."""
    if relu:
        return {"relu_out": forward_output}
    if activation is None:
        return {}
    return {"activation": activation, "act_out": forward_output, "alpha": alpha}


def gradient_keywords(W_shape, input_grad=True, out=False, weight_grad=True) -> dict:
    """A backward op's ``input_grad=False`` (dx skipped), ``weight_grad=False`` (dW and db
    skipped: a frozen layer) and ``out=(dW, db)`` (weight gradients written into given
    buffers, as layers do), when asked for."""
    kwargs = {} if input_grad else {"input_grad": False}
    if not weight_grad:
        kwargs["weight_grad"] = False
    if out:
        bias = W_shape[0] if len(W_shape) == 4 else W_shape[1]
        kwargs["out"] = (np.zeros(W_shape), np.zeros(bias))
    return kwargs


__all__ = ["ACTIVATIONS", "backward_keywords", "gradient_keywords"]
