"""Regularisation: L2/L1 inside the fused steps (textbook oracle), dropout, the penalty in
the reported loss, and the books' overfitting demo on 300 MNIST samples."""

import numpy as np
import pytest
from conftest import load_benchmark_script

import fastnn as fnn

BACKENDS = ["numpy", "numba"]


def model_and_batch(backend, dtype="float64"):
    rng = np.random.default_rng(0)
    model = fnn.Sequential(
        [fnn.Dense(4, 5), fnn.Tanh(), fnn.Dense(5, 3)], backend=backend, dtype=dtype, seed=1
    )
    model.layers[0].params["W"][0, 0] = 0.0  # sign(0) = 0: no L1 push on an exact zero
    return model, rng.standard_normal((6, 4)).astype(dtype), rng.integers(0, 3, 6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_step_with_l2_and_l1_is_the_textbook_update(backend):
    model, x, t = model_and_batch(backend)
    lr, wd, l1 = 0.1, 0.01, 0.003
    p = model.flat_params.copy()
    model.loss(x, t)
    model.backward()
    g = model.flat_grads.copy()
    model.train_step(x, t, fnn.optim.SGD(lr, weight_decay=wd, l1=l1))
    expected = p - lr * (g + wd * p + l1 * np.sign(p))
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-12, atol=1e-15)
    assert model.flat_params[0] == pytest.approx(p[0] - lr * g[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_steps_with_l2_and_l1_are_the_textbook_updates(backend):
    model, x, t = model_and_batch(backend)
    lr, mu, wd, l1 = 0.05, 0.9, 0.02, 0.001
    opt = fnn.optim.Momentum(lr, mu, weight_decay=wd, l1=l1)
    p, v = model.flat_params.copy(), np.zeros_like(model.flat_params)
    for _ in range(3):
        model.loss(x, t)
        model.backward()
        g = model.flat_grads + wd * p + l1 * np.sign(p)
        v = mu * v + g
        p = p - lr * v
        opt.step(model)
        np.testing.assert_allclose(model.flat_params, p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_l1_drives_weights_to_zero_and_l2_shrinks_them(backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    t = (x[:, 0] > 0).astype(np.int64)  # only feature 0 matters

    def train(**reg):
        model = fnn.Sequential([fnn.Dense(10, 2)], backend=backend, seed=0)
        model.fit(x, t, epochs=100, batch_size=16, optimizer=fnn.optim.SGD(0.1, **reg), verbose=0)
        return model.layers[0].params["W"]

    def irrelevant_share(W):  # largest weight of an irrelevant input / the relevant ones
        return np.abs(W[1:]).max() / np.abs(W[0]).min()

    plain, l2, l1 = train(), train(weight_decay=0.05), train(l1=0.05)
    assert np.abs(l2).sum() < 0.6 * np.abs(plain).sum()
    assert np.abs(l1).sum() < 0.6 * np.abs(plain).sum()
    assert irrelevant_share(l1) < 0.5 * irrelevant_share(plain)  # L1 makes W sparse
    assert np.abs(l1[0]).min() > 1.0  # the relevant input keeps its weight


def test_dropout_in_a_model_is_inverted_and_off_at_inference():
    model = fnn.Sequential([fnn.Identity(), fnn.Dropout(0.5)], dtype="float64", seed=3)
    x = np.ones((100, 100))
    y = model.forward(x, train=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert (y == 0).mean() == pytest.approx(0.5, abs=0.03)
    assert not np.array_equal(model.forward(x, train=True), y)  # a fresh mask every pass
    np.testing.assert_array_equal(model.forward(x), x)  # inference: identity
    np.testing.assert_array_equal(model.predict(x), x)


def test_weight_decay_shrinks_the_train_test_gap_on_300_mnist_samples(mnist_dir):
    """The README's numbers, one seed: 300 samples overfit (train 100 %); L2 narrows the gap."""
    demo = load_benchmark_script("regularization_demo")
    data = fnn.datasets.load_mnist("mnist", path=mnist_dir)
    baseline = demo.run("baseline", data, seed=0)
    l2 = demo.run("l2", data, seed=0)
    assert baseline["train"] == 1.0 and baseline["gap"] > 0.2
    assert l2["gap"] < baseline["gap"] - 0.03, (baseline, l2)
    assert l2["train"] < baseline["train"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_holds_dropout_masks_fixed_and_restores_running_statistics(backend, capsys):
    """Item 9: gradcheck works on a model with dropout and batch norm as it stands."""
    rng = np.random.default_rng(4)
    model = fnn.Sequential(
        [fnn.Dense(6, 8), fnn.Tanh(), fnn.BatchNorm(8), fnn.Dropout(0.3), fnn.Dense(8, 3)],
        backend=backend,
        dtype="float64",
        seed=5,
    )
    bn = model.layers[2]
    bn.running_mean[...] = 0.25
    errors = fnn.gradcheck(model, rng.standard_normal((7, 6)), rng.integers(0, 3, 7), check_input=True)
    assert set(errors) == {
        "layers[0] Dense(6->8)",
        "layers[2] BatchNorm(8)",
        "layers[4] Dense(8->3)",
        "input",
    }
    assert max(errors.values()) < 1e-6, errors
    np.testing.assert_array_equal(bn.running_mean, 0.25)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    out = capsys.readouterr().out
    assert out.count("worst relative error") == 4
