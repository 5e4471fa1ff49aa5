"""Activation kernels, forward and backward.

Elementwise kernels take flat (1-D, contiguous) arrays; softmax takes rows
(N, C). Outputs are passed in and may alias nothing that is read later.
"""

import numpy as np
from numba import prange

from .._config import FASTMATH_IN_ORDER, jit, parallel_kernel
from . import elementary
from ._blocks import block_count
from ._scalars import typed
from .tuning import BLOCK


@parallel_kernel
def heaviside_forward(x, y):
    """y = 1 if x > 0 else 0 (the Heaviside step function)."""
    one = typed(x, 1.0)
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = one if x[i] > zero else zero


#: Activation codes of the fused kernels (conv, affine, batch norm): which f follows.
ACT_IDENTITY = 0
ACT_RELU = 1
ACT_SIGMOID = 2
ACT_TANH = 3
ACT_LEAKY_RELU = 4

#: The code of each activation op's name.
ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "relu": ACT_RELU,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "leaky_relu": ACT_LEAKY_RELU,
}


#: The activations whose f calls :mod:`.elementary`'s exp or tanh.
SMOOTH_CODES = (ACT_SIGMOID, ACT_TANH)


@jit(inline="always")
def activate(ref, v, code, alpha):
    """f(v) for activation ``code``, a scalar of ``ref``'s dtype (``alpha``: leaky ReLU's slope).

    identity: v; relu: max(v, 0) (NaN stays NaN); sigmoid: 1 / (1 + exp(-v)) through
    exp(-|v|), so it never overflows; tanh: tanh(v); leaky_relu: v if v > 0 else alpha * v.
    exp and tanh are :mod:`.elementary`'s, which vectorise in float32.
    The standalone activation kernels and every fused kernel call this one function, so a
    fused activation gives the standalone op's numbers bit for bit.
    """
    zero = typed(ref, 0.0)
    one = typed(ref, 1.0)
    if code == ACT_SIGMOID:
        if v >= zero:
            return one / (one + elementary.exp(-v))
        e = elementary.exp(v)
        return e / (one + e)
    if code == ACT_TANH:
        return elementary.tanh(v)
    return activate_rectified(ref, v, code, alpha)


@jit(inline="always")
def activate_rectified(ref, v, code, alpha):
    """:func:`activate` for the codes outside :data:`SMOOTH_CODES`: relu, leaky_relu and (any
    other code) the identity, by the same expressions. No exp or tanh in its code."""
    zero = typed(ref, 0.0)
    if code == ACT_RELU:
        return zero if v <= zero else v
    if code == ACT_LEAKY_RELU:
        return v if v > zero else alpha * v
    return v


def rectified_variant(kernel):
    """``kernel`` (a fused kernel of any activation code) compiled with :func:`activate`
    bound to :func:`activate_rectified`, named ``<kernel>_rectified``: the build for every
    code outside :data:`SMOOTH_CODES`, the same arithmetic without the sigmoid's and tanh's
    code, so that a network of ReLUs compiles no exp or tanh into its kernels (a large part
    of a fused kernel's code: about a tenth of deep_convnet's compile time). Bind it to
    that name in the kernel's module; :func:`for_code` picks between the two."""
    return kernel.variant(kernel.__name__ + "_rectified", activate=activate_rectified)


def for_code(kernel, rectified, code):
    """The build of a fused kernel for activation ``code``: ``kernel`` for the sigmoid and
    tanh, its :func:`rectified_variant` ``rectified`` otherwise."""
    return kernel if code in SMOOTH_CODES else rectified


