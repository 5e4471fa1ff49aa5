"""``fastnn verify`` and ``fnn.verify``: every numba op against the reference, and the
verifier itself catches broken kernels, thread-count variance and a broken build."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import fastnn as fnn
from fastnn.backends import NumbaOps
from fastnn.cli import main
from fastnn.kernels import activations as activation_kernels
from fastnn.verification import catalog
from fastnn.verification.builds import all_threads
from fastnn.verification.case import DTYPES, case_plan, draw_case

needs_threads = pytest.mark.skipif(all_threads() < 2, reason="needs 2 Numba threads")


def numba_backend_ops() -> set[str]:
    """The numba backend's public methods, listed as tests/test_ops_consistency.py lists them."""
    return {name for name in dir(NumbaOps) if not name.startswith("_") and callable(getattr(NumbaOps, name))}


def test_every_op_of_the_numba_backend_is_verified():
    unverified = numba_backend_ops() - set(catalog.CASES) - set(catalog.NOT_OPS)
    assert unverified == set(), (
        f"numba ops missing from fastnn.verification.catalog.CASES: {sorted(unverified)}"
    )
    assert set(catalog.CASES) <= numba_backend_ops(), "CASES names an op the numba backend lacks"
    for name, reason in catalog.NOT_OPS.items():
        assert name in numba_backend_ops() and reason.strip(), name


def test_a_quick_run_plays_every_variant_of_an_op_in_both_dtypes():
    for op, spec in catalog.CASES.items():
        plans = [case_plan(spec, i) for i in range(catalog.case_count(op, quick=True))]
        for variant in spec.variants:
            assert {dtype for v, dtype, _ in plans if v == variant} == set(DTYPES), (op, variant)
        for dtype in DTYPES:  # small and large cases in each dtype
            assert {large for _, d, large in plans if d == dtype} == {False, True}, (op, dtype)
        assert catalog.case_count(op, quick=False) > catalog.case_count(op, quick=True)


def test_a_case_is_drawn_from_its_seed_alone():
    spec = catalog.CASES["conv2d"]
    first, _ = draw_case("conv2d", spec, 7, 5)
    again, _ = draw_case("conv2d", spec, 7, 5)
    other, _ = draw_case("conv2d", spec, 8, 5)
    assert first.describe() == again.describe()
    for a, b in zip(first.args, again.args):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first.args, other.args))


def test_a_few_ops_pass_with_a_row_each():
    ops = ["maxpool2d", "batchnorm_backward", "adam_step", "softmax_cross_entropy", "conv2d_relu_maxpool2x2"]
    report = fnn.verify(ops=",".join(ops), quick=True, seed=1, repeats=1)
    assert report["ok"], report["failures"]
    assert [row["op"] for row in report["ops"]] == ops
    for row in report["ops"]:
        assert row["cases"] == catalog.case_count(row["op"], quick=True)
        assert 0 <= row["ratio"] < 1 and row["error"] <= row["bound"]
        assert row["speedup"] > 0


@pytest.mark.slow
def test_quick_passes_on_every_op_the_backend_has(capsys):
    """About 10 s with a warm kernel cache, minutes on a cold one (every build, both dtypes),
    which is how CI starts: so it runs with the slow tests, and
    test_a_few_ops_pass_with_a_row_each stands in for it in the default run."""
    assert main(["verify", "--quick"]) == 0
    out = capsys.readouterr().out
    for op in numba_backend_ops() - set(catalog.NOT_OPS):
        assert re.search(rf"^{op} +\d+ ", out, re.M), op
    assert "verify: OK" in out and "FAIL" not in out


def break_relu(monkeypatch, when=lambda x: True):
    """The numba backend's relu, off by 1e-3 in its first element when ``when(x)``."""
    relu = NumbaOps.relu

    def broken(self, x):
        y = relu(self, x)
        if when(x):
            y.reshape(-1)[0] += y.dtype.type(1e-3)
        return y

    monkeypatch.setattr(NumbaOps, "relu", broken)


