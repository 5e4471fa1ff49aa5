"""Cases for the pooling ops: max, average and Lp pooling, forward and backward.

Windows from :func:`~fastnn.verification.draws.pool_geometry`: non-square, overlapping
(stride below the size, where the backward ops accumulate), padded, and the 2x2 stride-2
window of the kernels' fast paths on even and odd planes. ``maxpool2d_backward`` gets its
``argmax`` from the reference's forward on the same x, ``lppool2d_backward`` its y; Lp
pooling draws p from 2 (the L2 pooling, a kernel path of its own), 1 and 3.
"""

from __future__ import annotations

from ..backends import get_ops
from .case import Case, OpCases
from .draws import normal, pool_geometry


def _pool_inputs(rng, large, window):
    g = pool_geometry(rng, large, window)
    x = normal(rng, (g["N"], g["C"], g["H"], g["W"]))
    return x, {"size": g["size"], "stride": g["stride"], "pad": g["pad"]}


def _maxpool2d(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    return Case("maxpool2d", (x,), geometry, outputs=("y", "argmax"))


def _maxpool2d_backward(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    y, argmax = get_ops("numpy").maxpool2d(x, **geometry)
    return Case("maxpool2d_backward", (normal(rng, y.shape), argmax, x.shape), geometry, outputs=("dx",))


def _avgpool2d(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    return Case("avgpool2d", (x,), geometry)


def _avgpool2d_backward(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    y = get_ops("numpy").avgpool2d(x, **geometry)
    return Case("avgpool2d_backward", (normal(rng, y.shape), x.shape), geometry, outputs=("dx",))


def _norm_order(rng):
    return float(rng.choice([2.0, 2.0, 1.0, 3.0]))


def _lppool2d(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    return Case("lppool2d", (x,), {**geometry, "p": _norm_order(rng)})


def _lppool2d_backward(rng, large, window="any"):
    x, geometry = _pool_inputs(rng, large, window)
    geometry["p"] = _norm_order(rng)
    y = get_ops("numpy").lppool2d(x, **geometry)
    return Case("lppool2d_backward", (normal(rng, y.shape), x, y), geometry, outputs=("dx",))


# general windows twice as often as the 2x2 fast path: they have more shapes to meet
_WINDOWS = ({"window": "any"}, {"window": "any"}, {"window": "2x2"})

SPECS = {
    "maxpool2d": OpCases(_maxpool2d, _WINDOWS),
    "maxpool2d_backward": OpCases(_maxpool2d_backward, _WINDOWS),
    "avgpool2d": OpCases(_avgpool2d, _WINDOWS),
    "avgpool2d_backward": OpCases(_avgpool2d_backward, _WINDOWS),
    "lppool2d": OpCases(_lppool2d, _WINDOWS),
    "lppool2d_backward": OpCases(_lppool2d_backward, _WINDOWS),
}

__all__ = ["SPECS"]
