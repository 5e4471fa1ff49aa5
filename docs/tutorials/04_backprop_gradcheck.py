# %% [markdown]
# # 4. Backpropagation and the gradient check
#
# *Deep Learning from Scratch*, chapter 5; Nielsen, chapter 2 ("How the backpropagation
# algorithm works").
#
# Tutorial 3 took the gradient numerically: two forward passes per weight. Backpropagation
# gets every weight's gradient from one forward and one backward pass, by the chain rule
# run backwards through the computation. This page builds it up from a computational
# graph, checks each layer's backward formula against fastnn's, and then checks a whole
# network's backpropagated gradient against the numerical one with `fnn.gradcheck`.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn
from fastnn.gradcheck import numerical_gradient, relative_error

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
np.random.seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## A computational graph
#
# The book's shopping example: 2 apples at 100 each, 3 oranges at 150 each, 10 % tax.
# Each node is a small layer with a `forward` and a `backward`. A multiplication
# $z = xy$ sends back $\partial L/\partial x = \partial L/\partial z \cdot y$ and
# $\partial L/\partial y = \partial L/\partial z \cdot x$ (the inputs swapped); an
# addition $z = x + y$ sends $\partial L/\partial z$ unchanged to both inputs.


# %%
class MulLayer:
    """z = x * y; backward swaps the inputs."""

    def forward(self, x, y):
        """z = x * y."""
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        """(dL/dx, dL/dy) = (dout * y, dout * x)."""
        return dout * self.y, dout * self.x


class AddLayer:
    """z = x + y; backward passes the gradient through."""

    def forward(self, x, y):
        """z = x + y."""
        return x + y

    def backward(self, dout):
        """(dL/dx, dL/dy) = (dout, dout)."""
        return dout, dout


apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
mul_apple, mul_orange, add_fruit, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()

apple_price = mul_apple.forward(apple, apple_num)
orange_price = mul_orange.forward(orange, orange_num)
all_price = add_fruit.forward(apple_price, orange_price)
price = mul_tax.forward(all_price, tax)

dall_price, dtax = mul_tax.backward(1)
dapple_price, dorange_price = add_fruit.backward(dall_price)
dapple, dapple_num = mul_apple.backward(dapple_price)
dorange, dorange_num = mul_orange.backward(dorange_price)
print(f"price {price:.1f}")
print(f"dprice/dapple {dapple:.1f}, dprice/dapple_num {dapple_num:.1f}, dprice/dorange {dorange:.1f},")
print(f"dprice/dorange_num {dorange_num:.1f}, dprice/dtax {dtax:.1f}")

# %% [markdown]
# Each derivative says how much the price moves per unit of that input: one more apple
# adds 110 (its price with tax), and raising the tax rate by 1 adds 650.

# %% [markdown]
# ## The layers' backward formulas
#
# A network is the same graph with matrices. For a batch $x$ (N, D) and upstream gradient
# $dy = \partial L / \partial y$:
#
# | layer | forward | backward |
# | --- | --- | --- |
# | ReLU | $y = \max(x, 0)$ | $dx = dy \cdot [x > 0]$ |
# | Sigmoid | $y = 1 / (1 + e^{-x})$ | $dx = dy \cdot y (1 - y)$ |
# | Affine (`Dense`) | $y = x W + b$ | $dx = dy\, W^\top$, $dW = x^\top dy$, $db = \sum_n dy_n$ |
# | Softmax + cross-entropy | $L = -\frac{1}{N}\sum_n \log p_{n, t_n}$ | $da = (p - t) / N$ |
#
# where $p = \mathrm{softmax}(a)$ and $t$ is one-hot in the last formula.
#
# Below, each formula in NumPy next to the `backward` of fastnn's layer (float64).

# %%
model = fnn.Sequential(
    [fnn.Dense(4, 3), fnn.ReLU(), fnn.Dense(3, 5), fnn.Sigmoid()],
    loss=fnn.SoftmaxCrossEntropy(),
    dtype="float64",
    seed=0,
)
dense, relu, sigmoid = model.layers[0], model.layers[1], model.layers[3]
x = rng.standard_normal((6, 4))
dy3 = rng.standard_normal((6, 3))
dy5 = rng.standard_normal((6, 5))

a = dense.forward(x)
relu.forward(a)
print("ReLU    dx:", np.abs(relu.backward(dy3) - dy3 * (a > 0)).max())

s = sigmoid.forward(rng.standard_normal((6, 5)))
print("Sigmoid dx:", np.abs(sigmoid.backward(dy5) - dy5 * s * (1 - s)).max())

dense.forward(x)
dx = dense.backward(dy3)
W = dense.params["W"]
print("Dense   dx:", np.abs(dx - dy3 @ W.T).max())
print("Dense   dW:", np.abs(dense.grads["W"] - x.T @ dy3).max())
print("Dense   db:", np.abs(dense.grads["b"] - dy3.sum(axis=0)).max())