def test_a_broken_kernel_is_caught_named_and_exits_1(monkeypatch, capsys):
    break_relu(monkeypatch)
    assert main(["verify", "--ops", "relu,sigmoid", "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^relu .*FAIL \(\d+\)$", out, re.M)
    assert re.search(r"^sigmoid .*\dx$", out, re.M), "sigmoid is not broken"
    assert "FAIL relu case 0 (seed 3, float32): y on the serial build: error above the bound: error" in out
    assert "reproduce: fastnn verify --ops relu --seed 3 --case 0" in out
    assert "verify: FAILED" in out and "relu" in out.splitlines()[-1]


def test_the_printed_command_reproduces_the_failing_case(monkeypatch, capsys):
    break_relu(monkeypatch, when=lambda x: x.dtype == np.float64 and x.size > 10_000)
    assert main(["verify", "--ops", "relu", "--seed", "11"]) == 1
    out = capsys.readouterr().out
    failures = re.findall(r"^FAIL (relu case (\d+) .*)\n  call: (.*)\n  reproduce: (.*)$", out, re.M)
    assert failures, out
    headline, index, call, command = failures[0]
    plan = case_plan(catalog.CASES["relu"], int(index))
    assert plan[1] == np.float64 and plan[2], "only the large float64 cases are broken"
    argv = command.split()
    assert argv[:2] == ["fastnn", "verify"]
    assert main(argv[1:]) == 1
    again = capsys.readouterr().out
    assert f"FAIL {headline}" in again and f"  call: {call}" in again
    assert re.search(r"^relu +1 ", again, re.M), "the command runs that one case"
    passing = next(i for i in range(12) if case_plan(catalog.CASES["relu"], i)[1] == np.float32)
    assert main(["verify", "--ops", "relu", "--seed", "11", "--case", str(passing)]) == 0


@pytest.mark.parametrize("build", ["serial", "parallel"])
def test_a_broken_build_is_caught_on_that_build(build, monkeypatch, capsys):
    kernel = getattr(activation_kernels.relu_forward, build)

    def broken(x, y):
        kernel(x, y)
        y[-1] += 1

    monkeypatch.setattr(activation_kernels.relu_forward, build, broken)
    assert main(["verify", "--ops", "relu"]) == 1
    out = capsys.readouterr().out
    runs = set(re.findall(r"^FAIL relu case \d+ \(.*?\): y on the (.*?): error", out, re.M))
    threads = all_threads()
    expected = {"serial build"} if build == "serial" else {"parallel build, 1 thread"}
    if build == "parallel" and threads > 1:
        expected.add(f"parallel build, {threads} threads")
    assert runs == expected


@needs_threads
def test_results_that_depend_on_the_thread_count_are_caught(monkeypatch, capsys):
    relu = NumbaOps.relu

    def thread_dependent(self, x):
        y = relu(self, x)
        if fnn.get_num_threads() > 1:  # one ulp: within the oracle's bound, but not bit-identical
            y.reshape(-1)[0] = np.nextafter(y.reshape(-1)[0], y.dtype.type(np.inf))
        return y

    monkeypatch.setattr(NumbaOps, "relu", thread_dependent)
    assert main(["verify", "--ops", "relu"]) == 1
    out = capsys.readouterr().out
    threads = all_threads()
    message = "results are not bit-identical across thread counts"
    assert f"y on the parallel build, 1 thread against {threads} threads: {message}" in out
    assert "error above the bound" not in out


def test_json_report_has_a_row_per_op(tmp_path, capsys):
    path = tmp_path / "verify.json"
    assert main(["verify", "--ops", "tanh_backward,col2im", "--seed", "2", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert [row["op"] for row in report["ops"]] == ["tanh_backward", "col2im"]
    assert report["ok"] is True and report["failures"] == [] and report["seed"] == 2
    for row in report["ops"]:
        assert row["cases"] >= catalog.QUICK_MIN and row["error"] <= row["bound"]


def test_json_report_lists_failures_with_their_command(monkeypatch, tmp_path, capsys):
    break_relu(monkeypatch)
    path = tmp_path / "verify.json"
    assert main(["verify", "--ops", "relu", "--json", str(path)]) == 1
    report = json.loads(path.read_text())
    assert report["ok"] is False and report["ops"][0]["failures"] == len(report["failures"]) > 0
    failure = report["failures"][0]
    assert failure["command"] == f"fastnn verify --ops relu --seed 0 --case {failure['case']}"
    assert failure["error"] > failure["bound"]


def test_an_unknown_op_is_refused_with_the_known_names(capsys):
    assert main(["verify", "--ops", "relu,conv3d"]) == 2
    err = capsys.readouterr().err
    assert "verify: unknown op 'conv3d'; pass names of numba ops from:" in err and "conv2d" in err


def test_case_needs_exactly_one_op(capsys):
    assert main(["verify", "--ops", "relu,tanh", "--case", "3"]) == 2
    assert "verify: case=3 picks one case of one op; name exactly one op (--ops NAME), got 2 ops" in (
        capsys.readouterr().err
    )


def test_quick_and_full_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "--quick", "--full"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_the_python_api_checks_its_seed(bad):
    with pytest.raises(ValueError, match=re.escape(f"verify: seed must be an integer >= 0, got {bad!r}")):
        fnn.verify(ops=["relu"], seed=bad)


def test_a_nan_from_a_kernel_fails_and_the_json_stays_strict(monkeypatch, tmp_path, capsys):
    tanh = NumbaOps.tanh

    def nan_at_the_end(self, x):
        y = tanh(self, x)
        y.reshape(-1)[-1] = np.nan
        return y

    monkeypatch.setattr(NumbaOps, "tanh", nan_at_the_end)
    path = tmp_path / "verify.json"
    assert main(["verify", "--ops", "tanh", "--json", str(path)]) == 1
    assert "y on the serial build: error above the bound: error inf > bound" in capsys.readouterr().out

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    report = json.loads(path.read_text(), parse_constant=refuse)
    assert {failure["error"] for failure in report["failures"]} == {"inf"}


def widened(y):
    """A float32 result returned as float64 (the ops' contract: the dtype they were given)."""
    return y.astype(np.float64)


def moved_argmax(result):
    """maxpool2d's (y, argmax) with the first winner moved to another place in its plane."""
    y, argmax = result
    argmax = argmax.copy()
    argmax.reshape(-1)[0] = (argmax.reshape(-1)[0] + 1) % 4
    return y, argmax


@pytest.mark.parametrize(
    "op, breaker, message",
    [
        ("sigmoid", widened, "y on the serial build: dtype float64, expected float32 (the reference's)"),
        ("maxpool2d", moved_argmax, "argmax on the serial build: 1 of "),
    ],
)
def test_a_wrong_dtype_or_index_is_caught(op, breaker, message, monkeypatch, capsys):
    original = getattr(NumbaOps, op)
    monkeypatch.setattr(NumbaOps, op, lambda self, *args, **kwargs: breaker(original(self, *args, **kwargs)))
    assert main(["verify", "--ops", op, "--case", "0"]) == 1
    assert message in capsys.readouterr().out
