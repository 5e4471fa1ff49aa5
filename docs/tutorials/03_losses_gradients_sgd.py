# %% [markdown]
# # 3. Losses, the numerical gradient and mini-batch SGD
#
# *Deep Learning from Scratch*, chapter 4; Nielsen, chapter 1 ("Learning with gradient
# descent").
#
# A network learns by making a number, the loss, smaller. This page computes the two
# classic losses by formula and with `fnn.losses`, takes derivatives numerically, walks
# downhill by gradient descent, and trains the book's two-layer network on MNIST with
# mini-batch stochastic gradient descent (SGD).

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn
from fastnn.gradcheck import numerical_gradient

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
np.random.seed(0)

# %% [markdown]
# ## Two losses
#
# For one sample with network output $y$ and one-hot target $t$:
#
# - mean squared error, $E = \frac{1}{2} \sum_k (y_k - t_k)^2$;
# - cross-entropy, $E = -\sum_k t_k \log y_k$, which for a one-hot $t$ is $-\log y_{\text{true class}}$.
#
# Over a batch of N samples, both are averaged: $E = \frac{1}{N} \sum_n E_n$. The book's
# example: the true class is 2, and the network gives it probability 0.6.

# %%
y = np.array([[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]])
t = np.array([2])  # the class index; one-hot, it is np.eye(10)[t]
t_onehot = np.eye(10)[t]
delta = 1e-7  # the book's guard against log(0)

mse_formula = 0.5 * np.sum((y - t_onehot) ** 2)
ce_formula = -np.sum(t_onehot * np.log(y + delta))
mse_fastnn = fnn.MeanSquaredError().forward(y, t_onehot)
print(f"MSE: formula {mse_formula:.6f}   fnn.losses.MeanSquaredError {mse_fastnn:.6f}")

# %% [markdown]
# fastnn's `SoftmaxCrossEntropy` takes the network's raw scores (logits) $a$ and applies
# the softmax itself, which is numerically safer than taking the log of a probability.
# To feed it the probabilities above we pass $a = \log y$: then
# $\mathrm{softmax}(a)_k = y_k / \sum_i y_i = y_k$, since the $y_k$ sum to 1.

# %%
ce_fastnn = fnn.SoftmaxCrossEntropy().forward(np.log(y + delta), t)
print(f"CE:  formula {ce_formula:.6f}   fnn.losses.SoftmaxCrossEntropy {ce_fastnn:.6f}")

y_wrong = np.array([[0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]])  # most mass on class 7
print(
    f"if the network favours class 7 instead: MSE {fnn.MeanSquaredError().forward(y_wrong, t_onehot):.4f},",
    f"CE {fnn.SoftmaxCrossEntropy().forward(np.log(y_wrong + delta), t):.4f}",
)

# A batch: the losses are means over the samples.
batch_y = np.vstack([y, y_wrong])
batch_t = np.array([2, 2])
print("batch of both: CE", fnn.SoftmaxCrossEntropy().forward(np.log(batch_y + delta), batch_t))

# %% [markdown]
# ## The numerical derivative
#
# $$\frac{df}{dx} \approx \frac{f(x + h) - f(x - h)}{2h}$$
#
# The central difference is accurate to $O(h^2)$; $h$ must not be too small, or rounding
# wipes out the difference ($5 + 10^{-50}$ is exactly 5 in float64). The book uses $f(x) = 0.01 x^2 + 0.1 x$,
# whose true derivative at 5 is 0.2.


# %%
def f(x):
    """0.01 x^2 + 0.1 x."""
    return 0.01 * x**2 + 0.1 * x


def numerical_diff(f, x, h=1e-4):
    """Central difference (f(x + h) - f(x - h)) / 2h."""
    return (f(x + h) - f(x - h)) / (2 * h)


print("h = 1e-50, forward difference:", (f(5.0 + 1e-50) - f(5.0)) / 1e-50, "(5 + 1e-50 rounds to 5)")
print("h = 1e-4, central difference: ", numerical_diff(f, 5.0), "(exact: 0.2)")

