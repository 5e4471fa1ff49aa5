"""The direct convolution at any stride with channels along the vector lanes: forward
(:func:`channel_tiled_forward`), weight gradients (:func:`channel_tiled_weights`) and
input gradient (:func:`channel_tiled_data`).

The stride-1 forward tiles of :mod:`.direct` run pixels along the lanes over a wide run of
the padded input, which a stride breaks, and on planes narrower than a vector they waste
the run's junk columns. Here the lanes hold output channels instead, so neither the
stride nor the plane's width matters: for one image and a block of two vectors of
output channels, 10 output pixels at a time keep 20 vector accumulators over all
T = C*KH*KW taps, each tap loading two vectors of weights and broadcasting the 10 pixels'
input values from anywhere in the padded plane (pixel (i, j) of tap (c, kh, kw) reads
``xp[c, i*SH + kh, j*SW + kw]``).

That is the backward-weights GEMM tile :func:`~.direct_backward._dw_tile_2v12` with the
roles of its two sums swapped: there the lanes hold channels of dy's pixel-major rows and
the 12 columns are taps, the reduction over pixels; here the rows are the weights' taps
(``W_rows[t, f] = W[f, t]``, :func:`pack_weight_rows`), the columns are pixels, and the
reduction is over the taps in (c, kh, kw) order. On AVX2 the forward runs that tile
itself; on AVX-512 :func:`_forward_tile_2v10`, the same sums in the same order over one
flat loop of taps (the shared tile's innermost loop runs KW times, and its bookkeeping
every few taps slowed the forward), so both give the same bits.

The tile's results are pixel-major (P, 2L): the bias and the activation are applied to
them while they are in cache, then they are transposed into the output's channel planes a
register block at a time (:func:`~fastnn.kernels._simd_transpose.vtranspose_block`).
Parallel over images, each padded once into a buffer of its own
(:func:`~.padding._pad_image_narrow`); every output element comes from one image's item
and one fixed order of sums, so the result does not depend on the thread count.

The weight gradients use the backward tile read at the strides (its column step); the
input gradient splits the input pixels into stride phases, each a stride-1 correlation of
dy, and runs the forward tile on them with input channels along the lanes (see their
docstrings).

``python benchmarks/bench_conv_impl.py --strided --extra`` (the "dir" columns) times them
against the other algorithms on strided layers, and ``--narrow`` the forward against the
stride-1 pixel tiles on narrow planes.
"""

import numpy as np
from numba import prange

from ..._config import FASTMATH_IN_ORDER, jit, parallel_kernel
from .._scalars import runtime, typed
from .._simd import VECTOR_BYTES, lanes, vbroadcast, vfma, vload, vsplat, vstore, wide_vectors
from .._simd_transpose import vtranspose_block
from ..activations import ACT_IDENTITY, ACT_RELU, activate, rectified_variant
from ..tuning import DW_CHUNK, DW_CHUNK_PIXELS, DW_GROUPS
from .direct import HALF_TILES, _tap_offsets
from .direct_backward import DW_TAPS, _dw_tile_2v12, _grad_rows
from .modes import DY_RELU_MASKED
from .padding import _pad_grad, _pad_image_narrow


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


@jit
def _rows_to_planes(src, stride, dst, c0, nc, P):
    """dst[(c0 + k)*P + p] = src[p*stride + k] for k < nc, p < P: pixel-major rows of
    ``stride`` elements (their first nc channels) into channel planes of P pixels, whole
    blocks of lanes x lanes in registers (:func:`vtranspose_block`), the rest an element
    at a time."""
    L = lanes(dst)
    Pb = P - P % L
    nb = nc - nc % L
    for p0 in range(0, Pb, L):
        for k0 in range(0, nb, L):
            vtranspose_block(src, src, runtime(False), p0 * stride + k0, stride, dst, (c0 + k0) * P + p0, P)
    for k in range(nc):
        for p in range(Pb if k < nb else 0, P):
            dst[(c0 + k) * P + p] = src[p * stride + k]


