"""Affine (fully connected) kernels: GEMM through BLAS plus fused bias work.

Shapes: x (N, D), W (D, M), b (M,), y and dy (N, M). BLAS runs outside every
``prange`` loop, so it never oversubscribes the cores.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel

COLUMN_BLOCK = 64


@parallel_kernel
def affine_forward(x, W, b, y):
    """y = x @ W + b, written into ``y``."""
    np.dot(x, W, y)
    n, m = y.shape
    for i in prange(n):
        for j in range(m):
            y[i, j] += b[j]


@parallel_kernel
def affine_backward(dy, x, W, dx, dW, db):
    """dx = dy @ W.T, dW = x.T @ dy, db = column sums of dy, written into the outputs.

    db is summed over rows in a fixed order per column block, so the result does
    not depend on the thread count.
    """
    np.dot(dy, W.T, dx)
    np.dot(x.T, dy, dW)
    n, m = dy.shape
    blocks = (m + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in prange(blocks):
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, m)
        for j in range(start, stop):
            db[j] = 0
        for i in range(n):
            for j in range(start, stop):
                db[j] += dy[i, j]
