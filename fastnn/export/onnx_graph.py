"""OnnxGraph: the nodes and weights of an ONNX graph as plain Python, before any ``onnx`` import.

The layer exporters (:mod:`fastnn.export.onnx_layers`) add nodes and constants here;
:mod:`fastnn.export.onnx_model` turns the result into an ``onnx.ModelProto``. Keeping
the graph plain means the exporters run (and are tested) without the ``onnx`` package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The dtype every exported tensor has: onnxruntime has no float64 convolution or
#: average pooling on the CPU, so a float64 model is exported with float32 weights.
EXPORT_DTYPE = np.dtype(np.float32)


@dataclass
class Node:
    """One ONNX node: ``op_type`` reads ``inputs`` and writes ``outputs``."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attributes: dict = field(default_factory=dict)


class OnnxGraph:
    """A growing ONNX graph: ``nodes`` in execution order and named ``constants``.

    Tensor names are the node names (``layers.3.Dense``), so a graph viewer shows
    which fastnn layer each node comes from; :meth:`add` makes each name unique.
    """

    def __init__(self):
        self.nodes: list[Node] = []
        #: Initializers by name: float arrays in :data:`EXPORT_DTYPE`, int64 shapes.
        self.constants: dict[str, np.ndarray] = {}
        self._names: set[str] = set()

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... if it is taken."""
        candidate, count = name, 1
        while candidate in self._names:
            count += 1
            candidate = f"{name}_{count}"
        self._names.add(candidate)
        return candidate

    def constant(self, name: str, value) -> str:
        """Add a weight: float arrays are cast to :data:`EXPORT_DTYPE`, integers to int64."""
        array = np.asarray(value)
        dtype = np.int64 if array.dtype.kind in "iu" else EXPORT_DTYPE
        name = self.unique(name)
        self.constants[name] = np.ascontiguousarray(array, dtype=dtype)
        return name

    def add(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        """Append a node with one output, named after the node; returns that output's name."""
        name = self.unique(name)
        self.nodes.append(Node(op_type, list(inputs), [name], name, attributes))
        return name
