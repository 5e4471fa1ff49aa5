"""``fastnn summary MODEL.npz``: print a saved model's layers, shapes, parameters and memory."""

from __future__ import annotations

import argparse

from ._common import positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    summary = commands.add_parser(
        "summary",
        help="a saved model's layers, shapes, parameters and memory",
        description="Print model.summary() of a saved model: one row per layer with its output "
        "shape and parameter count, then the parameter memory and the activation memory of a "
        "training step at --batch-size.",
    )
    summary.add_argument(
        "model", metavar="MODEL.npz", help="a model saved by model.save or fastnn train --save"
    )
    summary.add_argument(
        "--batch-size", type=positive_int, default=1, help="batch for the activation memory (default: 1)"
    )
    summary.add_argument(
        "--input-shape",
        type=_sample_shape,
        default=None,
        metavar="C,H,W",
        help="one sample's shape, for a model file that does not record it (e.g. 1,28,28)",
    )
    return summary


def _sample_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, such as 1,28,28; got {text!r}"
        )
    return shape


def run(args) -> int:
    from ._saved_model import load_saved_model

    model = load_saved_model(args.model)
    print(model.summary(batch_size=args.batch_size, input_shape=args.input_shape))
    return 0
