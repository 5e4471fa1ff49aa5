"""The direct convolution backward at stride 1: every gradient in one parallel region.

:func:`direct_backward_s1` runs backward-data items (one image each: the full
correlation through the forward tiles of :mod:`.direct`, or the scatter form for few
input channels) interleaved with backward-weights items (a fixed group of images, in
the register tiles :func:`_dw_tile_4x4` or :func:`_dw_tile_2v12`), then adds the
groups' partial sums in group order (:func:`_sum_parts`). The three kinds of item are
compiled once each and called through their addresses (:func:`backward_items`,
:mod:`fastnn.kernels._native`).
"""

import numba
import numpy as np
from numba import prange

from ..._config import jit, parallel_kernel
from .._native import NativeFunction, call_native
from .._scalars import runtime, typed
from .._simd import lanes, vbroadcast, vfma, vload, vsplat, vstore, vsum, wide_vectors
from .._simd_transpose import vtranspose_block
from ..tuning import DW_CHUNK, DW_CHUNK_PIXELS, DW_GROUPS
from .direct import HALF_TILES, OUT_BLOCK, RUN_ALIGN, _conv_planes, _pack_weights, _run, _tap_offsets
from .modes import DY_RELU_MASKED, DY_RELU_POOL_ROUTED
from .padding import _copy_interior, _pad_grad, _pad_pooled, _widen_plane
from .row_correlate import correlate_rows

#: Output channels whose dy planes one pass of :func:`_scatter_image` adds into the plane.
#: Not a tuning knob: the pass is written out for four (d0..d3, w0..w3).
CHANNELS_PER_PASS = 4

#: Taps per GEMM-style backward-weights tile (:func:`_dw_tile_2v12`). Not a tuning knob:
#: the tile is written out for 12 taps (24 vector accumulators with its two vectors of
#: channels).
DW_TAPS = 12


@jit(refcounts=False)
def _dw_tile_4x4(xs, dys, nimg, offs, f0, t0, F, T, Pst, V, L, plane, pg):
    """pg[f, t] += sum over nimg images n and V vectors of
    dys[n*F*Pst + f*Pst + j] * xs[n*plane + offs[t] + j], for f in f0..f0+3 and t in t0..t0+3
    (indices past F-1 / T-1 clamped, stored once). xs holds the chunk channel-major: the
    images' planes of one channel are adjacent, so a tile's taps read one contiguous run.

    16 vector accumulators (4 output channels x 4 taps) stay in registers over every
    image and pixel; each step loads four dy and four x vectors for 16 multiply-adds.
    With :data:`~.direct.HALF_TILES` (AVX2) it runs twice, two output channels at a time.
    """
    f1 = min(f0 + 1, F - 1)
    f2 = min(f0 + 2, F - 1)
    f3 = min(f0 + 3, F - 1)
    q0 = offs[t0]
    q1 = offs[min(t0 + 1, T - 1)]
    q2 = offs[min(t0 + 2, T - 1)]
    q3 = offs[min(t0 + 3, T - 1)]
    z = vsplat(typed(pg, 0.0))
    a00 = z
    a01 = z
    a02 = z
    a03 = z
    a10 = z
    a11 = z
    a12 = z
    a13 = z
    a20 = z
    a21 = z
    a22 = z
    a23 = z
    a30 = z
    a31 = z
    a32 = z
    a33 = z
    if HALF_TILES:
        for n in range(nimg):
            xb = n * plane
            db = n * F * Pst
            for v in range(V):
                j = v * L
                x0 = vload(xs, xb + q0 + j)
                x1 = vload(xs, xb + q1 + j)
                x2 = vload(xs, xb + q2 + j)
                x3 = vload(xs, xb + q3 + j)
                d = vload(dys, db + f0 * Pst + j)
                a00 = vfma(d, x0, a00)
                a01 = vfma(d, x1, a01)
                a02 = vfma(d, x2, a02)
                a03 = vfma(d, x3, a03)
                d = vload(dys, db + f1 * Pst + j)
                a10 = vfma(d, x0, a10)
                a11 = vfma(d, x1, a11)
                a12 = vfma(d, x2, a12)
                a13 = vfma(d, x3, a13)
        for n in range(nimg):
            xb = n * plane
            db = n * F * Pst
            for v in range(V):
                j = v * L
                x0 = vload(xs, xb + q0 + j)
                x1 = vload(xs, xb + q1 + j)
                x2 = vload(xs, xb + q2 + j)
                x3 = vload(xs, xb + q3 + j)
                d = vload(dys, db + f2 * Pst + j)
                a20 = vfma(d, x0, a20)
                a21 = vfma(d, x1, a21)
                a22 = vfma(d, x2, a22)
                a23 = vfma(d, x3, a23)
                d = vload(dys, db + f3 * Pst + j)
                a30 = vfma(d, x0, a30)
                a31 = vfma(d, x1, a31)
                a32 = vfma(d, x2, a32)
                a33 = vfma(d, x3, a33)
    else:
        for n in range(nimg):
            xb = n * plane
            db = n * F * Pst
            for v in range(V):
                j = v * L
                x0 = vload(xs, xb + q0 + j)
                x1 = vload(xs, xb + q1 + j)
                x2 = vload(xs, xb + q2 + j)
                x3 = vload(xs, xb + q3 + j)
                d = vload(dys, db + f0 * Pst + j)
                a00 = vfma(d, x0, a00)
                a01 = vfma(d, x1, a01)
                a02 = vfma(d, x2, a02)
                a03 = vfma(d, x3, a03)
                d = vload(dys, db + f1 * Pst + j)
                a10 = vfma(d, x0, a10)
                a11 = vfma(d, x1, a11)
                a12 = vfma(d, x2, a12)
                a13 = vfma(d, x3, a13)
                d = vload(dys, db + f2 * Pst + j)
                a20 = vfma(d, x0, a20)
                a21 = vfma(d, x1, a21)
                a22 = vfma(d, x2, a22)
                a23 = vfma(d, x3, a23)
                d = vload(dys, db + f3 * Pst + j)
                a30 = vfma(d, x0, a30)
                a31 = vfma(d, x1, a31)
                a32 = vfma(d, x2, a32)
                a33 = vfma(d, x3, a33)
    nt = min(4, T - t0)
    nf = min(4, F - f0)
    _add_row(pg[f0], t0, nt, vsum(a00), vsum(a01), vsum(a02), vsum(a03))
    if nf > 1:
        _add_row(pg[f1], t0, nt, vsum(a10), vsum(a11), vsum(a12), vsum(a13))
    if nf > 2:
        _add_row(pg[f2], t0, nt, vsum(a20), vsum(a21), vsum(a22), vsum(a23))
    if nf > 3:
        _add_row(pg[f3], t0, nt, vsum(a30), vsum(a31), vsum(a32), vsum(a33))


