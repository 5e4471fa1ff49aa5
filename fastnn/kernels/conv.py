"""Convolution kernels: direct loops and im2col + BLAS GEMM, forward and backward.

Layout NCHW throughout; every array passed in is C-contiguous and native-endian,
every output is passed in (see :mod:`fastnn.backends.numba_conv`, which also
picks the algorithm). Generic over float32/float64: constants come from
:func:`~fastnn.kernels._scalars.typed` or from the arrays themselves.

Two algorithms:

* **direct** (every stride-1 layer). Stride 1 uses the *wide-row* trick: an
  output plane is computed on the padded input's row width ``Win``, so output
  pixel (i, j) sits at flat index ``i*Win + j`` and kernel tap (c, kh, kw) reads
  the input plane at the constant offset ``c*Hin*Win + kh*Win + kw`` from it. A
  whole plane is then one contiguous run, and the kernels are *register-blocked*
  with the explicit SIMD vectors of :mod:`fastnn.kernels._simd`: the forward tile
  (:func:`_tile_8x2`) holds eight output channels by two vectors of pixels in 16
  vector registers over all C*KH*KW taps (two loads and eight broadcasts feed 16
  fused multiply-adds), and the backward-weights tile (:func:`_dw_tile_4x4`) holds
  four output channels by four taps over every pixel of a chunk of images. Rows of
  at least one vector are tiled row by row (the last vector of a row overlapping
  the one before) and the tiles store straight into the output; narrower rows are
  tiled along the whole wide run and the junk columns ``j >= OW`` are dropped when
  the tile is copied out.
  Stride-1 kernels pad inside the kernel, per image, into a buffer of the thread's
  own (no padding pass over the batch, no padded copy): the forward pass
  (:func:`direct_conv_s1`) is one parallel region over images, and the whole
  backward pass (:func:`direct_backward_s1`) is one parallel region whose items are
  backward-data of one image (the full correlation of dy with the flipped weights
  through the forward tiles, or for few input channels the transposed scatter of
  widened dy into a padded dx plane) interleaved with backward-weights of a fixed
  group of images, whose partials are added in group order afterwards. Other
  strides run plain loops over the padded input.
* **im2col**: parallel over chunks of images, each small enough for its column
  matrix to stay in one core's L2 cache. A thread takes a whole chunk: transposed
  im2col colT (C*KH*KW, rows), one GEMM out (F, rows) = W_mat @ colT through BLAS,
  which the caller keeps single-threaded meanwhile (threadpoolctl), then bias and a
  contiguous copy to NCHW. So there is one parallel region per call and BLAS's own
  threads never spin against Numba's. Backward recomputes the chunk's columns,
  dW_group += dy_T @ colT.T, dcolT = W_mat.T @ dy_T, and col2im scatters dcolT back
  into the chunk's (n, c) planes (owned by that thread); dW sums a fixed number of
  group partials in order.

Every reduction runs in a fixed order, so results do not depend on the thread count.
"""

import numba
import numpy as np
from numba import get_thread_id, prange

from .._config import jit, parallel_kernel
from ._native import NativeFunction, call_native
from ._scalars import runtime, typed
from ._simd import (lanes, vbroadcast, vfma, vload, vrelu, vsplat, vstore, vsum,
                    vwhere_positive, wide_vectors)
from ._simd_pool import pool_tile_put, route_2x2_step
from .pool import INT32_PLANE, maxpool_2x2_image

TAPS_PER_PASS = 4

#: The wide-row runs are rounded up to a multiple of this many elements, so the
#: vectorised loops have no scalar remainder (short planes, e.g. 14x14, otherwise ran
#: almost half their iterations in it); buffers read by a run get that much zeroed slack.
RUN_ALIGN = 16


