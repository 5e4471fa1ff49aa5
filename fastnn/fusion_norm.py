"""BatchNorm fusion: Conv2D or Dense, then BatchNorm, then an activation, as one unit.

:func:`match` is the planner's BatchNorm rule (:func:`fastnn.fusion.plan` asks it first):

=====================================================  ==========================
layers                                                 group
=====================================================  ==========================
Conv2D, BatchNorm, ReLU, MaxPool2D                      :class:`ConvBatchNorm`
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

**Frozen** BatchNorm (``trainable = False``): a training pass runs the group's layers one
by one, BatchNorm in its inference form (running statistics, used and kept), so the numbers
are those of ``fuse_layers = False``; a frozen Conv2D or Dense alone fuses as usual, its
weight gradient skipped (``weight_grad=False``). Both are decided at each pass.

**Inference** (``forward(x, train=False)``, so ``predict`` and ``evaluate``): BatchNorm
with its running statistics is an affine map per channel, which folds into the weights,
``W' = W * s``, ``b' = (b - running_mean) * s + beta``, ``s = gamma / sqrt(running_var
+ eps)`` per output channel, so the group is ONE convolution (or affine) with ReLU fused
into its store; another activation runs after it as its op (or inside the convolution,
where the backend's op takes ``activation=``); a max pooling after the ReLU runs as its
op after the convolution (pooling inside the convolution kernel,
``ops.conv2d_relu_maxpool2x2``, measured slower at inference on VGG's 16x16 and 32x32
planes at batch 256). In training the pooling is its layer's op pair. The fold runs when the batch has at
least as many outputs per channel as a weight column has inputs (always for the
convolutions of image networks; for a Dense layer, a batch at least as large as its input
width), since checking that the fold is current reads all of W; otherwise the layers'
inference ops run one after the other. Folding rounds differently from the
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
from .layers.conv import Conv2D, conv_backward
from .layers.dense import Dense, dense_backward
from .layers.norm import BatchNorm
from .layers.pool import MaxPool2D

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
    if layers[i + 1].sync:  # its statistics come from every rank: it runs on its own
        return None
    end = i + 2
    if end < len(layers) and type(layers[end]) in ACTIVATIONS:
        end += 1
        relu = type(layers[end - 1]) is ReLU
        if relu and type(layer) is Conv2D and end < len(layers) and type(layers[end]) is MaxPool2D:
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
        #: a MaxPool2D after the ReLU (ConvBatchNorm only), or None
        self.pool = layers[3] if len(layers) > 3 else None
        self.activation = ACTIVATIONS[type(act)] if act is not None else "identity"
        self.alpha = act.alpha if isinstance(act, LeakyReLU) else 0.0
        self._cache = None
        self._apart = False  # whether the last training pass ran the layers one by one (frozen BN)
        self._fold = None  # (sources, eps, W', b')

    @property
    def fused_activation(self):
        """The ``activation=`` argument of the batch norm ops: None when there is none."""
        return None if self.activation == "identity" else self.activation

    # -- training ----------------------------------------------------------------

    def writes_into(self, train=True) -> bool:
        """Whether :meth:`forward_into` can run: a training pass of the fused op (not a frozen
        BatchNorm's run apart, no pooling after it)."""
        return train and self.pool is None and not self.layers[1].frozen

    def forward_into(self, x, out):
        """A training forward whose output the batch norm op writes into ``out`` (an array of
        the output's shape, such as a ``Concat`` block's channel slice, which the op's kernel
        writes in place), returned: the numbers of ``forward(x, train=True)``."""
        if not self.writes_into(True):
            raise ValueError(
                f"{self.describe()}: forward_into is for a training pass of the fused op, without "
                "a frozen BatchNorm or a pooling after it (see writes_into)"
            )
        return self._forward(x, True, out)

    def forward(self, x, train=True):
        return self._forward(x, train, None)

    def _forward(self, x, train, out, residual=None):
        """The group's forward; in training with a ``residual`` (see :meth:`add_relu`), relu(y
        + residual) from the batch norm kernel instead of y."""
        layer, bn = self.layers[0], self.layers[1]
        layer.check_input(x)
        self._apart = train and bn.frozen
        if not train or self._apart:
            self._cache = None
            return self._run_apart(x) if self._apart else self._inference(x)
        W, b = layer.params["W"], layer.params["b"]
        z = self._linear(x, W, b)
        bn.check_input(z)
        act, extra = (self.fused_activation, {}) if residual is None else ("relu", {"residual": residual})
        gamma, beta = bn.params["gamma"], bn.params["beta"]
        y, mean, var = bn.ops.batchnorm(
            z, gamma, beta, bn.eps, activation=act, alpha=self.alpha, out=out, **extra
        )
        bn.update_running_stats(mean, var)
        self._cache = (x, z, mean, var, y)
        if self.pool is None:
            return y
        pool = self.pool
        pool.check_input(y)
        pooled, self._argmax = pool.ops.maxpool2d(y, pool.size, stride=pool.stride, pad=pool.pad)
        return pooled

    def backward(self, dy, input_grad=True):
        bn = self.layers[1]
        if self._apart:
            for layer in reversed(self.layers[1:]):
                dy = layer.backward(dy)
            return self.layers[0].backward(dy, input_grad=input_grad)
        x, z, mean, var, y = self._require_forward("_cache")
        act = self.fused_activation
        if self.pool is not None:
            pool = self.pool
            dy = pool.ops.maxpool2d_backward(
                dy, self._argmax, y.shape, pool.size, stride=pool.stride, pad=pool.pad
            )
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

    def _run_apart(self, x):
        """A training pass with a frozen BatchNorm: the layers one by one (BatchNorm in its
        inference form), bit-identical to the model run with ``fuse_layers = False``."""
        for layer in self.layers:
            x = layer.forward(x, train=True)
        return x

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

    def folds_for(self, x) -> bool:
        """Whether inference on x folds: when its outputs per channel (N, times OH*OW for a
        convolution) are at least the fan-in of a weight column. The fold's staleness check
        reads W and its copy, about 2 * W.size values; the BatchNorm and activation passes
        it saves touch about 4 values per output. Below that (a Dense layer on a batch
        smaller than its input width) the layers' own ops run."""
        W = self.layers[0].params["W"]
        channels = self._out_channels()
        if channels != self.layers[1].num_features:
            return False  # the layers' ops then say what does not fit
        return self._outputs_per_channel(x) >= W.size // channels

    def _inference(self, x):
        if not self.folds_for(x):
            return self._pooled(self._inference_apart(x))
        W, b = self.folded()
        if self.pool is not None:
            return self._pooled(self._linear(x, W, b, relu=True))
        if self.activation in ("identity", "relu"):
            return self._linear(x, W, b, relu=self.activation == "relu")
        op = self._op()
        if _accepts(op, "activation") and (self.activation != "leaky_relu" or _accepts(op, "alpha")):
            extra = {"alpha": self.alpha} if self.activation == "leaky_relu" else {}
            return self._linear(x, W, b, activation=self.activation, **extra)
        return self._activate(self._linear(x, W, b))

    def add_relu(self, x, residual, train=True):
        """relu(self(x) + residual), for the last group of a residual block's body followed
        by its ReLU (:class:`fastnn.fusion.ResidualReLU`), when a pass over the group's
        output can take the sum and the ReLU: in training the batch norm kernel's on a
        convolution's output (``batchnorm(..., activation="relu", residual=...)``; the
        group keeps what its backward needs, which is the sum's gradient), at inference a
        folded convolution's store (``conv2d(..., relu=True, residual=...)``). None (nothing
        computed) otherwise, and the caller runs the group and then ``add_relu``. The
        numbers are those of that pair, bit for bit."""
        if not (self.pool is None and self.activation == "identity"):
            return None
        if train:
            bn = self.layers[1]
            images = isinstance(self.layers[0], Conv2D)  # (N, D) rows: the op adds in a pass of its own
            if not (images and self.writes_into(True) and _accepts(bn.ops.batchnorm, "residual")):
                return None
            return self._forward(x, True, None, residual)
        if not _accepts(self._op(), "residual"):
            return None
        self.layers[0].check_input(x)
        if not self.folds_for(x):
            return None
        self._apart, self._cache = False, None  # as forward(x, train=False): nothing kept
        W, b = self.folded()
        return self._linear(x, W, b, relu=True, residual=residual)

    def _inference_apart(self, x):
        """The layers' inference ops one after the other (no fold): bit-identical to them."""
        layer, bn = self.layers[0], self.layers[1]
        z = self._linear(x, layer.params["W"], layer.params["b"])
        bn.check_input(z)
        y = bn.ops.batchnorm_inference(
            z, bn.params["gamma"], bn.params["beta"], bn.running_mean, bn.running_var, bn.eps
        )
        return self._activate(y)

    def _pooled(self, y):
        """The max pooling layer's op on y (y itself without one)."""
        if self.pool is None:
            return y
        pool = self.pool
        pool.check_input(y)
        return pool.ops.maxpool2d(y, pool.size, stride=pool.stride, pad=pool.pad)[0]

    def _activate(self, y):
        """The activation layer's op on y (y itself without one)."""
        ops = self.layers[0].ops
        if self.activation == "identity":
            return y
        if self.activation == "leaky_relu":
            return ops.leaky_relu(y, self.alpha)
        return getattr(ops, self.activation)(y)


class ConvBatchNorm(NormGroup):
    """y = f(batchnorm(conv(x))) (then a max pooling, for f = ReLU): ``ops.conv2d`` then
    ``ops.batchnorm(..., activation=f)`` in training; one convolution with folded weights
    (ReLU in its store) at inference."""

    def _op(self):
        return self.layers[0].ops.conv2d

    def _out_channels(self):
        return self.layers[0].out_channels

    def _outputs_per_channel(self, x):
        conv = self.layers[0]
        _, OH, OW = conv.output_shape(x.shape[1:])
        return len(x) * OH * OW

    def _linear(self, x, W, b, **fused):
        conv = self.layers[0]
        return conv.ops.conv2d(x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl, **fused)

    def _linear_backward(self, dz, x, input_grad):
        return conv_backward(self.layers[0], dz, x, input_grad)

    @staticmethod
    def _scale_weights(W, scale):
        return W * scale[:, None, None, None]  # W (F, C, KH, KW): per output channel f


class DenseBatchNorm(NormGroup):
    """y = f(batchnorm(x @ W + b)): ``ops.affine`` then ``ops.batchnorm(..., activation=f)``
    in training; one affine with folded weights (ReLU in its store) at inference."""

    def _op(self):
        return self.layers[0].ops.affine

    def _out_channels(self):
        return self.layers[0].out_features

    def _outputs_per_channel(self, x):
        return len(x)

    def _linear(self, x, W, b, **fused):
        return self.layers[0].ops.affine(x, W, b, **fused)

    def _linear_backward(self, dz, x, input_grad):
        return dense_backward(self.layers[0], dz, x, input_grad)

    @staticmethod
    def _scale_weights(W, scale):
        return W * scale[None, :]  # W (D, M): per output feature m
