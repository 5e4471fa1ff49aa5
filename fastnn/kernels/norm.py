"""Batch-normalisation kernels, forward (training and inference) and backward (training and
inference: a frozen BatchNorm's).

Every kernel sees its input as x (N, C, S): C channels (or features) of S values
per sample (S = H*W for images, 1 for (N, D) inputs). It runs in parallel over
blocks of ``block`` consecutive channels; a thread owns its channels' sums and
outputs, so nothing is shared and no atomics are needed. Each channel's sums are
taken in one fixed order (rows of S values added into a per-channel total, n
ascending), and the caller picks ``block`` from the shape alone, so the results do
not depend on the thread count.

The training kernels also take an activation ``code`` (``ACT_*`` of
:mod:`fastnn.kernels.activations`) and its ``alpha``: the forward kernel applies f to
the normalised values, the backward kernel takes dy of f(bn(x)) and first turns it into
dy * f' from f's output ``act_out``. Both call the scalars that the standalone
activation kernels call (``activate``, ``activation_grad``), and both pass the values
through memory as the two ops run apart would: the forward stores a normalised row and
applies f to it in a second loop over the row (in cache), the backward writes dy * f' of
a row into dx and reads it back in its sums. Fast-math contraction and reassociation
could otherwise merge f's arithmetic with the normalisation's and round differently
(they did, on (N, D) inputs); this way bn then f gives the numbers of the two ops run
apart, bit for bit.

On (N, D) inputs (S = 1, a Dense layer's) the per-feature work of a block runs in helpers
(``_feature_stats``, ``_feature_normalise``, ``_feature_grads``, ``_feature_scale``) that
keep the block's sums and constants in work arrays, so that each loop over a row
vectorises, and that are compiled as functions of their own without fast-math. Their
loops read rows and work arrays that LLVM cannot prove apart, so it compiles each loop
twice, vectorised and scalar, and picks one at run time by where the arrays lie; with
fast-math the two rounded differently (without contraction too), and the same call gave two
different dgamma from run to run (``fastnn verify`` caught it as a difference between
thread counts). Without fast-math both versions compute the same IEEE operations in the
same order.
"""

import numpy as np
from numba import prange

from .._config import FASTMATH_IN_ORDER, jit, parallel_kernel
from ._scalars import typed
from ._simd import lanes, vadd, vfma, vload, vsplat, vsub, vsum
from .activations import (
    ACT_IDENTITY,
    ACT_LEAKY_RELU,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    activate,
    activation_grad,
)


@jit(fastmath=False)
def _feature_stats(x2, c0, c1, inv_count, mean, var):
    """mean[c] and the sum of squared deviations var[c] for features c0..c1 of (N, D) rows
    x2, rows added in order. The sums run in work arrays of the block's own (mean and var
    may share memory with x2 for all LLVM knows, and accumulating into them did not
    vectorise), then are copied out. See the module docstring on
    (N, D) inputs for why the helpers are compiled apart and without fast-math."""
    N = x2.shape[0]
    m = np.zeros(c1 - c0, dtype=mean.dtype)
    v = np.zeros(c1 - c0, dtype=var.dtype)
    for n in range(N):
        row = x2[n, c0:c1]
        for j in range(c1 - c0):
            m[j] += row[j]
    for j in range(c1 - c0):
        m[j] *= inv_count
    for n in range(N):
        row = x2[n, c0:c1]
        for j in range(c1 - c0):
            d = row[j] - m[j]
            v[j] += d * d
    for j in range(c1 - c0):
        mean[c0 + j] = m[j]
        var[c0 + j] = v[j]


