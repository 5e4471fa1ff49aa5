"""The books' overfitting demo: 300 MNIST training samples, a 7-layer MLP, with and without
regularisation (Deep Learning from Scratch 6.4: ``overfit_weight_decay.py`` and
``overfit_dropout.py``).

Six hidden layers of 100 ReLU units (He init), SGD lr 0.01, batch 100, 201 epochs on the
first 300 training images. "l2" adds weight decay 0.1 (the book's lambda), "dropout"
puts Dropout(0.2) after every hidden ReLU. The script prints the final train and test
accuracies and their gap, averaged over seeds:

    python benchmarks/regularization_demo.py --data-dir ../shared/data/mnist --seeds 0 1 2

(It is not an asv benchmark: it measures generalisation, not speed.)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastnn as fnn

CONFIGS = ("baseline", "l2", "dropout")


def build(config: str, seed: int, hidden: int = 100, depth: int = 6) -> fnn.Sequential:
    layers = [fnn.Flatten()]
    width = 784
    for _ in range(depth):
        layers += [fnn.Dense(width, hidden), fnn.ReLU()]
        if config == "dropout":
            layers.append(fnn.Dropout(0.2))
        width = hidden
    layers.append(fnn.Dense(width, 10))
    return fnn.Sequential(layers, seed=seed)


def run(
    config: str,
    data,
    seed: int = 0,
    epochs: int = 201,
    train_size: int = 300,
    lr: float = 0.01,
    weight_decay: float = 0.1,
) -> dict:
    """Train one configuration; returns its final train/test accuracy and gap."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {CONFIGS}, got {config!r}")
    (x, t), (x_test, t_test) = data
    x, t = x[:train_size], t[:train_size]
    model = build(config, seed)
    optimizer = fnn.optim.SGD(lr, weight_decay=weight_decay if config == "l2" else 0.0)
    started = time.perf_counter()
    model.fit(x, t, epochs=epochs, batch_size=100, optimizer=optimizer, verbose=0, seed=seed)
    train = model.evaluate(x, t)["accuracy"]
    test = model.evaluate(x_test, t_test)["accuracy"]
    return {
        "config": config,
        "seed": seed,
        "train": train,
        "test": test,
        "gap": train - test,
        "seconds": time.perf_counter() - started,
    }


def demo(data, seeds=(0, 1, 2), epochs: int = 201, configs=CONFIGS) -> dict:
    """{config: mean train, test and gap over ``seeds``}."""
    results = {}
    for config in configs:
        runs = [run(config, data, seed, epochs) for seed in seeds]
        results[config] = {
            key: float(np.mean([r[key] for r in runs])) for key in ("train", "test", "gap", "seconds")
        }
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=201)
    args = parser.parse_args(argv)
    data = fnn.datasets.load_mnist("mnist", path=args.data_dir)
    results = demo(data, args.seeds, args.epochs)
    print(f"300 MNIST training samples, {args.epochs} epochs, mean of seeds {args.seeds}\n")
    print("| configuration | train accuracy | test accuracy | gap |")
    print("| --- | --- | --- | --- |")
    names = {
        "baseline": "no regularisation",
        "l2": "L2, weight_decay=0.1",
        "dropout": "Dropout(0.2) after each hidden layer",
    }
    for config, r in results.items():
        print(f"| {names[config]} | {r['train']:.3f} | {r['test']:.3f} | {r['gap']:.3f} |")


if __name__ == "__main__":
    main()
