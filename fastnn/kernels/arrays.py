"""Whole-array sums and copies of channel ranges: the plumbing of the blocks.

A block joins and splits whole arrays: Concat joins its branches' outputs along the
channels and hands each branch its channels of the gradient, and Residual and Concat add
input gradients. NumPy runs each of these memory-bound passes on one core; these kernels
split them into pieces of at most BLOCK values over the threads.

An (N, C, H, W) array is seen as N rows of C*S values (S = H*W), so the channels c0..c1
of image n are the contiguous run [c0*S, c1*S) of row n.
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._blocks import block_count
from .tuning import BLOCK


@parallel_kernel
def add_forward(a, b, y):
    """y = a + b over flat arrays (y may be a)."""
    for block in prange(block_count(a.size)):
        for k in range(block * BLOCK, min(a.size, (block + 1) * BLOCK)):
            i = np.uint64(k)
            y[i] = a[i] + b[i]


@parallel_kernel
def copy_runs(src, src_start, dst, dst_start, length):
    """dst[n, dst_start + k] = src[n, src_start + k] for k < length, in every row n of the
    (N, *) arrays src and dst (distinct arrays); each work item one piece of a row."""
    pieces = block_count(length)
    for item in prange(src.shape[0] * pieces):
        n = item // pieces
        k0 = (item - n * pieces) * BLOCK
        s = np.uint64(src_start + k0)
        d = np.uint64(dst_start + k0)
        for k in range(min(BLOCK, length - k0)):
            i = np.uint64(k)
            dst[n, d + i] = src[n, s + i]
