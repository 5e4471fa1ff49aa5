"""layer.trainable = False freezes a layer: no update, no weight decay, no weight gradient."""

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


def residual_model():
    return fnn.Sequential(
        [
            fnn.Dense(6, 5),
            fnn.Residual([fnn.Dense(5, 5), fnn.Tanh(), fnn.Dense(5, 5)]),
            fnn.ReLU(),
            fnn.Dense(5, 3),
        ],
        seed=1,
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
