"""Affine (fully connected) kernels: GEMM through BLAS plus fused bias work.

Shapes: x (N, D), W (D, M), b (M,), y and dy (N, M).

Each GEMM is split into GEMM_PARTS fixed parts that run as the iterations of one
``prange`` loop, every part one single-threaded BLAS call (the BLAS behind
Numba's ``np.dot`` is kept at one thread, see :mod:`fastnn._blas`), so the two
cores share a GEMM without BLAS's own thread pool spinning against Numba's.
Forward and dx split the batch rows; dW = x.T @ dy splits dW's rows (x's
columns, copied to a contiguous block first). The parts are fixed, not the
thread count, so results do not depend on the thread count.
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
def affine_backward(dy, x, W, relu_out, masked, input_grad, xcols, g, dx, dW, db):
    """dx = g @ W.T (only when ``input_grad``), dW = x.T @ g, db = column sums of g.

    g = dy, or when ``masked`` dy where relu_out > 0 else 0 (the gradient through a ReLU
    with output relu_out, fused in), written into ``g`` (N, M) in that case.
    The GEMM_PARTS parts each take a block of dW's rows (x's columns, copied into their
    row of ``xcols`` (GEMM_PARTS, N * ceil(D / GEMM_PARTS)) so BLAS sees a contiguous
    matrix) and a block of the batch rows for dx; db is summed over rows in a fixed order
    per column block. Nothing depends on the thread count.
    """
    n, m = dy.shape
    d = dW.shape[0]
    zero = typed(dW, 0.0)
    if masked:                   # serially: a second parallel region costs more than this
        for i in range(n):
            gi = g[i]
            di = dy[i]
            oi = relu_out[i]
            for j in range(m):
                v = di[j]
                gi[j] = v if oi[j] > zero else zero
    src = g if masked else dy
    for part in prange(GEMM_PARTS):
        c0 = (part * d) // GEMM_PARTS
        c1 = ((part + 1) * d) // GEMM_PARTS
        if c1 > c0:
            xc = xcols[part, :n * (c1 - c0)].reshape(n, c1 - c0)
            for i in range(n):
                xi = x[i]
                xo = xc[i]
                for k in range(c1 - c0):
                    xo[k] = xi[c0 + k]
            if n > 0:
                np.dot(xc.T, src, dW[c0:c1])
            else:
                for i in range(c0, c1):
                    for j in range(m):
                        dW[i, j] = zero
        r0 = (part * n) // GEMM_PARTS
        r1 = ((part + 1) * n) // GEMM_PARTS
        if input_grad and r1 > r0:
            np.dot(src[r0:r1], W.T, dx[r0:r1])
    blocks = (m + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    for block in range(blocks):
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, m)
        for j in range(start, stop):
            db[j] = zero
        for i in range(n):
            for j in range(start, stop):
                db[j] += src[i, j]
