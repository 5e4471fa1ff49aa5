# %% [markdown]
# # 2. Activations and the forward pass
#
# *Deep Learning from Scratch*, chapter 3; Nielsen, chapter 1 ("Sigmoid neurons").
#
# A neural network is the perceptron of tutorial 1 with the step swapped for a smooth
# activation function $h$, stacked in layers. Each layer computes
#
# $$a = x W + b, \qquad z = h(a)$$
#
# for a whole batch at once: $x$ is (N, D), $W$ is (D, M), $b$ is (M,), and $z$ is (N, M).
# This page plots the activations, runs a 3-layer network by hand and with fastnn, and
# feeds a batch of MNIST digits through a network.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
np.random.seed(0)

# %% [markdown]
# ## Four activation functions
#
# | name | formula | derivative |
# | --- | --- | --- |
# | step | $h(a) = 1$ if $a > 0$ else $0$ | $0$ (where it exists) |
# | sigmoid | $h(a) = 1 / (1 + e^{-a})$ | $h(a)\,(1 - h(a))$ |
# | tanh | $h(a) = (e^{a} - e^{-a}) / (e^{a} + e^{-a})$ | $1 - h(a)^2$ |
# | ReLU | $h(a) = \max(a, 0)$ | $1$ if $a > 0$ else $0$ |
#
# The formulas in NumPy, next to fastnn's layers of the same names: a layer's
# `forward(x)` runs the compiled kernel on its own, outside any model.

# %%
activations = {
    "step": (lambda a: (a > 0).astype(a.dtype), fnn.Step()),
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), fnn.Sigmoid()),
    "tanh": (np.tanh, fnn.Tanh()),
    "ReLU": (lambda a: np.maximum(a, 0), fnn.ReLU()),
}
a = np.linspace(-5, 5, 1001 if FULL else 201, dtype=np.float32).reshape(1, -1)

fig, axes = plt.subplots(1, 4, figsize=(13, 3))
for ax, (name, (formula, layer)) in zip(axes, activations.items()):
    by_hand = formula(a)
    by_fastnn = layer.forward(a)
    print(f"{name:8s} largest difference, NumPy formula vs fastnn: {np.abs(by_hand - by_fastnn).max():.1e}")
    ax.plot(a.ravel(), by_fastnn.ravel())
    ax.axhline(0, color="gray", lw=0.5)
    ax.axvline(0, color="gray", lw=0.5)
    ax.set(title=name, xlabel="a")
plt.tight_layout()
plt.show()

# %% [markdown]
# The sigmoid is a smoothed step: where the step jumps from 0 to 1, the sigmoid climbs
# gently, so a small change in the weights makes a small change in the output (Nielsen's
# argument for it). Its slope, though, is at most $1/4$ and vanishes for large $|a|$;
# tanh's is at most 1, and ReLU's is exactly 1 for every positive input. These slopes are
# what backpropagation multiplies together (tutorial 4), and why deep networks use ReLU.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
s = 1 / (1 + np.exp(-a.ravel()))
ax.plot(a.ravel(), s * (1 - s), label="sigmoid'  (max 1/4)")
ax.plot(a.ravel(), 1 - np.tanh(a.ravel()) ** 2, label="tanh'  (max 1)")
ax.plot(a.ravel(), (a.ravel() > 0).astype(float), label="ReLU'")
ax.set(xlabel="a", title="The slopes of the activations")
ax.legend()
plt.show()

# %% [markdown]
# ## Softmax for the output layer
#
# A classifier's last layer turns its scores $a_k$ into probabilities:
#
# $$y_k = \frac{e^{a_k}}{\sum_i e^{a_i}} = \frac{e^{a_k - C}}{\sum_i e^{a_i - C}}$$
#
# Subtracting $C = \max_i a_i$ changes nothing mathematically but keeps $e^{a}$ from
# overflowing: the book's example $a = (1010, 1000, 990)$ gives `nan` without it.

# %%
scores = np.array([[1010.0, 1000.0, 990.0]], dtype=np.float32)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(scores) / np.exp(scores).sum()
stable = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
by_fastnn = fnn.Softmax().forward(scores)
print("naive: ", naive)
print("stable:", stable)
print("fastnn:", by_fastnn, " sum =", by_fastnn.sum())

