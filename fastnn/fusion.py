"""Layer fusion: which neighbouring layers of a model run as one kernel.

:func:`plan` turns a model's layers into the *units* a pass runs in order: a layer on
its own, or a :class:`FusedGroup` that runs a few consecutive layers through one op
call with those layers' own ``params`` and ``grads``. An *activation* below is ReLU,
Sigmoid, Tanh or LeakyReLU; the rules, first match wins:

==================================================  ===================================
layers                                              group
==================================================  ===================================
Conv2D, ReLU, MaxPool2D (2x2 windows, stride 2)     :class:`ConvReLUMaxPool`, pooling
                                                    inside the convolution kernel
Conv2D, ReLU, MaxPool2D (any other)                 :class:`ConvReLUMaxPool`, pooling
                                                    after it; one backward kernel
Conv2D, [activation], MaxPool2D or AvgPool2D        :class:`ConvActivationPool`
Conv2D, activation                                  :class:`ConvActivation`
Dense, activation                                   :class:`DenseActivation`
Residual, ReLU                                      :class:`ResidualReLU`: the sum and
                                                    the ReLU in one pass
==================================================  ===================================

The BatchNorm rules come first: Conv2D or Dense, BatchNorm and an activation (or none)
run as one group of :mod:`fastnn.fusion_norm` (see :func:`fastnn.fusion_norm.match`).

A frozen layer (``trainable = False``) fuses as before: the backward ops skip its weight
gradient (``weight_grad=False``). The groups read the flag at each pass, so changing it
between steps needs no new plan.

A fused activation is applied in the kernel's store (``ops.conv2d(...,
activation=...)``, ``ops.affine(..., activation=...)``: ReLU in the convolution's
register tiles, the others on each image's output while it is in cache) and its
gradient in the backward kernel's reads (``act_out=y``); a fused max pooling after a
ReLU routes the gradient back inside the convolution's backward kernel
(``ops.conv2d_backward(..., pool=(argmax, pooled))``). The numbers are the ones the
layers give run one by one, bit for bit (each fused kernel calls the activation op's
own scalar code, :func:`fastnn.kernels.activations.activate`): ``model.fuse_layers =
False`` runs them apart, and ``tests/test_fusion.py`` trains both ways and compares
the weights.

A unit's ``forward(x, train)`` and ``backward(dy)`` mean what a layer's do. The units
listed by :func:`first_weighted_unit` also take ``backward(dy, input_grad=False)``.
"""

from __future__ import annotations

from . import fusion_norm
from .fusion_base import FusedGroup
from .layers.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .layers.base import Layer
from .layers.blocks import Block, Residual, writable_alone
from .layers.conv import Conv2D, conv_backward
from .layers.dense import Dense, dense_backward
from .layers.pool import AvgPool2D, MaxPool2D
from .layers.reshape import Flatten

__all__ = [
    "ConvActivation",
    "ConvActivationPool",
    "ConvReLUMaxPool",
    "DenseActivation",
    "FusedGroup",
    "ResidualReLU",
    "first_weighted_unit",
    "plan",
]

#: The activation layers a convolution or Dense layer fuses (by exact type).
FUSABLE_ACTIVATIONS = (ReLU, Sigmoid, Tanh, LeakyReLU)


def _activation_args(layer, act_out=None) -> dict:
    """The ``activation=``/``alpha=`` arguments of the ops for an activation layer (None:
    none), with ``act_out=`` (its output, for a backward op) when given."""
    if layer is None:
        return {}
    args = {"activation": layer.op, "alpha": getattr(layer, "alpha", 0.0)}
    if act_out is not None:
        args["act_out"] = act_out
    return args


class DenseActivation(FusedGroup):
    """y = f(x @ W + b) for a Dense layer and an activation f: one ``ops.affine(...,
    activation=...)``; backward forms dy * f'(.) from y inside ``ops.affine_backward``."""

    def forward(self, x, train=True):
        dense = self.layers[0]
        dense.check_input(x)
        y = dense.ops.affine(x, dense.params["W"], dense.params["b"], **_activation_args(self.layers[1]))
        self._keep(train, _x=x, _y=y)
        return y

    def backward(self, dy, input_grad=True):
        x = self._require_forward("_x")
        return dense_backward(self.layers[0], dy, x, input_grad, **_activation_args(self.layers[1], self._y))


