"""One ONNX exporter per layer: each adds the nodes that compute the layer's inference output.

An exporter is ``export(graph, layer, x, name) -> y``: it reads the tensor named ``x``,
adds nodes and constants to ``graph`` (an :class:`~fastnn.export.onnx_graph.OnnxGraph`)
under the prefix ``name`` and returns the name of the layer's output tensor. Each one
computes what the layer's ``forward(x, train=False)`` computes:

==================  ====================================================================
layer               ONNX
==================  ====================================================================
Dense               Gemm(x, W, b): y = x @ W + b
Conv2D              Conv(x, W, b) with the layer's strides and zero pads
MaxPool2D           MaxPool (ONNX pads ignore padding, as fastnn's -inf padding does)
AvgPool2D           AveragePool with count_include_pad=1 (padding counts as zeros)
LPPool2D            LpPool (ONNX's p is an integer: a fractional p is refused)
GlobalAvgPool2D     GlobalAveragePool, Flatten(axis=1)
Flatten             Flatten(axis=1)
ReLU, LeakyReLU,    Relu, LeakyRelu(alpha), Sigmoid, Tanh, Softmax(axis=-1), Identity
Sigmoid, Tanh,
Softmax, Identity
Step                Where(x > 0, 1, 0)
Dropout             Identity (inference)
BatchNorm           BatchNormalization with the running mean and variance and eps
MinMaxScale,        Mul, Add: y = x * scale + shift with the layer's own coefficients
Standardize
PCA                 Flatten, Gemm: y = x_flat @ M - mean @ M
ZCA                 Flatten, Gemm, Reshape back to the sample shape
Residual            the body's and the shortcut's nodes (none for the identity), Add
Concat              each branch's nodes, Concat(axis=1)
==================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..layers import (
    AvgPool2D,
    BatchNorm,
    Concat,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    LeakyReLU,
    LPPool2D,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from ..layers.base import Layer
from ..preprocessing import PCA, ZCA, MinMaxScale, Standardize
from .onnx_graph import OnnxGraph


def _dense(graph: OnnxGraph, layer: Dense, x: str, name: str) -> str:
    W = graph.constant(f"{name}.W", layer.params["W"])
    b = graph.constant(f"{name}.b", layer.params["b"])
    return graph.add("Gemm", [x, W, b], name)


def _pads(pad: tuple[int, int]) -> list[int]:
    """ONNX pads [top, left, bottom, right] for fastnn's symmetric (ph, pw)."""
    return [pad[0], pad[1], pad[0], pad[1]]


def _conv2d(graph: OnnxGraph, layer: Conv2D, x: str, name: str) -> str:
    W = graph.constant(f"{name}.W", layer.params["W"])
    b = graph.constant(f"{name}.b", layer.params["b"])
    return graph.add(
        "Conv",
        [x, W, b],
        name,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=_pads(layer.pad),
    )


def _pool(op_type: str, **attributes):
    def export(graph: OnnxGraph, layer, x: str, name: str) -> str:
        return graph.add(
            op_type,
            [x],
            name,
            kernel_shape=list(layer.size),
            strides=list(layer.stride),
            pads=_pads(layer.pad),
            **attributes,
        )

    return export


def _activation(op_type: str):
    def export(graph: OnnxGraph, layer, x: str, name: str) -> str:
        return graph.add(op_type, [x], name)

    return export


def _leaky_relu(graph: OnnxGraph, layer: LeakyReLU, x: str, name: str) -> str:
    return graph.add("LeakyRelu", [x], name, alpha=layer.alpha)


def _softmax(graph: OnnxGraph, layer: Softmax, x: str, name: str) -> str:
    return graph.add("Softmax", [x], name, axis=-1)


def _step(graph: OnnxGraph, layer: Step, x: str, name: str) -> str:
    zero = graph.constant(f"{name}.zero", np.array(0.0))
    one = graph.constant(f"{name}.one", np.array(1.0))
    positive = graph.add("Greater", [x, zero], f"{name}.Greater")
    return graph.add("Where", [positive, one, zero], name)


def _flatten(graph: OnnxGraph, layer: Flatten, x: str, name: str) -> str:
    return graph.add("Flatten", [x], name, axis=1)


def _lp_pool(graph: OnnxGraph, layer: LPPool2D, x: str, name: str) -> str:
    if layer.p != int(layer.p):
        raise ValueError(f"to_onnx: {layer.describe()}: ONNX's LpPool takes an integer p, got p={layer.p}")
    return _pool("LpPool", p=int(layer.p))(graph, layer, x, name)


