# %% [markdown]
# # 5. The optimizers compared on MNIST
#
# *Deep Learning from Scratch*, chapter 6.1 (figure 6-9).
#
# Every optimizer below takes the same gradient `g = dL/dW` of the mini-batch loss and turns it into a
# step for the weights `W`. They differ in what they remember between steps. fastnn uses PyTorch's
# update formulas (so equal hyperparameters give equal steps), with the book's default rates:
#
# ```text
# SGD(lr)                       W -= lr * g
# Momentum(lr, momentum=0.9)    v = momentum * v + g                    W -= lr * v
# AdaGrad(lr, eps)              h = h + g * g                           W -= lr * g / (sqrt(h) + eps)
# RMSProp(lr, decay=0.99, eps)  h = decay * h + (1 - decay) * g * g     W -= lr * g / (sqrt(h) + eps)
# Adam(lr, beta1=0.9,           m = beta1 * m + (1 - beta1) * g         W -= lr * m_hat / (sqrt(v_hat) + eps)
#      beta2=0.999, eps)        v = beta2 * v + (1 - beta2) * g * g
#                               m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)   (t: the step count)
# ```
#
# Momentum keeps moving in the direction the gradients have agreed on; AdaGrad and RMSProp give each
# weight its own step size, smaller where the gradient has been large; Adam does both.
#
# The experiment is the book's: a five-layer network (four hidden layers of 100 ReLU units, He
# initialisation), mini-batches of 128 drawn at random from the 60,000 training images, the same
# batches for every optimizer, and the training loss recorded at every step.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
ITERATIONS = 2000 if FULL else 200  # the book runs 2000 steps; the reduced run, used by CI, 200
BATCH = 128

(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
print("training images", x_train.shape, "test images", x_test.shape)

# %% [markdown]
# ## The optimizers
#
# Each optimizer trains its own copy of the network, built from the same seed so that all five start
# from the same weights. The rates are the book's: 0.01, except Adam's 0.001. RMSProp, which the book
# leaves out of this figure, gets 0.001 too: with `decay=0.99` its first steps are about `lr / 0.1`
# per weight, ten times Adam's.

# %%
optimizers = {
    "SGD": lambda: fnn.optim.SGD(lr=0.01),
    "Momentum": lambda: fnn.optim.Momentum(lr=0.01, momentum=0.9),
    "AdaGrad": lambda: fnn.optim.AdaGrad(lr=0.01),
    "RMSProp": lambda: fnn.optim.RMSProp(lr=0.001),
    "Adam": lambda: fnn.optim.Adam(lr=0.001),
}

rng = np.random.default_rng(0)
batches = [rng.choice(len(x_train), BATCH, replace=False) for _ in range(ITERATIONS)]

losses, seconds, models = {}, {}, {}
for name, make in optimizers.items():
    model = fnn.models.mlp(hidden=(100, 100, 100, 100), seed=0)
    optimizer = make()
    started = time.perf_counter()
    losses[name] = [model.train_step(x_train[i], t_train[i], optimizer) for i in batches]
    seconds[name] = time.perf_counter() - started
    models[name] = model

# %% [markdown]
# ## The loss curves
#
# The raw per-step loss is noisy (each step sees a different batch), so the figure shows it
# smoothed: the mean over a window of 20 steps, as the book's `smooth_curve` does.


# %%
def smooth(values, window=20):
    values = np.asarray(values)
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


fig, ax = plt.subplots(figsize=(7, 4.5))
for name, curve in losses.items():
    ax.plot(np.arange(len(smooth(curve))) + 20, smooth(curve), label=name)
ax.set_xlabel("iteration")
ax.set_ylabel("training loss (mean over 20 steps)")
ax.set_ylim(0, 1)
ax.set_title(f"Optimizers on MNIST, {ITERATIONS} steps of batch {BATCH}")
ax.legend()
plt.show()

# %% [markdown]
# The measured numbers of this run: the loss over the last 50 steps and the test accuracy of each
# network after its last step. Plain SGD is the slowest to bring the loss down; in the book's figure,
# AdaGrad, Adam and Momentum end close together, well below SGD.

# %%
print(f"{'optimizer':<10} {'last-50 loss':>12} {'test accuracy':>14} {'seconds':>8}")
for name, model in models.items():
    accuracy = model.evaluate(x_test, t_test)["accuracy"]
    print(f"{name:<10} {np.mean(losses[name][-50:]):>12.4f} {accuracy:>14.4f} {seconds[name]:>8.2f}")
