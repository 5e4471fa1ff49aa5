# %% [markdown]
# # 1. Perceptrons and logic gates
#
# *Deep Learning from Scratch*, chapter 2; Nielsen, chapter 1 ("Perceptrons").
#
# A perceptron takes inputs $x_1, x_2$, weighs them, adds a bias and fires when the sum is
# positive:
#
# $$y = \begin{cases} 1 & \text{if } w_1 x_1 + w_2 x_2 + b > 0 \\ 0 & \text{otherwise} \end{cases}$$
#
# With the right weights it computes a logic gate. This page sets the weights by hand, lets
# the perceptron rule find them, and shows why XOR needs a second layer.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
np.random.seed(0)

# %% [markdown]
# ## AND, OR and NAND by hand
#
# The book's gates, one line each. Only the weights and the bias differ between them:
# AND fires when both inputs are on ($0.5 + 0.5 - 0.7 > 0$), OR when either is
# ($0.5 - 0.2 > 0$), and NAND is AND with every sign flipped.

# %%
X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)  # the four input pairs


def perceptron(x, w, b):
    """y = 1 if x @ w + b > 0 else 0, for each row of x."""
    return (x @ w + b > 0).astype(int)


GATE_WEIGHTS = {  # (w, b), the book's values
    "AND": (np.array([0.5, 0.5]), -0.7),
    "OR": (np.array([0.5, 0.5]), -0.2),
    "NAND": (np.array([-0.5, -0.5]), 0.7),
}
print("x1 x2 | AND OR NAND")
for x, *ys in zip(X.astype(int), *(perceptron(X, w, b) for w, b in GATE_WEIGHTS.values())):
    print(f" {x[0]}  {x[1]} |  {ys[0]}   {ys[1]}   {ys[2]}")

# %% [markdown]
# ## The same gates in fastnn
#
# A perceptron is a `Dense(2, 1)` layer ($x W + b$, with $W$ of shape (2, 1)) followed by
# the `Step` activation ($y = 1$ if $a > 0$ else $0$). We build one model and write each
# gate's weights into its parameters: `layer.params["W"]` is a view into the model's buffer,
# so assigning to it changes the model.

# %%
gate = fnn.Sequential([fnn.Dense(2, 1), fnn.Step()], loss=fnn.MeanSquaredError(), seed=0)
for name, (w, b) in GATE_WEIGHTS.items():
    gate.layers[0].params["W"][...] = w.reshape(2, 1)
    gate.layers[0].params["b"][...] = b
    y = gate.predict(X).ravel().astype(int)
    assert (y == perceptron(X, w, b)).all()
    print(f"{name:4s} fastnn: {y}   by hand: {perceptron(X, w, b)}")

# %% [markdown]
# ## A perceptron draws a line
#
# $w_1 x_1 + w_2 x_2 + b = 0$ is a straight line in the plane of inputs: the perceptron
# outputs 1 on one side and 0 on the other. For AND, OR and NAND a line separates the
# 1s (filled) from the 0s (open). For XOR, whose output is 1 when exactly one input is
# on, no line can: the two 1s sit on opposite corners.

# %%
TARGETS = {
    **{name: perceptron(X, w, b) for name, (w, b) in GATE_WEIGHTS.items()},
    "XOR": np.array([0, 1, 1, 0]),
}
grid = np.linspace(-0.5, 1.5, 201 if FULL else 81)
gx, gy = np.meshgrid(grid, grid)
points = np.stack([gx.ravel(), gy.ravel()], axis=1)

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, t) in zip(axes, TARGETS.items()):
    if name in GATE_WEIGHTS:
        w, b = GATE_WEIGHTS[name]
        ax.contourf(gx, gy, perceptron(points, w, b).reshape(gx.shape), levels=[-0.5, 0.5, 1.5], alpha=0.25)
        ax.plot(grid, -(w[0] * grid + b) / w[1], "k-", lw=1)
    ax.scatter(*X[t == 1].T, s=120, c="k", label="1")
    ax.scatter(*X[t == 0].T, s=120, facecolors="none", edgecolors="k", label="0")
    ax.set(
        title=name if name in GATE_WEIGHTS else "XOR: no line separates", xlim=(-0.5, 1.5), ylim=(-0.5, 1.5)
    )
    ax.set_aspect("equal")
axes[0].legend(loc="upper left")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Learning the weights: the perceptron rule
#
# Rosenblatt's rule nudges the weights after every mistake:
# $w \leftarrow w + \eta\,(t - y)\,x$ and $b \leftarrow b + \eta\,(t - y)$.
# The convergence theorem says it stops making mistakes after finitely many updates
# whenever a separating line exists. `fnn.classic.Perceptron` implements it; we count its
# mistakes per sweep over the four inputs.

