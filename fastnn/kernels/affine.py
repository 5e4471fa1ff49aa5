"""Affine (fully connected) kernels: GEMM through BLAS plus fused bias work.

Shapes: x (N, D), W (D, M), b (M,), y and dy (N, M).

Each GEMM is split into GEMM_PARTS fixed parts that run as the iterations of one
``prange`` loop, every part one single-threaded BLAS call (the BLAS behind
Numba's ``np.dot`` is kept at one thread, see :mod:`fastnn._blas`), so the two
cores share a GEMM without BLAS's own thread pool spinning against Numba's.
Forward and dx split the batch rows; dW = x.T @ dy splits the batch, the
reduction axis, into partial sums that are added in part order. The parts are
fixed, not the thread count, so results do not depend on the thread count.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._scalars import typed

#: Parts of each GEMM (rows of the batch), whatever the thread count.
GEMM_PARTS = 2

COLUMN_BLOCK = 64


@parallel_kernel
def affine_forward(x, W, b, relu, y):
    """y = x @ W + b (then max(., 0) when ``relu``), written into ``y``; rows in GEMM_PARTS parts."""
    n, m = y.shape
    zero = typed(y, 0.0)
    for part in prange(GEMM_PARTS):
        r0 = (part * n) // GEMM_PARTS
        r1 = ((part + 1) * n) // GEMM_PARTS
        if r1 > r0:
            yp = y[r0:r1]
            np.dot(x[r0:r1], W, yp)
            for i in range(r1 - r0):
                row = yp[i]
                for j in range(m):
                    v = row[j] + b[j]
                    row[j] = zero if (relu and v <= zero) else v


@parallel_kernel
def affine_backward(dy, x, W, relu_out, masked, input_grad, partial, g, dx, dW, db):
    """dx = g @ W.T (only when ``input_grad``), dW = x.T @ g, db = column sums of g.

    g = dy, or when ``masked`` dy where relu_out > 0 else 0 (the gradient through a ReLU
    with output relu_out, fused in), written into ``g`` (N, M) in that case.
    ``partial`` (GEMM_PARTS - 1, D, M) holds the dW partial sums of the parts after the
    first, which are added in part order; db is summed over rows in a fixed order per
    column block. Nothing depends on the thread count.
    """
    n, m = dy.shape
    d = dW.shape[0]
    zero = typed(dW, 0.0)
    for part in prange(GEMM_PARTS):
        r0 = (part * n) // GEMM_PARTS
        r1 = ((part + 1) * n) // GEMM_PARTS
        if masked:
            for i in range(r0, r1):
                gi = g[i]
                di = dy[i]
                oi = relu_out[i]
                for j in range(m):
                    v = di[j]
                    gi[j] = v if oi[j] > zero else zero
            gp = g[r0:r1]
        else:
            gp = dy[r0:r1]
        target = dW if part == 0 else partial[part - 1]
        if r1 > r0:
            np.dot(x[r0:r1].T, gp, target)
            if input_grad:
                np.dot(gp, W.T, dx[r0:r1])
        else:
            for i in range(d):
                for j in range(m):
                    target[i, j] = zero
    for part in range(GEMM_PARTS - 1):
        pp = partial[part]
        for i in range(d):
            for j in range(m):
                dW[i, j] += pp[i, j]
    src = g if masked else dy
    blocks = (m + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in range(blocks):
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, m)
        for j in range(start, stop):
            db[j] = zero
        for i in range(n):
            for j in range(start, stop):
                db[j] += src[i, j]
