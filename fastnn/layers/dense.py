"""Dense: the fully connected (affine) layer, y = x @ W + b."""

from __future__ import annotations

import numpy as np

from ..initializers import check_init, normal_weights
from .base import Layer


class Dense(Layer):
    """y = x @ W + b.  x (N, in_features), W (in_features, out_features), b (out_features,).

    init: "he", "xavier", "nielsen", "large" or a float std (see :mod:`fastnn.initializers`); b starts at 0.
    """

    def __init__(self, in_features: int, out_features: int, init="he"):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {value!r}")
        check_init("Dense", init)
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self._x = None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "init": self.init}

    def describe(self):
        return f"Dense({self.in_features}->{self.out_features})"

    def param_shapes(self):
        return {"W": (self.in_features, self.out_features), "b": (self.out_features,)}

    def init_params(self, rng):
        W = normal_weights(
            (self.in_features, self.out_features), self.init, self.in_features, rng, self.dtype
        )
        return {"W": W, "b": np.zeros(self.out_features, dtype=self.dtype)}

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(
                f"{self.describe()}: expected inputs of {self.in_features} features, "
                f"got shape {tuple(input_shape)}"
            )
        return (self.out_features,)

    def check_input(self, x):
        """x must be (N, in_features) of the layer's dtype."""
        super().check_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = " (add Flatten() before it)" if x.ndim > 2 else ""
            raise ValueError(
                f"{self.describe()}: expected input of shape (N, {self.in_features}), got {x.shape}{hint}"
            )

    def forward(self, x, train=True):
        """y = x @ W + b: (N, in_features) -> (N, out_features)."""
        self.check_input(x)
        self._x = x if train else None  # inference keeps nothing
        return self.ops.affine(x, self.params["W"], self.params["b"])

    def backward(self, dy, input_grad=True):
        """dx (None without ``input_grad``: the first layer's is never needed); fills grads,
        or, when :attr:`frozen`, zeroes them without computing them."""
        x = self._require_forward("_x")
        return dense_backward(self, dy, x, input_grad)


def dense_backward(dense: Dense, dy, x, input_grad, **fused):
    """One ``ops.affine_backward`` of ``dense`` on its input x, into its grads, with the
    fused activation arguments ``fused``; a frozen layer's weight gradient is skipped and
    its grads zeroed. Returns dx (None without ``input_grad``). Dense and the fused
    groups that hold a Dense call it."""
    frozen = dense.frozen
    dx, _, _ = dense.ops.affine_backward(
        dy,
        x,
        dense.params["W"],
        input_grad=input_grad,
        out=(dense.grads["W"], dense.grads["b"]),
        weight_grad=not frozen,
        **fused,
    )
    if frozen:
        dense.zero_grads()
    return dx
