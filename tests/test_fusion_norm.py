"""BatchNorm fusion: the fused batch norm + activation ops, the Conv2D/Dense + BatchNorm +
activation groups of fastnn.fusion_norm in training (bit-identical to the layers run
apart) and at inference (BatchNorm folded into the weights: within a rounding bound)."""

import functools

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn as fnn
from fastnn import _config
from fastnn.backends import get_ops
from fastnn.fusion import DenseActivation, FusedGroup, first_weighted_unit
from fastnn.fusion_norm import ConvBatchNorm, DenseBatchNorm, NormGroup
from fastnn.gradcheck import numerical_gradient, relative_error

REF = get_ops("numpy")
NB = get_ops("numba")
DTYPES = (np.float32, np.float64)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", None)
LAYER = {
    "relu": fnn.ReLU,
    "sigmoid": fnn.Sigmoid,
    "tanh": fnn.Tanh,
    "leaky_relu": lambda: fnn.LeakyReLU(0.1),
    None: None,
}
ALPHA = {"leaky_relu": 0.1}


def name(value):
    return np.dtype(value).name if isinstance(value, type) else str(value)


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + rng.standard_normal((1, c) + (1,) * (len(shape) - 2))).astype(dtype)
    gamma = rng.uniform(0.5, 2, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dy


def apart(ops, x, gamma, beta, dy, activation, alpha):
    """bn then the activation op, and back through the activation's then bn's backward op,
    as the layers run them (ReLU and LeakyReLU keep their input, Sigmoid and Tanh their output)."""
    y, mean, var = ops.batchnorm(x, gamma, beta, 1e-5)
    if activation is None:
        out, g = y, dy
    elif activation == "leaky_relu":
        out, g = ops.leaky_relu(y, alpha), ops.leaky_relu_backward(dy, y, alpha)
    elif activation == "relu":
        out, g = ops.relu(y), ops.relu_backward(dy, y)
    else:
        out = getattr(ops, activation)(y)
        g = getattr(ops, activation + "_backward")(dy, out)
    return (out, mean, var), ops.batchnorm_backward(g, x, gamma, mean, var, 1e-5)


def fused(ops, x, gamma, beta, dy, activation, alpha):
    out, mean, var = ops.batchnorm(x, gamma, beta, 1e-5, activation=activation, alpha=alpha)
    act_out = None if activation is None else out
    grads = ops.batchnorm_backward(
        dy, x, gamma, mean, var, 1e-5, activation=activation, act_out=act_out, alpha=alpha
    )
    return (out, mean, var), grads


def check_fused_op(shape, dtype, activation, seed=0):
    x, gamma, beta, dy = inputs(shape, dtype, seed)
    alpha = ALPHA.get(activation, 0.0)
    for ops in (NB, REF):  # the fused op is the pair, bit for bit, on each backend
        got, want = (
            fused(ops, x, gamma, beta, dy, activation, alpha),
            apart(ops, x, gamma, beta, dy, activation, alpha),
        )
        for g, w in zip(got[0] + got[1], want[0] + want[1]):
            assert g.dtype == dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w, err_msg=f"{ops.name} {activation} {shape}")
    # and the numba op against the reference
    ref = fused(REF, x, gamma, beta, dy, activation, alpha)
    rtol, atol = (2e-4, 2e-5) if dtype == np.float32 else (1e-10, 1e-11)
    for g, w in zip(got[0] + got[1], ref[0] + ref[1]):
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=rtol * 10, atol=atol * 10 * scale)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=name)
@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("shape", [(7, 5), (1, 3), (33, 300), (5, 3, 4, 6), (2, 7, 9, 13), (16, 8, 16, 16)])
def test_fused_batchnorm_activation_is_the_op_pair(shape, dtype, activation):
    check_fused_op(shape, dtype, activation)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 11),
    hw=st.one_of(st.none(), st.tuples(st.integers(1, 9), st.integers(1, 19))),
    dtype=st.sampled_from(DTYPES),
    activation=st.sampled_from(ACTIVATIONS),
    seed=st.integers(0, 2**31),
)
def test_fused_batchnorm_activation_on_odd_shapes(n, c, hw, dtype, activation, seed):
    check_fused_op((n, c) if hw is None else (n, c, *hw), dtype, activation, seed)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")
