"""ModelCheckpoint through fit: checkpoint files, exact resume after crashes and kills,
and what a resume refuses."""

from __future__ import annotations

import json
import signal

import numba
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _config
from fastnn.checkpoint import CHECKPOINT_FORMAT, list_checkpoints, load_checkpoint, load_latest
from fastnn.optim import SGD, Adam

from fit_recipe import (
    STEPS_PER_EPOCH,
    Crash,
    blobs,
    clusters,
    crash_at,
    recipe_model,
    small_model,
    start_child,
    train,
    wait_for,
)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run: (flat params, history)."""
    model, history = train()
    return model.flat_params.copy(), history


# ----------------------------------------------------------------- files


def test_checkpoints_are_atomic_npz_files_and_only_the_newest_are_kept(tmp_path):
    ckpt = tmp_path / "ckpt"
    model, history = train(checkpoint=ckpt, every=5, keep=2, epochs=2)
    names = sorted(p.name for p in ckpt.iterdir())
    # every 5 steps, plus the end of training at step 34: the newest two remain
    assert names == ["checkpoint-000000030.npz", "checkpoint-000000034.npz"]
    assert history.checkpoint == str(ckpt / "checkpoint-000000034.npz")
    with np.load(ckpt / names[-1], allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
        assert {
            "__fastnn__",
            "config",
            "params",
            "checkpoint",
            "digest",
            "optimizer/m",
            "optimizer/v",
            "extra/order",
        } <= set(data.files)
        meta = json.loads(data["checkpoint"].tobytes())
    assert meta["format"] == CHECKPOINT_FORMAT and meta["optimizer"]["class"] == "Adam"
    assert meta["state"]["loop"]["global_step"] == 34 and meta["state"]["loop"]["epoch"] == 2
    assert "2" in meta["layer_rngs"]  # the Dropout layer's generator
    # a checkpoint is also a model file
    loaded = fnn.load(ckpt / names[-1])
    np.testing.assert_array_equal(loaded.flat_params, model.flat_params)


def test_checkpoint_every_epoch_by_default(tmp_path):
    ckpt = tmp_path / "ckpt"
    train(checkpoint=ckpt, epochs=2, keep=5)
    assert [p.name for p in list_checkpoints(ckpt)] == [
        "checkpoint-000000017.npz",
        "checkpoint-000000034.npz",
    ]


# ----------------------------------------------------------------- resume


@pytest.mark.parametrize("crash_step", [3, 13, 17, 18, 31, 52])
def test_resume_after_a_crash_gives_bitwise_identical_weights(tmp_path, reference, crash_step):
    """Crashes right after a checkpoint, mid-epoch, at epoch ends, and in later epochs."""
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Crash):
        train(checkpoint=ckpt, every=5, hook=crash_at(crash_step))
    model, history = train(checkpoint=ckpt, every=5, resume=True)
    params, expected = reference
    np.testing.assert_array_equal(model.flat_params, params)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert history[key] == expected[key], key
    assert history.best_epoch == expected.best_epoch


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_resume_on_both_backends(tmp_path, backend):
    expected, _ = train(backend=backend, epochs=2)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Crash):
        train(checkpoint=ckpt, every=4, hook=crash_at(22), backend=backend, epochs=2)
    model, _ = train(checkpoint=ckpt, every=4, resume=True, backend=backend, epochs=2)
    np.testing.assert_array_equal(model.flat_params, expected.flat_params)


def test_resume_restores_layer_buffers(tmp_path):
    """BatchNorm's running statistics are buffers: saved, restored, bitwise at the end."""
    x, t = blobs()

    def run(hook=None, **kwargs):
        model = fnn.Sequential([fnn.Dense(16, 8), fnn.BatchNorm(8), fnn.ReLU(), fnn.Dense(8, 4)], seed=1)
        model.fit(
            x,
            t,
            epochs=2,
            batch_size=50,
            verbose=0,
            seed=2,
            augment=None if hook is None else (lambda b, r: (hook(0), b)[1]),
            **kwargs,
        )
        return model

    expected = run()
    steps = [0]

    def hook(_):
        steps[0] += 1
        if steps[0] == 16:
            raise Crash

    with pytest.raises(Crash):
        run(hook, checkpoint=tmp_path, checkpoint_every=4)
    resumed = run(checkpoint=tmp_path, checkpoint_every=4, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, expected.flat_params)
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(resumed.layers[1].buffers[name], expected.layers[1].buffers[name])
    assert not np.all(expected.layers[1].buffers["running_var"] == 1)


