"""Checkpoints, exact resume, Ctrl-C, clip_norm and the NaN/Inf guards.

The training recipe below has every kind of state a resume must carry: Adam's moments
and step count, a Dropout layer's generator, fit's shuffling generator (which also
feeds ``augment``), a validation split, early stopping counters, a callback that
changes the learning rate, and gradient clipping. A run that is cut off and resumed
must end with exactly (bit for bit) the weights of an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _config
from fastnn.checkpoint import (CHECKPOINT_FORMAT, list_checkpoints, load_checkpoint, load_latest,
                               save_checkpoint)
from fastnn.cli import main
from fastnn.optim import SGD, Adam, clip_grad_norm
from fastnn.serialization import ModelFileError

TESTS = Path(__file__).resolve().parent
STEPS_PER_EPOCH = 17  # 540 training samples (600 less a 10% validation split), batches of 32


# ----------------------------------------------------------------- the recipe

def blobs(n=600, d=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, n)
    centres = rng.normal(0, 1.5, (classes, d))
    return (centres[t] + rng.normal(0, 1, (n, d))).astype(np.float32), t


class HalveEveryTwoEpochs(fnn.callbacks.Callback):
    """A schedule with state of its own (saved through state_dict/load_state_dict)."""

    def __init__(self):
        self.epochs_seen = 0

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        self.epochs_seen += 1
        if self.epochs_seen % 2 == 0:
            optimizer.lr /= 2

    def state_dict(self):
        return {"epochs_seen": self.epochs_seen}

    def load_state_dict(self, state):
        self.epochs_seen = state["epochs_seen"]


def recipe_model(backend="numba"):
    return fnn.Sequential([fnn.Dense(16, 32), fnn.ReLU(), fnn.Dropout(0.25), fnn.Dense(32, 4)],
                          backend=backend, seed=7)


def train(checkpoint=None, every=None, resume=False, hook=None, backend="numba", epochs=4,
          file=None, keep=3):
    """Train the recipe; ``hook(count)`` runs before each step (count from 1)."""
    x, t = blobs()
    calls = [0]

    def augment(xb, rng):
        calls[0] += 1
        if hook is not None:
            hook(calls[0])
        return xb + rng.normal(0, 0.05, xb.shape).astype(xb.dtype)

    model = recipe_model(backend)
    history = model.fit(x, t, epochs=epochs, batch_size=32, optimizer=Adam(0.01),
                        validation_split=0.1, patience=3, seed=11, clip_norm=2.0, verbose=0,
                        augment=augment, callbacks=[HalveEveryTwoEpochs()],
                        checkpoint=checkpoint, checkpoint_every=every, resume=resume,
                        keep=keep, file=file)
    return model, history


class Crash(Exception):
    pass


def crash_at(step):
    def hook(count):
        if count == step:
            raise Crash(f"simulated crash before step {step}")
    return hook


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
        assert {"__fastnn__", "config", "params", "checkpoint", "digest", "optimizer/m",
                "optimizer/v", "extra/order"} <= set(data.files)
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
    assert [p.name for p in list_checkpoints(ckpt)] == ["checkpoint-000000017.npz",
                                                        "checkpoint-000000034.npz"]


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
        model = fnn.Sequential([fnn.Dense(16, 8), fnn.BatchNorm(8), fnn.ReLU(), fnn.Dense(8, 4)],
                               seed=1)
        model.fit(x, t, epochs=2, batch_size=50, verbose=0, seed=2,
                  augment=None if hook is None else (lambda b, r: (hook(0), b)[1]), **kwargs)
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
        history = model.fit(x, t, epochs=30, batch_size=32, optimizer=SGD(5.0), patience=1,
                            validation_split=0.2, verbose=0, seed=3, **kwargs)
        return model, history

    model, history = run(checkpoint=tmp_path / "ckpt")
    assert "early stopping" in history.stop_reason
    again, resumed = run(checkpoint=tmp_path / "ckpt", resume=True)
    np.testing.assert_array_equal(again.flat_params, model.flat_params)
    assert resumed.stop_reason == history.stop_reason and resumed.epochs == history.epochs


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2 or not _config.FASTMATH,
                    reason="needs two Numba threads and fast-math")
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
        recipe_model().fit(x[::-1], t[::-1], validation_split=0.1, batch_size=32, verbose=0,
                           checkpoint=tmp_path, resume=True)
    with pytest.raises(ValueError, match="different batch_size"):
        recipe_model().fit(x, t, validation_split=0.1, batch_size=16, verbose=0,
                           checkpoint=tmp_path, resume=True)
    other = fnn.Sequential([fnn.Dense(16, 8), fnn.ReLU(), fnn.Dropout(0.25), fnn.Dense(8, 4)])
    with pytest.raises(ValueError, match="another model"):
        other.fit(x, t, validation_split=0.1, batch_size=32, verbose=0, checkpoint=tmp_path,
                  resume=True)
    with pytest.raises(ValueError, match="made with Adam, not SGD"):
        recipe_model().fit(x, t, validation_split=0.1, batch_size=32, verbose=0,
                           optimizer=SGD(), checkpoint=tmp_path, resume=True)


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
    assert sorted(p.name for p in ckpt.iterdir()) == ["checkpoint-000000005.npz",
                                                      "checkpoint-000000010.npz"]
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


@pytest.fixture(scope="module")
def one_checkpoint(tmp_path_factory):
    """A small checkpoint with every kind of entry: Adam state, a Dropout generator,
    early stopping, a mid-epoch sample order (about 4 KB)."""
    directory = tmp_path_factory.mktemp("one")
    rng = np.random.default_rng(0)
    x, t = rng.random((40, 3), dtype=np.float32), rng.integers(0, 2, 40)
    model = fnn.Sequential([fnn.Dense(3, 4), fnn.ReLU(), fnn.Dropout(0.2), fnn.Dense(4, 2)], seed=0)
    model.fit(x, t, epochs=1, batch_size=8, checkpoint=directory, checkpoint_every=3, patience=2,
              validation_split=0.2, verbose=0)
    path = list_checkpoints(directory)[0]
    return path, load_checkpoint(path)


def _same_checkpoint(a, b) -> bool:
    return (a.arrays.keys() == b.arrays.keys()
            and all(np.array_equal(a.arrays[k], b.arrays[k]) and a.arrays[k].dtype == b.arrays[k].dtype
                    for k in a.arrays))


def flip_every_byte(path: Path, load, original, same, stride=1) -> int:
    """Flip each byte of ``path`` in turn (xor 0xFF, in place, then put it back) and load it.

    Every load must raise ModelFileError naming the file or give content ``same`` as
    ``original``. Returns how many flips loaded.
    """
    data = path.read_bytes()
    harmless = 0
    fd = os.open(path, os.O_RDWR)
    try:
        for position in range(0, len(data), stride):
            os.pwrite(fd, bytes([data[position] ^ 0xFF]), position)
            try:
                loaded = load(path)
            except ModelFileError as error:
                assert path.name in str(error)
            else:
                harmless += 1
                assert same(loaded, original), f"byte {position} changed a value silently"
            os.pwrite(fd, data[position:position + 1], position)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    return harmless


def truncate_every_length(path: Path, load, stride=1) -> None:
    """Cut ``path`` to every length from len-1 down to 0; each load must raise ModelFileError."""
    data = path.read_bytes()
    fd = os.open(path, os.O_RDWR)
    try:
        for cut in range(len(data) - 1, -1, -stride):
            os.ftruncate(fd, cut)
            with pytest.raises(ModelFileError, match=path.name):
                load(path)
    finally:
        os.close(fd)


def test_every_flipped_byte_is_a_clean_error_or_changes_nothing(one_checkpoint, tmp_path):
    """Byte by byte over the whole file: the digest catches any change to a stored value;
    a flip that loads must have hit zip bookkeeping that changes no value at all."""
    path, original = one_checkpoint
    broken = tmp_path / "checkpoint-000000001.npz"
    broken.write_bytes(path.read_bytes())
    harmless = flip_every_byte(broken, load_checkpoint, original, _same_checkpoint)
    # zip bookkeeping (timestamps, attributes, unused header fields) is ~1/8 of so small a file
    assert harmless < broken.stat().st_size // 4


def test_every_truncation_is_a_clean_error(one_checkpoint, tmp_path):
    path, _ = one_checkpoint
    broken = tmp_path / "cut.npz"
    broken.write_bytes(path.read_bytes())
    truncate_every_length(broken, load_checkpoint)


@pytest.mark.slow
def test_every_flipped_byte_of_a_larger_checkpoint(tmp_path):
    with pytest.raises(Crash):
        train(checkpoint=tmp_path / "ckpt", every=5, hook=crash_at(9), epochs=1)
    path = list_checkpoints(tmp_path / "ckpt")[-1]
    flip_every_byte(path, load_checkpoint, load_checkpoint(path), _same_checkpoint)
    truncate_every_length(path, load_checkpoint)


def test_newer_foreign_and_model_files_are_refused(one_checkpoint, tmp_path):
    path, ckpt = one_checkpoint
    arrays = dict(ckpt.arrays)
    meta = json.loads(arrays["checkpoint"].tobytes())
    meta["format"] = CHECKPOINT_FORMAT + 1
    arrays["checkpoint"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    from fastnn.serialization import content_digest

    arrays["digest"] = content_digest(arrays)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ModelFileError, match="newer fastnn"):
        load_checkpoint(newer)
    model_file = tmp_path / "model.npz"
    recipe_model().save(model_file)
    with pytest.raises(ModelFileError, match="not a fastnn checkpoint"):
        load_checkpoint(model_file)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a fastnn checkpoint"):
        load_checkpoint(plain)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz"):
        load_checkpoint(tmp_path / "text.npz")


def test_save_checkpoint_keeps_plain_arrays_only(tmp_path):
    model = recipe_model()
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(tmp_path, model, Adam(), extra={"bad": np.array([{}], dtype=object)})
    assert list_checkpoints(tmp_path) == []


# ----------------------------------------------------------------- Ctrl-C, in process

def _sigint_at(step, times=1):
    def hook(count):
        if count == step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # let the handler run
    return hook


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
    np.testing.assert_array_equal(load_checkpoint(history.checkpoint).arrays["params"],
                                  model.flat_params)
    resumed, _ = train(checkpoint=ckpt, every=100, resume=True)
    np.testing.assert_array_equal(resumed.flat_params, reference[0])


def test_ctrl_c_without_a_checkpoint_folder_stops_cleanly(reference):
    out = io.StringIO()
    model, history = train(hook=_sigint_at(5), file=out)
    assert history.interrupted and history.epochs == 0
    assert "no checkpoint was written" in out.getvalue()
    assert np.isfinite(model.flat_params).all()
    assert not np.array_equal(model.flat_params, recipe_model().flat_params)  # 5 steps taken


def test_a_second_ctrl_c_aborts_at_once():
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(hook=_sigint_at(5, times=2), file=io.StringIO())
    assert signal.getsignal(signal.SIGINT) is previous


# ----------------------------------------------------------------- subprocesses: SIGKILL and SIGINT

CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
import numpy as np
from test_checkpoint import train
cfg = json.loads(sys.argv[1])

def hook(count):
    if count == cfg.get("block_at"):
        open(cfg["marker"], "w").close()
        while True:          # wait here, mid-step, to be killed
            time.sleep(1)

model, history = train(checkpoint=cfg["dir"], every=cfg["every"], resume=cfg["resume"], hook=hook)
np.save(cfg["out"], model.flat_params)
"""