def _global_avg_pool(graph: OnnxGraph, layer: GlobalAvgPool2D, x: str, name: str) -> str:
    pooled = graph.add("GlobalAveragePool", [x], f"{name}.GlobalAveragePool")
    return graph.add("Flatten", [pooled], name, axis=1)


def _batch_norm(graph: OnnxGraph, layer: BatchNorm, x: str, name: str) -> str:
    inputs = [x]
    for key, array in (
        ("gamma", layer.params["gamma"]),
        ("beta", layer.params["beta"]),
        ("running_mean", layer.running_mean),
        ("running_var", layer.running_var),
    ):
        inputs.append(graph.constant(f"{name}.{key}", array))
    return graph.add("BatchNormalization", inputs, name, epsilon=layer.eps)


def _require_fitted(layer: Layer) -> None:
    if not layer.fitted:
        raise ValueError(
            f"{layer.describe()} is not fitted; fit it on the training set before exporting the model"
        )


def _elementwise(graph: OnnxGraph, layer, x: str, name: str) -> str:
    _require_fitted(layer)
    scale, shift = layer._coefficients(np.float64)  # the layer's own formula, so the two cannot drift
    scaled = graph.add("Mul", [x, graph.constant(f"{name}.scale", scale)], f"{name}.Mul")
    return graph.add("Add", [scaled, graph.constant(f"{name}.shift", shift)], name)


def _projection(graph: OnnxGraph, layer, x: str, name: str) -> str:
    _require_fitted(layer)
    M = layer._matrix()  # float64, as the layer computes it
    flat = graph.add("Flatten", [x], f"{name}.Flatten", axis=1)
    matrix = graph.constant(f"{name}.matrix", M)
    offset = graph.constant(f"{name}.offset", -(layer.buffers["mean"] @ M))
    return graph.add("Gemm", [flat, matrix, offset], name)


def _zca(graph: OnnxGraph, layer: ZCA, x: str, name: str) -> str:
    flat = _projection(graph, layer, x, f"{name}.Gemm")
    shape = graph.constant(f"{name}.shape", [0, *layer.shape])  # 0: keep the batch size
    return graph.add("Reshape", [flat, shape], name)


def _residual(graph: OnnxGraph, layer: Residual, x: str, name: str) -> str:
    body = export_layers(graph, layer.body, x, f"{name}.body")
    shortcut = export_layers(graph, layer.shortcut, x, f"{name}.shortcut")
    return graph.add("Add", [body, shortcut], name)


def _concat(graph: OnnxGraph, layer: Concat, x: str, name: str) -> str:
    outputs = [export_layers(graph, b, x, f"{name}.branches.{i}") for i, b in enumerate(layer.branches)]
    return graph.add("Concat", outputs, name, axis=1)


#: Layer class -> its exporter. A class is looked up exactly, never through a base
#: class: a subclass may compute something else.
EXPORTERS: dict[type, Callable] = {
    Dense: _dense,
    Conv2D: _conv2d,
    MaxPool2D: _pool("MaxPool"),
    AvgPool2D: _pool("AveragePool", count_include_pad=1),
    GlobalAvgPool2D: _global_avg_pool,
    LPPool2D: _lp_pool,
    Flatten: _flatten,
    Identity: _activation("Identity"),
    Dropout: _activation("Identity"),
    ReLU: _activation("Relu"),
    LeakyReLU: _leaky_relu,
    Sigmoid: _activation("Sigmoid"),
    Tanh: _activation("Tanh"),
    Softmax: _softmax,
    Step: _step,
    BatchNorm: _batch_norm,
    MinMaxScale: _elementwise,
    Standardize: _elementwise,
    PCA: _projection,
    ZCA: _zca,
    Residual: _residual,
    Concat: _concat,
}


def export_layers(graph: OnnxGraph, layers: list, x: str, prefix: str = "layers") -> str:
    """Export ``layers`` in order, starting from the tensor ``x``; returns the last output's name.

    Raises:
        TypeError: for a layer without an exporter, naming it and the layers that have one.
        ValueError: for a layer that cannot be exported as it is (an unfitted transform).
    """
    for i, layer in enumerate(layers):
        where = f"to_onnx: cannot export {prefix}[{i}] {layer.describe()}"
        export = EXPORTERS.get(type(layer))
        if export is None:
            known = ", ".join(sorted(cls.__name__ for cls in EXPORTERS))
            raise TypeError(
                f"{where}: no ONNX exporter for {type(layer).__name__}; known: {known}. "
                "Replace the layer by known ones, or add an exporter to "
                "fastnn.export.onnx_layers.EXPORTERS"
            )
        try:
            x = export(graph, layer, x, f"{prefix}.{i}.{type(layer).__name__}")
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return x
