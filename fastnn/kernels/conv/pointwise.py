"""1x1 convolutions at stride 1 without padding as one matrix product per image.

With x[n] as the (C, P) matrix of its planes (P = H*W pixels) and W as the (F, C) matrix
``Wm``, a 1x1 convolution is y[n] = Wm @ x[n] + b, and NCHW holds x[n] and y[n] as
exactly those matrices. So each image is one BLAS call on the arrays as they lie (no
unfolding, no transposition, :func:`~fastnn.kernels.gemm.gemm`), parallel over images,
the BLAS kept single-threaded by the caller. Backward: dx[n] = Wm.T @ g[n] and
dW = sum_n g[n] @ x[n].T, g = dy (through a ReLU: dy where its output is positive).

The direct kernels' register tiles hold eight channels by two vectors of pixels; with
few output channels or rows narrower than a vector (Inception's 1x1 branches: F of 8 to
48, 14x14 and 7x7 planes) most of a tile is idle or junk, where BLAS's packing pays.
``python benchmarks/bench_conv_impl.py --pointwise`` times the two.

Every reduction runs in a fixed order: dW and db are summed per group of images (a
number the caller fixes, not the thread count), then the group partials in group order.
"""

import numpy as np
from numba import get_thread_id, prange

from ..._config import parallel_kernel
from .._scalars import typed
from .._simd import wide_vectors
from ..activations import activate, rectified_variant
from ..gemm import check_gemm_status, gemm


@parallel_kernel
def pointwise_forward(x, Wm, bias, code, alpha, res, y):
    """y[n] = f(Wm @ x[n] + bias) for every image n, x (N, C, H, W), Wm (F, C), y (N, F, H, W).

    f is activation ``code`` (:func:`~fastnn.kernels.activations.activate`, ``alpha``
    leaky ReLU's slope), applied to each row of y[n] right after its product, while it is
    in cache. ``res`` (N, F, H, W), or an empty array for none: y = f((Wm @ x[n] + bias) +
    res[n]), a residual block's sum in the same pass.
    """
    N, C = x.shape[0], x.shape[1]
    F = Wm.shape[0]
    P = x.shape[2] * x.shape[3]
    with_residual = res.shape[0] != 0
    status = np.zeros(N, dtype=np.int32)
    for n in prange(N):
        wide_vectors()
        yn = y[n].reshape(F, P)
        status[n] = gemm(Wm, x[n].reshape(C, P), yn, 0.0)
        for f in range(F):
            row = yn[f]
            b = bias[f]
            if with_residual:
                r = res[n, f].reshape(P)
                for p in range(P):
                    row[p] = activate(row, (row[p] + b) + r[p], code, alpha)
            else:
                for p in range(P):
                    row[p] = activate(row, row[p] + b, code, alpha)
    check_gemm_status(status)


#: :func:`pointwise_forward` for every activation code but the sigmoid's and tanh's (no exp or tanh
#: compiled in): :func:`~fastnn.kernels.activations.rectified_variant`.
pointwise_forward_rectified = rectified_variant(pointwise_forward)


@parallel_kernel
def pointwise_backward(x, dy, relu_out, Wm, input_grad, weight_grad, g_buf, groups, dx, dWm, db):
    """dx[n] = Wm.T @ g[n] (only when ``input_grad``), dWm = sum_n g[n] @ x[n].T and db = the
    sums of g over images and pixels (only when ``weight_grad``), with x (N, C, H, W), dy
    and ``relu_out`` (N, F, H, W), Wm and dWm (F, C).

    g = dy, or with ``relu_out`` not empty (the output of a fused ReLU) dy where relu_out
    > 0 and 0 elsewhere, written into the thread's row of ``g_buf`` (at least F*H*W).
    The images are split into G = groups.shape[0] fixed groups (F*C + F values each: the
    group's dW partial, then its db partial); then, serially, dWm and db are the sums of
    the partials in group order, so nothing depends on the thread count.
    """
    N, C = x.shape[0], x.shape[1]
    F = Wm.shape[0]
    P = x.shape[2] * x.shape[3]
    G = groups.shape[0]
    zero = typed(dy, 0.0)
    masked = relu_out.shape[0] != 0
    status = np.zeros(2 * N, dtype=np.int32)
    for k in prange(G):
        wide_vectors()
        dwk = groups[k, : F * C].reshape(F, C)
        dbk = groups[k, F * C : F * C + F]
        for f in range(F):
            dbk[f] = zero
        first = (k * N) // G
        for n in range(first, ((k + 1) * N) // G):
            if masked:
                gn = g_buf[get_thread_id(), : F * P].reshape(F, P)
                for f in range(F):
                    src = dy[n, f].reshape(P)
                    out = relu_out[n, f].reshape(P)
                    dst = gn[f]
                    for p in range(P):
                        dst[p] = src[p] if out[p] > zero else zero
            else:
                gn = dy[n].reshape(F, P)
            if weight_grad:
                for f in range(F):
                    row = gn[f]
                    s = zero
                    for p in range(P):
                        s += row[p]
                    dbk[f] += s
                status[n] = gemm(gn, x[n].reshape(C, P).T, dwk, 0.0 if n == first else 1.0)
            if input_grad:
                status[N + n] = gemm(Wm.T, gn, dx[n].reshape(C, P), 0.0)
    check_gemm_status(status)
    if weight_grad:  # serially: a second parallel region costs more than these sums
        for f in range(F):
            for c in range(C):
                v = groups[0, f * C + c]
                for k in range(1, G):
                    v += groups[k, f * C + c]
                dWm[f, c] = v
            s = groups[0, F * C + f]
            for k in range(1, G):
                s += groups[k, F * C + f]
            db[f] = s
