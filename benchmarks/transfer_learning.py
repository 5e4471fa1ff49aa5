"""Transfer learning on MNIST: a body trained on digits 0-4 helps a new head learn 5-9.

A small conv network (two conv-BatchNorm-ReLU-pool stages, Dense(784->64), ReLU, Dense(64->5))
is pretrained on MNIST digits 0-4. Its convolutions and BatchNorms are then frozen
(``trainable = False``: no update, no weight gradient, BatchNorm on its running
statistics) and ``fnn.Sequential(old.layers[:-1] + [fnn.Dense(64, 5)])`` gives it a new
head, which trains (with the Dense(784->64) before it) on a few hundred images of digits
5-9, labels shifted to 0-4. The same network trained from scratch on those images, with
the same epochs, optimizer and seed, is the baseline. Both are scored on every test image
of digits 5-9. The script prints the two accuracies and the times:

    python -m benchmarks.transfer_learning --data-dir ../shared/data/mnist

(It is not an asv benchmark: it measures what transfer buys; the times show that a frozen
body also trains faster, since its weight gradients are not computed.)
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import NamedTuple

import numpy as np

import fastnn as fnn

OLD_DIGITS = (0, 1, 2, 3, 4)
NEW_DIGITS = (5, 6, 7, 8, 9)


def digits(x, t, wanted, limit=None):
    """The images of the ``wanted`` digits (the first ``limit`` of them), labels shifted to
    0..len(wanted)-1 (``wanted`` are consecutive)."""
    keep = np.flatnonzero(np.isin(t, wanted))[:limit]
    return x[keep], (t[keep] - min(wanted)).astype(np.int64)


def network(seed: int) -> fnn.Sequential:
    """(N, 1, 28, 28) -> 5 logits: two conv(3x3)-BatchNorm-ReLU-maxpool(2) stages (8 and 16
    channels), Flatten, Dense(784->64), ReLU, Dense(64->5)."""
    return fnn.Sequential(
        [
            fnn.Conv2D(1, 8, 3, pad=1),
            fnn.BatchNorm(8),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Conv2D(8, 16, 3, pad=1),
            fnn.BatchNorm(16),
            fnn.ReLU(),
            fnn.MaxPool2D(2),
            fnn.Flatten(),
            fnn.Dense(16 * 7 * 7, 64),
            fnn.ReLU(),
            fnn.Dense(64, len(NEW_DIGITS)),
        ],
        seed=seed,
    )


def train(model, x, t, epochs: int, seed: int) -> float:
    """Adam(1e-3), batch 32, ``epochs`` over (x, t); returns the seconds it took."""
    start = time.perf_counter()
    model.fit(x, t, epochs=epochs, batch_size=32, optimizer=fnn.optim.Adam(1e-3), verbose=0, seed=seed)
    return time.perf_counter() - start


def with_new_head(old: fnn.Sequential, seed: int) -> fnn.Sequential:
    """Freeze ``old``'s convolutions and BatchNorms and give it a fresh Dense(64->5) head:
    the new model shares (and keeps) the old layers' trained weights."""
    for layer in old.layers:
        if isinstance(layer, (fnn.Conv2D, fnn.BatchNorm)):
            layer.trainable = False
    return fnn.Sequential(old.layers[:-1] + [fnn.Dense(64, len(NEW_DIGITS))], seed=seed)


def pretrain(mnist, images=None, epochs: int = 1, seed: int = 0):
    """The network trained on ``images`` training images of digits 0-4 (None: all of them):
    (model, its accuracy on the test images of 0-4, seconds); ``mnist`` is
    ``fnn.datasets.load_mnist()``'s result."""
    (x, t), (x_test, t_test) = mnist
    old = network(seed)
    seconds = train(old, *digits(x, t, OLD_DIGITS, images), epochs, seed)
    return old, old.evaluate(*digits(x_test, t_test, OLD_DIGITS))["accuracy"], seconds


class Comparison(NamedTuple):
    new_images: int
    transfer_accuracy: float  # on every test image of digits 5-9
    scratch_accuracy: float
    transfer_seconds: float  # training time
    scratch_seconds: float


def compare(old, mnist, new_images: int = 300, epochs: int = 10, seed: int = 0) -> Comparison:
    """``old`` with a new head (its layers move to the new model, the convolutions and
    BatchNorms frozen), and the same network from scratch, trained on the first
    ``new_images`` training images of 5-9 with the same epochs, optimizer and seed."""
    (x, t), (x_test, t_test) = mnist
    new_x, new_t = digits(x, t, NEW_DIGITS, new_images)
    test = digits(x_test, t_test, NEW_DIGITS)
    transfer = with_new_head(old, seed + 1)
    transfer_seconds = train(transfer, new_x, new_t, epochs, seed)
    scratch = network(seed + 1)
    scratch_seconds = train(scratch, new_x, new_t, epochs, seed)
    accuracy = [model.evaluate(*test)["accuracy"] for model in (transfer, scratch)]
    return Comparison(new_images, *accuracy, transfer_seconds, scratch_seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files (default: FASTNN_DATA)")
    parser.add_argument("--pretrain-images", type=int, default=None, help="images of 0-4 (default: all)")
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument(
        "--new-images", type=int, nargs="+", default=[100, 300], help="training images of 5-9"
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs on the new images (both networks)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    mnist = fnn.datasets.load_mnist("mnist", path=args.data_dir)
    old, accuracy, seconds = pretrain(mnist, args.pretrain_images, args.pretrain_epochs, args.seed)
    print(f"pretrained on digits 0-4: {accuracy:.2%} on their test images ({seconds:.1f} s)")
    print(f"digits 5-9, {args.epochs} epochs, test accuracy (training time):")
    print("images  frozen body + new head   from scratch")
    for count in args.new_images:
        c = compare(copy.deepcopy(old), mnist, count, args.epochs, args.seed)
        print(
            f"{count:>6}  {c.transfer_accuracy:>8.2%} ({c.transfer_seconds:5.1f} s)"
            f"  {c.scratch_accuracy:>8.2%} ({c.scratch_seconds:5.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
