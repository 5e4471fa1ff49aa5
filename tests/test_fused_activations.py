"""Every activation fused into the conv and affine kernels, and pooling of both kinds
after a convolution: the fused ops against the NumPy reference, the fused kernels
against the unfused op pairs bit for bit, fused models against unfused training, the
float64 gradient check of every group, and the vectorised float32 exp and tanh.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn as fnn
from fastnn.backends import get_ops
from fastnn.fusion import ConvActivation, ConvActivationPool, DenseActivation, FusedGroup
from fastnn.kernels.elementary import exp, tanh

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu")


def close(actual, expected, dtype, where):
    rtol, atol = (2e-4, 2e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-11)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=where)


def _alpha(activation):
    return 0.15 if activation == "leaky_relu" else 0.0


def _unfused_conv(ops, x, W, b, stride, pad, impl, activation, dy):
    """conv2d, the activation op, its backward op and conv2d_backward, one by one."""
    alpha = _alpha(activation)
    y = ops._activate(ops.conv2d(x, W, b, stride, pad, impl), activation, alpha)
    g = ops._activation_grad(dy, y, activation, alpha)
    return (y, *ops.conv2d_backward(g, x, W, stride, pad, impl))


def _fused_conv(ops, x, W, b, stride, pad, impl, activation, dy):
    alpha = _alpha(activation)
    y = ops.conv2d(x, W, b, stride, pad, impl, activation=activation, alpha=alpha)
    grads = ops.conv2d_backward(dy, x, W, stride, pad, impl, activation=activation, act_out=y, alpha=alpha)
    return (y, *grads)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4),
    c=st.integers(1, 5),
    f=st.integers(1, 11),
    h=st.integers(3, 13),
    w=st.integers(3, 19),
    k=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2, 3]),
    pad=st.integers(0, 2),
    impl=st.sampled_from(["direct", "im2col", "polyphase", "auto"]),
    activation=st.sampled_from(ACTIVATIONS),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_conv2d_with_each_activation_fused_is_the_unfused_pair_and_matches_the_reference(
    n, c, f, h, w, k, stride, pad, impl, activation, dtype, seed
):
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    dy = rng.standard_normal((n, f, oh, ow)).astype(dtype)
    args = (x, W, b, stride, pad, impl, activation, dy)
    fused = _fused_conv(NB, *args)
    for name, a, e in zip(("y", "dx", "dW", "db"), fused, _unfused_conv(NB, *args)):
        np.testing.assert_array_equal(a, e, err_msg=f"{name}: fused {activation} != unfused")
    for name, a, e in zip(("y", "dx", "dW", "db"), fused, _fused_conv(REF, *args)):
        close(a, e, dtype, f"{name} ({activation}) against the reference")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n, d, m", [(1, 1, 1), (7, 13, 5), (37, 300, 129), (300, 200, 150)])
def test_affine_with_each_activation_fused_is_the_unfused_pair_and_matches_the_reference(
    n, d, m, activation, dtype
):
    rng = np.random.default_rng(n * d + m)
    x, W = rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((d, m)).astype(dtype)
    b, dy = rng.standard_normal(m).astype(dtype), rng.standard_normal((n, m)).astype(dtype)
    alpha = _alpha(activation)

    def fused(ops):
        y = ops.affine(x, W, b, activation=activation, alpha=alpha)
        return (y, *ops.affine_backward(dy, x, W, activation=activation, act_out=y, alpha=alpha))

    y = NB._activate(NB.affine(x, W, b), activation, alpha)
    unfused = (y, *NB.affine_backward(NB._activation_grad(dy, y, activation, alpha), x, W))
    got = fused(NB)
    for name, a, e in zip(("y", "dx", "dW", "db"), got, unfused):
        np.testing.assert_array_equal(a, e, err_msg=f"{name}: fused {activation} != unfused")
    for name, a, e in zip(("y", "dx", "dW", "db"), got, fused(REF)):
        close(a, e, dtype, f"{name} ({activation}) against the reference")


@pytest.mark.parametrize("ops", [REF, NB], ids=["numpy", "numba"])
def test_bad_fused_activation_arguments_are_refused_naming_the_op(ops):
    x, W, b = np.ones((2, 1, 4, 4), np.float32), np.ones((3, 1, 3, 3), np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"conv2d: activation must be None or one of .*got 'gelu'"):
        ops.conv2d(x, W, b, activation="gelu")
    with pytest.raises(ValueError, match="conv2d: relu=True and activation='tanh'"):
        ops.conv2d(x, W, b, relu=True, activation="tanh")
    with pytest.raises(ValueError, match="conv2d: alpha must be a number >= 0"):
        ops.conv2d(x, W, b, activation="leaky_relu", alpha=-1)
    dy = np.ones((2, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="conv2d_backward: activation and act_out go together"):
        ops.conv2d_backward(dy, x, W, activation="tanh")
    with pytest.raises(ValueError, match=r"conv2d_backward: expected act_out of shape \(2, 3, 2, 2\)"):
        ops.conv2d_backward(dy, x, W, activation="tanh", act_out=np.ones((2, 3, 2, 1), np.float32))
    with pytest.raises(TypeError, match="affine_backward: expected act_out of dtype float32"):
        ops.affine_backward(
            np.ones((2, 4), np.float32),
            np.ones((2, 3), np.float32),
            np.ones((3, 4), np.float32),
            activation="sigmoid",
            act_out=np.ones((2, 4)),
        )


def lenet_tanh_avgpool():
    """LeNet-5 as published: tanh and average pooling."""
    return [
        fnn.Conv2D(1, 6, 5, pad=2),
        fnn.Tanh(),
        fnn.AvgPool2D(2),
        fnn.Conv2D(6, 16, 5),
        fnn.Tanh(),
        fnn.AvgPool2D(2),
        fnn.Flatten(),
        fnn.Dense(400, 120),
        fnn.Tanh(),
        fnn.Dense(120, 84),
        fnn.Sigmoid(),
        fnn.Dense(84, 10),
    ]


def strided_leaky():
    return [
        fnn.Conv2D(1, 8, 5, stride=2, pad=2),
        fnn.LeakyReLU(0.1),
        fnn.Conv2D(8, 12, 3, stride=2, pad=1),
        fnn.Sigmoid(),
        fnn.MaxPool2D(2),
        fnn.Flatten(),
        fnn.Dense(12 * 3 * 3, 10),
        fnn.LeakyReLU(0.2),
        fnn.Dense(10, 10),
    ]


def conv_then_pool():
    return [
        fnn.Conv2D(1, 4, 3, pad=1),
        fnn.AvgPool2D(2),
        fnn.Conv2D(4, 6, 3),
        fnn.Tanh(),
        fnn.MaxPool2D(3, stride=2),
        fnn.Flatten(),
        fnn.Dense(6 * 5 * 5, 10),
    ]


NETWORKS = {
    "lenet_tanh_avgpool": lenet_tanh_avgpool,
    "strided_leaky": strided_leaky,
    "conv_pool": conv_then_pool,
}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_fused_training_of_every_activation_and_pooling_is_bitwise_the_unfused(name, backend):
    rng = np.random.default_rng(4)
    x = rng.random((6, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 6)
    models = []
    for fuse in (True, False):
        model = fnn.Sequential(NETWORKS[name](), backend=backend, seed=1)
        model.fuse_layers = fuse
        optimizer = fnn.optim.Adam(1e-3)
        losses = [model.train_step(x, t, optimizer) for _ in range(3)]
        models.append((model, losses))
    (fused, fused_losses), (plain, plain_losses) = models
    assert sum(isinstance(unit, FusedGroup) for unit in fused._plan()) >= 2
    assert fused_losses == plain_losses
    np.testing.assert_array_equal(fused.flat_params, plain.flat_params)
    np.testing.assert_array_equal(fused.predict(x), plain.predict(x))


def test_plan_groups_every_activation_and_both_poolings():
    model = fnn.Sequential(lenet_tanh_avgpool() + [], seed=0)
    kinds = [type(unit) for unit in model._plan()]
    assert kinds == [
        ConvActivationPool,
        ConvActivationPool,
        fnn.Flatten,
        DenseActivation,
        DenseActivation,
        fnn.Dense,
    ]
    model = fnn.Sequential(strided_leaky(), seed=0)
    assert [type(unit) for unit in model._plan()] == [
        ConvActivation,
        ConvActivationPool,
        fnn.Flatten,
        DenseActivation,
        fnn.Dense,
    ]
    # Softmax and Step do not fuse; neither does an activation after a pooling
    model = fnn.Sequential([fnn.Dense(3, 3), fnn.Softmax(), fnn.Dense(3, 3), fnn.Step()], seed=0)
    assert model._plan() == model.layers


def small_network(activation, pool):
    """Conv (stride 1, then 2) with ``activation`` and ``pool`` after it, then Dense with it:
    few enough parameters for the central differences of every one."""

    def act():
        return {"relu": fnn.ReLU, "sigmoid": fnn.Sigmoid, "tanh": fnn.Tanh}.get(
            activation, lambda: fnn.LeakyReLU(0.1)
        )()

    return [
        fnn.Conv2D(2, 3, 3, pad=1),
        act(),
        pool(2),
        fnn.Conv2D(3, 4, 3, stride=2, pad=1),
        act(),
        fnn.Flatten(),
        fnn.Dense(4 * 2 * 2, 5),
        act(),
        fnn.Dense(5, 3),
    ]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("pool", [fnn.AvgPool2D, fnn.MaxPool2D], ids=["avg", "max"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_fused_group_passes_the_gradient_check(activation, pool, backend):
    rng = np.random.default_rng(8)
    model = fnn.Sequential(small_network(activation, pool), backend=backend, dtype="float64", seed=2)
    assert [type(unit).__name__ for unit in model._plan()][1:] == [
        "ConvActivation",
        "Flatten",
        "DenseActivation",
        "Dense",
    ]
    x = rng.standard_normal((3, 2, 8, 8))
    errors = fnn.gradcheck(model, x, rng.integers(0, 3, 3), check_input=True, verbose=False)
    assert set(errors) >= {"input"}
    for where, error in errors.items():
        assert error < 1e-5, f"{where}: relative error {error:.2e}"


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_conv_activations_do_not_depend_on_the_thread_count(activation):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 3, 20, 20)).astype(np.float32)
    W = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    results = []
    for threads in (1, fnn.get_num_threads()):
        fnn.set_num_threads(threads)
        try:
            results.append(
                _fused_conv(NB, x, W, b, 1, 1, "auto", activation, np.ones((40, 16, 20, 20), np.float32))
            )
        finally:
            fnn.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


@numba.njit
def _exp_all(x, y):
    for i in range(x.size):
        y[i] = exp(x[i])


@numba.njit
def _tanh_all(x, y):
    for i in range(x.size):
        y[i] = tanh(x[i])


def _ulps(actual, exact):
    """|actual - exact| in units of float32's spacing at exact."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - exact) / spacing


