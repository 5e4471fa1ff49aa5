"""``fastnn predict MODEL.npz INPUT.npy``: a saved model's class predictions (or probabilities)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._common import positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    predict = commands.add_parser(
        "predict",
        help="classes or probabilities of the inputs in a .npy file",
        description="Run a saved model on the inputs in INPUT (a .npy file, or a .npz holding one "
        "array) of the shape it was trained on, e.g. (N, 1, 28, 28) float32 in [0, 1]. Prints one "
        "predicted class per line, or writes them (int64 (N,)) to --out; --proba gives the class "
        "probabilities (N, C) instead.",
    )
    predict.add_argument(
        "model", metavar="MODEL.npz", help="a model saved by model.save or fastnn train --save"
    )
    predict.add_argument("input", metavar="INPUT.npy", help="the inputs: .npy, or .npz with one array")
    predict.add_argument("--out", default=None, metavar="PATH.npy", help="write the predictions here (.npy)")
    predict.add_argument(
        "--proba", action="store_true", help="class probabilities (N, C) instead of class indices"
    )
    predict.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="samples per inference chunk (default: 256, more for small networks)",
    )
    return predict


def run(args) -> int:
    from .._files import atomic_write
    from ._saved_model import check_inputs, load_input, load_saved_model

    if args.out is not None and not Path(args.out).resolve().parent.is_dir():
        raise ValueError(
            f"--out {args.out}: the folder {Path(args.out).parent} does not exist; create it first"
        )
    model = load_saved_model(args.model)
    x = check_inputs(model, args.model, load_input(args.input), args.input)
    if args.proba:
        result = model.predict_proba(x, batch_size=args.batch_size)
    else:
        result = model.predict_classes(x, batch_size=args.batch_size)
    if args.out is None:
        for row in result:
            print(" ".join(f"{p:.6f}" for p in row) if args.proba else int(row))
        return 0
    atomic_write(args.out, lambda handle: np.save(handle, result))
    kind = "probabilities" if args.proba else "classes"
    print(f"wrote the {kind} of {len(result)} samples, shape {result.shape} {result.dtype}, to {args.out}")
    return 0
