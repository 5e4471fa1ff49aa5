"""Determinism: the same seed, data and thread count give bit-identical weights.

Checked on both backends, in one process and across fresh processes, for a network
that uses every kind of randomness and every kernel family (conv by the direct and
the im2col algorithms, pooling, dense, dropout, shuffling, augmentation).

What the thread count changes: nothing. Every reduction runs in a fixed order (see the
kernels' docstrings), BLAS inside kernels is single-threaded, and elementwise kernels
loop over fixed-size blocks (fastnn/kernels/_blocks.py), so even with fast-math on no
element's code path depends on how the threads split the work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import fastnn as fnn
from fastnn import _config

TESTS = Path(__file__).resolve().parent
BACKENDS = ("numba", "numpy")


def images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    x = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.5
    for k in range(3):  # a class-dependent bright row
        x[t == k, 0, 2 * k + 1, :] += 1.0
    return x, t


def conv_model(backend="numba", seed=0):
    layers = [
        fnn.Conv2D(1, 4, 3, pad=1, impl="direct"),
        fnn.ReLU(),
        fnn.MaxPool2D(2),
        fnn.Conv2D(4, 6, 3, pad=1, stride=1, impl="im2col"),
        fnn.Tanh(),
        fnn.AvgPool2D(2, stride=1),
        fnn.Flatten(),
        fnn.Dense(54, 16),
        fnn.LeakyReLU(0.1),
        fnn.Dropout(0.3),
        fnn.Dense(16, 3),
    ]
    return fnn.Sequential(layers, backend=backend, seed=seed)


def train_conv(backend="numba", seed=0, fit_seed=1, epochs=2):
    """Train the conv network; returns its flat parameters."""
    x, t = images()

    def augment(xb, rng):
        return xb + rng.normal(0, 0.02, xb.shape).astype(xb.dtype)

    model = conv_model(backend, seed)
    model.fit(
        x,
        t,
        epochs=epochs,
        batch_size=16,
        optimizer=fnn.optim.Adam(0.01),
        verbose=0,
        seed=fit_seed,
        augment=augment,
        clip_norm=10.0,
    )
    return model.flat_params.copy()


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    before = numba.get_num_threads()
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_bit_identical_weights(backend):
    first, second = train_conv(backend), train_conv(backend)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, train_conv(backend, fit_seed=2))  # the seed matters
    assert not np.array_equal(first, train_conv(backend, seed=5))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_numba_weights_with_1_and_2_threads(monkeypatch, threads):
    """Bitwise equal with fast-math on: reductions run in a fixed order, and elementwise
    loops run over fixed blocks, so no element moves between a loop's vectorised body and
    its scalar remainder (which may round differently) when the thread count changes."""
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 0)  # every kernel runs its parallel build
    results = []
    for n in (1, 2):
        fnn.set_num_threads(n)
        results.append(train_conv("numba"))
    np.testing.assert_array_equal(results[0], results[1])


THREADS_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import numba
import numpy as np
import fastnn as fnn
from fastnn import _config
from test_determinism import train_conv
assert {precondition}
_config.PARALLEL_THRESHOLD = 0
threads = {threads!r}
runs = []
for n in threads:
    fnn.set_num_threads(n)
    runs.append(train_conv("numba"))
for n, run in zip(threads[1:], runs[1:]):
    assert np.array_equal(runs[0], run), (n, np.abs(runs[0] - run).max())
"""


def weights_equal_on_threads_in_a_child(threads, precondition, **env):
    """In a fresh process with ``env`` added to this one's: the conv network's weights
    after training on each thread count in ``threads`` (every kernel's parallel build) are
    bitwise the first count's; ``precondition``, a Python expression, holds there."""
    child_env = {k: v for k, v in os.environ.items() if k != "FASTNN_THREADS"}
    child_env.update(env)
    script = THREADS_CHILD.format(tests=str(TESTS), threads=tuple(threads), precondition=precondition)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env, timeout=600
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_without_fast_math_the_thread_count_changes_no_bit(tmp_path):
    """FASTNN_FASTMATH=0 in a fresh process (own kernel cache: compiles everything, ~30 s)."""
    weights_equal_on_threads_in_a_child(
        (1, 2), "not _config.FASTMATH", FASTNN_FASTMATH="0", NUMBA_CACHE_DIR=str(tmp_path / "cache")
    )


@pytest.mark.slow
def test_weights_on_1_2_3_and_4_threads_are_bitwise_equal():
    """Thread counts that do not divide the fixed work splits (3), and more threads than
    this machine has cores (NUMBA_NUM_THREADS=4 in a fresh process), change no bit."""
    weights_equal_on_threads_in_a_child(
        (1, 2, 3, 4), "numba.config.NUMBA_NUM_THREADS == 4", NUMBA_NUM_THREADS="4"
    )


CHILD = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
from test_determinism import train_conv
np.savez(sys.argv[1], **{{backend: train_conv(backend) for backend in ("numba", "numpy")}})
"""


def test_fresh_processes_give_bit_identical_weights(tmp_path):
    """Two new interpreters (same default thread count) and this one agree bit for bit."""
    outputs = [tmp_path / f"run{i}.npz" for i in range(2)]
    env = {k: v for k, v in os.environ.items() if k != "FASTNN_THREADS"}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD.format(tests=str(TESTS)), str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for out in outputs
    ]
    try:
        for child in children:
            _, err = child.communicate(timeout=300)
            assert child.returncode == 0, err
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    runs = []
    for out in outputs:
        with np.load(out, allow_pickle=False) as data:
            runs.append({backend: data[backend] for backend in BACKENDS})
    here = {backend: train_conv(backend) for backend in BACKENDS}
    for backend in BACKENDS:
        np.testing.assert_array_equal(runs[0][backend], runs[1][backend])
        np.testing.assert_array_equal(runs[0][backend], here[backend])


def test_backends_agree_closely_but_need_not_be_bitwise():
    """The two backends sum in different orders: close, not identical (documented)."""
    numba_run, numpy_run = train_conv("numba"), train_conv("numpy")
    np.testing.assert_allclose(numba_run, numpy_run, rtol=1e-3, atol=1e-4)