xs = np.linspace(0, 20, 200)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(xs, f(xs), label="f(x)")
for x0 in (5, 10):
    slope = numerical_diff(f, x0)
    ax.plot(xs, f(x0) + slope * (xs - x0), "--", label=f"tangent at {x0}: slope {slope:.3f}")
ax.set(xlabel="x", ylabel="f(x)")
ax.legend()
plt.show()

# %% [markdown]
# ## The gradient and gradient descent
#
# For a function of several variables the gradient collects the partial derivatives,
# $\nabla f = (\partial f / \partial x_0, \partial f / \partial x_1)$, each a central
# difference along one axis. It points uphill, so gradient descent steps against it:
#
# $$x \leftarrow x - \eta \nabla f(x)$$
#
# `fnn.gradcheck.numerical_gradient(f, x)` nudges each entry of the array `x` in place and
# calls `f()`. For $f(x_0, x_1) = x_0^2 + x_1^2$ the gradient at (3, 4) is (6, 8).

# %%
point = np.array([3.0, 4.0])
print("gradient at (3, 4):", numerical_gradient(lambda: np.sum(point**2), point, eps=1e-4))

lr, steps = 0.1, 20
position = np.array([-3.0, 4.0])
path = [position.copy()]


def f2():
    """x0^2 + x1^2 at the current position."""
    return np.sum(position**2)


for _ in range(steps):
    position -= lr * numerical_gradient(f2, position, eps=1e-4)
    path.append(position.copy())
path = np.array(path)
print(f"after {steps} steps with lr {lr}: {path[-1].round(4)}")

g0, g1 = np.meshgrid(np.linspace(-4, 4, 9), np.linspace(-4, 4, 9))
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.quiver(g0, g1, -2 * g0, -2 * g1, alpha=0.4)
ax.plot(path[:, 0], path[:, 1], "o-", ms=3, label="gradient descent from (-3, 4)")
ax.set(xlabel="$x_0$", ylabel="$x_1$", title=r"$-\nabla f$ for $f = x_0^2 + x_1^2$")
ax.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## The gradient of a network's loss
#
# The book's `simpleNet` is one affine layer (2 inputs, 3 outputs) with softmax
# cross-entropy. Its loss is a function of the weights $W$, and the numerical gradient
# $\partial L / \partial W$ has the shape of $W$. In fastnn the network is a `Sequential`
# of one `Dense(2, 3)`; `model.loss(x, t)` runs the forward pass and returns the loss, and
# since `params["W"]` is the model's own weight array, nudging it changes the loss.
# Float64, as for every gradient check.

# %%
net = fnn.Sequential([fnn.Dense(2, 3)], loss=fnn.SoftmaxCrossEntropy(), dtype="float64", seed=0)
x = np.array([[0.6, 0.9]])
t = np.array([2])
W = net.layers[0].params["W"]
print("W =\n", W.round(3))
print("loss:", net.loss(x, t))
dW = numerical_gradient(lambda: net.loss(x, t), W, eps=1e-4)
print("dL/dW (numerical) =\n", dW.round(4))

# %% [markdown]
# Raising $W_{ij}$ by a small $h$ raises the loss by about $h \cdot \partial L / \partial W_{ij}$:
# the entries for the true class (column 2) are negative, so gradient descent grows them.
# The next tutorial gets the same numbers from backpropagation, in one backward pass.

# %% [markdown]
# ## Training the two-layer network with mini-batch SGD
#
# The book's `TwoLayerNet`: 784 inputs, 50 sigmoid hidden units, 10 softmax outputs,
# weights drawn with standard deviation 0.01. Each iteration draws a random mini-batch of
# 100 training images, computes the gradient of the mean loss on it and takes one SGD step
# $W \leftarrow W - \eta\,\partial L / \partial W$ with $\eta = 0.1$. An "epoch" is
# 60,000 / 100 = 600 iterations; after each, we measure the accuracy on the training and
# test sets (the book's schedule).
#
# The book computes the gradient numerically first, then notes it is far too slow and
# uses backpropagation. fastnn's `train_step` does the latter (the forward pass, the
# backward pass and the optimizer step). The full run is the book's 10,000 iterations; the
# reduced one (this page, unless built with `FASTNN_TUTORIAL_FULL=1`) is one epoch, 600
# iterations, measured every 100 on the test set and the first 10,000 training images.

