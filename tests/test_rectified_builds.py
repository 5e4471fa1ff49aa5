"""The fused forward kernels' rectified builds (``kernels.activations.rectified_variant``).

A fused kernel takes its activation as a code at run time, so its code holds every
activation's, the sigmoid's exp and tanh's tanh included. Each has a second build with
``activate`` bound to ``activate_rectified`` (identity, ReLU, leaky ReLU), and the ops run
that one for those codes: a network of ReLUs then compiles no exp or tanh. Here: the
variant mechanism (``ParallelKernel.variant``), and which build each op path runs.
The two builds' bits are compared in tests/test_kernel_properties.py
(``rectified_canaries``).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import prange

from fastnn import _config
from fastnn._config import ParallelKernel, jit, parallel_kernel
from fastnn.backends import get_ops
from fastnn.kernels import activations

NB = get_ops("numba")
REF = get_ops("numpy")


@jit(cache=False)
def _plus_one(v):
    return v + 1.0


@jit(cache=False)
def _plus_two(v):
    return v + 2.0


@parallel_kernel(cache=False)
def _shifted(x, y):
    for i in prange(x.size):
        y[i] = _plus_one(x[i]) + _scale_later(x[i])


@jit(cache=False)
def _scale_later(v):  # bound after the kernel: the variant must still find it
    return 0.0 * v


_shifted_by_two = _shifted.variant("_shifted_by_two", _plus_one=_plus_two)


@pytest.mark.parametrize("build", ["serial", "parallel"])
def test_variant_binds_the_replaced_globals_only(build):
    x = np.arange(5.0)
    y, z = np.empty(5), np.empty(5)
    getattr(_shifted, build)(x, y)
    getattr(_shifted_by_two, build)(x, z)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(z, x + 2)
    assert isinstance(_shifted_by_two, ParallelKernel)
    assert _shifted_by_two.__name__ == "_shifted_by_two"
    assert _shifted_by_two.serial.py_func.__qualname__ == "_shifted_by_two_serial"
    assert _shifted_by_two.py_func.__module__ == __name__
    assert _shifted.py_func.__globals__["_plus_one"] is _plus_one  # the module's own, unchanged
    assert _shifted_by_two.py_func(x, np.empty(5)) is None  # plain Python reads the overlay too


@jit(cache=False)
def _both(values, code, alpha, full, rectified):
    for i in range(values.size):
        full[i] = activations.activate(values, values[i], code, alpha)
        rectified[i] = activations.activate_rectified(values, values[i], code, alpha)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activate_rectified_is_activate_outside_the_smooth_codes(dtype):
    """Value by value, NaN, infinities and signed zeros included."""
    values = np.array([-2.5, -0.0, 0.0, 1.5, np.nan, -np.inf, np.inf, 1e-30], dtype)
    for code in (activations.ACT_IDENTITY, activations.ACT_RELU, activations.ACT_LEAKY_RELU):
        full, rectified = np.empty_like(values), np.empty_like(values)
        _both(values, code, dtype(0.1), full, rectified)
        np.testing.assert_array_equal(rectified, full)
        np.testing.assert_array_equal(np.signbit(rectified), np.signbit(full))
    assert set(activations.SMOOTH_CODES) == {activations.ACT_SIGMOID, activations.ACT_TANH}


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the ParallelKernels called, in order."""
    calls = []
    original = ParallelKernel.__call__

    def spy(kernel, work, *args):
        calls.append(kernel.__name__)
        return original(kernel, work, *args)

    monkeypatch.setattr(ParallelKernel, "__call__", spy)
    return calls


FORWARD_KERNELS = {
    "affine_forward",
    "direct_conv_s1",
    "channel_tiled_forward",
    "pointwise_forward",
    "im2col_forward",
}


