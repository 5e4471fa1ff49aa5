"""BatchNorm: the ops on both backends against an independent oracle, the layer's
gradients, running statistics, inference, the flat buffer and save/load."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.backends import NumbaOps, NumpyOps
from fastnn.kernels import norm as norm_kernels

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
SHAPES = [(7, 5), (1, 3), (64, 300), (5, 3, 4, 6), (2, 1, 1, 1), (3, 16, 9, 7), (9, 2, 13, 1)]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def oracle_forward(x, gamma, beta, eps):
    """Deep Learning from Scratch's BatchNormalization.forward, over (N, D) rows."""
    shape = x.shape
    if x.ndim == 4:  # channels last, then rows
        x = x.transpose(0, 2, 3, 1).reshape(-1, shape[1])
    mu = x.mean(axis=0)
    xc = x - mu
    var = np.mean(xc**2, axis=0)
    std = np.sqrt(var + eps)
    xn = xc / std
    out = gamma * xn + beta
    cache = (xc, std, xn)
    if len(shape) == 4:
        out = out.reshape(shape[0], shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2)
    return out, mu, var, cache


def oracle_backward(dout, gamma, cache):
    """Deep Learning from Scratch's BatchNormalization.backward, step by step."""
    shape = dout.shape
    if dout.ndim == 4:
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, shape[1])
    xc, std, xn = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(xn * dout, axis=0)
    dxn = gamma * dout
    dxc = dxn / std
    dstd = -np.sum((dxn * xc) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / n) * xc * dvar
    dmu = np.sum(dxc, axis=0)
    dx = dxc - dmu / n
    if len(shape) == 4:
        dx = dx.reshape(shape[0], shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2)
    return dx, dgamma, dbeta


def random_inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal((1, c) + (1,) * (len(shape) - 2)) * 5).astype(
        dtype
    )
    gamma = rng.uniform(0.5, 2, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_the_textbook(backend, dtype, shape):
    ops = fnn.get_ops(backend)
    x, gamma, beta, dy = random_inputs(shape, dtype)
    y, mean, var = ops.batchnorm(x, gamma, beta, 1e-5)
    x64 = x.astype(np.float64)
    y_ref, mu_ref, var_ref, cache = oracle_forward(
        x64, gamma.astype(np.float64), beta.astype(np.float64), 1e-5
    )
    for got in (y, mean, var):
        assert got.dtype == dtype
    rtol, atol = TOL[dtype]["rtol"], TOL[dtype]["atol"]
    sums_atol = 1e-3 if dtype == np.float32 else 1e-9  # sums over up to 18,000 values
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(mean, mu_ref, rtol=rtol, atol=sums_atol / 10)
    np.testing.assert_allclose(var, var_ref, rtol=rtol, atol=atol)

    dx, dgamma, dbeta = ops.batchnorm_backward(dy, x, gamma, mean, var, 1e-5)
    dx_ref, dgamma_ref, dbeta_ref = oracle_backward(dy.astype(np.float64), gamma.astype(np.float64), cache)
    for got in (dx, dgamma, dbeta):
        assert got.dtype == dtype
    scale = np.abs(dy).max() * np.abs(gamma).max()
    np.testing.assert_allclose(dx, dx_ref, rtol=rtol * 10, atol=atol * scale * 10)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=rtol * 10, atol=sums_atol)
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=rtol * 10, atol=sums_atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_numba_matches_reference(dtype, shape):
    ref, fast = fnn.get_ops("numpy"), fnn.get_ops("numba")
    x, gamma, beta, dy = random_inputs(shape, dtype, seed=1)
    expected = ref.batchnorm(x, gamma, beta, 1e-3)
    got = fast.batchnorm(x, gamma, beta, 1e-3)
    for e, g in zip(expected, got):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * 10)
    mean, var = expected[1], expected[2]
    expected = ref.batchnorm_backward(dy, x, gamma, mean, var, 1e-3)
    got = fast.batchnorm_backward(dy, x, gamma, mean, var, 1e-3)
    for e, g in zip(expected, got):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(
            g, e, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10 * max(1.0, np.abs(e).max())
        )
    running_mean, running_var = mean + dtype(0.25), var * dtype(1.5)
    e = ref.batchnorm_inference(x, gamma, beta, running_mean, running_var, 1e-3)
    g = fast.batchnorm_inference(x, gamma, beta, running_mean, running_var, 1e-3)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, e, **TOL[dtype])


