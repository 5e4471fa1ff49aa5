"""A data-parallel job that tests/test_distributed.py runs under ``mpiexec -n K`` (or alone).

    python distributed_job.py SCENARIO OUT_DIR

Rank 0 writes what the test compares into OUT_DIR (.npz files, no pickle). The model and
data are built here and in the test from :func:`problem`, so both sides train the same.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import warnings
from pathlib import Path

import numpy as np

import fastnn as fnn
from fastnn.callbacks import Callback


def problem(n: int = 70, features: int = 12, classes: int = 3, seed: int = 0, batchnorm: bool = False):
    """(model, x, t): a small MLP (Dense, [BatchNorm(sync=True),] ReLU, Dense) on separable
    random data; the same on every rank and in every process."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    t = (x[:, :classes].argmax(axis=1)).astype(np.int64)
    middle = [fnn.layers.BatchNorm(16, sync=True)] if batchnorm else []
    layers = [fnn.layers.Dense(features, 16), *middle, fnn.layers.ReLU(), fnn.layers.Dense(16, classes)]
    return fnn.Sequential(layers, seed=1), x, t


def optimizer():
    return fnn.optim.Momentum(lr=0.1, momentum=0.9)


FIT = dict(batch_size=16, seed=3, verbose=0)


class Fail(Callback):
    """On rank ``rank``, at step ``step``: raise, or kill this process outright."""

    def __init__(self, rank: int, step: int, how: str):
        self.rank, self.step, self.how = rank, step, how

    def on_train_batch_end(self, batch, logs, model, optimizer):
        comm = self.loop.parallel.comm
        if comm.rank == self.rank and self.loop.global_step == self.step:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"rank {comm.rank} fails on purpose at step {self.step}")


class Poison(Callback):
    """On rank ``rank``, before step ``step``: a NaN in the first weight."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def on_train_batch_begin(self, batch, model, optimizer):
        if self.loop.parallel.comm.rank == self.rank and self.loop.global_step == self.step:
            model.flat_params[0] = np.nan


class Reporter(Callback):
    """A callback that only reports (root_only): counts the epochs it saw."""

    root_only = True

    def __init__(self):
        self.epochs = 0

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        self.epochs += 1


class Plateau(fnn.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau on the training loss that keeps its state as the first epoch of a
    run began (after a resume: what the checkpoint gave it), as JSON."""

    def __init__(self):
        super().__init__(patience=1, monitor="loss")
        self.at_start = None

    def on_epoch_begin(self, epoch, model, optimizer):
        if self.at_start is None:
            self.at_start = json.dumps(self.state_dict(), sort_keys=True)


def text_row(text: str, width: int = 400) -> np.ndarray:
    """``text`` as a fixed-width uint8 row, for allgather."""
    return np.frombuffer(text.encode().ljust(width)[:width], np.uint8)


def mnist_epoch(comm=None) -> float:
    """Test accuracy of fnn.models.mlp after one epoch (Adam, global batch 100) on MNIST from $FASTNN_DATA."""
    (x, t), (x_test, t_test) = fnn.datasets.load_mnist(
        "mnist", path=Path(os.environ["FASTNN_DATA"]) / "mnist"
    )
    model = fnn.models.mlp(seed=0)
    model.fit(x, t, epochs=1, batch_size=100, optimizer=fnn.optim.Adam(1e-3), seed=0, verbose=0, comm=comm)
    return model.evaluate(x_test, t_test)["accuracy"]


def tune_table(trials) -> dict:
    """The trials of a search, best first, as arrays: what a distributed search must equal."""
    return {
        "index": np.array([trial.index for trial in trials]),
        "score": np.array([trial.score for trial in trials]),
        "val_loss": np.array([trial.val_loss for trial in trials]),
        "lr": np.array([trial.params["lr"] for trial in trials]),
        "loss_per_epoch": np.array([trial.history["loss"] for trial in trials]),
    }


