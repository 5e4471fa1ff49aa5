"""Cases for the affine ops and batch normalisation, their fused activations included.

A backward op gets what its formula reads from a consistent forward by the reference in
float64, rounded to float32: the activation's output ``act_out`` (or ``relu_out``), and
batch norm's ``mean`` and ``var``.
"""

from __future__ import annotations

from ..backends import get_ops
from .case import Case, OpCases
from .draws import normal, positive, rounded
from .fused_variants import ACTIVATIONS, backward_keywords, gradient_keywords


def _affine_shapes(rng, large):
    """(N, D, M); large: at least a million multiply-adds (the kernels' parallel GEMM)."""
    if large:
        return int(rng.integers(64, 129)), int(rng.integers(96, 257)), int(rng.integers(96, 193))
    return tuple(int(v) for v in rng.integers(1, 17, size=3))


def _affine_inputs(rng, large):
    n, d, m = _affine_shapes(rng, large)
    return normal(rng, (n, d)), normal(rng, (d, m), scale=d**-0.5), normal(rng, (m,))


def _affine(rng, large, **fused):
    x, W, b = _affine_inputs(rng, large)
    return Case("affine", (x, W, b), dict(fused))


def _affine_backward(rng, large, input_grad=True, out=False, weight_grad=True, **fused):
    x, W, b = _affine_inputs(rng, large)
    kwargs = {}
    if fused:
        y = rounded(get_ops("numpy").affine(x, W, b, **fused))
        kwargs = backward_keywords(y, **fused)
    dy = normal(rng, (x.shape[0], W.shape[1]))
    kwargs.update(gradient_keywords(W.shape, input_grad, out, weight_grad))
    return Case("affine_backward", (dy, x, W), kwargs, outputs=("dx", "dW", "db"))


def _norm_shape(rng, large, images: bool) -> tuple[int, ...]:
    """(N, C, H, W) or (N, D), with at least 2 values per channel."""
    if images and large:
        return int(rng.integers(4, 9)), int(rng.integers(4, 17)), 10, 12
    if images:
        return tuple(int(v) for v in rng.integers((1, 1, 1, 2), (4, 5, 6, 6)))
    if large:
        return tuple(int(v) for v in rng.integers(64, 257, size=2))
    return int(rng.integers(2, 17)), int(rng.integers(1, 17))


def _norm_input(rng, large, images: bool):
    """x, off centre (the mean matters), and gamma and beta (C,)."""
    shape = _norm_shape(rng, large, images)
    x = rounded(normal(rng, shape, scale=2.0) + rng.uniform(-1, 1))
    return x, normal(rng, (shape[1],)), normal(rng, (shape[1],))


def _batchnorm(rng, large, images=False, activation=None, alpha=0.0):
    x, gamma, beta = _norm_input(rng, large, images)
    kwargs = {} if activation is None else {"activation": activation, "alpha": alpha}
    return Case("batchnorm", (x, gamma, beta), kwargs, outputs=("y", "mean", "var"))


def _batchnorm_backward(rng, large, images=False, activation=None, alpha=0.0):
    x, gamma, beta = _norm_input(rng, large, images)
    fused = {} if activation is None else {"activation": activation, "alpha": alpha}
    y, mean, var = (rounded(a) for a in get_ops("numpy").batchnorm(x, gamma, beta, **fused))
    kwargs = dict(fused)
    if activation not in (None, "identity"):
        kwargs["act_out"] = y
    dy = normal(rng, x.shape)
    return Case("batchnorm_backward", (dy, x, gamma, mean, var), kwargs, outputs=("dx", "dgamma", "dbeta"))


def _batchnorm_inference(rng, large, images=False):
    x, gamma, beta = _norm_input(rng, large, images)
    c = gamma.shape[0]
    return Case("batchnorm_inference", (x, gamma, beta, normal(rng, (c,)), positive(rng, (c,))))


def _batchnorm_inference_backward(rng, large, images=False):
    dy, gamma, _ = _norm_input(rng, large, images)
    return Case("batchnorm_inference_backward", (dy, gamma, positive(rng, gamma.shape)), outputs=("dx",))


_NORM_VARIANTS = tuple(
    dict(images=images, **fused)
    for fused in (
        {},
        {"activation": "identity"},
        {"activation": "relu"},
        {"activation": "sigmoid"},
        {"activation": "tanh"},
        {"activation": "leaky_relu", "alpha": 0.1},
    )
    for images in (False, True)
)

SPECS = {
    "affine": OpCases(_affine, ACTIVATIONS),
    "affine_backward": OpCases(
        _affine_backward, ACTIVATIONS + ({"input_grad": False}, {"out": True}, {"weight_grad": False})
    ),
    "batchnorm": OpCases(_batchnorm, _NORM_VARIANTS),
    "batchnorm_backward": OpCases(_batchnorm_backward, _NORM_VARIANTS),
    "batchnorm_inference": OpCases(_batchnorm_inference, ({"images": False}, {"images": True})),
    "batchnorm_inference_backward": OpCases(
        _batchnorm_inference_backward, ({"images": False}, {"images": True})
    ),
}

__all__ = ["SPECS"]
