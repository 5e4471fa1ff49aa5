"""Every layer passes a float64 numerical gradient check, on both backends."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.gradcheck import numerical_gradient, relative_error

BACKENDS = ["numpy", "numba"]
TOLERANCE = 1e-6


def check_model(model, x, t):
    errors = fnn.gradcheck(model, x, t, check_input=True, verbose=False)
    assert errors, "nothing was checked"
    for name, error in errors.items():
        assert error < TOLERANCE, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(3, 5, 4), (1, 1, 1), (4, 7, 2)])
def test_dense(backend, shape):
    n, d, m = shape
    rng = np.random.default_rng(0)
    model = fnn.Sequential(
        [fnn.Dense(d, m)], loss=fnn.MeanSquaredError(), backend=backend, dtype="float64", seed=1
    )
    model.layers[0].params["b"][...] = rng.standard_normal(m)
    check_model(model, rng.standard_normal((n, d)), rng.standard_normal((n, m)))


ACTIVATIONS = [fnn.ReLU, lambda: fnn.LeakyReLU(0.1), fnn.Sigmoid, fnn.Tanh, fnn.Identity, fnn.Softmax]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make", ACTIVATIONS, ids=["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax"]
)
def test_activation_between_dense_layers(backend, make):
    rng = np.random.default_rng(2)
    model = fnn.Sequential(
        [fnn.Dense(6, 5), make(), fnn.Dense(5, 3)], backend=backend, dtype="float64", seed=3
    )
    x = rng.standard_normal((4, 6))
    # keep pre-activations away from ReLU's kink, where central differences are wrong
    hidden = model.layers[0].forward(x)
    assert np.abs(hidden).min() > 1e-4
    check_model(model, x, rng.integers(0, 3, 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_has_zero_gradient(backend):
    rng = np.random.default_rng(4)
    model = fnn.Sequential(
        [fnn.Dense(3, 4), fnn.Step(), fnn.Dense(4, 2)], backend=backend, dtype="float64", seed=5
    )
    x = rng.standard_normal((5, 3))
    t = rng.integers(0, 2, 5)
    model.loss(x, t)
    model.backward()
    assert np.all(model.layers[0].grads["W"] == 0)
    assert np.any(model.layers[2].grads["W"] != 0)
    check_model(model, x, t)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flatten(backend):
    rng = np.random.default_rng(6)
    model = fnn.Sequential([fnn.Flatten(), fnn.Dense(12, 3)], backend=backend, dtype="float64", seed=7)
    check_model(model, rng.standard_normal((2, 3, 2, 2)), rng.integers(0, 3, 2))
    assert model.backward().shape == (2, 3, 2, 2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("targets", ["indices", "one_hot"])
def test_softmax_cross_entropy_gradient(backend, targets):
    rng = np.random.default_rng(8)
    y = rng.standard_normal((5, 4)) * 3
    t = rng.integers(0, 4, 5)
    if targets == "one_hot":
        t = np.eye(4)[t]
    loss = fnn.SoftmaxCrossEntropy().build(backend)
    loss.forward(y, t)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(y, t), y)
    assert relative_error(analytic, numeric) < TOLERANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_squared_error_gradient(backend):
    rng = np.random.default_rng(9)
    y, t = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    loss = fnn.MeanSquaredError().build(backend)
    value = loss.forward(y, t)
    assert value == pytest.approx(0.5 * ((y - t) ** 2).sum() / 6, rel=1e-12)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(y, t), y)
    assert relative_error(analytic, numeric) < TOLERANCE


def test_gradcheck_catches_a_wrong_gradient():
    """The checker itself can fail: a layer with a deliberately wrong backward is flagged."""

    class WrongDense(fnn.Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["W"][...] *= 1.01
            return dx

    rng = np.random.default_rng(10)
    model = fnn.Sequential([WrongDense(3, 2)], backend="numpy", dtype="float64", seed=0)
    errors = fnn.gradcheck(model, rng.standard_normal((4, 3)), rng.integers(0, 2, 4), verbose=False)
    assert max(errors.values()) > 1e-3


def test_gradcheck_prints_worst_error_per_layer(capsys):
    rng = np.random.default_rng(11)
    model = fnn.models.mlp(in_features=5, hidden=(4,), classes=3, dtype="float64", seed=0)
    fnn.gradcheck(model, rng.standard_normal((3, 5)), rng.integers(0, 3, 3))
    out = capsys.readouterr().out
    assert "Dense(5->4)" in out and "Dense(4->3)" in out and "worst relative error" in out


def test_gradcheck_refuses_float32():
    model = fnn.models.mlp(in_features=5, hidden=(4,), classes=3, seed=0)
    with pytest.raises(TypeError, match="float64"):
        fnn.gradcheck(model, np.zeros((2, 5), np.float32), np.array([0, 1]))
