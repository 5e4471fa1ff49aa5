"""Cases for the convolution ops: conv2d (direct and im2col, every fused activation), its
backward (through an activation or a ReLU + max pooling), the fused conv + ReLU + 2x2
max pooling, im2col and col2im.

Shapes from :func:`~fastnn.verification.draws.conv_geometry`: odd sizes, non-square
kernels, strides 1 to 3 and pads. A backward op gets ``act_out`` / ``relu_out`` /
``pool=(argmax, pooled)`` from a consistent forward by the reference in float64.
"""

from __future__ import annotations

from ..backends import get_ops
from .case import Case, OpCases
from .draws import both, conv_geometry, normal, rounded
from .fused_variants import ACTIVATIONS, backward_keywords, gradient_keywords


def _output_extent(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _conv_inputs(rng, large, strides, min_out=1, even=False):
    """x, W, b and the keywords stride and pad (``strides``: see
    :func:`~fastnn.verification.draws.conv_geometry`); ``even``: output extents even (the
    fused pooling's own path)."""
    g = conv_geometry(rng, large, min_out=min_out, strides=strides)
    (sh, sw), (ph, pw) = both(g["stride"]), both(g["pad"])
    h, w = g["H"], g["W"]
    if even:
        h += sh * (_output_extent(h, g["KH"], sh, ph) % 2)
        w += sw * (_output_extent(w, g["KW"], sw, pw) % 2)
    x = normal(rng, (g["N"], g["C"], h, w))
    fan_in = g["C"] * g["KH"] * g["KW"]
    W = normal(rng, (g["F"], g["C"], g["KH"], g["KW"]), scale=fan_in**-0.5)
    return x, W, normal(rng, (g["F"],)), {"stride": g["stride"], "pad": g["pad"]}


def _conv2d(rng, large, impl="auto", strides="any", **fused):
    x, W, b, geometry = _conv_inputs(rng, large, strides)
    return Case("conv2d", (x, W, b), dict(geometry, impl=impl, **fused))


def _conv2d_backward(
    rng, large, impl="auto", strides="any", input_grad=True, out=False, pool=False, weight_grad=True, **fused
):
    x, W, b, geometry = _conv_inputs(rng, large, strides, min_out=2 if pool else 1)
    ref = get_ops("numpy")
    kwargs = dict(geometry, impl=impl)
    if pool:
        pooled, argmax = ref.conv2d_relu_maxpool2x2(x, W, b, **geometry)
        kwargs["pool"] = (argmax, rounded(pooled))
        dy = normal(rng, pooled.shape)
    else:
        y = rounded(ref.conv2d(x, W, b, **geometry, **fused))
        kwargs.update(backward_keywords(y, **fused))
        dy = normal(rng, y.shape)
    kwargs.update(gradient_keywords(W.shape, input_grad, out, weight_grad))
    return Case("conv2d_backward", (dy, x, W), kwargs, outputs=("dx", "dW", "db"))


def _conv2d_relu_maxpool2x2(rng, large, impl="auto", strides="any", even=False):
    x, W, b, geometry = _conv_inputs(rng, large, strides, min_out=2, even=even)
    values = get_ops("numpy").conv2d(x, W, b, **geometry, relu=True)
    return Case(
        "conv2d_relu_maxpool2x2",
        (x, W, b),
        dict(geometry, impl=impl),
        outputs=("pooled", "argmax"),
        argmax_values=values,
    )


def _im2col(rng, large):
    x, W, _, geometry = _conv_inputs(rng, large, "any")
    return Case("im2col", (x, W.shape[2], W.shape[3]), geometry, outputs=("col",))


def _col2im(rng, large):
    x, W, _, geometry = _conv_inputs(rng, large, "any")
    (sh, sw), (ph, pw) = both(geometry["stride"]), both(geometry["pad"])
    n, c, h, w = x.shape
    kh, kw = W.shape[2], W.shape[3]
    rows = n * _output_extent(h, kh, sh, ph) * _output_extent(w, kw, sw, pw)
    col = normal(rng, (rows, c * kh * kw))
    return Case("col2im", (col, x.shape, kh, kw), geometry, outputs=("x",))


# The algorithms: direct at stride 1 (its register-tiled kernels, where fused activations
# and pooling live), direct at other strides (a kernel of its own), im2col at any stride.
_DIRECT_UNIT = {"impl": "direct", "strides": "unit"}
_DIRECT_STRIDED = {"impl": "direct", "strides": "strided"}
_IM2COL = {"impl": "im2col", "strides": "any"}
_AUTO = {"impl": "auto", "strides": "any"}  # the default: direct at stride 1, else im2col
_BACKWARD_PATHS = tuple(v for v in ACTIVATIONS if v != {"activation": "relu"}) + (
    {"input_grad": False},
    {"out": True},
    {"pool": True},
    {"weight_grad": False},
)


def _variants(paths, strided_paths) -> tuple[dict, ...]:
    """Every path on direct at stride 1 and on im2col; ``strided_paths`` on strided direct;
    the default algorithm choice plainly."""
    return tuple(
        [dict(_DIRECT_UNIT, **p) for p in paths]
        + [dict(_DIRECT_STRIDED, **p) for p in strided_paths]
        + [dict(_IM2COL, **p) for p in paths]
        + [_AUTO]
    )


SPECS = {
    "conv2d": OpCases(_conv2d, _variants(ACTIVATIONS, ({}, {"activation": "tanh"}))),
    "conv2d_backward": OpCases(
        _conv2d_backward, _variants(_BACKWARD_PATHS, ({}, {"pool": True}, {"weight_grad": False}))
    ),
    "conv2d_relu_maxpool2x2": OpCases(
        _conv2d_relu_maxpool2x2,
        (dict(_DIRECT_UNIT, even=True), dict(_DIRECT_UNIT, even=False), _DIRECT_STRIDED, _IM2COL, _AUTO),
    ),
    "im2col": OpCases(_im2col),
    "col2im": OpCases(_col2im),
}

__all__ = ["SPECS"]
