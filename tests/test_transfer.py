"""Transfer learning on real MNIST (benchmarks/transfer_learning.py): a network pretrained
on digits 0-4, its convolutions and BatchNorms frozen, with a new head beats the same
network trained from scratch on a few hundred images of digits 5-9, and its frozen weights
and running statistics stay bit for bit as they were."""

import copy

import numpy as np
import pytest
from conftest import load_benchmark_script

import fastnn as fnn

tl = load_benchmark_script("transfer_learning")


def check_transfer(mnist_dir, pretrain_images, pretrain_epochs, new_images, epochs, margin):
    mnist = fnn.datasets.load_mnist("mnist", path=mnist_dir)
    old, accuracy, _ = tl.pretrain(mnist, pretrain_images, pretrain_epochs)
    assert accuracy > 0.95, accuracy  # a body worth transferring
    before = copy.deepcopy(old)
    result = tl.compare(old, mnist, new_images, epochs)
    print(f"transfer {result.transfer_accuracy:.4f}, scratch {result.scratch_accuracy:.4f}")
    frozen = [(i, layer) for i, layer in enumerate(old.layers) if not layer.trainable]
    assert [type(layer).__name__ for _, layer in frozen] == ["Conv2D", "BatchNorm"] * 2
    for i, layer in frozen:  # the layers the new model trained with, after its training
        kept = before.layers[i]
        for name, array in {**kept.params, **kept.buffers}.items():
            now = {**layer.params, **layer.buffers}[name]
            np.testing.assert_array_equal(now, array, err_msg=f"layers[{i}] {layer.describe()} {name}")
    dense = old.layers[9]  # trainable, so the new model did train
    assert not np.array_equal(dense.params["W"], before.layers[9].params["W"])
    assert result.transfer_accuracy > result.scratch_accuracy + margin, result


def test_a_frozen_pretrained_body_with_a_new_head_beats_training_from_scratch(mnist_dir):
    """The fast version: a body pretrained on 2,500 images of 0-4 (one epoch), 100 images of
    5-9 for ten epochs (81.7 % against 74.6 % when written)."""
    check_transfer(mnist_dir, 2500, 1, new_images=100, epochs=10, margin=0.03)


@pytest.mark.slow
def test_a_body_pretrained_on_every_image_of_0_to_4_beats_training_from_scratch(mnist_dir):
    """The README's figures: one epoch on all 30,596 images of 0-4 (81.2 % against 74.6 %)."""
    check_transfer(mnist_dir, None, 1, new_images=100, epochs=10, margin=0.05)
