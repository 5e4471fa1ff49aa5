"""Every tutorial, docs/tutorials/NN_slug.py, runs top to bottom as a plain script.

Each runs in its own subprocess with MPLBACKEND=Agg (figures are drawn, never shown), the
working directory an empty temporary folder (a tutorial writes files only under
tempfile.mkdtemp(), so the folder must stay empty) and a timeout. The default run executes
the reduced form (FASTNN_TUTORIAL_FULL unset: fewer samples and epochs, a few seconds each);
the slow run executes the full experiment each tutorial's prose describes.

A tutorial that imports a package that is not installed (an optional extra) is skipped,
naming the package; one that loads MNIST is skipped when the real data is missing (as
every MNIST test is). On failure the message gives the command that reproduces it and the
end of the script's output.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, data_root

TUTORIALS = sorted((REPO / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))
REDUCED_TIMEOUT_S = float(os.environ.get("FASTNN_TUTORIAL_TIMEOUT", 300))  # cold numba cache included
FULL_TIMEOUT_S = float(os.environ.get("FASTNN_TUTORIAL_FULL_TIMEOUT", 3600))
OUTPUT_TAIL = 6000  # characters of the script's output shown on failure


def imported_packages(path: Path) -> set[str]:
    """The top-level names of the modules a script imports (``import a.b`` and ``from a import b``)."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


def skip_reason(path: Path) -> str | None:
    """Why ``path`` cannot run here (a missing package or missing MNIST files), or None."""
    missing = sorted(name for name in imported_packages(path) if importlib.util.find_spec(name) is None)
    if missing:
        return f"{path.name} needs {', '.join(missing)}, not installed (an optional extra)"
    if "load_mnist" in path.read_text(encoding="utf-8") and not (data_root() / "mnist").is_dir():
        return f"{path.name} loads MNIST, not found under {data_root()} (set FASTNN_DATA)"
    return None


def run_tutorial(path: Path, full: bool, timeout_s: float, cwd: Path) -> None:
    """Run the script; fail with its output's tail when it exits non-zero or runs too long."""
    reason = skip_reason(path)
    if reason:
        if os.environ.get("CI") and "MNIST" in reason:
            pytest.fail(reason)
        pytest.skip(reason)
    env = dict(os.environ, MPLBACKEND="Agg", FASTNN_DATA=str(data_root()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("FASTNN_TUTORIAL_FULL", None)
    if full:
        env["FASTNN_TUTORIAL_FULL"] = "1"
    else:  # small problems, while the default run's two pytest workers already use both cores
        env.setdefault("FASTNN_THREADS", "1")
    command = [sys.executable, str(path)]
    reproduce = f"{'FASTNN_TUTORIAL_FULL=1 ' if full else ''}MPLBACKEND=Agg python {path.relative_to(REPO)}"
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        output = error.stdout or ""
        if isinstance(output, bytes):  # TimeoutExpired may hold bytes even with text=True
            output = output.decode(errors="replace")
        pytest.fail(
            f"{path.name} ran past its {timeout_s:.0f} s timeout ({'full' if full else 'reduced'} form).\n"
            f"Reproduce: {reproduce}\n--- last output ---\n{output[-OUTPUT_TAIL:]}"
        )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        pytest.fail(
            f"{path.name} exited with status {result.returncode} after {elapsed:.1f} s "
            f"({'full' if full else 'reduced'} form).\nReproduce: {reproduce}\n"
            f"--- stdout (end) ---\n{result.stdout[-OUTPUT_TAIL:]}\n"
            f"--- stderr (end) ---\n{result.stderr[-OUTPUT_TAIL:]}"
        )
    stray = sorted(p.name for p in cwd.iterdir())
    assert not stray, f"{path.name} wrote {stray} into its working directory; write under tempfile.mkdtemp()"
    print(f"{path.name}: {elapsed:.1f} s ({'full' if full else 'reduced'})")


def test_tutorials_exist_and_follow_the_convention():
    """Each tutorial is a percent-format script with prose cells that reads FASTNN_TUTORIAL_FULL."""
    assert TUTORIALS, "no docs/tutorials/NN_slug.py found"
    for path in TUTORIALS:
        text = path.read_text(encoding="utf-8")
        assert "# %% [markdown]\n" in text, f"{path.name}: no '# %% [markdown]' cell (percent format)"
        assert 'os.environ.get("FASTNN_TUTORIAL_FULL") == "1"' in text, (
            f"{path.name}: read FASTNN_TUTORIAL_FULL"
        )
    numbers = [p.name[:2] for p in TUTORIALS]
    assert len(set(numbers)) == len(numbers), f"two tutorials share a number: {sorted(numbers)}"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_reduced(path, tmp_path):
    run_tutorial(path, full=False, timeout_s=REDUCED_TIMEOUT_S, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_full(path, tmp_path):
    run_tutorial(path, full=True, timeout_s=FULL_TIMEOUT_S, cwd=tmp_path)


def test_the_site_lists_every_tutorial_in_order():
    """docs/hooks/tutorials_nav.py puts each tutorial in the nav, titled "N. Heading"."""
    hook_path = REPO / "docs" / "hooks" / "tutorials_nav.py"
    spec = importlib.util.spec_from_file_location("tutorials_nav", hook_path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    entries = hook.tutorial_entries(REPO / "docs")
    listed = [path for entry in entries for path in entry.values()]
    assert listed == [f"tutorials/{p.name}" for p in TUTORIALS]
    for entry, path in zip(entries, TUTORIALS):
        (title,) = entry
        assert title.startswith(f"{int(path.name[:2])}. "), f"{path.name}: title {title!r} should be 'N. ...'"


def test_the_site_serves_mathjax_itself_and_asks_no_font_server(tmp_path):
    """docs/hooks/mathjax.py copies MathJax (the docs extra's jupyter-server-mathjax) into the
    site, where mkdocs.yml points the tutorial pages, so their formulas render offline."""
    pytest.importorskip("jupyter_server_mathjax", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("mathjax_hook", REPO / "docs" / "hooks" / "mathjax.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    folder = hook.copy_mathjax(tmp_path)
    assert folder == tmp_path / "assets" / "mathjax"
    configs = ("TeX-AMS-MML_HTMLorMML-full.js", "Safe.js", "local/fastnn.js")
    for path in ("MathJax.js", *(f"config/{name}" for name in configs)):
        assert (folder / path).is_file(), path
    assert (folder / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").is_dir()  # the font the local config picks
    config = (REPO / "mkdocs.yml").read_text()
    # a tutorial's page is site/tutorials/NN_slug/index.html: two folders below the root
    url = "../../assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/fastnn"
    assert f'custom_mathjax_url: "{url}"' in config
    assert "docs/hooks/mathjax.py" in config and "  font: false" in config
