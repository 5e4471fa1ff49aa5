"""The fit loop (fastnn.training): history, validation, shuffling, callbacks' hooks,
augment, the reported loss, argument checks, and Ctrl-C."""

from __future__ import annotations

import io
import os
import signal
import time

import numpy as np
import pytest

import fastnn as fnn
from fastnn.checkpoint import load_checkpoint
from fastnn.cli import main
from fastnn.optim import SGD, Adam

from fit_recipe import clusters as blobs
from fit_recipe import latest_step, recipe_model, small_model, start_child, train, wait_for

# ----------------------------------------------------------------- fit


def test_fit_records_history_with_validation_data():
    x, t = blobs(200)
    xv, tv = blobs(60, seed=1)
    history = small_model().fit(
        x, t, epochs=4, batch_size=32, validation_data=(xv, tv), optimizer=Adam(0.01), verbose=0
    )
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert history.epochs == 4 and all(len(history[k]) == 4 for k in ("loss", "val_accuracy"))
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history.stop_reason is None


def test_validation_split_holds_out_the_last_samples():
    x, t = blobs(100)
    model = small_model()
    history = model.fit(x, t, epochs=1, batch_size=10, validation_split=0.2, verbose=0)
    expected = model.evaluate(x[80:], t[80:])
    assert history["val_loss"][0] == pytest.approx(expected["loss"], rel=1e-6)
    assert history["val_accuracy"][0] == pytest.approx(expected["accuracy"])


def test_shuffling_changes_batches_each_epoch_and_is_seeded():
    x, t = blobs(100)
    runs = []
    for _ in range(2):
        model = small_model(seed=0)
        model.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=5)
        runs.append(model.flat_params.copy())
    assert np.array_equal(runs[0], runs[1])
    unshuffled = small_model(seed=0)
    unshuffled.fit(x, t, epochs=2, batch_size=10, verbose=0, seed=5, shuffle=False)
    assert not np.array_equal(runs[0], unshuffled.flat_params)


def test_fit_rejects_bad_arguments():
    x, t = blobs(20)
    model = small_model()
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, t, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, t, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="20 samples and t has 19"):
        model.fit(x, t[:-1], verbose=0)
    with pytest.raises(ValueError, match="needs validation"):
        model.fit(x, t, patience=2, monitor="val_loss", verbose=0)
    with pytest.raises(ValueError, match="give validation_data or validation_split, not both"):
        model.fit(x, t, validation_data=(x, t), validation_split=0.5, verbose=0)


# ----------------------------------------------------------------- checked before the first step


def _no_step_model():
    """small_model whose train_step fails the test: errors must come before any step."""
    model = small_model()

    def train_step(*args, **kwargs):
        raise AssertionError("fit ran a step before refusing its arguments")

    model.train_step = train_step
    return model


NAMES = "expected one of 'loss', 'accuracy', 'val_loss', 'val_accuracy'"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(patience=2, monitor="val_acc", validation_split=0.2),
            ValueError,
            f"EarlyStopping: monitor='val_acc' is not a metric fit records; {NAMES} "
            r"\(did you mean 'val_accuracy'\?\)",
        ),
        (
            dict(patience=2, monitor="val_acc"),
            ValueError,
            r"EarlyStopping: monitor='val_acc' is not a metric.*did you mean 'val_accuracy'",
        ),
        (
            dict(patience=2, monitor="val_loss"),
            ValueError,
            "EarlyStopping: monitor='val_loss' needs validation data.*validation_split.*or monitor 'loss'",
        ),
        (
            dict(callbacks=[fnn.callbacks.ReduceLROnPlateau(monitor="val_los")], validation_split=0.2),
            ValueError,
            r"ReduceLROnPlateau: monitor='val_los' is not a metric fit records.*did you mean 'val_loss'",
        ),
        (
            dict(callbacks=[fnn.callbacks.ReduceLROnPlateau()]),
            ValueError,
            "ReduceLROnPlateau: monitor='val_accuracy' needs validation data",
        ),
        (dict(monitor="val_loss", validation_split=0.2), ValueError, "fit: monitor='val_loss' .* patience=N"),
        (
            dict(min_delta=0.01),
            ValueError,
            "fit: min_delta=0.01 is read only by early stopping; pass patience",
        ),
        (dict(verbose=3), ValueError, r"fit: verbose must be 0 \(silent\), 1 .* or 2 .* got 3"),
        (dict(verbose="1"), ValueError, "fit: verbose must be 0"),
        (dict(epochs=2.5), ValueError, "fit: epochs must be a non-negative integer, got 2.5"),
        (dict(batch_size="32"), ValueError, "fit: batch_size must be a positive integer, got '32'"),
        (dict(shuffle="yes"), TypeError, "fit: shuffle must be True or False, got str 'yes'"),
        (dict(validation_split="0.1"), ValueError, r"fit: validation_split must be a number in \[0, 1\)"),
        (dict(validation_split=1.0), ValueError, r"fit: validation_split must be a number in \[0, 1\)"),
        (dict(seed=-1), ValueError, "fit: seed must be None or a non-negative integer, got -1"),
        (
            dict(optimizer="adamm"),
            ValueError,
            r"fit: optimizer='adamm' is not an optimizer name; expected one of .*'sgd'.*did you mean 'adam'",
        ),
        (
            dict(optimizer=Adam),
            TypeError,
            r"fit: optimizer is the class Adam.*pass an instance such as Adam\(\)",
        ),
        (dict(optimizer=0.01), TypeError, "fit: optimizer must be a fastnn.optim.Optimizer .* got float"),
        (
            dict(callbacks=fnn.callbacks.EarlyStopping(2)),
            TypeError,
            r"fit: callbacks must be a list .* single EarlyStopping; pass callbacks=\[EarlyStopping",
        ),
        (dict(callbacks=[fnn.callbacks.CSVLogger]), TypeError, r"fit: callbacks\[0\] is the class CSVLogger"),
        (dict(callbacks=[print]), TypeError, r"fit: callbacks\[0\] is a builtin_function_or_method"),
        (dict(augment="shift"), TypeError, "fit: augment must be a function augment\\(x_batch, rng\\)"),
        (dict(include_penalty=1), TypeError, "fit: include_penalty must be True or False"),
        (dict(file="log.txt"), TypeError, "fit: file must be a text stream with write"),
        (dict(clip_norm=0), ValueError, "fit: clip_norm must be a positive finite number, got 0"),
        (dict(checkpoint=3), TypeError, "fit: checkpoint must be a folder path"),
        (dict(resume=True), ValueError, "fit: resume and checkpoint_every need checkpoint=DIR"),
        (dict(restore_best_weights="no", patience=1), TypeError, "fit: restore_best_weights must be True"),
    ],
)
def test_every_argument_is_checked_before_the_first_step(kwargs, error, match):
    x, t = blobs(40)
    with pytest.raises(error, match=match):
        _no_step_model().fit(x, t, **{"verbose": 0, **kwargs})


