"""Index tables that turn a strided copy over an image plane into one flat loop.

A strided convolution's data movement (the polyphase split, its adjoint, im2col's columns
and col2im's scatter) copies between an image plane and a smaller plane that reads every
SH-th row and SW-th column. Written as loops over rows, the inner loop is a few elements
long (7 on a 7x7 output), and its setup costs more than the copy. The same copy written
through a table of flat indices, computed once per call, is one loop over the whole plane:

    dst[q] = src[table[q]]   (0 where table[q] < 0, a padding position)

Every table entry is a flat index into one (H, W) plane (or, for :func:`merge_sources`,
into one image's stack of phase planes), -1 where the position lies in the zero padding.
"""

import numpy as np

from ..._config import jit


@jit(inline="always")
def merge_sources(H, W, SH, SW, PH, PW, QH, QW, C, A, B):
    """(H*W,) int64: entry h*W + w = ((pi*QW + qi)*C)*A*B + a*B + b, where pixel (h, w) sits
    in the polyphase split (SH*a + pi = h + PH, SW*b + qi = w + PW), as an offset into one
    image's (QH*QW*C, A, B) phase planes from its channel 0; -1 where no kept phase holds it."""
    table = np.empty(H * W, dtype=np.int64)
    for h in range(H):
        a = (h + PH) // SH
        pi = h + PH - SH * a
        for w in range(W):
            b = (w + PW) // SW
            qi = w + PW - SW * b
            inside = pi < QH and a < A and qi < QW and b < B
            table[h * W + w] = ((pi * QW + qi) * C * A + a) * B + b if inside else -1
    return table


@jit(inline="always")
def window_sources(H, W, KH, KW, SH, SW, PH, PW, OH, OW):
    """(KH*KW, OH*OW) int64: entry [kh*KW + kw, i*OW + j] = (i*SH + kh - PH)*W + j*SW + kw - PW,
    the pixel of an (H, W) plane that tap (kh, kw) of output (i, j) reads, or -1 in the
    padding. The polyphase split's table is the same one: phase (pi, qi) holds at (a, b) the
    pixel that tap (pi, qi) of output (a, b) reads, so it is ``window_sources(H, W, QH, QW,
    SH, SW, PH, PW, A, B)``."""
    table = np.empty((KH * KW, OH * OW), dtype=np.int64)
    for kh in range(KH):
        for kw in range(KW):
            row = table[kh * KW + kw]
            for i in range(OH):
                h = i * SH + kh - PH
                for j in range(OW):
                    w = j * SW + kw - PW
                    row[i * OW + j] = h * W + w if 0 <= h < H and 0 <= w < W else -1
    return table


@jit(inline="always")
def gather_plane(src, table, zero, dst):
    """dst[q] = src[table[q]], or ``zero`` where table[q] < 0; src and dst flat. Every
    position loads (from src[0] where table[q] < 0) so that the loop has no branch."""
    if src.size == 0:
        for q in range(table.size):
            dst[q] = zero
        return
    for q in range(table.size):
        s = table[q]
        value = src[max(s, 0)]
        dst[q] = value if s >= 0 else zero


@jit(inline="always")
def scatter_add_plane(src, table, dst):
    """dst[table[q]] += src[q] for every q with table[q] >= 0, in increasing q; src and dst
    flat, no two q of one call with the same table entry."""
    for q in range(table.size):
        s = table[q]
        if s >= 0:
            dst[s] += src[q]