def main(scenario: str, out: Path) -> None:
    comm = fnn.distributed.init()
    root = comm.is_root
    if scenario == "train":  # 3 epochs straight; then 1 epoch checkpointed and resumed to 3
        model, x, t = problem()
        model.fit(x, t, epochs=3, optimizer=optimizer(), comm=comm, **FIT)
        straight = model.flat_params.copy()
        model, x, t = problem()
        model.fit(x, t, epochs=1, optimizer=optimizer(), comm=comm, checkpoint=out / "epoch1", **FIT)
        if root:  # resume from a copy: the test resumes from epoch 1 again, on one rank
            shutil.copytree(out / "epoch1", out / "ckpt")
        comm.barrier()
        model, x, t = problem()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, t, epochs=3, comm=comm, checkpoint=out / "ckpt", resume=True, **FIT)
        resumed = model.flat_params.copy()
        same = comm.allgather(straight)
        if root:
            np.savez(
                out / "train.npz",
                straight=straight,
                resumed=resumed,
                ranks_agree=np.array(all((row == straight).all() for row in same)),
                warned=np.array(any("rank" in str(w.message) for w in caught)),
            )
    elif scenario == "resume-alone":  # the 2-rank checkpoint from "train", continued in one process
        model, x, t = problem()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(x, t, epochs=3, comm=comm, checkpoint=out / "ckpt", resume=True, **FIT)
        messages = [str(w.message) for w in caught]
        np.savez(out / "alone.npz", resumed=model.flat_params, messages=np.array(messages or [""]))
    elif scenario == "batchnorm":
        model, x, t = problem(n=64, batchnorm=True)
        model.fit(x, t, epochs=2, optimizer=optimizer(), comm=comm, **FIT)
        if root:
            np.savez(out / "batchnorm.npz", params=model.flat_params, mean=model.layers[1].running_mean)
    elif scenario == "callbacks":  # a CSVLogger on rank 0 alone (Horovod's habit), first; resumed

        def given():
            logger = [fnn.callbacks.CSVLogger(out / "log.csv", append=True)] if root else []
            return [*logger, Reporter(), Plateau()]

        model, x, t = problem()
        checkpointed = dict(comm=comm, checkpoint=out / "ckpt", **FIT)
        model.fit(x, t, epochs=1, optimizer=optimizer(), callbacks=given(), **checkpointed)
        model, x, t = problem()
        callbacks = given()
        model.fit(x, t, epochs=3, resume=True, callbacks=callbacks, **checkpointed)
        restored = comm.allgather(text_row(callbacks[-1].at_start))
        reported = comm.allgather(np.array([callbacks[-2].epochs]))
        if root:
            np.savez(
                out / "callbacks.npz",
                restored=np.array([row.tobytes().decode().strip() for row in restored]),
                reported=reported.ravel(),
            )
    elif scenario == "callback-mismatch":  # rank 1 alone has a schedule
        model, x, t = problem()
        extra = [Plateau()] if comm.rank == 1 else []
        model.fit(x, t, epochs=1, optimizer=optimizer(), comm=comm, callbacks=[Reporter(), *extra], **FIT)
    elif scenario == "mismatch":  # rank 1 trains on other data
        model, x, t = problem(seed=comm.rank)
        model.fit(x, t, epochs=1, optimizer=optimizer(), comm=comm, **FIT)
    elif scenario == "nan":  # rank 1's weights turn NaN before step 2: every rank stops there
        model, x, t = problem()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            history = model.fit(
                x, t, epochs=3, optimizer=optimizer(), comm=comm, callbacks=[Poison(1, 2)], **FIT
            )
        reasons = comm.allgather(np.frombuffer(history.stop_reason.encode().ljust(300)[:300], np.uint8))
        if root:
            np.savez(
                out / "nan.npz",
                params=model.flat_params,
                reasons=np.array([row.tobytes().decode().strip() for row in reasons]),
            )
    elif scenario == "tune":
        model, x, t = problem()
        space = {"lr": fnn.tune.LogUniform(1e-3, 0.3), "momentum": fnn.tune.Uniform(0.5, 0.95)}
        trials = fnn.tune.random_search(
            lambda params: problem()[0],
            space,
            x,
            t,
            trials=5,
            epochs=2,
            optimizer="momentum",
            batch_size=16,
            seed=4,
            verbose=0,
            comm=comm,
        )
        if root:
            np.savez(out / "tune.npz", **tune_table(trials))
    elif scenario == "kill-checkpointed":  # checkpoints every 2 steps; rank 1 is killed at step 7
        model, x, t = problem()
        fail = [Fail(1, 7, "kill")]
        model.fit(x, t, epochs=50, optimizer=optimizer(), comm=comm, checkpoint=out / "ckpt", callbacks=fail,
                  checkpoint_every=2, **FIT)  # fmt: skip
    elif scenario == "resume-checkpointed":
        model, x, t = problem()
        model.fit(x, t, epochs=3, comm=comm, checkpoint=out / "ckpt", resume=True, **FIT)
        if root:
            np.savez(out / "resumed.npz", params=model.flat_params)
    elif scenario == "mnist":  # an epoch of the book's MLP on real MNIST
        accuracy = mnist_epoch(comm)
        if root:
            np.savez(out / "mnist.npz", accuracy=accuracy)
    elif scenario == "barrier-sleeping":  # rank 0 works for a second; rank 1 waits at the barrier
        import time

        started, cpu = time.perf_counter(), time.process_time()
        if root:
            while time.perf_counter() - started < 1.0:
                pass
        comm.barrier_sleeping()
        waited = np.array([time.perf_counter() - started, time.process_time() - cpu])
        every = comm.allgather(waited)
        if root:
            np.savez(out / "barrier.npz", waited=every)
    elif scenario in ("raise", "kill"):
        model, x, t = problem()
        model.fit(x, t, epochs=50, optimizer=optimizer(), comm=comm, callbacks=[Fail(1, 2, scenario)], **FIT)
    else:
        raise ValueError(f"distributed_job: unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
