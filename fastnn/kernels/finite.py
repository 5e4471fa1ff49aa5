"""all_finite: whether a float array holds no NaN or Inf, as one fused pass.

``np.isfinite(x).all()`` builds a boolean array of x's size first; the training
step checks its input and every gradient each step, so the check runs as a
kernel instead (fixed blocks, see :mod:`fastnn.kernels._blocks`).
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._blocks import BLOCK, block_count


@parallel_kernel
def count_nonfinite(x):
    """The number of NaN or Inf elements of the 1-D array x."""
    total = 0
    for block in prange(block_count(x.size)):
        bad = 0
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            v = x[np.uint64(k)]
            bad += 0 if v - v == v - v else 1     # v - v is NaN exactly for NaN and +-Inf
        total += bad
    return total
