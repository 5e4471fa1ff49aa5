"""to_onnx: a Sequential as an ONNX file that onnxruntime (or any ONNX runtime) serves.

The file holds one graph with the input ``"input"`` (N, *sample shape) and the output
``"output"``: what ``model.predict`` returns (the logits, or the probabilities with
``probabilities=True``). The batch axis is the symbolic dimension ``"N"`` unless
``batch_size`` fixes it. Every tensor is float32 (see
:data:`~fastnn.export.onnx_graph.EXPORT_DTYPE`). The graph passes
``onnx.checker.check_model(full_check=True)`` before the file is written, atomically.
"""

from __future__ import annotations

from .._checks import check_batch_size
from .._files import atomic_write
from ..layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    LPPool2D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from ..preprocessing import PCA, ZCA, MinMaxScale, Standardize
from .onnx_graph import EXPORT_DTYPE, OnnxGraph
from .onnx_layers import export_layers

#: The oldest opset this exporter writes (each op it uses has its current form there).
MIN_OPSET = 17
INPUT, OUTPUT, BATCH = "input", "output", "N"

#: Loss class -> the ONNX op that turns the network's output into probabilities.
PROBABILITY_OPS = {"SoftmaxCrossEntropy": "Softmax", "SigmoidCrossEntropy": "Sigmoid"}

_KEEP_SHAPE = (BatchNorm, Identity, Dropout, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Step)


