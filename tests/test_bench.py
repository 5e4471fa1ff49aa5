"""fastnn bench: the harness measures what it claims and reports every target."""

import json

import numpy as np
import pytest
from conftest import load_benchmark_script

from fastnn import _config
from fastnn.bench import compare, harness, report
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
        + ["affine_forward_rectified"] * 3  # ReLU and the identity: the rectified build
        + ["softmax_cross_entropy_indices", "softmax_cross_entropy_backward_indices"]
        + ["affine_backward"] * 3
        + ["count_nonfinite", "adam"]
    )
    assert "(100, 784)" in out and "outside them" in out


def test_the_fast_path_measurements_run_and_report_a_ratio_for_each_pair(capsys):
    """benchmarks/bench_fast_paths.py, once each (it calls kernels directly, so a changed
    signature breaks it): every row names its pair and gives a positive, finite ratio."""
    module = load_benchmark_script("bench_fast_paths")
    module.main(["--repeat", "1"])
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 33
    for row in rows:
        ratio = float(row.rsplit("ratio", 1)[1])
        assert np.isfinite(ratio) and ratio >= 0, row  # printed to 2 decimals
    assert any(row.startswith("maxpool 3x3 s1 pad 1 (100, 120, 7, 7), wide / rows") for row in rows)
    assert any(row.startswith("maxpool 3x3 s2 pad 1 (16, 64, 32, 32), wide / rows") for row in rows)
    assert any(row.startswith("maxpool 3x3 s1 pad 1 (100, 120, 7, 7), wide / same") for row in rows)
    assert any(row.startswith("maxpool 3x3 s2 pad 1 (16, 64, 32, 32), wide / 3x3_s2") for row in rows)
    assert rows[-13].startswith("conv 1->16 3x3 @28x28, fill 5 MB / conv")
    assert rows[-12].startswith("conv 16->16 3x3 (256,16,32,32) + residual ReLU, fused / apart")
    assert rows[-11].startswith("dy to pixel-major rows, 256 ch x 256 px, blocks / elements")
    assert rows[-10].startswith("dy to pixel-major rows, 32 ch x 256 px, blocks / elements")
    assert rows[-9].startswith("batchnorm backward through ReLU (100, 32, 14, 14), in the kernel / ReLU")
    assert rows[-7].startswith("batchnorm + residual ReLU (64, 16, 32, 32), in the kernel / add_relu after")
    assert rows[-5].startswith("batchnorm + residual ReLU (64, 64, 8, 8), in the kernel / add_relu after")
    assert rows[-4].startswith("maxpool backward 3x3 s2 (100,120,14,14), range in kernel / NumPy range")
    assert rows[-1].startswith("add in place (100,80,14,14), kernel / numpy +=")


def test_step_profile_takes_any_zoo_network_at_its_batch(capsys):
    """profile_step.py on a zoo entry: its call (``predict`` here) at the entry's batch."""
    module = load_benchmark_script("profile_step")
    module.profile("online_mlp", steps=2)
    out = capsys.readouterr().out
    assert "train calls back to back, batch 1," in out and "(1, 784)" in out
    module.profile("predict_mlp", steps=2)
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:-1]]
    assert "affine_forward_rectified" in rows and "adam" not in rows and "affine_backward" not in rows


# -- the regression gate: fastnn bench --compare ------------------------------------------


def _results(zoo_ratios, step_ratio=0.5, numpy_speedup=20.0, schema=compare.SCHEMA):
    return {
        "schema": schema,
        "steps": [{"network": "mlp", "numba_vs_torch": step_ratio, "numpy_vs_numba": numpy_speedup}],
        "zoo": {"rows": [{"network": name, "ratio": ratio} for name, ratio in zoo_ratios.items()]},
        "conv": [{"layer": "1->16", "gflops": 50.0}],
        "sgemm_gflops": 100.0,
        "adam": {"ratio": 0.8},
    }


def _write(tmp_path, name, results):
    path = tmp_path / name
    path.write_text(json.dumps(results))
    return str(path)


