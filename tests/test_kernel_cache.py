"""The kernel cache: the one-line compile notice, recording kernel calls, ``fastnn warmup``.

The end-to-end checks run fresh processes on an empty NUMBA_CACHE_DIR, so they compile
for real (tens of seconds) and are marked slow.
"""

import io
import os
import subprocess
import sys
import types

import numba
import numpy as np
import pytest

from fastnn import _kernel_cache, _precompile
from fastnn.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_STEP = (
    "import numpy as np, fastnn as fnn; m = fnn.models.{model}(seed=0); "
    "rng = np.random.default_rng(0); x = rng.random(({batch}, 1, 28, 28), dtype=np.float32); "
    "t = rng.integers(0, 10, {batch}); print(m.train_step(x, t, fnn.optim.Adam()))"
)


def _fresh_step(cache_dir, model="mlp", batch=100):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=ROOT)
    env.pop("FASTNN_COMPILE_NOTICE", None)
    code = _STEP.format(model=model, batch=batch)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600, check=True
    )
    return result


def _fake_fastnn_module(name="fastnn._test_fake_kernels"):
    """A module named like fastnn's with one fresh (uncompiled, uncached) jitted function."""
    module = types.ModuleType(name)

    def double(a, out):
        for i in range(a.size):
            out[i] = 2 * a[i]

    double.__module__ = name
    module.double = numba.njit(cache=False)(double)
    return module


