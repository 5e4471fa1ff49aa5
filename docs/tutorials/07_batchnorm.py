# %% [markdown]
# # 7. Batch normalisation
#
# *Deep Learning from Scratch*, chapter 6.3 (figures 6-16 to 6-19).
#
# Tutorial 6 showed that a network learns only when its activations stay spread out, and that the
# right initial weights depend on the activation function. Batch normalisation (Ioffe and Szegedy,
# 2015) enforces the spread instead of hoping for it: after each layer, it normalises every unit over
# the mini-batch, then lets the network scale and shift the result with two learned parameters.
#
# For a mini-batch `x_1 ... x_m` of one unit's inputs:
#
# ```text
# mu      = (1/m) sum_i x_i                    the batch mean
# var     = (1/m) sum_i (x_i - mu)^2           the batch variance (biased)
# x_hat_i = (x_i - mu) / sqrt(var + eps)       mean 0, variance 1
# y_i     = gamma * x_hat_i + beta             gamma, beta: learned, one per unit (start at 1 and 0)
# ```
#
# At inference there may be one sample, so the layer uses running averages kept during training
# instead: `running = momentum * running + (1 - momentum) * batch`. In fastnn this is
# `fnn.BatchNorm(num_features, momentum=0.9, eps=1e-5)`: per feature on (N, D) inputs, per channel on
# (N, C, H, W) images.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"

# %% [markdown]
# ## The formula, checked by hand
#
# A batch of 8 samples with 3 features of very different scales goes through a `BatchNorm(3)` in
# training mode; the formula above, written in NumPy, gives the same numbers.

# %%
rng = np.random.default_rng(0)
x = (rng.standard_normal((8, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.0]).astype(np.float32)
bn = fnn.Sequential([fnn.BatchNorm(3)], seed=0)
y = bn.forward(x, train=True)

mu = x.mean(axis=0)
var = x.var(axis=0)
by_hand = (x - mu) / np.sqrt(var + 1e-5)  # gamma = 1, beta = 0 at the start
print("per-feature mean of y:", y.mean(axis=0).round(6), " std of y:", y.std(axis=0).round(4))
print("largest difference from the formula:", float(np.abs(y - by_hand).max()))

# %% [markdown]
# ## The experiment (figure 6-19)
#
# The book trains a network with five hidden layers of 100 ReLU units on only 1,000 MNIST images
# (SGD, lr 0.01, batches of 100, 20 epochs), once with a `BatchNorm` between every `Dense` and its
# `ReLU` and once without, for sixteen initial weight scales from std 1 down to 0.0001. The reduced
# run (CI's) uses four scales and 10 epochs; `FASTNN_TUTORIAL_FULL=1` runs the book's sixteen and 20.
#
# The `BatchNorm` layers here take the book's `eps=1e-6` rather than fastnn's default `1e-5`. At the
# smallest scales the batch variance of a unit's input is itself below `1e-5` (784 inputs of mean
# square about 0.1 with weights of variance `1e-8` give about `8e-7`), so a larger `eps` would
# dominate `var + eps` and shrink the normalised values instead of scaling them to variance 1.

# %%
SCALES = np.logspace(0, -4, 16 if FULL else 4)
EPOCHS = 20 if FULL else 10
(x_train, t_train), _ = fnn.datasets.load_mnist()
x_train, t_train = x_train[:1000], t_train[:1000]


def network(std, batchnorm):
    """784 -> 5 x (Dense 100 [-> BatchNorm] -> ReLU) -> Dense 10, all weights ~ Normal(0, std^2)."""
    layers, width = [fnn.Flatten()], 784
    for _ in range(5):
        layers.append(fnn.Dense(width, 100, init=float(std)))
        if batchnorm:
            layers.append(fnn.BatchNorm(100, eps=1e-6))
        layers.append(fnn.ReLU())
        width = 100
    layers.append(fnn.Dense(width, 10, init=float(std)))
    return fnn.Sequential(layers, seed=0)


def train(model, seed=0):
    """The book's loop: random batches of 100, the training accuracy after every epoch of 10 steps.

    A run whose loss overflows to NaN or Inf (train_step raises fnn.NonFiniteError, naming the
    layer) stops there: its curve ends early."""
    optimizer = fnn.optim.SGD(lr=0.01)
    batches = np.random.default_rng(seed)
    accuracy = [model.evaluate(x_train, t_train)["accuracy"]]
    try:
        for _ in range(EPOCHS):
            for _ in range(len(x_train) // 100):
                i = batches.choice(len(x_train), 100, replace=False)
                model.train_step(x_train[i], t_train[i], optimizer)
            accuracy.append(model.evaluate(x_train, t_train)["accuracy"])
    except fnn.NonFiniteError as error:
        print(f"diverged after {len(accuracy) - 1} epochs: {error}")
    return accuracy


curves = {std: (train(network(std, True)), train(network(std, False))) for std in SCALES}

# %%
columns = 4
rows = len(SCALES) // columns
fig, axes = plt.subplots(rows, columns, figsize=(12, 2.6 * rows), sharex=True, sharey=True, squeeze=False)
for ax, (std, (with_bn, without)) in zip(axes.ravel(), curves.items()):
    ax.plot(with_bn, label="with BatchNorm")
    ax.plot(without, "--", label="without")
    if len(without) < EPOCHS + 1:
        ax.plot(len(without) - 1, without[-1], "x", color="C1", label="diverged")
    ax.set_title(f"W std {std:.2g}")
    ax.set_ylim(0, 1)
for ax in axes[-1]:
    ax.set_xlabel("epoch")
for ax in axes[:, 0]:
    ax.set_ylabel("training accuracy")
axes[0, 0].legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# In the book's figure (sixteen scales, 20 epochs) the networks with batch normalisation learn at
# almost every scale, and faster; without it only a narrow band of scales learns at all. Every layer
# here draws its weights with the same std, so the band sits where that std suits the hidden layers:
# near He's `sqrt(2 / 100) = 0.14` for their 100 inputs. Too large a scale makes the plain network's
# outputs overflow; fastnn stops such a step with `NonFiniteError`, naming the layer, rather than
# train on NaN. At the largest scale even the normalised network is slow: its last `Dense` layer,
# which has no `BatchNorm` after it, starts with logits of standard deviation about 7, so the
# softmax is saturated. Compare the table below with the book's figure: in fastnn's full run the
# normalised networks at the smallest scales (below about 0.001) learn only part of the way in 20
# epochs. The final training accuracies of this run:
# %%
print(f"{'W std':>8} {'with BN':>8} {'without':>8}")
for std, (with_bn, without) in curves.items():
    diverged = "" if len(without) == EPOCHS + 1 else f"  (diverged after {len(without) - 1} epochs)"
    print(f"{std:>8.2g} {with_bn[-1]:>8.3f} {without[-1]:>8.3f}{diverged}")