logits = rng.standard_normal((6, 5))
t = rng.integers(0, 5, size=6)
loss = fnn.SoftmaxCrossEntropy()
loss.forward(logits, t)
probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
print("Softmax with loss da:", np.abs(loss.backward() - (probabilities - np.eye(5)[t]) / len(t)).max())

# %% [markdown]
# All differences are at float64 rounding (about $10^{-16}$): fastnn's compiled kernels
# compute exactly these formulas.
#
# ## Backpropagation through the whole network
#
# `model.loss(x, t)` runs the forward pass layer by layer; `model.backward()` then calls
# each layer's `backward` in reverse order, starting from the loss's gradient, and fills
# every layer's `grads`. The numerical gradient of tutorial 3 must give the same numbers.

# %%
t = rng.integers(0, 5, size=6)
model.loss(x, t)
model.backward()
backprop_W1 = model.layers[0].grads["W"].copy()
numeric_W1 = numerical_gradient(lambda: model.loss(x, t), model.layers[0].params["W"], eps=1e-6)
print("dL/dW1 by backprop:\n", backprop_W1.round(5))
print("dL/dW1 numerically:\n", numeric_W1.round(5))
print("relative error:", f"{relative_error(backprop_W1, numeric_W1):.1e}")

# %% [markdown]
# ## The gradient check on a real model
#
# A gradient check compares the two gradients for every parameter of a model. The
# relative error per array is
#
# $$\max_i \frac{|g_i - \tilde g_i|}{\max(|g_i| + |\tilde g_i|,\ \text{floor})}$$
#
# with $g$ from backprop and $\tilde g$ from central differences. In float64 a correct
# backward pass gives about $10^{-7}$ or less; a wrong one gives something near 1.
# Float32 cannot tell: its rounding error is as large as the differences it would
# measure, so `fnn.gradcheck` insists on a float64 model.
#
# Here it checks the book's two-layer network (784-50-10, sigmoid) on real MNIST images.
# Each of its 39,760 parameters costs two forward passes, so the reduced run checks a
# smaller hidden layer and fewer images than the full one; both print the same table.

# %%
(x_train, t_train), _ = fnn.datasets.load_mnist()
hidden, n_images = (50, 10) if FULL else (5, 2)
images = x_train[:n_images].reshape(n_images, -1).astype(np.float64)
labels = t_train[:n_images]
two_layer_net = fnn.Sequential(
    [fnn.Dense(784, hidden), fnn.Sigmoid(), fnn.Dense(hidden, 10)],
    loss=fnn.SoftmaxCrossEntropy(),
    dtype="float64",
    seed=0,
)
parameters = hidden * 785 + (hidden + 1) * 10
start = time.perf_counter()
errors = fnn.gradcheck(two_layer_net, images, labels)
check_time = time.perf_counter() - start
print(f"gradcheck of {parameters:,} parameters on {n_images} images took {check_time:.1f} s")
assert max(errors.values()) < 1e-6

# %% [markdown]
# ## What a bug looks like
#
# To see the check fail, break the backward pass on purpose: a sigmoid whose backward
# forgets the factor $(1 - y)$. fastnn's layers are classes like any other, so a subclass
# can override `backward`. The check now flags the layers below the broken one: the
# first `Dense`, whose gradient flows through it, not the second.


# %%
class BrokenSigmoid(fnn.Sigmoid):
    """A sigmoid whose backward forgets the (1 - y) factor: dx = dy * y."""

    def forward(self, x, train=True):
        """y = 1 / (1 + exp(-x)), kept for backward."""
        self.y = super().forward(x, train)
        return self.y

    def backward(self, dy):
        """Wrong on purpose: the right formula is dy * y * (1 - y)."""
        return dy * self.y


broken = fnn.Sequential(
    [fnn.Dense(784, hidden), BrokenSigmoid(), fnn.Dense(hidden, 10)],
    loss=fnn.SoftmaxCrossEntropy(),
    dtype="float64",
    seed=0,
)
broken_errors = fnn.gradcheck(broken, images, labels)

fig, ax = plt.subplots(figsize=(6, 3))
names = list(errors)
positions = np.arange(len(names))
ax.bar(positions - 0.2, [errors[n] for n in names], width=0.4, label="Sigmoid")
ax.bar(positions + 0.2, [broken_errors[n] for n in names], width=0.4, label="BrokenSigmoid")
ax.set(yscale="log", ylabel="worst relative error", title="fnn.gradcheck per layer")
ax.set_xticks(positions, names, fontsize=8)
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Why backpropagation
#
# The gradient check's cost is the numerical gradient's: two forward passes per parameter.
# Backprop's is one forward and one backward pass for all of them. On the checked
# network:

# %%
start = time.perf_counter()
repeats = 20
for _ in range(repeats):
    two_layer_net.loss(images, labels)
    two_layer_net.backward()
backprop_time = (time.perf_counter() - start) / repeats
print(f"numerical gradient (the gradcheck above): {check_time:.2f} s for {parameters:,} parameters")
print(f"one backprop pass: {backprop_time * 1e3:.2f} ms for all of them")
