"""``fastnn train``: train a built-in network, print its test accuracy; checkpoints and ``--resume``.

Under ``mpiexec -n K`` (K > 1) it trains data-parallel (:mod:`fastnn.distributed`):
``--batch-size`` is the global batch, rank 0 alone prints and writes files.
"""

from __future__ import annotations

import argparse
import sys
import time

from ._common import (
    DATASETS,
    DEFAULT_LR,
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

    train = commands.add_parser("train", help="train a network and print its test accuracy")
    train.add_argument("--model", choices=sorted(MODELS), default="mlp")
    train.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits (embedded, offline; the default), mnist, fashion-mnist or cifar10",
    )
    train.add_argument(
        "--data-dir",
        type=existing_dir,
        default=None,
        help="folder holding the IDX .gz files (else $FASTNN_DATA, then the cache)",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="passes over the training set (default 30 for digits, 3 otherwise)",
    )
    train.add_argument("--batch-size", type=positive_int, default=100)
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    train.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="learning rate (default: 0.1 for sgd, 0.001 for adam/rmsprop, else 0.01)",
    )
    train.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="L2 coefficient (default: 0; for adamw its decoupled decay, default 0.01)",
    )
    train.add_argument("--l1", type=float, default=0.0, help="L1 coefficient")
    train.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    train.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the numba kernels (default: all cores; under mpiexec, the cores / the ranks)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--validation-split", type=float, default=0.0)
    train.add_argument(
        "--patience",
        type=positive_int,
        default=None,
        help="early stopping patience in epochs (restores the best weights)",
    )
    train.add_argument(
        "--save",
        type=writable_file,
        default=None,
        metavar="PATH",
        help="write the trained model (.npz); on Ctrl-C, the weights of the last step",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="0 silent, 1 a progress bar and a line per epoch (the default; the bar only on a "
        "terminal), 2 a line per epoch",
    )
    train.add_argument("--quiet", action="store_true", help="print no progress: the same as --verbose 0")
    train.add_argument(
        "--log",
        default=None,
        metavar="PATH",
        help="write a CSV row per epoch (epoch, loss, accuracy, ..., lr, time) to PATH as training goes",
    )
    train.add_argument(
        "--augment",
        default=None,
        metavar="LIST",
        help="augment every training batch, e.g. 'shift,rotate=15' (names: shift, "
        "crop, rotate, scale, affine, flip; see fastnn.augment.from_spec)",
    )
    train.add_argument(
        "--plot",
        default=None,
        metavar="DIR",
        help="write history.png, filters.png, misclassified.png and confusion.png into DIR "
        "(needs matplotlib: pip install 'fastnn[viz]')",
    )
    train.add_argument(
        "--clip-norm",
        type=positive_float,
        default=None,
        metavar="C",
        help="clip each step's gradient to a global L2 norm of at most C",
    )
    train.add_argument(
        "--checkpoint",
        default=None,
        metavar="DIR",
        help="write checkpoints into DIR (every epoch, or see --checkpoint-every)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        metavar="N",
        help="checkpoint every N optimizer steps instead of every epoch",
    )
    train.add_argument(
        "--dashboard",
        nargs="?",
        const=8000,
        type=_port,
        default=None,
        metavar="PORT",
        help="serve a live page of the run at http://127.0.0.1:PORT/ (PORT default 8000; 0 picks a free "
        "one); the command exits when the run ends, and open pages keep the last frame",
    )
    train.add_argument(
        "--dashboard-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address the dashboard listens on (the default, loopback, is this machine only)",
    )
    train.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run checkpointed in DIR with its saved arguments "
        f"(only {_changeable()} may change)",
    )
    return train


