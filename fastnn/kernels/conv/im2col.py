"""The im2col convolution: im2col/col2im, and GEMMs through BLAS on chunks of images.

:func:`im2col` and :func:`col2im` are the ops of the same names. The convolution
kernels :func:`im2col_forward` and :func:`im2col_backward` take whole chunks of
images per thread, with the transposed column matrix (:func:`_im2colT_plane`) in that
thread's scratch row, one BLAS GEMM per chunk (single-threaded meanwhile, see
:mod:`fastnn.kernels.conv`), and :func:`_col2imT_plane` scattering the gradient back.
"""

import numpy as np
from numba import get_thread_id, prange

from ..._config import FASTMATH_IN_ORDER, jit, parallel_kernel
from .._scalars import typed
from .._simd import wide_vectors
from ..activations import activate, rectified_variant
from .gather import gather_plane, scatter_add_plane, window_sources


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
def _im2colT_plane(x, n, c, start, KH, KW, SH, SW, PH, PW, OH, OW, windows, colT):
    """Columns of image n, channel c into colT[(c, kh, kw), start:start + OH*OW] (transposed im2col).

    At SW = 1 each (kh, kw) row is a run of output rows, each a contiguous copy of an input
    row, and only the entries whose window position lies inside x are written; those in
    the zero padding must already hold zeros (:func:`_zero_padding_once`). At other strides
    the rows would be a few strided elements each, so each (kh, kw) row is instead one flat
    gather through ``windows`` (:func:`~.gather.window_sources`), padding included.
    """
    H, W = x.shape[2], x.shape[3]
    xc = x[n, c].reshape(H * W)
    if SW != 1:
        P = OH * OW
        zero = typed(colT, 0.0)
        for tap in range(KH * KW):
            gather_plane(xc, windows[tap], zero, colT[c * KH * KW + tap, start : start + P])
    else:
        for kh in range(KH):
            ilo, ihi = _valid_cols(kh, SH, PH, H, OH)
            for kw in range(KW):
                dst = colT[(c * KH + kh) * KW + kw]
                lo, hi = _valid_cols(kw, SW, PW, W, OW)
                for i in range(ilo, ihi):
                    o = start + i * OW
                    s0 = (i * SH + kh - PH) * W + kw - PW
                    for j in range(lo, hi):
                        dst[o + j] = xc[s0 + j]


@jit(inline="always")
def _zero_padding_once(colT, rows, slot, zeroed_rows, SW, PH, PW):
    """Zero a thread's colT scratch before its first chunk of ``rows`` rows in this call.

    At SW = 1 :func:`_im2colT_plane` skips the entries that fall in the zero padding; they
    sit at the same places in every chunk of the same row count, so one zeroing per thread
    and row count serves all its chunks. ``zeroed_rows[slot]`` records the row count last
    zeroed for. Without padding, or at SW != 1 (where the gather writes the padding's zeros
    itself), every entry is written and nothing is zeroed.
    """
    if SW == 1 and (PH > 0 or PW > 0) and zeroed_rows[slot] != rows:
        zero = typed(colT, 0.0)
        flat = colT.reshape(colT.size)
        for q in range(flat.size):
            flat[q] = zero
        zeroed_rows[slot] = rows


@jit(inline="always")
def _col2imT_plane(dcolT, start, n, c, KH, KW, SH, SW, PH, PW, OH, OW, windows, dx):
    """dx[n, c] = scatter-add of dcolT[(c, kh, kw), start:start + OH*OW] (overwrites dx[n, c]),
    the taps in (kh, kw) order and each tap's outputs in (i, j) order; at SW != 1 each tap
    as one flat scatter through ``windows`` (:func:`~.gather.window_sources`)."""
    H, W = dx.shape[2], dx.shape[3]
    zero = typed(dx, 0.0)
    out = dx[n, c].reshape(H * W)
    for q in range(H * W):
        out[q] = zero
    if SW != 1:
        P = OH * OW
        for tap in range(KH * KW):
            scatter_add_plane(dcolT[c * KH * KW + tap, start : start + P], windows[tap], out)
    else:
        for kh in range(KH):
            ilo, ihi = _valid_cols(kh, SH, PH, H, OH)
            for kw in range(KW):
                src = dcolT[(c * KH + kh) * KW + kw]
                lo, hi = _valid_cols(kw, SW, PW, W, OW)
                for i in range(ilo, ihi):
                    o = start + i * OW
                    d0 = (i * SH + kh - PH) * W + kw - PW
                    for j in range(lo, hi):
                        out[d0 + j] += src[o + j]