@parallel_kernel
def batchnorm_forward(x, gamma, beta, eps, block, code, alpha, r, y, yc, mean, var, inv_std):
    """Batch statistics and y = f(gamma * (x - mean) / sqrt(var + eps) + beta), per channel,
    for x (N, C, S) with S > 1 (images; (N, D) inputs take :func:`batchnorm_forward_features`),
    with f the identity (any ``code`` but ACT_RELU and ACT_LEAKY_RELU), ReLU or leaky ReLU;
    the sigmoid and tanh take :func:`batchnorm_forward_smooth`, so that a network compiles
    their exp and tanh only when it uses them.

    mean[c] = mean of x[:, c, :]; var[c] = mean of (x[:, c, :] - mean[c])**2 (biased,
    two passes for accuracy); inv_std[c] = 1 / sqrt(var[c] + eps); f is activation
    ``code`` (slope ``alpha``, of x's dtype, for leaky ReLU). With a residual r (N, C, S)
    (an empty array: none), y = f(gamma * (x - mean) / sqrt(var + eps) + beta + r): a
    residual block's sum and the activation after it (ResNet's), which then take no pass
    of their own. Channel c of the output goes to channel ``yc`` + c of y (N, Cy, S), Cy >=
    yc + C: 0 for an output of its own, the first channel of its slice for an output
    written straight into a larger array (a ``Concat`` block's).
    """
    N, C, S = x.shape
    inv_count = typed(x, 1.0) / typed(x, N * S)
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        _channel_statistics(x, c0, c1, inv_count, eps, mean, var, inv_std)
        _channel_affine_by_code(x, gamma, beta, mean, inv_std, c0, c1, code, alpha, r, y, yc)


@jit(inline="always")
def _channel_statistics(x, c0, c1, inv_count, eps, mean, var, inv_std):
    """mean, var (biased, two passes) and inv_std of channels c0..c1 of x (N, C, S): each
    channel's rows of S values summed, then added into its total, n ascending."""
    N, S = x.shape[0], x.shape[2]
    zero = typed(x, 0.0)
    for c in range(c0, c1):
        mean[c] = zero
        var[c] = zero
    for n in range(N):
        for c in range(c0, c1):
            part = zero
            for s in range(S):
                part += x[n, c, s]
            mean[c] += part
    for c in range(c0, c1):
        mean[c] *= inv_count
    for n in range(N):
        for c in range(c0, c1):
            m = mean[c]
            part = zero
            for s in range(S):
                d = x[n, c, s] - m
                part += d * d
            var[c] += part
    _finish_statistics(var, inv_std, c0, c1, inv_count, eps)


@parallel_kernel
def batchnorm_forward_features(x, gamma, beta, eps, block, code, alpha, y, mean, var, inv_std):
    """:func:`batchnorm_forward` for (N, D) inputs seen as x (N, D, 1) (a Dense layer's):
    the same statistics and y, through the per-feature helpers (see the module docstring).
    A kernel of its own, so that a network compiles only the layout it uses."""
    N, C = x.shape[0], x.shape[1]
    zero = typed(x, 0.0)
    inv_count = typed(x, 1.0) / typed(x, N)
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        for c in range(c0, c1):
            mean[c] = zero
            var[c] = zero
        _feature_stats(x.reshape(N, C), c0, c1, inv_count, mean, var)
        _finish_statistics(var, inv_std, c0, c1, inv_count, eps)
        x2, y2 = x.reshape(N, C), y.reshape(N, C)
        if code == ACT_RELU:
            _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, ACT_RELU, alpha, y2)
        elif code == ACT_SIGMOID:
            _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, ACT_SIGMOID, alpha, y2)
        elif code == ACT_TANH:
            _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, ACT_TANH, alpha, y2)
        elif code == ACT_LEAKY_RELU:
            _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, ACT_LEAKY_RELU, alpha, y2)
        else:
            _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, ACT_IDENTITY, alpha, y2)


@jit(inline="always")
def _finish_statistics(var, inv_std, c0, c1, inv_count, eps):
    """var[c] = the sum of squared deviations over the count, inv_std[c] = 1 / sqrt(var[c] +
    eps), for channels c0..c1."""
    one = typed(var, 1.0)
    for c in range(c0, c1):
        var[c] *= inv_count
        inv_std[c] = one / np.sqrt(var[c] + eps)


