"""SigmoidCrossEntropy (alias BinaryCrossEntropy), the loss for binary and multi-label targets:
its names, its value and gradient against formulas and central differences, a float64
gradient check of a model ending in it, predictions and accuracy, error texts, save/load,
and training on a binary and a multi-label problem. (The ops themselves: test_loss_ops.)
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn
from fastnn.gradcheck import numerical_gradient, relative_error
from fastnn.losses import LOSSES, get_loss

BACKENDS = ["numpy", "numba"]


def nielsen_cost(y, t):
    """Nielsen's C in float64 from the definition: -(1/N) sum [t ln a + (1 - t) ln(1 - a)], a = sigmoid(y)."""
    a = 1 / (1 + np.exp(-y.astype(np.float64)))
    t = t.reshape(a.shape).astype(np.float64)
    return -(t * np.log(a) + (1 - t) * np.log(1 - a)).sum() / len(a)


# ------------------------------------------------------------------ names


def test_the_names_a_user_looks_for():
    assert fnn.SigmoidCrossEntropy is fnn.losses.SigmoidCrossEntropy
    assert fnn.BinaryCrossEntropy is fnn.losses.BinaryCrossEntropy is fnn.SigmoidCrossEntropy
    assert "SigmoidCrossEntropy" in fnn.__all__ and "BinaryCrossEntropy" in fnn.__all__
    assert LOSSES["SigmoidCrossEntropy"] is fnn.SigmoidCrossEntropy
    for name in ("SigmoidCrossEntropy", "BinaryCrossEntropy", "binary_cross_entropy", "bce"):
        assert type(get_loss(name)) is fnn.SigmoidCrossEntropy, name
    doc = fnn.SigmoidCrossEntropy.__doc__
    assert "BCEWithLogitsLoss" in doc and "BCELoss" in doc and "logits" in doc


# ------------------------------------------------------------------ value and gradient


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c", [1, 3])
def test_value_is_nielsens_cost_and_gradient_matches_central_differences(backend, c):
    rng = np.random.default_rng(1)
    y, t = rng.standard_normal((6, c)) * 3, rng.integers(0, 2, (6, c))
    loss = fnn.SigmoidCrossEntropy().build(backend)
    assert loss.forward(y, t) == pytest.approx(nielsen_cost(y, t), rel=1e-12)
    analytic = loss.backward()
    np.testing.assert_allclose(analytic, (1 / (1 + np.exp(-y)) - t) / 6, rtol=1e-12)
    numeric = numerical_gradient(lambda: loss.forward(y, t), y)
    assert relative_error(analytic, numeric) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("outputs", [1, 3])
def test_gradcheck_of_a_model_ending_in_it(backend, outputs):
    rng = np.random.default_rng(2)
    model = fnn.Sequential(
        [fnn.Dense(4, 5), fnn.Tanh(), fnn.Dense(5, outputs)],
        loss=fnn.SigmoidCrossEntropy(),
        backend=backend,
        dtype="float64",
        seed=3,
    )
    x, t = rng.standard_normal((7, 4)), rng.integers(0, 2, (7, outputs))
    errors = fnn.gradcheck(model, x, t, check_input=True, verbose=False)
    assert errors
    for name, error in errors.items():
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_output_takes_targets_of_shape_n_or_n1_of_any_numeric_dtype(backend):
    rng = np.random.default_rng(4)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    labels = rng.integers(0, 2, 8)
    expected = nielsen_cost(y, labels)
    for t in (
        labels,
        labels[:, None],
        labels.astype(bool),
        labels.astype(np.uint8),
        labels.astype(np.float64),
    ):
        loss = fnn.SigmoidCrossEntropy().build(backend)
        assert loss.forward(y, t) == pytest.approx(expected, rel=1e-6)
        assert loss.backward().shape == (8, 1) and loss.backward().dtype == np.float32


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match=r"SigmoidCrossEntropy: backward\(\) called before forward\(\)"):
        fnn.SigmoidCrossEntropy().backward()


# ------------------------------------------------------------------ predictions and accuracy


def test_probabilities_classes_and_exact_match_accuracy():
    rng = np.random.default_rng(5)
    loss = fnn.SigmoidCrossEntropy()
    y = rng.standard_normal((50, 3)).astype(np.float32)
    t = rng.integers(0, 2, (50, 3))
    np.testing.assert_allclose(loss.probabilities(y), 1 / (1 + np.exp(-y.astype(np.float64))), rtol=1e-6)
    classes = loss.classes(y)
    assert classes.dtype == np.int64 and classes.shape == (50, 3)
    np.testing.assert_array_equal(classes, loss.probabilities(y) > 0.5)
    # a sample counts when all its labels are right, counted here one sample at a time
    exact = sum(all((y[n, c] > 0) == bool(t[n, c]) for c in range(3)) for n in range(50))
    assert 0 < exact < 50
    assert loss.count_correct(y, t) == exact