@pytest.mark.parametrize("activation", ["sigmoid", "leaky_relu"])
@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 12, 12)])
def test_fused_ops_do_not_depend_on_the_thread_count(shape, activation):
    x, gamma, beta, dy = inputs(shape, np.float32, 4)

    def run():
        forward, backward = fused(NB, x, gamma, beta, dy, activation, 0.1)
        return forward + backward

    before = _config.get_num_threads()
    try:
        _config.set_num_threads(1)
        one = run()
        _config.set_num_threads(2)
        two = run()
    finally:
        _config.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("ops", [NB, REF], ids=lambda o: o.name)
def test_bad_activation_arguments_are_refused(ops):
    x, gamma, beta, dy = inputs((4, 3), np.float32)
    y, mean, var = ops.batchnorm(x, gamma, beta, activation="relu")
    with pytest.raises(ValueError, match="batchnorm: activation must be None or one of"):
        ops.batchnorm(x, gamma, beta, activation="softmax")
    with pytest.raises(ValueError, match="batchnorm: alpha must be a finite number >= 0"):
        ops.batchnorm(x, gamma, beta, activation="leaky_relu", alpha=-0.5)
    with pytest.raises(ValueError, match="batchnorm_backward: activation='relu' needs act_out"):
        ops.batchnorm_backward(dy, x, gamma, mean, var, activation="relu")
    with pytest.raises(ValueError, match="act_out is only read with an activation"):
        ops.batchnorm_backward(dy, x, gamma, mean, var, act_out=y)
    with pytest.raises(ValueError, match=r"expected act_out of shape \(4, 3\)"):
        ops.batchnorm_backward(dy, x, gamma, mean, var, activation="relu", act_out=y[:2])
    with pytest.raises(TypeError, match="act_out"):
        ops.batchnorm_backward(dy, x, gamma, mean, var, activation="relu", act_out=y.astype(np.float64))


# ------------------------------------------------------------------ the groups


def conv_net(activation, backend="numba", dtype="float32", seed=1, momentum=0.9):
    act = [LAYER[activation]()] if activation else []
    layers = [fnn.Conv2D(2, 4, 3, pad=1), fnn.BatchNorm(4, momentum=momentum)] + act
    layers += [fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(4 * 3 * 3, 5)]
    return fnn.Sequential(layers, backend=backend, dtype=dtype, seed=seed)


def dense_net(activation, backend="numba", dtype="float32", seed=1, momentum=0.9):
    act = [LAYER[activation]()] if activation else []
    layers = [fnn.Flatten(), fnn.Dense(2 * 6 * 6, 7), fnn.BatchNorm(7, momentum=momentum)] + act
    return fnn.Sequential(layers + [fnn.Dense(7, 5)], backend=backend, dtype=dtype, seed=seed)


def batch(dtype=np.float32, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 6, 6)).astype(dtype), rng.integers(0, 5, n)