@jit(fastmath=False)
def _feature_normalise(x2, gamma, beta, mean, inv_std, c0, c1, y2):
    """y2 = (x - mean) * k + beta for features c0..c1 of (N, D) rows, k = gamma * inv_std:
    the block's mean, k and beta go into work arrays first, so that the loop over each row
    reads x2 and writes y2 alone and vectorises (with gamma, beta and the statistics read
    in the loop, LLVM could not rule out their sharing memory with y2, and it did not).
    x - mean first, not x * k + (beta - mean * k): a Dense layer's batch can be one
    sample, where x = mean and inv_std = 1 / sqrt(eps) is large, and the folded form
    cancels. See the module docstring on (N, D) inputs."""
    N = x2.shape[0]
    m = mean[c0:c1].copy()
    k = np.empty(c1 - c0, dtype=y2.dtype)
    d = beta[c0:c1].copy()
    for j in range(c1 - c0):
        k[j] = gamma[c0 + j] * inv_std[c0 + j]
    for n in range(N):
        xr = x2[n, c0:c1]
        yr = y2[n, c0:c1]
        for j in range(c1 - c0):
            yr[j] = (xr[j] - m[j]) * k[j] + d[j]


@jit(inline="always")
def _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, code, alpha, r, y, yc):
    """y[:, yc + c] = f((x - mean) * inv_std * gamma + beta (+ r)) for channels c0..c1, the
    affine part folded to x * k + d; r (N, C, S) is added when it is not empty. With an
    activation or a residual, each normalised row goes to a work row first and the sum and
    f are applied from it in a second loop (in cache), as the add and activation ops would
    read it: fast-math cannot then contract or reassociate their arithmetic into the
    normalisation. (Applying f in place instead would turn a ReLU's store of an unchanged
    value into a conditional store, which does not vectorise.) ``code`` is a constant at
    each call, so each loop is f's own."""
    N, C, S = x.shape
    if code == ACT_IDENTITY and r.size == 0:
        for n in range(N):
            for c in range(c0, c1):
                k = gamma[c] * inv_std[c]
                d = beta[c] - mean[c] * k
                for s in range(S):
                    y[n, yc + c, s] = x[n, c, s] * k + d
    else:
        row = np.empty(S, y.dtype)
        for n in range(N):
            for c in range(c0, c1):
                k = gamma[c] * inv_std[c]
                d = beta[c] - mean[c] * k
                for s in range(S):
                    row[s] = x[n, c, s] * k + d
                if r.size == 0:
                    for s in range(S):
                        y[n, yc + c, s] = activate(y, row[s], code, alpha)
                else:
                    for s in range(S):
                        y[n, yc + c, s] = activate(y, row[s] + r[n, c, s], code, alpha)


@jit(inline="always")
def _channel_affine_rectified(x, gamma, beta, mean, inv_std, c0, c1, code, alpha, r, y, yc):
    """:func:`_channel_affine_block` for ``code`` ReLU, leaky ReLU or (any other) the identity,
    each call with its code a constant, so each loop is f's own."""
    if code == ACT_RELU:
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, ACT_RELU, alpha, r, y, yc)
    elif code == ACT_LEAKY_RELU:
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, ACT_LEAKY_RELU, alpha, r, y, yc)
    else:
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, ACT_IDENTITY, alpha, r, y, yc)


@jit(inline="always")
def _channel_affine_smooth(x, gamma, beta, mean, inv_std, c0, c1, code, alpha, r, y, yc):
    """:func:`_channel_affine_block` for ``code`` the sigmoid or (any other) tanh, each call
    with its code a constant."""
    if code == ACT_SIGMOID:
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, ACT_SIGMOID, alpha, r, y, yc)
    else:
        _channel_affine_block(x, gamma, beta, mean, inv_std, c0, c1, ACT_TANH, alpha, r, y, yc)


#: What :func:`batchnorm_forward` applies after its statistics; its smooth variant binds the
#: name to :func:`_channel_affine_smooth`.
_channel_affine_by_code = _channel_affine_rectified

#: :func:`batchnorm_forward` with f the sigmoid (ACT_SIGMOID) or tanh (any other ``code``): the
#: same statistics and the same f, for x (N, C, S) with S > 1 (``alpha`` is not read). The
#: same code with :func:`_channel_affine_smooth` bound in (``ParallelKernel.variant``).
batchnorm_forward_smooth = batchnorm_forward.variant(
    "batchnorm_forward_smooth", _channel_affine_by_code=_channel_affine_smooth
)


