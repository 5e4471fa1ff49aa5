"""Numba kernels: @njit code only.

No Python objects, no validation: callers in :mod:`fastnn.backends.numba_ops`
check shapes and dtypes, allocate outputs and pass them in. Every kernel is
generic over float32/float64 and keeps the dtype it is given: constants are made
with :func:`fastnn.kernels._scalars.typed`, never written as float literals.
"""
