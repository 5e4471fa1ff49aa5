"""Dtype-preserving constants for generic kernels.

``0.5 * x`` promotes a float32 ``x`` to float64 in Numba, and so does ``1 + x``;
``typed(x, 0.5)`` is a constant of ``x``'s own dtype instead.
"""

import numpy as np

from .._config import jit


@jit(inline="always")
def typed(array, value):
    """``value`` as a scalar of ``array.dtype``."""
    return np.full(1, value, array.dtype)[0]