@pytest.mark.parametrize("shape", [(200, 300), (64, 16, 12, 12)])
def test_kernels_do_not_depend_on_the_thread_count(shape):
    """Every channel is summed in one fixed order, so a build gives bit-identical results
    with 1 or 2 threads (the block size comes from the shape alone). Other block sizes, and
    the serial build, which LLVM vectorises differently, agree to rounding."""
    from fastnn.backends.numba_norm import _block

    x, gamma, beta, dy = random_inputs(shape, np.float32, seed=2)
    x3, dy3 = x.reshape(shape[0], shape[1], -1), dy.reshape(shape[0], shape[1], -1)
    c = shape[1]
    eps = np.float32(1e-5)

    def run(build, block):
        y, mean, var, inv_std = (np.empty_like(x3), *(np.empty(c, np.float32) for _ in range(3)))
        getattr(norm_kernels.batchnorm_forward, build)(
            *(x3, gamma, beta, eps, block, 0, np.float32(0), np.empty((0, 0, 0), np.float32)),
            *(y, 0, mean, var, inv_std),
        )
        dx, dgamma, dbeta = np.empty_like(x3), np.empty(c, np.float32), np.empty(c, np.float32)
        getattr(norm_kernels.batchnorm_backward, build)(
            dy3, 0, x3, gamma, mean, var, eps, block, 0, np.float32(0), dy3, 0, dx, dgamma, dbeta
        )
        return y, mean, var, dx, dgamma, dbeta

    block = _block(c, x3.shape[2])
    threads = fnn.get_num_threads()
    try:
        fnn.set_num_threads(1)
        one = run("parallel", block)
        fnn.set_num_threads(threads)
        for a, b in zip(one, run("parallel", block)):
            np.testing.assert_array_equal(a, b)
    finally:
        fnn.set_num_threads(threads)
    for other in (run("parallel", 1), run("parallel", c), run("serial", block)):
        for a, b in zip(one, other):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_numba_backend_overrides_the_batchnorm_ops():
    for name in ("batchnorm", "batchnorm_backward", "batchnorm_inference", "batchnorm_inference_backward"):
        assert getattr(NumbaOps, name) is not getattr(NumpyOps, name), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_reject_bad_arguments(backend):
    ops = fnn.get_ops(backend)
    x = np.zeros((4, 3), np.float32)
    g = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"batchnorm: expected gamma of shape \(3,\)"):
        ops.batchnorm(x, np.ones(4, np.float32), g)
    with pytest.raises(ValueError, match=r"\(N, D\) or \(N, C, H, W\)"):
        ops.batchnorm(np.zeros((4, 3, 2), np.float32), g, g)
    with pytest.raises(TypeError, match="dtype"):
        ops.batchnorm(x, g.astype(np.float64), g)
    with pytest.raises(ValueError, match="eps"):
        ops.batchnorm(x, g, g, eps=-1.0)
    with pytest.raises(ValueError, match="dy"):
        ops.batchnorm_backward(np.zeros((5, 3), np.float32), x, g, g, g)


# ------------------------------------------------------------------ the layer


