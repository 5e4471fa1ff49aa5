"""The stride-1 input gradient on planes one vector wide, for few input channels.

dx[c, h, w] = sum over f, kh, kw of Wt[c, f, kh, kw] * dyn[f, h + kh, w + kw]

with dyn the conv-output gradient padded by KH-1-PH rows and KW-1-PW columns (the full
correlation of :func:`~.direct_backward._correlate_item`, Wt the flipped weights). The
forward tiles it otherwise runs take their pixels along the padded rows, junk columns and
all, and every tap of every row, the zero rows of the padding included: on LeNet-5's
6->16 5x5 layer (a 10x10 output, dx 14x14) about 55 % of their multiply-adds read dy. Here an
input row of W <= L columns is one vector (lanes past W computed and dropped), two rows
and eight input channels at a time keep 16 accumulators, and each row takes only the
rows kh of the band that holds dy: per tap, two vector loads of dyn and eight weights
broadcast from :func:`~.direct._pack_weights`' blocks. The sums run over (f, kh, kw) in
the forward tiles' order; the taps left out add exact zeros there, so with finite weights
the two give the same bits (``tests/test_row_correlate.py``).
"""

from ..._config import jit
from .._scalars import typed
from .._simd import lanes, vbroadcast, vfma, vload, vsplat, vstore


def rows_pay(C: int, KH: int, KW: int, W: int, L: int, half_tiles: bool, max_channels: int) -> bool:
    """Whether the stride-1 backward pass runs :func:`correlate_rows` for dx (Python, for
    the op): rows of 13/16 of a vector of L lanes or more, but narrower than one (13 to 15
    float32 columns: the 14x14 planes after an MNIST network's first pooling), a kernel
    larger than 3x3 (whose padding is the larger share of the tiles' work; on 3x3 ones
    the rows gain a few percent, less than their compile costs), at most ``max_channels``
    input channels, and a tile's 16 accumulators fit the registers (not on AVX2's 16).
    Narrower rows leave too many lanes idle, full ones leave the tiles no junk columns,
    and with more channels the tiles win: ``python benchmarks/bench_conv_impl.py --rows``."""
    return (not half_tiles) and 13 * L <= 16 * W and W < L and KH * KW > 9 and C <= max_channels


@jit(refcounts=False)
def correlate_rows(dyn, Hf, Wf, KH, KW, TP, OH, packed, out, dxn):
    """dxn (C, H, W) from dyn (F planes of Hf x Wf, flat, with at least L elements of slack
    after the last) and packed (ceil(C/8), F*KH*KW*8): packed[b, t*8 + k] = Wt[8b + k, t].
    Rows TP .. TP + OH - 1 of each dyn plane hold dy; the others are zero and skipped.
    ``out``: a work array of 16 vectors (the tile's results before they are written)."""
    C, H, W = dxn.shape[0], dxn.shape[1], dxn.shape[2]
    F = dyn.size // (Hf * Wf)
    plane = Hf * Wf
    L = lanes(out)
    zero = vsplat(typed(out, 0.0))
    flat = dxn.reshape(C * H * W)
    for b in range(packed.shape[0]):
        wb = packed[b]
        nc = min(8, C - 8 * b)
        for h0 in range(0, H, 2):
            h1 = min(h0 + 1, H - 1)
            lo = max(0, TP - h1)  # kh from which row h1 reads dy
            hi = min(KH, TP + OH - h0)  # and up to which row h0 does
            a0, a1, a2, a3, a4, a5, a6, a7 = zero, zero, zero, zero, zero, zero, zero, zero
            b0, b1, b2, b3, b4, b5, b6, b7 = zero, zero, zero, zero, zero, zero, zero, zero
            for f in range(F):
                for kh in range(lo, hi):
                    r0 = f * plane + (h0 + kh) * Wf
                    r1 = r0 + (h1 - h0) * Wf
                    t = (f * KH + kh) * KW * 8
                    for kw in range(KW):
                        v = vload(dyn, r0 + kw)
                        u = vload(dyn, r1 + kw)
                        s = vbroadcast(wb, t)
                        a0 = vfma(s, v, a0)
                        b0 = vfma(s, u, b0)
                        s = vbroadcast(wb, t + 1)
                        a1 = vfma(s, v, a1)
                        b1 = vfma(s, u, b1)
                        s = vbroadcast(wb, t + 2)
                        a2 = vfma(s, v, a2)
                        b2 = vfma(s, u, b2)
                        s = vbroadcast(wb, t + 3)
                        a3 = vfma(s, v, a3)
                        b3 = vfma(s, u, b3)
                        s = vbroadcast(wb, t + 4)
                        a4 = vfma(s, v, a4)
                        b4 = vfma(s, u, b4)
                        s = vbroadcast(wb, t + 5)
                        a5 = vfma(s, v, a5)
                        b5 = vfma(s, u, b5)
                        s = vbroadcast(wb, t + 6)
                        a6 = vfma(s, v, a6)
                        b6 = vfma(s, u, b6)
                        s = vbroadcast(wb, t + 7)
                        a7 = vfma(s, v, a7)
                        b7 = vfma(s, u, b7)
                        t += 8
            vstore(out, 0 * L, a0)
            vstore(out, 1 * L, a1)
            vstore(out, 2 * L, a2)
            vstore(out, 3 * L, a3)
            vstore(out, 4 * L, a4)
            vstore(out, 5 * L, a5)
            vstore(out, 6 * L, a6)
            vstore(out, 7 * L, a7)
            vstore(out, 8 * L, b0)
            vstore(out, 9 * L, b1)
            vstore(out, 10 * L, b2)
            vstore(out, 11 * L, b3)
            vstore(out, 12 * L, b4)
            vstore(out, 13 * L, b5)
            vstore(out, 14 * L, b6)
            vstore(out, 15 * L, b7)
            for k in range(nc):
                c = 8 * b + k
                _write_row(out, k * L, flat, (c * H + h0) * W, W, h0 < H - 1, L)
                _write_row(out, (8 + k) * L, flat, (c * H + h1) * W, W, h1 < H - 1, L)


@jit(inline="always")
def _write_row(src, at, dst, to, W, whole, L):
    """dst[to : to + W] = src[at : at + W]: one vector when ``whole`` (its lanes past W
    land on the next row of the plane, written after this one), else element by element."""
    if whole:
        vstore(dst, to, vload(src, at))
    else:
        for w in range(W):
            dst[to + w] = src[at + w]
