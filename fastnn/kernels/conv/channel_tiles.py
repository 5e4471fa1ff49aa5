"""The direct forward convolution at any stride, output channels along the vector lanes.

The stride-1 forward tiles of :mod:`.direct` run pixels along the lanes over a wide run of
the padded input, which a stride breaks, and on planes narrower than a vector they waste
the run's junk columns. Here the lanes hold output channels instead, so neither the
stride nor the plane's width matters: for one image and a block of two vectors of
output channels, 12 output pixels at a time keep 24 vector accumulators over all
T = C*KH*KW taps, each tap loading two vectors of weights and broadcasting the 12 pixels'
input values from anywhere in the padded plane (pixel (i, j) of tap (c, kh, kw) reads
``xp[c, i*SH + kh, j*SW + kw]``).

That is the backward-weights GEMM tile :func:`~.direct_backward._dw_tile_2v12` with the
roles of its two sums swapped: there the lanes hold channels of dy's pixel-major rows and
the 12 columns are taps, the reduction over pixels; here the rows are the weights' taps
(``W_rows[t, f] = W[f, t]``, :func:`pack_weight_rows`), the 12 columns are pixels, and the
reduction is over the taps in (c, kh, kw) order. So one tile serves both.

The tile's results are pixel-major (P, 2L): the bias and the activation are applied to
them while they are in cache, then they are transposed into the output's channel planes a
register block at a time (:func:`~fastnn.kernels._simd_transpose.vtranspose_block`).
Parallel over images, each padded once into a buffer of its own
(:func:`~.padding._pad_image_narrow`); every output element comes from one image's item
and one fixed order of sums, so the result does not depend on the thread count.

``python benchmarks/bench_conv_impl.py --strided --extra`` ("dir fwd") and
``python benchmarks/bench_conv_impl.py --extra`` time it against the other algorithms.
"""

import numpy as np
from numba import prange

from ..._config import parallel_kernel
from .._scalars import runtime
from .._simd import VECTOR_BYTES, lanes, wide_vectors
from .._simd_transpose import vtranspose_block
from ..activations import ACT_IDENTITY, ACT_RELU, activate
from .direct_backward import DW_TAPS, _dw_tile_2v12
from .padding import _pad_image_narrow


def channel_block(dtype) -> int:
    """Output channels per block of :func:`channel_tiled_forward`: two vectors of ``dtype``."""
    return 2 * VECTOR_BYTES // np.dtype(dtype).itemsize


def pack_weight_rows(W):
    """W (F, C, KH, KW) as tap-major rows (C*KH*KW, Fp): rows[t, f] = W[f, t] for f < F,
    0 for F <= f < Fp, Fp = F rounded up to a multiple of :func:`channel_block`. NumPy;
    a few KB per layer."""
    F = W.shape[0]
    T = W[0].size
    block = channel_block(W.dtype)
    Fp = -(-F // block) * block
    rows = np.zeros((T, Fp), dtype=W.dtype)
    rows[:, :F] = W.reshape(F, T).T
    return rows


@parallel_kernel
def channel_tiled_forward(x, W_rows, bias, KH, KW, SH, SW, PH, PW, act, alpha, res, y):
    """y = f(conv2d(x, W) + bias) at any stride and padding.

    y[n, o, i, j] = f(bias[o] + sum_{c, kh, kw} W[o, c, kh, kw] * xp[n, c, i*SH + kh, j*SW + kw])

    x (N, C, H, W); xp: x zero-padded by PH rows and PW columns on each side, one image at
    a time into a buffer of the item's own (x's own planes when there is no padding);
    W_rows (C*KH*KW, Fp) from
    :func:`pack_weight_rows` with Fp a multiple of two vectors; bias (F,); y (N, F, OH, OW).
    ``act``, ``alpha``: the activation code and leaky ReLU's slope
    (:func:`~fastnn.kernels.activations.activate`; ACT_IDENTITY for none), applied to each
    block's pixel-major rows with the bias. ``res`` (N, F, OH, OW), or an empty array for
    none: y = f(that + res) instead, the sum and f taken on the block's planes after the
    transposition (a residual block's add; the numbers of the convolution, then the sum,
    then f).
    """
    N, C, H, Wd = x.shape
    Hp = H + 2 * PH
    Wp = Wd + 2 * PW
    F = y.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    P = OH * OW
    Fp = W_rows.shape[1]
    L = lanes(y.reshape(y.size))
    B = 2 * L
    Pr = -(-P // DW_TAPS) * DW_TAPS
    plane = Hp * Wp
    pix = np.empty(P, dtype=np.int64)  # pixel (i, j)'s offset in a padded plane
    for p in range(P):
        i = p // OW
        pix[p] = i * SH * Wp + (p - i * OW) * SW
    w_flat = W_rows.reshape(W_rows.size)
    bias_rows = np.zeros(Fp, dtype=y.dtype)
    bias_rows[:F] = bias
    for n in prange(N):
        wide_vectors()
        if PH == 0 and PW == 0:
            xn = x[n].reshape(C * plane)
        else:
            xn = np.empty(C * plane + -(-Wd // L) * L, dtype=y.dtype)
            _pad_image_narrow(x[n], PH, PW, Hp, Wp, xn, L)
        rows = np.empty(Pr * B, dtype=y.dtype)  # pixel-major: rows[p*B + k] = channel f0 + k
        yn = y[n].reshape(F * P)
        for f0 in range(0, Fp, B):
            nf = min(B, F - f0)
            for p0 in range(0, P, DW_TAPS):
                _dw_tile_2v12(
                    xn, w_flat, C, pix, f0, p0, P, KH, KW, Wp, Fp, plane, L, rows[p0 * B : (p0 + DW_TAPS) * B]
                )
            bb = bias_rows[f0 : f0 + B]
            rows_act = ACT_IDENTITY if res.size != 0 else act
            if rows_act == ACT_RELU:  # a constant code: the loop vectorises
                for p in range(P):
                    row = rows[p * B : (p + 1) * B]
                    for k in range(B):
                        row[k] = activate(row, row[k] + bb[k], ACT_RELU, alpha)
            else:
                for p in range(P):
                    row = rows[p * B : (p + 1) * B]
                    for k in range(B):
                        row[k] = activate(row, row[k] + bb[k], rows_act, alpha)
            Pb = P - P % L
            fb = nf - nf % L
            for p0 in range(0, Pb, L):
                for k0 in range(0, fb, L):
                    vtranspose_block(rows, rows, runtime(False), p0 * B + k0, B, yn, (f0 + k0) * P + p0, P)
            for k in range(nf):
                for p in range(Pb if k < fb else 0, P):
                    yn[(f0 + k) * P + p] = rows[p * B + k]
            if res.size != 0:
                rn = res[n].reshape(F * P)
                if act == ACT_RELU:
                    for q in range(f0 * P, (f0 + nf) * P):
                        yn[q] = activate(yn, yn[q] + rn[q], ACT_RELU, alpha)
                else:
                    for q in range(f0 * P, (f0 + nf) * P):
                        yn[q] = activate(yn, yn[q] + rn[q], act, alpha)
