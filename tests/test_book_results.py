"""docs/results.json and docs/results.md: the books' results as benchmarks/book_results.py
measured them. Each committed figure must lie within its stated tolerance of the book's, and
the table on the page must be the one the JSON makes (the script is the only writer)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from conftest import REPO

import fastnn as fnn


def load_script():
    spec = importlib.util.spec_from_file_location("book_results", REPO / "benchmarks" / "book_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["book_results"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


book_results = load_script()
ENTRIES = json.loads((REPO / "docs" / "results.json").read_text())
RUN = [e for e in ENTRIES if e["status"] == "run"]


def test_the_json_has_one_entry_per_recipe_in_order():
    assert [e["key"] for e in ENTRIES] == [recipe.key for recipe in book_results.RECIPES]
    for entry, recipe in zip(ENTRIES, book_results.RECIPES):
        assert entry["book"] == recipe.book and entry["tolerance"] == recipe.tolerance, entry["key"]
    assert {"dlfs_two_layer_net", "dlfs_optimizer_comparison"} <= {e["key"] for e in RUN}


@pytest.mark.parametrize("entry", RUN, ids=[e["key"] for e in RUN])
def test_each_reproduced_figure_is_within_its_tolerance_of_the_books(entry):
    assert entry["seed"] == 0 and entry["fastnn_seconds"] > 0 and entry["numpy_seconds"] > 0
    if entry["key"] == "dlfs_optimizer_comparison":
        losses = entry["final_loss"]
        assert set(losses) == {"SGD", "Momentum", "AdaGrad", "Adam"}
        assert all(losses["SGD"] >= 2 * loss for name, loss in losses.items() if name != "SGD"), losses
    else:
        assert abs(entry["measured"] - entry["book"]) <= entry["tolerance"], entry
    assert book_results.within_tolerance(entry)


def test_the_page_shows_the_table_the_json_makes():
    page = (REPO / "docs" / "results.md").read_text()
    table = page.split(book_results.TABLE_BEGIN)[1].split(book_results.TABLE_END)[0]
    assert table.strip() == book_results.render_table(ENTRIES)
    assert table.count("\n| ") == 2 + len(ENTRIES)  # the header, its rule, one row per entry


def test_within_tolerance_refuses_a_figure_outside_it():
    entry = {"key": "x", "book": 98.0, "tolerance": 0.5, "measured": 97.4}
    assert not book_results.within_tolerance(entry)
    assert book_results.within_tolerance({**entry, "measured": 98.5})
    losses = {"SGD": 0.3, "Momentum": 0.1, "AdaGrad": 0.05, "Adam": 0.2}
    assert not book_results.within_tolerance({"key": "dlfs_optimizer_comparison", "final_loss": losses})


def test_nielsens_recipes_convert_his_hyperparameters():
    model, optimizer = book_results.nielsen_network("numpy")
    assert [layer.describe() for layer in model.layers][1:] == [
        "Dense(784->30)",
        "Sigmoid()",
        "Dense(30->10)",
        "Sigmoid()",
    ]
    assert isinstance(model.loss_fn, fnn.MeanSquaredError) and optimizer.lr == 3.0
    assert model.layers[1].params["W"].std() == pytest.approx(1.0, rel=0.02)  # his N(0, 1)

    model, optimizer = book_results.nielsen_network2("numpy")
    assert isinstance(model.loss_fn, fnn.SigmoidCrossEntropy)
    assert optimizer.lr == 0.5 and optimizer.weight_decay == pytest.approx(5.0 / 50_000)
    assert model.layers[1].params["W"].std() == pytest.approx(1 / np.sqrt(784), rel=0.02)


def test_nielsens_l2_step_equals_fastnns_weight_decay_step():
    """One SGD step of Nielsen's network2 update, w <- (1 - eta lambda / n) w - eta g, against
    fastnn's SGD(lr=eta, weight_decay=lambda / n) on the same gradient."""
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(50), rng.standard_normal(50)
    eta, lam, n = 0.5, 5.0, 50_000
    nielsen = (1 - eta * lam / n) * w - eta * g
    params = w.copy()
    fnn.optim.SGD(lr=eta, weight_decay=lam / n).apply(fnn.get_ops("numpy"), params, g.copy())
    np.testing.assert_allclose(params, nielsen, rtol=1e-12)
