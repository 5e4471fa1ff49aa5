"""What several commands share: argument types, the help formatter, the datasets and the networks."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.01,
    "nesterov": 0.01,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adam": 0.001,
    "adamw": 0.001,
}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def existing_dir(text: str) -> str:
    """An argparse type: a folder that exists (``--data-dir``), so a typo fails at once."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(
            f"folder {text!r} does not exist; pass the folder that holds the dataset files, "
            "or leave --data-dir out to use $FASTNN_DATA and the download cache"
        )
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; pass the folder that holds the dataset files")
    return text


def writable_file(text: str) -> str:
    """An argparse type: a file path whose folder exists (``--save``, ``--plot``), checked before any work."""
    path = Path(text).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: the folder {folder} does not exist; create it first "
            f"(mkdir -p {folder}) or choose another path"
        )
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: it is a folder; give a file name inside it")
    return text


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option that takes a value shows its default, unless its help already says it.

    ``--model M`` with default "mlp" reads "... (default: mlp)"; a default of None reads
    "(default: none)"; lists are joined by spaces. Flags (``--quiet``) are off by default
    and say nothing.
    """

    def _format_action(self, action) -> str:
        annotated = help_with_default(action)
        if annotated != action.help:
            action = copy.copy(action)
            action.help = annotated
        return super()._format_action(action)


def help_with_default(action) -> str | None:
    """``action.help`` with " (default: ...)" appended where :class:`DefaultsHelpFormatter` adds it."""
    help_text = action.help or ""
    if (
        not action.option_strings
        or action.nargs == 0
        or action.default is argparse.SUPPRESS
        or "default" in help_text.lower()
    ):
        return action.help
    default = action.default
    if default is None:
        shown = "none"
    elif isinstance(default, (list, tuple)):
        shown = " ".join(str(value) for value in default)
    else:
        shown = str(default)
    return f"{help_text} (default: {shown.replace('%', '%%')})".lstrip()


def load_data(args):
    """((x_train, t_train), (x_test, t_test)) of ``args.dataset`` (and ``args.data_dir``)."""
    from .. import datasets

    if args.dataset == "digits":
        return datasets.load_digits(seed=args.seed)
    if args.dataset == "cifar10":
        return datasets.load_cifar10(path=args.data_dir, verbose=not args.quiet)
    return datasets.load_mnist(args.dataset, path=args.data_dir, verbose=not args.quiet)


def build_model(args, x_train):
    """The built-in network ``args.model`` for ``x_train`` (a ValueError if it cannot take them).

    Networks that take ``in_channels`` and ``input_size`` (resnet20, vgg, alexnet,
    inception) are built for the data's (C, H, W); the others for (1, 28, 28).
    """
    import inspect

    from .. import models

    in_features = int(x_train[0].size)
    if args.model == "mlp":
        return models.mlp(in_features=in_features, seed=args.seed, backend=args.backend)
    builder = models.MODELS[args.model]
    takes = inspect.signature(builder).parameters
    sample = tuple(x_train.shape[1:])
    if "in_channels" in takes and "input_size" in takes:
        if len(sample) != 3 or sample[1] != sample[2]:
            raise ValueError(
                f"{args.model} takes square images (C, H, H); {args.dataset} has samples of shape "
                f"{sample}: choose an image dataset (mnist, fashion-mnist, digits)"
            )
        model = builder(seed=args.seed, backend=args.backend, in_channels=sample[0], input_size=sample[1])
    else:
        model = builder(seed=args.seed, backend=args.backend)
    try:
        model.output_shape(sample)
    except ValueError as error:
        raise ValueError(
            f"{args.model} does not fit {args.dataset} images of shape "
            f"{sample} (it is built for {model.input_shape}: try --dataset mnist): "
            f"{error}"
        ) from None
    return model
