"""The ``fastnn`` command line: one module per command in this package.

========================  ==============================================================
command                   what it does
========================  ==============================================================
``fastnn train``          train a network on digits, MNIST, Fashion-MNIST or CIFAR-10 and
                          print its test accuracy; checkpoints (``--checkpoint DIR``) and
                          ``--resume DIR``
``fastnn tune``           random hyperparameter search, scored on a validation split of
                          the training set (never the test set)
``fastnn lr-find``        the learning-rate range test: prints the suggested rate and the
                          ``fastnn train`` command that uses it; ``--plot PATH.png``
``fastnn bench``          time training steps against the NumPy reference and PyTorch,
                          and check the performance targets; ``--zoo`` times the model
                          zoo; ``--compare BASE NEW`` is the regression gate
``fastnn info``           versions, thread counts, threading layer and kernel cache
``fastnn warmup``         compile the kernels ahead of time into the kernel cache (for a
                          container build or right after ``pip install``)
``fastnn evaluate``       a saved model's loss, accuracy, per-class precision, recall and
                          F1, and confusion matrix on a data set's test split
``fastnn predict``        a saved model's classes (or ``--proba`` probabilities) for the
                          inputs in a .npy file, printed or written to ``--out``
``fastnn summary``        a saved model's layers, output shapes, parameters and memory
``fastnn export``         write a saved model as an ONNX file (``pip install 'fastnn[onnx]'``)
``fastnn compare``        a saved model's training step on numba against the NumPy
                          reference, per layer: differences, bounds and times; exit 1 at a
                          layer beyond its bound
``fastnn verify``         every numba op against the NumPy reference on this machine: worst
                          error against the oracle's bound and speed-up per op; exit 1 on a
                          failure, with the command that reproduces it
``fastnn playground``     the Neural Network Playground in the browser, trained by fastnn
========================  ==============================================================

``python -m fastnn`` runs the same commands. ``fastnn COMMAND --help`` lists the options.

A command is a module here with ``add_parser(commands)``, which adds its subparser to
the ``argparse`` subparsers ``commands`` and returns it, and ``run(args) -> int``, the
exit status; :data:`COMMANDS` lists them in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._common import DefaultsHelpFormatter

#: The commands, in the order ``fastnn --help`` lists them: name -> module in this package.
COMMANDS = {
    "train": "train",
    "tune": "tune",
    "lr-find": "lr_find",
    "bench": "bench",
    "info": "info",
    "warmup": "warmup",
    "evaluate": "evaluate",
    "predict": "predict",
    "summary": "summary",
    "export": "export",
    "compare": "compare",
    "verify": "verify",
    "playground": "playground",
}


def _command(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: its --help shows every option's default (:class:`DefaultsHelpFormatter`)."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnn",
        description="Fast deep learning on the CPU: train, tune, evaluate, export and benchmark networks.",
        epilog="Run 'fastnn COMMAND --help' for the options of a command; 'python -m fastnn' "
        "runs the same commands.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND", parser_class=_CommandParser
    )
    parser.subparsers = {name: _command(name).add_parser(commands) for name in COMMANDS}
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        if args.command == "train" and args.resume is not None:
            args = _command("train").resume_args(parser, argv)
        return _command(args.command).run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, ImportError) as error:
        print(f"fastnn {args.command}: error: {error}", file=sys.stderr)
        return 2