def test_resume_with_more_epochs_continues_a_finished_run(tmp_path, reference):
    ckpt = tmp_path / "ckpt"
    _, first = train(checkpoint=ckpt, epochs=2)
    assert first.epochs == 2
    model, history = train(checkpoint=ckpt, resume=True, epochs=4)
    np.testing.assert_array_equal(model.flat_params, reference[0])
    assert history.epochs == 4


def test_resume_of_an_early_stopped_run_restores_the_best_weights(tmp_path):
    x, t = blobs()

    def run(**kwargs):
        model = recipe_model()
        history = model.fit(
            x,
            t,
            epochs=30,
            batch_size=32,
            optimizer=SGD(5.0),
            patience=1,
            validation_split=0.2,
            verbose=0,
            seed=3,
            **kwargs,
        )
        return model, history

    model, history = run(checkpoint=tmp_path / "ckpt")
    assert "early stopping" in history.stop_reason
    again, resumed = run(checkpoint=tmp_path / "ckpt", resume=True)
    np.testing.assert_array_equal(again.flat_params, model.flat_params)
    assert resumed.stop_reason == history.stop_reason and resumed.epochs == history.epochs


@pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2 or not _config.FASTMATH, reason="needs two Numba threads and fast-math"
)
def test_resuming_with_another_thread_count_warns(tmp_path):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        with pytest.raises(Crash):
            train(checkpoint=tmp_path, every=5, hook=crash_at(8), epochs=1)
        numba.set_num_threads(1)
        with pytest.warns(RuntimeWarning, match="written with 2"):
            train(checkpoint=tmp_path, every=5, resume=True, epochs=1)
    finally:
        numba.set_num_threads(before)


def test_resume_without_checkpoints_starts_afresh(tmp_path, reference):
    model, _ = train(checkpoint=tmp_path / "empty", resume=True)
    np.testing.assert_array_equal(model.flat_params, reference[0])


def test_a_folder_with_checkpoints_needs_resume(tmp_path):
    train(checkpoint=tmp_path, epochs=1)
    with pytest.raises(ValueError, match="already holds checkpoints.*resume=True"):
        train(checkpoint=tmp_path, epochs=1)


def test_resume_refuses_other_data_model_or_settings(tmp_path):
    train(checkpoint=tmp_path, epochs=1)
    x, t = blobs()
    with pytest.raises(ValueError, match="different training data"):
        recipe_model().fit(
            x[::-1], t[::-1], validation_split=0.1, batch_size=32, verbose=0, checkpoint=tmp_path, resume=True
        )
    with pytest.raises(ValueError, match="different batch_size"):
        recipe_model().fit(
            x, t, validation_split=0.1, batch_size=16, verbose=0, checkpoint=tmp_path, resume=True
        )
    other = fnn.Sequential([fnn.Dense(16, 8), fnn.ReLU(), fnn.Dropout(0.25), fnn.Dense(8, 4)])
    with pytest.raises(ValueError, match="another model"):
        other.fit(x, t, validation_split=0.1, batch_size=32, verbose=0, checkpoint=tmp_path, resume=True)
    with pytest.raises(ValueError, match="made with Adam, not SGD"):
        recipe_model().fit(
            x,
            t,
            validation_split=0.1,
            batch_size=32,
            verbose=0,
            optimizer=SGD(),
            checkpoint=tmp_path,
            resume=True,
        )


