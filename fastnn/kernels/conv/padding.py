"""Padding and copies for the direct convolution kernels.

The direct kernels (:mod:`.direct`, :mod:`.direct_backward`, :mod:`.channel_tiles`) pad
per image inside their parallel region, into a buffer of the item's own, with the
helpers here: :func:`_pad_image` (and :func:`_pad_image_vectors` and
:func:`_pad_image_narrow`, its whole-vector forms), the gradient through a fused ReLU
(:func:`_pad_masked`) or a fused ReLU and max pooling (:func:`_pad_pooled`) padded in
the same pass, :func:`_pad_grad` choosing among the three by the backward mode
(:mod:`.modes`), and the copies the backward-weights items make
(:func:`_copy_interior`, :func:`_widen_plane`).
"""

from ..._config import jit
from .._scalars import typed
from .._simd import lanes, vload, vsplat, vstore, vwhere_positive, wide_vectors
from .._simd_pool import route_2x2_step
from .modes import DY_RELU_MASKED, DY_RELU_POOL_ROUTED


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
            d = dst[(c * Hin + r) * Win : (c * Hin + r + 1) * Win]
            sr = r - TP
            if sr < 0 or sr >= H:
                for q in range(Win):
                    d[q] = zero
            else:
                for q in range(c0):
                    d[q] = zero
                s = src[c, sr, c0 - LP : c1 - LP]
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
            _copy_run(flat, (c * H + r) * W, dst, (c * Hin + r + TP) * Win + LP, W, L, flat, False)


@jit(refcounts=False)
def _pad_image_narrow(src, TP, LP, Hin, Win, dst, L):
    """:func:`_pad_image` for TP, LP >= 0 and rows that fit (TP + H <= Hin, LP + W <= Win)
    of any width, narrower than a vector included, each row copied in whole vectors.

    The vectors of a row run past its end, into its right padding, the next row's left
    padding and the start of the next row; rows are copied in order and each row's
    padding is zeroed after its copy, so the next row's copy overwrites the rest. Rows
    whose vectors would read past the end of src are copied an element at a time.
    dst needs ceil(W / L) * L elements of slack past C*Hin*Win.
    """
    C, H, W = src.shape
    flat = src.reshape(C * H * W)
    zero = typed(dst, 0.0)
    plane = Hin * Win
    V = (W + L - 1) // L
    for c in range(C):
        base = c * plane
        for q in range(base, base + TP * Win + LP):
            dst[q] = zero
        for r in range(H):
            s = (c * H + r) * W
            d = base + (TP + r) * Win + LP
            if s + V * L <= flat.size:
                for v in range(V):
                    vstore(dst, d + v * L, vload(flat, s + v * L))
            else:
                for q in range(W):
                    dst[d + q] = flat[s + q]
            gap = Win - W if r < H - 1 else Win - W - LP + (Hin - TP - H) * Win
            for q in range(d + W, d + W + gap):
                dst[q] = zero


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
            d = dst[(c * Hin + r) * Win : (c * Hin + r + 1) * Win]
            sr = r - TP
            if sr < 0 or sr >= H:
                for q in range(Win):
                    d[q] = zero
            else:
                for q in range(c0):
                    d[q] = zero
                s = src[c, sr, c0 - LP : c1 - LP]
                m = mask[c, sr, c0 - LP : c1 - LP]
                dd = d[c0:c1]
                for q in range(c1 - c0):
                    v = s[q]  # loaded unconditionally, so the loop vectorises
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
    windows_2x2 = OWc == 2 * PWo and TP >= 0 and LP >= 0 and TP + 2 * PHo <= Hin and LP + OWc <= Win
    dyp_flat = dyp.reshape(dyp.size)
    argmax_flat = argmax.reshape(argmax.size)
    pooled_flat = pooled.reshape(pooled.size)
    for c in range(C):
        plane = dst[c * Hin * Win : (c + 1) * Hin * Win]
        if windows_2x2 and _route_2x2_plane(
            dyp_flat, argmax_flat, pooled_flat, c * PHo * PWo, PHo, PWo, TP, LP, Win, plane
        ):
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
            if not route_2x2_step(
                dyp,
                pooled,
                argmax,
                at + i * PWo + j,
                min(L, PWo - j),
                2 * i * OWc + 2 * j,
                OWc,
                plane,
                top + LP + 2 * j,
                Win,
            ):
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
    """The gradient of one image's conv output, padded: dy itself (mode DY_AS_GIVEN), dy
    through a ReLU with output relu_out (DY_RELU_MASKED, :func:`_pad_masked`) or through a
    ReLU and a max pooling (DY_RELU_POOL_ROUTED, :func:`_pad_pooled`: dy, argmax and pooled
    are the pooling's, OWc the conv output's width); the branch sits outside the loops, so
    each copy loop vectorises."""
    if mode == DY_RELU_POOL_ROUTED:
        _pad_pooled(dy, argmax, pooled, OWc, TP, LP, Hin, Win, dst)
    elif mode == DY_RELU_MASKED:
        _pad_masked(dy, relu_out, TP, LP, Hin, Win, dst)
    else:
        _pad_image(dy, TP, LP, Hin, Win, dst)
