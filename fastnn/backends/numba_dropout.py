"""Numba-backed dropout: the mask and the output in one parallel pass
(:func:`fastnn.kernels.dropout.dropout_forward`), the reference's numbers bit for bit."""

from __future__ import annotations

import numpy as np

from ..kernels.dropout import dropout_forward
from ._arrays import contiguous as _c
from .numpy_dropout import check_dropout, dropout_threshold


class NumbaDropoutOps:
    """Dropout on a Numba kernel; see NumpyDropoutOps."""

    def dropout(self, x, p, key):
        """(y, mask) as the reference's ``dropout``
        (:class:`~fastnn.backends.numpy_dropout.NumpyDropoutOps`)."""
        x = _c(check_dropout("dropout", x, p, key))
        y = np.empty_like(x)
        mask = np.empty_like(x)
        flat = x.reshape(-1)
        dropout_forward(
            flat.size * 8,
            flat,
            np.uint64(key),
            np.uint64(dropout_threshold(p)),
            x.dtype.type(1.0 / (1.0 - p)),
            y.reshape(-1),
            mask.reshape(-1),
        )
        return y, mask


__all__ = ["NumbaDropoutOps"]
