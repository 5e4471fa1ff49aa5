"""pytest-benchmark micro-benchmarks, kept out of the default test run.

python -m pytest benchmarks -m benchmark --benchmark-only
"""

import numpy as np
import pytest

import fastnn as fnn

pytestmark = pytest.mark.benchmark

BACKENDS = ["numba", "numpy"]


def batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_affine_forward(benchmark, backend):
    ops = fnn.get_ops(backend)
    x, W, b = batch((100, 784)), batch((784, 100), 1), batch((100,), 2)
    y = benchmark(ops.affine, x, W, b)
    np.testing.assert_allclose(y, x @ W + b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_forward_deep_conv2(benchmark, backend):
    ops = fnn.get_ops(backend)
    x, W, b = batch((100, 16, 28, 28)), batch((16, 16, 3, 3), 1), batch((16,), 2)
    y = benchmark(ops.conv2d, x, W, b, 1, 1)
    assert y.shape == (100, 16, 28, 28)


@pytest.mark.parametrize("backend", BACKENDS)
def test_maxpool_forward(benchmark, backend):
    ops = fnn.get_ops(backend)
    y, _ = benchmark(ops.maxpool2d, batch((100, 16, 28, 28)), 2)
    assert y.shape == (100, 16, 14, 14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_step_1m(benchmark, backend):
    ops = fnn.get_ops(backend)
    params, grads = batch((1_000_000,)), batch((1_000_000,), 1)
    optimizer = fnn.optim.Adam()
    benchmark(optimizer.apply, ops, params, grads)
    assert optimizer.iterations > 0


@pytest.mark.parametrize("network", ["mlp", "simple_convnet", "deep_convnet"])
def test_train_step(benchmark, network):
    model = fnn.models.MODELS[network](seed=0)
    optimizer = fnn.optim.Adam()
    x = np.random.default_rng(0).random((100, 1, 28, 28), dtype=np.float32)
    t = np.random.default_rng(1).integers(0, 10, 100)
    loss = benchmark(model.train_step, x, t, optimizer)
    assert np.isfinite(loss)
