"""The blocks Residual and Concat: gradients against central differences, backends and
thread counts agree, nesting, files (save/load, checkpoint resume), the flat buffer, and
shape errors that name the block and both shapes."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _config
from fastnn.gradcheck import numerical_gradient, relative_error
from fastnn.layers.blocks import Block
from fastnn.serialization import model_from_config

TOLERANCE = 1e-6


def image_model(backend="numba", dtype="float64", seed=0, input_shape=(2, 6, 6)):
    """Every kind of block: identity and projection Residual, conv and Dense Concat."""
    return fnn.Sequential(
        [
            fnn.Conv2D(2, 4, 3, pad=1),
            fnn.Tanh(),
            fnn.Residual([fnn.Conv2D(4, 4, 3, pad=1), fnn.Tanh(), fnn.Conv2D(4, 4, 3, pad=1)]),
            fnn.Residual(
                [fnn.Conv2D(4, 6, 3, stride=2, pad=1), fnn.BatchNorm(6), fnn.Tanh()],
                shortcut=[fnn.Conv2D(4, 6, 1, stride=2), fnn.BatchNorm(6)],
            ),
            fnn.Concat([[fnn.Conv2D(6, 2, 1)], [fnn.Conv2D(6, 3, 3, pad=1), fnn.Tanh()]]),
            fnn.GlobalAvgPool2D(),
            fnn.Concat([[fnn.Dense(5, 3)], [fnn.Dense(5, 2), fnn.Sigmoid()]]),
            fnn.Dense(5, 3),
        ],
        backend=backend,
        dtype=dtype,
        seed=seed,
        input_shape=input_shape,
    )


def nested_model(backend="numba", dtype="float64", seed=0):
    """A Concat inside a Residual's body."""
    inner = fnn.Concat([[fnn.Conv2D(3, 1, 1)], [fnn.Conv2D(3, 2, 3, pad=1), fnn.BatchNorm(2), fnn.ReLU()]])
    return fnn.Sequential(
        [fnn.Residual([inner, fnn.Tanh()]), fnn.Flatten(), fnn.Dense(3 * 4 * 4, 3)],
        backend=backend,
        dtype=dtype,
        seed=seed,
    )


def data(shape, n=4, classes=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)).astype(dtype), rng.integers(0, classes, n)


def leaves(layers):
    for layer in layers:
        if isinstance(layer, Block):
            for part in layer.parts().values():
                yield from leaves(part)
        else:
            yield layer


def biases_before_batchnorm(layers):
    """ids of the conv biases followed by a BatchNorm: their true gradient is 0."""
    found = set()
    for layer in layers:
        if isinstance(layer, Block):
            for part in layer.parts().values():
                found |= biases_before_batchnorm(part)
    for a, b in zip(layers, layers[1:]):
        if isinstance(b, fnn.BatchNorm) and "b" in a.params:
            found.add(id(a.params["b"]))
    return found


def check_every_parameter(model, x, t):
    """Each block's parameter against central differences (a bias before BatchNorm, whose
    true gradient is 0, must have a gradient of 0 up to rounding), and fnn.gradcheck."""
    x = model.prepare_input(x)
    zero_grad = biases_before_batchnorm(model.layers)

    def loss():
        return model.loss(x, t, train=True)

    buffers = [(a, a.copy()) for layer in model.layers for a in layer.buffers.values()]
    checked = 0
    for layer in model.layers:
        if not isinstance(layer, Block):
            continue
        loss()
        model.flat_grads[...] = 0
        model.backward()
        for name, param in layer.params.items():
            numeric = numerical_gradient(loss, param, 1e-5)
            analytic = layer.grads[name].copy()
            if id(param) in zero_grad:
                assert np.abs(analytic).max() < 1e-10 and np.abs(numeric).max() < 1e-7, name
            else:
                assert relative_error(analytic, numeric) < TOLERANCE, f"{layer.describe()} {name}"
            checked += 1
    assert checked >= 6  # the nested model has 6 arrays in its block
    for array, saved in buffers:  # the training passes moved BatchNorm's running statistics
        array[...] = saved
    errors = fnn.gradcheck(model, x, t, check_input=True, verbose=False)
    assert errors["input"] < TOLERANCE


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_block_gradients_match_central_differences(backend):
    model = image_model(backend)
    check_every_parameter(model, *data((2, 6, 6)))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_concat_nested_in_a_residual_body(backend):
    model = nested_model(backend)
    check_every_parameter(model, *data((3, 4, 4)))
    rebuilt = fnn.Sequential.from_config(model.get_config())
    rebuilt.flat_params[...] = model.flat_params
    x, _ = data((3, 4, 4), seed=5)
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))
    assert rebuilt.layers[0].describe() == "Residual(body 2 layers, shortcut identity)"
    assert isinstance(rebuilt.layers[0].body[0], fnn.Concat)


