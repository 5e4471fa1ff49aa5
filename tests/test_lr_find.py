"""The learning-rate range test: fnn.tune.lr_find, fnn.plots.plot_lr_find and ``fastnn lr-find``."""

import math
import shlex

import numpy as np
import pytest

import fastnn as fnn
from fastnn.cli import build_parser, main
from fastnn.errors import NonFiniteError
from fastnn.lr_finder import suggest_steepest


@pytest.fixture(scope="module")
def digits():
    return fnn.datasets.load_digits(seed=0)


@pytest.fixture(scope="module")
def adam_sweep(digits):
    """(model, its weights before, the result) of the default sweep with Adam on digits."""
    (x, t), _ = digits
    model = fnn.models.mlp(in_features=64, seed=0)
    before = model.flat_params.copy()
    return model, before, fnn.tune.lr_find(model, x, t)


def test_the_rates_follow_the_exponential_sweep(adam_sweep):
    _, _, result = adam_sweep
    steps = np.arange(len(result.lrs))
    expected = [1e-7 * (10 / 1e-7) ** (i / 99) for i in steps]
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-12)
    assert result.num_steps == 100


def test_the_smoothed_loss_is_the_bias_corrected_moving_average(adam_sweep):
    _, _, result = adam_sweep
    average, oracle = 0.0, []
    for i, loss in enumerate(result.losses):
        average = 0.98 * average + 0.02 * loss
        oracle.append(average / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(result.smoothed, oracle, rtol=1e-12)
    assert result.smoothed[0] == pytest.approx(result.losses[0], rel=1e-12)


def test_the_first_loss_is_the_untrained_model_on_the_first_batch(adam_sweep, digits):
    model, before, result = adam_sweep
    (x, t), _ = digits
    first = np.random.default_rng(0).permutation(len(x))[:64]
    assert result.losses[0] == pytest.approx(model.loss(x[first], t[first]), rel=1e-6)


def test_the_sweep_stops_early_when_the_loss_explodes(adam_sweep):
    _, _, result = adam_sweep
    assert result.stopped_early and len(result.lrs) < 100
    assert result.smoothed[-1] > 4 * result.smoothed[:-1].min()
    assert (result.smoothed[1:-1] <= 4 * np.minimum.accumulate(result.smoothed[:-2])).all()
    assert result.stop_reason.startswith(f"stopped at step {len(result.lrs)} (lr ")
    assert "passed 4 x its best" in result.stop_reason
    assert result.lrs[-1] > 0.1  # Adam on digits diverges only at large rates


def test_the_model_is_restored_bit_for_bit(adam_sweep):
    model, before, _ = adam_sweep
    np.testing.assert_array_equal(model.flat_params, before)


def test_the_suggestion_is_sane_and_trains_well(adam_sweep, digits):
    _, _, result = adam_sweep
    assert 1e-4 <= result.suggestion <= 1e-1
    assert result.suggestion in result.lrs
    assert result.lr_min_div10 == pytest.approx(result.lrs[np.argmin(result.smoothed)] / 10)
    (x, t), (x_test, t_test) = digits
    model = fnn.models.mlp(in_features=64, seed=1)
    model.fit(x, t, epochs=1, batch_size=64, optimizer=fnn.optim.Adam(lr=result.suggestion), verbose=0)
    assert model.evaluate(x_test, t_test)["accuracy"] > 0.5  # chance is 0.1


def test_batch_norm_statistics_dropout_rng_and_the_optimizer_are_restored(digits):
    (x, t), _ = digits
    model = fnn.Sequential(
        [
            fnn.Flatten(),
            fnn.Dense(64, 32),
            fnn.BatchNorm(32),
            fnn.ReLU(),
            fnn.Dropout(0.3),
            fnn.Dense(32, 10),
        ],
        seed=0,
    )
    params = model.flat_params.copy()
    buffers = [a.copy() for layer in model.layers for a in layer.buffers.values()]
    dropout = model.layers[4]
    expected_draw = np.random.Generator(type(dropout.rng.bit_generator)())
    expected_draw.bit_generator.state = dropout.rng.bit_generator.state
    optimizer = fnn.optim.Momentum(lr=0.05, momentum=0.8)
    result = fnn.tune.lr_find(model, x, t, num_steps=20, end_lr=1.0, optimizer=optimizer, batch_size=32)
    assert len(result.lrs) > 1
    np.testing.assert_array_equal(model.flat_params, params)
    for array, saved in zip((a for layer in model.layers for a in layer.buffers.values()), buffers):
        np.testing.assert_array_equal(array, saved)
    assert dropout.rng.random() == expected_draw.random()
    assert optimizer.lr == 0.05 and optimizer.iterations == 0 and not optimizer.state


def test_a_non_finite_step_stops_the_sweep_and_restores_the_model(digits, monkeypatch):
    (x, t), _ = digits
    model = fnn.models.mlp(in_features=64, seed=0)
    params = model.flat_params.copy()
    real_step, calls = model.train_step, []

    def step(xb, tb, optimizer):
        calls.append(optimizer.lr)
        if len(calls) == 6:
            raise NonFiniteError("loss is nan: first non-finite value in layers[2]")
        return real_step(xb, tb, optimizer)

    monkeypatch.setattr(model, "train_step", step)
    result = fnn.tune.lr_find(model, x, t, num_steps=50, optimizer="sgd")
    assert len(result.lrs) == 5 and result.stop_reason.startswith("stopped at step 6 (lr ")
    assert "loss is nan" in result.stop_reason
    np.testing.assert_array_equal(model.flat_params, params)
    calls.clear()
    monkeypatch.setattr(model, "train_step", lambda *a: (_ for _ in ()).throw(NonFiniteError("nan")))
    with pytest.raises(NonFiniteError, match=r"lr_find: the first step at lr 1e-07 failed .*lower start_lr"):
        fnn.tune.lr_find(model, x, t)


def test_steepest_descent_of_a_known_curve():
    lrs = np.logspace(-6, 0, 61)
    # falls fastest at lr = 1e-3 (the centre of the tanh), lowest at 1e-1, rises after
    curve = 2 - np.tanh(2 * (np.log10(lrs) + 3)) + np.where(lrs > 0.1, 50 * (lrs - 0.1), 0)
    assert suggest_steepest(lrs, curve) == pytest.approx(1e-3, rel=0.13)  # one grid step is 10**0.1
    assert suggest_steepest(lrs, np.linspace(1, 2, 61)) == lrs[0]  # never falls: the first rate


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_lr": 0.0}, r"lr_find: start_lr must be a positive finite number, got 0\.0"),
        ({"start_lr": 1.0, "end_lr": 0.5}, "end_lr must be larger than start_lr, got 1.0 and 0.5"),
        ({"num_steps": 1}, r"num_steps must be an integer >= 2, got 1"),
        ({"smooth": 1.0}, r"smooth must be in \[0, 1\) \(0 turns smoothing off\), got 1\.0"),
        ({"diverge_factor": 1.0}, "diverge_factor must be > 1, got 1.0"),
        ({"batch_size": 5000}, "batch_size 5000 is larger than the 1438 samples; pass a smaller batch_size"),
    ],
)
def test_bad_arguments_are_named(digits, kwargs, message):
    (x, t), _ = digits
    with pytest.raises(ValueError, match=message):
        fnn.tune.lr_find(fnn.models.mlp(in_features=64, seed=0), x, t, **kwargs)


