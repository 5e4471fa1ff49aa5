"""Shared fixtures: where the real datasets are, and test-wide settings."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The folder holding ``mnist/`` and ``fashion-mnist/``: $FASTNN_DATA or ../shared/data."""
    env = os.environ.get("FASTNN_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


def load_benchmark_script(name: str):
    """The module ``benchmarks/<name>.py``, loaded from its file (the scripts are not a
    package that tests import)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not (root / "mnist").is_dir():
        message = f"real datasets not found under {root} (set FASTNN_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mnist_dir(shared_data) -> Path:
    return shared_data / "mnist"


@pytest.fixture(scope="session")
def fashion_mnist_dir(shared_data) -> Path:
    return shared_data / "fashion-mnist"


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run of fit_recipe.train: (flat params, history)."""
    from fit_recipe import train

    model, history = train()
    return model.flat_params.copy(), history
