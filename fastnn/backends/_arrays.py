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


def native_copy(x):
    """A C-contiguous, native-endian copy of x (what every op returns)."""
    return np.array(x, dtype=x.dtype.newbyteorder("="), order="C", copy=True)


__all__ = ["contiguous", "flat", "native_copy", "rows"]
