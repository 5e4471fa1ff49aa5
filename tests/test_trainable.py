"""layer.trainable = False freezes a layer: no update, no weight decay, no weight gradient."""

import re

import numpy as np
import pytest

import fastnn as fnn

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]


def small_model(backend="numba"):
    return fnn.Sequential(
        [fnn.Dense(6, 5), fnn.ReLU(), fnn.Dense(5, 4), fnn.Tanh(), fnn.Dense(4, 3)], backend=backend, seed=0
    )


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 6)).astype(np.float32), rng.integers(0, 3, 16)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_frozen_layer_keeps_its_weights_and_the_others_train_as_without_it(name):
    x, t = batch()
    frozen, free = small_model(), small_model()
    frozen.layers[2].trainable = False
    kept = frozen.layers[2].params["W"].copy(), frozen.layers[2].params["b"].copy()
    opt_frozen = fnn.optim.get_optimizer(name, lr=0.05, weight_decay=0.1)
    opt_free = fnn.optim.get_optimizer(name, lr=0.05, weight_decay=0.1)
    for _ in range(3):
        frozen.train_step(x, t, opt_frozen)
    np.testing.assert_array_equal(frozen.layers[2].params["W"], kept[0])  # no update, no decay
    np.testing.assert_array_equal(frozen.layers[2].params["b"], kept[1])
    assert not np.array_equal(frozen.layers[0].params["W"], free.layers[0].params["W"])
    assert not np.any(frozen.layers[2].grads["W"])  # no weight gradient
    for state in opt_frozen.state.values():  # the frozen part of the state stays zero
        start = frozen.layers[0].params["W"].size + 5
        assert not np.any(state[start : start + 5 * 4 + 4])
    # the last layer, behind the frozen one, gets the same first step as in an all-trainable model
    frozen2 = small_model()
    frozen2.layers[2].trainable = False
    free.train_step(x, t, opt_free)
    frozen2.train_step(x, t, fnn.optim.get_optimizer(name, lr=0.05, weight_decay=0.1))
    np.testing.assert_array_equal(frozen2.layers[4].params["W"], free.layers[4].params["W"])


def test_the_optimizer_makes_one_call_when_all_train_and_one_per_run_of_trainable_layers(monkeypatch):
    model = small_model()
    ops = model.ops
    calls = []
    real = type(ops).adam_step
    monkeypatch.setattr(
        type(ops), "adam_step", lambda self, p, *a, **k: (calls.append(p.size), real(self, p, *a, **k))[1]
    )
    x, t = batch()
    opt = fnn.optim.Adam()
    model.train_step(x, t, opt)
    assert calls == [model.num_params]
    calls.clear()
    model.layers[2].trainable = False
    assert model.trainable_spans() == [(0, 35), (35 + 24, model.num_params)]
    model.train_step(x, t, opt)
    assert calls == [35, 15]
    model.layers[0].trainable = model.layers[4].trainable = False
    model.layers[2].trainable = True
    assert model.trainable_spans() == [(35, 59)]


def test_trainable_is_saved_with_the_model(tmp_path):
    model = small_model()
    model.layers[0].trainable = False
    model.save(tmp_path / "m.npz")
    loaded = fnn.load(tmp_path / "m.npz")
    assert [layer.trainable for layer in loaded.layers] == [False, True, True, True, True]
    assert "frozen 35" in loaded.summary(input_shape=(6,))


def test_frozen_model_gradients_are_zero_on_both_backends():
    x, t = batch(1)
    for backend in ("numpy", "numba"):
        model = small_model(backend)
        model.layers[4].trainable = False
        model.loss(x, t)
        model.backward()
        assert not np.any(model.layers[4].grads["W"]) and np.any(model.layers[0].grads["W"])


def residual_model(dtype="float32"):
    return fnn.Sequential(
        [
            fnn.Dense(6, 5),
            fnn.Residual([fnn.Dense(5, 5), fnn.Tanh(), fnn.Dense(5, 5)]),
            fnn.ReLU(),
            fnn.Dense(5, 3),
        ],
        seed=1,
        dtype=dtype,
    )