def randomise_norm(model, seed=3):
    """gamma, beta and running statistics away from their initial values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, fnn.BatchNorm):
            c = layer.num_features
            layer.params["gamma"][...] = rng.uniform(0.5, 2, c)
            layer.params["beta"][...] = rng.standard_normal(c)
            layer.running_mean[...] = rng.standard_normal(c)
            layer.running_var[...] = rng.uniform(0.2, 3, c)
        if isinstance(layer, (fnn.Conv2D, fnn.Dense)):
            layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    return model


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=name)
@pytest.mark.parametrize("make", [conv_net, dense_net], ids=["conv", "dense"])
def test_fused_training_is_bitwise_the_unfused_training(make, activation, backend):
    """Adam steps: same losses, weights and running statistics, bit for bit."""
    x, t = batch()
    runs = []
    for fuse in (True, False):
        model = randomise_norm(make(activation, backend))
        model.fuse_layers = fuse
        kinds = [type(unit) for unit in model._plan()]
        assert (ConvBatchNorm in kinds or DenseBatchNorm in kinds) == fuse
        optimizer = fnn.optim.Adam(lr=1e-2)
        losses = [model.train_step(x, t, optimizer) for _ in range(4)]
        buffers = [a.copy() for layer in model.layers for a in layer.buffers.values()]
        runs.append((losses, model.flat_params.copy(), model.flat_grads.copy(), buffers))
    (la, pa, ga, ba), (lb, pb, gb, bb) = runs
    assert la == lb
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(ga, gb)
    for a, b in zip(ba, bb):
        np.testing.assert_array_equal(a, b)


def check_group_gradients(model, x, t):
    """Backprop against central differences for every parameter and the input; the bias
    right before BatchNorm has a zero gradient (up to rounding) on both sides."""
    x = x.copy()

    def loss():
        return model.loss(x, t, train=True)

    buffers = [(a, a.copy()) for layer in model.layers for a in layer.buffers.values()]
    try:
        loss()
        dx = model.backward()
        for layer in model.layers:
            for key, param in layer.params.items():
                numeric = numerical_gradient(loss, param, 1e-5)
                before_norm = key == "b" and any(
                    isinstance(u, NormGroup) and u.layers[0] is layer for u in model._plan()
                )
                if before_norm:
                    assert np.abs(layer.grads[key]).max() < 1e-12 and np.abs(numeric).max() < 1e-7
                    continue
                error = relative_error(layer.grads[key], numeric)
                assert error < 1e-6, f"{layer.describe()} {key}: {error:.2e}"
        assert relative_error(dx, numerical_gradient(loss, x, 1e-5)) < 1e-6
    finally:
        for array, saved in buffers:
            array[...] = saved


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("activation", ["tanh", "leaky_relu", None], ids=name)
def test_fused_groups_pass_the_gradient_check(activation, backend):
    rng = np.random.default_rng(6)
    act = [LAYER[activation]()] if activation else []
    model = fnn.Sequential(
        [fnn.Conv2D(2, 3, 3, pad=1), fnn.BatchNorm(3)]
        + act
        + [
            fnn.Flatten(),
            fnn.Dense(3 * 4 * 4, 5),
            fnn.Tanh(),
            fnn.Dense(5, 4),
            fnn.BatchNorm(4),
            fnn.Sigmoid(),
        ]
        + [fnn.Dense(4, 3)],
        backend=backend,
        dtype="float64",
        seed=2,
    )
    randomise_norm(model)
    kinds = [type(unit) for unit in model._plan()]
    assert kinds == [ConvBatchNorm, fnn.Flatten, DenseActivation, DenseBatchNorm, fnn.Dense]
    check_group_gradients(model, rng.standard_normal((4, 2, 4, 4)), rng.integers(0, 3, 4))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_the_pooled_group_passes_the_gradient_check(backend):
    """Conv2D + BatchNorm + ReLU + MaxPool2D as one group (pooling in the group's backward)."""
    rng = np.random.default_rng(12)
    model = randomise_norm(conv_net("relu", backend, "float64", seed=5))
    assert [type(unit) for unit in model._plan()] == [ConvBatchNorm, fnn.Flatten, fnn.Dense]
    assert model._plan()[0].pool is model.layers[3]
    check_group_gradients(model, rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 5, 4))


def plan_of(layers):
    model = fnn.Sequential(layers, seed=0)
    return [
        (type(unit).__name__, [type(layer).__name__ for layer in getattr(unit, "layers", [unit])])
        for unit in model._plan()
    ]


