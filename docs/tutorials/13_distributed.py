# %% [markdown]
# # 13. Training on several processes
#
# Neither book goes here, but it is the next step once one CPU is not enough: data-parallel
# training, the way Horovod and PyTorch's DistributedDataParallel do it, with fastnn's
# `fnn.distributed` (details in [Training across processes](../distributed.md)).
#
# K processes (ranks) hold the same model. Each step, the global batch of B samples is cut into K
# shards; rank r computes the gradient of the mean loss over its n_r samples, and one *allreduce*
# (a sum over the ranks, which every rank receives) combines them:
#
# ```text
# grad of (1/B) sum_{i in batch} loss_i  =  sum_r (n_r / B) * grad of (1/n_r) sum_{i in shard r} loss_i
# ```
#
# Every rank then applies the same optimizer step to the same weights, so the ranks stay identical,
# and K ranks compute what one process would on the whole batch.

# %%
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import fastnn as fnn

FULL = os.environ.get("FASTNN_TUTORIAL_FULL") == "1"
(x_train, t_train), (x_test, t_test) = fnn.datasets.load_mnist()

# %% [markdown]
# ## The formula, checked in one process
#
# A batch of 100 images through a small network: the gradient over the whole batch, and the
# weighted sum of the gradients over two shards of 60 and 40 images (what two ranks would send to the
# allreduce). `model.loss` runs the forward pass, `model.backward` fills `model.flat_grads`, the one
# buffer that holds every gradient and that the allreduce sends.

# %%
model = fnn.models.mlp(hidden=(50,), seed=0, input_shape=(1, 28, 28), dtype="float64")
xb, tb = x_train[:100].astype(np.float64), t_train[:100]


def gradient(x, t):
    model.loss(x, t)
    model.backward()
    return model.flat_grads.copy()


whole = gradient(xb, tb)
sharded = 0.6 * gradient(xb[:60], tb[:60]) + 0.4 * gradient(xb[60:], tb[60:])
print(f"{whole.size} gradient values; largest difference: {np.abs(whole - sharded).max():.2e}")

# %% [markdown]
# A rank applies its weight before the backward pass rather than after it:
# `model.backward(loss_scale=share)` backpropagates `share * loss`, which scales only the loss's
# gradient (a few values per sample), so every gradient comes out weighted and the allreduce sums
# the flat gradient buffer as it is, with no pass over it.

# %%


def weighted_gradient(x, t, share):
    model.loss(x, t)
    model.backward(loss_scale=share)
    return model.flat_grads.copy()


summed = weighted_gradient(xb[:60], tb[:60], 0.6) + weighted_gradient(xb[60:], tb[60:], 0.4)
print(f"weighted in the backward pass; largest difference: {np.abs(whole - summed).max():.2e}")

# %% [markdown]
# ## A real job on two ranks
#
# The training script is an ordinary one with `comm = fnn.distributed.init()` and `fit(..., comm=comm)`;
# outside a launcher `init()` returns a one-rank communicator and the script runs alone. Under
# `mpiexec -n 2`, `batch_size` is the *global* batch (50 samples a rank here), rank 0 alone
# writes files, and the weights broadcast from rank 0 at the start stay equal on every rank.
#
# The reduced run trains on 2,000 MNIST images for one epoch and tests on 1,000; `FASTNN_TUTORIAL_FULL=1`
# trains on all 60,000 for three epochs and tests on all 10,000.

# %%
IMAGES = 60000 if FULL else 2000
EPOCHS = 3 if FULL else 1
TEST = 10000 if FULL else 1000
workdir = Path(tempfile.mkdtemp())
script = workdir / "train.py"
script.write_text(
    textwrap.dedent(
        f"""
        import sys
        import fastnn as fnn

        comm = fnn.distributed.init()  # size 1 outside mpiexec
        (x, t), (x_test, t_test) = fnn.datasets.load_mnist()
        model = fnn.models.mlp(hidden=(100,), seed=0, input_shape=(1, 28, 28))
        model.fit(x[:{IMAGES}], t[:{IMAGES}], epochs={EPOCHS}, batch_size=100,
                  optimizer=fnn.optim.SGD(lr=0.1), comm=comm, verbose=0, seed=0)
        print(f"rank {{comm.rank}} of {{comm.size}}: done", flush=True)
        if comm.is_root:
            model.save(sys.argv[1])
            print("test accuracy", model.evaluate(x_test[:{TEST}], t_test[:{TEST}])["accuracy"], flush=True)
        """
    )
)


def find_mpiexec():
    """The mpiexec beside this Python (the MPICH wheel's, from the ``mpi`` extra), else on PATH;
    None without it or without mpi4py."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def run(command):
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(fnn.__file__).resolve().parents[1]),
        "PYTHONWARNINGS": "ignore",
    }
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    seconds = time.perf_counter() - start
    print(done.stdout.strip())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


mpiexec = find_mpiexec()
alone = run([sys.executable, str(script), str(workdir / "alone.npz")])
print(f"one process: {alone:.1f} s (start-up and data loading included)\n")
if mpiexec:
    two = run([mpiexec, "-n", "2", sys.executable, str(script), str(workdir / "two.npz")])
    print(f"two ranks: {two:.1f} s")
else:
    print(
        "mpiexec or mpi4py is missing (pip install 'fastnn[mpi]'), so this page cannot start a two-rank "
        "job; the one-process run above used the size-1 communicator that init() returns outside a launcher."
    )

# %% [markdown]
# ## Two ranks compute what one process computes
#
# The two runs differ only in float32 rounding: on two ranks the gradient sums run in a different
# order. After one step that is a difference in the last bits (`tests/test_distributed.py` checks
# 1e-5 relative after 15 steps); over hundreds of steps of SGD such differences grow, so a long run
# ends with weights that are close but not equal. The cell prints both measures: the largest weight
# difference, and how often the two models predict the same class.

# %%
one_model = fnn.load(workdir / "alone.npz")
if mpiexec:
    two_model = fnn.load(workdir / "two.npz")
    difference = np.abs(two_model.flat_params - one_model.flat_params).max()
    scale = np.abs(one_model.flat_params).max()
    print(f"largest weight difference, 2 ranks vs 1 process: {difference:.2e} (largest weight {scale:.2f})")
    same = np.mean(two_model.predict_classes(x_test[:TEST]) == one_model.predict_classes(x_test[:TEST]))
    print(f"the two models predict the same class for {same:.2%} of the test images")

# %% [markdown]
# Whether two ranks are faster than one process with two threads depends on the network and the
# machine: on a laptop both use the same cores, and the allreduce adds its time. Its place is on
# several machines, where each rank brings its own cores; `fastnn bench --distributed` measures the
# steps and the allreduces and models what a cluster would give (see the distributed page).
