"""``fastnn bench --zoo``: every zoo network against PyTorch eager, with GFLOP/s and peak RSS.

Per network, fastnn (in this process) and its PyTorch twin (one child process for the
whole zoo, see :class:`fastnn.bench.torch_models.InChildProcess`) take turns in blocks
(:func:`fastnn.bench.harness.interleaved`); the medians give the ratio fastnn / PyTorch.
GFLOP/s counts the FLOPs of :func:`fastnn.bench.zoo.step_flops` over fastnn's median, and
its fraction is of the FMA peak measured at the start of the run
(:mod:`fastnn.bench.peak`). A row is marked ``*`` when its ratio misses the issue's
target: 0.5 for a training step, 0.4 for ``predict``; 0.7 for a convolution-heavy step
(at least 90 % of its multiply-adds in convolutions) that runs at 70 % of the peak or
more. The ``needs`` column is the fraction of the peak fastnn's step would have to reach,
doing the same FLOPs, to meet its target against PyTorch's time (:func:`needed_fraction`):
above 100 % no kernel can meet it on that machine.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import _config
from ..optim import Adam
from . import harness, peak, torch_models, zoo

TRAIN_TARGET = 0.5
PREDICT_TARGET = 0.4
CONV_HEAVY_TARGET = 0.7
CONV_HEAVY_SHARE = 0.9
CONV_HEAVY_PEAK = 0.7
#: Repeats of the zoo when ``--repeats`` is not given.
REPEATS = 10
#: Fast workloads get more repeats: at least this many seconds of timed calls per side.
MIN_TIMED_S = 0.4
MAX_REPEATS = 200


def target(kind: str, conv_share: float, fraction_of_peak: float | None) -> float:
    """The bound on fastnn / PyTorch for a row (see the module docstring)."""
    if kind == "predict":
        return PREDICT_TARGET
    if (
        conv_share >= CONV_HEAVY_SHARE
        and fraction_of_peak is not None
        and fraction_of_peak >= CONV_HEAVY_PEAK
    ):
        return CONV_HEAVY_TARGET
    return TRAIN_TARGET


def needed_fraction(kind: str, conv_share: float, torch_fraction: float | None) -> float | None:
    """The least fraction of the peak at which a row meets its :func:`target`, its FLOPs fixed.

    ``torch_fraction`` is PyTorch's rate as a fraction of the peak (FLOPs / torch's time /
    peak). A ratio r = torch_fraction / f meets the bound b when f >= torch_fraction / b;
    a convolution-heavy step may instead meet 0.7 once it runs at 70 % of the peak, so it
    needs min(tf / 0.5, max(0.7, tf / 0.7)). None without a PyTorch time.
    """
    if torch_fraction is None:
        return None
    if kind == "predict":
        return torch_fraction / PREDICT_TARGET
    plain = torch_fraction / TRAIN_TARGET
    if conv_share >= CONV_HEAVY_SHARE:
        return min(plain, max(CONV_HEAVY_PEAK, torch_fraction / CONV_HEAVY_TARGET))
    return plain


def _set_targets(row: dict) -> None:
    """A row's target, whether it missed it, and the fraction of the peak it would need."""
    row["target"] = target(row["kind"], row["conv_share"], row["fraction_of_peak"])
    row["missed"] = row["ratio"] is not None and row["ratio"] > row["target"]
    torch_fraction = None if row["ratio"] is None else row["fraction_of_peak"] * row["ratio"]
    row["needed_fraction_of_peak"] = needed_fraction(row["kind"], row["conv_share"], torch_fraction)


