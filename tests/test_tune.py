"""Random hyperparameter search: sampling, ranking, and the test set is never read."""

import math

import numpy as np
import pytest

import fastnn as fnn
from fastnn import tune
from fastnn.cli import main


class Untouchable:
    """A stand-in test set: any attempt to read it fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("the test set was read")

    __array__ = __len__ = __getitem__ = __iter__ = _fail

    def __getattr__(self, name):
        self._fail()


@pytest.fixture(scope="module")
def digits():
    (x, t), _ = fnn.datasets.load_digits(seed=0)
    return x[:600], t[:600]


def build(params):
    return fnn.models.mlp(in_features=64, hidden=(32,), seed=0)


def test_log_uniform_samples_every_decade_equally():
    rng = np.random.default_rng(0)
    dist = tune.LogUniform(1e-4, 1e-1)
    draws = np.array([dist.sample(rng) for _ in range(3000)])
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    per_decade = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0] / len(draws)
    np.testing.assert_allclose(per_decade, 1 / 3, atol=0.04)
    assert tune.Uniform(2, 3).sample(rng) >= 2
    assert tune.IntUniform(1, 3).sample(rng) in (1, 2, 3)
    assert tune.Choice(("a", "b")).sample(rng) in ("a", "b")
    with pytest.raises(ValueError, match="low > 0"):
        tune.LogUniform(0, 1)


def test_search_returns_trials_best_first_and_is_reproducible(digits):
    x, t = digits
    space = {"lr": tune.LogUniform(1e-4, 1e-1), "weight_decay": tune.LogUniform(1e-8, 1e-3), "hidden": 32}
    trials = tune.random_search(
        build, space, x, t, trials=5, epochs=1, validation_split=0.25, verbose=0, seed=1
    )
    assert len(trials) == 5
    accuracies = [trial.val_accuracy for trial in trials]
    assert accuracies == sorted(accuracies, reverse=True)
    assert trials[0].score == trials[0].val_accuracy
    for trial in trials:
        assert 1e-4 <= trial.params["lr"] <= 1e-1 and trial.params["hidden"] == 32
        assert trial.history["val_accuracy"][-1] == trial.val_accuracy
    assert sorted(trial.index for trial in trials) == list(range(5))
    again = tune.random_search(
        build, space, x, t, trials=5, epochs=1, validation_split=0.25, verbose=0, seed=1
    )
    assert [trial.params for trial in again] == [trial.params for trial in trials]
    assert [trial.val_loss for trial in again] == [trial.val_loss for trial in trials]
    by_loss = tune.random_search(
        build, space, x, t, trials=3, epochs=1, monitor="val_loss", verbose=0, seed=1
    )
    assert [r.val_loss for r in by_loss] == sorted(r.val_loss for r in by_loss)


def test_scores_come_only_from_the_validation_split_of_the_training_data(digits, monkeypatch):
    x, t = digits
    evaluated, trained = [], []
    original_evaluate, original_fit = fnn.Sequential.evaluate, fnn.Sequential.fit

    def evaluate(self, xs, ts, *args, **kwargs):
        evaluated.append(np.asarray(xs).copy())
        return original_evaluate(self, xs, ts, *args, **kwargs)

    def fit(self, xs, ts, *args, **kwargs):
        trained.append(np.asarray(xs).copy())
        return original_fit(self, xs, ts, *args, **kwargs)

    monkeypatch.setattr(fnn.Sequential, "evaluate", evaluate)
    monkeypatch.setattr(fnn.Sequential, "fit", fit)
    tune.random_search(
        build, {"lr": tune.LogUniform(1e-3, 1e-2)}, x, t, trials=2, epochs=2, validation_split=0.2, verbose=0
    )
    rows = {row.tobytes() for row in x.reshape(len(x), -1)}
    train_rows = {row.tobytes() for row in trained[0].reshape(len(trained[0]), -1)}
    assert len(evaluated) == 4  # once per epoch per trial
    for batch in evaluated:
        assert len(batch) == 120  # 20 % of the 600 training samples
        val_rows = {row.tobytes() for row in batch.reshape(len(batch), -1)}
        assert val_rows <= rows  # drawn from the data it was given
        assert not val_rows & train_rows  # held out from training


def test_cli_tune_never_reads_the_test_set(digits, monkeypatch, capsys):
    import fastnn.cli.tune as tune_command

    monkeypatch.setattr(tune_command, "load_data", lambda args: (digits, (Untouchable(), Untouchable())))
    assert main(["tune", "--trials", "3", "--epochs", "1", "--quiet", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "val_acc" in out
    assert out.count("\n   ") >= 3
    best = out.split("best: ")[1]
    assert "--lr" in best and "--weight-decay" in best


def test_search_signature_has_no_test_set():
    import inspect

    parameters = inspect.signature(tune.random_search).parameters
    assert not any("test" in name for name in parameters)


def test_diverging_trials_rank_last(digits):
    x, t = digits
    with pytest.warns(RuntimeWarning):
        trials = tune.random_search(
            build,
            {"lr": tune.Choice((0.05, 1e30))},
            x,
            t,
            trials=6,
            epochs=1,
            optimizer="sgd",
            verbose=0,
            seed=0,
        )
    lrs = [trial.params["lr"] for trial in trials]
    assert 0.05 in lrs and 1e30 in lrs
    first_bad = lrs.index(1e30)
    assert all(lr == 1e30 for lr in lrs[first_bad:])
    assert all(trial.val_accuracy == 0 and math.isinf(trial.val_loss) for trial in trials[first_bad:])


def test_optimizer_gets_the_sampled_values_it_takes():
    opt = tune._optimizer_for("momentum", {"lr": 0.2, "weight_decay": 0.01, "momentum": 0.5, "hidden": 40})
    assert isinstance(opt, fnn.optim.Momentum)
    assert (opt.lr, opt.weight_decay, opt.momentum) == (0.2, 0.01, 0.5)


def test_build_may_return_model_and_optimizer(digits):
    x, t = digits
    made = []

    def build_both(params):
        made.append(fnn.optim.SGD(params["lr"]))
        return build(params), made[-1]

    trials = tune.random_search(build_both, {"lr": tune.LogUniform(0.01, 0.1)}, x, t, trials=2, verbose=0)
    assert all(opt.iterations > 0 for opt in made) and len(trials) == 2


def test_bad_arguments(digits):
    x, t = digits
    with pytest.raises(ValueError, match="validation_split"):
        tune.random_search(build, {}, x, t, validation_split=0)
    with pytest.raises(TypeError, match="validation_data"):
        tune.random_search(build, {}, x, t, validation_data=(x, t))
    with pytest.raises(ValueError, match="LOW:HIGH"):
        tune.parse_range("1:2:3")
    assert tune.parse_range("1e-3:1e-1") == tune.LogUniform(1e-3, 1e-1)
    assert tune.parse_range("0") == 0.0
