"""Numba-backed finiteness check (the family's reasons: :mod:`~fastnn.backends.numpy_finite`).

The kernel is :func:`fastnn.kernels.finite.count_nonfinite`.
"""

from __future__ import annotations

import numpy as np

from ..kernels.finite import count_nonfinite


class NumbaFiniteOps:
    """The NaN/Inf check on a Numba kernel; see NumpyFiniteOps."""

    def all_finite(self, x) -> bool:
        """True when the float array x holds no NaN or Inf: one fused pass
        (:func:`~fastnn.kernels.finite.count_nonfinite`) for contiguous native arrays,
        without the boolean array ``np.isfinite(x).all()`` builds first."""
        if x.flags.c_contiguous and x.dtype.isnative and x.dtype in (np.float32, np.float64):
            flat = x.reshape(-1)
            return bool(count_nonfinite(flat.size, flat) == 0)
        return bool(np.isfinite(x).all())


__all__ = ["NumbaFiniteOps"]