def check_model(model, x, t):
    errors = fnn.gradcheck(model, x, t, check_input=True, verbose=False)
    assert len(errors) >= 2
    for name, error in errors.items():
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_batchnorm_gradient_check(backend):
    rng = np.random.default_rng(3)
    # (a bias right before BatchNorm has a zero gradient, which central differences
    # cannot judge, so the activation comes first here; see the test below)
    model = fnn.Sequential(
        [fnn.Dense(6, 5), fnn.Tanh(), fnn.BatchNorm(5), fnn.Dense(5, 3)],
        backend=backend,
        dtype="float64",
        seed=4,
    )
    bn = model.layers[2]
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 5)
    bn.params["beta"][...] = rng.standard_normal(5)
    check_model(model, rng.standard_normal((8, 6)), rng.integers(0, 3, 8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_batchnorm_gradient_check(backend):
    rng = np.random.default_rng(5)
    model = fnn.Sequential(
        [fnn.Conv2D(2, 3, 3, pad=1), fnn.Tanh(), fnn.BatchNorm(3), fnn.Flatten(), fnn.Dense(3 * 4 * 4, 3)],
        backend=backend,
        dtype="float64",
        seed=6,
    )
    bn = model.layers[2]
    bn.params["gamma"][...] = rng.uniform(0.5, 1.5, 3)
    bn.params["beta"][...] = rng.standard_normal(3)
    check_model(model, rng.standard_normal((3, 2, 4, 4)), rng.integers(0, 3, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bias_before_batchnorm_gets_no_gradient(backend):
    """BatchNorm removes any per-channel shift, so the conv bias before it cannot matter."""
    rng = np.random.default_rng(9)
    model = fnn.Sequential(
        [fnn.Conv2D(2, 3, 3, pad=1), fnn.BatchNorm(3), fnn.Tanh(), fnn.Flatten(), fnn.Dense(3 * 4 * 4, 3)],
        backend=backend,
        dtype="float64",
        seed=6,
    )
    model.loss(rng.standard_normal((3, 2, 4, 4)), rng.integers(0, 3, 3))
    model.backward()
    assert np.abs(model.layers[0].grads["b"]).max() < 1e-12
    assert np.abs(model.layers[0].grads["W"]).max() > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_normalises_and_updates_running_statistics(backend):
    rng = np.random.default_rng(7)
    layer = fnn.BatchNorm(4, momentum=0.8).initialize(0, ops=backend)
    x = (rng.standard_normal((50, 4, 3, 3)) * 2 + 3).astype(np.float32)
    y = layer.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.running_mean, 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var, 0.8 * 1 + 0.2 * var, rtol=1e-5)
    layer.forward(x, train=True)
    np.testing.assert_allclose(layer.running_mean, 0.8 * 0.2 * mean + 0.2 * mean, rtol=1e-5)
    # inference: the running statistics, not the batch's; and no update
    before = layer.running_mean.copy()
    y_inf = layer.forward(x[:5], train=False)
    expected = (x[:5] - layer.running_mean[None, :, None, None]) / np.sqrt(
        layer.running_var[None, :, None, None] + 1e-5
    )
    np.testing.assert_allclose(y_inf, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.running_mean, before)
    assert y.dtype == y_inf.dtype == np.float32


def test_gamma_and_beta_live_in_the_flat_buffer_and_running_stats_are_buffers():
    model = fnn.Sequential([fnn.Dense(3, 4), fnn.BatchNorm(4), fnn.Dense(4, 2)], seed=0)
    bn = model.layers[1]
    assert model.num_params == 3 * 4 + 4 + 2 * 4 + 4 * 2 + 2
    for name in ("gamma", "beta"):
        assert np.shares_memory(bn.params[name], model.flat_params)
        assert np.shares_memory(bn.grads[name], model.flat_grads)
    np.testing.assert_array_equal(bn.params["gamma"], 1)
    np.testing.assert_array_equal(bn.params["beta"], 0)
    assert set(bn.buffers) == {"running_mean", "running_var"}
    assert bn.running_var.dtype == np.float32
    assert bn.describe() == "BatchNorm(4)"
    assert fnn.Sequential([fnn.BatchNorm(2)], dtype="float64").layers[0].running_var.dtype == np.float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_keep_the_running_statistics(tmp_path, backend):
    rng = np.random.default_rng(8)
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 2, 3),
            fnn.BatchNorm(2, momentum=0.5, eps=1e-3),
            fnn.ReLU(),
            fnn.Flatten(),
            fnn.Dense(2 * 4 * 4, 3),
        ],
        backend=backend,
        seed=0,
    )
    x = rng.random((10, 1, 6, 6), dtype=np.float32)
    model.fit(x, rng.integers(0, 3, 10), epochs=2, batch_size=5, verbose=0)
    assert not np.allclose(model.layers[1].running_mean, 0)
    model.save(tmp_path / "bn.npz")
    loaded = fnn.load(tmp_path / "bn.npz")
    assert loaded.layers[1].get_config() == {"num_features": 2, "momentum": 0.5, "eps": 1e-3}
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(loaded.layers[1].buffers[name], model.layers[1].buffers[name])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_layer_errors():
    with pytest.raises(ValueError, match="num_features"):
        fnn.BatchNorm(0)
    with pytest.raises(ValueError, match="momentum"):
        fnn.BatchNorm(3, momentum=1.5)
    layer = fnn.BatchNorm(3).initialize(0)
    with pytest.raises(ValueError, match=r"BatchNorm\(3\): expected input of shape \(N, 3\)"):
        layer.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="backward"):
        fnn.BatchNorm(3).initialize(0).backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="BatchNorm"):
        fnn.Sequential([fnn.Flatten(), fnn.BatchNorm(5)]).output_shape((1, 2, 2))


