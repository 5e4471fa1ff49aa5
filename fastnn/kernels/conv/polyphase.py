"""A strided convolution as a stride-1 one: the polyphase split of its input.

A convolution with stride (SH, SW), kernel (KH, KW) and padding (PH, PW) reads input row
``SH*i + kh - PH`` for output row i. Write the tap as ``kh = SH*d + p`` (p = kh mod SH,
d = kh div SH): it reads phase p of the rows, ``P_p[a] = xpad[SH*a + p]``, at a = i + d,
which is a stride-1 tap. So with the phases stacked as channels,

    y = conv_stride1(P, W'),   P[n, (p, q, c), a, b] = xpad[n, c, SH*a + p, SW*b + q],
    W'[f, (p, q, c), d, e] = W[f, c, SH*d + p, SW*e + q]  (0 where SH*d + p >= KH or SW*e + q >= KW),

a valid (unpadded) stride-1 convolution with kernel (ceil(KH/SH), ceil(KW/SW)) over
min(KH, SH) * min(KW, SW) * C channels (phases no tap reads are left out: a 1x1 stride-2
convolution keeps one phase, the subsampled input). P has OH + ceil(KH/SH) - 1 rows and
OW + ceil(KW/SW) - 1 columns. The stride-1 direct kernels (:mod:`.direct`,
:mod:`.direct_backward`) then run on it. The forward pass and the weight gradients skip
W''s zero taps (:func:`phase_taps` lists the others, and the direct kernels sum over those
alone), so they do the convolution's own multiply-adds; the backward-data pass still runs
over all of W''s taps (16/9 of them for 3x3 stride 2, 36/25 for 5x5 stride 2, 81/49 for
7x7 stride 3, none extra for 3x3 stride 3 or 1x1). Backward: dW is read back out of the
stride-1 dW' (whose zero taps are left at 0), and every input pixel sits in exactly
one phase entry, so dx is a gather of dP (:func:`phase_merge`).

Channel order of P and W': ``(pi * QW + qi) * C + c`` for the phase (pi, qi), pi < QH =
min(KH, SH), qi < QW = min(KW, SW).
"""

import numpy as np
from numba import prange

from ..._config import parallel_kernel
from .._scalars import typed
from .._simd import wide_vectors
from .gather import gather_plane, merge_sources, window_sources


@parallel_kernel
def phase_split(x, SH, SW, PH, PW, QW, P):
    """P[n, (pi*QW + qi)*C + c, a, b] = x[n, c, SH*a + pi - PH, SW*b + qi - PW], 0 outside x.

    x (N, C, H, W); P (N, QH*QW*C, A, B). Every element of P is written. Parallel over P's
    planes, each one flat loop through a table of :func:`~.gather.window_sources` (phase (pi, qi)
    is tap (pi, qi) of a QH x QW window).
    """
    N, C, H, W = x.shape
    CQ, A, B = P.shape[1], P.shape[2], P.shape[3]
    QH = CQ // C // QW
    sources = window_sources(H, W, QH, QW, SH, SW, PH, PW, A, B)
    zero = typed(P, 0.0)
    for plane in prange(N * CQ):
        wide_vectors()
        n = plane // CQ
        k = plane - n * CQ
        phase = k // C
        c = k - phase * C
        gather_plane(x[n, c].reshape(H * W), sources[phase], zero, P[n, k].reshape(A * B))


@parallel_kernel
def phase_merge(dP, SH, SW, PH, PW, QW, dx):
    """The adjoint of :func:`phase_split`, a gather: dx[n, c, h, w] = dP[n, (pi*QW + qi)*C + c,
    a, b] for SH*a + pi = h + PH and SW*b + qi = w + PW when that entry exists, else 0.

    dP (N, QH*QW*C, A, B); dx (N, C, H, W), every element written. Parallel over dx's planes,
    each one flat loop through :func:`~.gather.merge_sources`' table.
    """
    N, C, H, W = dx.shape
    CQ, A, B = dP.shape[1], dP.shape[2], dP.shape[3]
    QH = CQ // C // QW
    sources = merge_sources(H, W, SH, SW, PH, PW, QH, QW, C, A, B)
    zero = typed(dx, 0.0)
    for plane in prange(N * C):
        wide_vectors()
        n = plane // C
        c = plane - n * C
        stack = dP[n].reshape(CQ * A * B)[c * A * B :]
        gather_plane(stack, sources, zero, dx[n, c].reshape(H * W))


def phase_counts(KH: int, KW: int, SH: int, SW: int) -> tuple[int, int, int, int]:
    """(QH, QW, KHq, KWq): the phases a tap reads, min(K, S) per axis, and the stride-1
    kernel's size, ceil(K / S) per axis."""
    return min(KH, SH), min(KW, SW), -(-KH // SH), -(-KW // SW)


def phase_weights(W: np.ndarray, SH: int, SW: int) -> np.ndarray:
    """W (F, C, KH, KW) -> W' (F, QH*QW*C, KHq, KWq): W'[f, (pi*QW + qi)*C + c, d, e] =
    W[f, c, SH*d + pi, SW*e + qi], 0 where that tap is outside W."""
    F, C, KH, KW = W.shape
    QH, QW, KHq, KWq = phase_counts(KH, KW, SH, SW)
    Wq = np.zeros((F, QH, QW, C, KHq, KWq), dtype=W.dtype)
    for pi in range(QH):
        for qi in range(QW):
            taps = W[:, :, pi::SH, qi::SW]
            Wq[:, pi, qi, :, : taps.shape[2], : taps.shape[3]] = taps
    return Wq.reshape(F, QH * QW * C, KHq, KWq)


def phase_weight_grad(dWq: np.ndarray, KH: int, KW: int, SH: int, SW: int, dW: np.ndarray) -> None:
    """The gradient of :func:`phase_weights`, written into dW (F, C, KH, KW): each tap of W
    is one entry of W', so dW[f, c, SH*d + pi, SW*e + qi] = dWq[f, (pi*QW + qi)*C + c, d, e]."""
    F, C = dW.shape[0], dW.shape[1]
    QH, QW, KHq, KWq = phase_counts(KH, KW, SH, SW)
    grid = dWq.reshape(F, QH, QW, C, KHq, KWq)
    for pi in range(QH):
        for qi in range(QW):
            target = dW[:, :, pi::SH, qi::SW]
            target[...] = grid[:, pi, qi, :, : target.shape[2], : target.shape[3]]


def phase_taps(C: int, KH: int, KW: int, SH: int, SW: int) -> np.ndarray:
    """The taps t = ((pi*QW + qi)*C + c)*KHq*KWq + d*KWq + e of W' (:func:`phase_weights`)
    that hold a tap of W, SH*d + pi < KH and SW*e + qi < KW, in increasing order (int64)."""
    QH, QW, KHq, KWq = phase_counts(KH, KW, SH, SW)
    t = np.arange(QH * QW * C * KHq * KWq).reshape(QH, QW, C, KHq, KWq)
    rows = SH * np.arange(KHq)[None, :] + np.arange(QH)[:, None] < KH  # (pi, d)
    cols = SW * np.arange(KWq)[None, :] + np.arange(QW)[:, None] < KW  # (qi, e)
    real = rows[:, None, None, :, None] & cols[None, :, None, None, :]
    return t[np.broadcast_to(real, t.shape)].astype(np.int64)
