"""Numba-backed activation ops: validate like the reference, allocate, call a kernel.

Each method keeps the signature and contract of
:class:`~fastnn.backends.numpy_activations.NumpyActivationOps`. The kernels are in
:mod:`fastnn.kernels.activations`: elementwise ones on flat arrays, softmax on rows.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_same_dtype
from ..kernels import activations as act
from ._arrays import flat as _flat
from ._arrays import native_copy as _native_copy
from ._arrays import rows as _rows
from .op_checks import check_activation_grad, check_add_relu


def _elementwise(kernel, where: str, x, *scalars):
    check_same_dtype(where, x=x)
    xf = _flat(x)
    y = np.empty_like(xf)
    kernel(xf.size, xf, *scalars, y)
    return y.reshape(x.shape)


def _elementwise_backward(kernel, where: str, dy, ref, *scalars):
    check_activation_grad(where, dy, ref)
    dyf, reff = _flat(dy), _flat(ref)
    dx = np.empty_like(dyf)
    kernel(dyf.size, dyf, reff, *scalars, dx)
    return dx.reshape(dy.shape)


class NumbaActivationOps:
    """Activations on Numba kernels; see NumpyActivationOps for the formulas."""

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
        return _elementwise(act.heaviside_forward, "heaviside", x)

    def heaviside_backward(self, dy, x):
        """dx = 0: the step function is flat wherever it is differentiable."""
        check_activation_grad("heaviside_backward", dy, x)
        return np.zeros(dy.shape, dtype=dy.dtype.newbyteorder("="))

    def sigmoid(self, x):
        """y = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
        return _elementwise(act.sigmoid_forward, "sigmoid", x)

    def sigmoid_backward(self, dy, y):
        """dx = dy * y * (1 - y), with y = sigmoid(x)."""
        return _elementwise_backward(act.sigmoid_backward, "sigmoid_backward", dy, y)

    def tanh(self, x):
        """y = tanh(x)."""
        return _elementwise(act.tanh_forward, "tanh", x)

    def tanh_backward(self, dy, y):
        """dx = dy * (1 - y**2), with y = tanh(x)."""
        return _elementwise_backward(act.tanh_backward, "tanh_backward", dy, y)

    def relu(self, x):
        """y = max(x, 0)."""
        return _elementwise(act.relu_forward, "relu", x)

    def relu_backward(self, dy, x):
        """dx = dy where x > 0, else 0."""
        return _elementwise_backward(act.relu_backward, "relu_backward", dy, x)

    def add_relu(self, a, b, out=None):
        """y = max(a + b, 0): a residual sum and the ReLU after it, in one pass; into ``out``
        when given (which may be a itself)."""
        check_add_relu("add_relu", a, b, out)
        af, bf = _flat(a), _flat(b)
        y = np.empty_like(af) if out is None else out.reshape(-1)
        act.add_relu_forward(af.size, af, bf, y)
        return y.reshape(a.shape) if out is None else out

    def leaky_relu(self, x, alpha=0.01):
        """y = x if x > 0 else alpha * x."""
        check_same_dtype("leaky_relu", x=x)
        return _elementwise(act.leaky_relu_forward, "leaky_relu", x, x.dtype.type(alpha))

    def leaky_relu_backward(self, dy, x, alpha=0.01):
        """dx = dy if x > 0 else alpha * dy."""
        check_same_dtype("leaky_relu_backward", x=x)
        return _elementwise_backward(
            act.leaky_relu_backward, "leaky_relu_backward", dy, x, x.dtype.type(alpha)
        )

    def softmax(self, x):
        """y_ij = exp(x_ij - max_j x_ij) / sum_k exp(x_ik - max_j x_ij), over the last axis."""
        check_same_dtype("softmax", x=x)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"softmax: expected x with a non-empty last axis, got {x.shape}")
        rows = _rows(x)
        y = np.empty_like(rows)
        act.softmax_forward(rows.size, rows, y)
        return y.reshape(x.shape)

    def softmax_backward(self, dy, y):
        """dx_ij = y_ij * (dy_ij - sum_k dy_ik * y_ik), with y = softmax(x)."""
        check_activation_grad("softmax_backward", dy, y)
        dy_rows, y_rows = _rows(dy), _rows(y)
        dx = np.empty_like(y_rows)
        act.softmax_backward(y_rows.size, dy_rows, y_rows, dx)
        return dx.reshape(y.shape)


__all__ = ["NumbaActivationOps"]