def test_one_output_classes_and_binary_accuracy():
    rng = np.random.default_rng(6)
    loss = fnn.SigmoidCrossEntropy()
    y = rng.standard_normal((40, 1))
    t = rng.integers(0, 2, 40)
    classes = loss.classes(y)
    assert classes.dtype == np.int64 and classes.shape == (40,)
    np.testing.assert_array_equal(classes, [int(v > 0) for v in y[:, 0]])
    right = sum(int(y[n, 0] > 0) == t[n] for n in range(40))
    assert loss.count_correct(y, t) == right == loss.count_correct(y, t[:, None].astype(float))


# ------------------------------------------------------------------ errors


LOSS_ERRORS = [
    (np.zeros((4, 3)), np.array([0, 1, 1, 0]), r"expected 0/1 targets of shape \(4, 3\), got \(4,\); "),
    (np.zeros((4, 1)), np.array([0, 1, 2, 0]), r"expected targets of 0 or 1 .*e\.g\. 2; "),
    (np.zeros((4, 1)), np.zeros((4, 2)), r"expected 0/1 targets of shape \(4, 1\) or \(4,\), got \(4, 2\)"),
    (np.zeros(4), np.zeros(4), r"expected logits of shape \(N, C\), got \(4,\); end the network with Dense"),
]


@pytest.mark.parametrize("y, t, message", LOSS_ERRORS)
def test_errors_name_the_loss_and_the_shapes(y, t, message):
    with pytest.raises(ValueError, match="^SigmoidCrossEntropy: " + message):
        fnn.SigmoidCrossEntropy().forward(y, t)


def test_fit_with_class_labels_for_several_outputs_says_what_to_do():
    model = fnn.Sequential([fnn.Dense(2, 3)], loss="bce", seed=0)
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"SigmoidCrossEntropy: .*\(4, 3\), got \(4,\).*SoftmaxCrossEntropy"):
        model.fit(x, np.array([0, 2, 1, 0]), epochs=1, verbose=0)


def test_column_of_int_labels_with_softmax_asks_for_ravel():
    """Friction 5: int labels (N, 1) were called "one-hot targets [that] must be float"."""
    model = fnn.Sequential([fnn.Dense(2, 3)], seed=0)
    x = np.zeros((4, 2), np.float32)
    t = np.array([[0], [2], [1], [0]])
    for call in (lambda: model.fit(x, t, epochs=1, verbose=0), lambda: model.evaluate(x, t)):
        with pytest.raises(ValueError, match=r"class labels must be 1-D, shape \(4,\), .*t\.ravel\(\)"):
            call()
    assert model.evaluate(x, t.ravel())["accuracy"] >= 0


# ------------------------------------------------------------------ save, load, train


def two_gaussians(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    centres = np.array([[-1.5, 1.0], [1.5, -1.0]])
    return (centres[t] + rng.normal(0, 0.6, (n, 2))).astype(np.float32), t


def xor(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)


@pytest.mark.parametrize("loss", ["SigmoidCrossEntropy", "BinaryCrossEntropy", "bce"])
def test_save_and_load_keep_the_loss(tmp_path, loss):
    x, t = two_gaussians(50)
    model = fnn.Sequential([fnn.Dense(2, 4), fnn.ReLU(), fnn.Dense(4, 1)], loss=loss, seed=1)
    model.save(tmp_path / "model.npz")
    loaded = fnn.load(tmp_path / "model.npz")
    assert type(loaded.loss_fn) is fnn.SigmoidCrossEntropy
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, t) == model.evaluate(x, t)


@pytest.mark.parametrize("data", [two_gaussians, xor], ids=["two gaussians", "xor"])
def test_learns_a_binary_problem(data):
    x, t = data()
    model = fnn.Sequential(
        [fnn.Dense(2, 16), fnn.Tanh(), fnn.Dense(16, 1)], loss=fnn.SigmoidCrossEntropy(), seed=0
    )
    model.fit(x, t, epochs=40, batch_size=32, optimizer=fnn.optim.AdamW(0.02), verbose=0)
    x_test, t_test = data(seed=1)
    result = model.evaluate(x_test, t_test)
    assert result["accuracy"] >= 0.95
    predicted = model.loss_fn.classes(model.predict(x_test))
    assert np.mean(predicted == t_test) == pytest.approx(result["accuracy"])


def test_learns_a_multi_label_problem():
    """Three independent yes/no labels per sample, each a half-plane of x."""
    rng = np.random.default_rng(7)
    directions = rng.standard_normal((4, 3))

    def data(n, seed):
        x = np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)
        return x, (x @ directions > 0).astype(np.int64)

    x, t = data(600, 0)
    model = fnn.Sequential([fnn.Dense(4, 16), fnn.ReLU(), fnn.Dense(16, 3)], loss="bce", seed=0)
    history = model.fit(x, t, epochs=30, batch_size=32, optimizer=fnn.optim.Adam(0.01), verbose=0)
    assert history["loss"][-1] < history["loss"][0] / 4
    x_test, t_test = data(300, 1)
    assert model.evaluate(x_test, t_test)["accuracy"] >= 0.9  # every label of a sample right
