"""The classic learning rules: perceptron, Hebb, delta rule."""

import itertools

import numpy as np
import pytest

import fastnn as fnn
from fastnn.classic import (
    GATE_INPUTS,
    GATES,
    DeltaRule,
    Perceptron,
    delta_rule_update,
    hebbian_update,
    hebbian_weights,
    hopfield_recall,
    linearly_separable,
    step,
    xor_network,
)


@pytest.mark.parametrize("gate", ["AND", "OR", "NAND"])
def test_perceptron_learns_the_linearly_separable_gates(gate):
    p = Perceptron(2, lr=0.1).fit(GATE_INPUTS, GATES[gate])
    assert p.converged and p.errors[-1] == 0
    np.testing.assert_array_equal(p(GATE_INPUTS), GATES[gate])
    assert linearly_separable(GATE_INPUTS, GATES[gate])


def test_perceptron_cannot_learn_xor():
    p = Perceptron(2, lr=0.1).fit(GATE_INPUTS, GATES["XOR"], max_epochs=1000)
    assert not p.converged
    assert min(p.errors) >= 1  # every epoch makes a mistake
    assert (p(GATE_INPUTS) != GATES["XOR"]).any()
    # and no perceptron can: no (w, b) separates XOR's classes (an exact LP decision)
    assert not linearly_separable(GATE_INPUTS, GATES["XOR"])


def test_no_weights_on_a_grid_compute_xor():
    """Brute force over a grid of weights as a second, naive witness."""
    grid = np.linspace(-2, 2, 21)
    for w1, w2, b in itertools.product(grid, grid, grid):
        out = step(GATE_INPUTS @ np.array([w1, w2]) + b)
        assert not np.array_equal(out, GATES["XOR"])


def test_the_perceptron_rule_is_the_textbook_update():
    p = Perceptron(2, lr=0.5, w=[0.2, -0.4], b=0.1)
    p.fit(np.array([[1.0, 1.0]]), np.array([1.0]), max_epochs=1)
    # y = step(0.2 - 0.4 + 0.1) = 0, t - y = 1: w += 0.5 * x, b += 0.5
    np.testing.assert_allclose(p.w, [0.7, 0.1])
    assert p.b == pytest.approx(0.6)


def test_two_layers_compute_xor():
    net = xor_network()
    np.testing.assert_array_equal(net(GATE_INPUTS), GATES["XOR"])


def test_a_trained_two_layer_network_learns_xor():
    model = fnn.Sequential([fnn.Dense(2, 4), fnn.Tanh(), fnn.Dense(4, 2)], dtype="float64", seed=0)
    t = GATES["XOR"].astype(np.int64)
    model.fit(GATE_INPUTS, t, epochs=300, batch_size=4, optimizer=fnn.optim.Adam(0.05), verbose=0)
    np.testing.assert_array_equal(model.predict(GATE_INPUTS).argmax(axis=1), t)


def test_hebbian_update_is_eta_yi_yj():
    W = np.array([[0.5, -1.0, 0.0]])
    new = hebbian_update(W, y_pre=[1.0, 2.0, -1.0], y_post=[3.0], lr=0.1)
    np.testing.assert_allclose(new, W + 0.1 * np.array([[3.0, 6.0, -3.0]]))
    np.testing.assert_array_equal(W, [[0.5, -1.0, 0.0]])  # not modified
    # a batch sums the per-sample products
    pre, post = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0], [2.0]])
    np.testing.assert_allclose(hebbian_update(np.zeros((1, 2)), pre, post, lr=1.0), [[3.0, 2.0]])


def test_hebbian_hopfield_network_recalls_a_stored_pattern():
    rng = np.random.default_rng(0)
    patterns = rng.choice([-1.0, 1.0], size=(3, 64))
    W = hebbian_weights(patterns)
    np.testing.assert_allclose(W, (patterns.T @ patterns) / 64 - np.eye(64) * 3 / 64)
    noisy = patterns[1].copy()
    noisy[rng.choice(64, 8, replace=False)] *= -1
    np.testing.assert_array_equal(hopfield_recall(W, noisy), patterns[1])


def test_delta_rule_update_is_eta_t_minus_y_x():
    w = np.array([0.5, -0.25])
    x = np.array([2.0, 4.0])
    # y = 1 - 1 = 0; t - y = 1.5
    np.testing.assert_allclose(delta_rule_update(w, x, 1.5, lr=0.1), w + 0.1 * 1.5 * x)
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    T = np.array([1.0, 1.0])
    np.testing.assert_allclose(delta_rule_update(w, X, T, lr=0.1), w + 0.1 * X.T @ (T - X @ w))


def test_delta_rule_finds_the_least_squares_solution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 3))
    t = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * rng.standard_normal(200)
    unit = DeltaRule(3, lr=0.01).fit(x, t, epochs=50)
    solution, *_ = np.linalg.lstsq(np.hstack([x, np.ones((200, 1))]), t, rcond=None)
    np.testing.assert_allclose(np.append(unit.w, unit.b), solution, atol=0.01)