def run(args) -> int:
    from .. import _config
    from ..optim import get_optimizer

    if args.checkpoint_every is not None and args.checkpoint is None and args.resume is None:
        raise ValueError("--checkpoint-every needs --checkpoint DIR")
    args.verbose = _verbosity(args)
    args.quiet = args.verbose == 0
    if args.resume is None and args.checkpoint is not None:
        _check_fresh_checkpoint_dir(args.checkpoint)
    if args.threads is not None:
        _config.set_num_threads(args.threads)
    comm = _communicator(args)
    say = print if comm.is_root else _silent
    started = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = load_data(args)
    model = build_model(args, x_train)
    epochs = args.epochs if args.epochs is not None else (30 if args.dataset == "digits" else 3)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    decay = {} if args.weight_decay is None else {"weight_decay": args.weight_decay}
    optimizer = get_optimizer(args.optimizer, lr=lr, l1=args.l1, **decay)
    ranks = f"{comm.size} MPI ranks x " if comm.size > 1 else ""
    say(
        f"fastnn {args.model} on {args.dataset}: {len(x_train)} train / {len(x_test)} test, "
        f"{model.num_params:,d} parameters, {optimizer!r}, backend {args.backend}, "
        f"{ranks}{_config.get_num_threads()} thread(s)",
        flush=True,
    )
    if args.checkpoint is not None and args.resume is None and comm.is_root:
        _save_train_args(args, _config.get_num_threads())
    dashboard = _dashboard(args, x_test, t_test) if comm.is_root else None
    history = model.fit(
        x_train,
        t_train,
        epochs=epochs,
        batch_size=args.batch_size,
        optimizer=optimizer,
        validation_split=args.validation_split,
        patience=args.patience,
        verbose=args.verbose,
        seed=args.seed,
        clip_norm=args.clip_norm,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume is not None,
        augment=_augmentation(getattr(args, "augment", None)),
        callbacks=_callbacks(args) + ([dashboard] if dashboard is not None else []),
        comm=comm,
    )
    if dashboard is not None:
        dashboard.close()
    if not comm.is_root:  # rank 0 reports and writes the files; the others wait for it, asleep
        comm.barrier_sleeping()
        return 130 if history.interrupted else 0
    if history.interrupted:
        _report_interrupt(args, model, history)
        comm.barrier_sleeping()
        return 130
    if history.stop_reason:
        print(history.stop_reason)
    result = model.evaluate(x_test, t_test)
    print(
        f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
        f"({time.perf_counter() - started:.1f}s)"
    )
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")
    if getattr(args, "plot", None):
        from ..plots import save_training_plots

        paths = save_training_plots(model, history, x_test, t_test, args.plot)
        print("plots: " + ", ".join(str(p) for p in paths))
    comm.barrier_sleeping()
    return 0


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 0..65535, got {text}")
    return value


def _silent(*args, **kwargs) -> None:
    pass


def _communicator(args):
    """The MPI job's communicator (size 1 without mpiexec), with this rank's threads set
    (--threads, else the host's cores / its ranks); rank 0 says once that training is
    data-parallel."""
    from ..distributed import init

    comm = init(threads=args.threads)
    if comm.size > 1 and comm.is_root:
        print(
            f"fastnn train: data-parallel on {comm.size} MPI ranks; --batch-size {args.batch_size} is "
            f"the global batch (about {args.batch_size // comm.size} per rank)",
            flush=True,
        )
    return comm


def _verbosity(args) -> int:
    """--verbose, with --quiet as its synonym for 0 (default 1)."""
    if args.quiet and args.verbose not in (None, 0):
        raise ValueError(
            f"--quiet means --verbose 0; give one of them, not --quiet with --verbose {args.verbose}"
        )
    if args.quiet:
        return 0
    return 1 if args.verbose is None else args.verbose


def _callbacks(args) -> list:
    """The command's callbacks: it reports Ctrl-C itself (:func:`_report_interrupt`), and
    --log PATH adds a CSVLogger, appending when the run resumes (under mpiexec rank 0
    alone writes it: the loggers are ``root_only``)."""
    from ..callbacks import Callback, CSVLogger

    class ReportsInterruptsItself(Callback):
        def on_train_begin(self, model, optimizer):
            self.loop.report_interrupts = False

    callbacks = [ReportsInterruptsItself()]
    if getattr(args, "log", None):
        callbacks.append(CSVLogger(args.log, append=args.resume is not None))
    return callbacks


def _dashboard(args, x_test, t_test):
    """--dashboard's callback, serving from now on: it scores the validation split, or the
    test set when there is none (to show, never to choose anything)."""
    if getattr(args, "dashboard", None) is None:
        return None
    from ..dashboard import Dashboard

    test = args.validation_split == 0
    dashboard = Dashboard(
        port=args.dashboard,
        host=args.dashboard_host,
        validation_data=(x_test, t_test) if test else None,
        held_out_name="test" if test else "validation",
    )
    dashboard.start()
    return dashboard


