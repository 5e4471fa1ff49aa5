"""The ``fastnn`` command line.

========================  ==============================================================
command                   what it does
========================  ==============================================================
``fastnn train``          train a book network on digits, MNIST or Fashion-MNIST and print
                          its test accuracy; checkpoints (``--checkpoint DIR``) and
                          ``--resume DIR``
``fastnn tune``           random hyperparameter search, scored on a validation split of
                          the training set (never the test set)
``fastnn bench``          time training steps against the NumPy reference and PyTorch,
                          and check the performance targets; ``--zoo`` times the model
                          zoo; ``--compare BASE NEW`` is the regression gate
``fastnn info``           versions, thread counts, threading layer and kernel cache
``fastnn warmup``         compile the kernels ahead of time into the kernel cache (for a
                          container build or right after ``pip install``)
========================  ==============================================================

``python -m fastnn`` runs the same commands. ``fastnn COMMAND --help`` lists the options.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adam": 0.001,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .models import MODELS

    parser = argparse.ArgumentParser(prog="fastnn", description="Fast deep learning on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a network and print its test accuracy")
    train.add_argument("--model", choices=sorted(MODELS), default="mlp")
    train.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits (embedded, offline; the default), mnist or fashion-mnist",
    )
    train.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the IDX .gz files (else $FASTNN_DATA, then the cache)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="passes over the training set (default 30 for digits, 3 otherwise)",
    )
    train.add_argument("--batch-size", type=_positive_int, default=100)
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    train.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="learning rate (default: 0.1 for sgd, 0.001 for adam/rmsprop, else 0.01)",
    )
    train.add_argument("--weight-decay", type=float, default=0.0, help="L2 coefficient")
    train.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    train.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="threads for the numba kernels (default: all cores)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--validation-split", type=float, default=0.0)
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="early stopping patience in epochs (restores the best weights)",
    )
    train.add_argument("--save", default=None, metavar="PATH", help="write the trained model (.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
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
        help="write history.png, filters.png and misclassified.png into DIR "
        "(needs matplotlib: pip install 'fastnn[viz]')",
    )
    train.add_argument(
        "--clip-norm",
        type=_positive_float,
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
        type=_positive_int,
        default=None,
        metavar="N",
        help="checkpoint every N optimizer steps instead of every epoch",
    )
    train.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the run checkpointed in DIR with its saved arguments "
        "(only --epochs, --threads, --save, --plot and --quiet may change)",
    )
    parser.train_parser = train

    commands.add_parser("info", help="print versions, threads, threading layer and cache location")

    tune = commands.add_parser(
        "tune",
        help="random hyperparameter search, scored on a validation "
        "split of the training set (never the test set)",
    )
    tune.add_argument("--model", choices=sorted(MODELS), default="mlp")
    tune.add_argument("--dataset", choices=DATASETS, default="digits")
    tune.add_argument("--data-dir", default=None)
    tune.add_argument("--trials", type=_positive_int, default=10)
    tune.add_argument("--epochs", type=_positive_int, default=2, help="training per trial (brief)")
    tune.add_argument("--batch-size", type=_positive_int, default=100)
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
    tune.add_argument("--threads", type=_positive_int, default=None)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--top", type=_positive_int, default=10, help="trials to list (best first)")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")

    bench = commands.add_parser(
        "bench",
        help="time training steps against the numpy reference and PyTorch, and check the performance targets",
    )
    bench.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        help="timed rounds per measurement (medians are reported; default 20, 10 with --zoo)",
    )
    bench.add_argument("--warmup", type=_positive_int, default=3)
    bench.add_argument(
        "--networks",
        nargs="+",
        default=["mlp", "simple_convnet", "deep_convnet"],
        choices=["mlp", "simple_convnet", "deep_convnet"],
    )
    bench.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy reference")
    bench.add_argument("--no-startup", action="store_true", help="skip the fresh-process start-up timings")
    bench.add_argument("--threads", type=_positive_int, default=None)
    bench.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    bench.add_argument(
        "--zoo",
        action="store_true",
        help="time the model zoo (fastnn.bench.zoo) against PyTorch instead of the suite",
    )
    bench.add_argument(
        "--zoo-networks",
        nargs="+",
        default=None,
        metavar="NAME",
        help="only these zoo networks (implies --zoo)",
    )
    bench.add_argument(
        "--memory",
        action="store_true",
        help="with --zoo: also each workload's peak RSS, fastnn and PyTorch, in fresh processes (slow)",
    )
    bench.add_argument(
        "--compare",
        nargs=2,
        default=None,
        metavar=("BASE", "NEW"),
        help="compare two --json results on their in-run ratios; exit 1 on a regression",
    )
    bench.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="with --compare: the relative worsening of a ratio that counts as a regression (default 0.1)",
    )

    warm = commands.add_parser(
        "warmup",
        help="compile the kernels the networks use into the kernel cache, ahead of time",
        description="Compile, once per machine, the kernels that the named networks (default: "
        "every built-in network plus one network per other layer kind) call in a training "
        "step and in inference at batch 1 and 100, into the on-disk kernel cache, in "
        "parallel processes. Later processes load them instead of compiling.",
    )
    warm.add_argument(
        "--model",
        dest="models",
        nargs="+",
        default=None,
        metavar="NAME",
        help="networks to warm up (default: all; see --list)",
    )
    warm.add_argument(
        "--dtype",
        dest="dtypes",
        nargs="+",
        default=["float32"],
        choices=["float32", "float64"],
        help="dtypes to compile for (default: float32; float64 is what gradient checks use)",
    )
    warm.add_argument(
        "--batch-sizes", nargs="+", type=_positive_int, default=[1, 100], help="batch sizes (default: 1 100)"
    )
    warm.add_argument(
        "--workers", type=_positive_int, default=None, help="compiling processes (default: one per core)"
    )
    warm.add_argument("--list", action="store_true", help="list the network names and exit")
    warm.add_argument("--quiet", action="store_true", help="print nothing")
    return parser


def _load_data(args):
    from . import datasets

    if args.dataset == "digits":
        return datasets.load_digits(seed=args.seed)
    return datasets.load_mnist(args.dataset, path=args.data_dir, verbose=not args.quiet)


def _build_model(args, x_train):
    from . import models

    in_features = int(x_train[0].size)
    if args.model == "mlp":
        return models.mlp(in_features=in_features, seed=args.seed, backend=args.backend)
    model = models.MODELS[args.model](seed=args.seed, backend=args.backend)
    try:
        model.output_shape(x_train.shape[1:])
    except ValueError as error:
        raise ValueError(
            f"{args.model} does not fit {args.dataset} images of shape "
            f"{x_train.shape[1:]} (it is built for (1, 28, 28): try --dataset mnist): "
            f"{error}"
        ) from None
    return model


def cmd_train(args) -> int:
    from . import _config
    from .optim import get_optimizer

    if args.checkpoint_every is not None and args.checkpoint is None and args.resume is None:
        raise ValueError("--checkpoint-every needs --checkpoint DIR")
    if args.resume is None and args.checkpoint is not None:
        _check_fresh_checkpoint_dir(args.checkpoint)
    if args.threads is not None:
        _config.set_num_threads(args.threads)
    started = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = _load_data(args)
    model = _build_model(args, x_train)
    epochs = args.epochs if args.epochs is not None else (30 if args.dataset == "digits" else 3)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    optimizer = get_optimizer(args.optimizer, lr=lr, weight_decay=args.weight_decay)
    print(
        f"fastnn {args.model} on {args.dataset}: {len(x_train)} train / {len(x_test)} test, "
        f"{model.num_params:,d} parameters, {optimizer!r}, backend {args.backend}, "
        f"{_config.get_num_threads()} thread(s)",
        flush=True,
    )
    if args.checkpoint is not None and args.resume is None:
        _save_train_args(args, _config.get_num_threads())
    history = model.fit(
        x_train,
        t_train,
        epochs=epochs,
        batch_size=args.batch_size,
        optimizer=optimizer,
        validation_split=args.validation_split,
        patience=args.patience,
        verbose=0 if args.quiet else 1,
        seed=args.seed,
        clip_norm=args.clip_norm,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume is not None,
        augment=_augmentation(getattr(args, "augment", None)),
    )
    if history.interrupted:
        if args.checkpoint is not None:
            print(
                f"interrupted: resume with: fastnn train --resume {args.checkpoint}",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(
                "interrupted: no checkpoint was written (train with --checkpoint DIR to be able to resume)",
                file=sys.stderr,
                flush=True,
            )
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
        from .plots import save_training_plots

        paths = save_training_plots(model, history, x_test, t_test, args.plot)
        print("plots: " + ", ".join(str(p) for p in paths))
    return 0


def _augmentation(spec):
    if not spec:
        return None
    from .augment import from_spec

    return from_spec(spec)


def cmd_tune(args) -> int:
    from . import _config
    from .tune import format_trials, parse_range, random_search

    if args.threads is not None:
        _config.set_num_threads(args.threads)
    space = {name: parse_range(getattr(args, name)) for name in ("lr", "weight_decay", "l1")}
    (x_train, t_train), _ = _load_data(args)  # the test set is never looked at
    _build_model(args, x_train)  # fail early if the model does not fit
    print(
        f"fastnn tune {args.model} on {args.dataset}: {args.trials} trials x {args.epochs} "
        f"epoch(s), {args.optimizer}, scored on {args.validation_split:.0%} of the "
        f"{len(x_train)} training samples",
        flush=True,
    )
    trials = random_search(
        lambda params: _build_model(args, x_train),
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


def cmd_info(args) -> int:
    import numba
    import numpy
    import scipy

    from . import __version__, _config
    from ._blas import get_kernel_blas_threads
    from .kernels.activations import relu_forward

    relu_forward.parallel(numpy.zeros(4, numpy.float32), numpy.zeros(4, numpy.float32))
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised"
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "kernels", "__pycache__"
    )
    rows = [
        ("fastnn", __version__),
        ("python", platform.python_version()),
        ("numpy", numpy.__version__),
        ("numba", numba.__version__),
        ("scipy", scipy.__version__),
        ("cpu cores", os.cpu_count()),
        ("kernel threads", _config.get_num_threads()),
        ("kernel BLAS threads", get_kernel_blas_threads()),
        ("threading layer", layer),
        ("fastmath", _config.FASTMATH),
        ("parallel", _config.PARALLEL),
        ("parallel threshold", _config.PARALLEL_THRESHOLD),
        ("kernel cache", f"{'on' if _config.CACHE else 'off'}: {cache_dir}"),
        ("FASTNN_DATA", os.environ.get("FASTNN_DATA", "(unset)")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def cmd_bench(args) -> int:
    from . import _config
    from .bench import report

    if args.compare:
        from .bench import compare

        if args.threshold < 0:
            raise ValueError(f"--threshold must be >= 0, got {args.threshold}")
        return compare.main(*args.compare, threshold=args.threshold)
    if args.threads is not None:
        _config.set_num_threads(args.threads)
    if args.zoo or args.zoo_networks:
        return _bench_zoo(args)
    results = report.run(
        repeats=args.repeats or 20,
        warmup=args.warmup,
        networks=tuple(args.networks),
        with_numpy=not args.no_numpy,
        with_startup=not args.no_startup,
    )
    print(report.format_results(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 0


def _bench_zoo(args) -> int:
    from .bench import report, zoo, zoo_bench

    for name in args.zoo_networks or ():
        zoo.get(name)  # fail early on an unknown name
    results = report.header()
    results["zoo"] = zoo_bench.run(
        names=args.zoo_networks,
        repeats=args.repeats or zoo_bench.REPEATS,
        warmup=args.warmup,
        with_memory=args.memory,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(zoo_bench.format_zoo(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 0


def cmd_warmup(args) -> int:
    from .kernel_warmup import networks, warmup

    if args.list:
        for name in networks():
            print(name)
        return 0
    warmup(
        models=args.models,
        dtypes=tuple(args.dtypes),
        batch_sizes=tuple(args.batch_sizes),
        workers=args.workers,
        verbose=not args.quiet,
        file=sys.stdout,
    )
    return 0


TRAIN_ARGS_FILE = "fastnn-train.json"
#: Arguments ``--resume`` may change: they do not change the training's result.
RESUME_MAY_CHANGE = ("epochs", "threads", "save", "quiet", "plot")


def _check_fresh_checkpoint_dir(directory) -> None:
    from .checkpoint import list_checkpoints

    if list_checkpoints(directory):
        raise ValueError(
            f"{directory} already holds checkpoints; continue that run with "
            f"`fastnn train --resume {directory}` or choose an empty folder"
        )


def _save_train_args(args, threads: int) -> None:
    """Write the run's arguments to DIR/fastnn-train.json (atomically), for ``--resume DIR``."""
    import json
    from pathlib import Path

    from ._files import atomic_write

    saved = {k: v for k, v in vars(args).items() if k not in ("command", "resume", "quiet")}
    saved["threads"] = args.threads if args.threads is not None else threads
    directory = Path(args.checkpoint)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(saved, indent=1, sort_keys=True).encode("utf-8")
    atomic_write(directory / TRAIN_ARGS_FILE, lambda handle: handle.write(text))


def _resume_args(parser, argv):
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
    known = {action.dest for action in parser.train_parser._actions}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(f"--resume {directory}: {path} has unknown arguments {unknown}")
    # argparse fills in only the defaults a namespace lacks: saved values stay unless given
    merged = parser.train_parser.parse_args(argv[1:], namespace=argparse.Namespace(**saved))
    for key, value in saved.items():
        if key not in RESUME_MAY_CHANGE and key != "checkpoint" and getattr(merged, key) != value:
            flag = "--" + key.replace("_", "-")
            raise ValueError(
                f"--resume: {flag} cannot change when resuming (the run used "
                f"{value!r}); only --epochs, --threads, --save, --plot and "
                "--quiet can"
            )
    if merged.threads is not None and merged.threads == saved.get("threads"):
        import numba

        merged.threads = min(merged.threads, numba.config.NUMBA_NUM_THREADS)
    merged.command = "train"
    merged.checkpoint = str(directory)
    merged.resume = str(directory)
    return merged


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if args.command == "train" and args.resume is not None:
            args = _resume_args(parser, argv)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "tune":
            return cmd_tune(args)
        if args.command == "warmup":
            return cmd_warmup(args)
        return cmd_info(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"fastnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