@jit(inline="always")
def _feature_affine_block(x2, gamma, beta, mean, inv_std, c0, c1, code, alpha, y2):
    """:func:`_channel_affine_block` for features c0..c1 of (N, D) rows: the normalisation by
    :func:`_feature_normalise` (x - mean first), then f from a work row per row."""
    N = x2.shape[0]
    _feature_normalise(x2, gamma, beta, mean, inv_std, c0, c1, y2)
    if code != ACT_IDENTITY:
        row = np.empty(c1 - c0, y2.dtype)
        for n in range(N):
            yr = y2[n, c0:c1]
            for j in range(c1 - c0):
                row[j] = yr[j]
            for j in range(c1 - c0):
                yr[j] = activate(y2, row[j], code, alpha)


@parallel_kernel
def channel_affine(x, scale, shift, block, y):
    """y[n, c, s] = x[n, c, s] * scale[c] + shift[c] (batch norm at inference)."""
    N, C, S = x.shape
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        if S == 1:
            _feature_scale(x.reshape(N, C), scale, shift, True, c0, c1, y.reshape(N, C))
        else:
            for n in range(N):
                for c in range(c0, c1):
                    k = scale[c]
                    d = shift[c]
                    for s in range(S):
                        y[n, c, s] = x[n, c, s] * k + d


@parallel_kernel
def channel_scale(x, scale, block, y):
    """y[n, c, s] = x[n, c, s] * scale[c] (the gradient of batch norm at inference, whose
    statistics are constants: a frozen BatchNorm's backward)."""
    N, C, S = x.shape
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        if S == 1:
            _feature_scale(x.reshape(N, C), scale, scale, False, c0, c1, y.reshape(N, C))
        else:
            for n in range(N):
                for c in range(c0, c1):
                    k = scale[c]
                    for s in range(S):
                        y[n, c, s] = x[n, c, s] * k


#: The backward kernel's ``code`` when dx already holds g = dy * f' (the caller ran the
#: activation's backward kernel into it): the kernel then reads g from dx.
GRADIENT_IN_DX = -1


@jit(inline="always")
def _activation_grad_row(dy, dc, act_out, ac, n, c0, c1, code, alpha, g):
    """g[n, c, :] = dy[n, dc + c, :] * f' (``activation_grad`` from f's output act_out[n, ac +
    c, :]) for channels c0..c1; ``code`` is a constant at each call."""
    S = g.shape[2]
    for c in range(c0, c1):
        for s in range(S):
            g[n, c, s] = activation_grad(g, dy[n, dc + c, s], act_out[n, ac + c, s], code, alpha)


@jit(inline="always")
def _gradient_in(dy, dc, act_out, ac, n, c0, c1, code, alpha, g):
    """Row n of channels c0..c1 of dy * f' into g, one loop per activation."""
    if code == ACT_RELU:
        _activation_grad_row(dy, dc, act_out, ac, n, c0, c1, ACT_RELU, alpha, g)
    elif code == ACT_SIGMOID:
        _activation_grad_row(dy, dc, act_out, ac, n, c0, c1, ACT_SIGMOID, alpha, g)
    elif code == ACT_TANH:
        _activation_grad_row(dy, dc, act_out, ac, n, c0, c1, ACT_TANH, alpha, g)
    elif code == ACT_LEAKY_RELU:
        _activation_grad_row(dy, dc, act_out, ac, n, c0, c1, ACT_LEAKY_RELU, alpha, g)