@jit(refcounts=False)
def _grad_rows(dy, mask, argmax, pooled, mode, F, P, Fp, dst, sums, db):
    """One image's conv-output gradient g (F, P) as pixel-major rows for
    :func:`_dw_tile_2v12`: dst[p*Fp + f] = g[f, p] (0 for F <= f < Fp), and
    db[f] += sum_p g[f, p] (sums: a work array of Fp elements).

    g is dy (F, P) itself (mode DY_AS_GIVEN), dy where mask > 0 (DY_RELU_MASKED, a fused
    ReLU), or (DY_RELU_POOL_ROUTED) the gradient dy (F, PP) of a max pooling routed back to
    the winners argmax (plane indices p; out-of-range ones dropped) where pooled > 0:
    maxpool backward and the ReLU's, summed in window order. db adds in pixel order in
    every mode, so the fused modes give the bits of DY_AS_GIVEN on the gradient the
    separate passes make. dy, mask, argmax, pooled flat; mask, argmax and pooled are read
    only in their modes. Outside DY_RELU_POOL_ROUTED, whole blocks of lanes x lanes
    (channels by pixels) are transposed in registers (:func:`vtranspose_block`), the
    remaining rows and columns an element at a time.
    """
    zero = typed(dst, 0.0)
    if mode == DY_RELU_POOL_ROUTED:
        for q in range(P * Fp):
            dst[q] = zero
        PP = dy.size // F
        for f in range(F):
            for k in range(f * PP, (f + 1) * PP):
                if pooled[k] > zero:
                    p = argmax[k]
                    if p >= 0 and p < P:
                        dst[p * Fp + f] += dy[k]
    else:
        masked = mode == DY_RELU_MASKED
        keep = mask if masked else dy  # read by the blocks, used only when masked
        L = lanes(dst)
        Fb = F - F % L
        Pb = P - P % L
        for p0 in range(0, Pb, L):  # whole blocks of L channels by L pixels in registers
            for f0 in range(0, Fb, L):
                vtranspose_block(dy, keep, masked, f0 * P + p0, P, dst, p0 * Fp + f0, Fp)
        for f in range(F):  # the rest, one element at a time
            for p in range(Pb if f < Fb else 0, P):
                v = dy[f * P + p]
                if masked and not mask[f * P + p] > zero:
                    v = zero
                dst[p * Fp + f] = v
        for p in range(P):
            for f in range(F, Fp):
                dst[p * Fp + f] = zero
    for f in range(Fp):  # across channels: each sum in pixel order
        sums[f] = zero
    for p in range(P):
        row = dst[p * Fp : (p + 1) * Fp]
        for f in range(Fp):
            sums[f] += row[f]
    for f in range(F):
        db[f] += sums[f]