def test_plan_fuses_conv_or_dense_directly_followed_by_batchnorm():
    assert plan_of(
        [
            fnn.Conv2D(1, 2, 3, pad=1),
            fnn.BatchNorm(2),
            fnn.ReLU(),
            fnn.MaxPool2D(2),  # after a ReLU: pooled in the group
            fnn.Conv2D(2, 2, 3, pad=1),
            fnn.BatchNorm(2),
            fnn.Tanh(),
            fnn.MaxPool2D(2),  # after another activation: apart
            fnn.Conv2D(2, 2, 3, pad=1),
            fnn.BatchNorm(2),  # no activation after it
            fnn.Conv2D(2, 2, 3, pad=1),
            fnn.ReLU(),
            fnn.BatchNorm(2),  # not directly after the convolution
            fnn.Conv2D(2, 2, 3, pad=1),
            fnn.BatchNorm(2),
            fnn.Softmax(),  # not an activation the group takes
            fnn.Conv2D(2, 2, 3, pad=1),
            fnn.Dropout(0.1),
            fnn.BatchNorm(2),  # another layer between
            fnn.BatchNorm(2),
            fnn.Tanh(),  # BatchNorm + activation without a convolution before
            fnn.Flatten(),
            fnn.Dense(8, 3),
            fnn.BatchNorm(3),
            fnn.LeakyReLU(0.2),
            fnn.Dense(3, 3),
            fnn.BatchNorm(3),
            fnn.Sigmoid(),
        ]
    ) == [
        ("ConvBatchNorm", ["Conv2D", "BatchNorm", "ReLU", "MaxPool2D"]),
        ("ConvBatchNorm", ["Conv2D", "BatchNorm", "Tanh"]),
        ("MaxPool2D", ["MaxPool2D"]),
        ("ConvBatchNorm", ["Conv2D", "BatchNorm"]),
        ("ConvActivation", ["Conv2D", "ReLU"]),
        ("BatchNorm", ["BatchNorm"]),
        ("ConvBatchNorm", ["Conv2D", "BatchNorm"]),
        ("Softmax", ["Softmax"]),
        ("Conv2D", ["Conv2D"]),
        ("Dropout", ["Dropout"]),
        ("BatchNorm", ["BatchNorm"]),
        ("BatchNorm", ["BatchNorm"]),
        ("Tanh", ["Tanh"]),
        ("Flatten", ["Flatten"]),
        ("DenseBatchNorm", ["Dense", "BatchNorm", "LeakyReLU"]),
        ("DenseBatchNorm", ["Dense", "BatchNorm", "Sigmoid"]),
    ]
    model = conv_net("relu")
    group = model._plan()[0]
    assert isinstance(group, FusedGroup) and group.layers == tuple(model.layers[:4])
    assert group.describe() == " + ".join(layer.describe() for layer in model.layers[:4])
    assert group.pool is model.layers[3]
    assert first_weighted_unit(model._plan()) == 0
    model.fuse_layers = False
    assert model._plan() == model.layers


@pytest.mark.parametrize("cls", [ConvBatchNorm, DenseBatchNorm])
def test_the_groups_have_the_signatures_of_a_weighted_layer(cls):
    from test_layer_protocol import parameters

    assert issubclass(cls, FusedGroup)
    assert parameters(cls.forward) == parameters(fnn.Dense.forward)
    assert parameters(cls.backward) == parameters(fnn.Dense.backward)


def test_a_training_step_skips_the_first_groups_input_gradient(monkeypatch):
    model = conv_net("relu")
    calls = []
    original = ConvBatchNorm.backward

    def spy(unit, dy, input_grad=True):
        calls.append(input_grad)
        return original(unit, dy, input_grad=input_grad)

    monkeypatch.setattr(ConvBatchNorm, "backward", spy)
    x, t = batch()
    model.train_step(x, t, fnn.optim.SGD(lr=0.1))
    assert calls == [False]