@jit(inline="always")
def _sums_row(g, x, mean, n, c0, c1, dgamma, dbeta):
    """Adds row n of channels c0..c1 into dbeta (sum g) and dgamma (sum g * (x - mean)).

    Each sum over the S values of a row runs in an order the code fixes: four vector
    accumulators of L lanes over steps of 4L values, then the first of them over steps of
    L, the four added lane by lane in pairs and folded (:func:`vsum`), then the remaining
    values one by one. Written out, not left to the vectoriser's reassociation: LLVM
    optimises the parallel build's loop body a second time when it links it into the
    kernel (the build saved to the kernel cache), and with reassociation that second pass
    may add in another order than the first, so a process loading the kernel from the
    cache would get other bits than the one that compiled it.
    """
    N, C, S = x.shape
    L = lanes(x)
    zero = typed(x, 0.0)
    for c in range(c0, c1):
        m = mean[c]
        gr = g[n, c]
        xr = x[n, c]
        mv = vsplat(m)
        sum0 = sum1 = sum2 = sum3 = vsplat(zero)
        dot0 = dot1 = dot2 = dot3 = vsplat(zero)
        s = 0
        while s + 4 * L <= S:
            g0 = vload(gr, s)
            g1 = vload(gr, s + L)
            g2 = vload(gr, s + 2 * L)
            g3 = vload(gr, s + 3 * L)
            sum0 = vadd(sum0, g0)
            sum1 = vadd(sum1, g1)
            sum2 = vadd(sum2, g2)
            sum3 = vadd(sum3, g3)
            dot0 = vfma(g0, vsub(vload(xr, s), mv), dot0)
            dot1 = vfma(g1, vsub(vload(xr, s + L), mv), dot1)
            dot2 = vfma(g2, vsub(vload(xr, s + 2 * L), mv), dot2)
            dot3 = vfma(g3, vsub(vload(xr, s + 3 * L), mv), dot3)
            s += 4 * L
        while s + L <= S:
            g0 = vload(gr, s)
            sum0 = vadd(sum0, g0)
            dot0 = vfma(g0, vsub(vload(xr, s), mv), dot0)
            s += L
        sum_dy = vsum(vadd(vadd(sum0, sum1), vadd(sum2, sum3)))
        sum_dy_xc = vsum(vadd(vadd(dot0, dot1), vadd(dot2, dot3)))
        for t in range(s, S):
            gv = gr[t]
            sum_dy += gv
            sum_dy_xc += gv * (xr[t] - m)
        dbeta[c] += sum_dy
        dgamma[c] += sum_dy_xc


@jit(inline="always")
def _dx_block(g, x, gamma, mean, var, eps, c0, c1, dgamma, dbeta, dx):
    """dx of channels c0..c1 from g (dy, or dy * f' kept in dx itself: then each call
    site passes dx twice, and LLVM sees one array, not two that might overlap)."""
    N, C, S = x.shape
    one = typed(x, 1.0)
    inv_count = one / typed(x, N * S)
    for n in range(N):
        for c in range(c0, c1):
            inv_std = one / np.sqrt(var[c] + eps)
            k_dy = gamma[c] * inv_std
            k_const = k_dy * dbeta[c] * inv_count
            k_x = k_dy * inv_std * dgamma[c] * inv_count
            m = mean[c]
            for s in range(S):
                dx[n, c, s] = k_dy * g[n, c, s] - k_const - k_x * (x[n, c, s] - m)


@jit(fastmath=False)
def _feature_grads(g2, x2, gamma, mean, var, eps, c0, c1, dx2, dgamma, dbeta):
    """:func:`batchnorm_backward` for features c0..c1 of (N, D) rows from g2, the gradient
    g (dy, or dy * f' already in dx2: then g2 is dx2): the same sums in the same order
    (rows in turn, each feature's own total) and the same dx, with the per-feature sums
    and constants in work arrays of the block's own, so that every loop over a row
    vectorises (with dbeta, dgamma and the statistics read or written in the loop, LLVM
    could not rule out their sharing memory with the rows: it did not). dx is computed in
    place from g copied into it, one loop for either source. See the module docstring on (N, D) inputs."""
    N = x2.shape[0]
    F = c1 - c0
    one = typed(x2, 1.0)
    inv_count = one / typed(x2, N)
    m = mean[c0:c1].copy()
    sb = np.zeros(F, dtype=x2.dtype)
    sg = np.zeros(F, dtype=x2.dtype)
    for n in range(N):
        xr = x2[n, c0:c1]
        g = g2[n, c0:c1]
        for j in range(F):
            gv = g[j]
            sb[j] += gv
            sg[j] += gv * (xr[j] - m[j])
    inv_std = np.empty(F, dtype=x2.dtype)
    k_dy = np.empty(F, dtype=x2.dtype)
    k_b = np.empty(F, dtype=x2.dtype)
    k_g = np.empty(F, dtype=x2.dtype)
    for j in range(F):
        inv_std[j] = one / np.sqrt(var[c0 + j] + eps)
        sg[j] *= inv_std[j]
        dbeta[c0 + j] = sb[j]
        dgamma[c0 + j] = sg[j]
        k_dy[j] = gamma[c0 + j] * inv_std[j]
        k_b[j] = sb[j] * inv_count
        k_g[j] = inv_std[j] * sg[j] * inv_count
    for n in range(N):
        xr = x2[n, c0:c1]
        out = dx2[n, c0:c1]
        g = g2[n, c0:c1]
        for j in range(F):  # g into dx first (a no-op copy when g is dx)
            out[j] = g[j]
        for j in range(F):
            out[j] = k_dy[j] * (out[j] - k_b[j] - k_g[j] * (xr[j] - m[j]))


