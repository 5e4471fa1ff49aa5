"""fit's side of a data-parallel run on K ranks (Horovod's and PyTorch DDP's model).

:class:`DataParallel` holds the communicator and does what differs from one process:

* at the start, checks that every rank runs the same fastnn version, model, data and
  settings (a mismatch is an error on every rank, not a hang), then broadcasts rank 0's
  weights, buffers and optimizer state;
* every step, each rank takes its shard of the global batch
  (:func:`fastnn.distributed.shard_of`) and backpropagates its share ``n_rank / n_global``
  of the mean loss over its shard (the loss's gradient, (N, outputs), is scaled, not the
  parameters' gradients), then one in-place allreduce of the flat gradient buffer sums the
  ranks' gradients. That sum is the gradient of the mean loss over the global batch, so K
  ranks step like one process given the whole batch (the average of the shards'
  gradients when they are equal); then every rank applies the same optimizer step to the
  same weights;
* the step's statistics (the loss, the correct count, Ctrl-C, and a NaN/Inf on any rank,
  so every rank stops at the same step, before any gradient is summed) go first, in a
  small allreduce of their own;
* validation is split over the ranks and its sums reduced.
"""

from __future__ import annotations

import json
import zlib
from importlib import metadata

import numpy as np

from .callbacks.base import callback_names
from .callbacks.model_checkpoint import data_fingerprint
from .distributed import as_communicator, shard_of
from .errors import NonFiniteError
from .layers.blocks import leaves
from .optim import clip_grad_norm

__all__ = ["DataParallel", "fastnn_version"]

#: Slots of the per-step statistics vector, before one slot per rank for a NaN/Inf there.
_LOSS, _CORRECT, _INTERRUPT, _FIRST_RANK = 0, 1, 2, 3
_LOSS_NOT_FINITE, _GRADIENT_NOT_FINITE = 1.0, 2.0

#: What to do about a difference between the ranks, by what differs (default: run the same
#: fastnn, model, data and arguments).
_MISMATCH_HINTS = {
    "position (resumed checkpoint)": "the checkpoint folder must be one every rank can read (shared storage)",
    "callbacks": (
        "give every rank the same callbacks, in the same order (the file loggers and the dashboard "
        "run on rank 0 alone anyway; a callback of your own that only reports can set root_only = True)"
    ),
}


