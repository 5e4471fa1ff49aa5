"""benchmarks/compare_checkouts.py: which workloads it times, and with what model and inputs."""

import pytest

import fastnn
from benchmarks.compare_checkouts import ZOO, build, workloads


def test_without_zoo_names_it_times_both_calls_of_each_book_network():
    pairs = workloads(None)
    assert pairs == [(network, call) for network in ZOO for call in ("train_step", "predict")]


def test_zoo_names_keep_their_order_and_their_own_call():
    assert workloads(["resnet20", "predict_mlp", "mlp"]) == [
        ("resnet20", "train_step"),
        ("predict_mlp", "predict"),
        ("mlp", "train_step"),
    ]


def test_an_unknown_zoo_name_is_refused_with_the_known_ones():
    with pytest.raises(SystemExit, match="no zoo workload \\['resnet21'\\]"):
        workloads(["resnet20", "resnet21"])


def test_a_zoo_workload_is_built_at_its_own_batch_and_input_shape():
    model, batch, shape = build(fastnn, "resnet20", from_zoo=True)
    assert (batch, shape) == (64, (3, 32, 32))
    assert isinstance(model, fastnn.Sequential)
    model, batch, shape = build(fastnn, "lenet5", from_zoo=False)
    assert (batch, shape) == (100, (1, 28, 28))
