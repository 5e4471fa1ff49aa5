# %% [markdown]
# # 11. Deep networks: DeepConvNet, then residual networks
#
# *Deep Learning from Scratch*, chapter 8 (figures 8-1 and 8-2), and He et al., "Deep Residual
# Learning for Image Recognition" (2015), whose ResNet the book presents in section 8.2.
#
# The book's last MNIST network, DeepConvNet, stacks six 3x3 convolutions (16, 16, 32, 32, 64, 64
# channels, each followed by ReLU, with 2x2 max pooling after every second one), then two fully
# connected layers with dropout, and reaches 99.38 % test accuracy. `fnn.models.deep_convnet()`
# builds it as a `Sequential` of ordinary layers.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
if not FULL:  # the reduced run, used by CI, trains on at most 1,000 images and tests on 500
    x_train, t_train, x_test, t_test = x_train[:1000], t_train[:1000], x_test[:500], t_test[:500]

model = fnn.models.deep_convnet(seed=0)
print(model.summary(batch_size=100))

# %% [markdown]
# ## Training DeepConvNet
#
# Adam (lr 0.001) on batches of 100. The book trains 20 epochs; the full run of this page trains 5 on
# the 60,000 images (about 99.1 % on average over seeds, see `tests/test_mnist_deep.py`), the reduced
# run one epoch on 500 images, far too little to learn much. `fit` prints a line per epoch with
# `verbose=2`. Its training accuracy looks poor (near 60 % in the full run) because the book's
# DeepConvNet ends with `Dropout(0.5)` after its last layer: during training half of the ten outputs
# are zeroed. The test accuracy, measured in inference mode with dropout off, is the one to read.

# %%
EPOCHS, IMAGES = (5, 60000) if FULL else (1, 500)
started = time.perf_counter()
history = model.fit(
    x_train[:IMAGES],
    t_train[:IMAGES],
    epochs=EPOCHS,
    batch_size=100,
    optimizer=fnn.optim.Adam(lr=0.001),
    verbose=2,
    seed=0,
)
seconds = time.perf_counter() - started
print(f"epochs: {EPOCHS}, on {IMAGES} images, in {seconds:.1f} s")
print(f"test accuracy {model.evaluate(x_test, t_test)['accuracy']:.4f} on {len(x_test)} test images")

# %% [markdown]
# ## Why not simply deeper?
#
# Stacking more layers stops helping at some depth: the deeper plain network trains *worse*, even on
# its training set. One visible cause is the gradient. Backpropagation multiplies the gradient by
# one layer's Jacobian after another, so its size can shrink or grow geometrically with depth. Batch
# normalisation keeps the forward signal at a fixed scale, but in a deep plain stack of
# `Dense -> BatchNorm -> ReLU` layers the gradient still grows on its way back to the input.
#
# A **residual block** (He et al.) computes `y = relu(F(x) + x)`: the layers `F` learn only a
# correction to the identity. Its backward pass is `dx = F'(dy) + dy`: the gradient reaches the lower
# layers through the shortcut unchanged, whatever `F` does to it. In fastnn that is
# `fnn.Residual(body)`, a layer whose `forward` adds `body(x)` to `x`.
#
# Two networks of the same depth, 51 `Dense` layers of 64 units between the input and the output
# layer, on MNIST: a plain one, and one whose pairs of layers are residual blocks.

# %%
BLOCKS, WIDTH = 25, 64


def deep_mlp(residual):
    """784 -> Dense 64, BN, ReLU -> 25 blocks of two Dense 64 (+ BN) -> Dense 10."""
    layers = [fnn.Flatten(), fnn.Dense(784, WIDTH), fnn.BatchNorm(WIDTH), fnn.ReLU()]
    for _ in range(BLOCKS):
        body = [fnn.Dense(WIDTH, WIDTH), fnn.BatchNorm(WIDTH), fnn.ReLU()]
        body += [fnn.Dense(WIDTH, WIDTH), fnn.BatchNorm(WIDTH)]
        layers += ([fnn.Residual(body)] if residual else body) + [fnn.ReLU()]
    layers.append(fnn.Dense(WIDTH, 10))
    return fnn.Sequential(layers, seed=0)


