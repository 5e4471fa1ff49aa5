"""Numba-backed pooling ops: validate like the reference, allocate, call kernels.

Each method keeps the signature, defaults and formulas of
:class:`~fastnn.backends.numpy_pool.NumpyPoolOps` and validates through the same
helpers (:mod:`fastnn.backends.pool_shapes`), so both backends reject a bad call with
the same message. The kernels are in :mod:`fastnn.kernels.pool`.
"""

from __future__ import annotations

import numba
import numpy as np

from ..kernels import pool as pool_kernels
from ..kernels import pool_3x3_s2
from ..kernels.activations import ACTIVATION_CODES
from ._arrays import contiguous as _c
from .conv_shapes import native
from .fused_activation import fused_activation_grad
from .pool_shapes import (
    argmax_outside_plane,
    check_argmax,
    check_norm_order,
    lppool_backward_inputs,
    pool_backward_geometry,
    pool_forward_geometry,
)
from .scratch import scratch as _scratch

#: Padded elements per stack of planes in that kernel: small planes are stacked so that its
#: passes run long (one plane at a time, (100, 120, 7, 7) spent most of its time per plane).
WIDE_STACK = 4096


def wide_stack(planes: int, H: int, W: int, PH: int, PW: int) -> int:
    """Planes per stack of ``maxpool_forward_wide``: as many padded planes as fit
    WIDE_STACK elements, at least one, at most all of them."""
    return max(1, min(planes, WIDE_STACK // ((H + 2 * PH) * (W + 2 * PW))))


#: The page size the rows of :func:`thread_rows` start on.
PAGE_BYTES = 4096


def thread_rows(name: str, slots: int, length: int, dtype) -> np.ndarray:
    """(slots, n) work rows of ``dtype``, n >= ``length``, each row starting on a page of its
    own (a reused :func:`~fastnn.backends.scratch.scratch` buffer). ``maxpool_forward_rows``
    writes its thread's row for every output row: with rows 48 values apart it ran about
    twice as long as with rows a page apart (threads' stores to nearby lines)."""
    itemsize = np.dtype(dtype).itemsize
    per_page = PAGE_BYTES // itemsize
    n = -(-length // per_page) * per_page
    buffer = _scratch(name, (slots * n + per_page,), dtype)
    skip = (-buffer.ctypes.data % PAGE_BYTES) // itemsize
    return buffer[skip : skip + slots * n].reshape(slots, n)


def _pool_2x2(g) -> bool:
    """Non-overlapping 2x2 windows, stride 2, no padding: maxpool forward's fast path, a
    kernel for this window alone (no script times it against the general kernel); with H
    and W even, the two-pass kernel, which ``python benchmarks/bench_fast_paths.py``
    times against the 2x2 one on (100, 16, 28, 28)."""
    return g.KH == 2 and g.KW == 2 and g.SH == 2 and g.SW == 2 and g.PH == 0 and g.PW == 0


#: Outputs per group of planes of ``maxpool_forward_3x3_same`` (its parallel work item).
SAME_3X3_GROUP = 4096


def same_3x3_group(H: int, W: int) -> int:
    """Planes per group of ``maxpool_forward_3x3_same`` (and of ``maxpool_forward_3x3_s2``)
    on (H, W) planes: about SAME_3X3_GROUP input values, at least one plane."""
    return max(1, SAME_3X3_GROUP // (H * W))


def _pool_3x3_same(g) -> bool:
    """3x3 windows at stride 1 with padding 1 (GoogLeNet's pooling branch): the
    ``maxpool_forward_3x3_same`` kernel, which ``python benchmarks/bench_fast_paths.py``
    times against ``maxpool_forward_wide`` on Inception's planes."""
    return (g.KH, g.KW, g.SH, g.SW, g.PH, g.PW) == (3, 3, 1, 1, 1, 1)


def _pool_3x3_s2(g) -> bool:
    """3x3 windows at stride 2 (AlexNet's and GoogLeNet's overlapping pooling), any
    padding, planes of fewer than 2**31 values: the ``maxpool_forward_3x3_s2`` kernel
    (only the windows needed, in whole vectors), which ``python
    benchmarks/bench_fast_paths.py`` times against ``maxpool_forward_wide`` on Inception's
    and the 7x7 stem's planes."""
    return (g.KH, g.KW, g.SH, g.SW) == (3, 3, 2, 2) and g.H * g.W < pool_kernels.INT32_PLANE


def _pool_wide(g) -> bool:
    """Max pooling through ``maxpool_forward_wide`` (every stride-1 window of a stack of
    planes), for the windows the two 3x3 kernels above do not take: at stride 1, and
    for 3x3 windows at strides up to 2 in one direction, where its unrolled taps more than
    pay for the 2 to 4 times as many windows as needed. Other strides go to
    ``maxpool_forward_rows``, which takes only the windows needed. ``python
    benchmarks/bench_fast_paths.py`` times the two kernels on 3x3 windows at strides 1 and 2."""
    if g.SH == 1 and g.SW == 1:
        return True
    return g.KH == 3 and g.KW == 3 and g.SH <= 2 and g.SW <= 2


class NumbaPoolOps:
    """Pooling ops on Numba kernels; see NumpyPoolOps for the formulas."""

    def maxpool2d(self, x, size, stride=None, pad=0):
        """Max over each window: y[n, c, oh, ow] = max_{i, j} xpad[n, c, oh*SH + i, ow*SW + j].

        x (N, C, H, W) -> (y, argmax), both (N, C, OH, OW); padding is -inf (it never
        wins), stride defaults to size, pad must be smaller than size.
        argmax (int64) is the flat index h*W + w of the winner in its (H, W) plane:
        the first maximum in row-major window order; a NaN beats every number.
        """
        x, g = pool_forward_geometry("maxpool2d", x, size, stride, pad)
        y = np.empty((g.N, g.C, g.OH, g.OW), dtype=x.dtype)
        argmax = np.empty(y.shape, dtype=np.int64)
        if _pool_2x2(g):
            if g.H % 2 == 0 and g.W % 2 == 0:
                pool_kernels.maxpool_forward_2x2_even(y.size * 4, _c(x), y, argmax)
            else:
                pool_kernels.maxpool_forward_2x2(y.size * 4, _c(x), y, argmax)
            return y, argmax
        if _pool_3x3_same(g) and g.N * g.C > 0:
            slots = max(1, numba.get_num_threads())
            first, last = pool_kernels.edge_columns(g.H, g.W)
            pool_kernels.maxpool_forward_3x3_same(
                y.size * 9,
                _c(x),
                same_3x3_group(g.H, g.W),
                _scratch("pool_same", (slots, pool_kernels.same_3x3_scratch(g.H, g.W)), x.dtype),
                first,
                last,
                y,
                argmax,
            )
            return y, argmax
        if _pool_3x3_s2(g) and g.N * g.C > 0:
            slots = max(1, numba.get_num_threads())
            length = pool_3x3_s2.scratch_3x3_s2(g.W, g.PW, g.OH, x.dtype)
            pool_3x3_s2.maxpool_forward_3x3_s2(
                y.size * 9,
                _c(x),
                g.PH,
                g.PW,
                same_3x3_group(g.H, g.W),
                _scratch("pool3_m", (slots, length), x.dtype),
                _scratch("pool3_am", (slots, length), np.int32),
                y,
                argmax,
            )
            return y, argmax
        if _pool_wide(g):
            slots = max(1, numba.get_num_threads())
            stack = wide_stack(g.N * g.C, g.H, g.W, g.PH, g.PW)
            plane, wide = pool_kernels.wide_scratch(g.H, g.W, g.KH, g.KW, g.PH, g.PW, stack)
            pool_kernels.maxpool_forward_wide(
                y.size * g.KH * g.KW * g.SH * g.SW,
                _c(x),
                *(g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, stack),
                _scratch("pool_plane", (slots, plane), x.dtype),
                _scratch("pool_best", (slots, wide), x.dtype),
                _scratch("pool_tap", (slots, wide), np.int32),
                y,
                argmax,
            )
            return y, argmax
        slots, row = max(1, numba.get_num_threads()), g.W + 2 * g.PW
        pool_kernels.maxpool_forward_rows(
            y.size * g.KH * g.KW,
            _c(x),
            *(g.KH, g.KW, g.SH, g.SW, g.PH, g.PW),
            thread_rows("pool_rows", slots, row, x.dtype),
            thread_rows("pool_rows_at", slots, row, np.int64),
            y,
            argmax,
        )
        return y, argmax

    def maxpool2d_backward(self, dy, argmax, x_shape, size, stride=None, pad=0):
        """Route each dy to its window's maximum: dx[n, c].flat[argmax[n, c, oh, ow]] += dy[n, c, oh, ow].

        dy, argmax (N, C, OH, OW) -> dx (x_shape); overlapping windows accumulate.
        """
        dy, x_shape, g = pool_backward_geometry("maxpool2d_backward", dy, x_shape, size, stride, pad)
        argmax = native(argmax)
        check_argmax("maxpool2d_backward", argmax, g, indices=False)
        dx = np.empty(x_shape, dtype=dy.dtype)
        if pool_kernels.maxpool_backward(dx.size, _c(dy), _c(argmax), dx):
            raise argmax_outside_plane("maxpool2d_backward", argmax, g)
        return dx

    def avgpool2d(self, x, size, stride=None, pad=0):
        """Mean over each window: y[n, c, oh, ow] = sum_{i, j} xpad[n, c, oh*SH + i, ow*SW + j] / (KH*KW).

        x (N, C, H, W) -> (N, C, OH, OW); padding counts as zeros (the divisor is always
        KH*KW), stride defaults to size, pad must be smaller than size.
        """
        x, g = pool_forward_geometry("avgpool2d", x, size, stride, pad)
        y = np.empty((g.N, g.C, g.OH, g.OW), dtype=x.dtype)
        if _pool_2x2(g):
            pool_kernels.avgpool_forward_2x2(y.size * 4, _c(x), y)
            return y
        pool_kernels.avgpool_forward(y.size * g.KH * g.KW, _c(x), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, y)
        return y

    def avgpool2d_backward(
        self, dy, x_shape, size, stride=None, pad=0, activation=None, act_out=None, alpha=0.0
    ):
        """dx[n, c, h, w] = sum of dy[n, c, oh, ow] / (KH*KW) over the windows holding (h, w).

        dy (N, C, OH, OW) -> dx (x_shape); overlapping windows accumulate. ``activation``
        with ``act_out`` (its output, of x_shape): dx * f'(.), the gradient through the
        activation before the pooling; for 2x2 windows at stride 2 taken in the pooling
        kernel's one pass (the activation op's own scalar code, so the bits of the two ops
        apart), else by the activation's backward op after it.
        """
        dy, x_shape, g = pool_backward_geometry("avgpool2d_backward", dy, x_shape, size, stride, pad)
        activation, act_out, alpha = fused_activation_grad(
            "avgpool2d_backward", dy, None, activation, act_out, alpha, shape=x_shape
        )
        dx = np.empty(x_shape, dtype=dy.dtype)
        if _pool_2x2(g) and activation is not None:
            code = ACTIVATION_CODES[activation]
            y = _c(native(act_out))
            pool_kernels.avgpool_backward_2x2_activation(dx.size, _c(dy), y, code, dy.dtype.type(alpha), dx)
            return dx
        if _pool_2x2(g):
            pool_kernels.avgpool_backward_2x2(dx.size, _c(dy), dx)
        else:
            pool_kernels.avgpool_backward(
                dy.size * g.KH * g.KW, _c(dy), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, dx
            )
        return self._activation_grad(dx, act_out, activation, alpha)

    def lppool2d(self, x, size, stride=None, pad=0, p=2):
        """The p-norm of each window: y[n, c, oh, ow] = (sum_{i, j} |xpad[n, c, oh*SH+i, ow*SW+j]|^p)^(1/p).

        x (N, C, H, W) -> (N, C, OH, OW); p a finite number >= 1 (p = 2: Nielsen's L2
        pooling, the root of the sum of squares); padding counts as zeros, stride
        defaults to size, pad must be smaller than size. As ONNX's LpPool, and as
        PyTorch's lp_pool2d where the two agree (p = 2, any even p, or x >= 0).
        """
        x, g = pool_forward_geometry("lppool2d", x, size, stride, pad)
        p = check_norm_order("lppool2d", p)
        y = np.empty((g.N, g.C, g.OH, g.OW), dtype=x.dtype)
        pool_kernels.lppool_forward(y.size * g.KH * g.KW, _c(x), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, p, y)
        return y

    def lppool2d_backward(self, dy, x, y, size, stride=None, pad=0, p=2):
        """dx[n, c, h, w] = sum over the windows holding (h, w) of dy * sign(x) * (|x| / y)^(p-1).

        That is dy * x / y for p = 2. dy, y (N, C, OH, OW) (y: lppool2d's output for x),
        x (N, C, H, W) -> dx like x; overlapping windows accumulate. A window whose norm
        y is 0 (all zeros) passes no gradient: the norm has no derivative there, and 0
        is its subgradient of least norm (PyTorch's lp_pool2d gives 0 there too).
        """
        dy, x, y, g, p = lppool_backward_inputs("lppool2d_backward", dy, x, y, size, stride, pad, p)
        dx = np.empty(x.shape, dtype=x.dtype)
        pool_kernels.lppool_backward(
            dy.size * g.KH * g.KW, _c(dy), _c(x), _c(y), g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, p, dx
        )
        return dx


__all__ = ["NumbaPoolOps"]