@jit(inline="always")
def _strided_windows(H, W, KH, KW, SH, SW, PH, PW, OH, OW):
    """:func:`~.gather.window_sources` at SW != 1, where the unfolding uses it; else empty."""
    if SW != 1:
        return window_sources(H, W, KH, KW, SH, SW, PH, PW, OH, OW)
    return np.empty((0, 0), dtype=np.int64)


@parallel_kernel
def im2col_forward(x, Wm, b, KH, KW, SH, SW, PH, PW, act, alpha, chunk, col_buf, out_buf, y):
    """y = f(conv2d(x)), parallel over chunks of ``chunk`` images, one BLAS call per chunk.

    Each thread takes whole chunks: colT (C*KH*KW, rows) = transposed im2col of the
    chunk, out (F, rows) = Wm @ colT (BLAS, which the caller keeps single-threaded),
    y[n, f] = f(out[f, n's rows] + b[f]), f the activation of code ``act``
    (:func:`~fastnn.kernels.activations.activate`; ACT_IDENTITY: none) applied in that
    copy. Wm is W as (F, C*KH*KW); col_buf and out_buf
    have one row per thread (numba.get_thread_id()) of K*rows and F*rows elements,
    rows = chunk*OH*OW.
    """
    N, C = x.shape[0], x.shape[1]
    F, K = Wm.shape
    OH, OW = y.shape[2], y.shape[3]
    P = OH * OW
    n_chunks = (N + chunk - 1) // chunk
    zeroed_rows = np.zeros(col_buf.shape[0], dtype=np.int64)
    windows = _strided_windows(x.shape[2], x.shape[3], KH, KW, SH, SW, PH, PW, OH, OW)
    for ci in prange(n_chunks):
        wide_vectors()
        slot = get_thread_id()
        n0 = ci * chunk
        nb = min(N, n0 + chunk) - n0
        rows = nb * P
        colT = col_buf[slot, : K * rows].reshape(K, rows)
        out = out_buf[slot, : F * rows].reshape(F, rows)
        _zero_padding_once(colT, rows, slot, zeroed_rows, SW, PH, PW)
        for pair in range(nb * C):
            nn = pair // C
            c = pair - nn * C
            _im2colT_plane(x, n0 + nn, c, nn * P, KH, KW, SH, SW, PH, PW, OH, OW, windows, colT)
        np.dot(Wm, colT, out)
        for pair in range(nb * F):
            nn = pair // F
            f = pair - nn * F
            b0 = b[f]
            dst = y[n0 + nn, f].reshape(P)
            src = out[f, nn * P : (nn + 1) * P]
            for p in range(P):
                dst[p] = activate(dst, src[p] + b0, act, alpha)


#: :func:`im2col_forward` for every activation code but the sigmoid's and tanh's (no exp or tanh
#: compiled in): :func:`~fastnn.kernels.activations.rectified_variant`.
im2col_forward_rectified = rectified_variant(im2col_forward)