def test_a_callback_checks_itself_against_the_loop_before_any_hook():
    seen = []

    class NeedsTwoEpochs(fnn.callbacks.Callback):
        def check(self, loop):
            seen.append((loop.epochs, loop.metric_names, loop.validation is not None))
            if loop.epochs < 2:
                raise ValueError(f"NeedsTwoEpochs: expected epochs >= 2, got {loop.epochs}")

        def on_train_begin(self, model, optimizer):
            raise AssertionError("on_train_begin ran before check refused the run")

    x, t = blobs(40)
    with pytest.raises(ValueError, match="NeedsTwoEpochs: expected epochs >= 2, got 1"):
        _no_step_model().fit(x, t, epochs=1, verbose=0, callbacks=[NeedsTwoEpochs()])
    assert seen == [(1, ("loss", "accuracy", "val_loss", "val_accuracy"), False)]


def test_a_valid_monitor_trains():
    x, t = blobs(60)
    history = small_model().fit(
        x, t, epochs=2, verbose=0, patience=5, monitor="val_accuracy", validation_split=0.25
    )
    assert history.epochs == 2 and history.best_epoch is not None


def test_callbacks_see_every_epoch_and_can_stop_training():
    x, t = blobs(40)
    calls = []

    class StopAfterTwo(fnn.callbacks.Callback):
        stop_reason = "two is enough"

        def on_train_begin(self, model, optimizer):
            calls.append("begin")

        def on_epoch_begin(self, epoch, model, optimizer):
            calls.append(f"epoch {epoch}")
            optimizer.lr = 0.1 / (epoch + 1)

        def on_epoch_end(self, epoch, metrics, model, optimizer):
            calls.append(round(metrics["loss"], 6) > 0)
            return epoch == 1

        def on_train_end(self, model, optimizer):
            calls.append("end")

    history = small_model().fit(
        x, t, epochs=5, batch_size=10, optimizer=SGD(), verbose=0, callbacks=[StopAfterTwo()]
    )
    assert calls == ["begin", "epoch 0", True, "epoch 1", True, "end"]
    assert history["lr"] == [0.1, 0.05] and history.stop_reason == "two is enough"


def test_augment_is_applied_to_every_training_batch_with_fit_rng():
    x, t = blobs(30)
    seen = []

    def augment(batch, rng):
        assert isinstance(rng, np.random.Generator)
        seen.append(batch.shape)
        return batch + rng.normal(0, 0.01, batch.shape).astype(batch.dtype)

    small_model().fit(x, t, epochs=2, batch_size=8, augment=augment, verbose=0)
    assert seen == [(8, 4), (8, 4), (8, 4), (6, 4)] * 2


