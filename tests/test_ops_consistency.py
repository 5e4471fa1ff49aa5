"""The Numba backend is a drop-in for the NumPy reference (after thinc's test_ops_consistency).

NumbaOps subclasses NumpyOps and overrides the hot ops; it must add no public
name, keep every signature (names, order, kinds, defaults) and really override
every op of the reference, so a fast path cannot silently vanish: an op the
reference gains must be added to MUST_OVERRIDE, or to FALLBACK_OK with the reason
the NumPy reference is good enough for it.
"""

from __future__ import annotations

import inspect

import pytest

from fastnn.backends import BACKENDS, NumbaOps, NumpyOps, get_ops

# Every op of the reference, by family: NumbaOps must define these itself.
MUST_OVERRIDE = [
    # affine
    "affine",
    "affine_backward",
    # activations
    "identity",
    "identity_backward",
    "heaviside",
    "heaviside_backward",
    "sigmoid",
    "sigmoid_backward",
    "tanh",
    "tanh_backward",
    "relu",
    "relu_backward",
    "add_relu",
    "add",
    "concat_channels",
    "channel_slice",
    "leaky_relu",
    "leaky_relu_backward",
    "softmax",
    "softmax_backward",
    # losses
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_backward",
    "mse",
    "mse_backward",
    # finite
    "all_finite",
    # dropout
    "dropout",
    # optim
    "sgd_step",
    "momentum_step",
    "nesterov_step",
    "adagrad_step",
    "rmsprop_step",
    "adam_step",
    "adamw_step",
    # conv
    "conv2d",
    "conv2d_backward",
    "conv2d_relu_maxpool2x2",
    "im2col",
    "col2im",
    # pool
    "maxpool2d",
    "maxpool2d_backward",
    "avgpool2d",
    "avgpool2d_backward",
    "lppool2d",
    "lppool2d_backward",
    # norm
    "batchnorm",
    "batchnorm_backward",
    "batchnorm_inference",
    "batchnorm_inference_backward",
]

# Reference ops the Numba backend may leave to NumPy: name -> why that is good enough.
# Empty: every op has a Numba implementation.
FALLBACK_OK: dict[str, str] = {}


def public_names(cls) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def public_methods(cls) -> list[str]:
    return sorted(name for name in public_names(cls) if callable(getattr(cls, name)))


def defining_class(cls, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def numba_only_classes() -> list[type]:
    """The classes in NumbaOps' MRO that are not part of the reference."""
    return [klass for klass in NumbaOps.__mro__ if klass not in NumpyOps.__mro__]


def parameters(function) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_numba_adds_no_public_name():
    assert public_names(NumbaOps) - public_names(NumpyOps) == set()


def test_numba_subclasses_the_reference():
    assert issubclass(NumbaOps, NumpyOps)


@pytest.mark.parametrize("name", public_methods(NumbaOps))
def test_signature_matches_reference(name):
    fast, ref = getattr(NumbaOps, name), getattr(NumpyOps, name)
    # Names, order, kinds and defaults, listed so that a failure shows the difference.
    assert parameters(fast) == parameters(ref)
    assert inspect.signature(fast) == inspect.signature(ref)
    # A staticmethod in one and a plain method in the other would bind differently.
    fast_kind = type(inspect.getattr_static(NumbaOps, name))
    ref_kind = type(inspect.getattr_static(NumpyOps, name))
    assert fast_kind is ref_kind


def test_every_override_exists_in_reference():
    defined = {
        name: klass.__name__
        for klass in numba_only_classes()
        for name in vars(klass)
        if not name.startswith("_")
    }
    assert defined, "NumbaOps overrides nothing?"
    missing = {name: where for name, where in defined.items() if not hasattr(NumpyOps, name)}
    assert missing == {}
    for name in defined:
        assert callable(getattr(NumpyOps, name)) == callable(getattr(NumbaOps, name)), name


@pytest.mark.parametrize("name", MUST_OVERRIDE)
def test_numba_overrides_hot_op(name):
    assert hasattr(NumpyOps, name), f"{name} is not a reference op"
    owner = defining_class(NumbaOps, name)
    assert owner in numba_only_classes(), f"NumbaOps.{name} falls back to {owner.__name__}"
    assert getattr(NumbaOps, name) is not getattr(NumpyOps, name)


@pytest.mark.parametrize("name", MUST_OVERRIDE)
def test_override_is_documented(name):
    assert inspect.getdoc(getattr(NumbaOps, name))


def test_every_reference_op_is_listed():
    """A public op added to the reference must be named in MUST_OVERRIDE or FALLBACK_OK."""
    unlisted = set(public_methods(NumpyOps)) - set(MUST_OVERRIDE) - set(FALLBACK_OK)
    assert unlisted == set(), f"ops in neither MUST_OVERRIDE nor FALLBACK_OK: {sorted(unlisted)}"


def test_override_lists_are_consistent():
    assert len(MUST_OVERRIDE) == len(set(MUST_OVERRIDE)), "MUST_OVERRIDE names an op twice"
    assert set(MUST_OVERRIDE) & set(FALLBACK_OK) == set()
    for name, reason in FALLBACK_OK.items():
        assert hasattr(NumpyOps, name), f"{name} is not a reference op"
        assert reason.strip(), f"FALLBACK_OK[{name!r}] gives no reason"
        # an exception that gained a Numba implementation belongs in MUST_OVERRIDE
        assert defining_class(NumbaOps, name) not in numba_only_classes(), name


# ----------------------------------------------------------------- get_ops


@pytest.mark.parametrize("name, cls", [("numpy", NumpyOps), ("numba", NumbaOps)])
def test_get_ops_returns_shared_instance(name, cls):
    ops = get_ops(name)
    assert type(ops) is cls
    assert ops.name == name
    assert get_ops(name) is ops


def test_get_ops_default_is_numba():
    assert get_ops() is get_ops("numba")


def test_get_ops_passes_an_ops_object_through():
    for name in BACKENDS:
        assert get_ops(get_ops(name)) is get_ops(name)


@pytest.mark.parametrize("bad", ["cuda", "Numba ", "", None, 3])
def test_get_ops_rejects_unknown_backend(bad):
    with pytest.raises(ValueError) as info:
        get_ops(bad)
    message = str(info.value)
    assert "numpy" in message and "numba" in message
    assert repr(bad) in message
