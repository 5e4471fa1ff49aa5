"""Activation layers. Each calls the matching op pair on the model's backend.

Layers whose derivative is cheapest from the output (sigmoid, tanh, softmax)
keep y; the others keep x.
"""

from __future__ import annotations

import numbers

from .base import Layer


class _Activation(Layer):
    """forward: y = f(x); backward: dx = f'(x) * dy via ``<op>_backward(dy, kept)``."""

    op: str = ""
    keeps_output = False

    def __init__(self):
        super().__init__()
        self._kept = None

    def _forward_args(self):
        return ()

    def forward(self, x, train=True):
        self.check_input(x)
        y = getattr(self.ops, self.op)(x, *self._forward_args())
        self._kept = (y if self.keeps_output else x) if train else None  # inference keeps nothing
        return y

    def backward(self, dy):
        kept = self._require_forward("_kept")
        if dy.shape != kept.shape:
            raise ValueError(f"{self.describe()}: expected dy of shape {kept.shape}, got {dy.shape}")
        return getattr(self.ops, self.op + "_backward")(dy, kept, *self._forward_args())


class Identity(_Activation):
    """y = x."""

    op = "identity"


class Step(_Activation):
    """y = 1 if x > 0 else 0 (gradient 0: a perceptron, not trainable by backprop)."""

    op = "heaviside"


class ReLU(_Activation):
    """y = max(x, 0)."""

    op = "relu"


class LeakyReLU(_Activation):
    """y = x if x > 0 else alpha * x."""

    op = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or alpha < 0:
            raise ValueError(f"LeakyReLU: alpha must be a non-negative float, got {alpha!r}")
        self.alpha = float(alpha)

    def get_config(self):
        return {"alpha": self.alpha}

    def _forward_args(self):
        return (self.alpha,)


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x))."""

    op = "sigmoid"
    keeps_output = True


class Tanh(_Activation):
    """y = tanh(x)."""

    op = "tanh"
    keeps_output = True


class Softmax(_Activation):
    """y = softmax(x) over the last axis (use SoftmaxCrossEntropy for training instead)."""

    op = "softmax"
    keeps_output = True
