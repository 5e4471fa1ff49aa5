"""``fastnn tune``: random hyperparameter search, scored on a validation split of the training set."""

from __future__ import annotations

import argparse
import sys

from ._common import DATASETS, OPTIMIZER_NAMES, build_model, load_data, positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    from ..models import MODELS

    tune = commands.add_parser(
        "tune",
        help="random hyperparameter search, scored on a validation "
        "split of the training set (never the test set)",
    )
    tune.add_argument("--model", choices=sorted(MODELS), default="mlp")
    tune.add_argument("--dataset", choices=DATASETS, default="digits")
    tune.add_argument("--data-dir", default=None)
    tune.add_argument("--trials", type=positive_int, default=10)
    tune.add_argument("--epochs", type=positive_int, default=2, help="training per trial (brief)")
    tune.add_argument("--batch-size", type=positive_int, default=100)
    tune.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    tune.add_argument(
        "--lr",
        default="1e-4:1e-1",
        metavar="LOW:HIGH",
        help="learning-rate range, sampled log-uniformly, or one value (default 1e-4:1e-1)",
    )
    tune.add_argument(
        "--weight-decay",
        default="1e-8:1e-3",
        metavar="LOW:HIGH",
        help="L2 range, log-uniform, or one value; 0 turns it off (default 1e-8:1e-3)",
    )
    tune.add_argument("--l1", default="0", metavar="LOW:HIGH", help="L1 range or value (default 0)")
    tune.add_argument("--validation-split", type=float, default=0.2)
    tune.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    tune.add_argument("--threads", type=positive_int, default=None)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--top", type=positive_int, default=10, help="trials to list (best first)")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")
    return tune


def run(args) -> int:
    from .. import _config
    from ..tune import format_trials, parse_range, random_search

    if args.threads is not None:
        _config.set_num_threads(args.threads)
    space = {name: parse_range(getattr(args, name)) for name in ("lr", "weight_decay", "l1")}
    (x_train, t_train), _ = load_data(args)  # the test set is never looked at
    build_model(args, x_train)  # fail early if the model does not fit
    print(
        f"fastnn tune {args.model} on {args.dataset}: {args.trials} trials x {args.epochs} "
        f"epoch(s), {args.optimizer}, scored on {args.validation_split:.0%} of the "
        f"{len(x_train)} training samples",
        flush=True,
    )
    trials = random_search(
        lambda params: build_model(args, x_train),
        space,
        x_train,
        t_train,
        trials=args.trials,
        epochs=args.epochs,
        validation_split=args.validation_split,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        seed=args.seed,
        verbose=0 if args.quiet else 1,
        file=sys.stdout,
    )
    print(format_trials(trials, args.top))
    best = trials[0].params
    flags = " ".join(f"--{name.replace('_', '-')} {best[name]:.3g}" for name in space if best[name])
    print(
        f"best: fastnn train --model {args.model} --dataset {args.dataset} "
        f"--optimizer {args.optimizer} {flags}"
    )
    return 0
