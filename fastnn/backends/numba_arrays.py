"""Numba-backed whole-array ops of the blocks: validate like the reference, allocate, call
:mod:`fastnn.kernels.arrays` (parallel where NumPy copies and adds on one core)."""

from __future__ import annotations

import numpy as np

from ..kernels import arrays as array_kernels
from ._arrays import contiguous as _c
from ._arrays import flat as _flat
from .op_checks import check_add_relu, check_channel_range, check_concat_channels


def _rows(x: np.ndarray) -> np.ndarray:
    """x (N, ...) as contiguous (N, values per sample) rows."""
    x = _c(x)
    return x.reshape(x.shape[0], -1)


class NumbaArrayOps:
    """Sums and channel copies on Numba kernels; see NumpyArrayOps for the contracts."""

    def add(self, a, b, out=None):
        """y = a + b, elementwise; into ``out`` when given (which may be a itself)."""
        check_add_relu("add", a, b, out)
        af, bf = _flat(a), _flat(b)
        y = np.empty_like(af) if out is None else out.reshape(-1)
        array_kernels.add_forward(af.size, af, bf, y)
        return y.reshape(a.shape) if out is None else out

    def concat_channels(self, *arrays):
        """The arrays (N, C_i, ...) joined along axis 1: (N, C_1 + ... + C_k, ...)."""
        dtype = check_concat_channels("concat_channels", arrays)
        first = arrays[0]
        shape = (first.shape[0], sum(a.shape[1] for a in arrays), *first.shape[2:])
        y = np.empty(shape, dtype)
        rows, start = y.reshape(shape[0], -1), 0
        for a in arrays:
            part = _rows(a)
            array_kernels.copy_runs(part.size, part, 0, rows, start, part.shape[1])
            start += part.shape[1]
        return y

    def channel_slice(self, x, start, stop):
        """Channels start..stop of x (N, C, ...) as a new C-contiguous (N, stop - start, ...) array."""
        check_channel_range("channel_slice", x, start, stop)
        per_channel = int(np.prod(x.shape[2:], dtype=np.int64))
        y = np.empty((x.shape[0], stop - start, *x.shape[2:]), x.dtype.newbyteorder("="))
        rows = y.reshape(x.shape[0], -1)
        array_kernels.copy_runs(y.size, _rows(x), int(start) * per_channel, rows, 0, rows.shape[1])
        return y