def test_resume_builds_the_saved_optimizer_when_none_is_given(tmp_path):
    _, history = train(checkpoint=tmp_path, epochs=2)
    ckpt = load_latest(tmp_path)
    optimizer = ckpt.build_optimizer()
    assert isinstance(optimizer, Adam) and optimizer.iterations == 34
    assert optimizer.lr == history["lr"][-1] / 2  # the callback halved it after epoch 2
    np.testing.assert_array_equal(optimizer.state["m"], ckpt.optimizer_state["m"])


def test_bad_checkpoint_arguments():
    x, t = blobs()
    model = recipe_model()
    with pytest.raises(ValueError, match="need checkpoint=DIR"):
        model.fit(x, t, resume=True, verbose=0)
    with pytest.raises(ValueError, match="need checkpoint=DIR"):
        model.fit(x, t, checkpoint_every=3, verbose=0)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        model.fit(x, t, checkpoint="ck", checkpoint_every=0, verbose=0)
    with pytest.raises(ValueError, match="keep must be a positive integer"):
        model.fit(x, t, checkpoint="ck", keep=0, verbose=0)
    with pytest.raises(ValueError, match="clip_norm"):
        model.fit(x, t, clip_norm=-1.0, verbose=0)


# ----------------------------------------------------------------- damage and failures


def test_a_failed_write_leaves_the_previous_checkpoints_intact(tmp_path, monkeypatch):
    ckpt = tmp_path / "ckpt"
    real_savez, calls = np.savez, [0]

    def savez(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            handle = args[0]
            handle.write(b"PK\x03\x04 half a file")
            raise OSError("disk full")
        return real_savez(*args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(OSError, match="disk full"):
        train(checkpoint=ckpt, every=5)
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint-000000005.npz", "checkpoint-000000010.npz"]
    for path in ckpt.iterdir():
        load_checkpoint(path)


def test_stale_temporary_files_are_removed(tmp_path, reference):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / ".checkpoint-000000005.npz.abc123.tmp").write_bytes(b"partial")
    model, _ = train(checkpoint=ckpt, resume=True)
    assert not [p for p in ckpt.iterdir() if p.name.endswith(".tmp")]
    np.testing.assert_array_equal(model.flat_params, reference[0])


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, reference):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Crash):
        train(checkpoint=ckpt, every=5, hook=crash_at(24))
    newest = list_checkpoints(ckpt)[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="skipping damaged checkpoint"):
        model, _ = train(checkpoint=ckpt, every=5, resume=True)
    np.testing.assert_array_equal(model.flat_params, reference[0])
    assert (ckpt / (newest.name + ".corrupt")).exists()


# ----------------------------------------------------------------- a killed process

CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
import numpy as np
from fit_recipe import train
cfg = json.loads(sys.argv[1])

def hook(count):
    if count == cfg.get("block_at"):
        open(cfg["marker"], "w").close()
        while True:          # wait here, mid-step, to be killed
            time.sleep(1)