def test_an_optimizer_of_the_wrong_type_is_named(digits):
    (x, t), _ = digits
    with pytest.raises(TypeError, match="lr_find: optimizer must be a name or an Optimizer, got int"):
        fnn.tune.lr_find(fnn.models.mlp(in_features=64, seed=0), x, t, optimizer=3)


def test_the_plot_is_a_png(adam_sweep, tmp_path):
    pytest.importorskip("matplotlib")
    _, _, result = adam_sweep
    path = fnn.plots.plot_lr_find(result, tmp_path / "lr.png")
    assert path == tmp_path / "lr.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_prints_the_suggestion_and_the_train_command(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "lr find.png"
    argv = ["lr-find", "--steps", "40", "--batch-size", "64", "--seed", "2", "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    [suggested] = [line for line in out.splitlines() if line.startswith("suggested learning rate: ")]
    rate = float(suggested.split()[3])
    assert 1e-6 < rate < 10
    [command] = [line for line in out.splitlines() if line.startswith("train with: ")]
    words = shlex.split(command[len("train with: ") :])
    assert words[:2] == ["fastnn", "train"]
    args = build_parser().parse_args(words[1:])
    assert (args.lr, args.batch_size, args.seed, args.optimizer) == (rate, 64, 2, "adam")
    assert math.isclose(rate, float(f"{rate:.2g}"))
    assert plot.read_bytes()[:4] == b"\x89PNG" and f"plot: {plot}" in out


def test_the_command_refuses_a_sweep_that_does_not_grow_and_a_plot_into_a_missing_folder(tmp_path, capsys):
    assert main(["lr-find", "--start-lr", "1", "--end-lr", "0.1"]) == 2
    assert "--end-lr (0.1) must be larger than --start-lr (1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lr-find", "--plot", str(tmp_path / "no" / "lr.png")])
    assert f"the folder {tmp_path / 'no'} does not exist" in capsys.readouterr().err