@jit(refcounts=False)
def _dw_tile_2v12(xs, dyt, nimg, offs, f0, t0, T, OH, OW, Wp, step, Fp, xplane, L, tmp):
    """tmp[k, :2L] = sum over nimg images n and the OH*OW pixels p = (r, c) of
    dyt[(n*OH*OW + p)*Fp + f0:][:2L] * xs[n*xplane + offs[t0 + k] + r*Wp + c*step], k < 12
    (taps past T - 1 clamped). ``Wp`` and ``step`` are x's strides between the pixels'
    rows and columns: the padded row width and 1 at stride 1, SH times it and SW at others.
    The channel tiles (:mod:`.channel_tiles`) also run it with other roles for its sums.

    The GEMM-style backward-weights tile: output channels run along the vector lanes
    (dy transposed to pixel-major rows of Fp channels, :func:`_grad_rows`), so 24 vector
    accumulators (two vectors of channels by 12 taps) stay in registers over every
    pixel of every image and need no horizontal sums; each pixel loads two dy vectors
    and broadcasts 12 x values (rows Wp apart in xs) for 24 multiply-adds. With
    :data:`~.direct.HALF_TILES` (AVX2) it runs over the pixels twice, six taps at a time.
    """
    q0 = offs[min(t0 + 0, T - 1)]
    q1 = offs[min(t0 + 1, T - 1)]
    q2 = offs[min(t0 + 2, T - 1)]
    q3 = offs[min(t0 + 3, T - 1)]
    q4 = offs[min(t0 + 4, T - 1)]
    q5 = offs[min(t0 + 5, T - 1)]
    q6 = offs[min(t0 + 6, T - 1)]
    q7 = offs[min(t0 + 7, T - 1)]
    q8 = offs[min(t0 + 8, T - 1)]
    q9 = offs[min(t0 + 9, T - 1)]
    q10 = offs[min(t0 + 10, T - 1)]
    q11 = offs[min(t0 + 11, T - 1)]
    z = vsplat(typed(tmp, 0.0))
    a0 = z
    b0 = z
    a1 = z
    b1 = z
    a2 = z
    b2 = z
    a3 = z
    b3 = z
    a4 = z
    b4 = z
    a5 = z
    b5 = z
    a6 = z
    b6 = z
    a7 = z
    b7 = z
    a8 = z
    b8 = z
    a9 = z
    b9 = z
    a10 = z
    b10 = z
    a11 = z
    b11 = z
    if HALF_TILES:
        for n in range(nimg):
            for r in range(OH):
                x_row = n * xplane + r * Wp
                dy_row = ((n * OH + r) * OW) * Fp + f0
                for c in range(OW):
                    d0 = vload(dyt, dy_row + c * Fp)
                    d1 = vload(dyt, dy_row + c * Fp + L)
                    xj = x_row + c * step
                    s = vbroadcast(xs, xj + q0)
                    a0 = vfma(d0, s, a0)
                    b0 = vfma(d1, s, b0)
                    s = vbroadcast(xs, xj + q1)
                    a1 = vfma(d0, s, a1)
                    b1 = vfma(d1, s, b1)
                    s = vbroadcast(xs, xj + q2)
                    a2 = vfma(d0, s, a2)
                    b2 = vfma(d1, s, b2)
                    s = vbroadcast(xs, xj + q3)
                    a3 = vfma(d0, s, a3)
                    b3 = vfma(d1, s, b3)
                    s = vbroadcast(xs, xj + q4)
                    a4 = vfma(d0, s, a4)
                    b4 = vfma(d1, s, b4)
                    s = vbroadcast(xs, xj + q5)
                    a5 = vfma(d0, s, a5)
                    b5 = vfma(d1, s, b5)
        vstore(tmp, 0 * 2 * L, a0)
        vstore(tmp, 0 * 2 * L + L, b0)
        vstore(tmp, 1 * 2 * L, a1)
        vstore(tmp, 1 * 2 * L + L, b1)
        vstore(tmp, 2 * 2 * L, a2)
        vstore(tmp, 2 * 2 * L + L, b2)
        vstore(tmp, 3 * 2 * L, a3)
        vstore(tmp, 3 * 2 * L + L, b3)
        vstore(tmp, 4 * 2 * L, a4)
        vstore(tmp, 4 * 2 * L + L, b4)
        vstore(tmp, 5 * 2 * L, a5)
        vstore(tmp, 5 * 2 * L + L, b5)
        for n in range(nimg):
            for r in range(OH):
                x_row = n * xplane + r * Wp
                dy_row = ((n * OH + r) * OW) * Fp + f0
                for c in range(OW):
                    d0 = vload(dyt, dy_row + c * Fp)
                    d1 = vload(dyt, dy_row + c * Fp + L)
                    xj = x_row + c * step
                    s = vbroadcast(xs, xj + q6)
                    a6 = vfma(d0, s, a6)
                    b6 = vfma(d1, s, b6)
                    s = vbroadcast(xs, xj + q7)
                    a7 = vfma(d0, s, a7)
                    b7 = vfma(d1, s, b7)
                    s = vbroadcast(xs, xj + q8)
                    a8 = vfma(d0, s, a8)
                    b8 = vfma(d1, s, b8)
                    s = vbroadcast(xs, xj + q9)
                    a9 = vfma(d0, s, a9)
                    b9 = vfma(d1, s, b9)
                    s = vbroadcast(xs, xj + q10)
                    a10 = vfma(d0, s, a10)
                    b10 = vfma(d1, s, b10)
                    s = vbroadcast(xs, xj + q11)
                    a11 = vfma(d0, s, a11)
                    b11 = vfma(d1, s, b11)
        vstore(tmp, 6 * 2 * L, a6)
        vstore(tmp, 6 * 2 * L + L, b6)
        vstore(tmp, 7 * 2 * L, a7)
        vstore(tmp, 7 * 2 * L + L, b7)
        vstore(tmp, 8 * 2 * L, a8)
        vstore(tmp, 8 * 2 * L + L, b8)
        vstore(tmp, 9 * 2 * L, a9)
        vstore(tmp, 9 * 2 * L + L, b9)
        vstore(tmp, 10 * 2 * L, a10)
        vstore(tmp, 10 * 2 * L + L, b10)
        vstore(tmp, 11 * 2 * L, a11)
        vstore(tmp, 11 * 2 * L + L, b11)
        return
    for n in range(nimg):
        for r in range(OH):
            x_row = n * xplane + r * Wp
            dy_row = ((n * OH + r) * OW) * Fp + f0
            for c in range(OW):
                d0 = vload(dyt, dy_row + c * Fp)
                d1 = vload(dyt, dy_row + c * Fp + L)
                xj = x_row + c * step
                s = vbroadcast(xs, xj + q0)
                a0 = vfma(d0, s, a0)
                b0 = vfma(d1, s, b0)
                s = vbroadcast(xs, xj + q1)
                a1 = vfma(d0, s, a1)
                b1 = vfma(d1, s, b1)
                s = vbroadcast(xs, xj + q2)
                a2 = vfma(d0, s, a2)
                b2 = vfma(d1, s, b2)
                s = vbroadcast(xs, xj + q3)
                a3 = vfma(d0, s, a3)
                b3 = vfma(d1, s, b3)
                s = vbroadcast(xs, xj + q4)
                a4 = vfma(d0, s, a4)
                b4 = vfma(d1, s, b4)
                s = vbroadcast(xs, xj + q5)
                a5 = vfma(d0, s, a5)
                b5 = vfma(d1, s, b5)
                s = vbroadcast(xs, xj + q6)
                a6 = vfma(d0, s, a6)
                b6 = vfma(d1, s, b6)
                s = vbroadcast(xs, xj + q7)
                a7 = vfma(d0, s, a7)
                b7 = vfma(d1, s, b7)
                s = vbroadcast(xs, xj + q8)
                a8 = vfma(d0, s, a8)
                b8 = vfma(d1, s, b8)
                s = vbroadcast(xs, xj + q9)
                a9 = vfma(d0, s, a9)
                b9 = vfma(d1, s, b9)
                s = vbroadcast(xs, xj + q10)
                a10 = vfma(d0, s, a10)
                b10 = vfma(d1, s, b10)
                s = vbroadcast(xs, xj + q11)
                a11 = vfma(d0, s, a11)
                b11 = vfma(d1, s, b11)
    w = 2 * L
    vstore(tmp, 0 * w, a0)
    vstore(tmp, 0 * w + L, b0)
    vstore(tmp, 1 * w, a1)
    vstore(tmp, 1 * w + L, b1)
    vstore(tmp, 2 * w, a2)
    vstore(tmp, 2 * w + L, b2)
    vstore(tmp, 3 * w, a3)
    vstore(tmp, 3 * w + L, b3)
    vstore(tmp, 4 * w, a4)
    vstore(tmp, 4 * w + L, b4)
    vstore(tmp, 5 * w, a5)
    vstore(tmp, 5 * w + L, b5)
    vstore(tmp, 6 * w, a6)
    vstore(tmp, 6 * w + L, b6)
    vstore(tmp, 7 * w, a7)
    vstore(tmp, 7 * w + L, b7)
    vstore(tmp, 8 * w, a8)
    vstore(tmp, 8 * w + L, b8)
    vstore(tmp, 9 * w, a9)
    vstore(tmp, 9 * w + L, b9)
    vstore(tmp, 10 * w, a10)
    vstore(tmp, 10 * w + L, b10)
    vstore(tmp, 11 * w, a11)
    vstore(tmp, 11 * w + L, b11)


