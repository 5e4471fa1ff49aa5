"""Activation kernels, forward and backward.

Elementwise kernels take flat (1-D, contiguous) arrays; softmax takes rows
(N, C). Outputs are passed in and may alias nothing that is read later.
"""

import numpy as np
from numba import prange

from .._config import jit, parallel_kernel
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


@parallel_kernel
def sigmoid_forward(x, y):
    """y = 1 / (1 + exp(-x)), evaluated through exp(-|x|) so it never overflows."""
    one = typed(x, 1.0)
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            v = x[i]
            if v >= zero:
                y[i] = one / (one + np.exp(-v))
            else:
                e = np.exp(v)
                y[i] = e / (one + e)


@parallel_kernel
def sigmoid_backward(dy, y, dx):
    """dx = dy * y * (1 - y)."""
    one = typed(y, 1.0)
    for block in prange(block_count(y.size)):
        for k in range(block * BLOCK, min(y.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = dy[i] * y[i] * (one - y[i])


@parallel_kernel
def tanh_forward(x, y):
    """y = tanh(x)."""
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = np.tanh(x[i])


@parallel_kernel
def tanh_backward(dy, y, dx):
    """dx = dy * (1 - y**2)."""
    one = typed(y, 1.0)
    for block in prange(block_count(y.size)):
        for k in range(block * BLOCK, min(y.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            dx[i] = dy[i] * (one - y[i] * y[i])


@parallel_kernel
def relu_forward(x, y):
    """y = max(x, 0); NaN stays NaN, as in the reference (np.maximum)."""
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            v = x[i]
            y[i] = zero if v <= zero else v


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
    zero = typed(x, 0.0)
    for block in prange(block_count(x.size)):
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            v = x[i]
            y[i] = v if v > zero else alpha * v


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


@parallel_kernel
def softmax_forward(x, y):
    """Row-wise softmax of x (N, C) into y, shifted by the row maximum."""
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