def test_freezing_a_block_or_a_layer_inside_one(tmp_path):
    x, t = batch(2)
    model = residual_model()
    block = model.layers[1]
    block.body[2].trainable = False  # one layer inside the block
    assert model.trainable_spans() == [(0, 35 + 30), (35 + 30 + 30, model.num_params)]
    kept = block.body[2].params["W"].copy()
    first = block.body[0].params["W"].copy()
    for _ in range(2):
        model.train_step(x, t, fnn.optim.Adam(0.05))
    np.testing.assert_array_equal(block.body[2].params["W"], kept)
    assert not np.array_equal(block.body[0].params["W"], first)
    model.save(tmp_path / "m.npz")
    loaded = fnn.load(tmp_path / "m.npz")
    assert [layer.trainable for layer in loaded.layers[1].body] == [True, True, False]
    block.trainable = False  # the whole block, whatever its layers say
    block.body[2].trainable = True
    assert model.trainable_spans() == [(0, 35), (35 + 60, model.num_params)]


@pytest.mark.parametrize("freeze", ["layer", "inside", "block"])
def test_the_gradient_check_leaves_out_frozen_layers_and_passes_on_the_rest(freeze, capsys):
    model = residual_model("float64")
    x, t = batch(3)
    if freeze == "layer":
        model.layers[3].trainable = False
    elif freeze == "inside":
        model.layers[1].body[0].trainable = False
    else:
        model.layers[1].trainable = False
    errors = fnn.gradcheck(model, x.astype(np.float64), t, check_input=True)
    names = [model.layer_name(i) for i in (0, 1, 3)]
    left_out = {"layer": names[2], "inside": None, "block": names[1]}[freeze]
    assert set(errors) == {n for n in names if n != left_out} | {"input"}
    assert max(errors.values()) < 1e-6, errors
    if left_out:
        assert re.search(rf"{re.escape(left_out)}\s+frozen", capsys.readouterr().out)


def test_a_standalone_frozen_block_computes_no_weight_gradients():
    block = fnn.Residual([fnn.Dense(4, 4), fnn.Tanh(), fnn.Dense(4, 4)]).initialize(rng=0)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    block.trainable = False
    block.forward(x, train=True)
    dx = block.backward(np.ones((3, 4), np.float32))
    assert all(layer.frozen for layer in block.body)
    assert not any(np.any(g) for g in block.grads.values())
    block.trainable = True  # and it trains again
    block.forward(x, train=True)
    assert np.array_equal(block.backward(np.ones((3, 4), np.float32)), dx)
    assert not any(layer.frozen for layer in block.body)
    assert all(np.any(g) for g in block.grads.values())


def test_a_layer_taken_out_of_a_frozen_block_trains_in_a_new_model():
    old = residual_model()
    old.layers[1].trainable = False
    x, t = batch(4)
    old.train_step(x, t, fnn.optim.SGD(0.1))
    dense = old.layers[1].body[0]
    assert dense.frozen
    new = fnn.Sequential([dense, fnn.ReLU(), fnn.Dense(5, 3)], seed=2)
    before = dense.params["W"].copy()
    new.train_step(np.ones((4, 5), np.float32), np.array([0, 1, 2, 0]), fnn.optim.SGD(0.1))
    assert not dense.frozen and not np.array_equal(dense.params["W"], before)


def test_the_summary_counts_a_frozen_blocks_parameters_as_frozen():
    model = residual_model()
    model.layers[1].trainable = False
    assert "frozen 60" in model.summary(input_shape=(6,))


def test_a_new_model_from_trained_layers_keeps_their_weights():
    x, t = batch(3)
    old = small_model()
    for _ in range(3):
        old.train_step(x, t, fnn.optim.Adam(0.05))
    trained = [layer.params["W"].copy() for layer in old.layers[:3] if "W" in layer.params]
    new = fnn.Sequential(old.layers[:-1] + [fnn.Dense(4, 2)], seed=9)
    assert [layer.params["W"] for layer in new.layers[:3] if "W" in layer.params][0] is not trained[0]
    for layer, weights in zip([new.layers[0], new.layers[2]], trained):
        np.testing.assert_array_equal(layer.params["W"], weights)
    assert np.shares_memory(new.layers[0].params["W"], new.flat_params)  # bound to the new buffer
    fresh = fnn.Sequential([fnn.Dense(6, 5)], seed=0)
    np.testing.assert_array_equal(fresh.layers[0].params["W"], small_model().layers[0].params["W"])


# -- the backward pass skips a frozen layer's weight gradient ------------------------------

BACKENDS = ["numpy", "numba"]


