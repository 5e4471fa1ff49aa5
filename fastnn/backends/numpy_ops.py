"""``get_ops("numpy")``: the complete, readable reference backend."""

from .numpy_conv import NumpyConvOps
from .numpy_dense import NumpyDenseOps
from .numpy_norm import NumpyNormOps


class NumpyOps(NumpyDenseOps, NumpyConvOps, NumpyNormOps):
    """Every op in plain NumPy. The oracle the Numba backend is tested against."""

    name = "numpy"

    def __repr__(self):
        return "NumpyOps()"