def dense_layers(layers):
    """The Dense layers in order, inside residual blocks too (a block keeps its layers in .body)."""
    for layer in layers:
        if isinstance(layer, fnn.Residual):
            yield from dense_layers(layer.body)
        elif isinstance(layer, fnn.Dense):
            yield layer


# %% [markdown]
# `model.loss(x, t)` runs the forward pass and `model.backward()` fills every layer's `grads`; the
# norm of each `Dense` layer's weight gradient, at the start of training, on one batch of 256 images:

# %%
norms = {}
for name, residual in (("plain", False), ("residual", True)):
    model = deep_mlp(residual)
    model.loss(x_train[:256], t_train[:256])
    model.backward()
    norms[name] = [float(np.linalg.norm(layer.grads["W"])) for layer in dense_layers(model.layers)]
    low, high = min(norms[name]), max(norms[name])
    first, last = norms[name][0], norms[name][-1]
    print(f"{name:<9} first layer {first:9.3g}  last {last:6.3g}  largest/smallest {high / low:8.3g}")

fig, ax = plt.subplots(figsize=(7, 4))
for name, values in norms.items():
    ax.semilogy(range(1, len(values) + 1), values, marker=".", label=name)
ax.set_xlabel("Dense layer (1 = next to the input)")
ax.set_ylabel("||dL/dW||")
ax.set_title("Weight-gradient norm per layer at initialisation")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# In the plain network the gradient of the first layers is orders of magnitude larger than that of
# the last ones, so no single learning rate suits them all. In the residual network the first and
# last layers, outside the blocks, stand out a little, but the whole range is hundreds of times
# narrower (the printed ratios). The training losses, with the same optimizer (Momentum, lr 0.01)
# and the same batches:

# %%
STEPS = 600 if FULL else 30
rng = np.random.default_rng(0)
batches = [rng.choice(len(x_train), 100, replace=False) for _ in range(STEPS)]
losses = {}
for name, residual in (("plain", False), ("residual", True)):
    model = deep_mlp(residual)
    optimizer = fnn.optim.Momentum(lr=0.01)
    losses[name] = [model.train_step(x_train[i], t_train[i], optimizer) for i in batches]
    accuracy = model.evaluate(x_test, t_test)["accuracy"]
    print(f"{name:<9} last-10 loss {np.mean(losses[name][-10:]):.3f}  test accuracy {accuracy:.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
for name, values in losses.items():
    ax.plot(values, label=name)
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.set_title(f"52 layers deep, {STEPS} steps of batch 100")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The residual network starts from a higher loss: every block adds its output to `x`, so the
# variance of the signal grows with the number of blocks and the first logits are large. (A common
# remedy, not used here, starts each block's last `BatchNorm` with `gamma = 0`, so that every block
# begins as the identity.) It still learns fast, while the plain network of the same depth, given the
# same steps, hardly gets below the loss of guessing, `ln 10 = 2.3`.

# %% [markdown]
# ## A real ResNet
#
# `fnn.models.resnet(depth, width)` is He et al.'s network for small images: a 3x3 convolution, then
# three stages of residual blocks at `width`, `2 width` and `4 width` channels (each block two 3x3
# convolutions with batch normalisation; the first block of stages 2 and 3 halves the image with
# stride 2 and uses a 1x1 convolution as its shortcut, since `x` no longer has the body's shape), then
# global average pooling and one `Dense` layer. `depth = 6n + 2` counts the weighted layers. The full
# run trains ResNet-20 for one epoch on 20,000 images; the reduced run ResNet-8 at width 8 on 500.

# %%
DEPTH, RES_WIDTH, IMAGES = (20, 16, 20000) if FULL else (8, 8, 500)
resnet = fnn.models.resnet(depth=DEPTH, width=RES_WIDTH, in_channels=1, input_size=28, seed=0)
print(f"ResNet-{DEPTH}, width {RES_WIDTH}: {resnet.num_params:,} parameters")
started = time.perf_counter()
resnet.fit(
    x_train[:IMAGES],
    t_train[:IMAGES],
    epochs=1,
    batch_size=100,
    optimizer=fnn.optim.Adam(lr=0.001),
    verbose=2,
    seed=0,
)
print(f"1 epoch on {IMAGES} images in {time.perf_counter() - started:.1f} s")
print(f"test accuracy {resnet.evaluate(x_test, t_test)['accuracy']:.4f} on {len(x_test)} test images")