def fastnn_version() -> str:
    try:
        return metadata.version("fastnn")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class DataParallel:
    """The collective parts of ``fit(..., comm=comm)`` for a communicator of size > 1.

    ``seed`` (fit's, else the model's, else 0) seeds each rank's Dropout masks at every
    step from ``(seed, rank, global_step)``: different on every rank, the same from run
    to run, and the same again after a resume.
    """

    def __init__(self, comm, seed: int | None):
        self.comm = as_communicator(comm)
        self.seed = 0 if seed is None else int(seed)
        self._stats = np.zeros(_FIRST_RANK + self.comm.size, np.float64)
        self._generators = None  # seed_dropout's (model.layers, its length, [(layer index, attribute)])

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size < self.size:
            raise ValueError(
                f"fit: batch_size={batch_size} is the global batch, shared by {self.size} ranks; "
                f"expected at least {self.size} (one sample per rank); pass batch_size >= {self.size}"
            )

    def steps(self, n_samples: int, batch_size: int) -> int:
        """Global batches per epoch: a last batch too short to give every rank a sample
        (fewer than K samples) is dropped, so every rank runs every step."""
        full, rest = divmod(n_samples, batch_size)
        return full + (rest >= self.size)

    # ------------------------------------------------------------ the start

    def describe_run(self, model, loop, optimizer) -> dict:
        """{what: text} of everything that must be the same on every rank."""
        config = json.dumps(model.get_config(), sort_keys=True, default=str)
        state = sorted((name, array.shape, str(array.dtype)) for name, array in optimizer.state.items())
        validation = None if loop.validation is None else len(loop.validation[0])
        return {
            "fastnn version": fastnn_version(),
            "model": f"{config} {model.dtype} {model.ops.name} {model.num_params}",
            "training data": f"{loop.n_samples} {data_fingerprint(loop.x, loop.t)}",
            "validation data": str(validation),
            "fit arguments": f"{loop.epochs} {loop.batch_size} {loop.shuffle} {loop.include_penalty}",
            "optimizer": f"{type(optimizer).__name__} {optimizer.lr!r} {state}",
            "position (resumed checkpoint)": f"{loop.epoch} {loop.batch} {loop.global_step}",
            "callbacks": " ".join(callback_names(c for c in loop.callbacks if not c.root_only)),
        }

    def check_same_run(self, model, loop, optimizer) -> None:
        """Raise the same ValueError on every rank when any rank differs in what
        :meth:`describe_run` lists, naming the first difference and the rank."""
        described = self.describe_run(model, loop, optimizer)
        mine = np.array([zlib.crc32(text.encode()) for text in described.values()], np.int64)
        everyone = self.comm.allgather(mine)
        for column, what in enumerate(described):
            differ = np.flatnonzero(everyone[:, column] != everyone[0, column])
            if differ.size:
                hint = _MISMATCH_HINTS.get(
                    what, "every rank must run the same fastnn with the same model, data and fit arguments"
                )
                raise ValueError(
                    f"fit(comm): rank {differ[0]} of {self.size} has different {what} than rank 0 "
                    f"(crc32 {everyone[differ[0], column]:08x}, rank 0: {everyone[0, column]:08x}; "
                    f"this is rank {self.rank}: {described[what][:80]!r}); {hint}"
                )

    def broadcast_state(self, model, optimizer) -> None:
        """Give every rank rank 0's weights, layer buffers (BatchNorm's running statistics)
        and optimizer state and step count."""
        self.comm.broadcast_(model.flat_params)
        for layer in model.layers:
            for name in sorted(layer.buffers):
                buffer = layer.buffers[name]
                if buffer.flags.c_contiguous:
                    self.comm.broadcast_(buffer)
                else:
                    copy = np.ascontiguousarray(buffer)
                    buffer[...] = self.comm.broadcast_(copy)
        for name in sorted(optimizer.state):
            self.comm.broadcast_(optimizer.state[name])
        iterations = self.comm.broadcast_(np.array([optimizer.iterations], np.int64))
        optimizer.iterations = int(iterations[0])

    def connect_batchnorms(self, model, comm) -> None:
        """Give every synchronised BatchNorm (``sync=True``), blocks opened, the communicator
        ``comm`` (None: they go back to the batch of their own process)."""
        for layer, _ in leaves(model.layers):
            if getattr(layer, "sync", False):
                layer.comm = comm

    # ------------------------------------------------------------ the steps

    def shard(self, batch: np.ndarray) -> np.ndarray:
        """This rank's part of a global batch of sample indices."""
        return shard_of(batch, self.rank, self.size)

    def seed_dropout(self, model, global_step: int) -> None:
        """Reseed, in place, every numpy Generator a layer holds (Dropout's masks; a block
        holds its sublayers' as attributes like "body.0.rng") from ``(seed, rank,
        global_step, layer index, attribute)``: each layer draws its own masks."""
        layers = model.layers
        cached = self._generators
        if cached is None or cached[0] is not layers or cached[1] != len(layers):
            names = [
                (index, name)
                for index, layer in enumerate(layers)
                for name, value in sorted(vars(layer).items())
                if isinstance(value, np.random.Generator)
            ]
            self._generators = (layers, len(layers), names)  # looked up once: most models hold none
        for index, name in self._generators[2]:
            generator = getattr(layers[index], name)
            key = [self.seed, self.rank, global_step, index, zlib.crc32(name.encode())]
            generator.bit_generator.state = type(generator.bit_generator)(key).state

    def train_step(self, model, xb, tb, n_global: int, optimizer, clip_norm, interrupted: bool, step: int):
        """One data-parallel optimizer step on this rank's shard (xb, tb) of a global batch
        of ``n_global`` samples; returns (mean loss over the global batch, correct
        predictions in it, whether Ctrl-C was pressed on any rank).

        Raises NonFiniteError on every rank, leaving the weights untouched, when the loss
        or a gradient is NaN or Inf on any rank.
        """
        comm, stats = self.comm, self._stats
        share = len(xb) / n_global
        comm.batch_share = share
        self.seed_dropout(model, step)
        if model.input_shape is None:
            model.input_shape = np.shape(xb)[1:]
        stats[:] = 0.0
        error = None
        loss = model.loss(xb, tb, train=True)
        if not np.isfinite(loss):
            where = model.first_nonfinite_layer(xb) or f"the loss {model.loss_fn!r}"
            error = NonFiniteError(f"loss is {loss} on rank {self.rank}: first non-finite value in {where}")
            stats[_FIRST_RANK + self.rank] = _LOSS_NOT_FINITE
        else:
            model.backward(input_grad=False, loss_scale=share)
            if not model.ops.all_finite(model.flat_grads):
                where = model.first_nonfinite_gradient()
                error = NonFiniteError(f"gradient is not finite on rank {self.rank}: first in {where}")
                stats[_FIRST_RANK + self.rank] = _GRADIENT_NOT_FINITE
            stats[_LOSS] = loss * len(xb)
            stats[_CORRECT] = model.loss_fn.count_correct(model.last_output, tb)
        stats[_INTERRUPT] = float(interrupted)
        comm.allreduce_(stats)
        failed = np.flatnonzero(stats[_FIRST_RANK:])
        if failed.size:
            if error is None:
                rank = failed[0]
                kind = "loss" if stats[_FIRST_RANK + rank] == _LOSS_NOT_FINITE else "gradient"
                error = NonFiniteError(f"{kind} is not finite on rank {rank} of {self.size}")
            raise error
        comm.allreduce_(model.flat_grads)
        if clip_norm is not None:
            clip_grad_norm(model.flat_grads, clip_norm)
        optimizer.step(model)
        return stats[_LOSS] / n_global, int(round(stats[_CORRECT])), bool(stats[_INTERRUPT])

    def agree(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any."""
        return bool(self.comm.allreduce_(np.array([float(flag)]))[0])

    def evaluate(self, model, x, t, batch_size: int) -> dict:
        """{"loss", "accuracy"} over (x, t), each rank scoring its shard, the sums reduced."""
        xs, ts = shard_of(x, self.rank, self.size), shard_of(t, self.rank, self.size)
        sums = np.zeros(2, np.float64)
        if len(xs):
            local = model.evaluate(xs, ts, batch_size=batch_size)
            sums[:] = local["loss"] * len(xs), local["accuracy"] * len(xs)
        self.comm.allreduce_(sums)
        return {"loss": sums[0] / len(x), "accuracy": sums[1] / len(x)}

    def barrier(self) -> None:
        """Wait for every rank, asleep (:meth:`~fastnn.distributed.Communicator.barrier_sleeping`):
        the ranks wait here while rank 0 writes files, and a spinning wait would take a core
        from it when ranks outnumber cores."""
        self.comm.barrier_sleeping()
