"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...)."""

from __future__ import annotations

import numpy as np

from .base import Layer


class Flatten(Layer):
    """y = x.reshape(N, -1); backward restores the input shape."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def check_input(self, x):
        """x must have a batch axis and the layer's dtype."""
        super().check_input(x)
        if x.ndim < 1:
            raise ValueError(f"{self.describe()}: expected input with a batch axis, got shape {x.shape}")

    def forward(self, x, train=True):
        self.check_input(x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        shape = self._require_forward("_shape")
        return dy.reshape(shape)
