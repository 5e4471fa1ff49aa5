"""fnn.ensemble: averaging and voting on constructed outputs (formulas by hand), errors, and
an ensemble of small networks trained on real MNIST against its members."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn


class Fixed:
    """A stand-in member whose outputs are given: logits for a SoftmaxCrossEntropy model."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, dtype=np.float64)
        self.loss_fn = fnn.SoftmaxCrossEntropy()

    def predict(self, x):
        return self.logits[: len(x)]

    def predict_proba(self, x):
        z = np.exp(self.predict(x) - self.predict(x).max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_classes(self, x):
        return self.predict(x).argmax(axis=1)


def probabilities_to_logits(p):
    return np.log(np.asarray(p, dtype=np.float64))


# Three members on two samples: sample 0 splits the votes 2:1 for class 0 while the
# confident minority carries the average to class 2; sample 1 is a three-way tie of votes.
P = [
    [[0.40, 0.25, 0.35], [0.2, 0.3, 0.5]],
    [[0.40, 0.25, 0.35], [0.5, 0.2, 0.3]],
    [[0.00001, 0.00001, 0.99998], [0.3, 0.5, 0.2]],
]
X = np.zeros((2, 1))


def members():
    return [Fixed(probabilities_to_logits(p)) for p in P]


def test_average_is_the_mean_probability_and_its_argmax():
    ens = fnn.ensemble(members(), method="average")
    mean = np.mean(P, axis=0)
    np.testing.assert_allclose(ens.predict_proba(X), mean, rtol=1e-12)
    np.testing.assert_allclose(ens.predict(X), np.mean([probabilities_to_logits(p) for p in P], axis=0))
    np.testing.assert_array_equal(ens.predict_classes(X), mean.argmax(axis=1))
    assert list(ens.predict_classes(X)) == [2, 0]
    t = np.array([2, 1])
    result = ens.evaluate(X, t)
    assert result["accuracy"] == 0.5
    assert result["loss"] == pytest.approx(-np.mean(np.log(mean[[0, 1], t])), rel=1e-12)
    one_hot = np.eye(3)[t]
    assert ens.evaluate(X, one_hot) == pytest.approx(result)


def test_vote_counts_the_members_classes_and_breaks_ties_to_the_smallest():
    ens = fnn.ensemble(members(), method="vote")
    votes = ens.predict_proba(X)
    np.testing.assert_allclose(votes, [[2 / 3, 0, 1 / 3], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_array_equal(ens.predict(X), votes)
    np.testing.assert_array_equal(ens.predict_classes(X), [0, 0])  # the majority, then a tie
    result = ens.evaluate(X, np.array([2, 0]))
    assert result == {"accuracy": 0.5}  # voting has no loss


def test_vote_fractions_counts_each_voters_class():
    classes = np.array([[0, 2, 1, 3], [0, 1, 1, 2], [2, 2, 0, 1]])
    fractions = fnn.ensembles.vote_fractions(classes, num_classes=5)
    assert fractions.shape == (4, 5)
    np.testing.assert_allclose(fractions[0], [2 / 3, 0, 1 / 3, 0, 0])
    np.testing.assert_allclose(fractions[3], [0, 1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_array_equal(fractions.argmax(axis=1), [0, 2, 1, 1])  # the last: a three-way tie
    assert fnn.ensembles.vote_fractions(classes).shape == (4, 4)  # C from the largest class named
    with pytest.raises(ValueError, match=r"vote_fractions: .*\(K voters, N samples\).*shape \(4,\)"):
        fnn.ensembles.vote_fractions(classes[0])
    with pytest.raises(ValueError, match="vote_fractions: .*float64"):
        fnn.ensembles.vote_fractions(classes.astype(np.float64))


def test_a_single_member_ensemble_is_that_member():
    member = members()[2]
    for method in ("average", "vote"):
        ens = fnn.ensemble([member], method=method)
        np.testing.assert_array_equal(ens.predict_classes(X), member.predict_classes(X))


def test_mean_output_for_members_without_probabilities():
    """MeanSquaredError members (Nielsen's quadratic cost): the mean output, its argmax, and
    the loss of the mean output."""
    rng = np.random.default_rng(0)
    models = [
        fnn.Sequential([fnn.Dense(4, 3), fnn.Sigmoid()], loss=fnn.MeanSquaredError(), seed=s) for s in (1, 2)
    ]
    x = rng.random((6, 4), dtype=np.float32)
    t = rng.integers(0, 3, 6)
    ens = fnn.ensemble(models)
    mean = (models[0].predict(x) + models[1].predict(x)) / 2
    np.testing.assert_allclose(ens.predict(x), mean, rtol=1e-6)
    np.testing.assert_array_equal(ens.predict_classes(x), mean.argmax(axis=1))
    expected = np.mean(0.5 * np.sum((mean - np.eye(3)[t]) ** 2, axis=1))
    assert ens.evaluate(x, t)["loss"] == pytest.approx(expected, rel=1e-5)


def test_errors_name_the_ensemble():
    with pytest.raises(ValueError, match=r"^ensemble: expected at least one model, got an empty list"):
        fnn.ensemble([])
    with pytest.raises(
        ValueError, match=r"^ensemble: method must be one of \('average', 'vote'\), got 'mean'"
    ):
        fnn.ensemble(members(), method="mean")
    with pytest.raises(TypeError, match=r"^ensemble: models\[1\] has no predict method \(got int\)"):
        fnn.ensemble([members()[0], 3])
    with pytest.raises(TypeError, match=r"^ensemble: expected a list of models, got int"):
        fnn.ensemble(5)
    mixed = fnn.ensemble([Fixed(np.zeros((2, 3))), Fixed(np.zeros((2, 4)))])
    with pytest.raises(
        ValueError, match=r"models\[1\] gives outputs of shape \(2, 4\), models\[0\] gives \(2, 3\)"
    ):
        mixed.predict(X)
    with pytest.raises(ValueError, match=r"^ensemble.evaluate: x has 2 samples and t has 3"):
        fnn.ensemble(members()).evaluate(X, np.array([0, 1, 2]))


def test_ensemble_of_trained_networks_beats_its_average_member(mnist_dir):
    """Five 784-30-10 ReLU networks, each trained one epoch on its own 2,000 MNIST
    images: both ensembles reach at least their mean member's test accuracy."""
    (x, t), (x_test, t_test) = fnn.datasets.load_mnist(path=mnist_dir)
    x_test, t_test = x_test[:2000], t_test[:2000]
    models = []
    for seed in range(5):
        model = fnn.models.mlp(hidden=(30,), init="nielsen", seed=seed, input_shape=(1, 28, 28))
        part = slice(2000 * seed, 2000 * (seed + 1))
        model.fit(x[part], t[part], epochs=1, batch_size=20, optimizer=fnn.optim.SGD(lr=0.5), verbose=0)
        models.append(model)
    member_accuracy = np.mean([m.evaluate(x_test, t_test)["accuracy"] for m in models])
    average = fnn.ensemble(models, method="average").evaluate(x_test, t_test)
    vote = fnn.ensemble(models, method="vote").evaluate(x_test, t_test)
    assert 0.7 < member_accuracy < 0.95
    assert average["accuracy"] >= member_accuracy
    assert vote["accuracy"] >= member_accuracy
    member_loss = np.mean([m.evaluate(x_test, t_test)["loss"] for m in models])
    assert average["loss"] <= member_loss  # cross-entropy is convex in the probabilities
