"""The NumPy reference for the finiteness check a training step runs.

``all_finite`` is neither a layer's op nor a loss: the model checks its input and the
flat gradient buffer with it on every training step. It is a family of its own because
its kernel is one (:mod:`fastnn.kernels.finite`), so the reference, the Numba op and the
kernel share one name.
"""

from __future__ import annotations

import numpy as np


class NumpyFiniteOps:
    """Reference check for NaN and Inf."""

    def all_finite(self, x) -> bool:
        """True when the float array x holds no NaN or Inf."""
        return bool(np.isfinite(x).all())


__all__ = ["NumpyFiniteOps"]
