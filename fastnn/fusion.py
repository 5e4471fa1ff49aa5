"""Layer fusion: which neighbouring layers of a model run as one kernel.

:func:`plan` turns a model's layers into the *units* a pass runs in order: a layer on
its own, or a :class:`FusedGroup` that runs a few consecutive layers through one op
call with those layers' own ``params`` and ``grads``. The rules, first match wins:

==============================================  ===================================
layers                                          group
==============================================  ===================================
Conv2D, ReLU, MaxPool2D (2x2 windows, stride 2)  :class:`ConvReLUMaxPool`, pooling
                                                inside the convolution kernel
Conv2D, ReLU, MaxPool2D (any other)             :class:`ConvReLUMaxPool`, pooling
                                                after it; one backward kernel
Conv2D, ReLU                                    :class:`ConvReLU`
Dense, ReLU                                     :class:`DenseReLU`
==============================================  ===================================

The BatchNorm rules come first: Conv2D or Dense, BatchNorm and an activation (or none)
run as one group of :mod:`fastnn.fusion_norm` (see :func:`fastnn.fusion_norm.match`).

A fused ReLU is applied in the kernel's store and its mask in the backward kernel's
reads (``ops.conv2d(..., relu=True)``, ``ops.affine_backward(..., relu_out=y)``); a
fused max pooling routes the gradient back inside the convolution's backward kernel
(``ops.conv2d_backward(..., pool=(argmax, pooled))``). The numbers are the ones the
layers give run one by one, bit for bit: ``model.fuse_layers = False`` runs them
apart, and ``tests/test_fusion.py`` trains both ways and compares the weights.

A unit's ``forward(x, train)`` and ``backward(dy)`` mean what a layer's do. The units
listed by :func:`first_weighted_unit` also take ``backward(dy, input_grad=False)``.
"""

from __future__ import annotations

from . import fusion_norm
from .fusion_base import FusedGroup
from .layers.activations import ReLU
from .layers.conv import Conv2D
from .layers.dense import Dense
from .layers.pool import MaxPool2D
from .layers.reshape import Flatten

__all__ = ["ConvReLU", "ConvReLUMaxPool", "DenseReLU", "FusedGroup", "first_weighted_unit", "plan"]


class DenseReLU(FusedGroup):
    """y = max(x @ W + b, 0): one ``ops.affine(..., relu=True)``; backward masks dy by y > 0
    inside ``ops.affine_backward``."""

    def forward(self, x, train=True):
        dense = self.layers[0]
        dense.check_input(x)
        self._x = x
        self._y = dense.ops.affine(x, dense.params["W"], dense.params["b"], relu=True)
        return self._y

    def backward(self, dy, input_grad=True):
        dense = self.layers[0]
        x = self._require_forward("_x")
        dx, _, _ = dense.ops.affine_backward(
            dy,
            x,
            dense.params["W"],
            input_grad=input_grad,
            relu_out=self._y,
            out=(dense.grads["W"], dense.grads["b"]),
        )
        return dx


def _conv_backward(conv: Conv2D, dy, x, input_grad, **fused):
    """One ``ops.conv2d_backward`` of ``conv`` into its grads, with a fused ReLU
    (``relu_out=``) or ReLU and max pooling (``pool=``) in its reads; returns dx."""
    W, grads = conv.params["W"], (conv.grads["W"], conv.grads["b"])
    dx, _, _ = conv.ops.conv2d_backward(
        dy, x, W, stride=conv.stride, pad=conv.pad, impl=conv.impl, input_grad=input_grad, out=grads, **fused
    )
    return dx


class ConvReLU(FusedGroup):
    """y = max(conv(x), 0): one ``ops.conv2d(..., relu=True)``; backward masks dy by y > 0
    inside ``ops.conv2d_backward``."""

    def forward(self, x, train=True):
        conv = self.layers[0]
        conv.check_input(x)
        self._x = x
        self._y = conv.ops.conv2d(
            x, conv.params["W"], conv.params["b"], stride=conv.stride, pad=conv.pad, impl=conv.impl, relu=True
        )
        return self._y

    def backward(self, dy, input_grad=True):
        return _conv_backward(self.layers[0], dy, self._require_forward("_x"), input_grad, relu_out=self._y)


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
        self._x = x
        W, b = conv.params["W"], conv.params["b"]
        if self.pools_in_kernel:
            self._pooled, self._argmax = conv.ops.conv2d_relu_maxpool2x2(
                x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl
            )
        else:
            y = conv.ops.conv2d(x, W, b, stride=conv.stride, pad=conv.pad, impl=conv.impl, relu=True)
            pool.check_input(y)
            self._pooled, self._argmax = conv.ops.maxpool2d(y, pool.size, stride=pool.stride, pad=pool.pad)
        return self._pooled

    def backward(self, dy, input_grad=True):
        pooling = (self._argmax, self._pooled)
        return _conv_backward(self.layers[0], dy, self._require_forward("_x"), input_grad, pool=pooling)


def plan(layers, fuse: bool = True) -> list:
    """The units that run ``layers`` in order: layers, and fused groups where a rule matches.

    With ``fuse=False`` every layer runs on its own.
    """
    units = []
    i = 0
    while i < len(layers):
        group = fusion_norm.match(layers, i) if fuse else None  # BatchNorm rules first
        if group is not None:
            units.append(group)
            i += len(group.layers)
            continue
        layer = layers[i]
        relu = (
            fuse
            and isinstance(layer, (Conv2D, Dense))
            and i + 1 < len(layers)
            and type(layers[i + 1]) is ReLU
        )
        if not relu:
            units.append(layer)
            i += 1
        elif isinstance(layer, Conv2D) and i + 2 < len(layers) and type(layers[i + 2]) is MaxPool2D:
            units.append(ConvReLUMaxPool(*layers[i : i + 3]))
            i += 3
        else:
            units.append((ConvReLU if isinstance(layer, Conv2D) else DenseReLU)(*layers[i : i + 2]))
            i += 2
    return units


def first_weighted_unit(units) -> int | None:
    """The index of the unit whose input gradient nobody needs: a first Dense, Conv2D or
    fused group with nothing but Flatten layers before it; None if there is none.

    A training step calls that unit's ``backward(dy, input_grad=False)``.
    """
    for i, unit in enumerate(units):
        if isinstance(unit, (Conv2D, Dense, FusedGroup)):
            return i
        if not isinstance(unit, Flatten):
            return None
    return None
