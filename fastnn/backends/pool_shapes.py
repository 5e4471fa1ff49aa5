"""Validation and shape arithmetic of the pooling ops, shared by both backends.

Every check raises with the op's name first (``where``), so both backends fail
with the same message for the same bad call. The conv helpers it builds on
(pairs, geometry, dy and x_shape checks) are in :mod:`~fastnn.backends.conv_shapes`.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_same_dtype
from .conv_shapes import (
    Geometry,
    check_dy,
    check_x_shape,
    checked_images,
    geometry,
    kernel_pair,
    native,
    pad_pair,
)


def pool_geometry(where: str, x_shape, size, stride, pad) -> Geometry:
    """Pooling geometry; ``stride=None`` means ``stride = size``; pad must be < size."""
    kh, kw = kernel_pair(where, "size", size)
    stride = (kh, kw) if stride is None else stride
    ph, pw = pad_pair(where, pad)
    if ph >= kh or pw >= kw:
        raise ValueError(
            f"{where}: pad must be smaller than the window size, got pad {pad!r} for size {size!r}"
        )
    return geometry(where, x_shape, (kh, kw), stride, pad)


def check_argmax(where: str, argmax, g: Geometry, indices: bool = True) -> None:
    """argmax must be an int64 array (N, C, OH, OW) of indices into the H*W plane.

    ``indices=False`` checks the type and shape only, for a kernel that counts the indices
    outside the plane itself (then :func:`argmax_outside_plane` raises the error)."""
    if not isinstance(argmax, np.ndarray) or argmax.dtype != np.int64:
        kind = argmax.dtype if isinstance(argmax, np.ndarray) else type(argmax).__name__
        raise TypeError(f"{where}: expected argmax as an int64 array, got {kind}")
    if argmax.shape != (g.N, g.C, g.OH, g.OW):
        raise ValueError(f"{where}: expected argmax of shape {(g.N, g.C, g.OH, g.OW)}, got {argmax.shape}")
    if indices and argmax.size and (argmax.min() < 0 or argmax.max() >= g.H * g.W):
        raise argmax_outside_plane(where, argmax, g)


def argmax_outside_plane(where: str, argmax, g: Geometry) -> ValueError:
    """The error for an argmax with indices outside the H*W plane."""
    return ValueError(
        f"{where}: argmax holds indices outside the H*W = {g.H * g.W} plane [{argmax.min()}, {argmax.max()}]"
    )


def check_norm_order(where: str, p) -> float:
    """The order p of an Lp pooling as a float: a finite real number >= 1 (a norm)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: expected p as a number >= 1, got {type(p).__name__}")
    if not np.isfinite(p) or p < 1:
        raise ValueError(f"{where}: expected p as a finite number >= 1, got {p!r}")
    return float(p)


def pool_forward_geometry(where: str, x, size, stride, pad):
    """A pooling op's checked input and geometry: (native x, Geometry)."""
    x = checked_images(where, x)
    return x, pool_geometry(where, x.shape, size, stride, pad)


def pool_backward_geometry(where: str, dy, x_shape, size, stride, pad):
    """A pooling backward op's checked dy (N, C, OH, OW), x_shape and geometry."""
    dy = native(dy)
    check_same_dtype(where, dy=dy)
    x_shape = check_x_shape(where, x_shape)
    g = pool_geometry(where, x_shape, size, stride, pad)
    check_dy(where, dy, (g.N, g.C, g.OH, g.OW))
    return dy, x_shape, g


def lppool_backward_inputs(where: str, dy, x, y, size, stride, pad, p):
    """Lp pooling backward's checked (dy, x, y, Geometry, p): native arrays of one float
    dtype, x (N, C, H, W), dy and y (N, C, OH, OW)."""
    x, _ = pool_forward_geometry(where, x, size, stride, pad)
    dy, _, g = pool_backward_geometry(where, dy, x.shape, size, stride, pad)
    y = native(y)
    check_same_dtype(where, dy=dy, x=x, y=y)
    if y.shape != dy.shape:
        raise ValueError(f"{where}: expected y (the forward's output) of shape {dy.shape}, got {y.shape}")
    return dy, x, y, g, check_norm_order(where, p)