# %% [markdown]
# ## A 3-layer network by hand
#
# The book's example network: 2 inputs, hidden layers of 3 and 2 sigmoid units, 2 outputs
# with the identity as output activation. With the book's weights,
#
# $$z_1 = \sigma(x W_1 + b_1),\quad z_2 = \sigma(z_1 W_2 + b_2),\quad y = z_2 W_3 + b_3.$$

# %%
network = {
    "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]),
    "b1": np.array([0.1, 0.2, 0.3]),
    "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]),
    "b2": np.array([0.1, 0.2]),
    "W3": np.array([[0.1, 0.3], [0.2, 0.4]]),
    "b3": np.array([0.1, 0.2]),
}


def sigmoid(a):
    """1 / (1 + exp(-a))."""
    return 1 / (1 + np.exp(-a))


def forward(network, x):
    """The book's forward(): two sigmoid layers, then an affine output."""
    z1 = sigmoid(x @ network["W1"] + network["b1"])
    z2 = sigmoid(z1 @ network["W2"] + network["b2"])
    return z2 @ network["W3"] + network["b3"]


x = np.array([[1.0, 0.5]])
print("by hand:", forward(network, x))

# %% [markdown]
# ## The same network in fastnn
#
# The same three affine layers are `Dense` layers, each followed by its activation. We
# copy the book's weights into the model (float64 here, so the two agree to the last
# digit; fastnn computes in float32 by default).

# %%
model = fnn.Sequential(
    [fnn.Dense(2, 3), fnn.Sigmoid(), fnn.Dense(3, 2), fnn.Sigmoid(), fnn.Dense(2, 2)],
    loss=fnn.MeanSquaredError(),
    dtype="float64",
)
for dense, k in zip(model.layers[::2], "123"):
    dense.params["W"][...] = network["W" + k]
    dense.params["b"][...] = network["b" + k]
print("fastnn: ", model.forward(x))
print("difference:", np.abs(model.forward(x) - forward(network, x)).max())

# %% [markdown]
# ## A batch of MNIST digits
#
# Each MNIST image is 28 x 28 = 784 pixels in $[0, 1]$; flattened, it is one row of $x$.
# Feeding N images at once makes every layer one matrix product on (N, 784): the shapes
# below follow one batch, layer by layer, through `fnn.models.mlp(hidden=(50, 100))`, the book's
# 784-50-100-10 network. Its weights are random (He initialisation), not trained, so
# its accuracy is near chance (1 in 10); training is the subject of tutorial 3.

# %%
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
n = len(x_test) if FULL else 1000
x_batch, t_batch = x_test[:n], t_test[:n]
print("images:", x_batch.shape, x_batch.dtype, "labels:", t_batch.shape, t_batch.dtype)

mlp = fnn.models.mlp(hidden=(50, 100), seed=0)
z = x_batch
for index, layer in enumerate(mlp.layers):
    z = layer.forward(z, train=False)
    print(f"{mlp.layer_name(index):<26s} -> {z.shape}")
print(f"accuracy of the untrained network on {n} images: {(z.argmax(axis=1) == t_batch).mean():.3f}")

fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, image, label in zip(axes, x_batch, t_batch):
    ax.imshow(image[0], cmap="gray_r")
    ax.set(title=str(label), xticks=[], yticks=[])
plt.show()

# %% [markdown]
# ## Why batches
#
# One product of an (N, 784) matrix runs far faster than N products of single rows: the
# per-call overhead is paid once, and the matrix kernels keep the CPU's vector units
# busy. The times below are for the forward pass of the same images, one at a time and
# as one batch (after one untimed call of each, so no compilation is timed); they depend
# on the machine.

# %%
mlp.forward(x_batch[:1]), mlp.forward(x_batch)
start = time.perf_counter()
for i in range(n):
    mlp.forward(x_batch[i : i + 1])
one_at_a_time = time.perf_counter() - start
start = time.perf_counter()
mlp.forward(x_batch)
batched = time.perf_counter() - start
print(f"{n} images one at a time: {one_at_a_time * 1e3:.1f} ms; as one batch: {batched * 1e3:.2f} ms")