def import_onnx():
    """The ``onnx`` module, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "to_onnx: the onnx package is not installed; install it with pip install 'fastnn[onnx]'"
        ) from None
    return onnx


def check_input_shape(input_shape) -> tuple[int, ...]:
    """``input_shape`` (one sample's shape, no batch axis) as a tuple of positive ints."""
    try:
        shape = tuple(input_shape)
        ok = len(shape) > 0 and all(int(s) == s and s >= 1 for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "to_onnx: input_shape must be one sample's shape without the batch axis, a sequence "
            f"of positive integers such as (1, 28, 28), got {input_shape!r}"
        )
    return tuple(int(s) for s in shape)


def input_dims(model, input_shape=None) -> tuple:
    """One sample's input shape: ``input_shape``, else the model's ``input_shape``, else
    what the first layers fix, with named dimensions (``"H"``, ``"W"``) for the rest.

    Dense fixes (in_features,); Conv2D (C, "H", "W"); pooling ("C", "H", "W"); a fitted
    preprocessing layer its sample shape; activations, Dropout and BatchNorm pass the
    question on.
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is not None:
        return check_input_shape(input_shape)
    for i, layer in enumerate(model.layers):
        if isinstance(layer, _KEEP_SHAPE):
            continue
        if isinstance(layer, Dense):
            return (layer.in_features,)
        if isinstance(layer, Conv2D):
            return (layer.in_channels, "H", "W")
        if isinstance(layer, (MaxPool2D, AvgPool2D, LPPool2D)):
            return ("C", "H", "W")
        if isinstance(layer, (MinMaxScale, Standardize, PCA, ZCA)) and layer.shape is not None:
            return layer.shape
        raise ValueError(
            f"to_onnx: cannot tell the input shape from layers[{i}] {layer.describe()}; pass "
            "input_shape=, one sample's shape without the batch axis, e.g. input_shape=(1, 28, 28)"
        )
    raise ValueError("to_onnx: the model has no layers that fix its input shape; pass input_shape=")


def check_opset(onnx, opset) -> int:
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"to_onnx: opset must be an integer from {MIN_OPSET} to {newest} (the newest this onnx "
            f"{onnx.__version__} knows), got {opset!r}"
        )
    return opset


def probability_op(loss) -> str:
    """The ONNX op that turns outputs into ``loss``'s probabilities (found through its base
    classes too, so an alias subclass such as a BinaryCrossEntropy gets its parent's)."""
    for cls in type(loss).__mro__:
        if cls.__name__ in PROBABILITY_OPS:
            return PROBABILITY_OPS[cls.__name__]
    raise ValueError(
        f"to_onnx: probabilities=True needs a classification loss ({', '.join(PROBABILITY_OPS)}); "
        f"the model's loss is {type(loss).__name__}, whose outputs are no probabilities: "
        "export with probabilities=False"
    )


def build_graph(model, probabilities: bool = False) -> OnnxGraph:
    """The model's inference graph from the tensor ``"input"`` to the tensor ``"output"``."""
    graph = OnnxGraph()
    graph.unique(INPUT)
    graph.unique(OUTPUT)
    y = export_layers(graph, model.layers, INPUT)
    if probabilities:
        y = graph.add(probability_op(model.loss_fn), [y], "probabilities")
    if y == INPUT:
        graph.add("Identity", [y], OUTPUT)
    else:
        graph.nodes[-1].outputs = [OUTPUT]
    return graph


def to_proto(onnx, graph: OnnxGraph, dims_in: list, dims_out: list | None, opset: int, doc: str):
    """The ``onnx.ModelProto`` of ``graph``; ``dims_out=None`` leaves the output's shape to
    ONNX shape inference."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    elem_type = helper.np_dtype_to_tensor_dtype(EXPORT_DTYPE)
    nodes = [
        helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, **n.attributes) for n in graph.nodes
    ]
    initializers = [numpy_helper.from_array(array, name) for name, array in graph.constants.items()]
    inputs = [helper.make_tensor_value_info(INPUT, elem_type, dims_in)]
    outputs = [helper.make_tensor_value_info(OUTPUT, elem_type, dims_out)]
    proto = helper.make_model_gen_version(
        helper.make_graph(nodes, "fastnn", inputs, outputs, initializers, doc_string=doc),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="fastnn",
        doc_string=doc,
    )
    if dims_out is None:
        dims = inferred_output_dims(onnx, proto)
        proto.graph.output[0].CopyFrom(helper.make_tensor_value_info(OUTPUT, elem_type, [dims_in[0], *dims]))
    return proto


def inferred_output_dims(onnx, proto) -> list:
    """The output's dimensions after the batch axis, by ONNX shape inference (for inputs with
    named dimensions, whose output shape fastnn cannot compute); unknown ones get names."""
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    dims = inferred.graph.output[0].type.tensor_type.shape.dim[1:]
    return [d.dim_value or d.dim_param or f"output_{i + 1}" for i, d in enumerate(dims)]


def to_onnx(model, path, opset: int = 17, batch_size=None, input_shape=None, probabilities=False):
    """Write ``model`` (a Sequential) to ``path`` as an ONNX model, atomically; returns the
    ``onnx.ModelProto`` written.

    Args:
        opset: the ONNX opset, 17 or newer.
        batch_size: None for a dynamic batch axis ``"N"``, or the one batch size the file takes.
        input_shape: one sample's shape without the batch axis, e.g. (1, 28, 28); by default
            the model's, else what its first layers fix (see :func:`input_dims`).
        probabilities: append the loss's Softmax or Sigmoid, so the output is
            ``predict_proba``'s instead of the logits.

    Raises:
        ImportError: onnx is not installed. TypeError: a layer has no exporter.
        ValueError: a bad argument, or a model that cannot take ``input_shape``.
    """
    onnx = import_onnx()
    opset = check_opset(onnx, opset)
    batch = BATCH if batch_size is None else check_batch_size("to_onnx", batch_size)
    sample = input_dims(model, input_shape)
    sample_out = None
    if all(isinstance(d, int) for d in sample):
        try:
            sample_out = model.output_shape(sample)
        except ValueError as error:
            raise ValueError(f"to_onnx: the model cannot take inputs of shape {sample}: {error}") from None
    graph = build_graph(model, probabilities)
    dims_out = None if sample_out is None else [batch, *sample_out]
    proto = to_proto(onnx, graph, [batch, *sample], dims_out, opset, doc=repr(model))
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, lambda handle: handle.write(proto.SerializeToString()))
    return proto


def describe_value(value) -> str:
    """``input (N, 1, 28, 28)``: a graph input's or output's name and shape."""
    dims = [str(d.dim_param or d.dim_value) for d in value.type.tensor_type.shape.dim]
    return f"{value.name} ({', '.join(dims)})"