def _conv_forward(conv: Conv2D, x, activation=None):
    """One ``ops.conv2d`` of ``conv`` on x (checked first) with the activation layer
    ``activation`` (or none) fused in; returns its output."""
    conv.check_input(x)
    return conv.ops.conv2d(
        x,
        conv.params["W"],
        conv.params["b"],
        stride=conv.stride,
        pad=conv.pad,
        impl=conv.impl,
        **_activation_args(activation),
    )


class ConvActivation(FusedGroup):
    """y = f(conv(x)) for a Conv2D and an activation f: one ``ops.conv2d(...,
    activation=...)``; backward takes dy through f (from y) in ``ops.conv2d_backward``."""

    def forward(self, x, train=True):
        y = _conv_forward(self.layers[0], x, self.layers[1])
        self._keep(train, _x=x, _y=y)
        return y

    def backward(self, dy, input_grad=True):
        x = self._require_forward("_x")
        return conv_backward(self.layers[0], dy, x, input_grad, **_activation_args(self.layers[1], self._y))


class ConvReLUMaxPool(FusedGroup):
    """y = maxpool(max(conv(x), 0)).

    A 2x2 stride-2 pooling runs inside the convolution kernel
    (``ops.conv2d_relu_maxpool2x2``: the full convolution output is never stored); any
    other runs after ``ops.conv2d(..., relu=True)`` as ``ops.maxpool2d``. Backward is
    one ``ops.conv2d_backward(..., pool=(argmax, pooled))``, which routes dy through the
    pooling and the ReLU inside its reads.
    """

    @property
    def pools_in_kernel(self) -> bool:
        """2x2 windows, stride 2, no padding: the convolution kernel pools (even outputs)."""
        pool = self.layers[2]
        return pool.size == (2, 2) and pool.stride == (2, 2) and pool.pad == (0, 0)

    def forward(self, x, train=True):
        conv, _, pool = self.layers
        conv.check_input(x)
        W, b = conv.params["W"], conv.params["b"]
        if self.pools_in_kernel:
            pooled, argmax = conv.ops.conv2d_relu_maxpool2x2(
                x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl
            )
        else:
            y = conv.ops.conv2d(x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl, relu=True)
            pool.check_input(y)
            pooled, argmax = conv.ops.maxpool2d(y, pool.size, stride=pool.stride, pad=pool.pad)
        self._keep(train, _x=x, _pooled=pooled, _argmax=argmax)
        return pooled

    def backward(self, dy, input_grad=True):
        pooling = (self._argmax, self._pooled)
        return conv_backward(self.layers[0], dy, self._require_forward("_x"), input_grad, pool=pooling)


class ConvActivationPool(FusedGroup):
    """y = pool(f(conv(x))) for a Conv2D, an optional activation f and a MaxPool2D or
    AvgPool2D (ReLU with max pooling is :class:`ConvReLUMaxPool`): one ``ops.conv2d(...,
    activation=...)`` and the pooling op; backward is the pooling's backward op, then one
    ``ops.conv2d_backward`` that takes dy through f. With average pooling and f, the
    pooling's backward op takes dy through f itself (``avgpool2d_backward(...,
    activation=..., act_out=...)``: for 2x2 windows one pass instead of two)."""

    def __init__(self, *layers: Layer):
        super().__init__(*layers)
        self.activation = layers[1] if len(layers) == 3 else None

    def forward(self, x, train=True):
        y = _conv_forward(self.layers[0], x, self.activation)
        self._keep(train, _x=x, _y=y)
        return self.layers[-1].forward(y, train)

    def backward(self, dy, input_grad=True):
        x = self._require_forward("_x")
        pool = self.layers[-1]
        fused = _activation_args(self.activation, self._y)
        if isinstance(pool, AvgPool2D) and fused:
            shape = pool._require_forward("_shape")
            dy = pool.ops.avgpool2d_backward(dy, shape, pool.size, stride=pool.stride, pad=pool.pad, **fused)
            return conv_backward(self.layers[0], dy, x, input_grad)
        return conv_backward(self.layers[0], pool.backward(dy), x, input_grad, **fused)


