"""Sliding-window helpers the NumPy references of convolution and pooling share."""

from __future__ import annotations

import numpy as np


def window_slices(g, kh, kw):
    """Slices of the padded input that window offset (kh, kw) sees for every output."""
    return (slice(kh, kh + g.SH * (g.OH - 1) + 1, g.SH), slice(kw, kw + g.SW * (g.OW - 1) + 1, g.SW))


def route_to_argmax(dy, argmax, x_shape):
    """dx (x_shape) with dx[n, c].flat[argmax[n, c, i, j]] += dy[n, c, i, j], zeros elsewhere."""
    N, C, H, W = x_shape
    dx = np.zeros((N * C, H * W), dtype=dy.dtype)
    planes = np.repeat(np.arange(N * C), argmax.shape[2] * argmax.shape[3])
    np.add.at(dx, (planes, argmax.reshape(-1)), dy.reshape(-1))
    return dx.reshape(x_shape)


__all__ = ["route_to_argmax", "window_slices"]
