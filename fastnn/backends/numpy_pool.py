"""The NumPy reference for pooling ops: max, average and Lp pooling, forward and backward.

Plain NumPy loops over the window offsets. Arrays are NCHW; every op returns the dtype
it was given and never modifies its inputs. ``size``, ``stride`` and ``pad`` take an
int or an (h, w) pair; ``stride=None`` means ``stride = size``; OH, OW as for a
convolution (:mod:`~fastnn.backends.numpy_conv`).
"""

from __future__ import annotations

import numpy as np

from .conv_shapes import native
from .fused_activation import fused_activation_grad
from .pool_shapes import (
    check_argmax,
    check_norm_order,
    lppool_backward_inputs,
    pool_backward_geometry,
    pool_forward_geometry,
)
from .windows import route_to_argmax, window_slices


def _plane_index(g, kh, kw):
    """(OH, OW) flat index into the H*W plane of window offset (kh, kw), and whether it is real."""
    ih = np.arange(g.OH) * g.SH + kh - g.PH
    iw = np.arange(g.OW) * g.SW + kw - g.PW
    real = ((ih >= 0) & (ih < g.H))[:, None] & ((iw >= 0) & (iw < g.W))[None, :]
    return ih[:, None] * g.W + iw[None, :], real


class NumpyPoolOps:
    """Reference pooling ops: maxpool2d, avgpool2d, lppool2d and their backward passes."""

    def maxpool2d(self, x, size, stride=None, pad=0):
        """Max over each window: y[n, c, oh, ow] = max_{i, j} xpad[n, c, oh*SH + i, ow*SW + j].

        x (N, C, H, W) -> (y, argmax), both (N, C, OH, OW); padding is -inf (it never
        wins), stride defaults to size, pad must be smaller than size.
        argmax (int64) is the flat index h*W + w of the winner in its (H, W) plane:
        the first maximum in row-major window order; a NaN beats every number.
        """
        x, g = pool_forward_geometry("maxpool2d", x, size, stride, pad)
        xp = np.pad(x, [(0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)], constant_values=-np.inf)
        best = np.full((g.N, g.C, g.OH, g.OW), -np.inf, dtype=x.dtype)
        argmax = np.full((g.N, g.C, g.OH, g.OW), -1, dtype=np.int64)
        for kh in range(g.KH):
            for kw in range(g.KW):
                rows, cols = window_slices(g, kh, kw)
                v = xp[:, :, rows, cols]
                index, real = _plane_index(g, kh, kw)
                wins = real & ((argmax < 0) | (v > best) | (np.isnan(v) & ~np.isnan(best)))
                best = np.where(wins, v, best)
                argmax = np.where(wins, index, argmax)
        return best, argmax

    def maxpool2d_backward(self, dy, argmax, x_shape, size, stride=None, pad=0):
        """Route each dy to its window's maximum: dx[n, c].flat[argmax[n, c, oh, ow]] += dy[n, c, oh, ow].

        dy, argmax (N, C, OH, OW) -> dx (x_shape); overlapping windows accumulate.
        """
        dy, x_shape, g = pool_backward_geometry("maxpool2d_backward", dy, x_shape, size, stride, pad)
        argmax = native(argmax)
        check_argmax("maxpool2d_backward", argmax, g)
        return route_to_argmax(dy, argmax, x_shape)

    def avgpool2d(self, x, size, stride=None, pad=0):
        """Mean over each window: y[n, c, oh, ow] = sum_{i, j} xpad[n, c, oh*SH + i, ow*SW + j] / (KH*KW).

        x (N, C, H, W) -> (N, C, OH, OW); padding counts as zeros (the divisor is always
        KH*KW), stride defaults to size, pad must be smaller than size.
        """
        x, g = pool_forward_geometry("avgpool2d", x, size, stride, pad)
        xp = np.pad(x, [(0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)])
        total = np.zeros((g.N, g.C, g.OH, g.OW), dtype=x.dtype)
        for kh in range(g.KH):
            for kw in range(g.KW):
                rows, cols = window_slices(g, kh, kw)
                total += xp[:, :, rows, cols]
        return total / x.dtype.type(g.KH * g.KW)

    def avgpool2d_backward(
        self, dy, x_shape, size, stride=None, pad=0, activation=None, act_out=None, alpha=0.0
    ):
        """dx[n, c, h, w] = sum of dy[n, c, oh, ow] / (KH*KW) over the windows holding (h, w).

        dy (N, C, OH, OW) -> dx (x_shape); overlapping windows accumulate. ``activation``
        with ``act_out`` (its output, the pooling's input x, of x_shape; ``alpha`` leaky
        ReLU's slope): returns dx * f'(.) instead, the gradient through the activation
        before the pooling, as ``<activation>_backward(dx, act_out)`` gives it.
        """
        dy, x_shape, g = pool_backward_geometry("avgpool2d_backward", dy, x_shape, size, stride, pad)
        activation, act_out, alpha = fused_activation_grad(
            "avgpool2d_backward", dy, None, activation, act_out, alpha, shape=x_shape
        )
        return self._activation_grad(self._avgpool_backward(dy, g), act_out, activation, alpha)

    def _avgpool_backward(self, dy, g):
        """avgpool2d_backward's dx for checked dy and geometry g."""
        share = dy / dy.dtype.type(g.KH * g.KW)
        dxp = np.zeros((g.N, g.C, g.H + 2 * g.PH, g.W + 2 * g.PW), dtype=dy.dtype)
        for kh in range(g.KH):
            for kw in range(g.KW):
                rows, cols = window_slices(g, kh, kw)
                dxp[:, :, rows, cols] += share
        return np.ascontiguousarray(dxp[:, :, g.PH : g.PH + g.H, g.PW : g.PW + g.W])

    def lppool2d(self, x, size, stride=None, pad=0, p=2):
        """The p-norm of each window: y[n, c, oh, ow] = (sum_{i, j} |xpad[n, c, oh*SH+i, ow*SW+j]|^p)^(1/p).

        x (N, C, H, W) -> (N, C, OH, OW); p a finite number >= 1 (p = 2: Nielsen's L2
        pooling, the root of the sum of squares); padding counts as zeros, stride
        defaults to size, pad must be smaller than size. As ONNX's LpPool, and as
        PyTorch's lp_pool2d where the two agree (p = 2, any even p, or x >= 0).
        """
        x, g = pool_forward_geometry("lppool2d", x, size, stride, pad)
        p = check_norm_order("lppool2d", p)
        xp = np.pad(x, [(0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)])
        total = np.zeros((g.N, g.C, g.OH, g.OW), dtype=x.dtype)
        for kh in range(g.KH):
            for kw in range(g.KW):
                rows, cols = window_slices(g, kh, kw)
                total += np.abs(xp[:, :, rows, cols]) ** x.dtype.type(p)
        return total ** x.dtype.type(1.0 / p)

    def lppool2d_backward(self, dy, x, y, size, stride=None, pad=0, p=2):
        """dx[n, c, h, w] = sum over the windows holding (h, w) of dy * sign(x) * (|x| / y)^(p-1).

        That is dy * x / y for p = 2. dy, y (N, C, OH, OW) (y: lppool2d's output for x),
        x (N, C, H, W) -> dx like x; overlapping windows accumulate. A window whose norm
        y is 0 (all zeros) passes no gradient: the norm has no derivative there, and 0
        is its subgradient of least norm (PyTorch's lp_pool2d gives 0 there too).
        """
        dy, x, y, g, p = lppool_backward_inputs("lppool2d_backward", dy, x, y, size, stride, pad, p)
        zero_norm = y == 0
        norm = np.where(zero_norm, x.dtype.type(1), y)  # any nonzero: those windows get no gradient
        dy = np.where(zero_norm, x.dtype.type(0), dy)
        xp = np.pad(x, [(0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)])
        dxp = np.zeros(xp.shape, dtype=x.dtype)
        for kh in range(g.KH):
            for kw in range(g.KW):
                rows, cols = window_slices(g, kh, kw)
                v = xp[:, :, rows, cols]
                dxp[:, :, rows, cols] += dy * np.sign(v) * (np.abs(v) / norm) ** x.dtype.type(p - 1)
        return np.ascontiguousarray(dxp[:, :, g.PH : g.PH + g.H, g.PW : g.PW + g.W])


__all__ = ["NumpyPoolOps"]
