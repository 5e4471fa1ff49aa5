"""The direct convolution's backward at any stride: plain loops over a pre-padded input.

Backward-weights and backward-data, each parallel over planes it owns (the input padded
by :func:`~fastnn.kernels.conv.padding.pad_planes`). ``impl="auto"`` sends strided
backward passes to :mod:`.im2col` or :mod:`.polyphase` instead; these serve
``impl="direct"``. The strided forward pass is :mod:`.channel_tiles`.
"""

import numpy as np
from numba import prange

from ..._config import parallel_kernel
from .._scalars import typed
from .._simd import wide_vectors


@parallel_kernel
def direct_backward_weights_strided(xp, dy, SH, SW, dW, db):
    """Any stride: dW[f, c, kh, kw] = sum_{n, i, j} dy[n, f, i, j] * xp[n, c, i*SH + kh, j*SW + kw].

    Parallel over f (each thread owns dW[f], db[f]).
    """
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = dW.shape
    OH, OW = dy.shape[2], dy.shape[3]
    zero = typed(dW, 0.0)
    for f in prange(F):
        wide_vectors()
        for c in range(C):
            for kh in range(KH):
                for kw in range(KW):
                    dW[f, c, kh, kw] = zero
        sb = zero
        for n in range(N):
            d = dy[n, f]
            for i in range(OH):
                for j in range(OW):
                    sb += d[i, j]
            for c in range(C):
                xc = xp[n, c]
                for kh in range(KH):
                    for kw in range(KW):
                        s = zero
                        for i in range(OH):
                            row = xc[i * SH + kh]
                            for j in range(OW):
                                s += d[i, j] * row[j * SW + kw]
                        dW[f, c, kh, kw] += s
        db[f] = sb


@parallel_kernel
def direct_backward_data_strided(dy, W, SH, SW, PH, PW, dx):
    """Any stride.

    dx[n, c, h, w] = sum dy[n, f, i, j] * W[f, c, kh, kw] over i*SH + kh = h + PH, j*SW + kw = w + PW.

    Parallel over (n, c) planes; each scatters into its own padded plane, then crops.
    """
    N, F, OH, OW = dy.shape
    _, C, KH, KW = W.shape
    H, Wd = dx.shape[2], dx.shape[3]
    Hp = H + 2 * PH
    Wp = Wd + 2 * PW
    zero = typed(dx, 0.0)
    for pair in prange(N * C):
        wide_vectors()
        n = pair // C
        c = pair - n * C
        acc = np.empty((Hp, Wp), dtype=dx.dtype)
        for r in range(Hp):
            for q in range(Wp):
                acc[r, q] = zero
        for f in range(F):
            d = dy[n, f]
            for kh in range(KH):
                for kw in range(KW):
                    w = W[f, c, kh, kw]
                    for i in range(OH):
                        row = acc[i * SH + kh]
                        for j in range(OW):
                            row[j * SW + kw] += w * d[i, j]
        for h in range(H):
            for q in range(Wd):
                dx[n, c, h, q] = acc[h + PH, q + PW]
