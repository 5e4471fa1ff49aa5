"""ResNet-20 on Fashion-MNIST: one training recipe, run by fastnn or by PyTorch eager.

The recipe (issue 19's accuracy target, at least 93.0 % test accuracy):
``resnet(depth=20, in_channels=1, input_size=28)``; SGD with momentum 0.9 and weight decay
5e-4 on every parameter, lr 0.1 cosine-decayed to 0 over the epochs (per epoch, PyTorch's
``CosineAnnealingLR``); batch 128, the last batch of an epoch the remainder; random 28x28
crops of the 2-pixel-padded images and horizontal flips.

PyTorch trains the same network (:func:`fastnn.bench.torch_models.translate`: the same
layers and initial weights) on the same augmented batches of the same seeded permutations,
with every core's thread. Each run prints a line per epoch, then the test accuracy and the
wall time:

    python -m benchmarks.resnet_recipe --framework fastnn      # the long test's run
    python -m benchmarks.resnet_recipe --framework torch

``--epochs`` shortens the schedule (the cosine then decays over that many epochs), to time
a few epochs of each.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import fastnn as fnn
from fastnn import models
from fastnn.augment import Compose, RandomCrop, RandomHorizontalFlip

EPOCHS = 30
BATCH_SIZE = 128
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def network(seed: int) -> fnn.Sequential:
    """ResNet-20 for 1x28x28 images, 10 classes."""
    return models.resnet(depth=20, in_channels=1, input_size=28, seed=seed)


def augmentation():
    """Random crops of the 2-pixel-padded images, then horizontal flips."""
    return Compose([RandomCrop(2), RandomHorizontalFlip()])


def train_fastnn(data, epochs: int = EPOCHS, seed: int = 0, verbose: int = 2) -> float:
    """Train with ``Sequential.fit``; returns the test accuracy."""
    (x, t), (x_test, t_test) = data
    model = network(seed)
    model.fit(
        x,
        t,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        optimizer=fnn.optim.Momentum(LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY),
        callbacks=[fnn.schedules.CosineDecay(epochs)],
        augment=augmentation(),
        verbose=verbose,
    )
    return model.evaluate(x_test, t_test)["accuracy"]


def train_torch(data, epochs: int = EPOCHS, seed: int = 0) -> float:
    """Train the translated network with ``torch.optim.SGD``; returns the test accuracy."""
    import torch

    from fastnn.bench.torch_models import translate

    (x, t), (x_test, t_test) = data
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    net = translate(network(seed))
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    augment, rng = augmentation(), np.random.default_rng(seed)
    for epoch in range(epochs):
        started, total, seen = time.perf_counter(), 0.0, 0
        net.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            xb = torch.from_numpy(np.ascontiguousarray(augment(x[batch], rng), dtype=np.float32))
            tb = torch.from_numpy(t[batch].astype(np.int64))
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), tb)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(batch), seen + len(batch)
        schedule.step()
        print(f"epoch {epoch + 1}/{epochs}  loss {total / seen:.4f}  ({time.perf_counter() - started:.1f}s)")
    net.eval()
    with torch.no_grad():
        scores = torch.cat([net(torch.from_numpy(x_test[i : i + 1000])) for i in range(0, len(x_test), 1000)])
    return float((scores.argmax(1).numpy() == t_test).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("fastnn", "torch"), default="fastnn")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="holds fashion-mnist/ (default: $FASTNN_DATA)")
    args = parser.parse_args(argv)
    data = fnn.datasets.load_mnist("fashion-mnist", path=args.data_dir)
    started = time.perf_counter()
    if args.framework == "torch":
        accuracy = train_torch(data, args.epochs, args.seed)
    else:
        accuracy = train_fastnn(data, args.epochs, args.seed)
    elapsed = time.perf_counter() - started
    print(f"{args.framework}: resnet20 on Fashion-MNIST, {args.epochs} epochs: {accuracy:.4f}", end="")
    print(f" in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
