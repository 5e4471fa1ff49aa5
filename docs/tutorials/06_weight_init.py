# %% [markdown]
# # 6. Weight initialisation: the activation histograms
#
# *Deep Learning from Scratch*, chapter 6.2 (figures 6-10 to 6-15).
#
# How the first weights are drawn decides whether a deep network can learn at all. The book's
# experiment: push 1,000 random inputs through five fully connected layers of 100 units and look at
# the distribution of each layer's activations. Every weight is drawn from a normal distribution
# `W ~ Normal(0, std^2)`; fastnn's `Dense(..., init=...)` takes the std as a float, or a rule that
# computes it from the number of inputs `n` of the layer:
#
# | `init=` | std | for |
# | --- | --- | --- |
# | `1.0`, `0.01` | fixed | the naive choices |
# | `"xavier"` | `sqrt(1 / n)` | sigmoid and tanh (the book's form of Glorot and Bengio's rule) |
# | `"he"` | `sqrt(2 / n)` | ReLU (He et al.): ReLU zeroes half its inputs, so twice the variance |
#
# With `n` inputs of variance 1 and weights of variance `std^2`, a unit's input `sum_i x_i W_i` has
# variance `n * std^2`; Xavier's choice keeps it at 1, layer after layer.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
ITERATIONS = 2000 if FULL else 200  # figure 6-15's training run; the reduced run, used by CI, 200 steps

x = np.random.default_rng(0).standard_normal((1000, 100)).astype(np.float32)


# %% [markdown]
# ## Looking inside the network
#
# A `Sequential` keeps its layers in `.layers`, and every layer has `forward(x, train)`, so we can run
# the network one layer at a time and keep each activation layer's output.


# %%
def activations(init, activation, layers=5, units=100):
    """The outputs of the activation layers of a `layers`-deep net of `units` units, for input x."""
    stack = []
    for _ in range(layers):
        stack += [fnn.Dense(units, units, init=init), activation()]
    model = fnn.Sequential(stack, seed=0)
    outputs, h = [], x
    for layer in model.layers:
        h = layer.forward(h, train=False)
        if not isinstance(layer, fnn.Dense):
            outputs.append(h)
    return outputs


def histograms(rows, activation, title):
    """One row of five histograms (a column per layer) for each (label, init) in rows."""
    fig, axes = plt.subplots(len(rows), 5, figsize=(12, 2.2 * len(rows)), sharey="row", squeeze=False)
    for r, (label, init) in enumerate(rows):
        for i, a in enumerate(activations(init, activation)):
            ax = axes[r, i]
            if activation is fnn.ReLU:
                ax.hist(
                    a[a > 0], bins=30, range=(0, 2), histtype="stepfilled"
                )  # leave out ReLU's zeros, half of all outputs
            else:
                ax.hist(a.ravel(), bins=30, range=(0, 1), histtype="stepfilled")
            ax.set_title(f"layer {i + 1}" if r == 0 else "")
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label)
    fig.suptitle(title)
    fig.tight_layout()


# %% [markdown]
# ## Sigmoid
#
# With std 1 (figure 6-10) the weighted sums are large, the sigmoid saturates and the activations pile
# up at 0 and 1, where its slope, `sigmoid'(a) = y (1 - y)`, is nearly 0: the gradients vanish. With
# std 0.01 (figure 6-11) they all crowd around 0.5: every unit computes nearly the same thing, so the
# layer acts like a single unit ("limited expressive power"). Xavier (figure 6-13) keeps them spread
# out in every layer.

# %%
histograms([("std 1", 1.0), ("std 0.01", 0.01), ("Xavier", "xavier")], fnn.Sigmoid, "sigmoid activations")
plt.show()

# %% [markdown]
# ## ReLU
#
# For ReLU (figure 6-14) std 0.01 leaves the activations tiny, Xavier lets them shrink a little with
# every layer, and He keeps the same spread in all five. ReLU outputs exactly 0 for half of its inputs;
# these histograms leave the zeros out and show the positive outputs.

# %%
histograms([("std 0.01", 0.01), ("Xavier", "xavier"), ("He", "he")], fnn.ReLU, "ReLU activations")
plt.show()

# %% [markdown]
# The spread of each layer's output in numbers, the standard deviation of the activations:

# %%
for activation in (fnn.Sigmoid, fnn.ReLU):
    for init in (1.0, 0.01, "xavier", "he"):
        stds = [float(a.std()) for a in activations(init, activation)]
        print(f"{activation.__name__:<8} init={init!s:<7} " + "  ".join(f"{s:.4f}" for s in stds))

# %% [markdown]
# ## Does it matter for learning? (figure 6-15)
#
# The same comparison on MNIST: a five-layer network (four hidden layers of 100 ReLU units) trained
# with plain SGD (lr 0.01, batches of 128), started from the three initialisations. With std 0.01 the
# signal, and so the gradient, is so small that it barely learns in the book's 2000 steps; Xavier and
# He learn, He fastest.

# %%
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
rng = np.random.default_rng(0)
batches = [rng.choice(len(x_train), 128, replace=False) for _ in range(ITERATIONS)]

curves = {}
for label, init in (("std 0.01", 0.01), ("Xavier", "xavier"), ("He", "he")):
    model = fnn.models.mlp(hidden=(100, 100, 100, 100), init=init, seed=0)
    optimizer = fnn.optim.SGD(lr=0.01)
    curves[label] = [model.train_step(x_train[i], t_train[i], optimizer) for i in batches]
    accuracy = model.evaluate(x_test, t_test)["accuracy"]
    print(f"{label:<8} last-50 loss {np.mean(curves[label][-50:]):.4f}  test accuracy {accuracy:.4f}")

fig, ax = plt.subplots(figsize=(7, 4.5))
for label, curve in curves.items():
    ax.plot(np.convolve(curve, np.ones(20) / 20, mode="valid"), label=label)
ax.set_xlabel("iteration")
ax.set_ylabel("training loss (mean over 20 steps)")
ax.set_title(f"Initialisation on MNIST, SGD, {ITERATIONS} steps")
ax.legend()
plt.show()