def test_numba_and_numpy_agree_on_forward_and_backward():
    x, t = data((2, 6, 6))
    results = []
    for backend in ("numpy", "numba"):
        model = image_model(backend)
        loss = model.loss(x, t, train=True)
        dx = model.backward()
        results.append((loss, dx, model.flat_grads.copy(), model.predict(x)))
    (loss_a, dx_a, g_a, y_a), (loss_b, dx_b, g_b, y_b) = results
    assert abs(loss_a - loss_b) < 1e-12
    np.testing.assert_allclose(dx_b, dx_a, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(g_b, g_a, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(y_b, y_a, rtol=1e-9, atol=1e-13)


def test_forward_is_the_formula():
    """Residual is body + shortcut and Concat stacks the branches on axis 1, run apart."""
    model = image_model("numpy")
    x, _ = data((2, 6, 6))
    h = model.layers[1].forward(model.layers[0].forward(x, False), False)
    residual = model.layers[3]
    body, shortcut = h, h
    for layer in residual.body:
        body = layer.forward(body, False)
    for layer in residual.shortcut:
        shortcut = layer.forward(shortcut, False)
    np.testing.assert_array_equal(residual.forward(h, False), body + shortcut)
    concat = model.layers[4]
    y = concat.forward(body + shortcut, False)
    first = concat.branches[0][0].forward(body + shortcut, False)
    assert y.shape == (4, 5, 3, 3)
    np.testing.assert_array_equal(y[:, :2], first)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("view", [True, False])
def test_residual_backward_adds_into_the_bodys_gradient_only_when_it_is_its_own(backend, view):
    """dx = body'(dy) + dy is summed into the body's fresh gradient, but never into dy
    itself, which a body of reshapes hands back (a view of it)."""
    shape = (3, 20) if view else (3, 4, 5, 5)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    kept = dy.copy()
    body = [fnn.Flatten()] if view else [fnn.ReLU()]
    block = fnn.Sequential([fnn.Residual(body)], backend=backend, input_shape=shape[1:]).layers[0]
    block.forward(x, train=True)
    dx = block.backward(dy)
    np.testing.assert_array_equal(dx, (kept if view else kept * (x > 0)) + kept)
    np.testing.assert_array_equal(dy, kept)  # the caller's dy is left alone


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("n", [1, 3])
def test_concat_backward_sums_the_branches_without_writing_into_dy(backend, n):
    """dx = the branches' input gradients summed; with one sample the first branch's slice
    of dy is a view of dy itself, which a branch of reshapes hands back."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    dy = rng.standard_normal((n, 18)).astype(np.float32)
    kept = dy.copy()
    block = fnn.Concat([[fnn.Flatten()], [fnn.ReLU()], [fnn.Flatten()]])
    block = fnn.Sequential([block], backend=backend, input_shape=(6,)).layers[0]
    block.forward(x, train=True)
    dx = block.backward(dy)
    np.testing.assert_array_equal(dx, kept[:, :6] + kept[:, 6:12] * (x > 0) + kept[:, 12:])
    np.testing.assert_array_equal(dy, kept)


def test_the_flat_buffer_holds_every_sublayer_and_one_optimizer_call_updates_all():
    model = image_model("numpy")
    sublayer_params = [p for leaf in leaves(model.layers) for p in leaf.params.values()]
    assert sum(p.size for p in sublayer_params) == model.num_params
    assert all(np.shares_memory(p, model.flat_params) for p in sublayer_params)
    assert "shortcut.1.gamma" in model.layers[3].params and "branches.1.0.W" in model.layers[4].params
    optimizer = fnn.optim.SGD(lr=0.1)
    calls = []
    apply = optimizer.apply
    optimizer.apply = lambda ops, params, grads: (calls.append(params), apply(ops, params, grads))
    before = [p.copy() for p in sublayer_params]
    model.train_step(*data((2, 6, 6)), optimizer)
    assert len(calls) == 1 and calls[0] is model.flat_params
    grads = [g for leaf in leaves(model.layers) for g in leaf.grads.values()]
    for old, new, grad in zip(before, sublayer_params, grads):
        np.testing.assert_allclose(new, old - 0.1 * grad, rtol=1e-12, atol=1e-15)


def test_shape_mismatch_is_refused_when_the_model_is_built():
    bad = fnn.Residual([fnn.Conv2D(8, 16, 3, stride=2, pad=1)], shortcut=[fnn.Conv2D(8, 8, 1, stride=2)])
    with pytest.raises(
        ValueError, match=r"Residual.*body gives \(16, 14, 14\) but shortcut gives \(8, 14, 14\)"
    ):
        fnn.Sequential([bad], input_shape=(8, 28, 28))
    identity = fnn.Residual([fnn.Conv2D(8, 16, 3, pad=1)])
    with pytest.raises(
        ValueError, match=r"body gives \(16, 28, 28\) but the identity shortcut.*\(8, 28, 28\)"
    ):
        fnn.Sequential([identity], input_shape=(8, 28, 28))
    concat = fnn.Concat([[fnn.Conv2D(8, 4, 3, pad=1)], [fnn.Conv2D(8, 4, 3)]])
    with pytest.raises(
        ValueError, match=r"Concat.*branches\[0\] gives \(4, 28, 28\) but branches\[1\] gives \(4, 26, 26\)"
    ):
        fnn.Sequential([concat], input_shape=(8, 28, 28))


def test_shape_mismatch_is_refused_at_the_entry_without_an_input_shape():
    model = fnn.Sequential(
        [fnn.Residual([fnn.Dense(4, 5)]), fnn.Dense(5, 2)], seed=0
    )  # no input shape: built fine
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"Sequential.predict.*layers\[0\].*body gives \(5,\) but .*\(4,\)"):
        model.predict(x)
    with pytest.raises(ValueError, match=r"Sequential.train_step.*body gives \(5,\)"):
        model.train_step(x, np.array([0, 1]), fnn.optim.SGD())


def test_constructor_errors_name_the_block():
    with pytest.raises(ValueError, match=r"Residual: body must hold at least one layer"):
        fnn.Residual([])
    with pytest.raises(TypeError, match=r"Residual: body\[1\]: expected a Layer"):
        fnn.Residual([fnn.ReLU(), "relu"])
    with pytest.raises(TypeError, match=r"Concat: branches must be a list of lists"):
        fnn.Concat(fnn.ReLU())
    with pytest.raises(ValueError, match=r"Concat: expected at least one branch.*\[1, 0\]"):
        fnn.Concat([[fnn.ReLU()], []])
    block = fnn.Residual([fnn.ReLU()]).initialize()
    with pytest.raises(
        RuntimeError, match=r"Residual\(body 1 layers, shortcut identity\): backward\(\) called"
    ):
        block.backward(np.zeros((1, 2), np.float32))


def trained(model, x, t, steps=3):
    optimizer = fnn.optim.Adam(lr=0.01)
    for _ in range(steps):
        model.train_step(x, t, optimizer)
    return model


def test_save_and_load_give_the_same_predictions(tmp_path):
    x, t = data((2, 6, 6), n=8, dtype=np.float32)
    model = trained(image_model(dtype="float32"), x, t)
    running = model.layers[3].buffers["shortcut.1.running_var"]
    assert running is model.layers[3].shortcut[1].running_var and not np.all(running == 1)
    model.save(tmp_path / "blocks.npz")
    loaded = fnn.load(tmp_path / "blocks.npz")
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)
    np.testing.assert_array_equal(loaded.layers[3].shortcut[1].running_var, running)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert "Concat(2 branches: 1, 2 layers)" in loaded.summary()


class Crash(Exception):
    pass


def test_checkpoint_resume_is_bit_exact(tmp_path):
    x, t = data((3, 4, 4), n=40, dtype=np.float32)

    def run(crash_at=None, **kwargs):
        model = nested_model(dtype="float32", seed=1)
        steps = [0]

        def augment(batch, rng):
            steps[0] += 1
            if steps[0] == crash_at:
                raise Crash
            return batch

        model.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=2, augment=augment, **kwargs)
        return model

    expected = run()
    with pytest.raises(Crash):
        run(crash_at=6, checkpoint=tmp_path, checkpoint_every=3)
    resumed = run(checkpoint=tmp_path, checkpoint_every=3, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, expected.flat_params)
    for name, array in expected.layers[0].buffers.items():
        np.testing.assert_array_equal(resumed.layers[0].buffers[name], array)
    assert "body.0.branches.1.1.running_mean" in expected.layers[0].buffers


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")
def test_dropout_inside_a_block_resumes_bit_exact_and_passes_gradcheck(tmp_path):
    """A block holds its sublayers' generators as attributes ("body.1.rng"), the same
    objects, so checkpoints continue Dropout's masks and gradcheck replays them."""

    def model(dtype="float32"):
        body = [fnn.Dense(4, 4), fnn.Dropout(0.3), fnn.Tanh()]
        return fnn.Sequential([fnn.Residual(body), fnn.Dense(4, 3)], dtype=dtype, seed=1)

    block = model().layers[0]
    assert getattr(block, "body.1.rng") is block.body[1].rng
    x, t = data((4,), n=6)
    errors = fnn.gradcheck(model("float64"), x, t, check_input=True, verbose=False)
    assert max(errors.values()) < TOLERANCE
    x, t = data((4,), n=40, dtype=np.float32)

    def run(crash_at=None, **kwargs):
        net, steps = model(), [0]

        def augment(batch, rng):
            steps[0] += 1
            if steps[0] == crash_at:
                raise Crash
            return batch

        net.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=2, augment=augment, **kwargs)
        return net

    expected = run()
    with pytest.raises(Crash):
        run(crash_at=7, checkpoint=tmp_path, checkpoint_every=3)
    resumed = run(checkpoint=tmp_path, checkpoint_every=3, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, expected.flat_params)


def test_summary_counts_a_blocks_parameters_once():
    model = image_model()
    text = model.summary()
    assert f"total params: {model.num_params:,d}" in text
    row = next(line for line in text.splitlines() if "Residual(body 3 layers, shortcut 2 layers)" in line)
    own = sum(p.size for p in model.layers[3].params.values())
    assert row.split()[-1] == f"{own:,d}" and "(N, 6, 3, 3)" in row
    assert "3.1.0    Conv2D(4->6, 1x1, stride 2)" in text


class Snapshots(fnn.callbacks.Callback):
    """The flat parameters and the first layer's buffers at the end of every epoch."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        buffers = {k: v.copy() for k, v in model.layers[0].buffers.items()}
        self.seen.append((model.flat_params.copy(), buffers))


def test_early_stopping_restores_the_best_weights_and_block_buffers():
    x, t = data((3, 4, 4), n=40, dtype=np.float32, seed=7)
    xv, tv = data((3, 4, 4), n=20, dtype=np.float32, seed=8)
    model, snapshots = nested_model(dtype="float32", seed=2), Snapshots()
    history = model.fit(
        x,
        t,
        epochs=8,
        batch_size=10,
        verbose=0,
        seed=3,
        optimizer=fnn.optim.SGD(lr=0.5),
        validation_data=(xv, tv),
        callbacks=[snapshots, fnn.callbacks.EarlyStopping(100, restore_best_weights=True)],
    )
    best = int(np.argmin(history["val_loss"]))
    assert best < len(history["val_loss"]) - 1  # the restored weights are not the last ones
    params, buffers = snapshots.seen[best]
    np.testing.assert_array_equal(model.flat_params, params)
    assert "body.0.branches.1.1.running_var" in buffers
    for name, array in buffers.items():
        np.testing.assert_array_equal(model.layers[0].buffers[name], array)


def test_a_file_naming_an_unknown_sublayer_is_refused(tmp_path):
    config = nested_model(dtype="float32").get_config()
    config["layers"][0]["config"]["body"][0]["config"]["branches"][1][0]["class"] = "Convolution"
    with pytest.raises(
        fnn.ModelFileError,
        match=r"bad\.npz: invalid architecture .*branches\[1\]\[0\]: unknown layer class 'Convolution'",
    ):
        model_from_config(config, tmp_path / "bad.npz")


def test_a_file_with_blocks_nested_beyond_the_stack_is_refused(tmp_path):
    spec = {"class": "ReLU", "config": {}}
    for _ in range(5000):
        spec = {"class": "Residual", "config": {"body": [spec]}}
    config = nested_model(dtype="float32").get_config()
    config["layers"][0] = spec
    with pytest.raises(fnn.ModelFileError, match=r"deep\.npz: invalid architecture \(RecursionError"):
        model_from_config(config, tmp_path / "deep.npz")


@pytest.mark.parametrize("block", ["residual", "concat"])
def test_a_first_block_skips_its_input_gradient_and_keeps_the_weight_gradients(block, monkeypatch):
    def model():
        first = (
            fnn.Residual([fnn.Dense(4, 4), fnn.Tanh()], shortcut=[fnn.Flatten(), fnn.Dense(4, 4)])
            if block == "residual"
            else fnn.Concat([[fnn.Dense(4, 3)], [fnn.Flatten(), fnn.Dense(4, 1), fnn.Tanh()]])
        )
        return fnn.Sequential([first, fnn.Dense(4, 3)], backend="numpy", dtype="float64", seed=0)

    x, t = data((4,))
    full, skipping = model(), model()
    full.loss(x, t)
    assert full.backward() is not None
    skipped = []
    for leaf in leaves(skipping.layers[:1]):
        if isinstance(leaf, fnn.Dense):
            original = leaf.backward
            monkeypatch.setattr(
                leaf,
                "backward",
                lambda dy, input_grad=True, f=original: skipped.append(input_grad) or f(dy, input_grad),
            )
    skipping.fuse_layers = False  # the spies sit on the layers, not on fused groups
    skipping.loss(x, t)
    assert skipping.backward(input_grad=False) is None
    assert skipped == [False, False]
    np.testing.assert_allclose(skipping.flat_grads, full.flat_grads, rtol=1e-13, atol=1e-15)
    assert np.count_nonzero(full.flat_grads) > 20


def test_one_thread_and_two_give_the_same_bits():
    x, t = data((2, 6, 6), n=8, dtype=np.float32)
    results = []
    before = _config.get_num_threads()
    try:
        for threads in (1, 2):
            fnn.set_num_threads(threads)
            model = trained(image_model(dtype="float32"), x, t)
            results.append((model.flat_params.copy(), model.predict(x)))
    finally:
        fnn.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_fit_on_a_tiny_problem_lowers_the_loss():
    x, t = data((2, 6, 6), n=32, dtype=np.float32, seed=3)
    x[np.arange(32), 0, t, t] += 3.0  # the class shows in the image
    model = image_model(dtype="float32", seed=4)
    before = model.evaluate(x, t)["loss"]
    model.fit(x, t, epochs=15, batch_size=8, verbose=0, seed=0, optimizer=fnn.optim.Adam(lr=0.01))
    assert model.evaluate(x, t)["loss"] < 0.5 * before


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "apart"])
def test_inference_keeps_no_arrays_inside_blocks(fuse):
    model = image_model(dtype="float32")
    model.fuse_layers = fuse
    x, t = data((2, 6, 6), dtype=np.float32)
    model.loss(x, t, train=True)
    model.predict(x)

    def units(plan):
        for unit in plan:
            yield unit
            if isinstance(unit, Block):
                for part in unit._part_units().values():
                    yield from units(part)

    everything = list(units(model._plan()))
    assert len(everything) > len(model.layers)
    for unit in everything:
        kept = {
            k for k, v in vars(unit).items() if k.startswith("_") and isinstance(v, (np.ndarray, dict, list))
        }
        kept -= {"_units", "_stops"}  # the plan, not arrays of a pass
        assert not {k for k in kept if getattr(unit, k)}, f"{unit!r} keeps {sorted(kept)} after inference"


def test_blocks_fuse_inside_but_not_with_neighbours():
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 2, 3, pad=1),
            fnn.Residual([fnn.Conv2D(2, 2, 3, pad=1), fnn.BatchNorm(2), fnn.ReLU()]),
            fnn.ReLU(),
        ]
    )
    plan = model._plan()
    # the ReLU after a Residual joins it (the sum and the ReLU in one pass), nothing else does
    assert [type(u).__name__ for u in plan] == ["Conv2D", "ResidualReLU"]
    assert [type(u).__name__ for u in plan[1].layers[0]._part_units()["body"]] == ["ConvBatchNorm"]
    model.fuse_layers = False
    assert [type(u).__name__ for u in model._plan()[1]._part_units()["body"]] == [
        "Conv2D",
        "BatchNorm",
        "ReLU",
    ]


def inception_like_model(backend="numba", dtype="float64", fuse=True, seed=0):
    """A Concat whose branches all end with Conv2D + BatchNorm (+ an activation), a pooling
    branch among them: Inception's block, whose training pass writes the branches into the
    block's output directly."""
    from fastnn.models.inception import inception_block

    block = inception_block(4, (2, 3, 3, 2, 2, 1))
    model = fnn.Sequential(
        [fnn.Conv2D(2, 4, 3, pad=1), fnn.ReLU(), block, fnn.GlobalAvgPool2D(), fnn.Dense(8, 3)],
        backend=backend,
        dtype=dtype,
        seed=seed,
        input_shape=(2, 5, 6),
    )
    model.fuse_layers = fuse
    return model


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_concat_branches_write_into_the_output_with_the_bits_of_the_copies(backend, dtype, monkeypatch):
    """Every branch ends with a fused Conv2D + BatchNorm + ReLU: a training pass writes each
    into its channels of the block's output and backward hands each its channels of dy as a
    view, with no concatenation or channel copies; the weights after Adam steps are those of
    the same model run layer by layer (copies), bit for bit."""
    x, t = data((2, 5, 6), n=5, dtype=np.float32 if dtype == "float32" else np.float64)
    fused, apart = inception_like_model(backend, dtype), inception_like_model(backend, dtype, fuse=False)
    copies = []
    ops = fused.layers[2].ops
    for name in ("concat_channels", "channel_slice"):
        original = getattr(ops, name)
        monkeypatch.setattr(
            ops, name, lambda *a, original=original, name=name, **k: copies.append(name) or original(*a, **k)
        )
    opt_fused, opt_apart = fnn.optim.Adam(1e-2), fnn.optim.Adam(1e-2)
    for _ in range(3):
        loss = apart.train_step(x, t, opt_apart)
        copies.clear()  # the ops may be shared: count the fused model's calls only
        assert fused.train_step(x, t, opt_fused) == loss
        assert copies == []
    assert fused.layers[2]._direct and not apart.layers[2]._direct
    np.testing.assert_array_equal(fused.flat_params, apart.flat_params)


def test_a_concat_with_a_frozen_batchnorm_branch_copies_and_keeps_the_bits():
    """A frozen BatchNorm runs its group apart (inference form), which writes no slice: the
    block then concatenates copies, with the numbers of the model run layer by layer."""
    x, t = data((2, 5, 6), n=4)
    fused, apart = inception_like_model(), inception_like_model(fuse=False)
    for model in (fused, apart):
        model.layers[2].branches[1][-2].trainable = False  # the 3x3 branch's BatchNorm
    for _ in range(2):
        assert fused.train_step(x, t, fnn.optim.SGD(0.1)) == apart.train_step(x, t, fnn.optim.SGD(0.1))
    assert not fused.layers[2]._direct
    np.testing.assert_array_equal(fused.flat_params, apart.flat_params)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_direct_concat_gradients_match_central_differences(backend):
    model = inception_like_model(backend)
    x, t = data((2, 5, 6), n=3)
    model.loss(model.prepare_input(x), t, train=True)
    assert model.layers[2]._direct
    check_every_parameter(model, x, t)
