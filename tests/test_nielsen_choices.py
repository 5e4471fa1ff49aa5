"""Nielsen's cost and initialisation choices (Neural Networks and Deep Learning, chapters 1-3)
against his formulas: the 1/sqrt(n_in) Gaussian and the "old" N(0, 1) weights, N(0, 1)
biases, the quadratic cost and the cross-entropy cost of sigmoid outputs."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn
from fastnn.initializers import INITS, gaussian_biases, init_std


def weights(layer_factory, name="W"):
    model = fnn.Sequential([layer_factory()], dtype="float64", seed=0)
    return model.layers[0].params[name]


@pytest.mark.parametrize(
    "init,expected_std",
    [("nielsen", 1 / np.sqrt(784)), ("xavier", 1 / np.sqrt(784)), ("large", 1.0), ("he", np.sqrt(2 / 784))],
)
def test_dense_weights_have_the_named_standard_deviation(init, expected_std):
    """network2.py: default_weight_initializer draws W ~ N(0, 1/n_in), large_weight_initializer
    W ~ N(0, 1); 78,400 draws put the sample std within 2 % of the true one."""
    W = weights(lambda: fnn.Dense(784, 100, init=init))
    assert abs(W.mean()) < 0.02 * expected_std
    assert W.std() == pytest.approx(expected_std, rel=0.02)
    assert init_std(init, 784) == pytest.approx(expected_std, rel=1e-12)


def test_conv_fan_in_is_channels_times_kernel_area():
    W = weights(lambda: fnn.Conv2D(20, 40, 5, init="nielsen"))  # fan_in = 20 * 5 * 5 = 500
    assert W.std() == pytest.approx(1 / np.sqrt(500), rel=0.02)


def test_large_init_saturates_sigmoid_units_and_nielsen_does_not():
    """Chapter 3's argument: with N(0, 1) weights the weighted input z of a unit with 1,000
    inputs of 1 has std sqrt(1000) ~ 31.6, so sigmoid(z) sits at 0 or 1; with 1/sqrt(n_in)
    its std is 1."""
    x = np.ones((1, 1000))
    for init, z_std in (("large", np.sqrt(1000)), ("nielsen", 1.0)):
        model = fnn.Sequential([fnn.Dense(1000, 2000, init=init)], dtype="float64", seed=1)
        z = model.predict(x)
        assert z.std() == pytest.approx(z_std, rel=0.05)
    saturated = np.mean(np.abs(fnn.get_ops("numpy").sigmoid(z * np.sqrt(1000)) - 0.5) > 0.49)
    assert saturated > 0.5


def test_gaussian_biases_redraws_every_bias_and_no_weight():
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 4, 3, pad=1),
            fnn.Residual([fnn.Conv2D(4, 4, 3, pad=1), fnn.ReLU()]),
            fnn.Flatten(),
            fnn.Dense(4 * 8 * 8, 300, init="nielsen"),
            fnn.Sigmoid(),
            fnn.Dense(300, 300),
        ],
        dtype="float64",
        seed=0,
    )
    weights_before = [
        layer.params["W"].copy() for layer in (model.layers[0], model.layers[3], model.layers[5])
    ]
    gaussian_biases(model, seed=2)
    inner = model.layers[1].body[0]
    biases = [
        model.layers[0].params["b"],
        inner.params["b"],
        model.layers[3].params["b"],
        model.layers[5].params["b"],
    ]
    assert all(np.count_nonzero(b) == b.size for b in biases)
    both = np.concatenate([model.layers[3].params["b"], model.layers[5].params["b"]])
    assert both.std() == pytest.approx(1.0, rel=0.1)
    for before, layer in zip(weights_before, (model.layers[0], model.layers[3], model.layers[5])):
        np.testing.assert_array_equal(layer.params["W"], before)
    # the biases live in the model's flat buffer, so training and saving see them
    assert np.isin(model.layers[5].params["b"], model.flat_params).all()
    with pytest.raises(ValueError, match=r"^gaussian_biases: std must be a positive float, got 0"):
        gaussian_biases(model, std=0)


def test_unknown_init_lists_the_names():
    assert INITS == ("he", "xavier", "nielsen", "large")
    with pytest.raises(ValueError, match=r"^Dense: init must be one of 'he', 'xavier', 'nielsen', 'large'"):
        fnn.Dense(3, 4, init="gaussian")


def test_named_init_survives_save_and_load(tmp_path):
    model = fnn.Sequential(
        [fnn.Dense(5, 3, init="nielsen"), fnn.Sigmoid(), fnn.Dense(3, 2, init="large")], seed=0
    )
    model.save(tmp_path / "m.npz")
    loaded = fnn.load(tmp_path / "m.npz")
    assert [getattr(layer, "init", None) for layer in loaded.layers] == ["nielsen", None, "large"]


def test_quadratic_cost_is_nielsens():
    """network.py's cost: C = (1/2n) sum_x ||y(x) - a||^2, with dC/da = (a - y) / n."""
    rng = np.random.default_rng(0)
    a = rng.random((7, 10))
    t = rng.integers(0, 10, 7)
    y = np.eye(10)[t]
    loss = fnn.MeanSquaredError().build(fnn.get_ops("numba"))
    assert loss.forward(a, t) == pytest.approx(np.sum((y - a) ** 2) / (2 * 7), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), (a - y) / 7, rtol=1e-12)


def test_cross_entropy_of_sigmoid_outputs_is_nielsens():
    """network2.py's CrossEntropyCost: C = -(1/n) sum_x sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]
    with a = sigmoid(z); its output error delta = a - y (no sigma' factor), over n."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 10)) * 3
    t = rng.integers(0, 10, 6)
    y = np.eye(10)[t]
    a = 1 / (1 + np.exp(-z))
    expected = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / 6
    loss = fnn.SigmoidCrossEntropy().build(fnn.get_ops("numba"))
    assert loss.forward(z, y) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(loss.backward(), (a - y) / 6, rtol=1e-10, atol=1e-14)