def test_batchnorm_helps_a_network_train():
    """A deep sigmoid MLP on the digits learns with BatchNorm (DLFS figure 6-19's point)."""
    (x, t), (x_test, t_test) = fnn.datasets.load_digits(seed=0)

    def net(norm):
        layers = [fnn.Flatten()]
        width = 64
        for _ in range(4):
            layers += [fnn.Dense(width, 50, init=0.01)] + ([fnn.BatchNorm(50)] if norm else [])
            layers += [fnn.Sigmoid()]
            width = 50
        return fnn.Sequential(layers + [fnn.Dense(50, 10)], seed=0)

    accuracy = {}
    for norm in (False, True):
        model = net(norm)
        model.fit(x, t, epochs=5, batch_size=50, optimizer=fnn.optim.SGD(0.1), verbose=0, seed=0)
        accuracy[norm] = model.evaluate(x_test, t_test)["accuracy"]
    assert accuracy[True] > 0.8
    assert accuracy[True] > accuracy[False] + 0.3, accuracy


def test_norm_kernels_stay_float32():
    from test_float32_kernels import double_math, is_float32_signature, llvm_ir

    ops = fnn.get_ops("numba")
    # serial and parallel builds, of the (N, D) kernels and of the (N, C, S) ones
    for shape in ((4, 3), (2048, 64), (4, 3, 2, 2), (64, 16, 8, 8)):
        x, gamma, beta, dy = random_inputs(shape, np.float32)
        y, mean, var = ops.batchnorm(x, gamma, beta)
        ops.batchnorm(x, gamma, beta, activation="tanh")
        ops.batchnorm_backward(dy, x, gamma, mean, var)
        ops.batchnorm_inference(x, gamma, beta, mean, var)
        ops.batchnorm_inference_backward(dy, gamma, var)
    kernels = ("batchnorm_forward", "batchnorm_forward_smooth", "batchnorm_backward", "channel_affine")
    for name in kernels + ("channel_scale", "batchnorm_forward_features", "batchnorm_backward_features"):
        for build in ("serial", "parallel"):
            dispatcher = getattr(getattr(norm_kernels, name), build)
            signatures = [s for s in dispatcher.signatures if is_float32_signature(s)]
            assert signatures, (name, build)
            for sig in signatures:
                found = double_math(llvm_ir(dispatcher, sig))
                assert not found, (name, build, found[:5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_inference_backward_numba_matches_reference_and_the_formula(dtype, shape):
    """batchnorm_inference_backward (a frozen BatchNorm's backward): dx = dy * gamma /
    sqrt(running_var + eps), per channel; numba against numpy, both against the formula."""
    ref, fast = fnn.get_ops("numpy"), fnn.get_ops("numba")
    _, gamma, _, dy = random_inputs(shape, dtype, seed=4)
    running_var = np.random.default_rng(5).uniform(0.2, 3.0, shape[1]).astype(dtype)
    expected = ref.batchnorm_inference_backward(dy, gamma, running_var, 1e-3)
    got = fast.batchnorm_inference_backward(dy, gamma, running_var, 1e-3)
    assert got.dtype == expected.dtype == dtype and got.shape == expected.shape == dy.shape
    np.testing.assert_allclose(got, expected, **TOL[dtype])
    channel = (1, -1) + (1,) * (dy.ndim - 2)
    formula = dy.astype(np.float64) * (gamma.astype(np.float64) / np.sqrt(running_var + 1e-3)).reshape(
        channel
    )
    np.testing.assert_allclose(expected, formula, rtol=TOL[dtype]["rtol"] * 5, atol=TOL[dtype]["atol"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_backward_is_the_gradient_of_inference(backend):
    """Central differences of sum(dy * batchnorm_inference(x)) in float64."""
    ops = fnn.get_ops(backend)
    x, gamma, beta, dy = random_inputs((3, 4, 5, 2), np.float64, seed=6)
    mean, var = np.linspace(-1, 1, 4), np.linspace(0.5, 2, 4)
    dx = ops.batchnorm_inference_backward(dy, gamma, var, 1e-5)
    h, numeric = 1e-6, np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        f_up = np.sum(dy * ops.batchnorm_inference(up, gamma, beta, mean, var, 1e-5))
        f_down = np.sum(dy * ops.batchnorm_inference(down, gamma, beta, mean, var, 1e-5))
        numeric[i] = (f_up - f_down) / (2 * h)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_backward_rejects_bad_arguments(backend):
    ops = fnn.get_ops(backend)
    dy, gamma = np.zeros((4, 3), np.float32), np.ones(3, np.float32)
    with pytest.raises(
        ValueError, match=r"batchnorm_inference_backward: expected running_var of shape \(3,\)"
    ):
        ops.batchnorm_inference_backward(dy, gamma, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="batchnorm_inference_backward: eps must be a finite number >= 0"):
        ops.batchnorm_inference_backward(dy, gamma, gamma, eps=-1.0)
    with pytest.raises(TypeError, match="batchnorm_inference_backward"):
        ops.batchnorm_inference_backward(dy.astype(np.float64), gamma, gamma)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "leaky_relu"])
def test_dense_batchnorm_gives_the_same_bits_on_every_call(activation):
    """(N, D) inputs: every call, whatever the addresses its arrays get, gives the same
    numbers. Their loops are compiled twice, vectorised and scalar, and LLVM picks one by
    where the arrays lie; with fast-math the two rounded differently and dgamma took one
    of two values from call to call."""
    ops = fnn.get_ops("numba")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((96, 97)).astype(np.float32)
    gamma = rng.uniform(0.5, 2, 97).astype(np.float32)
    beta = rng.standard_normal(97).astype(np.float32)
    dy = rng.standard_normal((96, 97)).astype(np.float32)
    first = None
    keep = []  # hold earlier results so that later calls get other addresses
    for _ in range(30):
        alpha = 0.1 if activation == "leaky_relu" else 0.0
        y, mean, var = ops.batchnorm(x, gamma, beta, 1e-5, activation=activation, alpha=alpha)
        act_out = None if activation is None else y
        grads = ops.batchnorm_backward(
            dy, x, gamma, mean, var, 1e-5, activation=activation, act_out=act_out, alpha=alpha
        )
        out = (y, mean, var, *grads)
        keep.append(out)
        if first is None:
            first = out
        for a, b in zip(out, first):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "tanh", "leaky_relu"])
