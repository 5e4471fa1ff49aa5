"""Pooling kernels (max, average and Lp), forward and backward, any size/stride/pad.

x (N, C, H, W) -> y (N, C, OH, OW); every kernel runs in parallel over the
N*C planes, so a backward pass scatter-adds only into the plane its thread owns
(overlapping windows accumulate without races). Padding is never read: a window
is clipped to the input, which is max pooling's -inf padding and average
and Lp pooling's zero padding (the divisor stays KH*KW; a zero adds nothing to a norm).
"""

import numpy as np
from numba import get_thread_id, prange

from .._config import FASTMATH_IN_ORDER, jit, parallel_kernel
from ._scalars import typed
from ._simd import lanes, wide_vectors
from ._simd_pool import pool_pairs_step, pool_rows_step
from .activations import ACT_IDENTITY, activation_grad


@jit(inline="always")
def _take(v, b, t, d):
    """One tap of a window: (best, tap) after value v of tap offset d meets the running
    (b, t): v wins when it is larger, or a NaN over a number (a tie keeps the earlier tap)."""
    take = (v > b) | ((v != v) & (b == b))
    return (v if take else b), (d if take else t)


@jit(inline="always")
def _max_window(xc, h0, h1, w0, w1, W):
    """(max, flat index of the winner) over rows [h0, h1) x columns [w0, w1) of the flat plane
    xc of width W: the first maximum in row-major order, a NaN beating every number."""
    best = xc[h0 * W + w0]
    at = h0 * W + w0
    for h in range(h0, h1):
        for w in range(w0, w1):  # branch-free selects: random data would mispredict a branch
            best, at = _take(xc[h * W + w], best, at, h * W + w)
    return best, at


@jit(inline="always")
def _retake_minus_inf(xc, top, bottom, W, KW, SW, PW, low, yr, ar):
    """Take again, one value at a time, every window of output row yr (argmax row ar) whose
    maximum came out -inf: all its values are -inf and a padding position may have won.
    The window spans rows [top, bottom) of the flat plane xc of width W."""
    for j in range(yr.shape[0]):
        if yr[j] == low:
            w0 = j * SW - PW
            yr[j], ar[j] = _max_window(xc, top, bottom, max(w0, 0), min(w0 + KW, W), W)


@jit(inline="always")
def _wide_taps_3x3(xp, Wp, W, L, best, tap):
    """:func:`maxpool_forward_wide`'s tap passes for a 3x3 window, in one pass: for every
    corner o < L of the stack xp (rows of Wp), best[o] and tap[o] after the nine taps in
    row-major order, the same rule and order as the general passes. The taps are unrolled,
    so the running maximum and its tap stay in registers (LLVM vectorises the loop over
    o) instead of going through best and tap in memory once per tap."""
    x0, x1, x2 = xp[0:L], xp[1 : 1 + L], xp[2 : 2 + L]
    x3, x4, x5 = xp[Wp : Wp + L], xp[Wp + 1 : Wp + 1 + L], xp[Wp + 2 : Wp + 2 + L]
    x6, x7, x8 = xp[2 * Wp : 2 * Wp + L], xp[2 * Wp + 1 : 2 * Wp + 1 + L], xp[2 * Wp + 2 : 2 * Wp + 2 + L]
    d1, d2 = np.int32(1), np.int32(2)
    d3, d4, d5 = np.int32(W), np.int32(W + 1), np.int32(W + 2)
    d6, d7, d8 = np.int32(2 * W), np.int32(2 * W + 1), np.int32(2 * W + 2)
    for o in range(L):
        b, t = x0[o], np.int32(0)
        b, t = _take(x1[o], b, t, d1)
        b, t = _take(x2[o], b, t, d2)
        b, t = _take(x3[o], b, t, d3)
        b, t = _take(x4[o], b, t, d4)
        b, t = _take(x5[o], b, t, d5)
        b, t = _take(x6[o], b, t, d6)
        b, t = _take(x7[o], b, t, d7)
        b, t = _take(x8[o], b, t, d8)
        best[o] = b
        tap[o] = t


