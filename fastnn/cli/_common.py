"""What several commands share: argument types, the datasets and the built-in networks."""

from __future__ import annotations

import argparse

DATASETS = ("digits", "mnist", "fashion-mnist")
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


def load_data(args):
    """((x_train, t_train), (x_test, t_test)) of ``args.dataset`` (and ``args.data_dir``)."""
    from .. import datasets

    if args.dataset == "digits":
        return datasets.load_digits(seed=args.seed)
    return datasets.load_mnist(args.dataset, path=args.data_dir, verbose=not args.quiet)


def build_model(args, x_train):
    """The built-in network ``args.model`` for ``x_train`` (a ValueError if it cannot take them)."""
    from .. import models

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