#: Whether :func:`im2col_backward` holds its weight-gradient code: True in it, False in
#: :data:`im2col_backward_data`, where Numba prunes that code before compiling.
_WEIGHTS = True


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def im2col_backward(
    x,
    dy,
    Wm,
    KH,
    KW,
    SH,
    SW,
    PH,
    PW,
    chunk,
    weight_grad,
    input_grad,
    col_buf,
    dyt_buf,
    dcol_buf,
    dw_buf,
    dw_groups,
    dx,
    dWm,
    db,
):
    """conv2d gradients, parallel over fixed groups of image chunks; dWm is dW as (F, C*KH*KW).
    Without ``weight_grad`` (a frozen layer) only dx: dWm, db, dw_buf, dw_groups and col_buf
    are not touched (x is not unfolded). Without ``input_grad`` (the first layer) only dW and
    db: dx and dcol_buf are not touched.

    The chunks are split into G = dw_groups.shape[0] groups (a number the caller fixes,
    not the thread count). Per chunk: colT = transposed im2col; dyT (F, rows) = dy of the
    chunk; dW_group += dyT @ colT.T; dcolT = Wm.T @ dyT (BLAS, kept single-threaded by
    the caller); dx[n, c] = col2im of dcolT (each plane written by one thread).
    Each group also sums its chunks' dy into db partials (dw_groups holds F*K + F values
    per group: dW's partial, then db's). Then, serially (one parallel region per call), dW
    and db = the sums of the group partials in group order, so the result does not depend
    on the thread count. The chunks are spread evenly over the groups. Scratch rows are per
    thread (numba.get_thread_id()): col_buf/dcol_buf K*rows, dyt_buf F*rows, dw_buf F*K.
    Compiled without reassociation, so every sum keeps the order written here in every
    build, compiled or loaded from the kernel cache (reliability.md, "Determinism").
    """
    N, C = x.shape[0], x.shape[1]
    F, K = Wm.shape
    OH, OW = dy.shape[2], dy.shape[3]
    P = OH * OW
    G = dw_groups.shape[0]
    zero = typed(dx, 0.0)
    n_chunks = (N + chunk - 1) // chunk
    zeroed_rows = np.zeros(col_buf.shape[0], dtype=np.int64)
    windows = _strided_windows(x.shape[2], x.shape[3], KH, KW, SH, SW, PH, PW, OH, OW)
    for g in prange(G):
        wide_vectors()
        slot = get_thread_id()
        dwg = dw_groups[g, : F * K].reshape(F, K)
        dbg = dw_groups[g, F * K : F * K + F]
        for f in range(F if weight_grad else 0):
            dbg[f] = zero
        dwt = dw_buf[slot, : F * K].reshape(F, K)
        # chunks spread evenly over the groups (no empty trailing groups)
        first = (g * n_chunks) // G
        for ci in range(first, ((g + 1) * n_chunks) // G):
            n0 = ci * chunk
            nb = min(N, n0 + chunk) - n0
            rows = nb * P
            colT = col_buf[slot, : K * rows].reshape(K, rows)
            dyt = dyt_buf[slot, : F * rows].reshape(F, rows)
            dcolT = dcol_buf[slot, : K * rows].reshape(K, rows)
            if _WEIGHTS:  # and in the two blocks below: pruned in im2col_backward_data
                if weight_grad:
                    _zero_padding_once(colT, rows, slot, zeroed_rows, SW, PH, PW)
                for pair in range(nb * C if weight_grad else 0):
                    nn = pair // C
                    c = pair - nn * C
                    _im2colT_plane(x, n0 + nn, c, nn * P, KH, KW, SH, SW, PH, PW, OH, OW, windows, colT)
            for pair in range(nb * F):
                nn = pair // F
                f = pair - nn * F
                src = dy[n0 + nn, f].reshape(P)
                dst = dyt[f, nn * P : (nn + 1) * P]
                s = zero
                for p in range(P):
                    dst[p] = src[p]
                    s += src[p]
                if weight_grad:
                    dbg[f] += s
            if _WEIGHTS:
                if weight_grad:
                    if ci == first:
                        np.dot(dyt, colT.T, dwg)
                    else:
                        np.dot(dyt, colT.T, dwt)
                        for f in range(F):
                            for k in range(K):
                                dwg[f, k] += dwt[f, k]
            if not input_grad:
                continue
            np.dot(Wm.T, dyt, dcolT)
            for pair in range(nb * C):
                nn = pair // C
                c = pair - nn * C
                _col2imT_plane(dcolT, nn * P, n0 + nn, c, KH, KW, SH, SW, PH, PW, OH, OW, windows, dx)
    # serially, after the loop (a second parallel region costs more): the group partials
    # summed in group order, whole rows at a time
    if _WEIGHTS and weight_grad:
        dw_flat = dWm.reshape(F * K)
        for q in range(F * K):
            dw_flat[q] = zero
        for f in range(F):
            db[f] = zero
        for g in range(G):
            for q in range(F * K):
                dw_flat[q] += dw_groups[g, q]
            for f in range(F):
                db[f] += dw_groups[g, F * K + f]


#: :func:`im2col_backward` for calls without ``weight_grad`` (a frozen layer, or the input
#: gradient of a backward pass split between two implementations): the same code with the
#: weight-gradient part left out (``_WEIGHTS`` False): the same dx bit for bit from a smaller
#: build, quicker to compile on a cold start.
im2col_backward_data = im2col_backward.variant("im2col_backward_data", _WEIGHTS=False)
