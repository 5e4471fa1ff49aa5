"""Affine ops: the Numba backend against the NumPy reference, and both against a float64
oracle with the textbook bound on a dot product's rounding error, on random shapes and
on a grid that includes sizes above PARALLEL_THRESHOLD. (Serial/parallel builds,
layouts and errors: test_op_contracts.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from op_helpers import (
    BACKENDS,
    DTYPES,
    NUMBA,
    NUMPY,
    assert_array,
    dtypes,
    hyp,
    random,
    seeds,
)


def check_affine(n, d, m, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (random(rng, s, dtype) for s in [(n, d), (d, m), (m,)])
    dy = random(rng, (n, m), dtype)
    inputs = [a.copy() for a in (x, W, b, dy)]
    x64, W64, b64, dy64 = (a.astype(np.float64) for a in (x, W, b, dy))
    # float64 oracle, and the textbook bound on a length-k dot product's rounding error:
    # |fl(A @ B) - A @ B| <= k * eps * (|A| @ |B|).
    eps = np.finfo(dtype).eps
    expected = {
        "y": (x64 @ W64 + b64, (d + 1) * eps * (abs(x64) @ abs(W64) + abs(b64))),
        "dx": (dy64 @ W64.T, m * eps * (abs(dy64) @ abs(W64.T))),
        "dW": (x64.T @ dy64, n * eps * (abs(x64.T) @ abs(dy64))),
        "db": (dy64.sum(axis=0), n * eps * abs(dy64).sum(axis=0)),
    }
    shapes = {"y": (n, m), "dx": (n, d), "dW": (d, m), "db": (m,)}
    got = {}
    for ops in BACKENDS:
        got[ops] = dict(zip(["dx", "dW", "db"], ops.affine_backward(dy, x, W)))
        got[ops]["y"] = ops.affine(x, W, b)
        for key, (value, bound) in expected.items():
            assert_array(got[ops][key], dtype, shapes[key])
            error = np.abs(got[ops][key] - value)
            assert np.all(error <= 2 * bound + np.finfo(dtype).tiny), (ops, key, error.max())
    for key, (_, bound) in expected.items():
        error = np.abs(got[NUMBA][key].astype(np.float64) - got[NUMPY][key])
        assert np.all(error <= 4 * bound + np.finfo(dtype).tiny), (key, error.max())
    for before, after in zip(inputs, (x, W, b, dy)):
        np.testing.assert_array_equal(before, after)


@hyp
@given(n=st.integers(1, 9), d=st.integers(1, 9), m=st.integers(1, 9), dtype=dtypes, seed=seeds)
def test_affine_random_shapes(n, d, m, dtype, seed):
    check_affine(n, d, m, dtype, seed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n, d, m", [(1, 1, 1), (1, 7, 1), (5, 1, 3), (3, 5, 7), (64, 33, 17), (300, 150, 200), (257, 3, 300)]
)
def test_affine_grid(n, d, m, dtype):
    check_affine(n, d, m, dtype, seed=5)


def test_parallel_affine_kernels_call_blas_on_one_thread_whatever_an_outside_limit_set(monkeypatch):
    """threadpoolctl's limits also reach the BLAS inside the kernels' threads: the ops set it
    back to one thread around a parallel kernel (two made a training step 12 times slower),
    and restore the outside setting afterwards."""
    from fastnn import _blas
    from fastnn.backends import numba_affine

    if _blas.get_kernel_blas_threads() is None:
        pytest.skip("no SciPy OpenBLAS found to set")
    seen = []
    for name in ("affine_forward", "affine_forward_rectified", "affine_backward"):
        kernel = getattr(numba_affine.aff, name)

        def recording(work, *args, kernel=kernel):
            seen.append((work > 0, _blas.get_kernel_blas_threads()))
            return kernel(work, *args)

        monkeypatch.setattr(numba_affine.aff, name, recording)
    before = _blas.get_kernel_blas_threads()
    _blas.set_kernel_blas_threads(2)
    try:
        rng = np.random.default_rng(0)
        for n, d, m in [(256, 512, 256), (2, 3, 4)]:  # a parallel build, then a serial one
            x, W = rng.standard_normal((n, d)), rng.standard_normal((d, m))
            NUMBA.affine(x, W, np.zeros(m))
            NUMBA.affine_backward(rng.standard_normal((n, m)), x, W)
        assert _blas.get_kernel_blas_threads() == 2  # the outside setting is back
    finally:
        _blas.set_kernel_blas_threads(before)
    assert seen == [(True, 1), (True, 1), (False, 2), (False, 2)]
