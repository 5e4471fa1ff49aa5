"""Affine (fully connected) kernels: GEMM through BLAS plus fused bias work.

Shapes: x (N, D), W (D, M), b (M,), y and dy (N, M).

Each GEMM is split into GEMM_PARTS fixed parts that run as the iterations of one
``prange`` loop, every part one single-threaded BLAS call on a block of the operands
as they lie in memory (:func:`~fastnn.kernels.gemm.gemm`: no copies; the BLAS is
kept at one thread, see :mod:`fastnn._blas`), so the two cores share a GEMM without
BLAS's own thread pool spinning against Numba's. A part packs only its share of
the operand it splits, so the split goes along the longest dimension:

* forward, y = x @ W: by depth (blocks of x's columns and W's rows, partial products
  added in part order) when the caller passes a buffer for the partials, else by
  batch rows;
* dW = x.T @ g: by dW's rows (x's columns);
* dx = g @ W.T: by dx's columns (W's rows) when the caller asks (D >= N), else by
  batch rows.

The parts are fixed, not the thread count, so results do not depend on the thread
count. ``python benchmarks/bench_fast_paths.py`` times both splits of simple_convnet's
Dense(4320->100) at batch 100, float32, and prints their ratios: the forward by depth
and the backward with dx by columns are the faster ones there, hence the rules above.
The part count is :data:`fastnn.kernels.tuning.GEMM_PARTS`.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._scalars import typed
from .activations import ACT_IDENTITY, activate, activation_grad, rectified_variant
from .gemm import check_gemm_status, gemm
from .tuning import COLUMN_BLOCK, GEMM_PARTS


@parallel_kernel
def affine_forward(x, W, b, act, alpha, partial, y):
    """y = f(x @ W + b), written into ``y``; f is activation ``act`` (an ``ACT_*`` code of
    :mod:`.activations`, ``alpha`` leaky ReLU's slope), applied in the bias pass.

    ``partial`` (GEMM_PARTS - 1, N, M): split by depth, part p > 0 writing
    partial[p - 1], y = ((x_0 @ W_0 + partial[0]) + ...) + b; with a first dimension
    of 0 the split is by batch rows instead.
    """
    n, m = y.shape
    d = W.shape[0]
    by_depth = partial.shape[0] == GEMM_PARTS - 1 and GEMM_PARTS > 1
    status = np.zeros(GEMM_PARTS, dtype=np.int32)
    for part in prange(GEMM_PARTS):
        if by_depth:
            k0 = (part * d) // GEMM_PARTS
            k1 = ((part + 1) * d) // GEMM_PARTS
            out = y if part == 0 else partial[part - 1]
            status[part] = gemm(x[:, k0:k1], W[k0:k1], out, 0.0)
        else:
            r0 = (part * n) // GEMM_PARTS
            r1 = ((part + 1) * n) // GEMM_PARTS
            if r1 > r0:
                yp = y[r0:r1]
                status[part] = gemm(x[r0:r1], W, yp, 0.0)
                for i in range(r1 - r0):
                    row = yp[i]
                    for j in range(m):
                        row[j] = activate(row, row[j] + b[j], act, alpha)
    check_gemm_status(status)
    if by_depth:
        for i in range(n):
            row = y[i]
            for j in range(m):
                v = row[j]
                for p in range(GEMM_PARTS - 1):
                    v += partial[p, i, j]
                v += b[j]
                row[j] = activate(row, v, act, alpha)


#: :func:`affine_forward` for every activation code but the sigmoid's and tanh's (no exp or tanh
#: compiled in): :func:`~fastnn.kernels.activations.rectified_variant`.
affine_forward_rectified = rectified_variant(affine_forward)


@parallel_kernel
def affine_backward(dy, x, W, act_out, act, alpha, input_grad, weight_grad, dx_by_columns, g, dx, dW, db):
    """dx = g @ W.T (only when ``input_grad``), dW = x.T @ g and db = column sums of g (only
    when ``weight_grad``: a frozen layer's are not computed, and dW and db are not read).

    g = dy, or for an activation ``act`` other than ACT_IDENTITY the gradient through it,
    g = dy * f'(.) from its output act_out (:func:`~.activations.activation_grad`), fused
    in and written into ``g`` (N, M).
    The GEMM_PARTS parts each take a block of dW's rows (x's columns) and a block of dx's
    columns (W's rows) when ``dx_by_columns``, else of the batch rows; db is summed over
    rows in a fixed order per column block. Nothing depends on the thread count.
    """
    n, m = dy.shape
    d = x.shape[1]
    zero = typed(dW, 0.0)
    masked = act != ACT_IDENTITY
    if masked:  # serially: a second parallel region costs more than this
        for i in range(n):
            gi = g[i]
            di = dy[i]
            oi = act_out[i]
            for j in range(m):
                gi[j] = activation_grad(gi, di[j], oi[j], act, alpha)
    src = g if masked else dy
    status = np.zeros(2 * GEMM_PARTS, dtype=np.int32)
    for part in prange(GEMM_PARTS):
        c0 = (part * d) // GEMM_PARTS
        c1 = ((part + 1) * d) // GEMM_PARTS
        if weight_grad and c1 > c0:
            status[part] = gemm(x[:, c0:c1].T, src, dW[c0:c1], 0.0)
        if input_grad:
            if dx_by_columns:
                if c1 > c0:
                    status[GEMM_PARTS + part] = gemm(src, W[c0:c1].T, dx[:, c0:c1], 0.0)
            else:
                r0 = (part * n) // GEMM_PARTS
                r1 = ((part + 1) * n) // GEMM_PARTS
                if r1 > r0:
                    status[GEMM_PARTS + part] = gemm(src[r0:r1], W.T, dx[r0:r1], 0.0)
    check_gemm_status(status)
    blocks = (m + COLUMN_BLOCK - 1) // COLUMN_BLOCK if weight_grad else 0
    sums = np.empty(min(COLUMN_BLOCK, m), dtype=db.dtype)  # db accumulated in a work row:
    for block in range(blocks):  # adding into db itself (a possible alias of src) stayed scalar
        start = block * COLUMN_BLOCK
        stop = min(start + COLUMN_BLOCK, m)
        for j in range(stop - start):
            sums[j] = zero
        for i in range(n):
            row = src[i, start:stop]
            for j in range(stop - start):
                sums[j] += row[j]
        for j in range(stop - start):
            db[start + j] = sums[j]
