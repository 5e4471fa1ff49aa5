"""The NumPy reference for dropout's mask and output.

The mask is a counter-based hash of the call's key and each element's index
(:mod:`fastnn.kernels.dropout` gives the rule), computed here with NumPy's uint64
arithmetic, so both backends give the same mask from the same key, bit for bit.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import check_float
from ..kernels.dropout import GOLDEN, KEEP_BITS, MIX_1, MIX_2
from .conv_shapes import native


def dropout_threshold(p) -> int:
    """The keep test's threshold for drop probability p: round(p * 2^KEEP_BITS)."""
    return int(round(p * (1 << KEEP_BITS)))


def check_dropout(op: str, x, p, key):
    """x as a native-order array (a byte-swapped one converted), p and key checked: x float32
    or float64, p a number in [0, 1), key an integer in [0, 2^64)."""
    x = native(check_float(op, "x", x))
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"{op}: p must be a number in [0, 1), got {p!r}")
    if not isinstance(key, numbers.Integral) or isinstance(key, bool) or not 0 <= int(key) < 2**64:
        raise ValueError(f"{op}: key must be an integer in [0, 2**64), got {key!r}")
    return x


class NumpyDropoutOps:
    """Reference inverted dropout."""

    def dropout(self, x, p, key):
        """(y, mask): mask = 1 / (1 - p) where element i is kept, else 0, and y = x * mask.

        Element i (in C order) is kept when the top KEEP_BITS bits of
        mix(key + (i + 1) * GOLDEN), SplitMix64's output, are at least round(p * 2^KEEP_BITS):
        with probability 1 - p.
        """
        x = check_dropout("dropout", x, p, key)
        index = np.arange(1, x.size + 1, dtype=np.uint64)
        z = np.uint64(key) + index * GOLDEN  # uint64 arrays wrap silently
        z = (z ^ (z >> np.uint64(30))) * MIX_1
        z = (z ^ (z >> np.uint64(27))) * MIX_2
        z = z ^ (z >> np.uint64(31))
        keep = (z >> np.uint64(64 - KEEP_BITS)) >= np.uint64(dropout_threshold(p))
        scale = x.dtype.type(1.0 / (1.0 - p))
        mask = np.where(keep, scale, x.dtype.type(0)).astype(x.dtype).reshape(x.shape)
        return x * mask, mask


__all__ = ["NumpyDropoutOps", "check_dropout", "dropout_threshold"]