def test_group_errors_name_the_layers():
    model = conv_net("relu")
    group = model._plan()[0]
    with pytest.raises(RuntimeError, match=r"Conv2D.*BatchNorm.*ReLU.*backward\(\) called before forward"):
        group.backward(np.zeros((2, 4, 6, 6), np.float32))
    with pytest.raises(ValueError, match=r"Conv2D"):
        model.forward(np.zeros((2, 3, 6, 6), np.float32))
    bad = fnn.Sequential([fnn.Conv2D(1, 3, 3), fnn.BatchNorm(4), fnn.ReLU()], seed=0)
    x = np.zeros((2, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"at layers\[1\]: BatchNorm\(4\): expected inputs of shape"):
        bad.loss(x, [0, 1])  # the model's entry check
    with pytest.raises(ValueError, match=r"BatchNorm\(4\): expected input of shape"):
        bad._plan()[0].forward(x, train=True)  # the group's own


# ------------------------------------------------------------------ inference: the fold


def fold_bound(model, x):
    """A bound on |folded - apart| for the first group's output: a few roundings of each of
    the K + 2 terms of a folded output, in units of the output's scale, x the dtype's eps."""
    layer, bn = model.layers[0], model.layers[1]
    scale = np.abs(bn.params["gamma"]) / np.sqrt(bn.running_var + bn.eps)
    W, b = np.abs(layer.params["W"]).astype(np.float64), layer.params["b"].astype(np.float64)
    ax = np.abs(x).astype(np.float64)
    if isinstance(layer, fnn.Conv2D):
        terms = REF.conv2d(ax, W, np.zeros(len(b)), layer.stride, layer.pad)
        k = W[0].size
        per_channel = (1, -1, 1, 1)
    else:
        terms = ax.reshape(len(x), -1) @ W
        k = W.shape[0]
        per_channel = (1, -1)
    magnitude = (terms + np.abs(b - bn.running_mean).reshape(per_channel)) * scale.reshape(per_channel)
    magnitude += np.abs(bn.params["beta"]).reshape(per_channel)
    bound = 4 * (k + 4) * np.finfo(model.dtype).eps * magnitude
    pools = [layer for layer in model.layers if isinstance(layer, fnn.MaxPool2D)]
    for pool in pools:  # a maximum moves at most as far as the values it is taken over
        bound = REF.maxpool2d(bound, pool.size, pool.stride, pool.pad)[0]
    return bound


def group_only(kind, activation, backend, dtype):
    """A model of just the group's layers (Conv2D or Dense, BatchNorm, f), randomised, and
    an input batch of 5: a convolution and a Dense layer narrower than the batch fold, a
    Dense layer wider than the batch runs its layers' ops."""
    act = [LAYER[activation]()] if activation else []
    rng = np.random.default_rng(7)
    pool = {"conv_pool": [fnn.MaxPool2D(2)], "conv_pool3": [fnn.MaxPool2D(3, stride=1)]}.get(kind, [])
    if kind.startswith("conv"):
        layers, x = [fnn.Conv2D(2, 4, 3, pad=1), fnn.BatchNorm(4)], rng.standard_normal((5, 2, 6, 6))
    else:
        width = 3 if kind == "dense" else 9
        layers, x = [fnn.Dense(width, 7), fnn.BatchNorm(7)], rng.standard_normal((5, width))
    model = fnn.Sequential(layers + act + pool, backend=backend, dtype=np.dtype(dtype).name, seed=1)
    return randomise_norm(model), x.astype(dtype)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", DTYPES, ids=name)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=name)
@pytest.mark.parametrize("kind", ["conv", "conv_pool", "conv_pool3", "dense", "dense_wide"])
def test_folded_inference_matches_the_layers_apart(kind, activation, dtype, backend):
    """Within a bound derived from the dtype's eps and the layer's sizes, against the
    layers run apart on the same backend and on the reference (with a max pooling after
    a ReLU in the group, 2x2 and overlapping 3x3)."""
    model, x = group_only(kind, activation, backend, dtype)
    group, *rest = model._plan()
    assert isinstance(group, NormGroup) and group.folds_for(x) == (kind != "dense_wide")
    assert len(rest) == (1 if "pool" in kind and activation != "relu" else 0)
    folded = model.predict(x)
    np.testing.assert_array_equal(model.forward(x), folded)
    model.fuse_layers = False
    apart_ = model.predict(x)
    if kind == "dense_wide":
        np.testing.assert_array_equal(folded, apart_)
    expected, _ = group_only(kind, activation, "numpy", dtype)
    expected.fuse_layers = False
    bound = fold_bound(model, x)
    assert folded.dtype == dtype and folded.shape == apart_.shape
    for other in (apart_, expected.predict(x)):
        excess = np.abs(folded.astype(np.float64) - other) - bound
        assert excess.max() <= 0, f"{excess.max():.3g} beyond the bound"


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_residual_blocks_sum_in_the_folded_convolution_is_the_convolution_then_add_relu(
    backend, monkeypatch
):
    """ResNet's basic block at inference: relu(body(x) + x) with the sum and the ReLU in the
    store of the body's last (folded) convolution equals that convolution then add_relu,
    bit for bit; a projection shortcut and a block whose body ends otherwise go the old way."""
    from fastnn import fusion_norm

    def block(c, projection=False, last_bn=True):
        body = [fnn.Conv2D(c, c, 3, pad=1), fnn.BatchNorm(c), fnn.ReLU(), fnn.Conv2D(c, c, 3, pad=1)]
        body += [fnn.BatchNorm(c)] if last_bn else [fnn.Tanh()]
        shortcut = [fnn.Conv2D(c, c, 1), fnn.BatchNorm(c)] if projection else None
        return [fnn.Residual(body, shortcut), fnn.ReLU()]

    layers = [fnn.Conv2D(2, 4, 3, pad=1), *block(4), *block(4, projection=True), *block(4, last_bn=False)]
    model = fnn.Sequential(layers + [fnn.GlobalAvgPool2D(), fnn.Dense(4, 3)], backend=backend, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2, 7, 7))
    model.fit(x, rng.integers(0, 3, 40), epochs=1, batch_size=20, verbose=0)  # running stats of its own
    calls = []
    conv2d = model.ops.conv2d

    @functools.wraps(conv2d)  # the group reads the op's signature
    def spy(*args, **kwargs):
        calls.append(kwargs.get("residual") is not None)
        return conv2d(*args, **kwargs)

    monkeypatch.setattr(model.ops, "conv2d", spy)
    fused = model.predict(x)
    assert sum(calls) == 2  # the two blocks whose body ends with a Conv2D + BatchNorm
    groups = [
        unit for layer in model.layers if isinstance(layer, fnn.Residual) for unit in layer._units["body"]
    ]
    assert all(getattr(unit, "_cache", None) is None for unit in groups)  # inference keeps nothing
    accepts = fusion_norm._accepts
    monkeypatch.setattr(fusion_norm, "_accepts", lambda op, name: name != "residual" and accepts(op, name))
    calls.clear()
    np.testing.assert_array_equal(fused, model.predict(x))
    assert not any(calls)


