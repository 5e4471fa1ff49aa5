"""fastnn bench: the harness measures what it claims and reports every target."""

import json

import numpy as np
import pytest
from conftest import load_benchmark_script

from fastnn import _config
from fastnn.bench import harness, report
from fastnn.cli import main


def test_interleaved_times_contenders_in_turns_of_blocks():
    order = []
    medians = harness.interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3, warmup=1, block=2
    )
    # warm-up, then per turn one untimed call and up to `block` timed ones
    assert "".join(order) == "ab" + "aaa" + "bbb" + "aa" + "bb"
    assert set(medians) == {"a", "b"} and all(v >= 0 for v in medians.values())


def test_training_step_rows_compare_against_the_reference():
    rows = harness.training_steps(threads=1, repeats=2, warmup=1, networks=("mlp",), with_torch=False)
    (row,) = rows
    assert row["network"] == "mlp" and row["numba_ms"] > 0 and row["numpy_ms"] > 0
    assert row["numpy_vs_numba"] == pytest.approx(row["numpy_ms"] / row["numba_ms"])
    assert row["samples_per_s"] == pytest.approx(100 / (row["numba_ms"] / 1e3))


def test_conv_gflops_counts_the_multiply_adds():
    rows = harness.conv_gflops(repeats=1, warmup=1)
    assert len(rows) == len(harness.DEEP_CONV_LAYERS)
    first = rows[0]  # 1->16 3x3 pad 1 at 28x28: 2*100*16*1*9*28*28 flops
    assert first["gflops"] == pytest.approx(2 * 100 * 16 * 9 * 784 / (first["ms"] / 1e3) / 1e9)


def test_targets_are_judged_from_the_measurements():
    results = {
        "steps": [
            {"network": "mlp", "numba_vs_torch": 0.4, "numpy_vs_numba": 3.0},
            {"network": "deep_convnet", "numba_vs_torch": 0.9, "numpy_vs_numba": 12.0},
        ],
        "thread_scaling": {"speedup": 1.7},
        "conv": [{"gflops": 100.0}, {"gflops": 150.0}],
        "sgemm_gflops": 300.0,
        "adam": None,
        "startup": None,
    }
    status = {row["target"]: row["status"] for row in report.check_targets(results)}
    assert status["mlp_vs_torch"] == "met"
    assert status["deep_convnet_vs_torch"] == "MISSED"
    assert status["deep_convnet_numpy_speedup"] == "met"
    assert status["conv_fraction_of_sgemm"] == "MISSED"  # 100 / 300 < 0.4
    assert status["thread_speedup"] == "met"
    assert status["adam_vs_torch_fused"] == "not measured"


def test_bench_command_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--networks",
                "mlp",
                "--no-startup",
                "--repeats",
                "2",
                "--warmup",
                "1",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for text in ("training step", "mlp", "sgemm", "conv2d forward", "target", "threads"):
        assert text in out
    results = json.loads(path.read_text())
    assert results["steps"][0]["network"] == "mlp"
    assert np.isfinite(results["sgemm_gflops"])
    assert {row["target"] for row in results["targets"]} == {key for key, *_ in report.TARGETS}


def test_step_profile_lists_every_kernel_call_of_a_step(capsys):
    """benchmarks/profile_step.py: one row per kernel call in call order, and the step
    split into time inside kernels and outside; the dispatch is restored afterwards."""
    module = load_benchmark_script("profile_step")
    dispatch = _config.ParallelKernel.__call__
    module.profile("mlp", steps=3)
    assert _config.ParallelKernel.__call__ is dispatch
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[2:-1]]
    # input check, 3 forward GEMMs, the loss both ways, 3 backward GEMMs, gradient check, Adam
    assert rows == (
        ["count_nonfinite"]
        + ["affine_forward"] * 3
        + ["softmax_cross_entropy_indices", "softmax_cross_entropy_backward_indices"]
        + ["affine_backward"] * 3
        + ["count_nonfinite", "adam"]
    )
    assert "(100, 784)" in out and "outside them" in out