@jit(refcounts=False)
def _add_row(row, t0, nt, s0, s1, s2, s3):
    """row[t0:t0 + nt] += (s0, s1, s2, s3)[:nt]."""
    row[t0] += s0
    if nt > 1:
        row[t0 + 1] += s1
    if nt > 2:
        row[t0 + 2] += s2
    if nt > 3:
        row[t0 + 3] += s3


@jit(refcounts=False)
def _scatter_image(dyw, OH, Wp, W, c, PH, PW, acc, dxc):
    """dxc (H, W) = backward-data of one image for input channel c, the scatter form.

    dyw: the image's dy planes widened to row width Wp, flat (F, OH, Wp) with zero junk
    columns; each pass adds four output channels' planes, weighted, into a shifted run
    of the padded plane acc ((OH+KH-1)*Wp), which is then cropped into dxc.
    """
    wide_vectors()
    F, KH, KW = W.shape[0], W.shape[2], W.shape[3]
    H = dxc.shape[0]
    Wd = dxc.shape[1]
    OW = Wp - KW + 1
    J = (OH - 1) * Wp + OW
    P = OH * Wp
    zero = typed(acc, 0.0)
    for q in range(acc.shape[0]):
        acc[q] = zero
    for kh in range(KH):
        for kw in range(KW):
            off = kh * Wp + kw
            a = acc[off : off + J]
            f = 0
            while f + CHANNELS_PER_PASS <= F:
                d0 = dyw[f * P : f * P + J]
                d1 = dyw[(f + 1) * P : (f + 1) * P + J]
                d2 = dyw[(f + 2) * P : (f + 2) * P + J]
                d3 = dyw[(f + 3) * P : (f + 3) * P + J]
                w0 = W[f, c, kh, kw]
                w1 = W[f + 1, c, kh, kw]
                w2 = W[f + 2, c, kh, kw]
                w3 = W[f + 3, c, kh, kw]
                for j in range(J):
                    a[j] += w0 * d0[j] + w1 * d1[j] + w2 * d2[j] + w3 * d3[j]
                f += CHANNELS_PER_PASS
            while f < F:
                d0 = dyw[f * P : f * P + J]
                w0 = W[f, c, kh, kw]
                for j in range(J):
                    a[j] += w0 * d0[j]
                f += 1
    for h in range(H):
        src = acc[(h + PH) * Wp + PW : (h + PH) * Wp + PW + Wd]
        dst = dxc[h]
        for w in range(Wd):
            dst[w] = src[w]


