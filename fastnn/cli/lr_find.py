"""``fastnn lr-find``: the learning-rate range test; prints the suggested rate and saves the plot."""

from __future__ import annotations

import argparse
import shlex

from ._common import (
    DATASETS,
    OPTIMIZER_NAMES,
    build_model,
    existing_dir,
    load_data,
    positive_float,
    positive_int,
    writable_file,
)


def add_parser(commands) -> argparse.ArgumentParser:
    from ..models import MODELS

    finder = commands.add_parser(
        "lr-find",
        help="suggest a learning rate with the range test",
        description="Smith's learning-rate range test: train for --steps batches while the rate "
        "grows exponentially from --start-lr to --end-lr, stop when the loss diverges, and print "
        "the rate where the smoothed loss falls fastest, with the fastnn train command that uses "
        "it. Only the training set is used; nothing is saved but the plot.",
    )
    finder.add_argument("--model", choices=sorted(MODELS), default="mlp", help="the network")
    finder.add_argument("--dataset", choices=DATASETS, default="digits", help="the training data")
    finder.add_argument(
        "--data-dir",
        type=existing_dir,
        default=None,
        help="folder holding the IDX .gz files (default: $FASTNN_DATA, then the download cache)",
    )
    finder.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    finder.add_argument(
        "--batch-size", type=positive_int, default=100, help="as for train: the best rate depends on it"
    )
    finder.add_argument("--start-lr", type=positive_float, default=1e-7, help="the first rate of the sweep")
    finder.add_argument("--end-lr", type=positive_float, default=10.0, help="the last rate of the sweep")
    finder.add_argument("--steps", type=positive_int, default=100, help="mini-batches in the sweep")
    finder.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    finder.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the numba kernels (default: all cores)",
    )
    finder.add_argument("--seed", type=int, default=0, help="seeds the network and the batches")
    finder.add_argument(
        "--plot",
        type=writable_file,
        default=None,
        metavar="PATH.png",
        help="save loss against rate, the suggestion marked (needs matplotlib: pip install 'fastnn[viz]')",
    )
    finder.add_argument("--quiet", action="store_true", help="no download progress")
    return finder


def run(args) -> int:
    from .. import _config
    from ..tune import lr_find
    from .tune import train_command

    if args.end_lr <= args.start_lr:
        raise ValueError(f"--end-lr ({args.end_lr:g}) must be larger than --start-lr ({args.start_lr:g})")
    if args.threads is not None:
        _config.set_num_threads(args.threads)
    (x_train, t_train), _ = load_data(args)  # the test set is never looked at
    model = build_model(args, x_train)
    print(
        f"fastnn lr-find {args.model} on {args.dataset}: {args.optimizer}, batch {args.batch_size}, "
        f"{args.steps} steps from {args.start_lr:g} to {args.end_lr:g} on {len(x_train)} training samples",
        flush=True,
    )
    result = lr_find(
        model,
        x_train,
        t_train,
        start_lr=args.start_lr,
        end_lr=args.end_lr,
        num_steps=args.steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        seed=args.seed,
    )
    print(result.stop_reason)
    suggestion = float(f"{result.suggestion:.2g}")
    print(
        f"suggested learning rate: {suggestion:g} (steepest descent of the smoothed loss; "
        f"a tenth of the rate at its minimum: {result.lr_min_div10:.2g})"
    )
    print("train with: " + shlex.join(train_command(args, {"lr": suggestion})))
    if args.plot:
        from ..plots import plot_lr_find

        print(f"plot: {plot_lr_find(result, args.plot)}")
    return 0