@jit(fastmath=False)
def _feature_scale(x2, scale, shift, shifted, c0, c1, y2):
    """y2 = x2 * scale (+ shift when ``shifted``) for features c0..c1 of (N, D) rows, the
    block's scale and shift in work arrays (:func:`channel_affine`, :func:`channel_scale`;
    see the module docstring on (N, D) inputs)."""
    N = x2.shape[0]
    k = scale[c0:c1].copy()
    d = shift[c0:c1].copy()
    for n in range(N):
        xr = x2[n, c0:c1]
        yr = y2[n, c0:c1]
        if shifted:
            for j in range(c1 - c0):
                yr[j] = xr[j] * k[j] + d[j]
        else:
            for j in range(c1 - c0):
                yr[j] = xr[j] * k[j]


@parallel_kernel(fastmath=FASTMATH_IN_ORDER)
def batchnorm_backward(dy, dc, x, gamma, mean, var, eps, block, code, alpha, act_out, ac, dx, dgamma, dbeta):
    """Gradients of batch norm in training mode, per channel over M = N*S values.

    With g = dy * f'(from ``act_out`` = f(bn(x))) for activation ``code`` (g = dy for
    ACT_IDENTITY, where ``act_out`` is not read):
    dbeta = sum g;  dgamma = sum g * xhat;
    dx = gamma * inv_std / M * (M * g - dbeta - xhat * dgamma),
    with xhat = (x - mean) * inv_std and inv_std = 1 / sqrt(var + eps). g is kept in
    dx until dx overwrites it. For x (N, C, S) with S > 1 ((N, D) inputs take
    :func:`batchnorm_backward_features`). With an activation, dy and act_out may be larger
    arrays holding this output's channels from ``dc`` and ``ac`` on (a ``Concat`` block's
    gradient and output); with ACT_IDENTITY dy is read from channel 0 (``dc`` is not read).
    """
    N, C, S = x.shape
    zero = typed(x, 0.0)
    one = typed(x, 1.0)
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        for c in range(c0, c1):
            dbeta[c] = zero
            dgamma[c] = zero
        if code == ACT_IDENTITY:
            for n in range(N):
                _sums_row(dy, x, mean, n, c0, c1, dgamma, dbeta)
        else:
            for n in range(N):
                if code != GRADIENT_IN_DX:
                    _gradient_in(dy, dc, act_out, ac, n, c0, c1, code, alpha, dx)
                _sums_row(dx, x, mean, n, c0, c1, dgamma, dbeta)
        for c in range(c0, c1):
            dgamma[c] *= one / np.sqrt(var[c] + eps)
        if code == ACT_IDENTITY:
            _dx_block(dy, x, gamma, mean, var, eps, c0, c1, dgamma, dbeta, dx)
        else:
            _dx_block(dx, x, gamma, mean, var, eps, c0, c1, dgamma, dbeta, dx)


@parallel_kernel
def batchnorm_backward_features(dy, x, gamma, mean, var, eps, block, code, alpha, act_out, dx, dgamma, dbeta):
    """:func:`batchnorm_backward` for (N, D) inputs seen as (N, D, 1) (a Dense layer's), through
    :func:`_feature_grads`: g = dy for ACT_IDENTITY; for any other ``code`` dx already holds
    g = dy * f' (the caller ran the activation's backward kernel into it, which is faster on
    rows of features than a pass per block; ``act_out`` and ``alpha`` are not read). A
    kernel of its own, so that a network compiles only the layout it uses."""
    N, C = x.shape[0], x.shape[1]
    blocks = (C + block - 1) // block
    for b in prange(blocks):
        c0 = b * block
        c1 = min(C, c0 + block)
        g2 = dy.reshape(N, C) if code == ACT_IDENTITY else dx.reshape(N, C)
        x2, dx2 = x.reshape(N, C), dx.reshape(N, C)
        _feature_grads(g2, x2, gamma, mean, var, eps, c0, c1, dx2, dgamma, dbeta)