def test_include_penalty_adds_the_l2_and_l1_terms_to_the_reported_loss():
    x, t = blobs(30)
    model = small_model(backend="numpy", seed=0)
    plain = small_model(backend="numpy", seed=0)
    optimizer = SGD(lr=0.0001, weight_decay=0.01, l1=0.001)
    with_penalty = model.fit(
        x, t, epochs=1, batch_size=30, optimizer=optimizer, verbose=0, include_penalty=True, shuffle=False
    )
    without = plain.fit(
        x,
        t,
        epochs=1,
        batch_size=30,
        optimizer=SGD(lr=0.0001, weight_decay=0.01, l1=0.001),
        verbose=0,
        shuffle=False,
    )
    p = model.flat_params.astype(np.float64)
    penalty = 0.5 * 0.01 * (p @ p) + 0.001 * np.abs(p).sum()
    assert with_penalty["loss"][0] - without["loss"][0] == pytest.approx(penalty, rel=1e-4)


# ----------------------------------------------------------------- Ctrl-C, in process


def _sigint_at(step, times=1):
    def hook(count):
        if count == step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # let the handler run

    return hook


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run: (flat params, history)."""
    model, history = train()
    return model.flat_params.copy(), history


def test_ctrl_c_finishes_the_step_writes_a_checkpoint_and_resumes_exactly(tmp_path, reference):
    previous = signal.getsignal(signal.SIGINT)
    out = io.StringIO()
    ckpt = tmp_path / "ckpt"
    model, history = train(checkpoint=ckpt, every=100, hook=_sigint_at(24), file=out)
    assert signal.getsignal(signal.SIGINT) is previous
    assert history.interrupted and "interrupted at epoch 2/4, step 7/17" in history.stop_reason
    text = out.getvalue()
    assert "finishing the current step" in text
    assert f"resume with fit(..., checkpoint={str(ckpt)!r}, resume=True)" in text
    # the interrupted step (24) was finished and saved
    assert history.checkpoint == str(ckpt / "checkpoint-000000024.npz")
    np.testing.assert_array_equal(load_checkpoint(history.checkpoint).arrays["params"], model.flat_params)
    resumed, _ = train(checkpoint=ckpt, every=100, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, reference[0])


def test_ctrl_c_without_a_checkpoint_folder_stops_cleanly(reference):
    out = io.StringIO()
    model, history = train(hook=_sigint_at(5), file=out)
    assert history.interrupted and history.epochs == 0
    assert "the model keeps the weights of its last step" in out.getvalue()
    assert "to be able to resume, pass checkpoint=DIR to fit" in out.getvalue()
    assert history.interrupted_at == "epoch 1/4, step 5/17"
    assert np.isfinite(model.flat_params).all()
    assert not np.array_equal(model.flat_params, recipe_model().flat_params)  # 5 steps taken


def test_a_second_ctrl_c_aborts_at_once():
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(hook=_sigint_at(5, times=2), file=io.StringIO())
    assert signal.getsignal(signal.SIGINT) is previous


# ----------------------------------------------------------------- Ctrl-C to fastnn train

CLI_CHILD = """
import json, os, sys, time
import fastnn as fnn
from fastnn.cli import main
cfg = json.loads(sys.argv[1])
real, count = fnn.Sequential.train_step, [0]

def train_step(self, *args, **kwargs):
    count[0] += 1
    if count[0] == cfg["block_at"]:       # hold this step until the parent has sent SIGINT
        open(cfg["marker"], "w").close()
        deadline = time.time() + 60
        while not os.path.exists(cfg["go"]) and time.time() < deadline:
            time.sleep(0.01)
    return real(self, *args, **kwargs)

fnn.Sequential.train_step = train_step
sys.exit(main(cfg["argv"]))
"""


def test_sigint_to_fastnn_train_then_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    ckpt, marker, go = tmp_path / "ckpt", tmp_path / "marker", tmp_path / "go"
    common = ["train", "--epochs", "3", "--batch-size", "64", "--quiet", "--clip-norm", "5"]
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stderr:
        child = start_child(
            {
                "argv": common + ["--checkpoint", str(ckpt), "--checkpoint-every", "7"],
                "block_at": 30,
                "marker": str(marker),
                "go": str(go),
            },
            CLI_CHILD,
            stderr,
        )
    try:
        wait_for(marker, child)
        child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60  # let step 30 go on once the handler has seen the signal
        while "finishing the current step" not in errors.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        go.touch()
        out, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    err = errors.read_text()
    assert child.returncode == 130, err
    assert "finishing the current step" in err
    assert f"resume with: fastnn train --resume {ckpt}" in err
    assert "test accuracy" not in out
    assert latest_step(ckpt) == 30  # digits: 23 steps an epoch, so mid-epoch 2
    resumed = ["train", "--resume", str(ckpt), "--quiet", "--save", str(tmp_path / "resumed.npz")]
    assert main(resumed) == 0
    assert main(common + ["--save", str(tmp_path / "full.npz")]) == 0
    capsys.readouterr()
    np.testing.assert_array_equal(
        fnn.load(tmp_path / "resumed.npz").flat_params, fnn.load(tmp_path / "full.npz").flat_params
    )
