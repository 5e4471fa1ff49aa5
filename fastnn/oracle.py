"""The accuracy oracle behind ``fastnn verify`` and :func:`fastnn.compare`.

A kernel is judged against the same computation done by the NumPy reference in float64
on the same inputs, which stands in for the exact result. Its error is measured
normwise, relative to the size of that result::

    error(y, exact) = max|y - exact| / max|exact|        (0 when both are all zeros)

A float32 kernel passes when it is no less accurate than the float32 reference, within
:data:`FACTOR`::

    error(kernel32, ref64) <= FACTOR * max(error(ref32, ref64), FLOOR_ULPS * eps32)

The floor keeps an op whose float32 reference happens to be exact (ReLU, max pooling,
a copy) from demanding exactness of a kernel that rounds differently once. A float64
kernel is held to the same bound, scaled to float64's unit roundoff: the same
algorithm's error scales with the precision it runs in, so the float32 reference's
observed error times eps64 / eps32 estimates the float64 reference's::

    error(kernel64, ref64) <= FACTOR * max(error(ref32, ref64), FLOOR_ULPS * eps32) * eps64 / eps32

No op has a tolerance of its own: the reference's own rounding sets every bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FACTOR", "FLOOR_ULPS", "Judgement", "judge", "normwise_error"]

#: How much less accurate than the float32 reference a kernel may be.
FACTOR = 8.0
#: The smallest reference error assumed, in units of float32's machine epsilon.
FLOOR_ULPS = 8.0

_EPS32 = float(np.finfo(np.float32).eps)
_EPS64 = float(np.finfo(np.float64).eps)


def normwise_error(y, exact) -> float:
    """``max|y - exact| / max|exact|``, in float64; 0 when both are all zeros, inf when
    ``y`` is not finite where ``exact`` is, or the shapes differ."""
    y = np.asarray(y, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    if y.shape != exact.shape:
        return float("inf")
    if y.size == 0:
        return 0.0
    if not np.array_equal(np.isfinite(y), np.isfinite(exact)):
        return float("inf")
    finite = np.isfinite(exact)
    diff = np.abs(y[finite] - exact[finite])
    worst = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(exact[finite]).max()) if diff.size else 0.0
    if worst == 0.0:
        return 0.0
    return worst / scale if scale > 0 else float("inf")


@dataclass(frozen=True)
class Judgement:
    """One result judged: its ``error`` against the float64 reference, the ``bound`` it
    had to meet (``error <= bound`` is ``ok``), and ``reference_error``, the float32
    reference's own error that set the bound."""

    error: float
    bound: float
    reference_error: float

    @property
    def ok(self) -> bool:
        return self.error <= self.bound

    @property
    def ratio(self) -> float:
        """error / bound: below 1 passes; how close a result came to failing."""
        if self.bound > 0:
            return self.error / self.bound
        return 0.0 if self.error == 0 else float("inf")


def bound(reference32_error: float, dtype) -> float:
    """The largest error allowed to a kernel of ``dtype`` whose float32 reference has
    ``reference32_error`` (the formula in the module docstring)."""
    allowed = FACTOR * max(float(reference32_error), FLOOR_ULPS * _EPS32)
    if np.dtype(dtype) == np.float64:
        allowed *= _EPS64 / _EPS32
    return allowed


def judge(kernel, reference32, reference64) -> Judgement:
    """Judge ``kernel`` (float32 or float64, the kernel's result) against ``reference64``
    (the reference in float64 on the same inputs); ``reference32`` is the reference in
    float32 on those inputs rounded to float32, whose error sets the bound."""
    reference_error = normwise_error(reference32, reference64)
    dtype = np.asarray(kernel).dtype
    return Judgement(normwise_error(kernel, reference64), bound(reference_error, dtype), reference_error)
