"""Dropout's mask from a counter-based hash: one key per call, the same bits on any thread.

Element i of a call with key k is kept when u_i >= threshold, u_i the top 24 bits of
SplitMix64's i-th output for the seed k (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", 2014): mix(k + (i + 1) * GOLDEN) with mix the
generator's finaliser. u_i is uniform on [0, 2^24) and threshold = round(p * 2^24), so an
element is kept with probability 1 - p to within 2^-24. Each element's bits depend on
(k, i) alone: the work can be split over threads in any way and gives the same mask,
and the layer draws k from its own NumPy generator, so a checkpoint that saves the
generator resumes the same masks. The NumPy reference (``NumpyDropoutOps``) computes the
same integers with NumPy's uint64 arithmetic.
"""

import numpy as np
from numba import prange

from .._config import jit, parallel_kernel
from ._blocks import block_count
from ._scalars import typed
from .tuning import BLOCK

#: SplitMix64's increment (2^64 / the golden ratio) and its finaliser's multipliers.
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
#: Bits of each hash the keep test reads (the top ones).
KEEP_BITS = 24


@jit(inline="always")
def _mix(z):
    """SplitMix64's finaliser of the uint64 z (multiplications wrap modulo 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * MIX_1
    z = (z ^ (z >> np.uint64(27))) * MIX_2
    return z ^ (z >> np.uint64(31))


@parallel_kernel
def dropout_forward(x, key, threshold, scale, y, mask):
    """mask[i] = scale where (mix(key + (i + 1) * GOLDEN) >> (64 - KEEP_BITS)) >= threshold,
    else 0; y[i] = x[i] * mask[i]. x, y, mask flat, of one float dtype; key and threshold
    uint64; scale = 1 / (1 - p) in x's dtype. Fixed blocks of BLOCK elements."""
    zero = typed(x, 0.0)
    shift = np.uint64(64 - KEEP_BITS)
    for block in prange(block_count(x.size)):
        for i in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            h = _mix(key + np.uint64(i + 1) * GOLDEN)
            m = scale if (h >> shift) >= threshold else zero
            mask[i] = m
            y[i] = x[i] * m