def test_compare_judges_each_workload_on_its_in_run_ratio():
    base = _results({"lenet5_classic": 1.0, "vgg_cifar": 0.8, "mlp_bn_dropout": 0.5, "gone": 0.3})
    new = _results({"lenet5_classic": 1.2, "vgg_cifar": 0.4, "mlp_bn_dropout": 0.52, "added": 0.3})
    rows = {r["workload"]: r for r in compare.compare(base, new, threshold=0.1)}
    assert rows["zoo/lenet5_classic vs torch"]["status"] == "regression"
    assert rows["zoo/lenet5_classic vs torch"]["change"] == pytest.approx(0.2)
    assert rows["zoo/vgg_cifar vs torch"]["status"] == "improvement"
    assert rows["zoo/mlp_bn_dropout vs torch"]["status"] == "ok"  # +4 % is within 10 %
    assert rows["zoo/gone vs torch"]["status"] == "only in base"
    assert rows["zoo/added vs torch"]["status"] == "only in new"
    for name in ("step/mlp vs torch", "step/mlp vs numpy", "conv/1->16 vs sgemm", "adam vs torch fused"):
        assert rows[name]["status"] == "ok"
    assert [r["workload"] for r in compare.regressions(list(rows.values()))] == [
        "zoo/lenet5_classic vs torch"
    ]


def test_compare_reads_speedups_as_time_ratios():
    """numpy_vs_numba is a speed-up (higher is better): its halving is a regression."""
    rows = {r["workload"]: r for r in compare.compare(_results({}), _results({}, numpy_speedup=10.0))}
    assert rows["step/mlp vs numpy"]["status"] == "regression"
    assert rows["step/mlp vs numpy"]["change"] == pytest.approx(1.0)


def test_compare_command_exit_status(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _results({"vgg_cifar": 0.8}))
    slower = _write(tmp_path, "slower.json", _results({"vgg_cifar": 1.0}))
    faster = _write(tmp_path, "faster.json", _results({"vgg_cifar": 0.6}))
    within = _write(tmp_path, "within.json", _results({"vgg_cifar": 0.85}))
    assert main(["bench", "--compare", base, slower]) == 1
    out = capsys.readouterr().out
    assert "zoo/vgg_cifar vs torch" in out and "regression" in out and "+25.0%" in out
    assert main(["bench", "--compare", base, faster]) == 0
    assert "improvement" in capsys.readouterr().out
    assert main(["bench", "--compare", base, within]) == 0
    # a looser threshold lets the 25 % through; a tighter one catches the 6 %
    assert main(["bench", "--compare", base, slower, "--threshold", "0.3"]) == 0
    assert main(["bench", "--compare", base, within, "--threshold", "0.05"]) == 1


def test_compare_refuses_a_newer_schema_and_a_negative_threshold(tmp_path, capsys):
    base = _write(tmp_path, "base.json", _results({}))
    future = _write(tmp_path, "future.json", _results({}, schema=compare.SCHEMA + 1))
    assert main(["bench", "--compare", base, future]) == 2
    assert "schema" in capsys.readouterr().err
    assert main(["bench", "--compare", base, base, "--threshold", "-1"]) == 2


def test_compare_reads_files_without_a_schema_as_version_1(tmp_path):
    old = _results({})
    del old["schema"], old["zoo"]
    rows = compare.compare(old, _results({"vgg_cifar": 0.5}))
    assert {r["status"] for r in rows} == {"ok", "only in new"}


def test_bench_zoo_command_writes_the_zoo_into_the_json(tmp_path, capsys, monkeypatch):
    from fastnn.bench import peak

    monkeypatch.setattr(peak, "measure", lambda threads=None, iters=0, repeats=0: 100.0)
    monkeypatch.setattr(harness, "sgemm_gflops", lambda repeats, size=2048: 80.0)
    path = tmp_path / "zoo.json"
    argv = ["bench", "--zoo-networks", "online_mlp", "--repeats", "2", "--warmup", "1", "--json", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "online_mlp" in out and "GFLOP/s" in out and "FMA peak" in out
    results = json.loads(path.read_text())
    assert results["schema"] == compare.SCHEMA
    (row,) = results["zoo"]["rows"]
    assert row["network"] == "online_mlp" and row["fastnn_ms"] > 0
    assert main(["bench", "--compare", str(path), str(path)]) == 0


def test_bench_zoo_refuses_an_unknown_network(capsys):
    assert main(["bench", "--zoo-networks", "nope"]) == 2
    assert "no zoo network" in capsys.readouterr().err


def test_first_step_times_builds_the_classic_lenet_and_refuses_code():
    """harness.first_step_times names a model of fnn.models (or "lenet5_classic") and only
    that: the name goes into the child process's source."""
    assert harness._first_step_model("deep_convnet") == "deep_convnet(seed=0)"
    assert harness._first_step_model("lenet5_classic") == "lenet5(classic=True, seed=0)"
    with pytest.raises(ValueError, match="first_step_times"):
        harness._first_step_model("mlp(); import os")
    times = harness.first_step_times(model="lenet5_classic", batch=4)
    assert times["wall_s"] > 0 and times["cpu_s"] > 0
    assert times["process_s"] >= times["wall_s"]
