"""``fastnn summary MODEL.npz``: print a saved model's layers, shapes, parameters and memory."""

from __future__ import annotations

import argparse

from ._common import positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    summary = commands.add_parser(
        "summary",
        help="print a saved model's layers, output shapes, parameter counts and memory",
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
    return summary


def run(args) -> int:
    from ._saved_model import load_saved_model

    model = load_saved_model(args.model)
    print(model.summary(batch_size=args.batch_size))
    return 0
