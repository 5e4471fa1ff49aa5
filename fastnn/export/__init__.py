"""Exporting a trained model to other formats: ONNX (:func:`to_onnx`, ``model.to_onnx``).

``onnx_graph`` holds the graph as plain Python, ``onnx_layers`` one exporter per layer,
``onnx_model`` the entry point that checks the graph with the ``onnx`` package and writes it.
"""

from .onnx_layers import EXPORTERS
from .onnx_model import to_onnx

__all__ = ["EXPORTERS", "to_onnx"]
