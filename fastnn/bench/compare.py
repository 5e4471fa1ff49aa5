"""``fastnn bench --compare base.json new.json``: the regression gate between two runs.

Each workload is judged on a ratio against a baseline measured in the same run (so that
a slower or busier machine moves both sides alike and cancels), always as "fastnn's time
over the baseline's time", lower is better:

=============================  ================================================
workload                       ratio
=============================  ================================================
``step/NET vs torch``          numba step ms / PyTorch step ms
``step/NET vs numpy``          numba step ms / NumPy reference step ms
``zoo/NET vs torch``           fastnn ms / PyTorch ms (training step or predict)
``conv/LAYER vs sgemm``        sgemm GFLOP/s / conv2d forward GFLOP/s
``threads/NET all vs 1``       step ms on all threads / step ms on one
``adam vs torch fused``        fused Adam ms / ``torch.optim.Adam(fused=True)`` ms
=============================  ================================================

The change is ``new_ratio / base_ratio - 1``: above ``threshold`` it is a regression (exit
status 1), below ``-threshold`` an improvement. A workload in only one file is listed,
never failed. Start-up times have no in-run baseline and are not judged.
"""

from __future__ import annotations

import json

#: The version of the JSON ``fastnn bench`` writes; 1 had no ``schema`` key and no zoo.
SCHEMA = 2
DEFAULT_THRESHOLD = 0.1


def load(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        results = json.load(handle)
    if not isinstance(results, dict):
        raise ValueError(f"{path}: not a fastnn bench JSON object")
    schema = results.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise ValueError(f"{path}: schema {schema!r} is newer than this fastnn reads ({SCHEMA})")
    return results


def workloads(results: dict) -> dict[str, float]:
    """Workload name -> ratio against its in-run baseline (lower is better)."""
    found = {}
    for row in results.get("steps") or []:
        if row.get("numba_vs_torch"):
            found[f"step/{row['network']} vs torch"] = row["numba_vs_torch"]
        if row.get("numpy_vs_numba"):
            found[f"step/{row['network']} vs numpy"] = 1.0 / row["numpy_vs_numba"]
    zoo = results.get("zoo") or {}
    for row in zoo.get("rows") or []:
        if row.get("ratio"):
            found[f"zoo/{row['network']} vs torch"] = row["ratio"]
    sgemm = results.get("sgemm_gflops")
    for row in results.get("conv") or []:
        if sgemm and row.get("gflops"):
            found[f"conv/{row['layer']} vs sgemm"] = sgemm / row["gflops"]
    scaling = results.get("thread_scaling")
    if scaling and scaling.get("one_thread_ms"):
        found[f"threads/{scaling['network']} all vs 1"] = scaling["all_threads_ms"] / scaling["one_thread_ms"]
    adam = results.get("adam")
    if adam and adam.get("ratio"):
        found["adam vs torch fused"] = adam["ratio"]
    return found


def compare(base: dict, new: dict, threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """One row per workload: base and new ratio, change, and status
    ("regression", "improvement", "ok", "only in base", "only in new")."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    a, b = workloads(base), workloads(new)
    rows = []
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            rows.append(
                {"workload": name, "base": a[name], "new": None, "change": None, "status": "only in base"}
            )
            continue
        if name not in a:
            rows.append(
                {"workload": name, "base": None, "new": b[name], "change": None, "status": "only in new"}
            )
            continue
        change = b[name] / a[name] - 1.0
        status = "regression" if change > threshold else "improvement" if change < -threshold else "ok"
        rows.append({"workload": name, "base": a[name], "new": b[name], "change": change, "status": status})
    return rows


def regressions(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["status"] == "regression"]


def format_comparison(rows: list[dict], threshold: float) -> str:
    def cell(value, spec):
        return "-" if value is None else format(value, spec)

    width = max([len("workload")] + [len(r["workload"]) for r in rows]) + 2
    lines = [f"{'workload':<{width}}{'base':>8}{'new':>8}{'change':>9}  status"]
    for r in rows:
        lines.append(
            f"{r['workload']:<{width}}{cell(r['base'], '.3f'):>8}{cell(r['new'], '.3f'):>8}"
            f"{cell(r['change'], '+.1%'):>9}  {r['status']}"
        )
    bad = regressions(rows)
    judged = sum(r["change"] is not None for r in rows)
    lines += [
        "",
        "ratios against the same run's baseline (PyTorch, the NumPy reference, sgemm, one "
        "thread); lower is better",
        f"{len(bad)} regression(s) beyond {threshold:.0%} among {judged} workloads in both files"
        + (": " + ", ".join(r["workload"] for r in bad) if bad else ""),
    ]
    return "\n".join(lines)


def main(base_path, new_path, threshold: float = DEFAULT_THRESHOLD) -> int:
    """Print the comparison; 1 if a workload regressed beyond ``threshold``, else 0."""
    rows = compare(load(base_path), load(new_path), threshold)
    print(format_comparison(rows, threshold))
    return 1 if regressions(rows) else 0