@pytest.mark.parametrize(
    "kernel, exact, low, high", [(_exp_all, np.exp, -87.3, 88.7), (_tanh_all, np.tanh, -20, 20)]
)
def test_float32_exp_and_tanh_are_within_two_ulp_and_keep_the_special_values(kernel, exact, low, high):
    tiny = np.float32(10.0) ** -np.arange(1, 38, dtype=np.float32)
    x = np.concatenate([np.linspace(low, high, 400_001, dtype=np.float32), tiny, -tiny])
    y = np.empty_like(x)
    kernel(x, y)
    assert y.dtype == np.float32
    assert _ulps(y, exact(x.astype(np.float64))).max() <= 2.0
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 100.0, -100.0], np.float32)
    y = np.empty_like(special)
    kernel(special, y)
    if kernel is _exp_all:
        np.testing.assert_array_equal(y, [1, 1, np.inf, 0, np.nan, np.inf, 0])
    else:
        np.testing.assert_array_equal(y, [0, 0, 1, -1, np.nan, 1, -1])  # the sign of 0: fastmath's nsz
    # float64 keeps the C library's functions (NumPy's own may differ from them by an ulp)
    x64 = np.linspace(-30, 30, 1001)
    y64 = np.empty_like(x64)
    kernel(x64, y64)
    np.testing.assert_allclose(y64, exact(x64), rtol=4e-16, atol=0)