# %%
max_epochs = 100 if FULL else 20
runs = {}
for name, t in TARGETS.items():
    p = fnn.classic.Perceptron(2, lr=0.1)
    p.fit(X, t, max_epochs=max_epochs)
    runs[name] = p
    print(
        f"{name:4s} converged={p.converged!s:5s} after {p.epochs_run:3d} sweeps,",
        f"w={p.w.round(2)}, b={p.b:.2f}",
    )
print("XOR linearly separable?", fnn.classic.linearly_separable(X, TARGETS["XOR"]))

fig, ax = plt.subplots(figsize=(6, 3))
for name, p in runs.items():
    ax.plot(range(1, len(p.errors) + 1), p.errors, marker="o", ms=3, label=name)
ax.set(xlabel="sweep over the 4 inputs", ylabel="mistakes", title="The perceptron rule")
ax.legend()
plt.show()

# %% [markdown]
# ## XOR with two layers
#
# Stack perceptrons and XOR appears: $\mathrm{XOR}(a, b) = \mathrm{AND}(\mathrm{NAND}(a, b),
# \mathrm{OR}(a, b))$. The first layer computes NAND and OR side by side (a `Dense(2, 2)`
# whose two columns are the NAND and OR weights), the second layer ANDs them. In fastnn
# that is four layers: `Dense(2, 2)`, `Step`, `Dense(2, 1)`, `Step`.

# %%
xor = fnn.Sequential(
    [fnn.Dense(2, 2), fnn.Step(), fnn.Dense(2, 1), fnn.Step()], loss=fnn.MeanSquaredError(), seed=0
)
first, second = xor.layers[0], xor.layers[2]
first.params["W"][...] = np.stack([GATE_WEIGHTS["NAND"][0], GATE_WEIGHTS["OR"][0]], axis=1)
first.params["b"][...] = [GATE_WEIGHTS["NAND"][1], GATE_WEIGHTS["OR"][1]]
second.params["W"][...] = GATE_WEIGHTS["AND"][0].reshape(2, 1)
second.params["b"][...] = GATE_WEIGHTS["AND"][1]

hidden = fnn.Sequential(xor.layers[:2], loss=fnn.MeanSquaredError()).predict(X).astype(int)
y = xor.predict(X).ravel().astype(int)
print("x1 x2 | NAND OR | XOR")
for x, h, out in zip(X.astype(int), hidden, y):
    print(f" {x[0]}  {x[1]} |  {h[0]}    {h[1]} |  {out}")
assert (y == TARGETS["XOR"]).all()

# %% [markdown]
# ## Learning XOR needs a smooth step
#
# The step's derivative is 0 everywhere it exists, so gradient descent cannot move the
# weights of a network of `Step`s: that is why the next chapters swap it for smooth
# activations (tutorial 2) and learn the weights by gradient descent (tutorials 3 and 4).
# As a preview, a 2-4-1 network with `Tanh` in the hidden layer, a sigmoid output and the
# cross-entropy loss $-[t \log y + (1 - t) \log(1 - y)]$ learns XOR from its four examples.

# %%
learner = fnn.Sequential(
    [fnn.Dense(2, 4, init="xavier"), fnn.Tanh(), fnn.Dense(4, 1, init="xavier")],
    loss=fnn.SigmoidCrossEntropy(),
    seed=0,
)
t_xor = TARGETS["XOR"].reshape(4, 1).astype(np.float32)
steps = 2000 if FULL else 500
optimizer = fnn.optim.Adam(lr=0.05)
losses = [learner.train_step(X, t_xor, optimizer) for _ in range(steps)]
probabilities = learner.predict_proba(X).ravel()
print(f"loss after {steps} steps: {losses[-1]:.4f}")
print("P(XOR = 1):", probabilities.round(3), "->", (probabilities > 0.5).astype(int))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
ax1.plot(losses)
ax1.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="Training on XOR's four examples")
surface = learner.predict_proba(points.astype(np.float32)).reshape(gx.shape)
ax2.contourf(gx, gy, surface, levels=20, cmap="coolwarm", alpha=0.6)
ax2.scatter(*X[TARGETS["XOR"] == 1].T, s=120, c="k")
ax2.scatter(*X[TARGETS["XOR"] == 0].T, s=120, facecolors="none", edgecolors="k")
ax2.set(title="P(XOR = 1): two lines, not one")
ax2.set_aspect("equal")
plt.tight_layout()
plt.show()
