"""Sequential.summary(): rows, shapes, parameter counts, and the memory totals."""

import numpy as np
import pytest

import fastnn as fnn
from fastnn.model_summary import human_bytes


def rows_of(text):
    """{index: the row's cells split on runs of two spaces} of a summary table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        if cells and cells[0].replace(".", "").isdigit():
            rows[cells[0]] = cells[1:]
    return rows


def test_each_layer_has_its_output_shape_and_parameter_count():
    model = fnn.models.lenet5(seed=0)
    text = model.summary()
    rows = rows_of(text)
    assert len(rows) == len(model.layers)
    shape = model.input_shape
    for i, layer in enumerate(model.layers):
        shape = layer.output_shape(shape)
        description, shown, params = rows[str(i)]
        assert description == layer.describe()
        assert shown == "(N, " + ", ".join(map(str, shape)) + ")"
        assert int(params.replace(",", "")) == sum(p.size for p in layer.params.values())
    assert "input: (N, 1, 28, 28)" in text
    assert f"total params: {model.num_params:,d} (trainable {model.num_params:,d}, frozen 0)" in text


def test_the_memory_totals_count_parameters_and_every_layer_output():
    model = fnn.Sequential([fnn.Flatten(), fnn.Dense(12, 5), fnn.ReLU(), fnn.Dense(5, 2)], dtype="float64")
    text = model.summary(batch_size=10, input_shape=(3, 4))
    params = 12 * 5 + 5 + 5 * 2 + 2
    assert f"parameter memory: {human_bytes(params * 8)} (float64)" in text
    outputs = 12 + 5 + 5 + 2  # Flatten, Dense, ReLU, Dense, per sample
    assert f"activation memory at batch 10: {human_bytes(outputs * 10 * 8)}" in text
    assert human_bytes(1536) == "1.50 KiB" and human_bytes(100) == "100 B"
    assert human_bytes(3 * 2**20) == "3.00 MiB"


def test_an_unknown_input_shape_shows_question_marks_and_still_counts_parameters():
    model = fnn.models.mlp(seed=0)
    text = model.summary()
    rows = rows_of(text)
    assert rows["1"] == ["Dense(784->100)", "?", "78,500"]
    assert "input: unknown" in text and "activation memory at batch 1: ?" in text
    assert rows_of(model.summary(input_shape=(784,)))["1"] == ["Dense(784->100)", "(N, 100)", "78,500"]
    with pytest.raises(ValueError, match="Sequential.summary: batch_size"):
        model.summary(batch_size=0)


def test_batchnorm_running_statistics_are_counted_as_buffers():
    model = fnn.Sequential([fnn.Dense(4, 6), fnn.BatchNorm(6)], input_shape=(4,))
    text = model.summary()
    assert "total params: 42 (" in text  # W 24 + b 6 + gamma 6 + beta 6
    buffers = sum(b.size for b in model.layers[1].buffers.values())
    assert f"plus {human_bytes(buffers * 4)} of buffers" in text


def test_a_block_shows_its_sublayers_indented_and_counts_their_parameters():
    block = fnn.Residual([fnn.Dense(4, 4), fnn.ReLU()])
    model = fnn.Sequential([block, fnn.Dense(4, 2)], input_shape=(4,))
    rows = rows_of(model.summary())
    assert rows["0"] == ["Residual(body 2 layers, shortcut identity)", "(N, 4)", "20"]
    assert rows["0.0.0"] == ["Dense(4->4)", "(N, 4)", "20"]
    line = next(line for line in model.summary().splitlines() if line.startswith("0.0.1"))
    assert "  ReLU()" in line  # indented below its block
    assert np.array_equal(list(rows), ["0", "0.0.0", "0.0.1", "1"])