@pytest.mark.parametrize("shape", [(3, 5, 4, 6), (2, 3, 7, 1), (1, 4, 3, 3), (4, 2, 5, 5)])
def test_batchnorm_writes_a_channel_slice_and_reads_one_with_the_same_bits(
    backend, dtype, activation, shape, monkeypatch
):
    """``out=`` a channel slice of a larger array (a Concat block's output) gets the bits of
    the op's own output, and nothing else of the array changes; backward reading dy and
    act_out as channel slices of larger arrays gives the bits of contiguous copies. The
    Numba kernels get the larger arrays and the slices' first channels, not copies."""
    ops = fnn.get_ops(backend)
    offsets = []
    spied = {"batchnorm_forward": 9, "batchnorm_forward_smooth": 9, "batchnorm_backward": (1, 11)}
    for name, at in spied.items():  # the arguments' positions after the work count
        kernel = getattr(norm_kernels, name)

        def spy(*args, kernel=kernel, at=at):
            offsets.append(tuple(args[1 + i] for i in ((at,) if isinstance(at, int) else at)))
            return kernel(*args)

        monkeypatch.setattr(norm_kernels, name, spy)
    rng = np.random.default_rng(5)
    N, C = shape[:2]
    x = rng.standard_normal(shape).astype(dtype)
    gamma, beta = (rng.standard_normal(C) + 2).astype(dtype), rng.standard_normal(C).astype(dtype)
    y, mean, var = ops.batchnorm(x, gamma, beta, 1e-5, activation=activation, alpha=0.1)
    big = rng.standard_normal((N, C + 3, *shape[2:])).astype(dtype)
    kept = big.copy()
    offsets.clear()
    got, mean2, var2 = ops.batchnorm(x, gamma, beta, 1e-5, activation, 0.1, out=big[:, 2 : 2 + C])
    assert np.shares_memory(got, big)
    np.testing.assert_array_equal(big[:, 2 : 2 + C], y)
    others = [c for c in range(C + 3) if not 2 <= c < 2 + C]
    np.testing.assert_array_equal(big[:, others], kept[:, others])
    np.testing.assert_array_equal(mean2, mean)
    np.testing.assert_array_equal(var2, var)
    dy_big = rng.standard_normal((N, C + 1, *shape[2:])).astype(dtype)
    dy = np.ascontiguousarray(dy_big[:, 1:])
    act_out = None if activation is None else big[:, 2 : 2 + C]
    own_out = None if activation is None else y
    want = ops.batchnorm_backward(dy, x, gamma, mean, var, 1e-5, activation, own_out, 0.1)
    got = ops.batchnorm_backward(dy_big[:, 1:], x, gamma, mean, var, 1e-5, activation, act_out, 0.1)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    if backend == "numba" and N > 1 and shape[2] * shape[3] > 1:  # images: the slices where they lie
        assert offsets[0] == (2,)
        assert offsets[-1] == ((1, 2) if activation is not None else (0, 0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_out_of_another_layout_gets_a_copy(backend):
    """An ``out`` that is no channel slice of a C-contiguous array (here Fortran-ordered, and
    a slice along the last axis) still receives y."""
    ops = fnn.get_ops(backend)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    y = ops.batchnorm(x, gamma, beta, activation="relu")[0]
    for out in (np.asfortranarray(np.empty_like(x)), np.empty((3, 4, 5, 12), np.float32)[..., ::2]):
        got = ops.batchnorm(x, gamma, beta, activation="relu", out=out)[0]
        assert got is out
        np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_refuses_an_out_of_the_wrong_shape_dtype_or_a_read_only_one(backend):
    ops = fnn.get_ops(backend)
    x = np.ones((2, 3, 4, 4), np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"batchnorm: expected out of shape \(2, 3, 4, 4\) and dtype"):
        ops.batchnorm(x, gamma, beta, out=np.empty((2, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="dtype float32.*got shape \\(2, 3, 4, 4\\) and dtype float64"):
        ops.batchnorm(x, gamma, beta, out=np.empty((2, 3, 4, 4), np.float64))
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="batchnorm: out is read-only"):
        ops.batchnorm(x, gamma, beta, out=read_only)
    with pytest.raises(TypeError, match="batchnorm: expected out to be a numpy array"):
        ops.batchnorm(x, gamma, beta, out=[0.0])


def test_channel_window_finds_the_array_a_channel_slice_lies_in():
    """(full, start) for channel slices of C-contiguous arrays, views of views included, and
    None for what is not laid out so."""
    from fastnn.backends._arrays import channel_window

    big = np.arange(3 * 7 * 3 * 4, dtype=np.float32).reshape(3, 7, 3, 4)
    for start, stop in [(0, 3), (3, 7), (2, 5), (0, 7), (6, 7)]:
        view = big[:, start:stop]
        full, at = channel_window(view)
        assert np.shares_memory(full, big) and full.shape[1] * full.shape[2] >= 7 * 12
        np.testing.assert_array_equal(full[:, at : at + view.shape[1]].reshape(view.shape), view)
    inner = np.arange(4 * 7 * 12, dtype=np.float64)[7 * 12 :].reshape(3, 7, 3, 4)[:, 2:5]
    full, at = channel_window(inner)
    assert at == 2
    np.testing.assert_array_equal(full[:, 2:5].reshape(inner.shape), inner)
    for other in (big[:, :, ::2], np.asfortranarray(big), big[:, 1:3, :, 1:], big.astype(">f4")[:, 1:3]):
        assert channel_window(other) is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", [None, "relu", "leaky_relu", "tanh"])
def test_batchnorm_with_a_residual_is_the_sum_then_the_activation_bit_for_bit(
    backend, dtype, shape, activation
):
    """residual=r gives f(bn(x) + r): the numbers of batchnorm, then add, then the
    activation op, bit for bit (a residual block's sum and ReLU fused into the batch norm
    pass), and the statistics of x alone; the numba op is close to the reference."""
    ops = fnn.get_ops(backend)
    x, gamma, beta, _ = random_inputs(shape, dtype, seed=3)
    r = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    r0 = r.copy()
    y, mean, var = ops.batchnorm(x, gamma, beta, 1e-5, activation=activation, alpha=0.1, residual=r)
    plain, mean_plain, var_plain = ops.batchnorm(x, gamma, beta, 1e-5)
    want = ops.add(plain, r)
    if activation == "leaky_relu":
        want = ops.leaky_relu(want, 0.1)
    elif activation is not None:
        want = getattr(ops, activation)(want)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(mean, mean_plain)
    np.testing.assert_array_equal(var, var_plain)
    np.testing.assert_array_equal(r, r0)
    if backend == "numba":
        reference = fnn.get_ops("numpy").batchnorm
        ref = reference(x, gamma, beta, 1e-5, activation=activation, alpha=0.1, residual=r)[0]
        np.testing.assert_allclose(y, ref, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_with_a_residual_writes_into_out_and_a_channel_slice(backend):
    ops = fnn.get_ops(backend)
    x, gamma, beta, _ = random_inputs((3, 4, 5, 6), np.float32, seed=5)
    r = np.random.default_rng(6).standard_normal(x.shape).astype(np.float32)
    y = ops.batchnorm(x, gamma, beta, activation="relu", residual=r)[0]
    wide = np.full((3, 7, 5, 6), -7.0, np.float32)
    out = ops.batchnorm(x, gamma, beta, activation="relu", residual=r, out=wide[:, 2:6])[0]
    assert np.shares_memory(out, wide)
    np.testing.assert_array_equal(wide[:, 2:6], y)
    assert (wide[:, :2] == -7).all() and (wide[:, 6:] == -7).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_refuses_a_residual_of_the_wrong_shape_or_dtype(backend):
    ops = fnn.get_ops(backend)
    x = np.ones((2, 3, 4, 4), np.float32)
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(
        ValueError, match=r"batchnorm: expected residual of the output's shape \(2, 3, 4, 4\), got"
    ):
        ops.batchnorm(x, gamma, beta, residual=np.ones((2, 3, 4, 5), np.float32))
    with pytest.raises(TypeError, match="expected residual of the output's dtype float32, got float64"):
        ops.batchnorm(x, gamma, beta, residual=np.ones((2, 3, 4, 4)))
