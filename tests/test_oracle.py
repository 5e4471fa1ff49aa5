"""The accuracy oracle: normwise errors and the bound a kernel must meet."""

import numpy as np
import pytest

from fastnn import oracle


def test_normwise_error_is_the_worst_difference_over_the_largest_value():
    exact = np.array([1.0, -4.0, 0.5])
    assert oracle.normwise_error(exact + [0.0, 0.002, -0.001], exact) == pytest.approx(0.002 / 4.0)
    assert oracle.normwise_error(np.zeros(3), np.zeros(3)) == 0.0
    assert oracle.normwise_error(np.ones(3), np.zeros(3)) == float("inf")
    assert oracle.normwise_error(np.ones(2), np.ones(3)) == float("inf")
    assert oracle.normwise_error([np.nan, 1.0], [0.0, 1.0]) == float("inf")
    assert oracle.normwise_error([np.inf, 1.0], [np.inf, 1.0]) == 0.0


def test_a_float32_sum_passes_and_a_wrong_one_fails():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 300))
    exact = x.sum(axis=1)
    ref32 = x.astype(np.float32).sum(axis=1)
    sequential = np.zeros(64, np.float32)
    for column in x.astype(np.float32).T:  # a different summation order, the same precision
        sequential += column
    assert oracle.judge(sequential, ref32, exact).ok
    broken = sequential.copy()
    broken[7] += 1e-3 * np.abs(exact).max()
    verdict = oracle.judge(broken, ref32, exact)
    assert not verdict.ok and verdict.ratio > 1


def test_the_floor_spares_an_exact_reference_and_float64_is_held_to_its_own_precision():
    exact = np.array([1.0, 2.0, 3.0])
    one_ulp = np.nextafter(exact.astype(np.float32), np.float32(4))
    assert oracle.judge(one_ulp, exact.astype(np.float32), exact).ok  # the reference is exact here
    assert oracle.bound(0.0, np.float64) == pytest.approx(
        oracle.FACTOR * oracle.FLOOR_ULPS * np.finfo(np.float64).eps
    )
    off64 = exact * (1 + 1e-9)
    assert not oracle.judge(off64, exact.astype(np.float32), exact).ok  # far beyond float64's rounding
