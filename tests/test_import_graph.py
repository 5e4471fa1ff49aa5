"""fastnn's import graph, read from the source: no cycles, and nothing imports upward.

Every ``import`` counts, also those inside functions (a function-local import hides a
cycle from Python until the function runs, but the modules still depend on each other).
An import of ``a.b.c`` also depends on the packages ``a.b`` whose ``__init__`` Python
runs first, unless the importer lives inside them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "fastnn"

# The layers of the library, bottom first (docs/architecture.md draws them). A module may
# import modules of its own layer or of layers below it, never above. A name ending in
# "." covers a package and everything in it.
LAYERS = [
    (
        "foundation",
        [
            "fastnn.errors",
            "fastnn.oracle",
            "fastnn._files",
            "fastnn._config",
            "fastnn._blas",
            "fastnn._malloc",
            "fastnn._checks",
            "fastnn._progress",
            "fastnn._kernel_cache",
            "fastnn._precompile",
            "fastnn.distributed.",
        ],
    ),
    ("kernels", ["fastnn.kernels."]),
    ("backends", ["fastnn.backends."]),
    (
        "layers, losses, optimizers",
        [
            "fastnn.initializers",
            "fastnn.layers.",
            "fastnn.losses",
            "fastnn.optim",
            "fastnn.metrics",
            "fastnn.preprocessing",
            "fastnn.augment",
            "fastnn.datasets.",
            "fastnn.gradcheck",
        ],
    ),
    (
        "fusion and files",
        [
            "fastnn.fusion_base",
            "fastnn.fusion_norm",
            "fastnn.fusion",
            "fastnn.serialization",
            "fastnn.checkpoint",
            "fastnn.export.",
        ],
    ),
    ("callbacks", ["fastnn.callbacks.", "fastnn.schedules"]),
    ("training loop", ["fastnn.fit_checks", "fastnn.data_parallel", "fastnn.training"]),
    ("model", ["fastnn.model_summary", "fastnn.model", "fastnn.ensembles"]),
    (
        "networks and tools",
        [
            "fastnn.models.",
            "fastnn.lr_finder",
            "fastnn.tune",
            "fastnn.plots",
            "fastnn.classic",
            "fastnn.kernel_warmup",
            "fastnn.compare_result",
            "fastnn.compare",
            "fastnn.verification.",
        ],
    ),
    (
        "commands",
        [
            "fastnn.web.",
            "fastnn.playground.",
            "fastnn.dashboard.",
            "fastnn.cli.",
            "fastnn.__main__",
            "fastnn.bench.",
            "fastnn",
        ],
    ),
]


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def import_edges(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """importer -> {imported module: line of the first such import}, fastnn modules only."""
    edges: dict[str, dict[str, int]] = {name: {} for name in modules}
    for importer, path in modules.items():
        package = importer if is_package(importer, modules) else importer.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            for target in targets:
                if not target.startswith("fastnn"):
                    continue
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # the packages Python runs on the way
                    name = ".".join(parts[:i])
                    inside = importer == name or importer.startswith(name + ".")
                    if name in modules and name != importer and (i == len(parts) or not inside):
                        edges[importer].setdefault(name, node.lineno)
    return edges


def find_cycle(edges: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for target in sorted(edges.get(name, {})):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(edges):
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def layer_of(name: str) -> int:
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = (
                (name == prefix.rstrip(".") or name.startswith(prefix))
                if prefix.endswith(".")
                else name == prefix
            )
            if matches and len(prefix) > best:
                best, index = len(prefix), i
    if index is None:
        raise AssertionError(f"{name} is in no layer of tests/test_import_graph.py: add it to LAYERS")
    return index


@pytest.fixture(scope="module")
def graph():
    modules = module_files()
    return modules, import_edges(modules)


def test_the_graph_sees_function_local_and_relative_imports(graph):
    modules, edges = graph
    assert "fastnn.kernels.conv" in modules or "fastnn.kernels.conv.direct" in modules
    assert "fastnn.training" in edges["fastnn.model"]  # a top-level relative import
    assert "fastnn.models" in edges["fastnn.cli._common"]  # imported inside a function
    assert "fastnn.callbacks" in edges["fastnn.schedules"]  # the package its module lives in
    assert "fastnn.callbacks" not in edges["fastnn.callbacks.schedules"]  # its own package


def test_find_cycle_finds_a_cycle_through_a_function_local_import():
    edges = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 7}, "d": {"a": 1}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_no_import_cycles(graph):
    modules, edges = graph
    cycle = find_cycle(edges)
    if cycle:
        where = [
            f"{a} imports {b} ({modules[a].relative_to(ROOT.parent)}:{edges[a][b]})"
            for a, b in zip(cycle, cycle[1:])
        ]
        pytest.fail("import cycle:\n  " + "\n  ".join(where))


def test_every_module_has_a_layer_and_nothing_imports_upward(graph):
    modules, edges = graph
    upward = []
    for importer, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            if layer_of(target) > layer_of(importer):
                upward.append(
                    f"{importer} ({LAYERS[layer_of(importer)][0]}) imports {target} "
                    f"({LAYERS[layer_of(target)][0]}) at "
                    f"{modules[importer].relative_to(ROOT.parent)}:{line}"
                )
    assert not upward, "imports upward:\n  " + "\n  ".join(upward)
