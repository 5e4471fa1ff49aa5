"""The NumPy reference for convolution ops.

Plain, readable NumPy in the "Deep Learning from Scratch" style: conv2d is im2col
followed by one matrix product, col2im is a scatter-add. Arrays are NCHW. Every op
returns the dtype it was given and never modifies its inputs. (Pooling:
:mod:`~fastnn.backends.numpy_pool`.)

Shapes: x (N, C, H, W); W (F, C, KH, KW); b (F,); y and dy (N, F, OH, OW) with
OH = (H + 2*PH - KH) // SH + 1 and OW = (W + 2*PW - KW) // SW + 1.
``stride`` and ``pad`` take an int or an (h, w) pair.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_grad_outputs, check_same_dtype
from .conv_shapes import (
    check_dy,
    check_impl,
    check_pool_grad,
    check_x_shape,
    checked_images,
    conv_geometry,
    geometry,
    kernel_pair,
    native,
)
from .fused_activation import fused_activation, fused_activation_grad
from .op_checks import check_residual
from .windows import route_to_argmax, window_slices


def _im2col(x, g):
    xp = np.pad(x, [(0, 0), (0, 0), (g.PH, g.PH), (g.PW, g.PW)])
    col = np.empty((g.N, g.C, g.KH, g.KW, g.OH, g.OW), dtype=x.dtype)
    for kh in range(g.KH):
        for kw in range(g.KW):
            rows, cols = window_slices(g, kh, kw)
            col[:, :, kh, kw] = xp[:, :, rows, cols]
    # (N, C, KH, KW, OH, OW) -> (N, OH, OW, C, KH, KW) -> rows (n, oh, ow), columns (c, kh, kw)
    col = col.transpose(0, 4, 5, 1, 2, 3).reshape(g.N * g.OH * g.OW, g.C * g.KH * g.KW)
    return np.ascontiguousarray(col)


def _col2im(col, g):
    col = col.reshape(g.N, g.OH, g.OW, g.C, g.KH, g.KW).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((g.N, g.C, g.H + 2 * g.PH, g.W + 2 * g.PW), dtype=col.dtype)
    for kh in range(g.KH):
        for kw in range(g.KW):
            rows, cols = window_slices(g, kh, kw)
            xp[:, :, rows, cols] += col[:, :, kh, kw]  # windows of one offset never overlap
    return np.ascontiguousarray(xp[:, :, g.PH : g.PH + g.H, g.PW : g.PW + g.W])


class NumpyConvOps:
    """Reference conv ops: conv2d (also fused with ReLU and 2x2 max pooling), im2col, col2im."""

    def im2col(self, x, kh, kw, stride=1, pad=0):
        """Unfold every KH x KW window of x into a row.

        x (N, C, H, W) -> col (N*OH*OW, C*KH*KW); rows ordered (n, oh, ow), columns
        (c, kh, kw): col[(n*OH + oh)*OW + ow, (c*KH + i)*KW + j] = xpad[n, c, oh*SH + i, ow*SW + j]
        with xpad zero-padded by PH rows and PW columns on each side.
        """
        x = checked_images("im2col", x)
        g = geometry("im2col", x.shape, kernel_pair("im2col", "kernel size", (kh, kw)), stride, pad)
        return _im2col(x, g)

    def col2im(self, col, x_shape, kh, kw, stride=1, pad=0):
        """The adjoint of im2col: scatter-add every row of col back into its window.

        col (N*OH*OW, C*KH*KW) -> x (N, C, H, W): x[n, c, h, w] is the sum of every col
        entry that im2col would have read from x[n, c, h, w] (padding entries are dropped).
        """
        col = native(col)
        check_same_dtype("col2im", col=col)
        x_shape = check_x_shape("col2im", x_shape)
        g = geometry("col2im", x_shape, kernel_pair("col2im", "kernel size", (kh, kw)), stride, pad)
        expected = (g.N * g.OH * g.OW, g.C * g.KH * g.KW)
        if col.shape != expected:
            raise ValueError(
                f"col2im: expected col of shape {expected} for x_shape {x_shape}, got {col.shape}"
            )
        return _col2im(col, g)

    def conv2d(
        self, x, W, b, stride=1, pad=0, impl="auto", relu=False, activation=None, alpha=0.0, residual=None
    ):
        """Cross-correlation: y[n, f, oh, ow] = b[f] + sum_{c, i, j} W[f, c, i, j] * xpad[n, c, oh*SH + i,
        ow*SW + j].

        x (N, C, H, W), W (F, C, KH, KW), b (F,) -> y (N, F, OH, OW), xpad zero-padded.
        ``impl`` ("direct", "im2col" or "auto") picks the algorithm; every choice
        gives the same result. The reference always computes im2col(x) @ W_mat.T + b.
        ``activation`` ("relu", "sigmoid", "tanh" or "leaky_relu" with slope ``alpha``)
        returns f(y) as the activation's op computes it; ``relu=True`` is "relu".
        ``residual`` (an array of y's shape and dtype): f(y + residual) instead, the sum
        rounded to the dtype before f (``add_relu(y, residual)`` for ReLU).
        """
        check_impl("conv2d", impl)
        activation, alpha = fused_activation("conv2d", relu, activation, alpha)
        x, W, b = native(x, W, b)
        g = conv_geometry("conv2d", x, W, stride, pad, b=b)
        F = W.shape[0]
        col = _im2col(x, g)  # (N*OH*OW, C*KH*KW)
        y = col @ W.reshape(F, -1).T + b  # (N*OH*OW, F)
        y = np.ascontiguousarray(y.reshape(g.N, g.OH, g.OW, F).transpose(0, 3, 1, 2))
        if residual is not None:
            return self._with_residual(y, native(check_residual("conv2d", residual, y)), activation, alpha)
        return self._activate(y, activation, alpha)

    def conv2d_relu_maxpool2x2(self, x, W, b, stride=1, pad=0, impl="auto"):
        """2x2 stride-2 max pooling of relu(conv2d(x)): returns (pooled, argmax),
        ``maxpool2d(conv2d(x, W, b, stride, pad, impl, relu=True), 2)``."""
        check_impl("conv2d_relu_maxpool2x2", impl)
        return self.maxpool2d(self.conv2d(x, W, b, stride, pad, impl, relu=True), 2)

    def conv2d_backward(
        self,
        dy,
        x,
        W,
        stride=1,
        pad=0,
        impl="auto",
        relu_out=None,
        input_grad=True,
        pool=None,
        out=None,
        activation=None,
        act_out=None,
        alpha=0.0,
        weight_grad=True,
    ):
        """Gradients of conv2d: returns (dx, dW, db).

        With dy_mat = dy as (N*OH*OW, F) and col = im2col(x):
        db = sum_{n, oh, ow} dy;  dW = (dy_mat.T @ col) as (F, C, KH, KW);
        dx = col2im(dy_mat @ W_mat), W_mat = W as (F, C*KH*KW).
        ``activation`` and ``act_out``: the activation and output of ``conv2d(...,
        activation=...)``; dy is then the gradient of that output, and dy * f'(.) (the
        activation's backward op, from its output) is used in its place.
        ``relu_out=y`` is short for ``activation="relu", act_out=y``.
        ``pool=(argmax, pooled)``: dy is the gradient of a max pooling of relu(conv2d(x))
        with that argmax and output; dy where pooled > 0 (the ReLU's mask at the winners)
        is routed back to the conv output's positions first.
        ``input_grad=False`` skips dx and returns None in its place; ``weight_grad=False``
        (a frozen layer) skips dW and db, returns None for both and leaves ``out`` alone.
        ``out=(dW, db)``: C-contiguous arrays to write dW and db into (and return),
        e.g. a layer's gradient buffers, instead of new ones.
        """
        check_impl("conv2d_backward", impl)
        dy, x, W = native(dy, x, W)
        g = conv_geometry("conv2d_backward", x, W, stride, pad, dy=dy)
        out = check_grad_outputs("conv2d_backward", out, W.shape, (W.shape[0],), x.dtype)
        if pool is not None:
            conv_shape = (g.N, W.shape[0], g.OH, g.OW)
            argmax, pooled = check_pool_grad(
                "conv2d_backward", dy, pool, conv_shape, relu_out, activation, act_out
            )
            dy = route_to_argmax(self.relu_backward(dy, pooled), argmax, conv_shape)
        F = W.shape[0]
        check_dy("conv2d_backward", dy, (g.N, F, g.OH, g.OW))
        if pool is None:
            activation, act_out, alpha = fused_activation_grad(
                "conv2d_backward", dy, relu_out, activation, act_out, alpha
            )
            dy = self._activation_grad(dy, act_out, activation, alpha)
        dy_mat = dy.transpose(0, 2, 3, 1).reshape(-1, F)  # (N*OH*OW, F)
        W_mat = W.reshape(F, -1)
        dx = _col2im(dy_mat @ W_mat, g) if input_grad else None
        if not weight_grad:
            return dx, None, None
        col = _im2col(x, g)
        db = dy_mat.sum(axis=0)
        dW = (dy_mat.T @ col).reshape(W.shape)
        if out is not None:
            out[0][...] = dW
            out[1][...] = db
            dW, db = out
        return dx, dW, db


__all__ = ["NumpyConvOps"]