def conv_net(backend="numba", dtype="float32", fuse=True, seed=0):
    """Every fused group that holds a weighted layer, a strided convolution and a block:
    (N, 2, 8, 8) -> (N, 3)."""
    model = fnn.Sequential(
        [
            fnn.Conv2D(2, 4, 3, pad=1),  # ConvReLUMaxPool
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Conv2D(4, 4, 3, stride=2, pad=1),  # ConvBatchNorm, stride 2
            fnn.BatchNorm(4),
            fnn.ReLU(),
            fnn.Residual([fnn.Conv2D(4, 4, 3, pad=1, impl="im2col"), fnn.Tanh()]),  # ConvActivation
            fnn.Flatten(),
            fnn.Dense(16, 6),  # DenseActivation
            fnn.Sigmoid(),
            fnn.Dense(6, 3),
        ],
        backend=backend,
        dtype=dtype,
        seed=seed,
    )
    model.fuse_layers = fuse
    return model


def image_batch(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


def weighted_leaves(model):
    """Every layer with parameters, blocks opened, in buffer order."""
    from fastnn.layers import leaves

    return [layer for layer, _ in leaves(model.layers) if layer.params]


#: layers to freeze in conv_net: each weighted layer of a fused group, and the block
FREEZINGS = [(0,), (3,), (8,), (6,), (0, 3, 6, 8, 10)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("frozen", FREEZINGS)
def test_skipping_the_weight_gradients_gives_the_bits_of_computing_then_zeroing_them(backend, frozen):
    """The trainable layers' gradients and the input gradient are bit-identical to those of
    the same network all trainable with the frozen layers' gradients zeroed afterwards
    (what the model did before it skipped them), fused and not."""
    x, t = image_batch()
    for fuse in (True, False):
        skipping, computing = conv_net(backend, fuse=fuse), conv_net(backend, fuse=fuse)
        for i in frozen:
            skipping.layers[i].trainable = False
        skipping.loss(x, t)
        dx = skipping.backward()
        computing.loss(x, t)
        dx_computed = computing.backward()
        for layer, twin in zip(weighted_leaves(skipping), weighted_leaves(computing)):
            if layer.frozen:
                for name, grad in layer.grads.items():
                    assert not np.any(grad), f"{layer.describe()} {name}"
                    twin.grads[name][...] = 0  # what the model did before it skipped them
        skipping_grads = skipping.flat_grads
        np.testing.assert_array_equal(skipping_grads.view(np.uint32), computing.flat_grads.view(np.uint32))
        np.testing.assert_array_equal(dx.view(np.uint32), dx_computed.view(np.uint32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_layer_asks_its_backward_op_for_no_weight_gradient(backend, monkeypatch):
    """Every call of the convolution's and the affine's backward op asks for dW and db
    exactly when its layer is trainable (the ops then never compute them:
    tests/test_kernel_properties.py checks the kernels leave dW alone)."""
    ops = fnn.get_ops(backend)
    calls = []
    for name in ("conv2d_backward", "affine_backward"):
        real = getattr(type(ops), name)

        def recording(self, dy, x, W, *args, _real=real, **kwargs):
            calls.append((id(W), kwargs.get("weight_grad", True)))
            return _real(self, dy, x, W, *args, **kwargs)

        monkeypatch.setattr(type(ops), name, recording)
    x, t = image_batch(1)
    model = conv_net(backend)
    model.layers[0].trainable = model.layers[6].trainable = model.layers[10].trainable = False
    weighted = [model.layers[0], model.layers[3], model.layers[6].body[0], model.layers[8], model.layers[10]]
    wanted = {id(layer.params["W"]): asks for layer, asks in zip(weighted, [False, True, False, True, False])}
    model.train_step(x, t, fnn.optim.SGD(0.1))
    assert sorted(calls) == sorted(wanted.items()), (calls, wanted)


@pytest.mark.parametrize("backend", BACKENDS)
def test_changing_trainable_between_steps_takes_effect_at_the_next_step(backend):
    x, t = image_batch(2)
    model, free = conv_net(backend), conv_net(backend)
    conv = model.layers[3]
    for step, trainable in enumerate((False, True, False)):
        conv.trainable = trainable
        model.loss(x, t)
        model.backward()
        if trainable:  # as a model never frozen, with the same weights
            free.flat_params[...] = model.flat_params
            free.layers[4].buffers["running_mean"][...] = model.layers[4].running_mean
            free.layers[4].buffers["running_var"][...] = model.layers[4].running_var
            free.loss(x, t)
            free.backward()
            np.testing.assert_array_equal(conv.grads["W"], free.layers[3].grads["W"])
            assert np.any(conv.grads["W"])
        else:  # not computed, and no stale values from the step before
            assert not np.any(conv.grads["W"]) and not np.any(conv.grads["b"]), step
        model.train_step(x, t, fnn.optim.SGD(0.1))


# -- a frozen BatchNorm uses and keeps its running statistics --------------------------


def bn_net(backend="numba", dtype="float32", fuse=True):
    """conv + BN + ReLU + max pooling (a ConvBatchNorm group), then Dense + BN + ReLU
    (DenseBatchNorm): (N, 2, 8, 8) -> (N, 3)."""
    model = fnn.Sequential(
        [
            fnn.Conv2D(2, 3, 3, pad=1),
            fnn.BatchNorm(3),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Flatten(),
            fnn.Dense(48, 5),
            fnn.BatchNorm(5),
            fnn.Tanh(),
            fnn.Dense(5, 3),
        ],
        backend=backend,
        dtype=dtype,
        seed=3,
    )
    model.fuse_layers = fuse
    x, t = image_batch(4, n=16)
    model.fit(x, t, epochs=2, batch_size=8, optimizer=fnn.optim.SGD(0.1), verbose=0, seed=0)
    return model  # running statistics away from their initial 0 and 1


def freeze_norms(model):
    norms = [layer for layer in model.layers if isinstance(layer, fnn.BatchNorm)]
    for bn in norms:
        bn.trainable = False
    return norms


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_batchnorm_keeps_its_running_statistics_and_trains_in_the_inference_form(backend):
    x, t = image_batch(5, n=24)
    model = bn_net(backend)
    norms = freeze_norms(model)
    stats = [(bn.running_mean.copy(), bn.running_var.copy(), bn.params["gamma"].copy()) for bn in norms]
    model.fit(x, t, epochs=2, batch_size=8, optimizer=fnn.optim.Adam(0.01), verbose=0, seed=0)
    for bn, (mean, var, gamma) in zip(norms, stats):
        np.testing.assert_array_equal(bn.running_mean, mean)
        np.testing.assert_array_equal(bn.running_var, var)
        np.testing.assert_array_equal(bn.params["gamma"], gamma)
        assert not np.any(bn.grads["gamma"]) and not np.any(bn.grads["beta"])
    # train-mode output = eval-mode output: bit for bit layer by layer, to rounding with
    # the inference fold (which multiplies BatchNorm into the convolution's weights)
    model.fuse_layers = False
    np.testing.assert_array_equal(model.forward(x, train=True), model.forward(x, train=False))
    model.fuse_layers = True
    np.testing.assert_allclose(
        model.forward(x, train=True), model.forward(x, train=False), rtol=1e-4, atol=1e-5
    )
    bn = norms[0]
    z = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(bn.forward(z, train=True), bn.forward(z, train=False))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_batchnorm_backward_is_the_inference_form(backend):
    """dx = dy * gamma / sqrt(running_var + eps) per channel, (N, C, H, W) and (N, D)."""
    model = bn_net(backend, dtype="float64")
    for bn, shape in zip(freeze_norms(model), [(4, 3, 5, 5), (6, 5)]):
        rng = np.random.default_rng(1)
        z, dy = rng.standard_normal(shape), rng.standard_normal(shape)
        bn.forward(z, train=True)
        channel = (1, -1) + (1,) * (len(shape) - 2)
        want = dy * (bn.params["gamma"] / np.sqrt(bn.running_var + bn.eps)).reshape(channel)
        np.testing.assert_allclose(bn.backward(dy), want, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_batchnorm_passes_the_gradient_check(backend):
    model = bn_net(backend, dtype="float64")
    freeze_norms(model)
    x, t = image_batch(6, n=4)
    errors = fnn.gradcheck(model, x.astype(np.float64), t, check_input=True, verbose=False)
    assert not any("BatchNorm" in k for k in errors), errors  # frozen: nothing to check
    assert len(errors) == 4 and max(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_and_unfused_training_agree_bit_for_bit_with_a_frozen_batchnorm(backend):
    x, t = image_batch(7, n=16)
    runs = []
    for fuse in (True, False):
        model = bn_net(backend, fuse=fuse)
        freeze_norms(model)
        model.layers[0].trainable = False  # a frozen convolution in front of the frozen BatchNorm
        model.fit(x, t, epochs=2, batch_size=8, optimizer=fnn.optim.Adam(0.01), verbose=0, seed=0)
        runs.append(model.flat_params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
