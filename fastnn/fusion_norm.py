"""BatchNorm fusion: Conv2D or Dense, then BatchNorm, then an activation, as one unit.

:func:`match` is the planner's BatchNorm rule (:func:`fastnn.fusion.plan` asks it first):

=====================================================  ==========================
layers                                                 group
=====================================================  ==========================
Conv2D, BatchNorm[, ReLU | LeakyReLU | Sigmoid | Tanh   :class:`ConvBatchNorm`
| Identity]
Dense, BatchNorm[, the same activations]               :class:`DenseBatchNorm`
=====================================================  ==========================

**Training** (``forward(x, train=True)``): the convolution or affine op without an
activation, then one ``ops.batchnorm(z, ..., activation=f)``, which normalises and
applies f in the same pass; backward is one ``ops.batchnorm_backward(...,
activation=f, act_out=y)``, which takes f' from the output inside its reads, then the
convolution's or affine's backward op. The numbers are the layers' own, bit for bit
(the fused op calls the activation ops' scalars; ``tests/test_fusion_norm.py`` trains
both ways). The bias before BatchNorm is still added and its (zero up to rounding)
gradient still computed: skipping either would change the rounding of the unfused run.

**Inference** (``forward(x, train=False)``, so ``predict`` and ``evaluate``): BatchNorm
with its running statistics is an affine map per channel, which folds into the weights,
``W' = W * s``, ``b' = (b - running_mean) * s + beta``, ``s = gamma / sqrt(running_var
+ eps)`` per output channel, so the group is ONE convolution (or affine) with ReLU fused
into its store; another activation runs after it as its op (or inside the convolution,
where the backend's op takes ``activation=``). Folding rounds differently from the
layers run apart (float32: a few units in the last place of the output's scale). The
folded arrays are cached and recomputed whenever any of W, b, gamma, beta, the running
statistics or eps differ from the values they were folded from (an exact comparison
with a copy each call, so training steps, ``fnn.load``, checkpoint restores and writes
into ``params`` all invalidate them).
"""

from __future__ import annotations

import inspect

import numpy as np

from .fusion_base import FusedGroup
from .layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .layers.conv import Conv2D
from .layers.dense import Dense
from .layers.norm import BatchNorm

__all__ = ["ConvBatchNorm", "DenseBatchNorm", "NormGroup", "match"]

#: activation layer type -> the op name the fused batch norm op takes
ACTIVATIONS = {ReLU: "relu", LeakyReLU: "leaky_relu", Sigmoid: "sigmoid", Tanh: "tanh", Identity: "identity"}


def match(layers, i: int):
    """The BatchNorm group that starts at ``layers[i]``, or None.

    Conv2D or Dense, directly followed by BatchNorm, and by one activation layer of
    :data:`ACTIVATIONS` if the next layer is one (exact types: a subclass may differ).
    """
    layer = layers[i]
    if type(layer) not in (Conv2D, Dense) or i + 1 >= len(layers) or type(layers[i + 1]) is not BatchNorm:
        return None
    end = i + 2
    if end < len(layers) and type(layers[end]) in ACTIVATIONS:
        end += 1
    group = ConvBatchNorm if type(layer) is Conv2D else DenseBatchNorm
    return group(*layers[i:end])


def _accepts(op, name: str) -> bool:
    """Whether a backend op takes the keyword ``name`` (cached per op)."""
    key = (op.__func__ if hasattr(op, "__func__") else op, name)
    if key not in _ACCEPTS:
        _ACCEPTS[key] = name in inspect.signature(op).parameters
    return _ACCEPTS[key]


_ACCEPTS: dict = {}


