"""``fastnn export MODEL.npz MODEL.onnx``: a saved model as an ONNX file (:func:`fastnn.export.to_onnx`)."""

from __future__ import annotations

import argparse
import os

from ._common import positive_int, writable_file


def sample_shape(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` -> (1, 28, 28)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            "expected one sample's shape as positive integers separated by commas, "
            f"such as 1,28,28; got {text}"
        )
    return shape


def add_parser(commands) -> argparse.ArgumentParser:
    export = commands.add_parser(
        "export",
        help="write a saved model as an ONNX file",
        description="Write a model saved by fastnn (model.save or fastnn train --save) as an ONNX "
        "file that onnxruntime and other ONNX runtimes serve: input 'input' (N, ...), output "
        "'output' (what predict returns), float32. Needs pip install 'fastnn[onnx]'.",
    )
    export.add_argument("model", metavar="MODEL.npz", help="the saved model")
    export.add_argument("out", metavar="MODEL.onnx", type=writable_file, help="the ONNX file to write")
    export.add_argument(
        "--opset", type=positive_int, default=17, help="ONNX opset, 17 or newer (default: 17)"
    )
    export.add_argument(
        "--batch-size", type=positive_int, default=None, help="fix the batch size (default: dynamic, 'N')"
    )
    export.add_argument(
        "--input-shape",
        type=sample_shape,
        default=None,
        metavar="C,H,W",
        help="one sample's shape without the batch axis, e.g. 1,28,28 (default: the model's, or "
        "what its first layers fix)",
    )
    export.add_argument(
        "--probabilities",
        action="store_true",
        help="output the loss's softmax or sigmoid probabilities instead of the logits",
    )
    return export


def run(args) -> int:
    from ..export.onnx_model import describe_value, to_onnx
    from ..serialization import load_model

    if not os.path.isfile(args.model):
        raise FileNotFoundError(
            f"{args.model}: no such file; expected a model saved by model.save() or fastnn train --save"
        )
    model = load_model(args.model)
    try:
        proto = to_onnx(
            model,
            args.out,
            opset=args.opset,
            batch_size=args.batch_size,
            input_shape=args.input_shape,
            probabilities=args.probabilities,
        )
    except (ValueError, TypeError) as error:
        hint = " (here: --input-shape, e.g. --input-shape 1,28,28)" if "input_shape=" in str(error) else ""
        raise type(error)(f"cannot export {args.model} to {args.out}: {error}{hint}") from None
    inputs, outputs = describe_value(proto.graph.input[0]), describe_value(proto.graph.output[0])
    print(f"wrote {args.out}: input {inputs}, output {outputs}, float32, opset {args.opset}")
    return 0
