# %% [markdown]
# # 10. Convolution and pooling
#
# *Deep Learning from Scratch*, chapter 7 (im2col, pooling, SimpleConvNet and figure 7-24, its
# learned filters), with the L2 pooling of Nielsen's *Neural Networks and Deep Learning*, chapter 6.
#
# A convolution layer slides F small filters W (F, C, KH, KW) over an image x (C, H, W). Each output
# value is the dot product of one filter with the patch of the image under it, plus the filter's
# bias:
#
# ```text
# y[f, i, j] = b[f] + sum_{c, u, v} W[f, c, u, v] * x[c, i*S + u, j*S + v]
# OH = (H + 2*pad - KH) // S + 1          (the same for OW)
# ```
#
# Written that way, as loops over every output value, it is the "direct" algorithm. The book's
# trick is im2col: copy every patch into one row of a matrix `col` (N*OH*OW, C*KH*KW), and the
# whole convolution becomes one matrix product `col @ W.reshape(F, -1).T`, which a BLAS library does
# fast. fastnn has both (`impl="direct"` and `impl="im2col"`) and the readable NumPy reference.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
ops = fnn.get_ops("numba")
reference = fnn.get_ops("numpy")
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()

# %% [markdown]
# ## im2col by hand
#
# Two MNIST images and 30 random 5x5 filters. `ops.im2col` lays out the patches; one matrix product
# and a reshape give the convolution, the same numbers as `ops.conv2d`.

# %%
rng = np.random.default_rng(0)
x = x_train[:2]  # (2, 1, 28, 28)
W = rng.standard_normal((30, 1, 5, 5)).astype(np.float32) * 0.1
b = np.zeros(30, np.float32)

col = ops.im2col(x, 5, 5)  # (N*OH*OW, C*KH*KW) = (2*24*24, 1*5*5)
print("col:", col.shape)
by_hand = (col @ W.reshape(30, -1).T + b).reshape(2, 24, 24, 30).transpose(0, 3, 1, 2)
y = ops.conv2d(x, W, b, impl="direct")
print("y:", y.shape, " largest difference, im2col by hand vs direct:", float(np.abs(by_hand - y).max()))

# %% [markdown]
# ## The two algorithms: same numbers, different times
#
# The three faces of `conv2d` on the same batch: the NumPy reference, the direct kernels and
# im2col with a GEMM. The differences are float32 rounding (the sums run in different orders);
# the times are the median of five calls after a first call that compiles the kernels.

# %%
BATCH = 1000 if FULL else 100
xb = x_train[:BATCH]


def timed(function, repeats=5):
    function()  # compile, warm the caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


outputs, seconds = {}, {}
for name, run in {
    "NumPy reference": lambda: reference.conv2d(xb, W, b),
    "direct": lambda: ops.conv2d(xb, W, b, impl="direct"),
    "im2col": lambda: ops.conv2d(xb, W, b, impl="im2col"),
}.items():
    outputs[name] = run()
    seconds[name] = timed(run, repeats=3 if name == "NumPy reference" else 5)
for name in outputs:
    difference = float(np.abs(outputs[name] - outputs["NumPy reference"]).max())
    print(
        f"{name:16s} {seconds[name] * 1e3:8.2f} ms   largest difference from the reference: {difference:.2e}"
    )

# %% [markdown]
# ## Pooling: max, average and L2
#
# A pooling layer shrinks each channel by summarising every window in one number, with no weights.
# With 2x2 windows and stride 2:
#
# ```text
# max:      y = max over the window            (MaxPool2D: DLFS's choice)
# average:  y = mean over the window           (AvgPool2D: LeNet-5's)
# L2:       y = sqrt(sum over the window x^2)  (LPPool2D(p=2): Nielsen's "L2 pooling")
# ```
#
# `LPPool2D` is the general p-norm, `(sum |x|^p)^(1/p)`: p = 1 sums the magnitudes, and as p grows
# it tends to the maximum of |x|. Its gradient is `dy * x / y` for p = 2 (an all-zero window, where
# y = 0, passes none).

