"""Learning-rate schedules: the exact rate of every epoch, inside fit and by hand."""

import math

import numpy as np
import pytest

import fastnn as fnn
from fastnn.schedules import CosineDecay, ExponentialDecay, LambdaSchedule, ReduceLROnPlateau, StepDecay


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def train(data, callbacks, epochs, lr=0.1, **kwargs):
    x, t = data
    model = fnn.Sequential([fnn.Dense(3, 2)], seed=0)
    optimizer = fnn.optim.SGD(lr)
    history = model.fit(
        x, t, epochs=epochs, batch_size=20, optimizer=optimizer, verbose=0, callbacks=callbacks, **kwargs
    )
    return history, optimizer


def test_step_decay(data):
    history, _ = train(data, [StepDecay(step_size=3, gamma=0.5)], epochs=8, lr=0.2)
    assert history["lr"] == pytest.approx([0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05], rel=1e-12)


def test_exponential_decay(data):
    history, _ = train(data, [ExponentialDecay(0.9)], epochs=5, lr=0.1)
    assert history["lr"] == pytest.approx([0.1 * 0.9**e for e in range(5)], rel=1e-12)


def test_cosine_decay_matches_pytorch_closed_form(data):
    history, _ = train(data, [CosineDecay(epochs=4, min_lr=0.01)], epochs=6, lr=0.1)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * min(e, 4) / 4)) / 2 for e in range(6)]
    assert history["lr"] == pytest.approx(expected, rel=1e-12)
    assert history["lr"][0] == pytest.approx(0.1) and history["lr"][2] == pytest.approx(0.055)
    assert history["lr"][4:] == pytest.approx([0.01, 0.01])


def test_cosine_matches_torch_scheduler():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.02)
    theirs = []
    for _ in range(7):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert CosineDecay(7, min_lr=0.02).rates(7, 0.3) == pytest.approx(theirs, rel=1e-9)


def test_lambda_schedule_and_rates():
    schedule = LambdaSchedule(lambda epoch, lr0: lr0 / (1 + epoch))
    assert schedule.rates(4, 1.0) == [1.0, 0.5, 1 / 3, 0.25]
    assert StepDecay(2, 0.1).rates(5, 1.0) == pytest.approx([1, 1, 0.1, 0.1, 0.01])


class Scripted(fnn.callbacks.Callback):
    """Feeds ReduceLROnPlateau a scripted validation accuracy instead of the real one."""

    def __init__(self, plateau, values):
        self.plateau, self.values = plateau, values

    def on_train_begin(self, model, optimizer):
        self.plateau.on_train_begin(model, optimizer)

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        metrics = {**metrics, "val_accuracy": self.values[epoch]}
        stop = self.plateau.on_epoch_end(epoch, metrics, model, optimizer)
        self.stop_reason = self.plateau.stop_reason
        return stop


def test_nielsen_halves_after_n_epochs_without_improvement_and_stops_at_1_128(data):
    plateau = ReduceLROnPlateau(patience=2)
    # improves for 3 epochs, then never again
    values = [0.5, 0.6, 0.7] + [0.65] * 40
    history, optimizer = train(data, [Scripted(plateau, values)], epochs=40, lr=0.128)
    # epochs 0-2 improve; every 2 epochs without improvement halve the rate
    expected = [0.128] * 5
    for k in range(1, 7):
        expected += [0.128 / 2**k] * 2
    assert history["lr"] == pytest.approx(expected, rel=1e-12)
    assert plateau.reductions == [4, 6, 8, 10, 12, 14, 16]
    assert optimizer.lr == pytest.approx(0.128 / 128)  # the 7th halving reached 1/128: stop
    assert history.epochs == 17
    assert "reached 1/128 of its start" in history.stop_reason


def test_nielsen_counts_again_after_an_improvement():
    plateau = ReduceLROnPlateau(patience=3, monitor="val_loss")
    opt = fnn.optim.SGD(1.0)
    plateau.on_train_begin(None, opt)
    losses = [1.0, 1.1, 1.2, 0.9, 1.0, 1.0, 1.0, 0.95]
    lrs = []
    for epoch, value in enumerate(losses):
        assert not plateau.on_epoch_end(epoch, {"val_loss": value}, None, opt)
        lrs.append(opt.lr)
    assert lrs == [1, 1, 1, 1, 1, 1, 0.5, 0.5]


def test_nielsen_needs_its_metric(data):
    with pytest.raises(ValueError, match="val_accuracy"):
        train(data, [ReduceLROnPlateau()], epochs=1)
    history, _ = train(data, [ReduceLROnPlateau(patience=1)], epochs=2, validation_split=0.25)
    assert history.epochs == 2


def test_schedule_state_round_trips():
    plateau = ReduceLROnPlateau(patience=2)
    plateau.on_train_begin(None, fnn.optim.SGD(0.5))
    plateau.on_epoch_end(0, {"val_accuracy": 0.3}, None, fnn.optim.SGD(0.5))
    copy = ReduceLROnPlateau(patience=2)
    copy.load_state_dict(plateau.state_dict())
    assert (copy.lr0, copy.best, copy.wait) == (0.5, 0.3, 0)
    step = StepDecay(2)
    step.lr0 = 0.3
    other = StepDecay(2)
    other.load_state_dict(step.state_dict())
    assert other.lr0 == 0.3


def test_bad_arguments():
    with pytest.raises(ValueError, match="step_size"):
        StepDecay(0)
    with pytest.raises(ValueError, match="gamma"):
        ExponentialDecay(1.5)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(TypeError):
        LambdaSchedule(3)