def batch(entry: zoo.ZooEntry, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((entry.batch, *entry.input_shape), dtype=np.float32)
    return x, rng.integers(0, zoo.CLASSES, entry.batch)


def fastnn_call(entry: zoo.ZooEntry, x, t, backend: str = "numba"):
    """The timed call: a training step with Adam, or ``predict`` on the whole array."""
    model = entry.build(seed=0, backend=backend)
    if entry.kind == "predict":
        return model, lambda: model.predict(x)
    optimizer = Adam(1e-3)
    return model, lambda: model.train_step(x, t, optimizer)


def _repeats_for(call, repeats: int) -> int:
    started = time.perf_counter()
    call()
    seconds = time.perf_counter() - started
    return int(min(MAX_REPEATS, max(repeats, math.ceil(MIN_TIMED_S / max(seconds, 1e-6)))))


def run(
    names=None,
    repeats: int = REPEATS,
    warmup: int = 2,
    with_torch: bool = True,
    with_memory: bool = False,
    progress=None,
) -> dict:
    """Time the zoo; a JSON-ready dict with the peak, one row per network and the summary."""
    entries = [zoo.get(name) for name in names] if names else list(zoo.ENTRIES)
    threads = _config.get_num_threads()
    measured_peak = peak.report()
    child = None
    if with_torch and torch_models.available():
        child = torch_models.InChildProcess("adam", 1, threads)  # replaced per network
    rows = []
    try:
        for entry in entries:
            if progress:
                progress(f"zoo: {entry.name} ...")
            rows.append(_row(entry, child, threads, repeats, warmup, measured_peak, with_memory))
    finally:
        if child is not None:
            child.close()
    # the peak again at the end, the better of the two kept: a busy moment on a shared
    # machine lowers a measurement, never raises it
    again = peak.measure(threads)
    if again > measured_peak["measured_gflops"]:
        measured_peak["measured_gflops"] = again
        for row in rows:
            row["fraction_of_peak"] = row["gflops"] / again
            _set_targets(row)
    return {"peak": measured_peak, "threads": threads, "rows": rows, "summary": summarize(rows)}


def _row(entry, child, threads, repeats, warmup, measured_peak, with_memory) -> dict:
    x, t = batch(entry)
    model, call = fastnn_call(entry, x, t)
    for _ in range(warmup):
        call()
    reps = _repeats_for(call, repeats)
    contenders = {"fastnn": call}
    if child is not None:
        if entry.kind == "predict":
            child.load("predict", entry.name, x, threads)
        else:
            child.load("step", entry.name, x, t, threads)
        contenders["torch"] = child
    block = max(3, reps // 5)
    medians = harness.interleaved(contenders, reps, warmup, block=block)
    flops = zoo.step_flops(entry, model)
    share = zoo.conv_share(entry, model)
    gflops = flops / medians["fastnn"] / 1e9
    fraction = gflops / measured_peak["measured_gflops"]
    row = {
        "network": entry.name,
        "kind": entry.kind,
        "batch": entry.batch,
        "input": list(entry.input_shape),
        "description": entry.description,
        "repeats": reps,
        "fastnn_ms": medians["fastnn"] * 1e3,
        "torch_ms": medians["torch"] * 1e3 if "torch" in medians else None,
        "ratio": medians["fastnn"] / medians["torch"] if "torch" in medians else None,
        "gflop": flops / 1e9,
        "gflops": gflops,
        "fraction_of_peak": fraction,
        "conv_share": share,
    }
    _set_targets(row)
    if with_memory:
        from . import memory

        row["fastnn_rss_mib"] = memory.measure("fastnn", entry.name)
        row["torch_rss_mib"] = memory.measure("torch", entry.name) if child is not None else None
    return row


def summarize(rows: list[dict]) -> dict:
    """Geometric mean of the ratios, the worst and best rows, and how many missed."""
    timed = [r for r in rows if r.get("ratio")]
    if not timed:
        return {"geomean": None, "worst": None, "best": None, "missed": 0, "rows": 0}
    ratios = [r["ratio"] for r in timed]
    worst = max(timed, key=lambda r: r["ratio"])
    best = min(timed, key=lambda r: r["ratio"])
    return {
        "geomean": float(np.exp(np.mean(np.log(ratios)))),
        "worst": {"network": worst["network"], "ratio": worst["ratio"]},
        "best": {"network": best["network"], "ratio": best["ratio"]},
        "missed": sum(bool(r.get("missed")) for r in timed),
        "rows": len(timed),
    }


def _cell(value, spec=".2f"):
    return "-" if value is None else format(value, spec)


def format_zoo(results: dict) -> str:
    """The zoo table: one row per network, then the summary."""
    zoo_results = results["zoo"] if "zoo" in results else results
    memory = any("fastnn_rss_mib" in r for r in zoo_results["rows"])
    lines = [peak.format_report(zoo_results["peak"]), ""]
    header = (
        f"{'network':<24}{'kind':<8}{'batch':>6}{'fastnn ms':>11}{'torch ms':>10}{'ratio':>7}"
        f"{'target':>7}{'GFLOP/s':>9}{'of peak':>8}{'needs':>7}"
    )
    if memory:
        header += f"{'RSS MiB':>9}{'torch':>7}"
    lines.append(header)
    for r in zoo_results["rows"]:
        mark = " *" if r.get("missed") else ""
        line = (
            f"{r['network']:<24}{r['kind']:<8}{r['batch']:>6}{r['fastnn_ms']:>11.3f}"
            f"{_cell(r['torch_ms'], '.3f'):>10}{_cell(r['ratio']):>7}{r['target']:>7.1f}"
            f"{r['gflops']:>9.1f}{r['fraction_of_peak']:>8.0%}"
            f"{_cell(r.get('needed_fraction_of_peak'), '.0%'):>7}"
        )
        if memory:
            line += f"{_cell(r.get('fastnn_rss_mib'), '.1f'):>9}{_cell(r.get('torch_rss_mib'), '.1f'):>7}"
        lines.append(line + mark)
    s = zoo_results["summary"]
    if s["geomean"] is not None:
        lines += [
            "",
            f"geometric mean fastnn/torch over {s['rows']} workloads: {s['geomean']:.2f} (aim 0.4)",
            f"worst: {s['worst']['network']} {s['worst']['ratio']:.2f}   "
            f"best: {s['best']['network']} {s['best']['ratio']:.2f}   "
            f"above target (*): {s['missed']} of {s['rows']}",
        ]
    lines += [
        "",
        "ratio = fastnn ms / torch ms (medians, interleaved); target 0.5 train, 0.4 predict, "
        "0.7 for a conv-heavy step at >= 70% of peak; GFLOP/s = conv+dense FLOPs "
        "(step: 3x forward, 2x for the first layer) / fastnn ms; needs = the fraction of the "
        "peak at which these FLOPs meet the target against torch's time (above 100%: out of "
        "reach on this machine)",
    ]
    return "\n".join(lines)