def _fusable_activation(layer) -> bool:
    return type(layer) in FUSABLE_ACTIVATIONS


class ResidualReLU(FusedGroup):
    """y = relu(body(x) + shortcut(x)) for a Residual block and the ReLU after it (ResNet's
    basic block): one ``ops.add_relu`` instead of the sum and the ReLU apart, and in
    inference it writes into the body's output (no new array, which a large batch pays
    for in page faults). When the body ends with a Conv2D + BatchNorm group, the sum and
    the ReLU run in that group's last pass over its output instead: in training the batch
    norm kernel's, in inference the folded convolution's
    (:meth:`fastnn.fusion_norm.NormGroup.add_relu`).
    Backward: dy through the ReLU (from y), then the block's backward.
    """

    def forward(self, x, train=True):
        block = self.layers[0]
        if hasattr(block.last_body_unit(), "add_relu"):
            h, shortcut, last = block.parts_before_last(x, train)
            fused = last.add_relu(h, shortcut, train)
            if fused is not None:
                self._keep(train, _y=fused)
                return fused
            body = last.forward(h, train)
        else:
            body, shortcut = block.forward_parts(x, train)
        in_place = not train and writable_alone(body, x, shortcut)
        y = block.ops.add_relu(body, shortcut, out=body if in_place else None)
        self._keep(train, _y=y)
        return y

    def backward(self, dy, input_grad=True):
        y = self._require_forward("_y")
        block = self.layers[0]
        return block.backward(block.ops.relu_backward(dy, y), input_grad)


def _match(layers, i):
    """The activation/pooling group that starts at ``layers[i]`` (the table above), or None."""
    layer, rest = layers[i], layers[i + 1 : i + 3]
    if isinstance(layer, Conv2D) and rest:
        activated = _fusable_activation(rest[0])
        pool_at = 1 if activated else 0
        pooled = len(rest) > pool_at and type(rest[pool_at]) in (MaxPool2D, AvgPool2D)
        if pooled and type(rest[0]) is ReLU and type(rest[1]) is MaxPool2D:
            return ConvReLUMaxPool(layer, *rest[:2])
        if pooled:
            return ConvActivationPool(layer, *rest[: pool_at + 1])
        if activated:
            return ConvActivation(layer, rest[0])
    if isinstance(layer, Dense) and rest and _fusable_activation(rest[0]):
        return DenseActivation(layer, rest[0])
    if isinstance(layer, Residual) and rest and type(rest[0]) is ReLU:
        return ResidualReLU(layer, rest[0])
    return None


def plan(layers, fuse: bool = True) -> list:
    """The units that run ``layers`` in order: layers, and fused groups where a rule matches.

    With ``fuse=False`` every layer runs on its own. A block (:mod:`fastnn.layers.blocks`)
    is one unit that fuses with no neighbour; its own lists of sublayers are planned alike.
    """
    units = []
    i = 0
    while i < len(layers):
        if isinstance(layers[i], Block):
            layers[i].plan_with(lambda sublayers: plan(sublayers, fuse), first_weighted_unit)
        group = (fusion_norm.match(layers, i) or _match(layers, i)) if fuse else None  # BatchNorm rules first
        units.append(layers[i] if group is None else group)
        i += 1 if group is None else len(group.layers)
    return units


def first_weighted_unit(units) -> int | None:
    """The index of the unit whose input gradient nobody needs: a first Dense, Conv2D,
    fused group or block with nothing but Flatten layers before it; None if there is none.

    A training step calls that unit's ``backward(dy, input_grad=False)``.
    """
    for i, unit in enumerate(units):
        if isinstance(unit, (Conv2D, Dense, FusedGroup, Block)):
            return i
        if not isinstance(unit, Flatten):
            return None
    return None
