"""Shared set-up for the benchmarks: seeded inputs and the MNIST-shaped batch."""

import numpy as np

BATCH = 100


def random_batch(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def random_labels(n, classes=10, seed=0):
    return np.random.default_rng(seed).integers(0, classes, n)
