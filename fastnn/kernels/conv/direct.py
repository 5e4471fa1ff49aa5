"""The direct convolution forward at stride 1: register tiles over wide rows.

:func:`direct_conv_s1` pads each image into a buffer of the thread's own
(:mod:`.padding`) and computes its output with the register tiles
(:func:`_tile_8x2`: eight output channels by two vectors of pixels) over the wide
rows described in :mod:`fastnn.kernels.conv`; with ``pool`` it max-pools the output
2x2 while it is in registers or cache. The backward pass (:mod:`.direct_backward`)
reuses these tiles for backward-data, on the flipped weights.
"""

import numpy as np
from numba import prange

from ..._config import jit, parallel_kernel
from .._scalars import runtime, typed
from .._simd import VECTOR_BYTES, lanes, vfma, vload, vrelu, vsplat, vstore, wide_vectors
from .._simd_pool import pool_tile_put
from ..activations import ACT_IDENTITY, ACT_RELU, activate, rectified_variant
from ..pool import INT32_PLANE, maxpool_2x2_image
from .padding import _pad_image, _pad_image_vectors

#: The wide-row runs are rounded up to a multiple of this many elements, so the
#: vectorised loops have no scalar remainder (short planes, e.g. 14x14, otherwise ran
#: almost half their iterations in it); buffers read by a run get that much zeroed slack.
#: Not a tuning knob: it must be a multiple of the widest vector's lane count (16 float32
#: lanes in 512 bits, :mod:`fastnn.kernels._simd`), and 16 is the smallest such.
RUN_ALIGN = 16


@jit(inline="always")
def _run(OH, OW, Win):
    """The wide-row run length (OH-1)*Win + OW rounded up to a multiple of RUN_ALIGN."""
    J = (OH - 1) * Win + OW
    return (J + RUN_ALIGN - 1) // RUN_ALIGN * RUN_ALIGN


@jit(inline="always")
def _tap_offset(t, KH, KW, plane, Win, base):
    """Flat offset of kernel tap t = (c, kh, kw) in an image of (Hin, Win) planes."""
    kk = KH * KW
    c = t // kk
    r = t - c * kk
    kh = r // KW
    kw = r - kh * KW
    return c * plane + kh * Win + kw + base


#: Output channels per register tile of the direct kernels. Not a tuning knob: the tiles
#: (:func:`_tile_8x2`, :func:`_tile_8x1`) are written out for eight, and 8 channels by two
#: vectors of pixels fill 16 vector registers.
OUT_BLOCK = 8

