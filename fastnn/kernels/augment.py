"""Data-augmentation kernels on whole batches x (N, C, H, W).

Each kernel runs in parallel over the N*C image planes and writes a new batch;
the per-sample parameters (shifts, flip flags, affine maps) are drawn by the
caller from a seeded generator, so the kernels themselves are deterministic.
Pixels that come from outside the image are 0.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._scalars import typed


@parallel_kernel
def shift(x, dy, dx, out):
    """out[n, c, i, j] = x[n, c, i - dy[n], j - dx[n]], 0 where that is outside the image.

    Positive dy moves the content down, positive dx moves it right (int64 shifts).
    """
    N, C, H, W = x.shape
    zero = typed(x, 0.0)
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        sy = dy[n]
        sx = dx[n]
        # columns j whose source j - sx lies in [0, W)
        j0 = min(max(0, sx), W)
        j1 = max(min(W, W + sx), j0)
        for i in range(H):
            row = out[n, c, i]
            si = i - sy
            if si < 0 or si >= H:
                for j in range(W):
                    row[j] = zero
                continue
            src = x[n, c, si]
            for j in range(j0):
                row[j] = zero
            for j in range(j0, j1):
                row[j] = src[j - sx]
            for j in range(j1, W):
                row[j] = zero


@parallel_kernel
def flip_horizontal(x, flags, out):
    """out[n] = x[n] mirrored left-right where flags[n] != 0, else a copy of x[n]."""
    N, C, H, W = x.shape
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        if flags[n] != 0:
            for i in range(H):
                for j in range(W):
                    out[n, c, i, j] = x[n, c, i, W - 1 - j]
        else:
            for i in range(H):
                for j in range(W):
                    out[n, c, i, j] = x[n, c, i, j]


@parallel_kernel
def warp_bilinear(x, A, out):
    """Affine resampling with bilinear interpolation, 0 outside the image.

    out[n, c, i, j] = x[n, c] sampled at (r, s) = A[n] @ (i, j, 1): r = A00 i + A01 j + A02,
    s = A10 i + A11 j + A12 (row, column); A (N, 2, 3) has x's dtype. Each of the four
    neighbours outside the image counts as 0 (scipy.ndimage's "grid-constant" mode).
    """
    N, C, H, W = x.shape
    zero = typed(x, 0.0)
    one = typed(x, 1.0)
    coords = np.empty(max(H, W), dtype=x.dtype)  # 0, 1, 2, ... in x's dtype
    for k in range(coords.size):
        coords[k] = k
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        a00 = A[n, 0, 0]
        a01 = A[n, 0, 1]
        a02 = A[n, 0, 2]
        a10 = A[n, 1, 0]
        a11 = A[n, 1, 1]
        a12 = A[n, 1, 2]
        img = x[n, c]
        for i in range(H):
            fi = coords[i]
            for j in range(W):
                fj = coords[j]
                r = a00 * fi + a01 * fj + a02
                s = a10 * fi + a11 * fj + a12
                rf = np.floor(r)
                sf = np.floor(s)
                wr = r - rf
                ws = s - sf
                r0 = int(rf)
                s0 = int(sf)
                value = zero
                if r0 >= -1 and r0 < H and s0 >= -1 and s0 < W:
                    top = r0 >= 0
                    bottom = r0 + 1 < H
                    left = s0 >= 0
                    right = s0 + 1 < W
                    if top and left:
                        value += (one - wr) * (one - ws) * img[r0, s0]
                    if top and right:
                        value += (one - wr) * ws * img[r0, s0 + 1]
                    if bottom and left:
                        value += wr * (one - ws) * img[r0 + 1, s0]
                    if bottom and right:
                        value += wr * ws * img[r0 + 1, s0 + 1]
                out[n, c, i, j] = value
