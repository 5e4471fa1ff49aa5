"""``fastnn evaluate MODEL.npz``: a saved model's loss, accuracy, per-class precision, recall
and F1, and confusion matrix on a data set's test split."""

from __future__ import annotations

import argparse

import numpy as np

from ._common import DATASETS, positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    from ..metrics import NAMED_METRICS

    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model on a test set, with per-class metrics",
        description="Print the loss and accuracy of a saved model on the test split of --dataset, "
        "then precision, recall and F1 per class and the confusion matrix (rows: true class, "
        "columns: predicted).",
    )
    evaluate.add_argument(
        "model", metavar="MODEL.npz", help="a model saved by model.save or fastnn train --save"
    )
    evaluate.add_argument(
        "--dataset", choices=DATASETS, default="digits", help="the test split to score on (default: digits)"
    )
    evaluate.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the IDX .gz files (else $FASTNN_DATA, then the cache)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="the digits train/test split (default 0, as fastnn train's)"
    )
    evaluate.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="samples per inference chunk (default: 256, more for small networks)",
    )
    evaluate.add_argument(
        "--metrics",
        nargs="+",
        default=[],
        choices=sorted(set(NAMED_METRICS) - {"accuracy", "precision", "recall", "f1", "confusion_matrix"}),
        metavar="NAME",
        help="more metrics to print: top_k_accuracy, mse, mae, r2",
    )
    evaluate.add_argument("--quiet", action="store_true", help="no download messages")
    return evaluate


def run(args) -> int:
    from ..metrics import report_from_confusion_matrix
    from ._common import load_data
    from ._saved_model import check_inputs, load_saved_model

    model = load_saved_model(args.model)
    _, (x_test, t_test) = load_data(args)
    source = f"the {args.dataset} test set"
    try:
        check_inputs(model, args.model, x_test, source)
    except ValueError as error:
        others = ", ".join(d for d in DATASETS if d != args.dataset)
        raise ValueError(
            f"{error}; was the model trained on another data set? (--dataset {others})"
        ) from None
    names = ["confusion_matrix", *args.metrics]
    result = model.evaluate(x_test, t_test, batch_size=args.batch_size, metrics=names)
    cm = result.pop("confusion_matrix")
    print(f"{args.model} on {source} ({len(x_test)} samples)")
    print(f"loss {result.pop('loss'):.4f}  accuracy {result.pop('accuracy'):.4f}")
    for name, value in result.items():
        print(f"{name} {value:.4f}")
    print()
    print(report_from_confusion_matrix(cm))
    print()
    print(format_confusion_matrix(cm))
    return 0


def format_confusion_matrix(cm: np.ndarray) -> str:
    """The confusion matrix as text: one row per true class, one column per predicted class."""
    k = len(cm)
    width = max(len(str(int(cm.max(initial=0)))), len(str(k - 1)), 3)
    lines = ["confusion matrix (rows: true class, columns: predicted class)"]
    lines.append("true\\pred " + " ".join(f"{j:>{width}}" for j in range(k)))
    for i in range(k):
        lines.append(f"{i:>9} " + " ".join(f"{int(v):>{width}}" for v in cm[i]))
    return "\n".join(lines)