model, history = train(checkpoint=cfg["dir"], every=cfg["every"], resume=cfg["resume"], hook=hook)
np.save(cfg["out"], model.flat_params)
"""


def test_sigkill_mid_epoch_then_resume_in_a_new_process_is_bitwise_identical(tmp_path, reference):
    ckpt, marker = tmp_path / "ckpt", tmp_path / "marker"
    cfg = {
        "dir": str(ckpt),
        "every": 5,
        "resume": False,
        "block_at": 33,
        "marker": str(marker),
        "out": str(tmp_path / "never.npy"),
    }
    child = start_child(cfg, CHILD)
    try:
        wait_for(marker, child)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL
    # killed inside step 33: the newest checkpoint is step 30, in the middle of epoch 2
    latest = load_latest(ckpt)
    assert latest.path.name == "checkpoint-000000030.npz"
    assert latest.state["loop"]["epoch"] == 1 and latest.state["loop"]["step"] == 30 - STEPS_PER_EPOCH
    resumed = start_child(
        {**cfg, "resume": True, "block_at": None, "out": str(tmp_path / "final.npy")}, CHILD
    )
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    final = np.load(tmp_path / "final.npy", allow_pickle=False)
    np.testing.assert_array_equal(final, reference[0])


# ----------------------------------------------------------------- the callback itself


def test_the_callback_is_what_fits_checkpoint_builds(tmp_path, reference):
    """ModelCheckpoint in callbacks= writes the files checkpoint= writes, and resumes exactly."""
    _, shorthand = train(checkpoint=tmp_path / "a", every=5, epochs=2, keep=10)
    _, explicit = train(epochs=2, more=[fnn.callbacks.ModelCheckpoint(tmp_path / "b", every=5, keep=10)])
    names = [p.name for p in list_checkpoints(tmp_path / "a")]
    assert names == [p.name for p in list_checkpoints(tmp_path / "b")] and len(names) == 7
    for name in names:
        a, b = load_checkpoint(tmp_path / "a" / name), load_checkpoint(tmp_path / "b" / name)
        np.testing.assert_array_equal(a.arrays["params"], b.arrays["params"])
        timeless = [{k: v for k, v in c.state["loop"].items() if k != "elapsed"} for c in (a, b)]
        assert timeless[0] == timeless[1] and a.state["callbacks"] == b.state["callbacks"]
    assert shorthand["loss"] == explicit["loss"]
    with pytest.raises(Crash):
        train(checkpoint=tmp_path / "c", every=5, hook=crash_at(40))
    resumed, _ = train(more=[fnn.callbacks.ModelCheckpoint(tmp_path / "c", every=5, resume=True)])
    np.testing.assert_array_equal(resumed.flat_params, reference[0])


def test_checkpoint_slots_hold_early_stopping_and_the_other_callbacks(tmp_path):
    """Format 1: early stopping's state and best weights, then each other callback's state."""
    train(checkpoint=tmp_path, epochs=2)
    ckpt = load_latest(tmp_path)
    assert ckpt.state["early_stopping"]["monitor"] == "val_loss"
    assert ckpt.state["callbacks"] == [{"epochs_seen": 2}]  # HalveEveryTwoEpochs only
    assert "best/params" in ckpt.extra and ckpt.extra["best/params"].shape == ckpt.arrays["params"].shape


def test_a_resume_gives_each_callback_the_state_of_its_own_class(tmp_path):
    """A checkpoint keeps each callback's class beside its state: a resumed run without the
    logger that came first (given on rank 0 alone, say) still restores the schedule."""
    x, t = clusters()

    def fit(callbacks):
        model = small_model()
        model.fit(x, t, epochs=2, batch_size=50, optimizer=SGD(lr=0.1), verbose=0, seed=0,
                  checkpoint=tmp_path / "ckpt", resume=True, callbacks=callbacks)  # fmt: skip

    first = fnn.callbacks.ReduceLROnPlateau(patience=1, monitor="loss")
    fit([fnn.callbacks.CSVLogger(tmp_path / "log.csv"), first])
    saved = load_latest(tmp_path / "ckpt").state
    assert saved["callback_types"] == [
        "fastnn.callbacks.loggers.CSVLogger",
        "fastnn.callbacks.schedules.ReduceLROnPlateau",
    ]
    again = fnn.callbacks.ReduceLROnPlateau(patience=1, monitor="loss")
    fit([again])  # the run is finished: only the restore happens
    assert first.best is not None and again.state_dict() == first.state_dict()


def test_bad_arguments_name_the_callback(tmp_path):
    with pytest.raises(ValueError, match="ModelCheckpoint: every must be a positive integer"):
        fnn.callbacks.ModelCheckpoint(tmp_path, every=0)
    with pytest.raises(ValueError, match="ModelCheckpoint: keep must be a positive integer"):
        fnn.callbacks.ModelCheckpoint(tmp_path, keep=0)
    (tmp_path / "file").write_text("")
    x, t = blobs(40)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        recipe_model().fit(x, t, verbose=0, checkpoint=tmp_path / "file")
