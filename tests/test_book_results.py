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


def fake_member(seed: int, classes, minutes: float = 90.0) -> dict:
    return {
        "seed": seed,
        "measured": 99.0 + seed / 10,
        "fastnn_seconds": 60.0 * minutes,
        "numpy_seconds": 600.0 * minutes,
        "load_average": [1.0 + seed, 2.0 + seed],
        "date": f"2026-12-0{seed + 1}",
        "test_votes": book_results.votes_text(classes),
    }


def test_the_ensemble_row_is_the_majority_vote_of_five_members_trained_apart():
    """Five members' votes on six test images, the first from the dropout row (seed 0): the
    row waits for the fifth, then scores the vote; a member rerun replaces its record."""
    recipe = book_results.BY_KEY[book_results.ENSEMBLE_KEY]
    t_test = np.array([0, 1, 2, 3, 4, 5])
    votes = np.array(
        [
            [0, 1, 2, 3, 4, 9],
            [0, 1, 7, 3, 8, 9],
            [0, 7, 2, 3, 8, 5],
            [1, 1, 7, 3, 8, 5],
            [0, 7, 2, 9, 8, 6],
        ]
    )
    first = {**fake_member(0, votes[0]), "status": "run", "numpy_how": "extrapolated", "threads": 2}
    first["machine"] = "x86_64, 2 cores"
    others = [fake_member(seed, votes[seed]) for seed in range(1, 5)]

    partial = book_results.ensemble_entry(recipe, first, others[:3], t_test)
    assert partial["status"] == "not run" and [m["seed"] for m in partial["members"]] == [1, 2, 3]
    progress = "3 of the 4 members besides seed 0 trained: seed 1 {:.2f} %, seed 2 {:.2f} %, seed 3 {:.2f} %"
    accuracies = [m["measured"] for m in others[:3]]
    assert progress.format(*accuracies) in book_results.render_table([partial])

    stale = fake_member(4, np.zeros(6, np.int64))
    entry = book_results.ensemble_entry(recipe, first, [stale, *others[::-1]], t_test)
    majority = [0, 1, 2, 3, 8, 5]  # image 5: 9, 9, 5, 5, 6 is a tie of 5 and 9, to the smaller
    assert entry["status"] == "run" and entry["seeds"] == [0, 1, 2, 3, 4]
    assert entry["measured"] == round(100.0 * np.mean(np.equal(majority, t_test)), 2) == 83.33
    assert entry["fastnn_seconds"] == pytest.approx(5 * 5400.0)
    assert entry["load_average"] == [1.0, 6.0] and entry["date"] == "2026-12-05"
    assert [m["seed"] for m in entry["members"]] == [1, 2, 3, 4]  # seed 0 stays in the dropout row
    assert book_results.within_tolerance({**entry, "measured": entry["book"]})
    assert "83.33 % (seeds 0-4, 40 epochs" in book_results.render_table([entry])

    unrun_first = {**first, "status": "not run"}
    assert book_results.ensemble_entry(recipe, unrun_first, others, t_test)["status"] == "not run"
    assert book_results.ensemble_entry(recipe, first, others, None)["status"] == "not run"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--only", "nielsen_ensemble"], "one member at a time"),
        (["--ensemble-member", "0"], "SEED must be 1-4, got 0"),
        (["--ensemble-member", "5"], "SEED must be 1-4, got 5"),
    ],
)
def test_the_ensemble_is_trained_one_member_at_a_time(argv, message, capsys):
    with pytest.raises(SystemExit):
        book_results.main(argv)
    assert message in capsys.readouterr().err


def test_the_recorded_votes_give_the_recorded_accuracy(mnist_dir):
    """A member's test_votes are its predictions: scored against the real test labels, they
    give the accuracy its row reports."""
    _, (_, t_test) = fnn.datasets.load_mnist("mnist", path=mnist_dir.parent, download=False, verbose=False)
    with_votes = [e for e in ENTRIES if "test_votes" in e] + [
        m for e in ENTRIES for m in e.get("members", [])
    ]
    for entry in with_votes:
        classes = book_results.votes_classes(entry["test_votes"])
        assert len(classes) == len(t_test)
        assert round(100.0 * float(np.mean(classes == t_test)), 2) == entry["measured"], entry["seed"]
    ensemble = next(e for e in ENTRIES if e["key"] == book_results.ENSEMBLE_KEY)
    if ensemble["status"] == "run":
        first = next(e for e in ENTRIES if e["key"] == book_results.ENSEMBLE_MEMBER_KEY)
        again = book_results.ensemble_entry(
            book_results.BY_KEY[book_results.ENSEMBLE_KEY], first, ensemble["members"], t_test
        )
        assert again["measured"] == ensemble["measured"]


def test_rewriting_the_table_keeps_the_runs_and_the_ensemble_members(tmp_path, monkeypatch):
    """--table-only on a JSON whose unrun rows carry stale notes: the run rows stay as they
    are, the unrun ones take the recipes' text, and the ensemble keeps its members."""
    entries = json.loads(json.dumps(ENTRIES))
    ensemble = next(e for e in entries if e["key"] == book_results.ENSEMBLE_KEY)
    if ensemble["status"] == "run":  # the committed row is complete: make it a partial one again
        ensemble.clear()
        ensemble.update(book_results.not_run(book_results.BY_KEY[book_results.ENSEMBLE_KEY]))
    runs = [e for e in entries if e["status"] == "run"]
    member = fake_member(2, np.arange(10) % 10)
    ensemble.update(notes="stale", members=[member])
    json_path, md_path = tmp_path / "results.json", tmp_path / "results.md"
    json_path.write_text(json.dumps(entries))
    md_path.write_text(f"# page\n{book_results.TABLE_BEGIN}\nold\n{book_results.TABLE_END}\nafter\n")
    monkeypatch.setattr(book_results, "JSON_PATH", json_path)
    monkeypatch.setattr(book_results, "MD_PATH", md_path)
    assert book_results.main(["--table-only"]) == 0
    rewritten = json.loads(json_path.read_text())
    assert [e for e in rewritten if e["status"] == "run"] == runs
    again = next(e for e in rewritten if e["key"] == book_results.ENSEMBLE_KEY)
    assert again["notes"] == book_results.BY_KEY[book_results.ENSEMBLE_KEY].notes
    assert again["members"] == [member]
    page = md_path.read_text()
    assert page.startswith("# page\n") and page.endswith("after\n")
    assert "besides seed 0 trained: seed 2 99.20 %" in page