def test_the_fold_is_cached_and_recomputed_whenever_a_source_changes(tmp_path):
    x, t = batch()
    model = randomise_norm(conv_net("relu"))
    conv, bn = model.layers[0], model.layers[1]

    def check():
        got = model.predict(x)
        model.fuse_layers = False
        want = model.predict(x)
        model.fuse_layers = True
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        return got

    first = check()
    group = model._plan()[0]  # (the plan is rebuilt when fuse_layers changes)
    model.predict(x)
    fold = group._fold
    np.testing.assert_array_equal(model.predict(x), first)
    assert group._fold is fold  # unchanged sources: the cached fold
    model.train_step(x, t, fnn.optim.Adam(lr=1e-2))  # params and running statistics move
    assert model._plan()[0] is group
    assert not np.array_equal(model.predict(x), first)
    assert group._fold is not fold
    check()
    for change in (
        lambda: conv.params["W"].__imul__(1.5),
        lambda: conv.params["b"].__iadd__(0.5),
        lambda: bn.params["gamma"].__imul__(0.5),
        lambda: bn.params["beta"].__iadd__(1.0),
        lambda: bn.running_mean.__iadd__(0.3),
        lambda: bn.running_var.__imul__(2.0),
        lambda: model.flat_params.__imul__(0.9),
    ):
        before = model.predict(x)
        change()
        assert not np.array_equal(check(), before)
    before = model.predict(x)
    bn.eps = 0.5
    assert not np.array_equal(check(), before)
    bn.eps = 1e-5
    # a file loaded into the same model (a checkpoint restore writes in place)
    model.save(tmp_path / "a.npz")
    saved = model.predict(x)
    model.train_step(x, t, fnn.optim.Adam(lr=1e-2))
    assert not np.array_equal(model.predict(x), saved)
    loaded = fnn.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(loaded.predict(x), saved)
    model.flat_params[...] = loaded.flat_params
    for a, b in zip(model.layers, loaded.layers):
        for key in a.buffers:
            a.buffers[key][...] = b.buffers[key]
    np.testing.assert_array_equal(model.predict(x), saved)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_saved_files_do_not_depend_on_fusion(tmp_path, backend):
    """A model trained fused saves and loads exactly like the one trained apart."""
    x, t = batch()
    paths = []
    for fuse in (True, False):
        model = randomise_norm(conv_net("tanh", backend, momentum=0.5))
        model.fuse_layers = fuse
        model.fit(x, t, epochs=2, batch_size=3, verbose=0, seed=0)
        paths.append(tmp_path / f"{fuse}.npz")
        model.save(paths[-1])
    with np.load(paths[0]) as a, np.load(paths[1]) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    loaded = fnn.load(paths[0])
    assert isinstance(loaded._plan()[0], ConvBatchNorm)
    np.testing.assert_array_equal(loaded.predict(x), fnn.load(paths[1]).predict(x))
