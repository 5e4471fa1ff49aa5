"""Every layer's forward(x, train) and backward(dy) mean one thing: no layer takes extra
arguments that change what it computes, and fused groups keep the same signatures."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastnn as fnn
from fastnn import fusion
from fastnn.layers import LAYERS

WEIGHTED = {"Dense", "Conv2D"}  # may skip the input gradient (the first layer's)


def parameters(function):
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_layer_has_the_one_forward_and_backward(name):
    cls = LAYERS[name]
    assert parameters(cls.forward) == [
        ("self", inspect.Parameter.empty),
        ("x", inspect.Parameter.empty),
        ("train", True),
    ]
    expected = [("self", inspect.Parameter.empty), ("dy", inspect.Parameter.empty)]
    if name in WEIGHTED:
        expected.append(("input_grad", True))
    assert parameters(cls.backward) == expected


@pytest.mark.parametrize(
    "cls", [fusion.DenseActivation, fusion.ConvActivation, fusion.ConvReLUMaxPool, fusion.ConvActivationPool]
)
def test_fused_groups_have_the_signatures_of_a_weighted_layer(cls):
    assert issubclass(cls, fusion.FusedGroup)
    assert parameters(cls.forward) == parameters(LAYERS["Dense"].forward)
    assert parameters(cls.backward) == parameters(LAYERS["Dense"].backward)


def test_a_fused_group_backward_before_forward_names_the_group():
    group = fnn.Sequential([fnn.Dense(3, 4), fnn.ReLU(), fnn.Dense(4, 2)], seed=0)._plan()[0]
    with pytest.raises(RuntimeError, match=r"Dense\(3->4\) \+ ReLU\(\): backward\(\) called before forward"):
        group.backward(np.zeros((1, 4), np.float32))
