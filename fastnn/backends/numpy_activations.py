"""The NumPy reference for the activation ops, forward and backward.

Plain, readable NumPy: this is the oracle every Numba kernel is tested against.
Every op returns the dtype it was given (float32 or float64) and never modifies
its inputs. A backward op takes dy and whichever of x or y = f(x) its formula needs.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_same_dtype
from ._arrays import native_copy as _native_copy
from .fused_activation import ActivationByName
from .op_checks import check_activation_grad, check_add_relu


class NumpyActivationOps(ActivationByName):
    """Reference activations: identity, heaviside, sigmoid, tanh, relu, leaky_relu, softmax."""

    def identity(self, x):
        """y = x (a copy)."""
        check_same_dtype("identity", x=x)
        return _native_copy(x)

    def identity_backward(self, dy, x):
        """dx = dy."""
        check_activation_grad("identity_backward", dy, x)
        return _native_copy(dy)

    def heaviside(self, x):
        """y = 1 if x > 0 else 0: the Heaviside step function, the perceptron's activation
        (the op behind the ``Step`` layer)."""
        check_same_dtype("heaviside", x=x)
        return (x > 0).astype(x.dtype)

    def heaviside_backward(self, dy, x):
        """dx = 0: the step function is flat wherever it is differentiable."""
        check_activation_grad("heaviside_backward", dy, x)
        return np.zeros(dy.shape, dtype=dy.dtype.newbyteorder("="))

    def sigmoid(self, x):
        """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
        check_same_dtype("sigmoid", x=x)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)

    def sigmoid_backward(self, dy, y):
        """dx = dy * y * (1 - y), with y = sigmoid(x)."""
        check_activation_grad("sigmoid_backward", dy, y)
        return dy * y * (1 - y)

    def tanh(self, x):
        """y = tanh(x)."""
        check_same_dtype("tanh", x=x)
        return np.tanh(x)

    def tanh_backward(self, dy, y):
        """dx = dy * (1 - y**2), with y = tanh(x)."""
        check_activation_grad("tanh_backward", dy, y)
        return dy * (1 - y * y)

    def relu(self, x):
        """y = max(x, 0)."""
        check_same_dtype("relu", x=x)
        return np.maximum(x, 0)

    def relu_backward(self, dy, x):
        """dx = dy where x > 0, else 0."""
        check_activation_grad("relu_backward", dy, x)
        return np.where(x > 0, dy, 0).astype(dy.dtype)

    def add_relu(self, a, b, out=None):
        """y = max(a + b, 0): a residual sum and the ReLU after it, in one pass; into ``out``
        when given (which may be a itself)."""
        check_add_relu("add_relu", a, b, out)
        if out is None:
            return np.maximum(a + b, 0).astype(a.dtype.newbyteorder("="))
        np.add(a, b, out=out)
        return np.maximum(out, 0, out=out)

    def leaky_relu(self, x, alpha=0.01):
        """y = x if x > 0 else alpha * x."""
        check_same_dtype("leaky_relu", x=x)
        return np.where(x > 0, x, x * x.dtype.type(alpha))

    def leaky_relu_backward(self, dy, x, alpha=0.01):
        """dx = dy if x > 0 else alpha * dy."""
        check_activation_grad("leaky_relu_backward", dy, x)
        return np.where(x > 0, dy, dy * dy.dtype.type(alpha))

    def softmax(self, x):
        """y_ij = exp(x_ij - max_j x_ij) / sum_k exp(x_ik - max_j x_ij), over the last axis."""
        check_same_dtype("softmax", x=x)
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def softmax_backward(self, dy, y):
        """dx_ij = y_ij * (dy_ij - sum_k dy_ik * y_ik), with y = softmax(x)."""
        check_activation_grad("softmax_backward", dy, y)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


__all__ = ["NumpyActivationOps"]
