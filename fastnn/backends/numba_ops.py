"""``get_ops("numba")``: the fast backend.

It subclasses the reference, overriding the hot ops with kernel calls; any op it
does not override falls back to the reference. It adds no public method and keeps
every signature of the reference (tests/test_ops_consistency.py).
"""

from .numba_activations import NumbaActivationOps
from .numba_affine import NumbaAffineOps
from .numba_arrays import NumbaArrayOps
from .numba_conv import NumbaConvOps
from .numba_dropout import NumbaDropoutOps
from .numba_finite import NumbaFiniteOps
from .numba_losses import NumbaLossOps
from .numba_norm import NumbaNormOps
from .numba_optim import NumbaOptimOps
from .numba_pool import NumbaPoolOps
from .numpy_ops import NumpyOps


class NumbaOps(
    NumbaAffineOps,
    NumbaActivationOps,
    NumbaArrayOps,
    NumbaLossOps,
    NumbaFiniteOps,
    NumbaOptimOps,
    NumbaConvOps,
    NumbaPoolOps,
    NumbaNormOps,
    NumbaDropoutOps,
    NumpyOps,
):
    """Ops on Numba-compiled, multithreaded kernels."""

    name = "numba"

    def __repr__(self):
        return "NumbaOps()"
