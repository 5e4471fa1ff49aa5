"""Random inputs and shapes for the verifier's cases, all drawn from one seeded generator.

Every float array is drawn in float64 and rounded to float32 (:func:`normal`), so one
array serves both dtypes exactly: cast to float32 it loses nothing, and the float64
reference sees the very numbers the float32 kernel sees. Shapes come in two sizes:
small (a few hundred values: the ops' serial builds, edge sizes of 1) and large (tens
of thousands: several blocks and chunks, the parallel builds at their real sizes).
"""

from __future__ import annotations

import numpy as np


def rounded(values) -> np.ndarray:
    """``values`` rounded to float32, held in float64 (exact in both dtypes)."""
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def normal(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    """Standard normal values times ``scale``, rounded to float32 (:func:`rounded`)."""
    return rounded(rng.standard_normal(shape) * scale)


def positive(rng: np.random.Generator, shape, low: float = 0.1, high: float = 2.0) -> np.ndarray:
    """Uniform values in [low, high), rounded to float32: variances, squared-gradient state."""
    return rounded(rng.uniform(low, high, shape))


def pair(rng: np.random.Generator, low: int, high: int):
    """An int, or an (h, w) pair when the two drawn values differ (both forms are legal)."""
    h, w = (int(v) for v in rng.integers(low, high + 1, size=2))
    return h if h == w else (h, w)


def both(value) -> tuple[int, int]:
    """An int or an (h, w) pair as (h, w)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def elementwise_shape(rng: np.random.Generator, large: bool) -> tuple[int, ...]:
    """1 to 4 dimensions; small: up to a few hundred values, large: 40k to 90k (odd sizes)."""
    if large:
        if rng.random() < 0.5:
            return (int(rng.integers(40_000, 90_000)) | 1,)
        return int(rng.integers(20, 60)), int(rng.integers(1_000, 1_500))
    ndim = int(rng.integers(1, 5))
    return tuple(int(v) for v in rng.integers(1, 8, size=ndim))


def matrix_shape(rng: np.random.Generator, large: bool) -> tuple[int, int]:
    """(N, C) rows of a softmax or a loss; large: many rows."""
    if large:
        return int(rng.integers(200, 600)), int(rng.integers(40, 200))
    return int(rng.integers(1, 9)), int(rng.integers(1, 12))


def _extent(rng, out: int, kernel: int, stride: int, pad: int) -> int:
    """An input extent whose output extent is ``out`` (at least 1), with a random remainder."""
    size = (out - 1) * stride + kernel - 2 * pad
    while size < 1:
        size += stride
    return size + int(rng.integers(0, stride))


def conv_geometry(rng: np.random.Generator, large: bool, min_out: int = 1, strides: str = "any") -> dict:
    """A convolution's shapes: N, C, F, H, W, KH, KW, stride and pad (ints or (h, w) pairs).

    Non-square kernels of 1 to 5, pads below the kernel size, output extents of at least
    ``min_out``. ``strides``: "unit" (stride 1: the direct kernels' own path), "strided"
    (1 to 3 in each direction, not both 1) or "any" (stride 1 in half the draws).
    """
    n = int(rng.integers(2, 7) if large else rng.integers(1, 4))
    c = int(rng.integers(2, 7) if large else rng.integers(1, 4))
    f = int(rng.integers(2, 9) if large else rng.integers(1, 5))
    kh, kw = (int(v) for v in rng.integers(1, 6 if large else 5, size=2))
    if strides == "unit" or (strides == "any" and rng.random() < 0.5):
        stride = 1
    else:
        stride = 1
        while stride == 1:
            stride = pair(rng, 1, 3)
    sh, sw = both(stride)
    ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    pad = ph if ph == pw else (ph, pw)
    low, high = (6, 12) if large else (1, 5)
    oh, ow = (max(min_out, int(v)) for v in rng.integers(low, high + 1, size=2))
    h, w = _extent(rng, oh, kh, sh, ph), _extent(rng, ow, kw, sw, pw)
    return dict(N=n, C=c, F=f, H=h, W=w, KH=kh, KW=kw, stride=stride, pad=pad)


def pool_geometry(rng: np.random.Generator, large: bool, window: str = "any") -> dict:
    """A pooling's shapes: N, C, H, W, size, stride (None: the size) and pad.

    ``window="any"``: non-square windows of 1 to 4, strides 1 to 3 (overlapping when
    below the size), pads below the size; ``"2x2"``: the 2x2, stride 2, unpadded window
    of the kernels' fast paths, on even or odd planes.
    """
    n = int(rng.integers(2, 9) if large else rng.integers(1, 4))
    c = int(rng.integers(4, 17) if large else rng.integers(1, 4))
    low, high = (8, 20) if large else (1, 5)
    oh, ow = (int(v) for v in rng.integers(low, high + 1, size=2))
    if window == "2x2":
        size, stride, pad = 2, None, 0
        kh = kw = sh = sw = 2
        ph = pw = 0
    else:
        size = pair(rng, 1, 4)
        kh, kw = both(size)
        stride = None if rng.random() < 0.25 else pair(rng, 1, 3)
        sh, sw = both(size if stride is None else stride)
        ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        pad = ph if ph == pw else (ph, pw)
    h, w = _extent(rng, oh, kh, sh, ph), _extent(rng, ow, kw, sw, pw)
    return dict(N=n, C=c, H=h, W=w, size=size, stride=stride, pad=pad)


__all__ = [
    "both",
    "conv_geometry",
    "elementwise_shape",
    "matrix_shape",
    "normal",
    "pair",
    "pool_geometry",
    "positive",
    "rounded",
]
