"""``fastnn tune``: random hyperparameter search, scored on a validation split of the training set."""

from __future__ import annotations

import argparse
import shlex
import sys

from ._common import DATASETS, OPTIMIZER_NAMES, build_model, existing_dir, load_data, positive_int


def add_parser(commands) -> argparse.ArgumentParser:
    from ..models import MODELS

    tune = commands.add_parser(
        "tune",
        help="random hyperparameter search on a validation split",
        description="Random hyperparameter search, scored on a validation split of the training "
        "set (never the test set); prints the trials, best first, and the fastnn train command "
        "that trains the best one.",
    )
    tune.add_argument("--model", choices=sorted(MODELS), default="mlp")
    tune.add_argument("--dataset", choices=DATASETS, default="digits")
    tune.add_argument(
        "--data-dir",
        type=existing_dir,
        default=None,
        help="folder holding the IDX .gz files (default: $FASTNN_DATA, then the download cache)",
    )
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
    tune.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the numba kernels (default: all cores)",
    )
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--top", type=positive_int, default=10, help="trials to list (best first)")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")
    return tune


def run(args) -> int:
    from .. import _config
    from ..distributed import init
    from ..tune import format_trials, parse_range, random_search

    if args.threads is not None:
        _config.set_num_threads(args.threads)
    comm = init(threads=args.threads)  # under mpiexec -n K the trials are spread over the ranks
    say = print if comm.is_root else _silent
    space = {name: parse_range(getattr(args, name)) for name in ("lr", "weight_decay", "l1")}
    (x_train, t_train), _ = load_data(args)  # the test set is never looked at
    build_model(args, x_train)  # fail early if the model does not fit
    ranks = f", spread over {comm.size} MPI ranks" if comm.size > 1 else ""
    say(
        f"fastnn tune {args.model} on {args.dataset}: {args.trials} trials x {args.epochs} "
        f"epoch(s), {args.optimizer}, scored on {args.validation_split:.0%} of the "
        f"{len(x_train)} training samples{ranks}",
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
        comm=comm,
    )
    say(format_trials(trials, args.top))
    say("best: " + shlex.join(train_command(args, trials[0].params)))
    return 0


def _silent(*args, **kwargs) -> None:
    pass


def train_command(args, rates: dict) -> list[str]:
    """``fastnn train`` with ``rates`` ({"lr", optional "weight_decay" and "l1"}) and every argument
    of ``args`` that shapes the training (model, dataset, data folder, optimizer, batch size,
    backend, seed, threads; the last four only where they differ from train's defaults).

    Values are written exactly (``repr``), so the command trains what was found; the
    epochs and the validation split are left to ``train`` (a search trains briefly on a
    part of the data, the final run on all of it).
    """
    from . import build_parser

    train_defaults = build_parser().subparsers["train"].parse_args([])
    command = ["fastnn", "train", "--model", args.model, "--dataset", args.dataset]
    if args.data_dir is not None:
        command += ["--data-dir", args.data_dir]
    command += ["--optimizer", args.optimizer, "--lr", repr(float(rates["lr"]))]
    for name in ("weight_decay", "l1"):
        zero_overrides_default = name == "weight_decay" and args.optimizer == "adamw"  # AdamW's is 0.01
        if rates.get(name) or (name in rates and zero_overrides_default):
            command += [f"--{name.replace('_', '-')}", repr(float(rates[name]))]
    for name in ("batch_size", "backend", "seed", "threads"):
        value = getattr(args, name)
        if value is not None and value != getattr(train_defaults, name):
            command += [f"--{name.replace('_', '-')}", str(value)]
    return command
