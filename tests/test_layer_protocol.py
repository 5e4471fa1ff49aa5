"""Every layer's forward(x, train) and backward(dy) mean one thing: no layer takes extra
arguments that change what it computes, and fused groups keep the same signatures."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastnn as fnn
from fastnn import fusion
from fastnn.layers import LAYERS

WEIGHTED = {"Dense", "Conv2D", "Residual", "Concat"}  # may skip the input gradient (the first layer's)


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


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "apart"])
def test_inference_keeps_no_arrays_for_a_backward(fuse):
    """forward(train=False) (predict, evaluate) frees each layer's arrays as it goes: no layer
    or fused group keeps an input, output or argmax, and a backward after it is refused."""
    model = fnn.Sequential(
        [
            fnn.Conv2D(1, 4, 3, pad=1),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Conv2D(4, 4, 3, pad=1),
            fnn.Tanh(),
            fnn.AvgPool2D(2),
            fnn.Flatten(),
            fnn.Dense(4 * 2 * 2, 5),
            fnn.Sigmoid(),
            fnn.Dense(5, 3),
        ],
        seed=0,
    )
    model.fuse_layers = fuse
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    model.loss(x, np.array([0, 1]), train=True)  # a training forward keeps them
    model.predict(x)
    for unit in model._plan():
        kept = {k: v for k, v in vars(unit).items() if isinstance(v, np.ndarray) and k.startswith("_")}
        assert not kept, f"{unit!r} keeps {sorted(kept)} after inference"
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(train=True\)"):
        model._plan()[-1].backward(np.ones((2, 3), np.float32))
