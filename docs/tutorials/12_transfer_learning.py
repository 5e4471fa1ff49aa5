# %% [markdown]
# # 12. Transfer learning
#
# The first layers of a trained convolutional network detect edges, strokes and blobs (tutorial 10
# showed its filters). Little of that is specific to the classes it was trained on, so a network
# trained on one task is a head start for another: keep its body, give it a new last layer (a new
# "head"), and train on the new task's few examples. Nielsen's chapter 6 and the deep-learning
# literature call this transfer learning; here it is done by hand on MNIST.
#
# The plan, after `benchmarks/transfer_learning.py` and `tests/test_transfer.py`:
#
# 1. pretrain a small conv network on the digits 0-4;
# 2. freeze its convolutions and BatchNorms (`layer.trainable = False`: no update, no weight
#    gradient, BatchNorm on its running statistics), replace its head `Dense(64->5)` by a fresh one;
# 3. train that on a few images of the *new* digits 5-9 (labels shifted to 0-4);
# 4. compare with the same network trained from scratch on the same images, with the same epochs,
#    optimizer and seed. Both are scored on test images of 5-9 (every one in the full run).

# %%
import copy
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()


def digits(x, t, wanted, limit=None):
    """The images of the digits in ``wanted`` (the first ``limit``), labels shifted to 0..4."""
    keep = np.flatnonzero(np.isin(t, wanted))[:limit]
    return x[keep], (t[keep] - min(wanted)).astype(np.int64)


def network(seed):
    """(N, 1, 28, 28) -> 5 logits: two conv(3x3)-BatchNorm-ReLU-maxpool stages, Dense(784->64), head."""
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
            fnn.Dense(64, 5),
        ],
        seed=seed,
    )


def train(model, x, t, epochs):
    start = time.perf_counter()
    model.fit(x, t, epochs=epochs, batch_size=32, optimizer=fnn.optim.Adam(1e-3), verbose=0, seed=0)
    return time.perf_counter() - start


# %% [markdown]
# ## 1. Pretraining on 0-4
#
# The reduced run pretrains on 1,500 images of 0-4 and scores on 1,000 test images; with
# `FASTNN_TUTORIAL_FULL=1` it pretrains on all of them (about 30,600) and scores on every test image.
# One epoch each.

# %%
PRETRAIN = None if FULL else 1500
TEST = None if FULL else 1000
old = network(seed=0)
seconds = train(old, *digits(x_train, t_train, (0, 1, 2, 3, 4), PRETRAIN), epochs=1)
accuracy = old.evaluate(*digits(x_test, t_test, (0, 1, 2, 3, 4), TEST))["accuracy"]
print(f"pretrained on 0-4: {accuracy:.2%} on their test images ({seconds:.1f} s)")

# %% [markdown]
# ## 2. Freeze the body, new head
#
# `fnn.Sequential(old.layers[:-1] + [fnn.Dense(64, 5)])` builds a model from the old layers (with
# their trained weights) and a new head. The `trainable` flag is per layer: here the convolutions
# and BatchNorms are frozen and `Dense(784->64)` keeps learning with the head.


# %%
def with_new_head(old, seed):
    for layer in old.layers:
        if isinstance(layer, (fnn.Conv2D, fnn.BatchNorm)):
            layer.trainable = False
    return fnn.Sequential(old.layers[:-1] + [fnn.Dense(64, 5)], seed=seed)


new = with_new_head(copy.deepcopy(old), seed=1)
for layer in new.layers:
    if layer.params:
        state = "frozen" if not layer.trainable else "trains"
        print(f"{layer.describe():28s} {sum(p.size for p in layer.params.values()):6d} parameters  {state}")

# %% [markdown]
# ## 3 and 4. Few images of 5-9: transfer against scratch
#
# Each count of new training images trains a fresh copy of the pretrained body with a new head, and a
# network from scratch, for the same epochs. The frozen layers' weight gradients are never computed;
# the printed training times show what that saves here (on a few hundred images, little, next to the
# fixed costs of each call).

# %%
COUNTS = [50, 100, 300, 1000] if FULL else [100]
EPOCHS = 10 if FULL else 5
test_new = digits(x_test, t_test, (5, 6, 7, 8, 9), TEST)
results = []
for count in COUNTS:
    x_new, t_new = digits(x_train, t_train, (5, 6, 7, 8, 9), count)
    transfer = with_new_head(copy.deepcopy(old), seed=1)
    frozen_before = transfer.layers[0].params["W"].copy()
    transfer_seconds = train(transfer, x_new, t_new, EPOCHS)
    assert np.array_equal(transfer.layers[0].params["W"], frozen_before)  # frozen: never updated
    scratch = network(seed=1)
    scratch_seconds = train(scratch, x_new, t_new, EPOCHS)
    row = (count, transfer.evaluate(*test_new)["accuracy"], scratch.evaluate(*test_new)["accuracy"])
    results.append(row)
    print(
        f"{count:5d} images of 5-9, {EPOCHS} epochs: transfer {row[1]:.2%} ({transfer_seconds:.1f} s), "
        f"from scratch {row[2]:.2%} ({scratch_seconds:.1f} s)"
    )

# %%
counts = np.arange(len(results))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(counts - 0.2, [r[1] for r in results], width=0.4, label="pretrained body, new head")
ax.bar(counts + 0.2, [r[2] for r in results], width=0.4, label="from scratch")
ax.set_xticks(counts, [str(r[0]) for r in results])
ax.set_xlabel("training images of the digits 5-9")
ax.set_ylabel("test accuracy on 5-9")
ax.set_ylim(0, 1)
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A different task: Fashion-MNIST (full run only)
#
# Clothes are not digits, but they are also 28x28 grey images made of edges and blobs. With
# `FASTNN_TUTORIAL_FULL=1` the digit body (frozen) gets a ten-class head and trains on 500
# Fashion-MNIST images, against a network from scratch. The reduced run skips it.

# %%
if FULL:
    (xf, tf), (xf_test, tf_test) = fnn.datasets.load_mnist("fashion-mnist")
    body = copy.deepcopy(old)
    for layer in body.layers:
        if isinstance(layer, (fnn.Conv2D, fnn.BatchNorm)):
            layer.trainable = False
    fashion_transfer = fnn.Sequential(body.layers[:-1] + [fnn.Dense(64, 10)], seed=1)
    fashion_scratch = fnn.Sequential(network(seed=1).layers[:-1] + [fnn.Dense(64, 10)], seed=1)
    for name, model in (("transfer", fashion_transfer), ("from scratch", fashion_scratch)):
        train(model, xf[:500], tf[:500], EPOCHS)
        print(f"Fashion-MNIST, 500 images, {name}: {model.evaluate(xf_test, tf_test)['accuracy']:.2%}")
