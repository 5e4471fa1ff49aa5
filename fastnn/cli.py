"""The ``fastnn`` command: ``fastnn train`` and ``fastnn info``."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01,
              "rmsprop": 0.001, "adam": 0.001}


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

    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a network and print its test accuracy")
    train.add_argument("--model", choices=sorted(MODELS), default="mlp")
    train.add_argument("--dataset", choices=DATASETS, default="digits",
                       help="digits (embedded, offline; the default), mnist or fashion-mnist")
    train.add_argument("--data-dir", default=None,
                       help="folder holding the IDX .gz files (else $FASTNN_DATA, then the cache)")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help="passes over the training set (default 30 for digits, 3 otherwise)")
    train.add_argument("--batch-size", type=_positive_int, default=100)
    train.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default: 0.1 for sgd, 0.001 for adam/rmsprop, else 0.01)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="L2 coefficient")
    train.add_argument("--backend", choices=("numba", "numpy"), default="numba")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="threads for the numba kernels (default: all cores)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--validation-split", type=float, default=0.0)
    train.add_argument("--patience", type=_positive_int, default=None,
                       help="early stopping patience in epochs (restores the best weights)")
    train.add_argument("--save", default=None, metavar="PATH", help="write the trained model (.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    commands.add_parser("info", help="print versions, threads, threading layer and cache location")

    bench = commands.add_parser("bench", help="time training steps against the numpy reference "
                                              "and PyTorch, and check the performance targets")
    bench.add_argument("--repeats", type=_positive_int, default=20,
                       help="timed rounds per measurement (medians are reported)")
    bench.add_argument("--warmup", type=_positive_int, default=3)
    bench.add_argument("--networks", nargs="+", default=["mlp", "simple_convnet", "deep_convnet"],
                       choices=["mlp", "simple_convnet", "deep_convnet"])
    bench.add_argument("--no-numpy", action="store_true", help="skip the (slow) numpy reference")
    bench.add_argument("--no-startup", action="store_true",
                       help="skip the fresh-process start-up timings")
    bench.add_argument("--threads", type=_positive_int, default=None)
    bench.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
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
        raise ValueError(f"{args.model} does not fit {args.dataset} images of shape "
                         f"{x_train.shape[1:]} (it is built for (1, 28, 28): try --dataset mnist): "
                         f"{error}") from None
    return model


def cmd_train(args) -> int:
    from . import _config
    from .optim import get_optimizer

    if args.threads is not None:
        _config.set_num_threads(args.threads)
    started = time.perf_counter()
    (x_train, t_train), (x_test, t_test) = _load_data(args)
    model = _build_model(args, x_train)
    epochs = args.epochs if args.epochs is not None else (30 if args.dataset == "digits" else 3)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    optimizer = get_optimizer(args.optimizer, lr=lr, weight_decay=args.weight_decay)
    print(f"fastnn {args.model} on {args.dataset}: {len(x_train)} train / {len(x_test)} test, "
          f"{model.num_params:,d} parameters, {optimizer!r}, backend {args.backend}, "
          f"{_config.get_num_threads()} thread(s)", flush=True)
    history = model.fit(x_train, t_train, epochs=epochs, batch_size=args.batch_size,
                        optimizer=optimizer, validation_split=args.validation_split,
                        patience=args.patience, verbose=0 if args.quiet else 1, seed=args.seed)
    if history.stop_reason:
        print(history.stop_reason)
    result = model.evaluate(x_test, t_test)
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"({time.perf_counter() - started:.1f}s)")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")
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
        os.path.dirname(os.path.abspath(__file__)), "kernels", "__pycache__")
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

    if args.threads is not None:
        _config.set_num_threads(args.threads)
    results = report.run(repeats=args.repeats, warmup=args.warmup, networks=tuple(args.networks),
                         with_numpy=not args.no_numpy, with_startup=not args.no_startup)
    print(report.format_results(results))
    if args.json:
        report.write_json(results, args.json)
        print(f"\nwrote {args.json}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "bench":
            return cmd_bench(args)
        return cmd_info(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"fastnn {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
