"""Training recipes the fit and callback tests share (a helper module, not a test).

``train`` is the checkpoint recipe: it has every kind of state a resume must carry:
Adam's moments and step count, a Dropout layer's generator, fit's shuffling generator
(which also feeds ``augment``), a validation split, early stopping counters, a
callback that changes the learning rate, and gradient clipping. A run that is cut off
and resumed must end with exactly (bit for bit) the weights of an uninterrupted run.
``small_model`` and ``clusters`` are a tiny network and its easy data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.checkpoint import list_checkpoints
from fastnn.optim import Adam

TESTS = Path(__file__).resolve().parent
STEPS_PER_EPOCH = 17  # 540 training samples (600 less a 10% validation split), batches of 32


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
    return fnn.Sequential(
        [fnn.Dense(16, 32), fnn.ReLU(), fnn.Dropout(0.25), fnn.Dense(32, 4)], backend=backend, seed=7
    )


def train(
    checkpoint=None,
    every=None,
    resume=False,
    hook=None,
    backend="numba",
    epochs=4,
    file=None,
    keep=3,
    more=(),
):
    """Train the recipe; ``hook(count)`` runs before each step (count from 1); ``more``:
    callbacks after the recipe's own."""
    x, t = blobs()
    calls = [0]

    def augment(xb, rng):
        calls[0] += 1
        if hook is not None:
            hook(calls[0])
        return xb + rng.normal(0, 0.05, xb.shape).astype(xb.dtype)

    model = recipe_model(backend)
    history = model.fit(
        x,
        t,
        epochs=epochs,
        batch_size=32,
        optimizer=Adam(0.01),
        validation_split=0.1,
        patience=3,
        seed=11,
        clip_norm=2.0,
        verbose=0,
        augment=augment,
        callbacks=[HalveEveryTwoEpochs(), *more],
        checkpoint=checkpoint,
        checkpoint_every=every,
        resume=resume,
        keep=keep,
        file=file,
    )
    return model, history


class Crash(Exception):
    pass


def crash_at(step):
    def hook(count):
        if count == step:
            raise Crash(f"simulated crash before step {step}")

    return hook


def latest_step(directory) -> int:
    return int(list_checkpoints(directory)[-1].stem.split("-")[1])


def small_model(backend="numba", seed=0, dtype="float32"):
    return fnn.Sequential(
        [fnn.Dense(4, 8), fnn.ReLU(), fnn.Dense(8, 3)], backend=backend, dtype=dtype, seed=seed
    )


def clusters(n=300, seed=0, dtype=np.float32):
    """Three well separated Gaussian clusters in 4-D."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float64)
    x = centres[t] + 0.3 * rng.standard_normal((n, 4))
    return x.astype(dtype), t


def wait_for(path: Path, child: subprocess.Popen, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            out, err = child.communicate()
            pytest.fail(f"child exited with {child.returncode} before {path.name}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"child did not reach {path.name} in {timeout} s")
        time.sleep(0.02)


def start_child(cfg, script, stderr=subprocess.PIPE):
    """Run ``script`` (formatted with the tests folder) in a child Python with ``cfg`` as JSON."""
    command = [sys.executable, "-c", script.format(tests=str(TESTS)), json.dumps(cfg)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