#: Output pixels per tile of :func:`_forward_tile_2v10`: 10 pixels by two vectors of output
#: channels are 20 accumulators, which with the 10 broadcast inputs and the 2 weight
#: vectors of a tap fill the 32 vector registers of AVX-512 (LLVM issues a tap's
#: broadcasts together, so a twelfth pixel, as in the backward tile, spills accumulators).
FORWARD_PIXELS = 10

#: Pixels per tile of :func:`_forward_tile`: :data:`FORWARD_PIXELS`, or on AVX2 the
#: backward tile's DW_TAPS.
TILE_PIXELS = DW_TAPS if HALF_TILES else FORWARD_PIXELS


@jit(refcounts=False)
def _forward_tile_2v10(xn, w_flat, T, KH, KW, Wp, plane, pix, f0, p0, P, Fp, L, tmp):
    """tmp[k*2L:][:2L] = sum over the T = C*KH*KW taps t = (c, kh, kw) of
    w_flat[t*Fp + f0:][:2L] * xn[c*plane + kh*Wp + kw + pix[p0 + k]], k < 10 (pixels past
    P - 1 clamped): output channels f0 .. f0 + 2L - 1 of 10 pixels, each sum in tap order.

    The forward role of :func:`~.direct_backward._dw_tile_2v12` as one flat loop over the
    taps, the input offset stepped along (c, kh, kw), rather than loops over channels,
    rows and columns, whose innermost runs KW times: the same sums in the same order,
    without the pointer bookkeeping of a three-tap loop. AVX-512 only (its 32 vector
    registers); AVX2 takes the backward tile (:data:`~.direct.HALF_TILES`).
    """
    q0 = pix[min(p0 + 0, P - 1)]
    q1 = pix[min(p0 + 1, P - 1)]
    q2 = pix[min(p0 + 2, P - 1)]
    q3 = pix[min(p0 + 3, P - 1)]
    q4 = pix[min(p0 + 4, P - 1)]
    q5 = pix[min(p0 + 5, P - 1)]
    q6 = pix[min(p0 + 6, P - 1)]
    q7 = pix[min(p0 + 7, P - 1)]
    q8 = pix[min(p0 + 8, P - 1)]
    q9 = pix[min(p0 + 9, P - 1)]
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
    xo = 0
    kw = 0
    kh = 0
    wo = f0
    for _ in range(T):
        w0 = vload(w_flat, wo)
        w1 = vload(w_flat, wo + L)
        s = vbroadcast(xn, xo + q0)
        a0 = vfma(w0, s, a0)
        b0 = vfma(w1, s, b0)
        s = vbroadcast(xn, xo + q1)
        a1 = vfma(w0, s, a1)
        b1 = vfma(w1, s, b1)
        s = vbroadcast(xn, xo + q2)
        a2 = vfma(w0, s, a2)
        b2 = vfma(w1, s, b2)
        s = vbroadcast(xn, xo + q3)
        a3 = vfma(w0, s, a3)
        b3 = vfma(w1, s, b3)
        s = vbroadcast(xn, xo + q4)
        a4 = vfma(w0, s, a4)
        b4 = vfma(w1, s, b4)
        s = vbroadcast(xn, xo + q5)
        a5 = vfma(w0, s, a5)
        b5 = vfma(w1, s, b5)
        s = vbroadcast(xn, xo + q6)
        a6 = vfma(w0, s, a6)
        b6 = vfma(w1, s, b6)
        s = vbroadcast(xn, xo + q7)
        a7 = vfma(w0, s, a7)
        b7 = vfma(w1, s, b7)
        s = vbroadcast(xn, xo + q8)
        a8 = vfma(w0, s, a8)
        b8 = vfma(w1, s, b8)
        s = vbroadcast(xn, xo + q9)
        a9 = vfma(w0, s, a9)
        b9 = vfma(w1, s, b9)
        wo += Fp
        xo += 1
        kw += 1
        if kw == KW:
            kw = 0
            xo += Wp - KW
            kh += 1
            if kh == KH:
                kh = 0
                xo += plane - KH * Wp
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
    vstore(tmp, 6 * 2 * L, a6)
    vstore(tmp, 6 * 2 * L + L, b6)
    vstore(tmp, 7 * 2 * L, a7)
    vstore(tmp, 7 * 2 * L + L, b7)
    vstore(tmp, 8 * 2 * L, a8)
    vstore(tmp, 8 * 2 * L + L, b8)
    vstore(tmp, 9 * 2 * L, a9)
    vstore(tmp, 9 * 2 * L + L, b9)