def _report_interrupt(args, model, history) -> None:
    """After Ctrl-C: write --save's file with the last step's weights, and say what was kept."""
    where = history.interrupted_at
    if args.save:
        model.save(args.save)
        kept = f"saved the model's last weights to {args.save}"
    else:
        kept = "the weights were not saved (pass --save PATH to keep them on Ctrl-C)"
    if args.checkpoint is not None:
        then = f"resume with: fastnn train --resume {args.checkpoint}"
    else:
        then = "to be able to resume, train with --checkpoint DIR"
    print(f"interrupted at {where}: {kept}; {then}", file=sys.stderr, flush=True)


def _augmentation(spec):
    if not spec:
        return None
    from ..augment import from_spec

    return from_spec(spec)


TRAIN_ARGS_FILE = "fastnn-train.json"
#: Arguments ``--resume`` may change: they do not change the training's result.
RESUME_MAY_CHANGE = ("epochs", "threads", "save", "quiet", "verbose", "plot", "log")
#: Arguments not saved with the run: each command line chooses them afresh.
NOT_SAVED = ("command", "resume", "quiet", "verbose", "dashboard", "dashboard_host")


def _changeable() -> str:
    flags = ["--" + name.replace("_", "-") for name in RESUME_MAY_CHANGE]
    return ", ".join(flags[:-1]) + " and " + flags[-1]


def _used(key: str, value, saved: dict) -> str:
    """How the saved value of ``key`` reads in an error: None is the flag's default."""
    if value is not None:
        return repr(value)
    if key == "lr":
        optimizer = saved.get("optimizer", "adam")
        return f"the default, {DEFAULT_LR.get(optimizer, '?')} for {optimizer}"
    return f"the default, no --{key.replace('_', '-')}"


def _check_fresh_checkpoint_dir(directory) -> None:
    from ..checkpoint import list_checkpoints

    if list_checkpoints(directory):
        raise ValueError(
            f"{directory} already holds checkpoints; continue that run with "
            f"`fastnn train --resume {directory}` or choose an empty folder"
        )


def _save_train_args(args, threads: int) -> None:
    """Write the run's arguments to DIR/fastnn-train.json (atomically), for ``--resume DIR``."""
    import json
    from pathlib import Path

    from .._files import atomic_write

    saved = {k: v for k, v in vars(args).items() if k not in NOT_SAVED}
    saved["threads"] = args.threads if args.threads is not None else threads
    directory = Path(args.checkpoint)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, sort_keys=True).encode("utf-8")
    atomic_write(directory / TRAIN_ARGS_FILE, lambda handle: handle.write(text))


def resume_args(parser, argv):
    """The saved arguments of the run in ``--resume DIR``, with the allowed overrides from argv."""
    import json
    from pathlib import Path

    args = parser.parse_args(argv)
    directory = Path(args.resume)
    path = directory / TRAIN_ARGS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        raise ValueError(
            f"--resume {directory}: no {TRAIN_ARGS_FILE} there; it is not a folder "
            "written by `fastnn train --checkpoint`"
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(f"--resume {directory}: cannot read {path} ({error})") from None
    known = {action.dest for action in parser.subparsers["train"]._actions}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(f"--resume {directory}: {path} has unknown arguments {unknown}")
    # argparse fills in only the defaults a namespace lacks: saved values stay unless given
    merged = parser.subparsers["train"].parse_args(argv[1:], namespace=argparse.Namespace(**saved))
    for key, value in saved.items():
        if key not in RESUME_MAY_CHANGE and key != "checkpoint" and getattr(merged, key) != value:
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"--resume: {flag} cannot change when resuming (the run used {_used(key, value, saved)}, "
                f"now {getattr(merged, key)!r}); only {_changeable()} can"
            )
    if merged.threads is not None and merged.threads == saved.get("threads"):
        import numba

        merged.threads = min(merged.threads, numba.config.NUMBA_NUM_THREADS)
    merged.command = "train"
    merged.checkpoint = str(directory)
    merged.resume = str(directory)
    return merged