# %%
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
x_train = x_train.reshape(len(x_train), -1)  # (60000, 784), as the book's flatten=True
x_test = x_test.reshape(len(x_test), -1)
iterations = 10_000 if FULL else 600
batch_size, lr = 100, 0.1
iter_per_epoch = len(x_train) // batch_size
eval_every = iter_per_epoch if FULL else 100  # the reduced run measures every 100 iterations
train_eval = len(x_train) if FULL else 10_000  # how many images each accuracy is measured on
test_eval = len(x_test)

two_layer_net = fnn.Sequential(
    [fnn.Dense(784, 50, init=0.01), fnn.Sigmoid(), fnn.Dense(50, 10, init=0.01)],
    loss=fnn.SoftmaxCrossEntropy(),
    seed=0,
)
optimizer = fnn.optim.SGD(lr=lr)
rng = np.random.default_rng(0)
train_loss, train_acc, test_acc = [], [], []
start = time.perf_counter()
for i in range(iterations):
    batch_mask = rng.choice(len(x_train), batch_size)  # the book's sampling, with replacement
    train_loss.append(two_layer_net.train_step(x_train[batch_mask], t_train[batch_mask], optimizer))
    if (i + 1) % eval_every == 0:
        train_acc.append(two_layer_net.evaluate(x_train[:train_eval], t_train[:train_eval])["accuracy"])
        test_acc.append(two_layer_net.evaluate(x_test[:test_eval], t_test[:test_eval])["accuracy"])
        print(f"iteration {i + 1:5d} (epoch {(i + 1) / iter_per_epoch:4.1f}): ", end="")
        print(f"train acc {train_acc[-1]:.4f}, test acc {test_acc[-1]:.4f}")
elapsed = time.perf_counter() - start
print(f"{iterations} iterations in {elapsed:.1f} s, evaluation included")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
ax1.plot(train_loss, lw=0.5)
ax1.set(xlabel="iteration", ylabel="loss on the mini-batch", title="Training loss")
measured_at = eval_every * np.arange(1, len(test_acc) + 1)
ax2.plot(measured_at, train_acc, "o-", label="train")
ax2.plot(measured_at, test_acc, "s--", label="test")
ax2.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1), title="Accuracy")
ax2.legend(loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# Train and test accuracy rise together: the network is not overfitting (tutorial 8 makes
# it overfit on purpose). In the book's figure of this run both curves end near 95 % after
# 10,000 iterations; the full run of this script prints its own figures at each epoch.
#
# ## Why not the numerical gradient?
#
# A numerical gradient needs two forward passes per parameter. We time it on 50 of the
# network's weights and scale up to all of them, against one backpropagation pass of the
# same mini-batch. (Times depend on the machine and on what else runs on it.)

# %%
parameters = sum(p.size for layer in two_layer_net.layers for p in layer.params.values())
xb, tb = x_train[:batch_size], t_train[:batch_size]
W1 = two_layer_net.layers[0].params["W"]
sample = W1[:1]  # the first row of W1: 50 weights
start = time.perf_counter()
numerical_gradient(lambda: two_layer_net.loss(xb, tb), sample, eps=1e-2)
per_weight = (time.perf_counter() - start) / sample.size
start = time.perf_counter()
for _ in range(10):
    two_layer_net.loss(xb, tb)
    two_layer_net.backward()
backprop = (time.perf_counter() - start) / 10
print(f"{parameters:,} parameters")
print(f"numerical gradient: {per_weight * 1e3:.3f} ms a weight, {per_weight * parameters:.1f} s for all")
speedup = per_weight * parameters / backprop
print(f"backpropagation:    {backprop * 1e3:.2f} ms for all ({speedup:,.0f} times faster)")
