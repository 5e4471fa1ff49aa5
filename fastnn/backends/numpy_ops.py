"""``get_ops("numpy")``: the complete, readable reference backend.

One mixin per op family, each in its own module (``numpy_<family>.py``), mirrored by
the Numba backend's ``numba_<family>.py`` and the kernels' ``fastnn/kernels/<family>``.
"""

from .numpy_activations import NumpyActivationOps
from .numpy_affine import NumpyAffineOps
from .numpy_arrays import NumpyArrayOps
from .numpy_conv import NumpyConvOps
from .numpy_dropout import NumpyDropoutOps
from .numpy_finite import NumpyFiniteOps
from .numpy_losses import NumpyLossOps
from .numpy_norm import NumpyNormOps
from .numpy_optim import NumpyOptimOps
from .numpy_pool import NumpyPoolOps


class NumpyOps(
    NumpyAffineOps,
    NumpyActivationOps,
    NumpyArrayOps,
    NumpyLossOps,
    NumpyFiniteOps,
    NumpyOptimOps,
    NumpyConvOps,
    NumpyPoolOps,
    NumpyNormOps,
    NumpyDropoutOps,
):
    """Every op in plain NumPy. The oracle the Numba backend is tested against."""

    name = "numpy"

    def __repr__(self):
        return "NumpyOps()"