# %%
patch = np.array([[[[1, 2, 0, 0], [3, 4, 0, 1], [0, 0, 5, 0], [1, 1, 0, 0]]]], np.float32)
print("x:\n", patch[0, 0])
print("max:\n", ops.maxpool2d(patch, 2)[0][0, 0])
print("average:\n", ops.avgpool2d(patch, 2)[0, 0])
print("L2:\n", ops.lppool2d(patch, 2, p=2)[0, 0], " (sqrt(1+4+9+16) = sqrt(30) =", np.sqrt(30).round(4), ")")

# %%
digit = x_train[:1]
pooled = {
    "image": digit[0, 0],
    "max 2x2": ops.maxpool2d(digit, 2)[0][0, 0],
    "average 2x2": ops.avgpool2d(digit, 2)[0, 0],
    "L2 2x2": ops.lppool2d(digit, 2, p=2)[0, 0],
}
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, (title, image) in zip(axes, pooled.items()):
    ax.imshow(image, cmap="gray")
    ax.set_title(f"{title} {image.shape[0]}x{image.shape[1]}")
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## SimpleConvNet and its learned filters (figure 7-24)
#
# `fnn.models.simple_convnet()` is the book's network: Conv(30 filters, 5x5) -> ReLU -> MaxPool 2x2
# -> Dense(4320->100) -> ReLU -> Dense(100->10). The book trains it for 20 epochs to about 98.9 % test
# accuracy. Here the reduced run trains on 1,000 images for one epoch, and `FASTNN_TUTORIAL_FULL=1`
# on all 60,000 for three epochs (20 epochs: see the results page); a copy with L2 pooling in place
# of max pooling trains beside it. Both print what they reached.

# %%
TRAIN = 60000 if FULL else 1000
EPOCHS = 3 if FULL else 1
TEST = 10000 if FULL else 1000


def with_l2_pooling(model):
    """The same network with LPPool2D(2) (2x2 windows, stride 2, p = 2) where MaxPool2D was."""
    layers = [fnn.LPPool2D(2, p=2) if isinstance(layer, fnn.MaxPool2D) else layer for layer in model.layers]
    return fnn.Sequential(layers, seed=0)


model = fnn.models.simple_convnet(seed=0)
before = model.layers[0].params["W"].copy()
l2_model = with_l2_pooling(fnn.models.simple_convnet(seed=0))
for name, net in (("max pooling", model), ("L2 pooling", l2_model)):
    start = time.perf_counter()
    net.fit(
        x_train[:TRAIN],
        t_train[:TRAIN],
        epochs=EPOCHS,
        batch_size=100,
        optimizer=fnn.optim.Adam(1e-3),
        verbose=0,
    )
    accuracy = net.evaluate(x_test[:TEST], t_test[:TEST])["accuracy"]
    print(
        f"SimpleConvNet, {name}: test accuracy {accuracy:.4f} after {EPOCHS} epoch(s) on {TRAIN} images, "
        f"{time.perf_counter() - start:.1f} s"
    )

# %% [markdown]
# Before training the 30 first-layer filters are noise. Training turns them, in the book's figure
# 7-24, into small edge and blob detectors: light on one side, dark on the other, each responding to
# strokes of one direction. How far they get depends on how long they train: the reduced run's single
# epoch on 1,000 images moves them much less than the full run.

# %%
after = model.layers[0].params["W"]
fig, axes = plt.subplots(2, 30, figsize=(15, 1.4))
for row, (title, filters) in enumerate((("before", before), ("after", after))):
    for f in range(30):
        ax = axes[row, f]
        ax.imshow(filters[f, 0], cmap="gray_r", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(title, rotation=0, ha="right", va="center")
plt.tight_layout()
plt.show()

# %% [markdown]
# Each filter responds to the pattern it looks like. Applied to one digit, the trained filters'
# ReLU outputs light up different parts of the strokes:

# %%
maps = np.maximum(ops.conv2d(x_test[:1], after, model.layers[0].params["b"]), 0)[0]
fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for f, ax in enumerate(axes):
    ax.imshow(maps[f], cmap="gray")
    ax.set_title(f"filter {f}", fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()