def _wait_for(path: Path, child: subprocess.Popen, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            out, err = child.communicate()
            pytest.fail(f"child exited with {child.returncode} before {path.name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"child did not reach {path.name} in {timeout} s")
        time.sleep(0.02)


def _child(cfg, script=CHILD, stderr=subprocess.PIPE):
    command = [sys.executable, "-c", script.format(tests=str(TESTS)), json.dumps(cfg)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_sigkill_mid_epoch_then_resume_in_a_new_process_is_bitwise_identical(tmp_path, reference):
    ckpt, marker = tmp_path / "ckpt", tmp_path / "marker"
    cfg = {"dir": str(ckpt), "every": 5, "resume": False, "block_at": 33,
           "marker": str(marker), "out": str(tmp_path / "never.npy")}
    child = _child(cfg)
    try:
        _wait_for(marker, child)
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
    resumed = _child({**cfg, "resume": True, "block_at": None, "out": str(tmp_path / "final.npy")})
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    final = np.load(tmp_path / "final.npy", allow_pickle=False)
    np.testing.assert_array_equal(final, reference[0])


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
        child = _child({"argv": common + ["--checkpoint", str(ckpt), "--checkpoint-every", "7"],
                        "block_at": 30, "marker": str(marker), "go": str(go)}, CLI_CHILD, stderr)
    try:
        _wait_for(marker, child)
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
    np.testing.assert_array_equal(fnn.load(tmp_path / "resumed.npz").flat_params,
                                  fnn.load(tmp_path / "full.npz").flat_params)


def latest_step(directory) -> int:
    return int(list_checkpoints(directory)[-1].stem.split("-")[1])


# ----------------------------------------------------------------- CLI

def test_cli_checkpoint_and_resume_arguments(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    args = ["train", "--epochs", "1", "--quiet", "--backend", "numpy", "--checkpoint", str(ckpt)]
    assert main(args) == 0
    assert (ckpt / "fastnn-train.json").exists() and latest_step(ckpt) == 15
    assert main(args) == 2
    assert "fastnn train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--lr", "0.5"]) == 2
    assert "--lr cannot change" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "fastnn-train.json" in capsys.readouterr().err
    assert main(["train", "--checkpoint-every", "3"]) == 2
    assert "--checkpoint-every needs --checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]) == 0
    assert latest_step(ckpt) == 30


# ----------------------------------------------------------------- clip_norm

@pytest.mark.parametrize("max_norm", [1e-3, 0.5, 1e6])
def test_clip_grad_norm_follows_the_formula(max_norm):
    rng = np.random.default_rng(0)
    grads = rng.standard_normal(1000).astype(np.float32)
    norm = np.sqrt(np.sum(grads.astype(np.float64) ** 2))
    expected = grads * np.float32(min(1.0, max_norm / (norm + 1e-6)))
    clipped = grads.copy()
    assert clip_grad_norm(clipped, max_norm) == pytest.approx(norm, rel=1e-12)
    np.testing.assert_array_equal(clipped, expected)
    assert np.sqrt(np.sum(clipped.astype(np.float64) ** 2)) <= max(max_norm, norm) * (1 + 1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(clipped, 0.0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_train_step_clips_before_the_optimizer_step(backend):
    x, t = blobs(64)
    model, manual = recipe_model(backend), recipe_model(backend)
    model.layers[2].p = manual.layers[2].p = 0.0  # no dropout: same forward pass
    manual.loss(x, t)
    manual.backward()
    g = manual.flat_grads.astype(np.float64)
    norm = np.sqrt(g @ g)
    assert norm > 0.1
    expected = manual.flat_params - np.float32(0.5) * (
        manual.flat_grads * np.float32(0.1 / (norm + 1e-6)))
    model.train_step(x, t, SGD(lr=0.5), clip_norm=0.1)
    np.testing.assert_allclose(model.flat_params, expected, rtol=1e-6, atol=1e-7)
    step = model.flat_params - manual.flat_params
    assert np.sqrt(np.sum(step.astype(np.float64) ** 2)) == pytest.approx(0.5 * 0.1, rel=1e-4)


# ----------------------------------------------------------------- NaN / Inf guards

class InfGradient(fnn.layers.Layer):
    """Identity forward; backward multiplies by inf: a finite loss, non-finite gradients."""

    def forward(self, x, train=True):
        return x

    def backward(self, dy):
        return dy * np.float32(np.inf)


def test_non_finite_gradient_names_the_first_layer_and_keeps_the_weights():
    x, t = blobs(64)
    model = fnn.Sequential([fnn.Dense(16, 8), fnn.ReLU(), InfGradient(), fnn.Dense(8, 4)], seed=0)
    before = model.flat_params.copy()
    message = r"gradient is not finite: first in layers\[0\] Dense\(16->8\) grads\['W'\]"
    with pytest.raises(fnn.NonFiniteError, match=message):
        model.train_step(x, t, Adam())
    np.testing.assert_array_equal(model.flat_params, before)
    with pytest.warns(RuntimeWarning, match=r"layers\[0\] Dense"):
        history = model.fit(x, t, epochs=2, verbose=0)
    assert "step 1" in history.stop_reason and history.epochs == 0
    np.testing.assert_array_equal(model.flat_params, before)


def test_nan_in_the_middle_of_training_keeps_the_last_good_checkpoint(tmp_path):
    """A NaN stops training without writing a checkpoint: the folder keeps the last good state."""
    x, t = blobs()

    class Poison(SGD):
        def step(self, model):
            super().step(model)
            if self.iterations == 12:
                model.flat_params[5] = np.nan

    model = recipe_model()
    with pytest.warns(RuntimeWarning, match="not finite|nan"):
        history = model.fit(x, t, epochs=3, batch_size=32, optimizer=Poison(0.01), verbose=0,
                            checkpoint=tmp_path, checkpoint_every=5)
    assert history.stop_reason and np.isfinite(model.flat_params).all()
    assert latest_step(tmp_path) == 10
    assert np.isfinite(load_latest(tmp_path).arrays["params"]).all()
