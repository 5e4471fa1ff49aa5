"""Whole-array ops of the blocks in NumPy: a sum of two arrays, channel concatenation and
a channel slice (Concat's forward and backward, the input gradients Residual and Concat add)."""

from __future__ import annotations

import numpy as np

from .op_checks import check_add_relu, check_channel_range, check_concat_channels


class NumpyArrayOps:
    """Sums and channel copies of whole arrays; the reference for NumbaArrayOps."""

    def add(self, a, b, out=None):
        """y = a + b, elementwise; into ``out`` when given (which may be a itself)."""
        check_add_relu("add", a, b, out)
        if out is None:
            return (a + b).astype(a.dtype.newbyteorder("="), copy=False)
        return np.add(a, b, out=out)

    def concat_channels(self, *arrays):
        """The arrays (N, C_i, ...) joined along axis 1: (N, C_1 + ... + C_k, ...)."""
        dtype = check_concat_channels("concat_channels", arrays)
        return np.concatenate(arrays, axis=1).astype(dtype, copy=False)

    def channel_slice(self, x, start, stop):
        """Channels start..stop of x (N, C, ...) as a new C-contiguous (N, stop - start, ...) array."""
        check_channel_range("channel_slice", x, start, stop)
        return np.array(x[:, start:stop], dtype=x.dtype.newbyteorder("="), order="C", copy=True)