@jit(inline="always")
def _run(OH, OW, Win):
    """The wide-row run length (OH-1)*Win + OW rounded up to a multiple of RUN_ALIGN."""
    J = (OH - 1) * Win + OW
    return (J + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN


# ----------------------------------------------------------------- helpers

@parallel_kernel
def pad_planes(src, top, left, dst):
    """dst[n, c] = src[n, c] placed at (top, left), zeros elsewhere (every dst element written)."""
    n_img, chans, h, w = src.shape
    hd, wd = dst.shape[2], dst.shape[3]
    zero = typed(dst, 0.0)
    for plane in prange(n_img * chans):
        wide_vectors()
        n = plane // chans
        c = plane - n * chans
        for r in range(hd):
            sr = r - top
            if sr < 0 or sr >= h:
                for q in range(wd):
                    dst[n, c, r, q] = zero
            else:
                for q in range(left):
                    dst[n, c, r, q] = zero
                for q in range(w):
                    dst[n, c, r, left + q] = src[n, c, sr, q]
                for q in range(left + w, wd):
                    dst[n, c, r, q] = zero


@jit(inline="always")
def _tap_offset(t, KH, KW, plane, Win, base):
    """Flat offset of kernel tap t = (c, kh, kw) in an image of (Hin, Win) planes."""
    kk = KH * KW
    c = t // kk
    r = t - c * kk
    kh = r // KW
    kw = r - kh * KW
    return c * plane + kh * Win + kw + base


# ------------------------------------------------------------------ direct

@parallel_kernel
def direct_forward_strided(xp, W, b, SH, SW, y):
    """Any stride, pre-padded input: y[n, f, i, j] = b[f] + sum W[f, c, kh, kw] * xp[n, c, i*SH + kh, j*SW + kw].

    Parallel over (n, f) pairs; innermost loop over the output width.
    """
    N, C, Hp, Wp = xp.shape
    F, _, KH, KW = W.shape
    OH, OW = y.shape[2], y.shape[3]
    for pair in prange(N * F):
        wide_vectors()
        n = pair // F
        f = pair - n * F
        out = y[n, f]
        b0 = b[f]
        for i in range(OH):
            for j in range(OW):
                out[i, j] = b0
        for c in range(C):
            xc = xp[n, c]
            for kh in range(KH):
                for kw in range(KW):
                    w = W[f, c, kh, kw]
                    for i in range(OH):
                        row = xc[i * SH + kh]
                        for j in range(OW):
                            out[i, j] += w * row[j * SW + kw]



# ------------------------------------------------- direct, stride 1, padding fused

@jit(refcounts=False)
def _pad_image(src, TP, LP, Hin, Win, dst):
    """dst (flat, C*Hin*Win) = the (C, H, W) planes of src placed at (TP, LP) on (Hin, Win)
    planes, zeros elsewhere; parts of src falling outside are dropped (TP, LP may be < 0)."""
    wide_vectors()
    C, H, W = src.shape
    zero = typed(dst, 0.0)
    c0 = max(0, LP)
    c1 = max(c0, min(Win, LP + W))
    for c in range(C):
        for r in range(Hin):
            d = dst[(c * Hin + r) * Win:(c * Hin + r + 1) * Win]
            sr = r - TP
            if sr < 0 or sr >= H:
                for q in range(Win):
                    d[q] = zero
            else:
                for q in range(c0):
                    d[q] = zero
                s = src[c, sr, c0 - LP:c1 - LP]
                dd = d[c0:c1]
                for q in range(c1 - c0):
                    dd[q] = s[q]
                dt = d[c1:]
                for q in range(Win - c1):
                    dt[q] = zero


@jit(refcounts=False)
def _copy_run(src, s0, dst, d0, n, L, mask, masked):
    """dst[d0:d0 + n] = src[s0:s0 + n] for flat arrays and n >= L, taken only where
    mask[s0:s0 + n] > 0 (else 0) when ``masked``, in whole vectors of L: the last one
    ends at n, overlapping the one before it."""
    q = 0
    while q < n:
        q = min(q, n - L)
        v = vload(src, s0 + q)
        if masked:
            v = vwhere_positive(v, vload(mask, s0 + q))
        vstore(dst, d0 + q, v)
        q += L


@jit(refcounts=False)
def _pad_image_vectors(src, TP, LP, Hin, Win, dst, L):
    """:func:`_pad_image` in whole vectors, for TP, LP >= 0 and rows of at least L elements
    that fit (W >= L, LP + W <= Win): dst is zeroed, then each row copied with its last
    vector ending at the row's end. dst needs L - 1 elements of slack past C*Hin*Win."""
    C, H, W = src.shape
    flat = src.reshape(C * H * W)
    zero = vsplat(typed(dst, 0.0))
    for q in range(0, C * Hin * Win, L):
        vstore(dst, q, zero)
    for c in range(C):
        for r in range(H):
            _copy_run(flat, (c * H + r) * W, dst, (c * Hin + r + TP) * Win + LP, W, L,
                      flat, False)


@jit(refcounts=False)
def _pad_masked(src, mask, TP, LP, Hin, Win, dst):
    """:func:`_pad_image` of src taken only where mask (src's shape) is > 0, else 0: the
    gradient through a ReLU whose output is mask, fused into the copy."""
    wide_vectors()
    C, H, W = src.shape
    zero = typed(dst, 0.0)
    c0 = max(0, LP)
    c1 = max(c0, min(Win, LP + W))
    for c in range(C):
        for r in range(Hin):
            d = dst[(c * Hin + r) * Win:(c * Hin + r + 1) * Win]
            sr = r - TP
            if sr < 0 or sr >= H:
                for q in range(Win):
                    d[q] = zero
            else:
                for q in range(c0):
                    d[q] = zero
                s = src[c, sr, c0 - LP:c1 - LP]
                m = mask[c, sr, c0 - LP:c1 - LP]
                dd = d[c0:c1]
                for q in range(c1 - c0):
                    v = s[q]                    # loaded unconditionally, so the loop vectorises
                    dd[q] = v if m[q] > zero else zero
                dt = d[c1:]
                for q in range(Win - c1):
                    dt[q] = zero


@jit(refcounts=False)
def _pad_pooled(dyp, argmax, pooled, OWc, TP, LP, Hin, Win, dst):
    """:func:`_pad_masked` of the gradient that max pooling routes back to its input.

    dyp, argmax, pooled (C, PH, PW): the gradient of a max pooling's output, its argmax
    (plane index h*OWc + w of each window's winner in the pooling's input, a ReLU's output)
    and that output. dst (flat, C*Hin*Win) gets, at (h + TP, w + LP), the sum of dyp over
    the windows won by (h, w) whose pooled value is > 0 (the ReLU's mask, read where the
    pooling read it), zeros elsewhere: maxpool backward, ReLU backward and padding in one
    pass, in the order the separate passes would add. The 2x2 stride-2 windows of the
    fused forward pass, whole inside dst, go through :func:`_route_2x2_plane`; other
    windows (or a winner outside its window) by a zeroing pass and a scatter.
    """
    wide_vectors()
    C, PHo, PWo = dyp.shape
    zero = typed(dst, 0.0)
    windows_2x2 = (OWc == 2 * PWo and TP >= 0 and LP >= 0 and TP + 2 * PHo <= Hin
                   and LP + OWc <= Win)
    dyp_flat = dyp.reshape(dyp.size)
    argmax_flat = argmax.reshape(argmax.size)
    pooled_flat = pooled.reshape(pooled.size)
    for c in range(C):
        plane = dst[c * Hin * Win:(c + 1) * Hin * Win]
        if windows_2x2 and _route_2x2_plane(dyp_flat, argmax_flat, pooled_flat, c * PHo * PWo,
                                            PHo, PWo, TP, LP, Win, plane):
            continue
        for q in range(Hin * Win):
            plane[q] = zero
        for i in range(PHo):
            for j in range(PWo):
                if pooled[c, i, j] > zero:
                    pos = argmax[c, i, j]
                    h = pos // OWc
                    r = h + TP
                    q = pos - h * OWc + LP
                    if r >= 0 and r < Hin and q >= 0 and q < Win:
                        plane[r * Win + q] += dyp[c, i, j]


@jit(refcounts=False)
def _route_2x2_plane(dyp, argmax, pooled, at, PHo, PWo, TP, LP, Win, plane):
    """One plane of :func:`_pad_pooled` for 2x2 stride-2 windows (OWc = 2*PWo): the
    (PHo, PWo) windows start at ``at`` in the flat pooled arrays; plane (Hin*Win) gets
    their routed gradient at (TP, LP) and zeros around it, every element written once,
    the windows a vector at a time (:func:`~fastnn.kernels._simd_pool.route_2x2_step`).
    Returns False, the plane partly written, when a live window's argmax lies outside
    the window; the caller then takes the general scatter."""
    L = lanes(plane)
    OWc = 2 * PWo
    zero = typed(plane, 0.0)
    for q in range(TP * Win):
        plane[q] = zero
    for q in range((TP + 2 * PHo) * Win, plane.size):
        plane[q] = zero
    for i in range(PHo):
        top = (TP + 2 * i) * Win
        for r in range(top, top + 2 * Win, Win):
            for q in range(LP):
                plane[r + q] = zero
            for q in range(LP + OWc, Win):
                plane[r + q] = zero
        for j in range(0, PWo, L):
            if not route_2x2_step(dyp, pooled, argmax, at + i * PWo + j, min(L, PWo - j),
                                  2 * i * OWc + 2 * j, OWc, plane, top + LP + 2 * j, Win):
                return False
    return True


@jit(refcounts=False)
def _copy_interior(src, C, H, W, dst, at, cstride, Wp):
    """dst[at + c*cstride + r*Wp + q] = src[(c*H + r)*W + q]: the (C, H, W) image src into
    the interiors of padded planes (rows Wp apart, planes cstride apart), nothing else."""
    L = lanes(dst)
    for c in range(C):
        for r in range(H):
            s0 = (c * H + r) * W
            d0 = at + c * cstride + r * Wp
            if W >= L:
                _copy_run(src, s0, dst, d0, W, L, src, False)
            else:
                for q in range(W):
                    dst[d0 + q] = src[s0 + q]


@jit(refcounts=False)
def _widen_plane(src, mask, masked, H, W, dst, Wp):
    """dst[r*Wp + q] = src[r*W + q] (where mask[r*W + q] > 0, else 0, when ``masked``) for
    q < W, and 0 for W <= q < Wp: one (H, W) plane, flat, widened to rows of Wp. Rows of
    at least a vector go in whole vectors, the last one ending at the row's end."""
    L = lanes(dst)
    zero = typed(dst, 0.0)
    for r in range(H):
        s0 = r * W
        d0 = r * Wp
        if W >= L:
            _copy_run(src, s0, dst, d0, W, L, mask, masked)
        else:
            for q in range(W):
                v = src[s0 + q]
                dst[d0 + q] = zero if masked and not mask[s0 + q] > zero else v
        for q in range(W, Wp):
            dst[d0 + q] = zero


@jit(refcounts=False)
def _pad_grad(dy, relu_out, argmax, pooled, mode, OWc, TP, LP, Hin, Win, dst):
    """The gradient of one image's conv output, padded: dy itself (mode 0), dy through a
    ReLU with output relu_out (mode 1, :func:`_pad_masked`) or through a ReLU and a max
    pooling (mode 2, :func:`_pad_pooled`: dy, argmax and pooled are the pooling's, OWc the
    conv output's width); the branch sits outside the loops, so each copy loop vectorises."""
    if mode == 2:
        _pad_pooled(dy, argmax, pooled, OWc, TP, LP, Hin, Win, dst)
    elif mode == 1:
        _pad_masked(dy, relu_out, TP, LP, Hin, Win, dst)
    else:
        _pad_image(dy, TP, LP, Hin, Win, dst)


#: Output channels per register tile of the direct kernels.
OUT_BLOCK = 8


@jit
def _pack_weights(Wt, bias):
    """Wt (O, C, KH, KW) and bias (O,) as (ceil(O/8), T*8) and (ceil(O/8)*8,), T = C*KH*KW.

    Packed[ob, t*8 + k] = Wt[ob*8 + k, t] (zero past channel O), so a register tile reads
    its eight output channels' weights for tap t from one contiguous run.
    """
    O = Wt.shape[0]
    T = Wt.shape[1] * Wt.shape[2] * Wt.shape[3]
    blocks = (O + OUT_BLOCK - 1) // OUT_BLOCK
    packed = np.zeros((blocks, T * OUT_BLOCK), dtype=Wt.dtype)
    packed_bias = np.zeros(blocks * OUT_BLOCK, dtype=Wt.dtype)
    for o in range(O):
        wo = Wt[o].reshape(T)
        ob = o // OUT_BLOCK
        k = o - ob * OUT_BLOCK
        row = packed[ob]
        for t in range(T):
            row[t * OUT_BLOCK + k] = wo[t]
        packed_bias[o] = bias[o]
    return packed, packed_bias


@jit
def _tap_offsets(C, KH, KW, Hin, Win):
    """offs[t] = flat offset of tap t = (c, kh, kw) in an image of (Hin, Win) planes."""
    T = C * KH * KW
    offs = np.empty(T, dtype=np.int64)
    for t in range(T):
        offs[t] = _tap_offset(t, KH, KW, Hin * Win, Win, 0)
    return offs


@jit(refcounts=False)
def _tile_8x2(xn, offs, wb, bb, j0, j1, out, o0, o1, S, nk, relu, argmax, row):
    """out[k*S + o0:][:L] = bb[k] + sum_t wb[t*8 + k] * xn[offs[t] + j0:][:L], and the
    same for (j1, o1), for k < nk <= 8 (through max(., 0) when ``relu``). With ``row`` > 0
    the pair is rows 2i and 2i + 1 of planes with rows ``row`` long, from an even column,
    o1 the plane index of the first lane, and each channel's pair is pooled instead:
    out[k*S + o0:][:L/2] and argmax[k*S + o0:][:L/2] get its 2x2 max pooling
    (:func:`~fastnn.kernels._simd_pool.pool_tile_put`).

    The register tile: 16 vector accumulators (8 output channels x 2 vectors of pixels)
    stay in registers over all T taps; each tap loads two vectors of x and broadcasts
    eight weights, 16 fused multiply-adds. The two pixel vectors are anywhere in xn.
    """
    a0 = vsplat(bb[0])
    a1 = vsplat(bb[1])
    a2 = vsplat(bb[2])
    a3 = vsplat(bb[3])
    a4 = vsplat(bb[4])
    a5 = vsplat(bb[5])
    a6 = vsplat(bb[6])
    a7 = vsplat(bb[7])
    c0 = a0
    c1 = a1
    c2 = a2
    c3 = a3
    c4 = a4
    c5 = a5
    c6 = a6
    c7 = a7
    for t in range(offs.shape[0]):
        x0 = vload(xn, offs[t] + j0)
        x1 = vload(xn, offs[t] + j1)
        w = t * OUT_BLOCK
        s = vsplat(wb[w])
        a0 = vfma(x0, s, a0)
        c0 = vfma(x1, s, c0)
        s = vsplat(wb[w + 1])
        a1 = vfma(x0, s, a1)
        c1 = vfma(x1, s, c1)
        s = vsplat(wb[w + 2])
        a2 = vfma(x0, s, a2)
        c2 = vfma(x1, s, c2)
        s = vsplat(wb[w + 3])
        a3 = vfma(x0, s, a3)
        c3 = vfma(x1, s, c3)
        s = vsplat(wb[w + 4])
        a4 = vfma(x0, s, a4)
        c4 = vfma(x1, s, c4)
        s = vsplat(wb[w + 5])
        a5 = vfma(x0, s, a5)
        c5 = vfma(x1, s, c5)
        s = vsplat(wb[w + 6])
        a6 = vfma(x0, s, a6)
        c6 = vfma(x1, s, c6)
        s = vsplat(wb[w + 7])
        a7 = vfma(x0, s, a7)
        c7 = vfma(x1, s, c7)
    if relu:
        a0 = vrelu(a0)
        c0 = vrelu(c0)
        a1 = vrelu(a1)
        c1 = vrelu(c1)
        a2 = vrelu(a2)
        c2 = vrelu(c2)
        a3 = vrelu(a3)
        c3 = vrelu(c3)
        a4 = vrelu(a4)
        c4 = vrelu(c4)
        a5 = vrelu(a5)
        c5 = vrelu(c5)
        a6 = vrelu(a6)
        c6 = vrelu(c6)
        a7 = vrelu(a7)
        c7 = vrelu(c7)
    if row > 0:
        pool_tile_put(a0, c0, o1, row, out, argmax, 0 * S + o0)
        if nk > 1:
            pool_tile_put(a1, c1, o1, row, out, argmax, 1 * S + o0)
        if nk > 2:
            pool_tile_put(a2, c2, o1, row, out, argmax, 2 * S + o0)
        if nk > 3:
            pool_tile_put(a3, c3, o1, row, out, argmax, 3 * S + o0)
        if nk > 4:
            pool_tile_put(a4, c4, o1, row, out, argmax, 4 * S + o0)
        if nk > 5:
            pool_tile_put(a5, c5, o1, row, out, argmax, 5 * S + o0)
        if nk > 6:
            pool_tile_put(a6, c6, o1, row, out, argmax, 6 * S + o0)
        if nk > 7:
            pool_tile_put(a7, c7, o1, row, out, argmax, 7 * S + o0)
        return
    vstore(out, o0, a0)
    vstore(out, o1, c0)
    if nk > 1:
        vstore(out, 1 * S + o0, a1)
        vstore(out, 1 * S + o1, c1)
    if nk > 2:
        vstore(out, 2 * S + o0, a2)
        vstore(out, 2 * S + o1, c2)
    if nk > 3:
        vstore(out, 3 * S + o0, a3)
        vstore(out, 3 * S + o1, c3)
    if nk > 4:
        vstore(out, 4 * S + o0, a4)
        vstore(out, 4 * S + o1, c4)
    if nk > 5:
        vstore(out, 5 * S + o0, a5)
        vstore(out, 5 * S + o1, c5)
    if nk > 6:
        vstore(out, 6 * S + o0, a6)
        vstore(out, 6 * S + o1, c6)
    if nk > 7:
        vstore(out, 7 * S + o0, a7)
        vstore(out, 7 * S + o1, c7)


@jit(refcounts=False)
def _tile_8x1(xn, offs, wb, bb, j, acc, S):
    """:func:`_tile_8x2` for one vector of pixels (the tail of a plane)."""
    a0 = vsplat(bb[0])
    a1 = vsplat(bb[1])
    a2 = vsplat(bb[2])
    a3 = vsplat(bb[3])
    a4 = vsplat(bb[4])
    a5 = vsplat(bb[5])
    a6 = vsplat(bb[6])
    a7 = vsplat(bb[7])
    for t in range(offs.shape[0]):
        x0 = vload(xn, offs[t] + j)
        w = t * OUT_BLOCK
        a0 = vfma(x0, vsplat(wb[w]), a0)
        a1 = vfma(x0, vsplat(wb[w + 1]), a1)
        a2 = vfma(x0, vsplat(wb[w + 2]), a2)
        a3 = vfma(x0, vsplat(wb[w + 3]), a3)
        a4 = vfma(x0, vsplat(wb[w + 4]), a4)
        a5 = vfma(x0, vsplat(wb[w + 5]), a5)
        a6 = vfma(x0, vsplat(wb[w + 6]), a6)
        a7 = vfma(x0, vsplat(wb[w + 7]), a7)
    vstore(acc, j, a0)
    vstore(acc, S + j, a1)
    vstore(acc, 2 * S + j, a2)
    vstore(acc, 3 * S + j, a3)
    vstore(acc, 4 * S + j, a4)
    vstore(acc, 5 * S + j, a5)
    vstore(acc, 6 * S + j, a6)
    vstore(acc, 7 * S + j, a7)


@jit
def _conv_rows(xn, Win, offs, packed, packed_bias, relu, yn):
    """:func:`_conv_planes` for rows of at least one vector (OW >= lanes), straight into yn.

    Each output row is covered by ceil(OW/L) vectors, the last one ending at column OW
    (overlapping the one before it). Their wide-row positions i*Win + col feed the
    register tiles, which store to yn[o, i, col:col + L] themselves: no work array and
    no copy out. Consecutive vectors pair up into tiles, across rows too; an odd last
    one is paired with itself.
    """
    O, OH, OW = yn.shape
    L = lanes(xn)
    P = OH * OW
    out = yn.reshape(O * P)
    per_row = (OW + L - 1) // L
    no_argmax = np.empty(0, dtype=np.int64)
    for ob in range(packed.shape[0]):
        wb = packed[ob]
        bb = packed_bias[ob * OUT_BLOCK:(ob + 1) * OUT_BLOCK]
        o = ob * OUT_BLOCK
        nk = min(OUT_BLOCK, O - o)
        i = 0           # the next vector: row i, the k-th of the row (no divisions)
        k = 0
        while i < OH:
            i0 = i
            c0 = min(k * L, OW - L)
            k += 1
            if k == per_row:
                k = 0
                i += 1
            i1 = i0
            c1 = c0
            if i < OH:
                i1 = i
                c1 = min(k * L, OW - L)
                k += 1
                if k == per_row:
                    k = 0
                    i += 1
            _tile_8x2(xn, offs, wb, bb, i0 * Win + c0, i1 * Win + c1, out,
                      o * P + i0 * OW + c0, o * P + i1 * OW + c1, P, nk, relu, no_argmax,
                      runtime(0))


@jit(refcounts=False)
def _conv_rows_pooled(xn, Win, offs, packed, packed_bias, relu, OH, OW, pooled, argmax):
    """:func:`_conv_rows` with 2x2 stride-2 max pooling in the tiles' stores: each tile
    holds rows 2i and 2i + 1 at one vector of columns (the last one ending at column OW),
    and pools them in registers, so the convolution's output is never stored.
    OH, OW even, OW >= lanes; pooled and argmax: flat (O, OH/2, OW/2), argmax the winner's
    plane index in the (OH, OW) output, as :func:`~fastnn.kernels.pool.maxpool_2x2_image`
    gives them.
    """
    L = lanes(xn)
    PW = OW // 2
    PS = (OH // 2) * PW
    O = pooled.size // PS
    for ob in range(packed.shape[0]):
        wb = packed[ob]
        bb = packed_bias[ob * OUT_BLOCK:(ob + 1) * OUT_BLOCK]
        o = ob * OUT_BLOCK
        nk = min(OUT_BLOCK, O - o)
        for i in range(OH // 2):
            c = 0
            while c < OW:
                c = min(c, OW - L)
                _tile_8x2(xn, offs, wb, bb, 2 * i * Win + c, (2 * i + 1) * Win + c, pooled,
                          o * PS + i * PW + c // 2, 2 * i * OW + c, PS, nk, relu, argmax, OW)
                c += L


@jit
def _conv_planes(xn, Win, offs, packed, packed_bias, relu, acc, yn):
    """yn[o] = bias[o] + sum_t W[o, t] * X_t for one image, in register tiles.

    xn: the padded image X as flat (C, Hin, Win) planes with at least lanes-1 elements
    of slack; offs: :func:`_tap_offsets`; packed, packed_bias: :func:`_pack_weights`;
    yn (O, OH, OW) the output, through max(., 0) when ``relu`` (NaN stays NaN, as in
    the ReLU op). Rows of at least one vector go straight to yn (:func:`_conv_rows`).
    Narrower ones use acc, a work array of 8*S elements, S = the wide-row run
    J = (OH-1)*Win + OW rounded up to whole vectors: output pixel (i, j) is computed at
    flat position i*Win + j of the wide run (see the module doc), eight output channels
    by two vectors of pixels a tile, then the valid columns are copied out.
    """
    wide_vectors()
    O, OH, OW = yn.shape
    L = lanes(xn)
    if OW >= L:
        _conv_rows(xn, Win, offs, packed, packed_bias, relu, yn)
        return
    zero = typed(yn, 0.0)
    J = (OH - 1) * Win + OW
    V = (J + L - 1) // L
    S = V * L
    no_argmax = np.empty(0, dtype=np.int64)
    for ob in range(packed.shape[0]):
        wb = packed[ob]
        bb = packed_bias[ob * OUT_BLOCK:(ob + 1) * OUT_BLOCK]
        v = 0
        while v + 2 <= V:
            _tile_8x2(xn, offs, wb, bb, v * L, v * L + L, acc, v * L, v * L + L, S,
                      runtime(OUT_BLOCK), runtime(False), no_argmax, runtime(0))
            v += 2
        if v < V:
            _tile_8x1(xn, offs, wb, bb, v * L, acc, S)
        o = ob * OUT_BLOCK
        for k in range(min(OUT_BLOCK, O - o)):
            yk = yn[o + k]
            for i in range(OH):
                yr = yk[i]
                ar = acc[k * S + i * Win:k * S + i * Win + OW]
                if relu:
                    for q in range(OW):
                        v = ar[q]
                        yr[q] = zero if v <= zero else v
                else:
                    for q in range(OW):
                        yr[q] = ar[q]


@parallel_kernel
def direct_conv_s1(src, Wt, bias, TP, LP, relu, pool, y, pooled, argmax):
    """Stride-1 correlation with the padding done per image inside the kernel.

    y[n, o, i, j] = bias[o] + sum_{c, kh, kw} Wt[o, c, kh, kw] * P[n, c, i + kh, j + kw],
    P = src (N, C, H, W) placed at (TP, LP) in zeros (TP, LP may be negative: rows and
    columns cut off); the forward pass is TP, LP = PH, PW. Parallel over images: each
    pads its image into a (C, OH+KH-1, OW+KW-1) buffer of its own (no padding pass, no
    padded copy of the batch), then runs the register tiles of :func:`_conv_planes`.
    OH = H + 2*TP - KH + 1 (also for the backward-data use, TP = KH - 1 - PH), OW alike.
    ``relu``: y = max(that, 0) instead (a fused ReLU). ``pool``: instead of y (then a
    placeholder), write pooled, argmax = 2x2 stride-2 max pooling of it (OH and OW even),
    so the full output is never stored: rows of at least a vector are pooled in the
    register tiles (:func:`_conv_rows_pooled`); narrower ones go to a buffer of the
    thread's and are pooled while in cache (:func:`~fastnn.kernels.pool.maxpool_2x2_image`).
    """
    N, C = src.shape[0], src.shape[1]
    O, _, KH, KW = Wt.shape
    OH = src.shape[2] + 2 * TP - KH + 1
    OW = src.shape[3] + 2 * LP - KW + 1
    Hin = OH + KH - 1
    Win = OW + KW - 1
    J = _run(OH, OW, Win)
    zero = typed(y, 0.0)
    packed, packed_bias = _pack_weights(Wt, bias)
    offs = _tap_offsets(C, KH, KW, Hin, Win)
    L = lanes(y.reshape(y.size))
    W = src.shape[3]
    whole_rows = TP >= 0 and LP >= 0 and W >= L and LP + W <= Win and L <= RUN_ALIGN
    for n in prange(N):
        wide_vectors()
        xn = np.empty(C * Hin * Win + RUN_ALIGN, dtype=y.dtype)
        if whole_rows:
            _pad_image_vectors(src[n], TP, LP, Hin, Win, xn, L)
        else:
            _pad_image(src[n], TP, LP, Hin, Win, xn)
        for q in range(RUN_ALIGN):
            xn[C * Hin * Win + q] = zero
        acc = np.empty(OUT_BLOCK * J if OW < L else 0, dtype=y.dtype)
        if pool and OW >= L and OH * OW < INT32_PLANE:
            _conv_rows_pooled(xn, Win, offs, packed, packed_bias, relu, OH, OW,
                              pooled[n].reshape(pooled[n].size), argmax[n].reshape(argmax[n].size))
        elif pool:
            yn = np.empty((O, OH, OW), dtype=y.dtype)
            _conv_planes(xn, Win, offs, packed, packed_bias, relu, acc, yn)
            maxpool_2x2_image(yn.reshape(O * OH * OW), O, OH, OW,
                              pooled[n].reshape(pooled[n].size), argmax[n].reshape(argmax[n].size))
        else:
            _conv_planes(xn, Win, offs, packed, packed_bias, relu, acc, y[n])


#: Taps per GEMM-style backward-weights tile (:func:`_dw_tile_2v12`).
DW_TAPS = 12

#: Backward-weights takes the images of its group this many at a time: their padded x
#: and widened dy stay in L2 while every register tile runs over all of them.
DW_CHUNK = 16

#: ... but only as many as keep chunk * (one widened dy plane) within this many elements.
DW_CHUNK_PIXELS = 2048


@jit(refcounts=False)
def _dw_tile_4x4(xs, dys, nimg, offs, f0, t0, F, T, Pst, V, L, plane, pg):
    """pg[f, t] += sum over nimg images n and V vectors of
    dys[n*F*Pst + f*Pst + j] * xs[n*plane + offs[t] + j], for f in f0..f0+3 and t in t0..t0+3
    (indices past F-1 / T-1 clamped, stored once). xs holds the chunk channel-major: the
    images' planes of one channel are adjacent, so a tile's taps read one contiguous run.

    16 vector accumulators (4 output channels x 4 taps) stay in registers over every
    image and pixel; each step loads four dy and four x vectors for 16 multiply-adds.
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

    g is dy (F, P) itself (mode 0), dy where mask > 0 (mode 1, a fused ReLU), or (mode 2)
    the gradient dy (F, PP) of a max pooling routed back to the winners argmax (plane
    indices p; out-of-range ones dropped) where pooled > 0: maxpool backward and the
    ReLU's, summed in window order. db adds in pixel order in every mode, so the fused
    modes give the bits of mode 0 on the gradient the separate passes make. dy, mask,
    argmax, pooled flat; mask, argmax and pooled are read only in their modes.
    """
    zero = typed(dst, 0.0)
    if mode == 2:
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
        for f in range(F):
            for p in range(P):
                v = dy[f * P + p]
                if mode == 1 and not mask[f * P + p] > zero:
                    v = zero
                dst[p * Fp + f] = v
        for p in range(P):
            for f in range(F, Fp):
                dst[p * Fp + f] = zero
    for f in range(Fp):                       # across channels: each sum in pixel order
        sums[f] = zero
    for p in range(P):
        row = dst[p * Fp:(p + 1) * Fp]
        for f in range(Fp):
            sums[f] += row[f]
    for f in range(F):
        db[f] += sums[f]


@jit(refcounts=False)
def _dw_tile_2v12(xs, dyt, nimg, offs, f0, t0, T, OH, OW, Wp, Fp, xplane, L, tmp):
    """tmp[k, :2L] = sum over nimg images n and the OH*OW pixels p = (r, c) of
    dyt[(n*OH*OW + p)*Fp + f0:][:2L] * xs[n*xplane + offs[t0 + k] + r*Wp + c], k < 12
    (taps past T - 1 clamped).

    The GEMM-style backward-weights tile: output channels run along the vector lanes
    (dy transposed to pixel-major rows of Fp channels, :func:`_grad_rows`), so 24 vector
    accumulators (two vectors of channels by 12 taps) stay in registers over every
    pixel of every image and need no horizontal sums; each pixel loads two dy vectors
    and broadcasts 12 x values (rows Wp apart in xs) for 24 multiply-adds.
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
    for n in range(nimg):
        for r in range(OH):
            x_row = n * xplane + r * Wp
            dy_row = ((n * OH + r) * OW) * Fp + f0
            for c in range(OW):
                d0 = vload(dyt, dy_row + c * Fp)
                d1 = vload(dyt, dy_row + c * Fp + L)
                xj = x_row + c
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
            a = acc[off:off + J]
            f = 0
            while f + TAPS_PER_PASS <= F:
                d0 = dyw[f * P:f * P + J]
                d1 = dyw[(f + 1) * P:(f + 1) * P + J]
                d2 = dyw[(f + 2) * P:(f + 2) * P + J]
                d3 = dyw[(f + 3) * P:(f + 3) * P + J]
                w0 = W[f, c, kh, kw]
                w1 = W[f + 1, c, kh, kw]
                w2 = W[f + 2, c, kh, kw]
                w3 = W[f + 3, c, kh, kw]
                for j in range(J):
                    a[j] += w0 * d0[j] + w1 * d1[j] + w2 * d2[j] + w3 * d3[j]
                f += TAPS_PER_PASS
            while f < F:
                d0 = dyw[f * P:f * P + J]
                w0 = W[f, c, kh, kw]
                for j in range(J):
                    a[j] += w0 * d0[j]
                f += 1
    for h in range(H):
        src = acc[(h + PH) * Wp + PW:(h + PH) * Wp + PW + Wd]
        dst = dxc[h]
        for w in range(Wd):
            dst[w] = src[w]


#: direct_backward_s1 splits the batch into at most this many fixed groups of images,
#: each with its own dW partial sum (added in group order afterwards).
DW_GROUPS = 8


@parallel_kernel
def direct_backward_s1(x, dy, W, Wt, PH, PW, scatter, relu_out, mode, argmax, pooled,
                       input_grad, dx, dW, db, weights_item, scatter_item, correlate_item):
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
    :func:`_grad_rows`): dy itself (mode 0;
    relu_out is then dy), dy where relu_out > 0 (mode 1: a ReLU with output relu_out fused
    in) or, mode 2, the gradient dy of maxpool(relu(conv)) routed back through argmax and
    the ReLU (pooled: the pooling's output; dy, argmax and pooled have its shape; relu_out
    is not read then and needs only N and F). Without ``input_grad`` there are no
    backward-data items and dx is left untouched.
    weights_item, scatter_item, correlate_item: :func:`backward_items` of the dtype, the
    three kinds of item, called through their addresses (:mod:`~fastnn.kernels._native`).
    """
    N, C, H, Wd = x.shape
    F, _, KH, KW = W.shape
    OH = H + 2 * PH - KH + 1
    OW = Wd + 2 * PW - KW + 1
    Wp = Wd + 2 * PW
    T = C * KH * KW
    Pst = (OH * Wp + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN    # widened dy plane stride
    L = lanes(dW.reshape(dW.size))
    rows = F >= 2 * L       # two vectors of channels: pixel-major rows and _dw_tile_2v12
    Fp = (F + 2 * L - 1) // (2 * L) * (2 * L)
    chunk = max(1, min(DW_CHUNK, DW_CHUNK_PIXELS // Pst))
    offs_x = _tap_offsets(C, KH, KW, chunk * (H + 2 * PH), Wp)   # channel c at c * chunk * plane
    G = min(N, DW_GROUPS)
    D = G
    M = (N if input_grad else 0) + D
    parts = np.empty((G, F, T + 1), dtype=dW.dtype)   # dW and db partials per group
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
            call_native(weights_item, (x, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW,
                                       (k * N) // G, ((k + 1) * N) // G, chunk, offs_x, rows,
                                       xs, dys, dyt, tmp, sums, parts[k]))
        elif scatter:
            dyw = np.empty(F * OH * Wp, dtype=dx.dtype)
            plane = np.empty((OH + KH - 1) * Wp, dtype=dx.dtype)
            call_native(scatter_item, (m - k, dy, W, relu_out, argmax, pooled, mode, PH, PW,
                                       dyw, plane, dx))
        else:
            dyn = np.empty(F * Hf * Wf + RUN_ALIGN, dtype=dx.dtype)
            acc = np.empty(OUT_BLOCK * _run(H, Wd, Wf) if Wd < L else 0, dtype=dx.dtype)
            call_native(correlate_item, (m - k, dy, relu_out, argmax, pooled, mode, PH, PW, KH,
                                         KW, offs_t, packed_t, packed_zeros, dyn, acc, dx))
    _sum_parts(parts, dW.reshape(F, T), db)


@jit(refcounts=False)
def _weights_item(x, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, n_begin, n_end,
                  chunk, offs_x, rows, xs, dys, dyt, tmp, sums, pg):
    """One backward-weights item of :func:`direct_backward_s1`: pg (F, T + 1) = the
    partial dW (F, T) and db (column T) of images n_begin <= n < n_end, a chunk of
    images at a time; offs_x: :func:`_tap_offsets` of the chunk buffer's planes.
    ``rows``: dy goes into pixel-major rows dyt for :func:`_dw_tile_2v12`, else into
    widened planes dys for :func:`_dw_tile_4x4`; xs: the chunk's x planes, zeroed;
    tmp, sums: work arrays of :func:`_dw_tile_2v12` and :func:`_grad_rows`."""
    wide_vectors()
    N, C, H, Wd = x.shape
    F = pg.shape[0]
    T = C * KH * KW
    OH = H + 2 * PH - KH + 1
    OW = Wd + 2 * PW - KW + 1
    Wp = Wd + 2 * PW
    Pst = (OH * Wp + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN    # widened dy plane stride
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
            _copy_interior(x[n0 + nn].reshape(C * H * Wd), C, H, Wd, xs,
                           nn * xplane + PH * Wp + PW, chunk * xplane, Wp)
            if rows:
                n = n0 + nn
                _grad_rows(dy[n].reshape(dy[n].size),
                           relu_out[n].reshape(relu_out[n].size),
                           argmax[n].reshape(argmax[n].size),
                           pooled[n].reshape(pooled[n].size), mode, F, OH * OW, Fp,
                           dyt[nn * OH * OW * Fp:(nn + 1) * OH * OW * Fp], sums, pg[:, T])
                continue
            for f in range(F):
                at = (nn * F + f) * Pst
                seg = dys[at:at + Pst]
                if mode == 2:
                    _pad_pooled(dy[n0 + nn, f:f + 1], argmax[n0 + nn, f:f + 1],
                                pooled[n0 + nn, f:f + 1], OW, no_offset, no_offset,
                                OH, Wp, seg[:OH * Wp])
                else:
                    _widen_plane(dy[n0 + nn, f].reshape(OH * OW),
                                 relu_out[n0 + nn, f].reshape(OH * OW), mode == 1,
                                 OH, OW, seg, Wp)
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
                    _dw_tile_2v12(xs, dyt, nimg, offs_x, f0, t0, T, OH, OW, Wp, Fp,
                                  xplane, L, tmp)
                    for kk in range(min(DW_TAPS, T - t0)):
                        row = tmp[kk * 2 * L:(kk + 1) * 2 * L]
                        for ff in range(nf):
                            pg[f0 + ff, t0 + kk] += row[ff]
        else:
            for f0 in range(0, F, 4):
                for t0 in range(0, T, 4):
                    _dw_tile_4x4(xs, dys, nimg, offs_x, f0, t0, F, T, Pst, V, L,
                                 xplane, pg)


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
    _pad_grad(dy[n], relu_out[n], argmax[n], pooled[n], mode, OW, no_offset, no_offset,
              OH, Wp, dyw)
    for c in range(C):
        _scatter_image(dyw, OH, Wp, W, c, PH, PW, plane, dx[n, c])


@jit(refcounts=False)
def _correlate_item(n, dy, relu_out, argmax, pooled, mode, PH, PW, KH, KW, offs_t, packed_t,
                    packed_zeros, dyn, acc, dx):
    """A backward-data item of :func:`direct_backward_s1`: dx[n] = the full correlation of
    image n's conv-output gradient, padded into dyn (F, H+KH-1, W+KW-1 and RUN_ALIGN of
    slack), with the flipped weights, through :func:`_conv_planes` (offs_t, packed_t,
    packed_zeros: its taps and packed weights; acc its work array)."""
    wide_vectors()
    H, Wd = dx.shape[2], dx.shape[3]
    OW = Wd + 2 * PW - KW + 1
    Hf = H + KH - 1
    Wf = Wd + KW - 1
    zero = typed(dx, 0.0)
    _pad_grad(dy[n], relu_out[n], argmax[n], pooled[n], mode, OW, KH - 1 - PH,
              KW - 1 - PW, Hf, Wf, dyn)
    end = dyn.size - RUN_ALIGN
    for q in range(RUN_ALIGN):
        dyn[end + q] = zero
    _conv_planes(dyn, Wf, offs_t, packed_t, packed_zeros, runtime(False), acc, dx[n])


_BACKWARD_ITEMS = {}


def backward_items(dtype):
    """The last three arguments of :func:`direct_backward_s1` for arrays of ``dtype``:
    _weights_item, _scatter_item and _correlate_item, each compiled once as a
    :class:`~fastnn.kernels._native.NativeFunction`."""
    dtype = np.dtype(dtype)
    items = _BACKWARD_ITEMS.get(dtype)
    if items is None:
        f = numba.from_dtype(dtype)
        i, b = numba.int64, numba.boolean
        a1, a2, a4 = (numba.types.Array(f, d, "C") for d in (1, 2, 4))
        i1, i4 = (numba.types.Array(i, d, "C") for d in (1, 4))
        items = _BACKWARD_ITEMS[dtype] = (
            NativeFunction(_weights_item, (a4, a4, a4, i4, a4, i, i, i, i, i, i, i, i, i1, b,
                                           a1, a1, a1, a1, a1, a2)),
            NativeFunction(_scatter_item, (i, a4, a4, a4, i4, a4, i, i, i, a1, a1, a4)),
            NativeFunction(_correlate_item, (i, a4, a4, i4, a4, i, i, i, i, i, i1, a2, a1,
                                             a1, a1, a4)),
        )
    return items


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
    """Any stride: dx[n, c, h, w] = sum dy[n, f, i, j] * W[f, c, kh, kw] over i*SH + kh = h + PH, j*SW + kw = w + PW.

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


# ------------------------------------------------------------------ im2col

@jit(inline="always")
def _im2col_row(x, n, oh, ow, KH, KW, SH, SW, PH, PW, out):
    """Window (n, oh, ow) of x, zero-padded, into out (C*KH*KW,) in (c, kh, kw) order."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    zero = typed(out, 0.0)
    k = 0
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    for c in range(C):
        for kh in range(KH):
            h = h0 + kh
            if h < 0 or h >= H:
                for kw in range(KW):
                    out[k + kw] = zero
            else:
                row = x[n, c, h]
                for kw in range(KW):
                    w = w0 + kw
                    if w >= 0 and w < W:
                        out[k + kw] = row[w]
                    else:
                        out[k + kw] = zero
            k += KW


@jit(inline="always")
def _col2im_plane(col, row0, n, c, KH, KW, SH, SW, PH, PW, OH, OW, dx):
    """dx[n, c] = sum of the (c, kh, kw) columns of rows row0 + i*OW + j scattered back (overwrites)."""
    H, W = dx.shape[2], dx.shape[3]
    zero = typed(dx, 0.0)
    out = dx[n, c]
    for h in range(H):
        for w in range(W):
            out[h, w] = zero
    k0 = c * KH * KW
    for i in range(OH):
        for j in range(OW):
            src = col[row0 + i * OW + j]
            for kh in range(KH):
                h = i * SH + kh - PH
                if h >= 0 and h < H:
                    for kw in range(KW):
                        w = j * SW + kw - PW
                        if w >= 0 and w < W:
                            out[h, w] += src[k0 + kh * KW + kw]


@parallel_kernel
def im2col(x, KH, KW, SH, SW, PH, PW, OH, OW, col):
    """col[(n*OH + i)*OW + j, (c*KH + kh)*KW + kw] = xpad[n, c, i*SH + kh, j*SW + kw]; parallel over rows."""
    rows = col.shape[0]
    P = OH * OW
    for r in prange(rows):
        wide_vectors()
        n = r // P
        p = r - n * P
        i = p // OW
        j = p - i * OW
        _im2col_row(x, n, i, j, KH, KW, SH, SW, PH, PW, col[r])


@parallel_kernel
def col2im(col, KH, KW, SH, SW, PH, PW, OH, OW, dx):
    """Scatter-add the rows of col back into dx (N, C, H, W) (overwritten); parallel over (n, c) planes."""
    N, C = dx.shape[0], dx.shape[1]
    P = OH * OW
    for pair in prange(N * C):
        wide_vectors()
        n = pair // C
        c = pair - n * C
        _col2im_plane(col, n * P, n, c, KH, KW, SH, SW, PH, PW, OH, OW, dx)


@jit(inline="always")
def _valid_cols(kw, SW, PW, W, OW):
    """[lo, hi): the output columns j whose input column j*SW + kw - PW lies in [0, W)."""
    lo = max(0, (PW - kw + SW - 1) // SW)
    hi = min(OW, (W - 1 + PW - kw) // SW + 1)
    return lo, max(lo, hi)


@jit(inline="always")
def _im2colT_plane(x, n, c, start, KH, KW, SH, SW, PH, PW, OH, OW, colT):
    """Columns of image n, channel c into colT[(c, kh, kw), start:start + OH*OW] (transposed im2col).

    Every (kh, kw) row is a run of output rows, each a contiguous copy (SW = 1) of an input row.
    """
    H, W = x.shape[2], x.shape[3]
    zero = typed(colT, 0.0)
    xc = x[n, c]
    for kh in range(KH):
        for kw in range(KW):
            dst = colT[(c * KH + kh) * KW + kw]
            lo, hi = _valid_cols(kw, SW, PW, W, OW)
            for i in range(OH):
                h = i * SH + kh - PH
                d = dst[start + i * OW:start + (i + 1) * OW]
                if h < 0 or h >= H:
                    for j in range(OW):
                        d[j] = zero
                else:
                    for j in range(lo):
                        d[j] = zero
                    if SW == 1:
                        src = xc[h, lo + kw - PW:hi + kw - PW]
                        dd = d[lo:hi]
                        for j in range(hi - lo):
                            dd[j] = src[j]
                    else:
                        row = xc[h]
                        for j in range(lo, hi):
                            d[j] = row[j * SW + kw - PW]
                    for j in range(hi, OW):
                        d[j] = zero


@jit(inline="always")
def _col2imT_plane(dcolT, start, n, c, KH, KW, SH, SW, PH, PW, OH, OW, dx):
    """dx[n, c] = scatter-add of dcolT[(c, kh, kw), start:start + OH*OW] (overwrites dx[n, c])."""
    H, W = dx.shape[2], dx.shape[3]
    zero = typed(dx, 0.0)
    out = dx[n, c]
    for h in range(H):
        for w in range(W):
            out[h, w] = zero
    for kh in range(KH):
        for kw in range(KW):
            src = dcolT[(c * KH + kh) * KW + kw]
            lo, hi = _valid_cols(kw, SW, PW, W, OW)
            for i in range(OH):
                h = i * SH + kh - PH
                if h >= 0 and h < H:
                    s = src[start + i * OW + lo:start + i * OW + hi]
                    if SW == 1:
                        o = out[h, lo + kw - PW:hi + kw - PW]
                        for j in range(hi - lo):
                            o[j] += s[j]
                    else:
                        row = out[h]
                        for j in range(hi - lo):
                            row[(lo + j) * SW + kw - PW] += s[j]


@parallel_kernel
def im2col_forward(x, Wm, b, KH, KW, SH, SW, PH, PW, chunk, col_buf, out_buf, y):
    """y = conv2d(x), parallel over chunks of ``chunk`` images, one BLAS call per chunk.

    Each thread takes whole chunks: colT (C*KH*KW, rows) = transposed im2col of the
    chunk, out (F, rows) = Wm @ colT (BLAS, which the caller keeps single-threaded),
    y[n, f] = out[f, n's rows] + b[f]. Wm is W as (F, C*KH*KW); col_buf and out_buf
    have one row per thread (numba.get_thread_id()) of K*rows and F*rows elements,
    rows = chunk*OH*OW.
    """
    N, C = x.shape[0], x.shape[1]
    F, K = Wm.shape
    OH, OW = y.shape[2], y.shape[3]
    P = OH * OW
    n_chunks = (N + chunk - 1) // chunk
    for ci in prange(n_chunks):
        wide_vectors()
        slot = get_thread_id()
        n0 = ci * chunk
        nb = min(N, n0 + chunk) - n0
        rows = nb * P
        colT = col_buf[slot, : K * rows].reshape(K, rows)
        out = out_buf[slot, : F * rows].reshape(F, rows)
        for pair in range(nb * C):
            nn = pair // C
            c = pair - nn * C
            _im2colT_plane(x, n0 + nn, c, nn * P, KH, KW, SH, SW, PH, PW, OH, OW, colT)
        np.dot(Wm, colT, out)
        for pair in range(nb * F):
            nn = pair // F
            f = pair - nn * F
            b0 = b[f]
            dst = y[n0 + nn, f].reshape(P)
            src = out[f, nn * P:(nn + 1) * P]
            for p in range(P):
                dst[p] = src[p] + b0


@parallel_kernel
def im2col_backward(x, dy, Wm, KH, KW, SH, SW, PH, PW, chunk, col_buf, dyt_buf, dcol_buf,
                    dw_buf, dw_groups, dx, dWm, db):
    """conv2d gradients, parallel over fixed groups of image chunks; dWm is dW as (F, C*KH*KW).

    The chunks are split into G = dw_groups.shape[0] groups (a number the caller fixes,
    not the thread count). Per chunk: colT = transposed im2col; dyT (F, rows) = dy of the
    chunk; dW_group += dyT @ colT.T; dcolT = Wm.T @ dyT (BLAS, kept single-threaded by
    the caller); dx[n, c] = col2im of dcolT (each plane written by one thread).
    Then, serially (one parallel region per call), dW = sum of the group partials in
    group order and db[f] = sum dy[:, f], so the result does not depend on the thread
    count. The chunks are spread evenly over the groups. Scratch rows are per thread
    (numba.get_thread_id()): col_buf/dcol_buf K*rows, dyt_buf F*rows, dw_buf F*K.
    """
    N, C = x.shape[0], x.shape[1]
    F, K = Wm.shape
    OH, OW = dy.shape[2], dy.shape[3]
    P = OH * OW
    G = dw_groups.shape[0]
    zero = typed(dx, 0.0)
    n_chunks = (N + chunk - 1) // chunk
    for g in prange(G):
        wide_vectors()
        slot = get_thread_id()
        dwg = dw_groups[g].reshape(F, K)
        for f in range(F):
            for k in range(K):
                dwg[f, k] = zero
        dwt = dw_buf[slot, : F * K].reshape(F, K)
        # chunks spread evenly over the groups (no empty trailing groups)
        for ci in range((g * n_chunks) // G, ((g + 1) * n_chunks) // G):
            n0 = ci * chunk
            nb = min(N, n0 + chunk) - n0
            rows = nb * P
            colT = col_buf[slot, : K * rows].reshape(K, rows)
            dyt = dyt_buf[slot, : F * rows].reshape(F, rows)
            dcolT = dcol_buf[slot, : K * rows].reshape(K, rows)
            for pair in range(nb * C):
                nn = pair // C
                c = pair - nn * C
                _im2colT_plane(x, n0 + nn, c, nn * P, KH, KW, SH, SW, PH, PW, OH, OW, colT)
            for pair in range(nb * F):
                nn = pair // F
                f = pair - nn * F
                src = dy[n0 + nn, f].reshape(P)
                dst = dyt[f, nn * P:(nn + 1) * P]
                for p in range(P):
                    dst[p] = src[p]
            np.dot(dyt, colT.T, dwt)
            for f in range(F):
                for k in range(K):
                    dwg[f, k] += dwt[f, k]
            np.dot(Wm.T, dyt, dcolT)
            for pair in range(nb * C):
                nn = pair // C
                c = pair - nn * C
                _col2imT_plane(dcolT, nn * P, n0 + nn, c, KH, KW, SH, SW, PH, PW, OH, OW, dx)
    # serially, after the loop: a second parallel region costs more than these sums
    for f in range(F):
        s = zero
        for n in range(N):
            d = dy[n, f].reshape(P)
            for p in range(P):
                s += d[p]
        db[f] = s
        for k in range(K):
            t = zero
            for g in range(G):
                t += dw_groups[g, f * K + k]
            dWm[f, k] = t
