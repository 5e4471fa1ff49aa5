"""The callback protocol: the hooks fit calls, in which order, stopping from a hook, and
how fit assembles its callbacks from the shorthands and the caller's list."""

from __future__ import annotations

import numpy as np
import pytest

import fastnn as fnn
from fastnn.callbacks import Callback, EarlyStopping, ModelCheckpoint, NonFiniteGuard, ProgressLogger
from fastnn.optim import SGD

from fit_recipe import clusters, small_model


class Recorder(Callback):
    """Records every hook call with what the loop says at that moment."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, model, optimizer):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, model, optimizer):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, model, optimizer):
        self.calls.append(("batch_begin", batch, self.loop.epoch, self.loop.global_step))

    def on_train_batch_end(self, batch, logs, model, optimizer):
        self.calls.append(("batch_end", batch, self.loop.global_step, round(logs["loss"], 12)))

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        self.calls.append(("epoch_end", epoch, sorted(metrics)))

    def on_train_end(self, model, optimizer):
        self.calls.append(("train_end",))


def test_fit_calls_every_hook_in_order_with_the_loop_position():
    x, t = clusters(25)
    recorder = Recorder()
    model = small_model()
    history = model.fit(
        x, t, epochs=2, batch_size=10, optimizer=SGD(0.1), verbose=0, seed=0, callbacks=[recorder]
    )
    calls = recorder.calls
    assert calls[0] == ("train_begin",) and calls[-1] == ("train_end",)
    kinds = [c[0] for c in calls[1:-1]]
    one_epoch = ["epoch_begin"] + ["batch_begin", "batch_end"] * 3 + ["epoch_end"]
    assert kinds == one_epoch * 2
    begins = [c[1:] for c in calls if c[0] == "batch_begin"]
    assert begins == [(0, 0, 0), (1, 0, 1), (2, 0, 2), (0, 1, 3), (1, 1, 4), (2, 1, 5)]
    ends = [c[1:3] for c in calls if c[0] == "batch_end"]
    assert ends == [(0, 1), (1, 2), (2, 3), (0, 4), (1, 5), (2, 6)]  # after the step
    assert all(c[2] == ["accuracy", "loss"] for c in calls if c[0] == "epoch_end")
    # the loss a batch hook sees is the one the epoch's mean is made of
    losses = [c[3] for c in calls if c[0] == "batch_end"][:3]
    mean = (losses[0] * 10 + losses[1] * 10 + losses[2] * 5) / 25
    assert history["loss"][0] == pytest.approx(mean, rel=1e-9)


def test_a_batch_hook_can_stop_training_after_that_batch():
    x, t = clusters(50)

    class StopAfterSeven(Callback):
        stop_reason = "seven batches"

        def __init__(self):
            self.seen = 0

        def on_train_batch_end(self, batch, logs, model, optimizer):
            self.seen += 1
            return self.seen == 7

    optimizer = SGD(0.1)
    history = small_model().fit(
        x, t, epochs=5, batch_size=10, optimizer=optimizer, verbose=0, callbacks=[StopAfterSeven()]
    )
    assert optimizer.iterations == 7  # 5 batches an epoch: stopped in the second
    assert history.stop_reason == "seven batches"
    assert history.epochs == 2  # the partial epoch is recorded, over its 2 batches
    assert 0 < history["accuracy"][1] <= 1


def test_a_callback_can_log_to_a_file(tmp_path):
    x, t = clusters(40)
    log = tmp_path / "log.txt"

    class LogToFile(Callback):
        def __init__(self, path):
            self.path = path

        def on_epoch_end(self, epoch, metrics, model, optimizer):
            with open(self.path, "a") as f:
                f.write(f"{epoch} {metrics['loss']:.6f}\n")

    history = small_model().fit(x, t, epochs=3, batch_size=10, verbose=0, callbacks=[LogToFile(log)])
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "1", "2"]
    assert [float(line.split()[1]) for line in lines] == pytest.approx(history["loss"], abs=1e-6)


def test_fit_runs_its_callbacks_in_a_fixed_order(tmp_path):
    x, t = clusters(20)
    seen = {}

    class Look(Callback):
        def on_train_begin(self, model, optimizer):
            seen["order"] = [type(c).__name__ for c in self.loop.callbacks]

    small_model().fit(
        x, t, epochs=1, batch_size=10, verbose=0, patience=2, checkpoint=tmp_path / "ckpt", callbacks=[Look()]
    )
    assert seen["order"] == ["ProgressLogger", "NonFiniteGuard", "Look", "EarlyStopping", "ModelCheckpoint"]
    # built-ins the caller passes take their fixed places, wherever they are in the list
    small_model().fit(
        x,
        t,
        epochs=1,
        batch_size=10,
        verbose=0,
        callbacks=[
            ModelCheckpoint(tmp_path / "two"),
            EarlyStopping(2),
            Look(),
            NonFiniteGuard(),
            ProgressLogger(0),
        ],
    )
    assert seen["order"] == ["ProgressLogger", "NonFiniteGuard", "Look", "EarlyStopping", "ModelCheckpoint"]


def test_a_built_in_given_twice_or_a_stranger_is_refused(tmp_path):
    x, t = clusters(20)
    model = small_model()
    with pytest.raises(ValueError, match="one EarlyStopping"):
        model.fit(x, t, patience=2, callbacks=[EarlyStopping(3)], verbose=0)
    with pytest.raises(ValueError, match="one ModelCheckpoint"):
        model.fit(x, t, checkpoint=tmp_path, callbacks=[ModelCheckpoint(tmp_path)], verbose=0)
    with pytest.raises(ValueError, match="one ProgressLogger"):
        model.fit(x, t, callbacks=[ProgressLogger(), ProgressLogger()], verbose=0)
    with pytest.raises(TypeError, match=r"callbacks\[1\] is a function"):
        model.fit(x, t, callbacks=[Callback(), lambda *a: None], verbose=0)


def test_hooks_a_callback_does_not_override_cost_no_call():
    """CallbackList calls a hook only on the callbacks that define it."""

    class EpochsOnly(Callback):
        def on_epoch_end(self, epoch, metrics, model, optimizer):
            return None

    lst = fnn.callbacks.CallbackList([EpochsOnly(), Recorder()], loop=object())
    assert [type(c).__name__ for c in lst._hooked["on_train_batch_end"]] == ["Recorder"]
    assert [type(c).__name__ for c in lst._hooked["on_epoch_end"]] == ["EpochsOnly", "Recorder"]


class _Loop:
    """A stand-in for the loop of rank ``rank`` of a data-parallel fit (None: not parallel)."""

    def __init__(self, rank):
        self.parallel = None
        if rank is not None:
            self.parallel = type("Parallel", (), {"comm": type("Comm", (), {"is_root": rank == 0})()})()


class _Reporter(Recorder):
    root_only = True

    def check(self, loop):
        self.calls.append(("check",))


@pytest.mark.parametrize("rank, runs", [(None, True), (0, True), (1, False)])
def test_root_only_callbacks_are_skipped_on_the_other_ranks_of_a_data_parallel_loop(rank, runs):
    reporter, recorder = _Reporter(), Recorder()
    lst = fnn.callbacks.CallbackList([reporter, recorder], loop=_Loop(rank))
    lst.check()
    lst.on_train_begin(None, None)
    lst.on_epoch_end(0, {}, None, None)
    assert reporter.calls == ([("check",), ("train_begin",), ("epoch_end", 0, [])] if runs else [])
    assert recorder.calls == [("train_begin",), ("epoch_end", 0, [])]  # not root_only: runs everywhere
    assert lst.callbacks == [reporter, recorder]  # both stay listed (a checkpoint's slots)


def test_the_file_loggers_and_the_dashboard_are_root_only_and_the_schedules_are_not():
    from fastnn.dashboard import Dashboard

    assert fnn.callbacks.CSVLogger.root_only and fnn.callbacks.JSONLinesLogger.root_only
    assert Dashboard.root_only
    for cls in (EarlyStopping, ModelCheckpoint, NonFiniteGuard, fnn.callbacks.ReduceLROnPlateau):
        assert not cls.root_only


def test_the_schedules_are_callbacks_in_both_places():
    assert fnn.schedules.StepDecay is fnn.callbacks.StepDecay
    assert issubclass(fnn.callbacks.ReduceLROnPlateau, Callback)
    assert np.isclose(fnn.callbacks.ExponentialDecay(0.5).lr(2, 1.0), 0.25)