@jit(inline="always")
def activation_grad(ref, g, y, code, alpha):
    """dy * f'(x) from dy = ``g`` and the activation's output y = f(x), for ``code``.

    relu: g if y > 0 else 0; sigmoid: g * y * (1 - y); tanh: g * (1 - y * y);
    leaky_relu: g if y > 0 else alpha * g (for alpha >= 0, y > 0 exactly when x > 0);
    identity: g.
    """
    zero = typed(ref, 0.0)
    one = typed(ref, 1.0)
    if code == ACT_RELU:
        return g if y > zero else zero
    if code == ACT_SIGMOID:
        return g * y * (one - y)
    if code == ACT_TANH:
        return g * (one - y * y)
    if code == ACT_LEAKY_RELU:
        return g if y > zero else alpha * g
    return g


@parallel_kernel
def sigmoid_forward(x, y):
    """y = 1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = activate(y, x[i], ACT_SIGMOID, zero)


@parallel_kernel
def sigmoid_backward(dy, y, dx):
    """dx = dy * y * (1 - y)."""
    zero = typed(y, 0.0)
    for block in prange(block_count(y.size)):
        for k in range(block * BLOCK, min(y.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = activation_grad(dx, dy[i], y[i], ACT_SIGMOID, zero)


@parallel_kernel
def tanh_forward(x, y):
    """y = tanh(x)."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = activate(y, x[i], ACT_TANH, zero)


@parallel_kernel
def tanh_backward(dy, y, dx):
    """dx = dy * (1 - y**2)."""
    zero = typed(y, 0.0)
    for block in prange(block_count(y.size)):
        for k in range(block * BLOCK, min(y.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = activation_grad(dx, dy[i], y[i], ACT_TANH, zero)


@parallel_kernel
def relu_forward(x, y):
    """y = max(x, 0); NaN stays NaN, as in the reference (np.maximum)."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = activate(y, x[i], ACT_RELU, zero)


@parallel_kernel
def add_relu_forward(a, b, y):
    """y = max(a + b, 0): a residual sum and the ReLU after it in one pass (y may be a)."""
    zero = typed(a, 0.0)
    for block in prange(block_count(a.size)):
        for k in range(block * BLOCK, min(a.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = activate(y, a[i] + b[i], ACT_RELU, zero)


@parallel_kernel
def relu_backward(dy, x, dx):
    """dx = dy where x > 0, else 0."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = dy[i] if x[i] > zero else zero


@parallel_kernel
def leaky_relu_forward(x, alpha, y):
    """y = x if x > 0 else alpha * x (``alpha`` has x's dtype)."""
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = activate(y, x[i], ACT_LEAKY_RELU, alpha)


@parallel_kernel
def leaky_relu_backward(dy, x, alpha, dx):
    """dx = dy if x > 0 else alpha * dy."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = dy[i] if x[i] > zero else alpha * dy[i]


@jit(inline="always")
def softmax_row(x, i, y):
    """y[i] = softmax(x[i]) shifted by the row maximum; returns (row max, sum of exps)."""
    c = x.shape[1]
    row_max = x[i, 0]
    for j in range(1, c):
        if x[i, j] > row_max:
            row_max = x[i, j]
    total = typed(x, 0.0)
    for j in range(c):
        e = np.exp(x[i, j] - row_max)
        y[i, j] = e
        total += e
    inverse = typed(x, 1.0) / total
    for j in range(c):
        y[i, j] *= inverse
    return row_max, total


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def softmax_forward(x, y):
    """Row-wise softmax of x (N, C) into y, shifted by the row maximum.

    Compiled without reassociation, so each row's sum of exps is added in column order
    in every build: the parallel build's body, which LLVM optimises a second time when
    it links it (the code saved to the kernel cache), could otherwise add in another
    order than the body that ran in the process that compiled it.
    """
    for i in prange(x.shape[0]):
        softmax_row(x, i, y)


@parallel_kernel
def softmax_backward(dy, y, dx):
    """dx_ij = y_ij * (dy_ij - sum_k dy_ik y_ik), rows of (N, C)."""
    n, c = y.shape
    for i in prange(n):
        dot = typed(y, 0.0)
        for j in range(c):
            dot += dy[i, j] * y[i, j]
        for j in range(c):
            dx[i, j] = y[i, j] * (dy[i, j] - dot)