class NormGroup(FusedGroup):
    """Conv2D or Dense (``layers[0]``), BatchNorm (``layers[1]``) and an optional activation.

    Subclasses give the linear op: :meth:`_linear` (forward, no activation, or with the
    inference activation) and :meth:`_linear_backward`, and how the fold scales W.
    """

    def __init__(self, *layers):
        super().__init__(*layers)
        act = layers[2] if len(layers) > 2 else None
        self.activation = ACTIVATIONS[type(act)] if act is not None else "identity"
        self.alpha = act.alpha if isinstance(act, LeakyReLU) else 0.0
        self._cache = None
        self._fold = None  # (sources, eps, W', b')

    @property
    def fused_activation(self):
        """The ``activation=`` argument of the batch norm ops: None when there is none."""
        return None if self.activation == "identity" else self.activation

    # -- training ----------------------------------------------------------------

    def forward(self, x, train=True):
        layer, bn = self.layers[0], self.layers[1]
        layer.check_input(x)
        if not train:
            self._cache = None
            return self._inference(x)
        W, b = layer.params["W"], layer.params["b"]
        z = self._linear(x, W, b)
        bn.check_input(z)
        act = self.fused_activation
        y, mean, var = bn.ops.batchnorm(
            z, bn.params["gamma"], bn.params["beta"], bn.eps, activation=act, alpha=self.alpha
        )
        bn.update_running_stats(mean, var)
        self._cache = (x, z, mean, var, y)
        return y

    def backward(self, dy, input_grad=True):
        bn = self.layers[1]
        x, z, mean, var, y = self._require_forward("_cache")
        act = self.fused_activation
        if dy.shape != y.shape:
            raise ValueError(f"{self.describe()}: expected dy of shape {y.shape}, got {dy.shape}")
        dz, dgamma, dbeta = bn.ops.batchnorm_backward(
            dy,
            z,
            bn.params["gamma"],
            mean,
            var,
            bn.eps,
            activation=act,
            act_out=None if act is None else y,
            alpha=self.alpha,
        )
        bn.grads["gamma"][...] = dgamma
        bn.grads["beta"][...] = dbeta
        return self._linear_backward(dz, x, input_grad)

    # -- inference: BatchNorm folded into the weights ----------------------------

    def folded(self):
        """(W', b'): the weights with BatchNorm's inference map folded in, recomputed
        when any source array or eps changed since the last fold."""
        layer, bn = self.layers[0], self.layers[1]
        sources = (
            layer.params["W"],
            layer.params["b"],
            bn.params["gamma"],
            bn.params["beta"],
            bn.running_mean,
            bn.running_var,
        )
        fold = self._fold
        if (
            fold is not None
            and fold[1] == bn.eps
            and all(a.dtype == s.dtype and np.array_equal(a, s) for a, s in zip(sources, fold[0]))
        ):
            return fold[2], fold[3]
        W, b, gamma, beta, mean, var = (a.astype(np.float64) for a in sources)
        scale = gamma / np.sqrt(var + bn.eps)
        dtype = layer.params["W"].dtype
        W_folded = np.ascontiguousarray(self._scale_weights(W, scale), dtype=dtype)
        b_folded = ((b - mean) * scale + beta).astype(dtype)
        self._fold = (tuple(a.copy() for a in sources), bn.eps, W_folded, b_folded)
        return W_folded, b_folded

    def _inference(self, x):
        W, b = self.folded()
        ops = self.layers[0].ops
        if self.activation in ("identity", "relu"):
            return self._linear(x, W, b, relu=self.activation == "relu")
        op = self._op()
        if _accepts(op, "activation") and (self.activation != "leaky_relu" or _accepts(op, "alpha")):
            extra = {"alpha": self.alpha} if self.activation == "leaky_relu" else {}
            return self._linear(x, W, b, activation=self.activation, **extra)
        y = self._linear(x, W, b)
        if self.activation == "leaky_relu":
            return ops.leaky_relu(y, self.alpha)
        return getattr(ops, self.activation)(y)


class ConvBatchNorm(NormGroup):
    """y = f(batchnorm(conv(x))): ``ops.conv2d`` then ``ops.batchnorm(..., activation=f)``
    in training; one convolution with folded weights (ReLU in its store) at inference."""

    def _op(self):
        return self.layers[0].ops.conv2d

    def _linear(self, x, W, b, **fused):
        conv = self.layers[0]
        return conv.ops.conv2d(x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl, **fused)

    def _linear_backward(self, dz, x, input_grad):
        conv = self.layers[0]
        dx, _, _ = conv.ops.conv2d_backward(
            dz,
            x,
            conv.params["W"],
            stride=conv.stride,
            pad=conv.pad,
            impl=conv.impl,
            input_grad=input_grad,
            out=(conv.grads["W"], conv.grads["b"]),
        )
        return dx

    @staticmethod
    def _scale_weights(W, scale):
        return W * scale[:, None, None, None]  # W (F, C, KH, KW): per output channel f


class DenseBatchNorm(NormGroup):
    """y = f(batchnorm(x @ W + b)): ``ops.affine`` then ``ops.batchnorm(..., activation=f)``
    in training; one affine with folded weights (ReLU in its store) at inference."""

    def _op(self):
        return self.layers[0].ops.affine

    def _linear(self, x, W, b, **fused):
        return self.layers[0].ops.affine(x, W, b, **fused)

    def _linear_backward(self, dz, x, input_grad):
        dense = self.layers[0]
        dx, _, _ = dense.ops.affine_backward(
            dz, x, dense.params["W"], input_grad=input_grad, out=(dense.grads["W"], dense.grads["b"])
        )
        return dx

    @staticmethod
    def _scale_weights(W, scale):
        return W * scale[None, :]  # W (D, M): per output feature m
