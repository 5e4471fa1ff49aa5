# %% [markdown]
# # 8. Overfitting, weight decay and dropout
#
# *Deep Learning from Scratch*, chapter 6.4 (figures 6-20 to 6-23).
#
# A network overfits when it learns its training set so well that it stops getting better, or gets
# worse, on data it has not seen. Two things make it likely: many parameters and little data. The
# book provokes it on purpose: a seven-layer network (six hidden layers of 100 ReLU units, about
# 140,000 weights) trained on only the first 300 MNIST training images, and measured on the 10,000
# test images.
#
# Two remedies:
#
# * **Weight decay** (L2 regularisation) adds `0.5 * lambda * sum(W^2)` to the loss, so the gradient
#   of every weight gets `lambda * W` added: each step pulls the weights towards 0, and large weights
#   must pay for themselves by lowering the loss. In fastnn it is the `weight_decay=lambda` argument of
#   every optimizer, inside the fused update: `g <- g + weight_decay * W` (PyTorch's form; it applies
#   to the biases too, where the book decays only the weights).
# * **Dropout** sets each hidden unit's output to 0 with probability `p` during training, a new random
#   choice for every batch, so no unit can rely on any other. fastnn's `Dropout(p)` is "inverted"
#   dropout: it scales the survivors by `1 / (1 - p)` during training, so at inference, when it passes
#   everything through unchanged, the expected input of the next layer is the same.

# %%
import os

import matplotlib.pyplot as plt

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
EPOCHS = 201 if FULL else 61  # the book's 201 (301 for dropout); the reduced run, used by CI, 61
DROPOUT_EPOCHS = 301 if FULL else 61

(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
x_train, t_train = x_train[:300], t_train[:300]
if not FULL:
    x_test, t_test = x_test[:1000], t_test[:1000]  # the reduced run measures on 1,000 test images
print("training images", len(x_train), " test images", len(x_test))


# %% [markdown]
# ## Train and test accuracy after every epoch
#
# `fit` measures the validation data (here the test set, only to draw the curve, never to choose
# anything) after every epoch in inference mode. Its `history["accuracy"]` is measured during the
# epoch, on the batches as they were trained (with dropout on); the book's figures show the
# training set's accuracy in inference mode instead, so a small callback measures that after every
# epoch.


# %%
class TrainAccuracy(fnn.callbacks.Callback):
    """Records the accuracy on (x, t) in inference mode after every epoch."""

    def __init__(self, x, t):
        self.x, self.t, self.values = x, t, []

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        self.values.append(model.evaluate(self.x, self.t)["accuracy"])


def network(dropout=0.0):
    """Flatten -> 6 x (Dense 100 -> ReLU [-> Dropout]) -> Dense 10, He initialisation."""
    layers, width = [fnn.Flatten()], 784
    for _ in range(6):
        layers += [fnn.Dense(width, 100), fnn.ReLU()]
        if dropout:
            layers.append(fnn.Dropout(dropout))
        width = 100
    layers.append(fnn.Dense(width, 10))
    return fnn.Sequential(layers, seed=0)


def experiment(model, epochs, weight_decay=0.0):
    """SGD (lr 0.01, batches of 100) for `epochs`; returns (train, test) accuracy per epoch."""
    train = TrainAccuracy(x_train, t_train)
    history = model.fit(
        x_train,
        t_train,
        epochs=epochs,
        batch_size=100,
        optimizer=fnn.optim.SGD(lr=0.01, weight_decay=weight_decay),
        validation_data=(x_test, t_test),
        callbacks=[train],
        verbose=0,
        seed=0,
    )
    return train.values, history["val_accuracy"]


runs = {
    "no regularisation": experiment(network(), EPOCHS),
    "weight decay 0.1": experiment(network(), EPOCHS, weight_decay=0.1),
    "dropout 0.2": experiment(network(dropout=0.2), DROPOUT_EPOCHS),
}

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, (name, (train, test)) in zip(axes, runs.items()):
    ax.plot(range(1, len(train) + 1), train, label="train")
    ax.plot(range(1, len(test) + 1), test, label="test")
    ax.set_title(name)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1.02)
axes[0].set_ylabel("accuracy")
axes[0].legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# Without regularisation (figure 6-20) the training accuracy climbs to 100 % (in the book's run within
# about a hundred epochs; the reduced run stops at 61), and the test accuracy stops far below it: the
# gap is overfitting. Weight decay (figure
# 6-21) keeps the training accuracy below 100 % and the gap smaller. Dropout (figure 6-23) also slows
# the fit of the training set, so part of its smaller gap is simply less training; the book runs it
# for 301 epochs. The last epoch of each run:

# %%
print(f"{'':<18} {'epochs':>6} {'train':>6} {'test':>6} {'gap':>6}")
for name, (train, test) in runs.items():
    print(f"{name:<18} {len(train):>6} {train[-1]:>6.3f} {test[-1]:>6.3f} {train[-1] - test[-1]:>6.3f}")

# %% [markdown]
# `benchmarks/regularization_demo.py` in the repository runs the same three configurations over three
# seeds and prints the mean (its table is in `docs/training.md`); one seed, as here, can land a few
# points either way.
