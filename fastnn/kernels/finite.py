"""count_nonfinite: the NaN and Inf in a float array, as one fused pass.

Behind ``ops.all_finite`` of the numba backend: ``np.isfinite(x).all()`` builds a
boolean array of x's size first, and the training step checks its input and every
gradient each step (fixed blocks, see :mod:`fastnn.kernels._blocks`).
"""

import numpy as np
from numba import prange

from .._config import parallel_kernel
from ._blocks import block_count
from .tuning import BLOCK


@parallel_kernel
def count_nonfinite(x):
    """The number of NaN or Inf elements of the 1-D array x."""
    total = 0
    for block in prange(block_count(x.size)):
        bad = 0
        for k in range(block * BLOCK, min(x.size, (block + 1) * BLOCK)):
            v = x[np.uint64(k)]
            bad += 0 if v - v == v - v else 1  # v - v is NaN exactly for NaN and +-Inf
        total += bad
    return total