def test_notice_is_one_line_for_fastnn_compiles_only():
    notice = _kernel_cache._CompileNotice(stream=io.StringIO())
    numba.core.event.register("numba:compile", notice)
    try:
        numba.njit(lambda a: a + 1)(1)  # not fastnn's: no notice
        assert notice.stream.getvalue() == ""
        module = _fake_fastnn_module()
        module.double(np.ones(3), np.zeros(3))
        module.double(np.ones(3, np.float32), np.zeros(3, np.float32))  # a second compile
    finally:
        numba.core.event.unregister("numba:compile", notice)
    lines = notice.stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fastnn: compiling kernels for this CPU (once per machine, cached in ")


def test_record_notes_kernel_calls_without_compiling_them():
    module = _fake_fastnn_module()
    sys.modules[module.__name__] = module
    try:
        a, out = np.ones(4, np.float32), np.full(4, 7.0, np.float32)
        items = _precompile.record(lambda: (module.double(a, out), module.double(a, out)))
    finally:
        del sys.modules[module.__name__]
    assert [(i.module, i.name, i.build) for i in items] == [(module.__name__, "double", "")]
    assert items[0].argtypes == (numba.typeof(a), numba.typeof(out))
    assert not module.double.overloads  # nothing compiled
    assert (out == 7).all()  # nothing ran
    assert "_compile_for_args" not in vars(module.double)  # the dispatcher is as it was
    module.double(a, out)
    assert (out == 2).all()


def test_record_finds_a_models_kernels_and_leaves_it_unchanged():
    import fastnn as fnn

    model = fnn.models.mlp(seed=0)
    before = model.flat_params.copy()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    items = _precompile.record(lambda: model.predict(x))
    assert all(item.module.startswith("fastnn.kernels.") for item in items)
    assert np.array_equal(model.flat_params, before)


def test_warmup_list_and_unknown_model(capsys):
    assert main(["warmup", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"mlp", "simple_convnet", "deep_convnet", "lenet5"} <= set(names)
    assert main(["warmup", "--model", "no_such_net"]) == 2
    assert "unknown network" in capsys.readouterr().err


@pytest.mark.slow
def test_first_step_on_empty_cache_prints_the_notice_once_and_warm_cache_none(tmp_path):
    cold = _fresh_step(tmp_path)
    lines = [line for line in cold.stderr.splitlines() if line.startswith("fastnn: compiling")]
    assert len(lines) == 1, cold.stderr
    assert str(tmp_path) in lines[0]
    warm = _fresh_step(tmp_path)
    assert "fastnn: compiling" not in warm.stderr
    assert cold.stdout == warm.stdout  # the same loss, compiled here or loaded


@pytest.mark.slow
def test_warmup_command_fills_the_cache_for_a_later_process(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "fastnn", "warmup", "--model", "mlp", "lenet5", "--batch-sizes", "2", "100"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=True,
    )
    assert "fastnn warmup: compiled" in result.stdout
    for model, batch in (("mlp", 100), ("lenet5", 2)):
        step = _fresh_step(tmp_path, model, batch)
        assert "fastnn: compiling" not in step.stderr, step.stderr
    again = subprocess.run(
        [sys.executable, "-m", "fastnn", "warmup", "--model", "mlp", "--batch-sizes", "100"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    assert "already cached" in again.stdout


def test_record_leaves_other_threads_kernels_running():
    import threading

    module = _fake_fastnn_module("fastnn._test_fake_kernels_threads")
    sys.modules[module.__name__] = module
    a, mine, theirs = np.ones(4), np.zeros(4), np.zeros(4)

    def fn():
        worker = threading.Thread(target=module.double, args=(a, theirs))
        worker.start()
        worker.join()
        module.double(a, mine)

    try:
        items = _precompile.record(fn)
    finally:
        del sys.modules[module.__name__]
    assert (theirs == 2).all()  # the other thread's call compiled and ran
    # then this thread's call found a compiled version, which runs: nothing to record
    assert (mine == 2).all()
    assert items == []


def test_the_workers_list_round_trips_through_json_without_pickle():
    """The compile list goes to the workers as JSON: every argument type a kernel call has
    (arrays of each layout, read-only ones, numbers, tuples, native functions) comes back equal."""
    import json

    from numba.core import types

    from fastnn._precompile import Item, _decode_item, _encode_item
    from fastnn.kernels._native import NativeFunctionType

    array = types.Array(types.float32, 4, "C")
    argtypes = (
        array,
        types.Array(types.float64, 2, "A", readonly=True),
        types.Array(types.int64, 1, "F"),
        types.int64,
        types.float32,
        types.boolean,
        types.UniTuple(types.int64, 3),
        types.Tuple((types.int64, types.float32)),
        NativeFunctionType("helper", (array, types.int64)),
    )
    item = Item("fastnn.kernels.conv.direct", "direct_conv_s1", "parallel", argtypes)
    back = _decode_item(json.loads(json.dumps(_encode_item(item))))
    assert back == item
    assert _encode_item(Item("m", "f", "", (types.none,))) is None  # compiled where it is called


_BACKWARD_FIRST = (
    "import numpy as np; from fastnn.backends import get_ops; ops = get_ops('numba'); "
    "rng = np.random.default_rng(0); x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32); "
    "W = rng.standard_normal((8, 3, 3, 3)).astype(np.float32); "
    "dy = rng.standard_normal((2, 8, 9, 9)).astype(np.float32); "
    "dx, dW, db = ops.conv2d_backward(dy, x, W, 1, 1, impl='direct'); print(float(abs(dx).sum()))"
)


@pytest.mark.slow
def test_a_convolutions_backward_compiles_before_its_forward(tmp_path):
    """On an empty cache, a backward pass with no forward before it in the process compiles.

    Its data-gradient helper is compiled without reference counts and calls the forward's
    register tiles; compiled first from there they inherit that flag, so any allocation in
    them fails to type (as the forward's ``np.empty`` of an unused argmax once did).
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _BACKWARD_FIRST], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.split()[-1]) > 0


def test_serial_only_runs_the_serial_build_whatever_the_work():
    from fastnn import _config

    kernel = _config.ParallelKernel(lambda a: None)
    kernel.serial, kernel.parallel = (lambda a: "serial"), (lambda a: "parallel")
    big = _config.PARALLEL_THRESHOLD
    assert kernel(big, 0) == "parallel" and kernel(big - 1, 0) == "serial"
    try:
        _config.run_serial_only(True)
        assert _config.serial_only()
        assert kernel(big, 0) == "serial"
    finally:
        _config.run_serial_only(False)
    assert kernel(big, 0) == "parallel"


def test_the_serial_tier_replaces_parallel_builds_by_their_serial_twins_once():
    from numba.core import types

    from fastnn._precompile import Item, serial_tier

    a, b = (types.Array(types.float32, 2, "C"),), (types.Array(types.float64, 2, "C"),)
    items = [
        Item("m", "k", "parallel", a),
        Item("m", "k", "serial", a),  # the same as the first's twin: kept once
        Item("m", "k", "parallel", b),
        Item("m", "helper", "", a),
    ]
    assert serial_tier(items) == [
        Item("m", "k", "serial", a),
        Item("m", "k", "serial", b),
        Item("m", "helper", "", a),
    ]


def _cold_start_with(monkeypatch, items, workers):
    """What before_first_call compiles before the step and leaves to the background."""
    calls = []
    monkeypatch.setattr(_precompile, "CACHE", True)
    monkeypatch.setattr(_precompile, "ENABLED", True)
    monkeypatch.setattr(_precompile, "seen_before", lambda: False)
    monkeypatch.setattr(_precompile, "record", lambda fn: list(items))
    monkeypatch.setattr(_precompile, "missing", lambda todo: list(todo))
    monkeypatch.setattr(_precompile, "compile_items", lambda todo, w, log: calls.append(("now", list(todo))))
    monkeypatch.setattr(
        _precompile, "compile_in_background", lambda todo, w, log: calls.append(("later", list(todo), w))
    )
    _precompile.before_first_call(lambda: None, workers)
    return calls


def test_a_tiered_cold_start_compiles_serial_builds_first_and_parallel_ones_behind(monkeypatch):
    from numba.core import types

    from fastnn._precompile import Item

    a = (types.Array(types.float32, 2, "C"),)
    items = [Item("m", "k", "parallel", a), Item("m", "j", "serial", a), Item("m", "h", "", a)]
    monkeypatch.setattr(_precompile, "TIERED", True)
    calls = _cold_start_with(monkeypatch, items, workers=2)
    serial = [Item("m", "k", "serial", a), Item("m", "j", "serial", a), Item("m", "h", "", a)]
    assert calls == [("now", serial), ("later", [items[0]], 1)]
    # untiered, or with one process, everything compiles before the step, as recorded
    monkeypatch.setattr(_precompile, "TIERED", False)
    assert _cold_start_with(monkeypatch, items, workers=2) == [("now", items)]
    monkeypatch.setattr(_precompile, "TIERED", True)
    assert _cold_start_with(monkeypatch, items, workers=1) == [("now", items)]


_TIERED_STEPS = (
    "import sys, numpy as np, fastnn as fnn; from fastnn import _config, _precompile; "
    "m = fnn.models.simple_convnet(seed=0); rng = np.random.default_rng(0); "
    "x = rng.random((100, 1, 28, 28), dtype=np.float32); t = rng.integers(0, 10, 100); "
    "opt = fnn.optim.Adam(); m.train_step(x, t, opt); first = _config.serial_only(); "
    "thread = _precompile._BACKGROUND.thread; thread is None or thread.join(); "
    "[m.train_step(x, t, opt) for _ in range(2)]; "
    "np.save(sys.argv[1], m.flat_params); print(first)"
)


@pytest.mark.slow
def test_a_tiered_cold_start_trains_the_bits_of_a_warm_one(tmp_path):
    """With FASTNN_TIERED_START=1, on an empty cache the first step runs on the serial
    builds while a worker compiles the parallel ones; the next steps load those. The
    weights equal a warm start's bit for bit (the two builds agree:
    tests/test_kernel_properties.py), and the cold process leaves a cache from which the
    warm one compiles nothing."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT, FASTNN_TIERED_START="1")
    env.pop("FASTNN_COMPILE_NOTICE", None)
    runs = []
    for name in ("cold", "warm"):
        out = tmp_path / f"{name}.npy"
        command = [sys.executable, "-c", _TIERED_STEPS, str(out)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append((done, np.load(out)))
    (cold, cold_weights), (warm, warm_weights) = runs
    assert cold.stdout.split()[-1] == "True"  # the first step ran on the serial builds
    assert warm.stdout.split()[-1] == "False"
    assert "fastnn: compiling" not in warm.stderr, warm.stderr
    np.testing.assert_array_equal(cold_weights, warm_weights)
