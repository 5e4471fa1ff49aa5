"""``fastnn bench``: run the benchmark suite and print (or write as JSON) the results.

The targets are the performance issue's: ratios measured in this one run.
"""

from __future__ import annotations

import json
import platform

import numba
import numpy as np

from .. import __version__, _config
from . import harness, torch_models
from .compare import SCHEMA

#: (key, description, comparison, bound)
TARGETS = [
    ("simple_convnet_vs_torch", "simple_convnet step / PyTorch eager", "<=", 0.5),
    ("deep_convnet_vs_torch", "deep_convnet step / PyTorch eager", "<=", 0.8),
    ("mlp_vs_torch", "mlp step / PyTorch eager", "<=", 0.5),
    ("simple_convnet_numpy_speedup", "simple_convnet: numba faster than numpy by", ">=", 10.0),
    ("deep_convnet_numpy_speedup", "deep_convnet: numba faster than numpy by", ">=", 10.0),
    ("thread_speedup", "deep_convnet: all threads faster than 1 thread by", ">=", 1.6),
    ("conv_fraction_of_sgemm", "slowest deep_convnet conv2d forward / sgemm GFLOP/s", ">=", 0.4),
    ("adam_vs_torch_fused", "fused Adam 1M params / torch Adam(fused=True)", "<=", 1.0),
    ("warm_start_s", "import to first deep_convnet step, warm cache (s)", "<=", 3.0),
    ("cold_start_s", "import to first deep_convnet step, empty cache (s)", "<=", 30.0),
]


def run(
    repeats: int = 20,
    warmup: int = 3,
    networks=harness.NETWORKS,
    with_numpy: bool = True,
    with_startup: bool = True,
) -> dict:
    """Every measurement of the suite, as a JSON-ready dict."""
    results = header()
    results["steps"] = harness.training_steps(
        _config.get_num_threads(), repeats, warmup, networks, with_numpy=with_numpy
    )
    if "deep_convnet" in networks:
        results["thread_scaling"] = harness.thread_scaling(max(5, repeats // 4), warmup)
    results["conv"] = harness.conv_gflops(max(5, repeats // 2), warmup)
    results["sgemm_gflops"] = harness.sgemm_gflops(max(5, repeats // 2))
    results["adam"] = harness.adam_vs_torch(repeats, warmup)
    if with_startup:
        results["startup"] = harness.startup_times()
    results["targets"] = check_targets(results)
    return results


def header() -> dict:
    """The versions and settings every results file starts with, its schema version first
    (:data:`fastnn.bench.compare.SCHEMA`)."""
    return {
        "schema": SCHEMA,
        "fastnn": __version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": _config.get_num_threads(),
        "torch": _torch_version(),
        "batch": harness.BATCH,
        "dtype": "float32",
    }


def _torch_version():
    if not torch_models.available():
        return None
    import torch

    return torch.__version__


def measures(results: dict) -> dict:
    """The figures the targets are stated in, from a results dict."""
    found = {}
    for row in results["steps"]:
        if "numba_vs_torch" in row:
            found[f"{row['network']}_vs_torch"] = row["numba_vs_torch"]
        if "numpy_vs_numba" in row:
            found[f"{row['network']}_numpy_speedup"] = row["numpy_vs_numba"]
    if results.get("thread_scaling"):
        found["thread_speedup"] = results["thread_scaling"]["speedup"]
    if results.get("conv"):
        found["conv_fraction_of_sgemm"] = min(r["gflops"] for r in results["conv"]) / results["sgemm_gflops"]
    if results.get("adam"):
        found["adam_vs_torch_fused"] = results["adam"]["ratio"]
    if results.get("startup"):
        found["warm_start_s"] = results["startup"]["warm_cache_s"]
        found["cold_start_s"] = results["startup"]["cold_cache_s"]
    return found


def check_targets(results: dict) -> list[dict]:
    found = measures(results)
    rows = []
    for key, text, comparison, bound in TARGETS:
        value = found.get(key)
        if value is None:
            status = "not measured"
        else:
            met = value <= bound if comparison == "<=" else value >= bound
            status = "met" if met else "MISSED"
        rows.append(
            {
                "target": key,
                "description": text,
                "bound": f"{comparison} {bound}",
                "value": value,
                "status": status,
            }
        )
    return rows


def _cell(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def format_results(results: dict) -> str:
    lines = [
        f"fastnn {results['fastnn']}  numba {results['numba']}  numpy {results['numpy']}  "
        f"torch {results['torch'] or '(not installed)'}  threads {results['threads']}  "
        f"batch {results['batch']} {results['dtype']}, Adam; medians of interleaved runs",
        "",
    ]
    lines.append(
        f"{'training step':<16}{'numba ms':>10}{'numpy ms':>10}{'torch ms':>10}"
        f"{'samples/s':>11}{'numba/torch':>13}{'numpy/numba':>13}"
    )
    for row in results["steps"]:
        lines.append(
            f"{row['network']:<16}{_cell(row.get('numba_ms')):>10}"
            f"{_cell(row.get('numpy_ms')):>10}{_cell(row.get('torch_ms')):>10}"
            f"{row['samples_per_s']:>11.0f}{_cell(row.get('numba_vs_torch')):>13}"
            f"{_cell(row.get('numpy_vs_numba'), 1):>13}"
        )
    scaling = results.get("thread_scaling")
    if scaling:
        lines += [
            "",
            f"deep_convnet step: 1 thread {scaling['one_thread_ms']:.2f} ms, "
            f"{scaling['threads']} threads {scaling['all_threads_ms']:.2f} ms, "
            f"speed-up {scaling['speedup']:.2f}x",
        ]
    lines += [
        "",
        f"sgemm (NumPy BLAS, 2048^3, float32): {results['sgemm_gflops']:.1f} GFLOP/s",
        f"{'conv2d forward':<32}{'ms':>8}{'GFLOP/s':>10}{'of sgemm':>10}",
    ]
    for row in results["conv"]:
        lines.append(
            f"{row['layer']:<32}{row['ms']:>8.2f}{row['gflops']:>10.1f}"
            f"{row['gflops'] / results['sgemm_gflops']:>10.0%}"
        )
    adam = results.get("adam")
    if adam:
        lines += [
            "",
            f"fused Adam, {adam['parameters']:,d} params: numba {adam['numba_ms']:.3f} ms, "
            f"torch fused {adam['torch_ms']:.3f} ms, ratio {adam['ratio']:.2f}",
        ]
    startup = results.get("startup")
    if startup:
        lines += [
            f"import -> first deep_convnet step: warm cache {startup['warm_cache_s']:.2f} s, "
            f"empty cache {startup['cold_cache_s']:.1f} s"
            + (f" (CPU {startup['cold_cache_cpu_s']:.1f} s)" if "cold_cache_cpu_s" in startup else "")
            + (
                f", its process ended at {startup['cold_cache_process_s']:.1f} s"
                if "cold_cache_process_s" in startup
                else ""
            )
        ]
    lines += ["", f"{'target':<58}{'bound':>9}{'measured':>10}  status"]
    for row in results["targets"]:
        lines.append(f"{row['description']:<58}{row['bound']:>9}{_cell(row['value']):>10}  {row['status']}")
    return "\n".join(lines)


def write_json(results: dict, path) -> None:
    from ..serialization import atomic_write

    atomic_write(path, lambda handle: handle.write(json.dumps(results, indent=2).encode()))