#: Run a tile's taps twice, four output channels at a time (8 accumulators each), where
#: registers are 256 bits: AVX2's 16 registers cannot hold the 16 accumulators of a
#: whole 8x2 tile beside its loads, and LLVM then keeps them on the stack.
HALF_TILES = VECTOR_BYTES < 64


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
def _select_taps(packed, offs, taps):
    """The :func:`_pack_weights` blocks and :func:`_tap_offsets` of the taps ``taps`` alone."""
    blocks = packed.shape[0]
    chosen = np.empty((blocks, taps.size * OUT_BLOCK), dtype=packed.dtype)
    chosen_offs = np.empty(taps.size, dtype=np.int64)
    for i in range(taps.size):
        t = taps[i]
        chosen_offs[i] = offs[t]
        for ob in range(blocks):
            for k in range(OUT_BLOCK):
                chosen[ob, i * OUT_BLOCK + k] = packed[ob, t * OUT_BLOCK + k]
    return chosen, chosen_offs


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
    With :data:`HALF_TILES` (AVX2) the taps are run twice, four channels at a time.
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
    if HALF_TILES:
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
        for t in range(offs.shape[0]):
            x0 = vload(xn, offs[t] + j0)
            x1 = vload(xn, offs[t] + j1)
            w = t * OUT_BLOCK
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
    else:
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
    no_argmax = offs[:0]  # unused without pooling; a view, so no allocation (see _conv_planes)
    for ob in range(packed.shape[0]):
        wb = packed[ob]
        bb = packed_bias[ob * OUT_BLOCK : (ob + 1) * OUT_BLOCK]
        o = ob * OUT_BLOCK
        nk = min(OUT_BLOCK, O - o)
        i = 0  # the next vector: row i, the k-th of the row (no divisions)
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
            _tile_8x2(
                xn,
                offs,
                wb,
                bb,
                i0 * Win + c0,
                i1 * Win + c1,
                out,
                o * P + i0 * OW + c0,
                o * P + i1 * OW + c1,
                P,
                nk,
                relu,
                no_argmax,
                runtime(0),
            )


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
        bb = packed_bias[ob * OUT_BLOCK : (ob + 1) * OUT_BLOCK]
        o = ob * OUT_BLOCK
        nk = min(OUT_BLOCK, O - o)
        for i in range(OH // 2):
            c = 0
            while c < OW:
                c = min(c, OW - L)
                _tile_8x2(
                    xn,
                    offs,
                    wb,
                    bb,
                    2 * i * Win + c,
                    (2 * i + 1) * Win + c,
                    pooled,
                    o * PS + i * PW + c // 2,
                    2 * i * OW + c,
                    PS,
                    nk,
                    relu,
                    argmax,
                    OW,
                )
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
    Allocates nothing, so a helper compiled without reference counts
    (``jit(refcounts=False)``, such as the backward pass's ``_correlate_item``) may call it:
    a callee compiled first from such a caller inherits that flag, and an allocation in it
    would not compile.
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
    no_argmax = offs[:0]  # unused without pooling; a view, so no allocation (see _conv_planes)
    for ob in range(packed.shape[0]):
        wb = packed[ob]
        bb = packed_bias[ob * OUT_BLOCK : (ob + 1) * OUT_BLOCK]
        v = 0
        while v + 2 <= V:
            _tile_8x2(
                xn,
                offs,
                wb,
                bb,
                v * L,
                v * L + L,
                acc,
                v * L,
                v * L + L,
                S,
                runtime(OUT_BLOCK),
                runtime(False),
                no_argmax,
                runtime(0),
            )
            v += 2
        if v < V:
            _tile_8x1(xn, offs, wb, bb, v * L, acc, S)
        o = ob * OUT_BLOCK
        for k in range(min(OUT_BLOCK, O - o)):
            yk = yn[o + k]
            for i in range(OH):
                yr = yk[i]
                ar = acc[k * S + i * Win : k * S + i * Win + OW]
                if relu:
                    for q in range(OW):
                        v = ar[q]
                        yr[q] = zero if v <= zero else v
                else:
                    for q in range(OW):
                        yr[q] = ar[q]


@parallel_kernel
def direct_conv_s1(src, Wt, bias, TP, LP, relu, act, alpha, res, pool, y, pooled, argmax, taps):
    """Stride-1 correlation with the padding done per image inside the kernel.

    y[n, o, i, j] = bias[o] + sum_{c, kh, kw} Wt[o, c, kh, kw] * P[n, c, i + kh, j + kw],
    P = src (N, C, H, W) placed at (TP, LP) in zeros (TP, LP may be negative: rows and
    columns cut off); the forward pass is TP, LP = PH, PW. Parallel over images: each
    pads its image into a (C, OH+KH-1, OW+KW-1) buffer of its own (no padding pass, no
    padded copy of the batch), then runs the register tiles of :func:`_conv_planes`.
    OH = H + 2*TP - KH + 1 (also for the backward-data use, TP = KH - 1 - PH), OW alike.
    ``relu``: y = max(that, 0) instead (a fused ReLU, in the register tiles). ``act``:
    y = f(that) for activation code ``act`` (:func:`~fastnn.kernels.activations.activate`,
    ``alpha`` leaky ReLU's slope), applied to each image's output right after its tiles,
    while it is in cache (ACT_IDENTITY: none; not with ``pool``). ``res`` (N, O, OH, OW), or
    an empty array for none: y = f(that + res), the sum taken in that same pass (a residual
    block's add, with ``relu`` False and f its ReLU; not with ``pool``). ``pool``: instead of y (then a
    placeholder), write pooled, argmax = 2x2 stride-2 max pooling of it (OH and OW even),
    so the full output is never stored: rows of at least a vector are pooled in the
    register tiles (:func:`_conv_rows_pooled`); narrower ones go to a buffer of the
    thread's and are pooled while in cache (:func:`~fastnn.kernels.pool.maxpool_2x2_image`).
    ``taps`` (int64): the taps t = (c, kh, kw) of Wt the sum runs over, in increasing order,
    or empty for all of them; the others must be zero taps that no true tap shares, such as
    those of a polyphase split's padded kernel (:mod:`.polyphase`), whose multiply-adds it
    saves.
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
    if taps.size != 0:
        packed, offs = _select_taps(packed, offs, taps)
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
            _conv_rows_pooled(
                xn,
                Win,
                offs,
                packed,
                packed_bias,
                relu,
                OH,
                OW,
                pooled[n].reshape(pooled[n].size),
                argmax[n].reshape(argmax[n].size),
            )
        elif pool:
            yn = np.empty((O, OH, OW), dtype=y.dtype)
            _conv_planes(xn, Win, offs, packed, packed_bias, relu, acc, yn)
            maxpool_2x2_image(
                yn.reshape(O * OH * OW),
                O,
                OH,
                OW,
                pooled[n].reshape(pooled[n].size),
                argmax[n].reshape(argmax[n].size),
            )
        else:
            _conv_planes(xn, Win, offs, packed, packed_bias, relu, acc, y[n])
            if res.size != 0:
                yn = y[n].reshape(O * OH * OW)
                rn = res[n].reshape(O * OH * OW)
                if act == ACT_RELU:  # a constant code: the loop vectorises
                    for q in range(O * OH * OW):
                        yn[q] = activate(yn, yn[q] + rn[q], ACT_RELU, alpha)
                else:
                    for q in range(O * OH * OW):
                        yn[q] = activate(yn, yn[q] + rn[q], act, alpha)
            elif act != ACT_IDENTITY:
                yn = y[n].reshape(O * OH * OW)
                for q in range(O * OH * OW):
                    yn[q] = activate(yn, yn[q], act, alpha)


#: :func:`direct_conv_s1` for every activation code but the sigmoid's and tanh's (no exp or tanh
#: compiled in): :func:`~fastnn.kernels.activations.rectified_variant`.
direct_conv_s1_rectified = rectified_variant(direct_conv_s1)
