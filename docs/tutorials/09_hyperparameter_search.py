# %% [markdown]
# # 9. Hyperparameter search on a validation split
#
# *Deep Learning from Scratch*, chapter 6.5 (figure 6-24).
#
# The learning rate, the weight decay, the number of units: values the training does not learn, but
# that decide how well it learns. Choosing them is itself a kind of fitting, so it must not look at
# the test set: a configuration chosen because it scores well on the test data has, in effect, been
# trained on it, and its test score no longer says how it does on new data. The book's rule:
#
# * split the **training** data into a part to train on and a **validation** part to score each
#   configuration on; keep the test set for one final measurement at the end;
# * sample the hyperparameters at random, on a **log scale** for rates and decays (`10 ** u` with `u`
#   uniform), since 0.001 and 0.01 differ as much as 0.01 and 0.1;
# * train each configuration briefly, keep the best, narrow the ranges, repeat.
#
# fastnn's `fnn.tune.random_search` is that procedure: it holds out `validation_split` of the data it
# is given (the same samples for every trial), samples `fnn.tune.LogUniform(low, high)` ranges, trains
# each model for a few epochs and returns the trials best first. It has no test-set argument.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
TRIALS = 100 if FULL else 8  # the book's 100 trials of 50 epochs; the reduced run, used by CI, 8 of 20
EPOCHS = 50 if FULL else 20

(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()
x_train, t_train = x_train[:500], t_train[:500]  # the book searches on 500 images to keep it quick

# %% [markdown]
# ## The search
#
# The book's network (six hidden layers of 100 ReLU units) trained with SGD on batches of 100:
# 400 images to train on and 100 to validate on (`validation_split=0.2`). The learning rate is
# sampled from `10^-6` to `10^-2` and the weight decay from `10^-8` to `10^-4`. `random_search` builds
# each trial's optimizer by name (`optimizer="sgd"`) from the sampled values whose names it takes.


# %%
def network(params):
    """The model for one trial (a fresh one each call; params go to the optimizer)."""
    return fnn.models.mlp(hidden=(100,) * 6, seed=0)


space = {"lr": fnn.tune.LogUniform(1e-6, 1e-2), "weight_decay": fnn.tune.LogUniform(1e-8, 1e-4)}
trials = fnn.tune.random_search(
    network,
    space,
    x_train,
    t_train,
    trials=TRIALS,
    epochs=EPOCHS,
    validation_split=0.2,
    batch_size=100,
    optimizer="sgd",
    seed=0,
    verbose=0,
)
print(fnn.tune.format_trials(trials, top=10))

# %% [markdown]
# ## Which values work?
#
# Each dot is one trial, placed by its sampled values and coloured by its validation accuracy. On a
# log axis the pattern is plain: the learning rate decides almost everything, the weight decay (in
# this range, over this few epochs) very little.

# %%
lr = np.array([trial.params["lr"] for trial in trials])
decay = np.array([trial.params["weight_decay"] for trial in trials])
score = np.array([trial.val_accuracy for trial in trials])

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].scatter(lr, score)
axes[0].set_xscale("log")
axes[0].set_xlabel("learning rate")
axes[0].set_ylabel("validation accuracy")
dots = axes[1].scatter(lr, decay, c=score, cmap="viridis")
axes[1].set_xscale("log")
axes[1].set_yscale("log")
axes[1].set_xlabel("learning rate")
axes[1].set_ylabel("weight decay")
fig.colorbar(dots, ax=axes[1], label="validation accuracy")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The best trials' curves (figure 6-24)
#
# Validation accuracy (solid) and training accuracy (dashed; measured on each batch as it was
# trained) per epoch, best trial first.

# %%
shown = trials[: 20 if FULL else 8]
columns = 5 if FULL else 4
rows = -(-len(shown) // columns)
fig, axes = plt.subplots(rows, columns, figsize=(12, 2.3 * rows), sharex=True, sharey=True, squeeze=False)
for rank, (ax, trial) in enumerate(zip(axes.ravel(), shown), start=1):
    ax.plot(trial.history["val_accuracy"], label="validation")
    ax.plot(trial.history["accuracy"], "--", label="training")
    ax.set_title(f"best {rank}: lr {trial.params['lr']:.1e}", fontsize=9)
    ax.set_ylim(0, 1)
for ax in axes.ravel()[len(shown) :]:
    ax.set_visible(False)
axes[0, 0].legend(loc="upper left", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Narrow, then measure once on the test set
#
# The next round would sample from the range the best trials span. Here we stop after one round:
# the best configuration is trained again on all 500 images (training and validation parts
# together), and only then measured on the test set, once.

# %%
best = trials[:5]
for name in space:
    values = [trial.params[name] for trial in best]
    print(f"the best 5 trials' {name}: {min(values):.1e} to {max(values):.1e}")

params = trials[0].params
model = network(params)
model.fit(
    x_train,
    t_train,
    epochs=EPOCHS,
    batch_size=100,
    optimizer=fnn.optim.SGD(lr=params["lr"], weight_decay=params["weight_decay"]),
    verbose=0,
    seed=0,
)
print(f"best validation accuracy {trials[0].val_accuracy:.3f}")
print(f"the chosen configuration on the 10,000 test images: {model.evaluate(x_test, t_test)['accuracy']:.3f}")