@jit(inline="always")
def _forward_tile(xn, w_flat, C, KH, KW, Wp, plane, pix, f0, p0, P, Fp, L, tmp):
    """The forward tile over the C*KH*KW taps for TILE_PIXELS pixels from p0 (arguments as
    :func:`_forward_tile_2v10`'s): that tile, or on AVX2 (:data:`~.direct.HALF_TILES`) the
    backward tile :func:`~.direct_backward._dw_tile_2v12` in the forward role, the same sums."""
    if HALF_TILES:
        _dw_tile_2v12(xn, w_flat, C, pix, f0, p0, P, KH, KW, Wp, 1, Fp, plane, L, tmp)
    else:
        _forward_tile_2v10(xn, w_flat, C * KH * KW, KH, KW, Wp, plane, pix, f0, p0, P, Fp, L, tmp)


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
    Pr = -(-P // TILE_PIXELS) * TILE_PIXELS
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
            for p0 in range(0, P, TILE_PIXELS):
                tile = rows[p0 * B : (p0 + TILE_PIXELS) * B]
                _forward_tile(xn, w_flat, C, KH, KW, Wp, plane, pix, f0, p0, P, Fp, L, tile)
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
            _rows_to_planes(rows, B, yn, f0, nf, P)
            if res.size != 0:
                rn = res[n].reshape(F * P)
                if act == ACT_RELU:
                    for q in range(f0 * P, (f0 + nf) * P):
                        yn[q] = activate(yn, yn[q] + rn[q], ACT_RELU, alpha)
                else:
                    for q in range(f0 * P, (f0 + nf) * P):
                        yn[q] = activate(yn, yn[q] + rn[q], act, alpha)


#: :func:`channel_tiled_forward` for every activation code but the sigmoid's and tanh's (no exp or tanh
#: compiled in): :func:`~fastnn.kernels.activations.rectified_variant`.
channel_tiled_forward_rectified = rectified_variant(channel_tiled_forward)


def pack_tap_rows(W):
    """W (F, C, KH, KW) as one block of rows per tap for :func:`channel_tiled_data`:
    rows[(kh*KW + kw)*F + f, c] = W[f, c, kh, kw] for c < C, 0 for C <= c < Cp, Cp = C
    rounded up to a multiple of :func:`channel_block`. NumPy; a few KB per layer."""
    F, C, KH, KW = W.shape
    block = channel_block(W.dtype)
    Cp = -(-C // block) * block
    rows = np.zeros((KH * KW * F, Cp), dtype=W.dtype)
    rows[:, :C] = W.transpose(2, 3, 0, 1).reshape(KH * KW * F, C)
    return rows


# in order (no reassociation): the group partials are added in group order at the end, and
# with reassociation LLVM regrouped that sum differently in the serial and the parallel
# build (test_the_serial_and_parallel_builds_agree_bit_for_bit)
@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def channel_tiled_weights(x, dy, relu_out, mode, KH, KW, SH, SW, PH, PW, dW, db):
    """The weight gradients of :func:`channel_tiled_forward`, at any stride and padding.

    dW[f, c, kh, kw] = sum_{n, i, j} g[n, f, i, j] * xp[n, c, i*SH + kh, j*SW + kw],
    db[f] = sum_{n, i, j} g[n, f, i, j]

    x (N, C, H, W), xp zero-padded by (PH, PW); dy (N, F, OH, OW); dW (F, C, KH, KW), db (F,).
    g is dy (``mode`` DY_AS_GIVEN) or, for DY_RELU_MASKED, dy where relu_out (dy's shape:
    the output of a fused ReLU) is > 0, taken as dy is read.
    The backward-weights tile :func:`~.direct_backward._dw_tile_2v12` (two vectors of
    output channels by 12 taps) over a chunk of images at a time, the pixels read at the
    strides: dy goes into pixel-major rows (:func:`~.direct_backward._grad_rows`) and x
    into padded planes, a chunk of each in the item's buffers. Parallel over
    G = min(N, DW_GROUPS) fixed groups of images, each with a partial sum, added in group
    order at the end, so the result does not depend on the thread count.
    """
    N, C, H, Wd = x.shape
    F, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    P = OH * OW
    Hp = H + 2 * PH
    Wp = Wd + 2 * PW
    plane = Hp * Wp
    xplane = C * plane
    T = C * KH * KW
    L = lanes(dW.reshape(dW.size))
    B = 2 * L
    Fp = -(-F // B) * B
    chunk = max(1, min(DW_CHUNK, DW_CHUNK_PIXELS // P))
    G = min(N, DW_GROUPS)
    offs = _tap_offsets(C, KH, KW, Hp, Wp)
    parts = np.empty((G, F, T + 1), dtype=dW.dtype)
    zero = typed(dW, 0.0)
    for g in prange(G):
        wide_vectors()
        pg = parts[g]
        for f in range(F):
            for t in range(T + 1):
                pg[f, t] = zero
        xs = np.empty(chunk * xplane + -(-Wd // L) * L, dtype=dW.dtype)
        dyt = np.empty(chunk * P * Fp, dtype=dW.dtype)
        tmp = np.empty(DW_TAPS * B, dtype=dW.dtype)
        sums = np.empty(Fp, dtype=dW.dtype)
        none = dyt[:0]
        no_index = offs[:0]
        n_end = (g + 1) * N // G
        for n0 in range(g * N // G, n_end, chunk):
            nimg = min(chunk, n_end - n0)
            for nn in range(nimg):
                n = n0 + nn
                _pad_image_narrow(x[n], PH, PW, Hp, Wp, xs[nn * xplane :], L)
                _grad_rows(
                    dy[n].reshape(F * P),
                    relu_out[n].reshape(F * P),
                    no_index,
                    none,
                    mode,
                    F,
                    P,
                    Fp,
                    dyt[nn * P * Fp : (nn + 1) * P * Fp],
                    sums,
                    pg[:, T],
                )
            for f0 in range(0, F, B):
                nf = min(B, F - f0)
                for t0 in range(0, T, DW_TAPS):
                    _dw_tile_2v12(xs, dyt, nimg, offs, f0, t0, T, OH, OW, SH * Wp, SW, Fp, xplane, L, tmp)
                    for kk in range(min(DW_TAPS, T - t0)):
                        row = tmp[kk * B : (kk + 1) * B]
                        for ff in range(nf):
                            pg[f0 + ff, t0 + kk] += row[ff]
    dWf = dW.reshape(F, T)
    for f in range(F):
        for t in range(T):
            s = parts[0, f, t]
            for g in range(1, G):
                s += parts[g, f, t]
            dWf[f, t] = s
        s = parts[0, f, T]
        for g in range(1, G):
            s += parts[g, f, T]
        db[f] = s


@jit
def _phases_along(K, S, PAD, n_in, n_out):
    """One axis of :func:`channel_tiled_data`'s split into S phases: for input index
    h = S*u + a (phase a), the taps k = k0 + S*m (m < Kq) reach dy at i = u + d - m,
    d = (a + PAD - k0) / S, k0 = (a + PAD) mod S. Returns (Kq, first, count, before,
    after), the first three per phase: Kq taps, dy index u + first + m' of tap
    m' = Kq - 1 - m (the taps in increasing dy order: first = d - Kq + 1), count phase
    indices u; then the zero rows needed before and after dy's n_out so that every phase
    index reads all its taps."""
    Kq = np.zeros(S, dtype=np.int64)
    first = np.zeros(S, dtype=np.int64)
    count = np.zeros(S, dtype=np.int64)
    before = 0
    after = 0
    for a in range(S):
        k0 = (a + PAD) % S
        count[a] = (n_in - a + S - 1) // S if a < n_in else 0
        if k0 < K:
            Kq[a] = (K - k0 + S - 1) // S
            first[a] = (a + PAD - k0) // S - Kq[a] + 1
            if count[a] > 0:
                before = max(before, -first[a])
                after = max(after, count[a] - 1 + first[a] + Kq[a] - 1 - (n_out - 1))
    return Kq, first, count, before, after


@parallel_kernel
def channel_tiled_data(dy, relu_out, mode, W_taps, KH, KW, SH, SW, PH, PW, dx):
    """The input gradient of :func:`channel_tiled_forward`, at any stride and padding.

    dx[n, c, h, w] = sum of g[n, f, i, j] * W[f, c, kh, kw] over f and the (i, j, kh, kw)
    with i*SH + kh - PH = h and j*SW + kw - PW = w

    dy (N, F, OH, OW); g as in :func:`channel_tiled_weights` (``relu_out``, ``mode``);
    W_taps from :func:`pack_tap_rows`; dx (N, C, H, W). The input pixels split into
    SH*SW phases (h mod SH, w mod SW). Within a phase every pixel takes the same taps
    (kh = kh0 + SH*m, kw = kw0 + SW*m'), each from a fixed offset of dy, so a phase is a
    stride-1 correlation of dy, zero-padded so that each pixel reads all its taps, with
    a sub-kernel of those taps (:func:`_phases_along`): the forward's tile
    (:func:`_forward_tile_2v10`, or on AVX2 :func:`~.direct_backward._dw_tile_2v12`) with
    input channels along the lanes sums over dy's channels and the phase's taps in one
    chain per pixel, 10 pixels by two vectors of channels at a time. The tiles' pixel-major
    rows go to the input pixels of their phase in a pixel-major buffer, which is transposed
    into dx[n] at the end; a phase without taps gets zeros. Parallel over images.
    """
    N, F, OH, OW = dy.shape
    C, H, Wd = dx.shape[1], dx.shape[2], dx.shape[3]
    Q = H * Wd
    Cp = W_taps.shape[1]
    L = lanes(dx.reshape(dx.size))
    B = 2 * L
    KHq, top, rows_of, PT, PB = _phases_along(KH, SH, PH, H, OH)
    KWq, left, cols_of, PL, PR = _phases_along(KW, SW, PW, Wd, OW)
    OHp = OH + PT + PB
    OWp = OW + PL + PR
    plane = OHp * OWp
    phases = SH * SW
    w_at = np.empty(phases + 1, dtype=np.int64)  # phase ph's sub-kernel rows start at w_at[ph]*Cp
    p_at = np.empty(phases + 1, dtype=np.int64)  # its pixels at p_at[ph] in pix and dest
    w_at[0] = 0
    p_at[0] = 0
    for ph in range(phases):
        a = ph // SW
        b = ph - a * SW
        w_at[ph + 1] = w_at[ph] + F * KHq[a] * KWq[b]
        p_at[ph + 1] = p_at[ph] + rows_of[a] * cols_of[b]
    w_phase = np.empty(w_at[phases] * Cp, dtype=dx.dtype)  # (f, m, m') rows of each phase
    pix = np.empty(p_at[phases], dtype=np.int64)  # a phase pixel's first tap in a padded dy plane
    dest = np.empty(p_at[phases], dtype=np.int64)  # and its input pixel h*W + w
    w_taps = W_taps.reshape(W_taps.size)
    most = 0
    for ph in range(phases):
        a = ph // SW
        b = ph - a * SW
        kh0 = (a + PH) % SH
        kw0 = (b + PW) % SW
        t = w_at[ph]
        for f in range(F):
            for m in range(KHq[a]):
                for mm in range(KWq[b]):
                    kh = kh0 + SH * (KHq[a] - 1 - m)
                    kw = kw0 + SW * (KWq[b] - 1 - mm)
                    src = ((kh * KW + kw) * F + f) * Cp
                    for m2 in range(Cp):  # a loop, not a slice copy: that would be a parallel region each
                        w_phase[t * Cp + m2] = w_taps[src + m2]
                    t += 1
        k = p_at[ph]
        for u in range(rows_of[a]):
            for v in range(cols_of[b]):
                pix[k] = (u + top[a] + PT) * OWp + v + left[b] + PL
                dest[k] = (SH * u + a) * Wd + SW * v + b
                k += 1
        most = max(most, p_at[ph + 1] - p_at[ph])
    bare = mode != DY_RELU_MASKED and PT + PB + PL + PR == 0  # dy's own planes serve
    no_argmax = np.empty((0, 0, 0), dtype=np.int64)  # _pad_grad's pooled mode, never taken here
    no_pooled = np.empty((0, 0, 0), dtype=dx.dtype)
    for n in prange(N):
        wide_vectors()
        if bare:
            dyp = dy[n].reshape(F * plane)
        else:
            dyp = np.empty(F * plane, dtype=dx.dtype)
            _pad_grad(dy[n], relu_out[n], no_argmax, no_pooled, mode, OW, PT, PL, OHp, OWp, dyp)
        acc = np.empty(Q * Cp, dtype=dx.dtype)
        rows = np.empty((-(-most // TILE_PIXELS) * TILE_PIXELS) * B, dtype=dx.dtype)
        _data_image(dyp, F, w_phase, w_at, pix, dest, p_at, KHq, KWq, SW, OWp, Cp, L, acc, rows)
        _rows_to_planes(acc, Cp, dx[n].reshape(C * Q), 0, C, Q)


@jit(refcounts=False)
def _data_image(dyp, F, w_phase, w_at, pix, dest, p_at, KHq, KWq, SW, OWp, Cp, L, acc, rows):
    """One image of :func:`channel_tiled_data`: each phase's tiles over g's bordered planes
    dyp (F of them) into the pixel-major rows acc (H*W, Cp); rows: the tiles' buffer."""
    plane = dyp.size // F
    B = 2 * L
    zero = typed(acc, 0.0)
    for c0 in range(0, Cp, B):
        for ph in range(p_at.size - 1):
            a = ph // SW
            b = ph - a * SW
            P = p_at[ph + 1] - p_at[ph]
            pix_ph = pix[p_at[ph] : p_at[ph + 1]]
            to = dest[p_at[ph] : p_at[ph + 1]]
            T = F * KHq[a] * KWq[b]
            if T == 0:
                for p in range(P):
                    for m in range(B):
                        acc[to[p] * Cp + c0 + m] = zero
                continue
            w_ph = w_phase[w_at[ph] * Cp : w_at[ph + 1] * Cp]
            for p0 in range(0, P, TILE_PIXELS):
                tile = rows[p0 * B : (p0 + TILE_PIXELS) * B]
                _forward_tile(dyp, w_ph, F, KHq[a], KWq[b], OWp, plane, pix_ph, c0, p0, P, Cp, L, tile)
            for p in range(P):
                d = acc[to[p] * Cp + c0 : to[p] * Cp + c0 + B]
                r = rows[p * B : (p + 1) * B]
                for m in range(B):
                    d[m] = r[m]
