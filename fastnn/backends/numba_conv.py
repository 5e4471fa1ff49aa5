"""Numba-backed convolution and pooling ops (filled in by the conv issue)."""


class NumbaConvOps:
    """Conv/pool ops on Numba kernels; see NumpyConvOps for the formulas."""
