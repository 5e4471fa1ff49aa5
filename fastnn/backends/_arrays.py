"""Array plumbing both backends share: contiguous, native-endian views and copies.

The kernels index raw memory, so the Numba backend hands them C-contiguous,
native-endian arrays (:func:`contiguous`, :func:`flat`, :func:`rows`); every op of
either backend that returns its input's values returns a :func:`native_copy`.
"""

from __future__ import annotations

import numpy as np


def contiguous(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, native-endian view or copy (kernels index raw memory)."""
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return np.ascontiguousarray(x)


def flat(x: np.ndarray) -> np.ndarray:
    return contiguous(x).reshape(-1)


def rows(x: np.ndarray) -> np.ndarray:
    """x (..., C) as a contiguous (rows, C) array."""
    x = contiguous(x)
    return x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x


def channel_window(a: np.ndarray):
    """``a`` (N, C, ...) as channels ``start`` .. ``start`` + C of a C-contiguous, native-endian
    (N, Ctot, S) array ``full`` (S the product of a's trailing axes): (full, start), or None
    when ``a`` is not laid out so (a C-contiguous ``a`` is its own window, start 0).

    A slice ``big[:, start:stop]`` of a C-contiguous (N, Ctot, H, W) array, such as a
    ``Concat`` block's output or its gradient, is one: a kernel given (full, start) reads or
    writes the slice where it lies, with no copy.
    """
    if a.ndim < 3 or not a.dtype.isnative:
        return None
    N, C = a.shape[0], a.shape[1]
    S = int(np.prod(a.shape[2:]))
    if a.flags.c_contiguous:
        return a.reshape(N, C, S), 0
    item = a.itemsize
    step = item
    for size, stride in zip(reversed(a.shape[1:]), reversed(a.strides[1:])):
        if size > 1 and stride != step:
            return None
        step *= size
    plane = S * item
    owner = a.base
    if not isinstance(owner, np.ndarray) or not owner.flags.c_contiguous or owner.dtype != a.dtype:
        return None
    if N < 2 or C * S == 0 or a.strides[0] % plane or a.strides[0] < C * plane:
        return None
    total = a.strides[0] // plane
    offset = a.ctypes.data - owner.ctypes.data
    if offset < 0 or offset % plane:
        return None
    start = (offset // plane) % total
    first = offset // item - start * S
    if first + N * total * S > owner.size:
        return None
    full = owner.reshape(-1)[first : first + N * total * S].reshape(N, total, S)
    return full, int(start)


def native_copy(x):
    """A C-contiguous, native-endian copy of x (what every op returns)."""
    return np.array(x, dtype=x.dtype.newbyteorder("="), order="C", copy=True)


__all__ = ["channel_window", "contiguous", "flat", "native_copy", "rows"]