def _conv_paths(rng, dtype=np.float32):
    """(x, W, b, stride, pad, impl) reaching each fused forward kernel through conv2d."""
    x = rng.standard_normal((2, 3, 9, 9)).astype(dtype)
    rows = rng.standard_normal((2, 3, 20, 20)).astype(dtype)  # rows of at least a vector: pixel tiles
    wide = rng.standard_normal((4, 40, 9, 9)).astype(dtype)
    W3 = rng.standard_normal((40, 3, 3, 3)).astype(dtype)
    W1 = rng.standard_normal((8, 40, 1, 1)).astype(dtype)
    b40, b8 = rng.standard_normal(40).astype(dtype), rng.standard_normal(8).astype(dtype)
    return [
        ("direct stride 1", (rows, W3, b40, 1, 1, "direct"), "direct_conv_s1"),
        ("channel tiles", (x, W3, b40, 2, 1, "direct"), "channel_tiled_forward"),
        ("polyphase", (x, W3, b40, 2, 1, "polyphase"), "direct_conv_s1"),
        ("im2col", (x, W3, b40, 1, 1, "im2col"), "im2col_forward"),
        ("1x1", (wide, W1, b8, 1, 0, "auto"), "pointwise_forward"),
    ]


@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
def test_each_conv_path_runs_the_build_of_its_activation(kernel_calls, activation):
    rng = np.random.default_rng(0)
    smooth = activation in ("sigmoid", "tanh")
    for label, (x, W, b, stride, pad, impl), kernel in _conv_paths(rng):
        kernel_calls.clear()
        y = NB.conv2d(x, W, b, stride, pad, impl, activation=activation, alpha=0.1)
        want = REF.conv2d(x, W, b, stride, pad, activation=activation, alpha=0.1)
        np.testing.assert_allclose(y, want, rtol=2e-4, atol=2e-4 * float(np.abs(want).max()), err_msg=label)
        ran = [name for name in kernel_calls if name.removesuffix("_rectified") in FORWARD_KERNELS]
        assert ran == [kernel if smooth else kernel + "_rectified"], (label, kernel_calls)


@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "sigmoid", "tanh"])
def test_affine_runs_the_build_of_its_activation(kernel_calls, activation):
    rng = np.random.default_rng(1)
    x, W, b = (rng.standard_normal(s).astype(np.float32) for s in ((300, 200), (200, 150), (150,)))
    y = NB.affine(x, W, b, activation=activation, alpha=0.1)
    np.testing.assert_allclose(y, REF.affine(x, W, b, activation=activation, alpha=0.1), rtol=2e-4, atol=2e-3)
    smooth = activation in ("sigmoid", "tanh")
    assert kernel_calls == ["affine_forward" if smooth else "affine_forward_rectified"]


def test_the_fused_pooling_and_backward_data_run_the_rectified_build(kernel_calls):
    """conv2d_relu_maxpool2x2's pooled kernel and the stride-1 backward-data pass (both
    direct_conv_s1 with the identity or ReLU) never ask for the exp and tanh."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    W = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    pooled, argmax = NB.conv2d_relu_maxpool2x2(x, W, b, 1, 1, impl="direct")
    NB.conv2d_backward(np.ones_like(pooled), x, W, 1, 1, impl="direct", pool=(argmax, pooled))
    want, _ = REF.maxpool2d(REF.conv2d(x, W, b, 1, 1, relu=True), 2)
    np.testing.assert_allclose(pooled, want, rtol=2e-4, atol=2e-4)
    assert "direct_conv_s1" not in kernel_calls, kernel_calls
    assert "direct_conv_s1_rectified" in kernel_calls, kernel_calls


def test_a_relu_network_step_compiles_no_full_build(kernel_calls):
    """A training step of a ReLU network (conv, pooling, Dense) calls no full build: its
    kernels hold no exp or tanh."""
    import fastnn as fnn

    model = fnn.models.deep_convnet(seed=0)
    rng = np.random.default_rng(3)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    model.train_step(x, rng.integers(0, 10, 4), fnn.optim.Adam())
    assert any(name.endswith("_rectified") for name in kernel_calls)
    assert not FORWARD_KERNELS & set(kernel_calls), sorted(FORWARD_KERNELS & set(kernel_calls))


def test_the_threshold_still_picks_the_build(monkeypatch):
    """A variant is a ParallelKernel like any: the work threshold picks serial or parallel."""
    calls = []
    kernel = activations.for_code(None, _shifted_by_two, activations.ACT_RELU)
    monkeypatch.setattr(kernel, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(kernel, "parallel", lambda *a: calls.append("parallel"))
    kernel(0, None, None)
    kernel(_config.PARALLEL_THRESHOLD, None, None)
    assert calls == ["serial", "parallel"]