@parallel_kernel
def direct_backward_s1(
    x,
    dy,
    W,
    Wt,
    PH,
    PW,
    scatter,
    relu_out,
    mode,
    argmax,
    pooled,
    input_grad,
    weight_grad,
    dx,
    dW,
    db,
    weights_item,
    scatter_item,
    correlate_item,
    taps,
):
    """All stride-1 gradients in one parallel region, the padding fused in.

    dW[f, c, kh, kw] = sum_{n, i, j} dy[n, f, i, j] * xpad[n, c, i + kh, j + kw]; db[f] = sum dy[n, f];
    dx[n, c, h, w] = sum_{f, kh, kw} W[f, c, kh, kw] * dy[n, f, h + PH - kh, w + PW - kw].
    Wt is W flipped and transposed (C, F, KH, KW). Work items, one prange: N backward-data
    items (one image each: the full correlation of dy[n] padded by (KH-1-PH, KW-1-PW)
    against Wt through :func:`_conv_planes`, or, when ``scatter``, the scatter form per
    input channel) and G = min(N, DW_GROUPS) backward-weights items (a fixed group of
    images, a chunk at a time: each image's x is padded once into the item's buffer;
    with fewer than two vectors of output channels, dy is widened to the padded row
    width and :func:`_dw_tile_4x4` takes four channels by four taps a pass, else dy goes
    into pixel-major rows (:func:`_grad_rows`) for :func:`_dw_tile_2v12`). The
    two kinds are interleaved in proportion, so every contiguous share of the range
    holds both. After the loop the G partial dW and db are added in group order,
    serially: nothing depends on the thread count.
    The gradient of the conv output is read through :func:`_pad_grad` (or
    :func:`_grad_rows`, ``mode`` one of :mod:`.modes`): dy itself (DY_AS_GIVEN;
    relu_out is then dy), dy where relu_out > 0 (DY_RELU_MASKED: a ReLU with output relu_out
    fused in) or, DY_RELU_POOL_ROUTED, the gradient dy of maxpool(relu(conv)) routed back
    through argmax and the ReLU (pooled: the pooling's output; dy, argmax and pooled have
    its shape; relu_out is not read then and needs only N and F). Without ``input_grad``
    there are no backward-data items and dx is left untouched; without ``weight_grad`` (a
    frozen layer) there are no backward-weights items and dW and db are left untouched.
    weights_item, scatter_item, correlate_item: :func:`backward_items` of the dtype, the
    three kinds of item, called through their addresses (:mod:`~fastnn.kernels._native`).
    taps (int64, increasing; empty: all): the taps t = (c*KH + kh)*KW + kw of dW to compute,
    e.g. a polyphase split's real ones (:func:`~.polyphase.phase_taps`); the weights items
    run over those alone and the other entries of dW are set to 0. dx is not affected.
    """
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH = H + 2 * PH - KH + 1
    OW = Wd + 2 * PW - KW + 1
    Wp = Wd + 2 * PW
    T = C * KH * KW
    Pst = (OH * Wp + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN  # widened dy plane stride
    L = lanes(dW.reshape(dW.size))
    rows = F >= 2 * L  # two vectors of channels: pixel-major rows and _dw_tile_2v12
    Fp = (F + 2 * L - 1) // (2 * L) * (2 * L)
    chunk = max(1, min(DW_CHUNK, DW_CHUNK_PIXELS // Pst))
    offs_x = _tap_offsets(C, KH, KW, chunk * (H + 2 * PH), Wp)  # channel c at c * chunk * plane
    if taps.size != 0:
        offs_x = offs_x[taps]
    G = min(N, DW_GROUPS)
    D = G if weight_grad else 0
    M = (N if input_grad else 0) + D
    parts = np.empty((D, F, offs_x.size + 1), dtype=dW.dtype)  # dW and db partials per group
    Hf = H + KH - 1
    Wf = Wd + KW - 1
    packed_t, packed_zeros = _pack_weights(Wt, np.zeros(C, dtype=dx.dtype))
    offs_t = _tap_offsets(F, KH, KW, Hf, Wf)
    for m in prange(M):
        # item m is the k-th dW item when floor((m+1)D/M) > floor(mD/M), else a dx item;
        # the work arrays are allocated here, so the items run without reference counts
        k = (m * D) // M
        if ((m + 1) * D) // M > k:
            # x channel-major (C, chunk, Hp*Wp), zeroed: runs read up to KW - 1 + RUN_ALIGN
            # past a plane, where dy is zero, into the next plane or the zero slack
            xs = np.zeros(C * chunk * (H + 2 * PH) * Wp + RUN_ALIGN + KW, dtype=dW.dtype)
            dys = np.empty(0 if rows else chunk * F * Pst, dtype=dW.dtype)
            dyt = np.empty(chunk * OH * OW * Fp if rows else 0, dtype=dW.dtype)
            tmp = np.empty(DW_TAPS * 2 * L, dtype=dW.dtype)
            sums = np.empty(Fp, dtype=dW.dtype)
            call_native(
                weights_item,
                (
                    x,
                    dy,
                    relu_out,
                    argmax,
                    pooled,
                    mode,
                    PH,
                    PW,
                    KH,
                    KW,
                    (k * N) // G,
                    ((k + 1) * N) // G,
                    chunk,
                    offs_x,
                    rows,
                    xs,
                    dys,
                    dyt,
                    tmp,
                    sums,
                    parts[k],
                ),
            )
        elif scatter:
            dyw = np.empty(F * OH * Wp, dtype=dx.dtype)
            plane = np.empty((OH + KH - 1) * Wp, dtype=dx.dtype)
            call_native(scatter_item, (m - k, dy, W, relu_out, argmax, pooled, mode, PH, PW, dyw, plane, dx))
        else:
            dyn = np.empty(F * Hf * Wf + RUN_ALIGN, dtype=dx.dtype)
            # the tiles' work array, or correlate_rows' 16 vectors
            acc = np.empty(max(OUT_BLOCK * _run(H, Wd, Wf) if Wd < L else 0, 16 * L), dtype=dx.dtype)
            call_native(
                correlate_item,
                (
                    m - k,
                    dy,
                    relu_out,
                    argmax,
                    pooled,
                    mode,
                    PH,
                    PW,
                    KH,
                    KW,
                    offs_t,
                    packed_t,
                    packed_zeros,
                    dyn,
                    acc,
                    dx,
                ),
            )
    if weight_grad:
        if taps.size == 0:
            _sum_parts(parts, dW.reshape(F, T), db)
        else:
            chosen = np.empty((F, taps.size), dtype=dW.dtype)
            _sum_parts(parts, chosen, db)
            _spread_taps(chosen, taps, dW.reshape(F, T))


@jit(refcounts=False)
def _weights_item(
    x,
    dy,
    relu_out,
    argmax,
    pooled,
    mode,
    PH,
    PW,
    KH,
    KW,
    n_begin,
    n_end,
    chunk,
    offs_x,
    rows,
    xs,
    dys,
    dyt,
    tmp,
    sums,
    pg,
):
    """One backward-weights item of :func:`direct_backward_s1`: pg (F, T + 1) = the
    partial dW (F, T) and db (column T) of images n_begin <= n < n_end, a chunk of
    images at a time, for the T taps whose offsets offs_x holds (:func:`_tap_offsets` of
    the chunk buffer's planes, or a selection of them).
    ``rows``: dy goes into pixel-major rows dyt for :func:`_dw_tile_2v12`, else into
    widened planes dys for :func:`_dw_tile_4x4`; xs: the chunk's x planes, zeroed;
    tmp, sums: work arrays of :func:`_dw_tile_2v12` and :func:`_grad_rows`."""
    wide_vectors()
    N, C, H, Wd = x.shape
    F = pg.shape[0]
    T = offs_x.size
    OH = H + 2 * PH - KH + 1
    OW = Wd + 2 * PW - KW + 1
    Wp = Wd + 2 * PW
    Pst = (OH * Wp + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN  # widened dy plane stride
    L = lanes(pg.reshape(pg.size))
    V = Pst // L
    xplane = (H + 2 * PH) * Wp
    zero = typed(pg, 0.0)
    no_offset = runtime(0)
    for f in range(F):
        for t in range(T + 1):
            pg[f, t] = zero
    Fp = (F + 2 * L - 1) // (2 * L) * (2 * L)
    for n0 in range(n_begin, n_end, chunk):
        nimg = min(chunk, n_end - n0)
        for nn in range(nimg):
            # only the interior: the borders of xs are zero from its allocation and
            # no image writes there
            _copy_interior(
                x[n0 + nn].reshape(C * H * Wd), C, H, Wd, xs, nn * xplane + PH * Wp + PW, chunk * xplane, Wp
            )
            if rows:
                n = n0 + nn
                _grad_rows(
                    dy[n].reshape(dy[n].size),
                    relu_out[n].reshape(relu_out[n].size),
                    argmax[n].reshape(argmax[n].size),
                    pooled[n].reshape(pooled[n].size),
                    mode,
                    F,
                    OH * OW,
                    Fp,
                    dyt[nn * OH * OW * Fp : (nn + 1) * OH * OW * Fp],
                    sums,
                    pg[:, T],
                )
                continue
            for f in range(F):
                at = (nn * F + f) * Pst
                seg = dys[at : at + Pst]
                if mode == DY_RELU_POOL_ROUTED:
                    _pad_pooled(
                        dy[n0 + nn, f : f + 1],
                        argmax[n0 + nn, f : f + 1],
                        pooled[n0 + nn, f : f + 1],
                        OW,
                        no_offset,
                        no_offset,
                        OH,
                        Wp,
                        seg[: OH * Wp],
                    )
                else:
                    _widen_plane(
                        dy[n0 + nn, f].reshape(OH * OW),
                        relu_out[n0 + nn, f].reshape(OH * OW),
                        mode == DY_RELU_MASKED,
                        OH,
                        OW,
                        seg,
                        Wp,
                    )
                s = zero
                for j in range(OH * Wp):
                    s += seg[j]
                pg[f, T] += s
                for j in range(OH * Wp, Pst):
                    seg[j] = zero
        if rows:
            # GEMM-style tiles over dy as (image, pixel, channel) rows
            for f0 in range(0, F, 2 * L):
                nf = min(2 * L, F - f0)
                for t0 in range(0, T, DW_TAPS):
                    _dw_tile_2v12(xs, dyt, nimg, offs_x, f0, t0, T, OH, OW, Wp, 1, Fp, xplane, L, tmp)
                    for kk in range(min(DW_TAPS, T - t0)):
                        row = tmp[kk * 2 * L : (kk + 1) * 2 * L]
                        for ff in range(nf):
                            pg[f0 + ff, t0 + kk] += row[ff]
        else:
            for f0 in range(0, F, 4):
                for t0 in range(0, T, 4):
                    _dw_tile_4x4(xs, dys, nimg, offs_x, f0, t0, F, T, Pst, V, L, xplane, pg)


@jit(refcounts=False)
def _scatter_item(n, dy, W, relu_out, argmax, pooled, mode, PH, PW, dyw, plane, dx):
    """A backward-data item of :func:`direct_backward_s1` for few input channels: dx[n]
    from the gradient of image n's conv output (widened into dyw, (F, OH, Wp)),
    scattered per input channel through the work plane (:func:`_scatter_image`)."""
    wide_vectors()
    C = dx.shape[1]
    OW = dx.shape[3] + 2 * PW - W.shape[3] + 1
    OH = dx.shape[2] + 2 * PH - W.shape[2] + 1
    Wp = dx.shape[3] + 2 * PW
    no_offset = runtime(0)
    _pad_grad(dy[n], relu_out[n], argmax[n], pooled[n], mode, OW, no_offset, no_offset, OH, Wp, dyw)
    for c in range(C):
        _scatter_image(dyw, OH, Wp, W, c, PH, PW, plane, dx[n, c])


@jit(inline="always")
def _pad_full(n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, dyn, dx):
    """Image n's conv-output gradient (read as ``mode`` says, :func:`_pad_grad`) into dyn as
    the full correlation takes it: F planes of Hf x Wf = (H+KH-1) x (W+KW-1), dy at row
    KH-1-PH and column KW-1-PW, and RUN_ALIGN zeros of slack after them. Returns (Hf, Wf)."""
    H, Wd = dx.shape[2], dx.shape[3]
    Hf = H + KH - 1
    Wf = Wd + KW - 1
    OW = Wd + 2 * PW - KW + 1
    _pad_grad(dy[n], relu_out[n], argmax[n], pooled[n], mode, OW, KH - 1 - PH, KW - 1 - PW, Hf, Wf, dyn)
    zero = typed(dx, 0.0)
    end = dyn.size - RUN_ALIGN
    for q in range(RUN_ALIGN):
        dyn[end + q] = zero
    return Hf, Wf


@jit(refcounts=False)
def _correlate_item(
    n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, offs_t, packed_t, packed_zeros, dyn, acc, dx
):
    """A backward-data item of :func:`direct_backward_s1`: dx[n] = the full correlation of
    image n's conv-output gradient, padded into dyn (:func:`_pad_full`), with the flipped
    weights, through :func:`_conv_planes` (offs_t, packed_t, packed_zeros: its taps and
    packed weights; acc its work array)."""
    wide_vectors()
    Hf, Wf = _pad_full(n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, dyn, dx)
    _conv_planes(dyn, Wf, offs_t, packed_t, packed_zeros, runtime(False), acc, dx[n])


@jit(refcounts=False)
def _rows_item(
    n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, offs_t, packed_t, packed_zeros, dyn, acc, dx
):
    """:func:`_correlate_item` on rows one vector wide, through
    :func:`~.row_correlate.correlate_rows` (the same sums, the padding's zero rows left
    out; acc holds its 16 vectors). Its arguments are _correlate_item's, so
    :func:`direct_backward_s1` takes either as its ``correlate_item`` and compiles once."""
    wide_vectors()
    Hf, Wf = _pad_full(n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, dyn, dx)
    OH = dx.shape[2] + 2 * PH - KH + 1
    correlate_rows(dyn[: dyn.size - RUN_ALIGN], Hf, Wf, KH, KW, KH - 1 - PH, OH, packed_t, acc, dx[n])


_BACKWARD_ITEMS = {}


def backward_items(dtype, rows: bool = False):
    """The last three arguments of :func:`direct_backward_s1` for arrays of ``dtype``:
    _weights_item, _scatter_item and _correlate_item (``rows``: :func:`_rows_item` in its
    place), each compiled once as a :class:`~fastnn.kernels._native.NativeFunction` when
    first passed to the kernel. A NativeFunction's type is its signature alone, so the
    kernel is one build whichever backward-data item it is given."""
    dtype = np.dtype(dtype)
    items = _BACKWARD_ITEMS.get(dtype)
    if items is None:
        f = numba.from_dtype(dtype)
        i, b = numba.int64, numba.boolean
        a1, a2, a4 = (numba.types.Array(f, d, "C") for d in (1, 2, 4))
        i1, i4 = (numba.types.Array(i, d, "C") for d in (1, 4))
        data = (i, a4, a4, i4, a4, i, i, i, i, i, i1, a2, a1, a1, a1, a4)
        items = _BACKWARD_ITEMS[dtype] = (
            NativeFunction(
                _weights_item, (a4, a4, a4, i4, a4, i, i, i, i, i, i, i, i, i1, b, a1, a1, a1, a1, a1, a2)
            ),
            NativeFunction(_scatter_item, (i, a4, a4, a4, i4, a4, i, i, i, a1, a1, a4)),
            NativeFunction(_correlate_item, data),
            NativeFunction(_rows_item, data),
        )
    return items[:2] + (items[3] if rows else items[2],)


@jit
def _spread_taps(chosen, taps, dW):
    """dW[f, taps[j]] = chosen[f, j], and 0 at the taps not listed: chosen (F, J), dW (F, T)."""
    zero = typed(dW, 0.0)
    for f in range(dW.shape[0]):
        for t in range(dW.shape[1]):
            dW[f, t] = zero
        for j in range(taps.size):
            dW[f, taps[j]] = chosen[f, j]


@jit(refcounts=False)
def _sum_parts(parts, dW, db):
    """dW[f, t] = parts[0, f, t] + parts[1, f, t] + ... and db[f] = the same over parts[:, f, T],
    added in group order: parts (G, F, T + 1), dW (F, T), db (F,). Group by group over
    contiguous rows, so the adds vectorise."""
    wide_vectors()
    G, F, T1 = parts.shape
    zero = typed(dW, 0.0)
    for f in range(F):
        out = dW[f]
        for t in range(T1 - 1):
            out[t] = zero
        db[f] = zero
    for g in range(G):
        for f in range(F):
            src = parts[g, f]
            out = dW[f]
            for t in range(T1 - 1):
                out[t] += src[t]
            db[f] += src[T1 - 1]