def wide_scratch(H, W, KH, KW, PH, PW, G):
    """(xp_buf, best_buf) row lengths of :func:`maxpool_forward_wide` stacking G planes of
    H x W (tap_buf's equals best_buf's): (G*(H + PH) + PH)*Wp and ((G - 1)*(H + PH) + Hp -
    KH)*Wp + Wp - KW + 1, Hp = H + 2*PH, Wp = W + 2*PW. Plain Python, for the callers."""
    Hp, Wp = H + 2 * PH, W + 2 * PW
    return (G * (H + PH) + PH) * Wp, ((G - 1) * (H + PH) + Hp - KH) * Wp + Wp - KW + 1


@parallel_kernel
def maxpool_forward_wide(x, KH, KW, SH, SW, PH, PW, G, xp_buf, best_buf, tap_buf, y, argmax):
    """:func:`maxpool_forward_rows`'s maxima and argmax through whole-plane passes.

    G planes at a time are copied into their thread's padded stack xp: each plane's H rows
    and W columns inside -inf padding, PH rows of it between planes (shared by the planes
    above and below: no window reaches further), Wp = W + 2*PW columns. The stride-1
    windows are taken over the "wide" run o = r*Wp + s of their top-left corners, every
    row of the stack (positions between planes and rows are computed and never read), so
    each window tap is one long contiguous pass. One pass per tap, in row-major order,
    keeps best[o] (the window's maximum so far) and tap[o] (the offset kh*W + kw of the
    tap it came from), replacing them only where the tap's value is larger, or is a NaN
    over a number: the first maximum in row-major order wins, as in :func:`maxpool_forward_rows`. The
    passes are plain loops (branch-free selects that LLVM vectorises); Numba's
    ``np.maximum(a, b, out)`` over the same slices ran several times slower. Output (i, j) of
    the stack's plane g is the window at o = (g*(H + PH) + i*SH)*Wp + j*SW: argmax =
    (i*SH - PH)*W + j*SW - PW + tap[o] and y = best[o], the winner's own value. A window
    whose maximum is -inf (all its values -inf) may have kept a padding tap, and is taken
    one value at a time instead. At stride s the passes cover about s*s times the windows
    needed. Scratch rows per thread: xp_buf and best_buf of the lengths
    :func:`wide_scratch` gives, tap_buf (int32) as long as best_buf's.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    Hp, Wp = H + 2 * PH, W + 2 * PW
    R = H + PH  # rows from one plane's start to the next's in the stack
    low = typed(x, -np.inf)
    padded = np.zeros(xp_buf.shape[0], dtype=np.bool_)
    for group in prange((N * C + G - 1) // G):
        wide_vectors()
        slot = get_thread_id()
        first = group * G
        count = min(G, N * C - first)
        L = ((count - 1) * R + Hp - KH) * Wp + Wp - KW + 1
        xp = xp_buf[slot, : (G * R + PH) * Wp]
        best = best_buf[slot, :L]
        tap = tap_buf[slot, :L]
        if not padded[slot]:  # the borders stay -inf: each plane writes only its inside
            for q in range(xp.size):
                xp[q] = low
            padded[slot] = True
        for g in range(count):
            n = (first + g) // C
            c = first + g - n * C
            for h in range(H):
                row = x[n, c, h]
                start = (g * R + h + PH) * Wp + PW
                dst = xp[start : start + W]
                for w in range(W):
                    dst[w] = row[w]
        if KH == 3 and KW == 3:
            _wide_taps_3x3(xp, Wp, W, L, best, tap)
        else:
            for o in range(L):
                best[o] = xp[o]
                tap[o] = 0
            for t in range(1, KH * KW):
                kh = t // KW
                kw = t - kh * KW
                src = xp[kh * Wp + kw : kh * Wp + kw + L]
                d = np.int32(kh * W + kw)
                for o in range(L):
                    best[o], tap[o] = _take(src[o], best[o], tap[o], d)
        for g in range(count):
            n = (first + g) // C
            c = first + g - n * C
            xc = x[n, c].reshape(H * W)
            for i in range(OH):
                yr = y[n, c, i]
                ar = argmax[n, c, i]
                base = (i * SH - PH) * W - PW
                row = (g * R + i * SH) * Wp
                lost = False  # a window of -inf alone in this row
                for j in range(OW):
                    v = best[row + j * SW]
                    ar[j] = base + j * SW + tap[row + j * SW]
                    yr[j] = v
                    lost |= v == low
                if lost:
                    h0 = i * SH - PH
                    _retake_minus_inf(xc, max(h0, 0), min(h0 + KH, H), W, KW, SW, PW, low, yr, ar)


def same_3x3_scratch(H, W):
    """The row length of :func:`maxpool_forward_3x3_same`'s per-thread plane buffer for
    (H, W) planes: the plane and a row and a value of -inf before and after it, P + 2W + 2.
    Plain Python, for the callers."""
    return H * W + 2 * W + 2


def edge_columns(H, W):
    """(first, last): bool (H*W,) flags of the plane positions in column 0 and in column
    W - 1, the masks of :func:`maxpool_forward_3x3_same`. NumPy, for the callers."""
    column = np.arange(H * W) % W
    return column == 0, column == W - 1


@parallel_kernel
def maxpool_forward_3x3_same(x, G, xp_buf, first, last, y, argmax):
    """:func:`maxpool_forward_wide`'s maxima and argmax for 3x3 windows at stride 1 with
    one row and column of -inf padding (GoogLeNet's pooling branch): OH, OW = H, W.

    Each plane goes into its thread's buffer xp (row xp_buf[thread], of
    :func:`same_3x3_scratch`'s length) between W + 1 values of -inf, unpadded: output q =
    i*W + j of the flat plane reads its nine taps at xp[q + kh*W + kw], one contiguous run
    per tap over the whole plane, and a tap in column -1 or W (kw = 0 where first[q], kw = 2
    where last[q]: :func:`edge_columns`) is taken as -inf, which is what the padding holds.
    The taps go in row-major order with :func:`_take`'s rule, as in the other kernels, and
    y and argmax (the winner's flat index q + (kh - 1)*W + kw - 1) are stored straight into
    the output planes, whole: no per-row extraction from a wide run, which on 14- and 7-column
    planes ran mostly as scalar remainders. A window whose maximum is -inf is taken again
    one value at a time (:func:`_retake_minus_inf`). Parallel over groups of G planes.
    """
    N, C, H, W = x.shape
    P = H * W
    low = typed(x, -np.inf)
    d1, d2 = np.int32(1), np.int32(2)
    d3, d4, d5 = np.int32(W), np.int32(W + 1), np.int32(W + 2)
    d6, d7, d8 = np.int32(2 * W), np.int32(2 * W + 1), np.int32(2 * W + 2)
    planes = x.reshape(N * C, P)
    y_planes = y.reshape(N * C, P)
    a_planes = argmax.reshape(N * C, P)
    for group in prange((N * C + G - 1) // G):
        wide_vectors()
        xp = xp_buf[get_thread_id()]
        for q in range(W + 1):
            xp[q] = low
            xp[W + 1 + P + q] = low
        inner = xp[W + 1 : W + 1 + P]
        x0, x1, x2 = xp[0:P], xp[1 : 1 + P], xp[2 : 2 + P]
        x3, x4, x5 = xp[W : W + P], xp[W + 1 : W + 1 + P], xp[W + 2 : W + 2 + P]
        x6, x7, x8 = xp[2 * W : 2 * W + P], xp[2 * W + 1 : 2 * W + 1 + P], xp[2 * W + 2 : 2 * W + 2 + P]
        for m in range(group * G, min(group * G + G, N * C)):
            xc = planes[m]
            for q in range(P):
                inner[q] = xc[q]
            yc = y_planes[m]
            ac = a_planes[m]
            lost = False
            for q in range(P):
                f = first[q]
                e = last[q]
                b, t = (low if f else x0[q]), np.int32(0)
                b, t = _take(x1[q], b, t, d1)
                b, t = _take(low if e else x2[q], b, t, d2)
                b, t = _take(low if f else x3[q], b, t, d3)
                b, t = _take(x4[q], b, t, d4)
                b, t = _take(low if e else x5[q], b, t, d5)
                b, t = _take(low if f else x6[q], b, t, d6)
                b, t = _take(x7[q], b, t, d7)
                b, t = _take(low if e else x8[q], b, t, d8)
                yc[q] = b
                ac[q] = q - W - 1 + t
                lost |= b == low
            if lost:
                for i in range(H):
                    yr = yc[i * W : i * W + W]
                    ar = ac[i * W : i * W + W]
                    _retake_minus_inf(xc, max(i - 1, 0), min(i + 2, H), W, 3, 1, 1, low, yr, ar)


@jit(refcounts=False)
def _maxpool_rows_plane(x, n, c, KH, KW, SH, SW, PH, PW, col, at, y, argmax):
    """:func:`maxpool_forward_rows` on plane (n, c), with the thread's rows col and at.

    Compiled without reference counts: its per-row slices would otherwise increment and
    decrement the shared counts of x, y and argmax from every thread."""
    H, W = x.shape[2], x.shape[3]
    OH, OW = y.shape[2], y.shape[3]
    low = typed(x, -np.inf)
    for q in range(PW):
        col[q] = low
        col[PW + W + q] = low
        at[q] = 0
        at[PW + W + q] = 0
    inner = col[PW : PW + W]
    inner_at = at[PW : PW + W]
    for i in range(OH):
        h0 = i * SH - PH
        top = max(h0, 0)
        bottom = min(h0 + KH, H)
        first = x[n, c, top]
        for w in range(W):
            inner[w] = first[w]
            inner_at[w] = top * W + w
        for h in range(top + 1, bottom):
            row = x[n, c, h]
            for w in range(W):  # _take's rule written out: through _take this loop ran slower
                v = row[w]
                b = inner[w]
                take = (v > b) | ((v != v) & (b == b))
                inner[w] = v if take else b
                inner_at[w] = h * W + w if take else inner_at[w]
        yr = y[n, c, i]
        ar = argmax[n, c, i]
        for j in range(OW):
            yr[j] = col[j * SW]
            ar[j] = at[j * SW]
        for kw in range(1, KW):
            for j in range(OW):
                v = col[j * SW + kw]
                a = at[j * SW + kw]
                b = yr[j]
                ab = ar[j]
                tie = (v == b) | ((v != v) & (b != b))
                take = (v > b) | ((v != v) & (b == b)) | (tie & (a < ab))
                yr[j] = v if take else b
                ar[j] = a if take else ab
        lost = False  # a window of -inf alone in this row
        for j in range(OW):
            lost |= yr[j] == low
        if lost:
            _retake_minus_inf(x[n, c].reshape(H * W), top, bottom, W, KW, SW, PW, low, yr, ar)


@parallel_kernel
def maxpool_forward_rows(x, KH, KW, SH, SW, PH, PW, col_buf, at_buf, y, argmax):
    """y = max over each window, argmax = flat index h*W + w of the winner in its plane, as
    two separable passes per output row.

    The first maximum in row-major window order wins; a NaN beats every number.

    For output row i, a vertical pass over the window's input rows h (those inside the
    plane, top to bottom) keeps, for every column, the maximum so far and its flat index
    h*W + w (a NaN beats a number; on a tie the upper row stays); then a horizontal pass over
    the KW columns of each window at stride SW keeps the larger of the running winner and
    the column's, a tie going to the smaller flat index. That is the row-major first
    maximum of the window (the smallest row holding the maximum, then the leftmost column
    in it), the rule above. Each input row is read by at most ceil(KH / SH) output rows and
    only the windows needed are taken (the whole-plane kernel takes every stride-1 window).
    col_buf (dtype) and at_buf (int64) are per-thread rows of at least W + 2*PW values (the
    padding columns holding -inf), best each on pages of its own: rows of threads sharing
    nearby lines ran the kernel twice as long (``numba_pool.thread_rows``). A window whose maximum is
    -inf (all its values -inf) may have kept a padding column, and is taken one value at a
    time instead.
    """
    N, C = x.shape[0], x.shape[1]
    for plane in prange(N * C):
        wide_vectors()
        slot = get_thread_id()
        n = plane // C
        _maxpool_rows_plane(
            x, n, plane - n * C, KH, KW, SH, SW, PH, PW, col_buf[slot], at_buf[slot], y, argmax
        )


@parallel_kernel
def maxpool_forward_2x2(x, y, argmax):
    """:func:`maxpool_forward_rows` for 2x2 windows, stride 2, no padding (same ties and NaN rule).

    Each window's four values are compared in row-major order with branch-free selects;
    parallel over (n, c) planes, one pass over each pair of input rows.
    """
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        xc = x[n, c]
        yc = y[n, c]
        ac = argmax[n, c]
        for i in range(OH):
            r0 = xc[2 * i]
            r1 = xc[2 * i + 1]
            yr = yc[i]
            ar = ac[i]
            base = 2 * i * W
            for j in range(OW):
                # unsigned indices: no negative-index wraparound code, so the loop vectorises
                e = np.uint64(2 * j)
                u = np.uint64(j)
                at0 = base + 2 * j
                best, at = _take(r0[e + np.uint64(1)], r0[e], at0, at0 + 1)
                best, at = _take(r1[e], best, at, at0 + W)
                best, at = _take(r1[e + np.uint64(1)], best, at, at0 + W + 1)
                yr[u] = best
                ar[u] = at


#: Planes smaller than this keep their plane indices in int32 between the two steps. Not a
#: tuning knob: the int32 range.
INT32_PLANE = 2**31


@jit(inline="always")
def _maxpool_2x2_vectors(xn, R, OH, W, yn, an, L):
    """The two steps of :func:`maxpool_2x2_image` in whole vectors (W >= L, R*OW >= L):
    :func:`~fastnn.kernels._simd_pool.pool_rows_step` over each row pair, then
    :func:`~fastnn.kernels._simd_pool.pool_pairs_step` over the whole image; the last
    vector of a row, or of the image, ends at its end (overlapping the one before)."""
    m = np.empty(R * W, dtype=xn.dtype)
    am = np.empty(R * W, dtype=np.int32)
    for r0 in range(0, R, OH):  # plane by plane: no division per row
        for i in range(OH):
            r = r0 + i
            top = 2 * r * W
            q = 0
            while q < W:
                q = min(q, W - L)
                pool_rows_step(xn, top + q, top + W + q, 2 * i * W + q, W, m, am, r * W + q)
                q += L
    K = R * (W // 2)
    k = 0
    while k < K:
        k = min(k, K - L)
        pool_pairs_step(m, am, k, yn, an)
        k += L


@jit
def maxpool_2x2_image(xn, C, H, W, yn, an):
    """2x2 stride-2 max pooling of one image with H and W even: xn (C*H*W,) flat, yn and an
    (C*OH*OW,) flat, an the winner's plane index h*W + w.

    Each pair of input rows (2i, 2i+1) of every plane is one contiguous run, so two passes
    vectorise: (1) m[r, w] = the larger of rows 2i and 2i+1 in column w (row pair r =
    c*OH + i; the lower row wins only if greater, or NaN over a number), with its plane
    index; (2) over the whole image, y[k] = the larger of m[2k] and m[2k+1], a tie (equal,
    or both NaN) going to the smaller plane index. That is the row-major first-maximum
    rule of :func:`maxpool_forward_rows`; the results are identical.
    """
    wide_vectors()
    OH = H // 2
    OW = W // 2
    R = C * OH
    L = lanes(xn)
    if W >= L and R * OW >= L and H * W < INT32_PLANE:
        _maxpool_2x2_vectors(xn, R, OH, W, yn, an, L)
        return
    m = np.empty(R * W, dtype=xn.dtype)
    am = np.empty(R * W, dtype=np.int64)
    for r in range(R):
        i = r - (r // OH) * OH
        top = xn[2 * r * W : 2 * r * W + W]
        bottom = xn[2 * r * W + W : 2 * r * W + 2 * W]
        mr = m[r * W : (r + 1) * W]
        ar = am[r * W : (r + 1) * W]
        base = 2 * i * W
        for w in range(W):
            mr[w], ar[w] = _take(bottom[w], top[w], base + w, base + W + w)
    for k in range(R * OW):
        e = np.uint64(2 * k)
        f = e + np.uint64(1)
        v0 = m[e]
        v1 = m[f]
        p0 = am[e]
        p1 = am[f]
        tie = (v1 == v0) | ((v1 != v1) & (v0 != v0))
        take = (v1 > v0) | ((v1 != v1) & (v0 == v0)) | (tie & (p1 < p0))
        u = np.uint64(k)
        yn[u] = v1 if take else v0
        an[u] = p1 if take else p0


@parallel_kernel
def maxpool_forward_2x2_even(x, y, argmax):
    """maxpool_forward_2x2 for even H and W: :func:`maxpool_2x2_image`, parallel over images."""
    N, C, H, W = x.shape
    for n in prange(N):
        maxpool_2x2_image(
            x[n].reshape(C * H * W), C, H, W, y[n].reshape(y[n].size), argmax[n].reshape(argmax[n].size)
        )


@parallel_kernel
def maxpool_backward(dy, argmax, dx):
    """dx[n, c].flat[argmax[n, c, i, j]] += dy[n, c, i, j] (dx overwritten).

    Returns the number of indices outside the plane [0, H*W), which are skipped (nothing
    is written out of bounds): the op checks the count, so it needs no pass of its own
    over argmax to find its range.
    """
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    zero = typed(dx, 0.0)
    plane_size = H * W
    outside = 0
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        out = dx[n, c].reshape(plane_size)
        for k in range(plane_size):
            out[k] = zero
        for i in range(OH):
            for j in range(OW):
                at = argmax[n, c, i, j]
                if at >= 0 and at < plane_size:
                    out[at] += dy[n, c, i, j]
                else:
                    outside += 1
    return outside


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def avgpool_forward(x, KH, KW, SH, SW, PH, PW, y):
    """y = (sum over the window clipped to x) / (KH*KW)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    area = typed(x, KH * KW)
    zero = typed(x, 0.0)
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        xc = x[n, c]
        for i in range(OH):
            h0 = max(i * SH - PH, 0)
            h1 = min(i * SH - PH + KH, H)
            for j in range(OW):
                w0 = max(j * SW - PW, 0)
                w1 = min(j * SW - PW + KW, W)
                s = zero
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        s += xc[h, w]
                y[n, c, i, j] = s / area


@parallel_kernel
def avgpool_backward(dy, KH, KW, SH, SW, PH, PW, dx):
    """dx[n, c, h, w] = sum of dy / (KH*KW) over the windows that hold (h, w) (dx overwritten)."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    area = typed(dx, KH * KW)
    zero = typed(dx, 0.0)
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        out = dx[n, c]
        for h in range(H):
            for w in range(W):
                out[h, w] = zero
        for i in range(OH):
            h0 = max(i * SH - PH, 0)
            h1 = min(i * SH - PH + KH, H)
            for j in range(OW):
                w0 = max(j * SW - PW, 0)
                w1 = min(j * SW - PW + KW, W)
                share = dy[n, c, i, j] / area
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        out[h, w] += share


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def avgpool_forward_2x2(x, y):
    """avgpool_forward for 2x2 windows, stride 2, no padding: y[n, c, i, j] = (0 + x[2i, 2j]
    + x[2i, 2j+1] + x[2i+1, 2j] + x[2i+1, 2j+1]) / 4, the general kernel's terms in its
    order, a row of windows at a time (a last odd row or column of x is in no window). Both
    kernels are compiled without fastmath's reassociation, so their numbers are the same bits."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    area = typed(x, 4)
    zero = typed(x, 0.0)
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        for i in range(OH):
            r0 = x[n, c, 2 * i]
            r1 = x[n, c, 2 * i + 1]
            yr = y[n, c, i]
            for j in range(OW):
                s = zero + r0[2 * j]
                s += r0[2 * j + 1]
                s += r1[2 * j]
                s += r1[2 * j + 1]
                yr[j] = s / area


@jit(inline="always")
def _avgpool_backward_2x2_plane(dy, y, code, alpha, dx):
    """One plane of :func:`avgpool_backward_2x2_activation`: dy (OH, OW), y and dx (H, W).
    Inlined, so a constant ``code`` (ACT_IDENTITY) leaves plain stores and no reads of y."""
    H, W = dx.shape
    OH, OW = dy.shape
    area = typed(dx, 4)
    zero = typed(dx, 0.0)
    for i in range(OH):
        dyr = dy[i]
        y0 = y[2 * i]
        y1 = y[2 * i + 1]
        r0 = dx[2 * i]
        r1 = dx[2 * i + 1]
        for j in range(OW):
            v = zero + dyr[j] / area
            r0[2 * j] = activation_grad(dx, v, y0[2 * j], code, alpha)
            r0[2 * j + 1] = activation_grad(dx, v, y0[2 * j + 1], code, alpha)
            r1[2 * j] = activation_grad(dx, v, y1[2 * j], code, alpha)
            r1[2 * j + 1] = activation_grad(dx, v, y1[2 * j + 1], code, alpha)
        for w in range(2 * OW, W):
            r0[w] = activation_grad(dx, zero, y0[w], code, alpha)
            r1[w] = activation_grad(dx, zero, y1[w], code, alpha)
    for h in range(2 * OH, H):
        row = dx[h]
        yr = y[h]
        for w in range(W):
            row[w] = activation_grad(dx, zero, yr[w], code, alpha)


@parallel_kernel
def avgpool_backward_2x2(dy, dx):
    """avgpool_backward for 2x2 windows, stride 2, no padding: each element of a window
    gets 0 + dy / 4 (the general kernel's sum, one share each), a last odd row or column
    of dx 0; a row of windows at a time."""
    N, C = dx.shape[0], dx.shape[1]
    zero = typed(dx, 0.0)
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        _avgpool_backward_2x2_plane(dy[n, c], dx[n, c], ACT_IDENTITY, zero, dx[n, c])


@parallel_kernel
def avgpool_backward_2x2_activation(dy, y, code, alpha, dx):
    """:func:`avgpool_backward_2x2`, then the gradient through the activation ``code``
    whose output y (dx's shape) the pooling read: dx = activation_grad(0 + dy / 4, y) on
    each window's elements and activation_grad(0, y) on a last odd row or column, the
    numbers of the two ops apart (:func:`~fastnn.kernels.activations.activation_grad`),
    in one pass."""
    N, C = dx.shape[0], dx.shape[1]
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        _avgpool_backward_2x2_plane(dy[n, c], y[n, c], code, alpha, dx[n, c])


@parallel_kernel
def lppool_forward(x, KH, KW, SH, SW, PH, PW, p, y):
    """y = (sum over the window clipped to x of |x|^p)^(1/p); for p = 2, sqrt(sum of x*x)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    order = typed(x, p)
    root = typed(x, 1.0) / order
    zero = typed(x, 0.0)
    square = p == 2.0
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        xc = x[n, c]
        for i in range(OH):
            h0 = max(i * SH - PH, 0)
            h1 = min(i * SH - PH + KH, H)
            for j in range(OW):
                w0 = max(j * SW - PW, 0)
                w1 = min(j * SW - PW + KW, W)
                s = zero
                if square:
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s += xc[h, w] * xc[h, w]
                    y[n, c, i, j] = np.sqrt(s)
                else:
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            s += abs(xc[h, w]) ** order
                    y[n, c, i, j] = s**root


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def lppool_backward(dy, x, y, KH, KW, SH, SW, PH, PW, p, dx):
    """dx[n, c, h, w] = sum over the windows holding (h, w) of dy * sign(x) * (|x| / y)^(p-1)
    (dy * x / y for p = 2); a window with y = 0 adds nothing (dx overwritten). Compiled
    without reassociation: the windows' shares are added in window order in every build,
    compiled or loaded from the kernel cache (reliability.md, "Determinism")."""
    N, C, H, W = dx.shape
    OH, OW = dy.shape[2], dy.shape[3]
    power = typed(x, p) - typed(x, 1.0)
    zero = typed(x, 0.0)
    square = p == 2.0
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        xc = x[n, c]
        out = dx[n, c]
        for h in range(H):
            for w in range(W):
                out[h, w] = zero
        for i in range(OH):
            h0 = max(i * SH - PH, 0)
            h1 = min(i * SH - PH + KH, H)
            for j in range(OW):
                norm = y[n, c, i, j]
                if norm == zero:
                    continue
                w0 = max(j * SW - PW, 0)
                w1 = min(j * SW - PW + KW, W)
                share = dy[n, c, i, j] / norm
                if square:
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            out[h, w] += share * xc[h, w]
                else:
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = xc[h, w]
                            t = dy[n, c, i, j] * (abs(v) / norm) ** power
                            out[h, w] += t if v > zero else (-t if v < zero else zero)
