"""The training loop behind ``Sequential.fit``: mini-batches driving a list of callbacks.

:func:`fit` runs the steps; everything else it does is a callback of
:mod:`fastnn.callbacks`, in this order: :class:`~fastnn.callbacks.ProgressLogger`,
:class:`~fastnn.callbacks.NonFiniteGuard`, the caller's callbacks,
:class:`~fastnn.callbacks.EarlyStopping`, :class:`~fastnn.callbacks.ModelCheckpoint`.
Its keyword arguments ``verbose``, ``patience``, ``checkpoint`` and the like are
shorthands that build those. Nothing already trained is lost:

* a NaN/Inf loss or gradient stops training with a message and leaves the model
  holding the last weights whose loss was finite;
* with ``checkpoint=DIR`` the whole training state is written atomically every
  ``checkpoint_every`` steps (default: every epoch), and ``resume=True`` continues
  from the newest checkpoint, giving bit-for-bit the weights of an uninterrupted run;
* Ctrl-C finishes the current step, writes a checkpoint and returns cleanly.

The loop knows the model only through its public methods (``prepare_input``,
``train_step``, ``last_output``, ``evaluate``), so this module sits below
:mod:`fastnn.model`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings

import numpy as np

from ._files import atomic_write
from .callbacks import Callback, CallbackList, EarlyStopping, ModelCheckpoint, NonFiniteGuard, ProgressLogger
from .callbacks.loggers import csv_text, epoch_rows
from .checkpoint import rng_state, set_rng_state
from .data_parallel import DataParallel
from .errors import NonFiniteError
from .fit_checks import check_fit_arguments
from .optim import get_optimizer

__all__ = ["History", "TrainingLoop", "fit"]


class History(dict):
    """Per-epoch metrics: ``history["loss"]``, ``["accuracy"]``, ``["val_loss"]``,
    ``["val_accuracy"]``, ``["lr"]``, ``["time"]`` (lists, one entry per finished epoch).

    ``best_epoch`` (0-based) and ``stop_reason`` (None if all epochs ran) say how it ended;
    ``interrupted`` is True when Ctrl-C stopped it, and ``interrupted_at`` says where
    (``"epoch 1/3, step 212/600"``); ``checkpoint`` is the path of the last checkpoint
    written (None without ``checkpoint=``). ``time`` is each epoch's wall time in seconds.
    """

    def __init__(self):
        super().__init__(loss=[], accuracy=[], lr=[], time=[])
        self.best_epoch: int | None = None
        self.stop_reason: str | None = None
        self.interrupted: bool = False
        self.interrupted_at: str | None = None
        self.checkpoint: str | None = None

    @property
    def epochs(self) -> int:
        """The number of epochs recorded."""
        return len(self["loss"])

    def to_dict(self) -> dict:
        """The metrics as a plain dict of lists (JSON data), ``{"loss": [...], ...}``."""
        return {key: list(values) for key, values in self.items()}

    def to_csv(self, path=None) -> str:
        """The history as CSV text: a header ``epoch,loss,accuracy,[val_loss,val_accuracy,]lr,time``
        and one row per epoch (epoch counted from 1, floats written exactly, as ``repr``);
        also written to ``path``, atomically, when one is given. The same columns as
        :class:`~fastnn.callbacks.CSVLogger`."""
        text = csv_text(epoch_rows(self))
        if path is not None:
            data = text.encode("utf-8")
            atomic_write(path, lambda handle: handle.write(data))
        return text

    def state_dict(self) -> dict:
        """The metrics, the best epoch and the stop reason as JSON data (saved in checkpoints)."""
        return {
            "metrics": {k: list(v) for k, v in self.items()},
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
        }

    def load_state_dict(self, state: dict) -> None:
        """Replace the history with the one ``state_dict()`` returned."""
        self.clear()
        self.update({k: list(v) for k, v in state["metrics"].items()})
        self.best_epoch = state["best_epoch"]
        self.stop_reason = state["stop_reason"]


class _InterruptGuard:
    """While active (in the main thread only), Ctrl-C (SIGINT) sets ``requested`` instead
    of raising; the loop checks it after every step. A second Ctrl-C raises
    KeyboardInterrupt at once. The previous handler is put back on exit. ``out`` (None:
    silent, as on the ranks of a data-parallel run other than rank 0) gets the notice."""

    def __init__(self, out):
        self.out = out
        self.requested = False
        self._installed = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except (ValueError, OSError):  # e.g. an embedded interpreter without signals
                self._installed = False
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.out is not None:
            print(
                "\nfit: interrupted: finishing the current step (Ctrl-C again to abort at once)",
                file=self.out,
                flush=True,
            )

    def __exit__(self, *exc):
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
        return False


class TrainingLoop:
    """Where one ``fit`` stands: what its callbacks read (as ``callback.loop``) and steer.

    Settings: ``x``, ``t`` (the training data), ``validation`` ((x, t) or None),
    ``epochs``, ``batch_size``, ``steps`` (batches per epoch), ``n_samples``, ``shuffle``,
    ``augment``, ``include_penalty``, ``verbose``, ``out`` (the stream for messages),
    ``callbacks`` (all, in run order) and ``history``; ``parallel`` (the
    :class:`~fastnn.data_parallel.DataParallel` of a run on ``ranks`` > 1 MPI ranks, else
    None: then ``batch_size`` is the global batch and ``next_batch`` gives this rank's shard).

    Position: ``epoch`` (0-based) and ``batch`` (within the epoch) name the next batch
    to run; ``global_step`` counts the optimizer steps of the run (a resumed run
    continues the count); ``order`` is the epoch's permutation of the samples and
    ``rng`` the generator that draws it and feeds ``augment``.

    Outcome: ``stop_training`` (set by :meth:`stop` or a failure), ``error`` (the
    :class:`~fastnn.errors.NonFiniteError` that stopped training), ``interrupted``,
    ``interrupt_requested`` (Ctrl-C was pressed; read after each step) and
    ``resume_hint`` (how to continue an interrupted run, set by ModelCheckpoint);
    ``report_interrupts`` (default True: print where Ctrl-C stopped training and how to go
    on; a caller that says so itself, as the ``fastnn`` command does, sets it False from a
    callback).
    """

    def __init__(
        self,
        model,
        x,
        t,
        validation,
        epochs,
        batch_size,
        shuffle,
        seed,
        augment,
        include_penalty,
        verbose,
        out,
        parallel: DataParallel | None = None,
    ):
        self.model, self.x, self.t, self.validation = model, x, t, validation
        self.parallel = parallel
        self.ranks = 1 if parallel is None else parallel.size
        self.epochs, self.batch_size, self.shuffle = epochs, batch_size, bool(shuffle)
        self.augment, self.include_penalty = augment, include_penalty
        self.verbose, self.out = verbose, out
        self.n_samples = len(x)
        self.steps = (
            -(-self.n_samples // batch_size)
            if parallel is None
            else parallel.steps(self.n_samples, batch_size)
        )
        self.rng = np.random.default_rng(seed if seed is not None else model.seed)
        self.history = History()
        if validation is not None:
            self.history["val_loss"], self.history["val_accuracy"] = [], []
        self.callbacks: list[Callback] = []
        self.epoch = self.batch = self.global_step = 0
        self.order: np.ndarray | None = None
        self.total_loss, self.correct, self.elapsed = 0.0, 0, 0.0
        self._started = time.perf_counter()
        self.stop_training, self.error = False, None
        self.interrupted = self.interrupt_requested = False
        self.resume_hint: str | None = None
        self.report_interrupts = True

    #: The metrics every epoch records on the training data; validation adds ``val_`` twins.
    TRAINING_METRICS = ("loss", "accuracy")

    @property
    def metric_names(self) -> tuple:
        """The names of the metrics fit can record (what ``monitor=`` may name): the training
        metrics and their ``val_`` twins, which need validation data."""
        return self.TRAINING_METRICS + tuple("val_" + name for name in self.TRAINING_METRICS)

    # ------------------------------------------------------------ the steps

    def begin_epoch(self) -> None:
        """Draw the epoch's order of the samples and zero its running totals."""
        self.order = self.rng.permutation(self.n_samples) if self.shuffle else np.arange(self.n_samples)
        self.total_loss, self.correct, self.elapsed = 0.0, 0, 0.0

    def start_clock(self) -> None:
        """Time the epoch from now, counting what a resumed epoch had already taken."""
        self._started = time.perf_counter() - self.elapsed

    def next_batch(self):
        """(x, t) of batch ``batch`` of the epoch, augmented when fit was given ``augment``.

        In a data-parallel run, this rank's shard of the global batch (whose size is then
        ``batch_samples``); the global batch is augmented before it is cut, so the shared
        generator advances alike on every rank and the samples equal one process's.
        """
        idx = self.order[self.batch * self.batch_size : (self.batch + 1) * self.batch_size]
        self.batch_samples = len(idx)
        if self.parallel is not None and self.augment is None:
            idx = self.parallel.shard(idx)
        xb, tb = self.x[idx], self.t[idx]
        if self.augment is not None:
            xb = self.augment(xb, self.rng)
            if self.parallel is not None:
                xb, tb = self.parallel.shard(xb), self.parallel.shard(tb)
        return xb, tb

    def record(self, loss: float, y: np.ndarray, t: np.ndarray) -> None:
        """Count a finished step: its loss and correct predictions, and the position."""
        self.record_counts(loss, self.model.loss_fn.count_correct(y, t), len(t))

    def record_counts(self, loss: float, correct: int, samples: int) -> None:
        """Count a finished step from its mean ``loss`` and ``correct`` predictions over
        ``samples`` (a data-parallel step's totals over the global batch)."""
        self.total_loss += loss * samples
        self.correct += correct
        self.batch += 1
        self.global_step += 1

    def end_epoch(self, optimizer) -> dict:
        """The epoch's metrics (train, then validation), recorded in the history; moves
        the position to the next epoch's first batch."""
        seen = min(self.batch * self.batch_size, self.n_samples)
        metrics = {"loss": self.total_loss / seen, "accuracy": self.correct / seen}
        if self.include_penalty:
            metrics["loss"] += optimizer.penalty(self.model.flat_params)
        if self.validation is not None:
            batch_size = max(self.batch_size, 256)
            if self.parallel is None:
                val = self.model.evaluate(*self.validation, batch_size=batch_size)
            else:
                val = self.parallel.evaluate(self.model, *self.validation, batch_size=batch_size)
            metrics.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
        for key, value in metrics.items():
            self.history[key].append(value)
        self.history["lr"].append(optimizer.lr)
        self.history["time"].append(time.perf_counter() - self._started)
        self.epoch, self.batch = self.epoch + 1, 0
        return metrics

    # ------------------------------------------------------------ stopping

    def stop(self, reason: str) -> None:
        """End training after the current batch or epoch, saying why in the history."""
        self.stop_training = True
        self.history.stop_reason = reason
        if self.verbose:
            print(reason, file=self.out, flush=True)

    def fail(self, error: NonFiniteError) -> None:
        """End training now: the step of batch ``batch`` raised ``error``."""
        self.stop_training, self.error = True, error

    def report_interrupt(self) -> None:
        """Record where Ctrl-C stopped training in the history, and say so and how to go on
        (unless ``report_interrupts`` is False)."""
        self.history.interrupted = True
        where = f"epoch {self.epoch + 1}/{self.epochs}, step {self.batch}/{self.steps}"
        self.history.interrupted_at = where
        if self.resume_hint is not None:
            self.history.stop_reason = (
                f"interrupted at {where}; checkpoint written to {self.history.checkpoint}"
            )
            hint = self.resume_hint
        else:
            self.history.stop_reason = f"interrupted at {where}; the model keeps the weights of its last step"
            hint = "to be able to resume, pass checkpoint=DIR to fit"
        if self.report_interrupts:
            print(f"fit: {self.history.stop_reason}; {hint}", file=self.out, flush=True)

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """The position, the epoch's running totals and the generator's state (JSON data).

        The in-epoch position is stored as ``step`` (checkpoint format 1).
        """
        elapsed = time.perf_counter() - self._started if self.batch else 0.0
        return {
            "epoch": self.epoch,
            "step": self.batch,
            "global_step": self.global_step,
            "total_loss": self.total_loss,
            "correct": self.correct,
            "elapsed": elapsed,
            "stopped": self.stop_training,
            "rng": rng_state(self.rng),
            "ranks": self.ranks,
        }

    def load_state_dict(self, state: dict, order) -> None:
        """Restore the loop's position (epoch, step), its RNG and running totals from a
        checkpoint; ``order`` is the epoch's sample order."""
        set_rng_state(self.rng, state["rng"], "fit(resume)")
        self.epoch, self.batch = int(state["epoch"]), int(state["step"])
        self.global_step = int(state["global_step"])
        self.total_loss, self.correct = float(state["total_loss"]), int(state["correct"])
        self.elapsed, self.stop_training = float(state["elapsed"]), bool(state["stopped"])
        self.order = None if order is None else np.array(order, dtype=np.int64)
        ranks = state.get("ranks", 1)
        if ranks != self.ranks and (self.parallel is None or self.parallel.comm.is_root):
            warnings.warn(
                f"fit(resume): the checkpoint was written by a run on {ranks} rank(s), this one runs on "
                f"{self.ranks}: training continues with the same global batch cut into {self.ranks} "
                f"shard(s), so the weights may differ from an uninterrupted {ranks}-rank run in the last "
                f"bits (resume on {ranks} rank(s) for an exact continuation)",
                RuntimeWarning,
                stacklevel=6,
            )


def fit(
    model,
    x,
    t,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer=None,
    validation_data=None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    patience: int | None = None,
    monitor: str | None = None,
    min_delta: float = 0.0,
    restore_best_weights: bool = True,
    verbose: int = 1,
    seed: int | None = None,
    callbacks=(),
    augment=None,
    include_penalty: bool = False,
    file=None,
    clip_norm: float | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = False,
    comm=None,
) -> History:
    """Train ``model`` on (x, t) with mini-batches; returns a :class:`History`.

    Args:
        x: inputs (N, ...), float. t: class indices (N,) or targets (N, C).
        epochs, batch_size: passes over the data, samples per step (the last batch may be smaller).
        optimizer: an Optimizer or a name (default ``Adam()``; on resume, the saved one).
        validation_data: (x_val, t_val) scored after every epoch; or
        validation_split: the fraction of (x, t), taken from the end, held out for that.
        shuffle: draw a new permutation of the batches every epoch.
        patience, monitor, min_delta, restore_best_weights: build an
            :class:`~fastnn.callbacks.EarlyStopping` (monitor default: "val_loss" with
            validation data, else "loss").
        verbose, file: build a :class:`~fastnn.callbacks.ProgressLogger` (0 silent, 1 a bar
            and a line per epoch, the bar only on a terminal, 2 a line per epoch) writing to
            ``file`` (default stderr).
        seed: seeds the shuffling (default: the model's seed).
        callbacks: :class:`~fastnn.callbacks.Callback` objects (schedules, loggers, ...).
        augment: ``augment(x_batch, rng) -> x_batch`` for every training batch; ``rng`` is
            fit's seeded generator, whose state checkpoints keep.
        include_penalty: add the optimizer's L2/L1 penalty to the reported "loss".
        clip_norm: scale each step's gradient to a global L2 norm of at most this
            (``g <- g * min(1, clip_norm / (||g|| + 1e-6))``, as PyTorch's ``clip_grad_norm_``).
        checkpoint, checkpoint_every, keep, resume: build a
            :class:`~fastnn.callbacks.ModelCheckpoint` on the folder ``checkpoint``
            (every ``checkpoint_every`` steps, or every epoch; resume continues bit for bit).
        comm: the communicator of an MPI job (``fastnn.distributed.init()``): with K > 1
            ranks, train data-parallel. ``batch_size`` is then the global batch; each rank
            takes its shard of every batch of the one seeded permutation, rank 0's weights
            and optimizer state are broadcast first, every step sums the ranks' gradients
            with one allreduce (K ranks step like one process on the whole batch), metrics
            are reduced over the ranks, and only rank 0 prints and writes checkpoints. Every
            rank must call fit with the same model, data and arguments (checked at the start).
            See docs/distributed.md.

    Every argument, and every callback (``Callback.check``), is checked before the first
    step; an error lists the valid values.

    A NaN or Inf loss or gradient stops training with a RuntimeWarning and the last
    weights whose loss was finite (:class:`~fastnn.callbacks.NonFiniteGuard`). Ctrl-C
    (in the main thread) finishes the current step, writes a checkpoint if there is a
    folder, prints how to resume and returns the history with ``interrupted`` set; a
    second Ctrl-C raises KeyboardInterrupt at once.
    """
    loop, callback_list, optimizer = _prepare(**locals())  # fit's arguments, checked
    parallel = loop.parallel
    callback_list.on_train_begin(model, optimizer)
    if parallel is not None:
        parallel.check_same_run(model, loop, optimizer)
        parallel.broadcast_state(model, optimizer)
        parallel.connect_batchnorms(model, parallel.comm)
    says = parallel is None or parallel.comm.is_root
    with _InterruptGuard(loop.out if says else None) as interrupt:
        while not loop.stop_training and loop.epoch < loop.epochs:
            epoch = loop.epoch
            if loop.batch == 0:
                callback_list.on_epoch_begin(epoch, model, optimizer)
                loop.begin_epoch()
            loop.start_clock()
            while loop.batch < loop.steps and not loop.stop_training:
                batch = loop.batch
                xb, tb = loop.next_batch()
                callback_list.on_train_batch_begin(batch, model, optimizer)
                try:
                    loss = _step(loop, model, xb, tb, optimizer, clip_norm, interrupt)
                except NonFiniteError as error:
                    loop.fail(error)
                    break
                callback_list.on_train_batch_end(batch, {"loss": loss}, model, optimizer)
                if loop.interrupt_requested and loop.batch < loop.steps:
                    loop.interrupted = True
                    break
            if loop.error is not None or loop.interrupted:
                break
            metrics = loop.end_epoch(optimizer)
            loop.interrupt_requested = (
                interrupt.requested if parallel is None else parallel.agree(interrupt.requested)
            )
            callback_list.on_epoch_end(epoch, metrics, model, optimizer)
            if loop.interrupt_requested and not loop.stop_training and loop.epoch < loop.epochs:
                loop.interrupted = True
                break
    if loop.interrupted:
        loop.report_interrupt()
    callback_list.on_train_end(model, optimizer)
    if parallel is not None:
        parallel.connect_batchnorms(model, None)
        parallel.barrier()  # rank 0's last checkpoint is written before any rank goes on
    return loop.history


def _step(loop, model, xb, tb, optimizer, clip_norm, interrupt) -> float:
    """One optimizer step on the batch (xb, tb), counted in the loop with whether Ctrl-C
    was pressed (``interrupt.requested``); returns the batch's mean loss. In a data-parallel
    run (xb, tb) is this rank's shard, and the loss, the count and Ctrl-C are every rank's."""
    parallel = loop.parallel
    if parallel is not None:
        n = loop.batch_samples
        loss, correct, loop.interrupt_requested = parallel.train_step(
            model, xb, tb, n, optimizer, clip_norm, interrupt.requested, loop.global_step
        )
        loop.record_counts(loss, correct, n)
        return loss
    if clip_norm is None:
        loss = model.train_step(xb, tb, optimizer)
    else:
        loss = model.train_step(xb, tb, optimizer, clip_norm=clip_norm)
    loop.record(loss, model.last_output, tb)
    loop.interrupt_requested = interrupt.requested
    return loss


def _prepare(
    *,
    model,
    x,
    t,
    epochs,
    batch_size,
    optimizer,
    validation_data,
    validation_split,
    shuffle,
    patience,
    monitor,
    min_delta,
    restore_best_weights,
    verbose,
    seed,
    callbacks,
    augment,
    file,
    clip_norm,
    checkpoint,
    checkpoint_every,
    keep,
    resume,
    include_penalty,
    comm,
):
    """fit's arguments checked: (the loop, its callbacks in run order, the optimizer).

    Everything is checked here, before the first step: the plain arguments
    (:func:`fastnn.fit_checks.check_fit_arguments`), the data, and each callback against
    the loop (``Callback.check``).
    """
    checked = check_fit_arguments(
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        validation_split=validation_split,
        shuffle=shuffle,
        patience=patience,
        monitor=monitor,
        min_delta=min_delta,
        restore_best_weights=restore_best_weights,
        verbose=verbose,
        seed=seed,
        callbacks=callbacks,
        augment=augment,
        include_penalty=include_penalty,
        file=file,
        clip_norm=clip_norm,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        keep=keep,
        resume=resume,
    )
    epochs, batch_size, keep = checked["epochs"], checked["batch_size"], checked["keep"]
    checkpoint_every, shuffle, verbose = checked["checkpoint_every"], checked["shuffle"], checked["verbose"]
    callbacks = checked["callbacks"]
    x = model.prepare_input(x, "fit")
    t = model.prepare_targets(t, "fit")
    if len(x) != len(t) or len(x) == 0:
        raise ValueError(f"fit: x has {len(x)} samples and t has {len(t)}; expected the same, non-zero count")
    x, t, validation = _split_validation(x, t, validation_data, validation_split, model)
    out = file if file is not None else sys.stderr
    parallel = _data_parallel(comm, seed if seed is not None else model.seed, batch_size)
    if parallel is not None and not parallel.comm.is_root:
        verbose = 0  # rank 0 alone shows progress
    loop = TrainingLoop(
        model,
        x,
        t,
        validation,
        epochs,
        batch_size,
        shuffle,
        seed,
        augment,
        include_penalty,
        verbose,
        out,
        parallel,
    )
    stopper = None if patience is None else EarlyStopping(patience, monitor, min_delta, restore_best_weights)
    checkpointer = None if checkpoint is None else ModelCheckpoint(checkpoint, checkpoint_every, keep, resume)
    loop.callbacks = _in_run_order(callbacks, ProgressLogger(verbose, out), stopper, checkpointer)
    callback_list = CallbackList(loop.callbacks, loop)
    callback_list.check()
    checkpointer = next((c for c in loop.callbacks if isinstance(c, ModelCheckpoint)), None)
    saved = checkpointer.latest() if checkpointer is not None else None
    if saved is not None and optimizer is None:
        optimizer = saved.build_optimizer()
    else:
        optimizer = get_optimizer(optimizer if optimizer is not None else "adam")
    return loop, callback_list, optimizer


def _data_parallel(comm, seed, batch_size: int) -> DataParallel | None:
    """fit's DataParallel for ``comm`` (checked), or None for no communicator or a job of one."""
    if comm is None:
        return None
    parallel = DataParallel(comm, seed)
    if parallel.size == 1:
        return None
    parallel.check_batch_size(batch_size)
    return parallel


def _in_run_order(callbacks, progress, stopper, checkpointer) -> list:
    """fit's callbacks in the order they run: progress, NaN guard, the caller's, early
    stopping, checkpoints. A built-in the caller passes replaces fit's own; one given
    both ways (``patience=`` and an EarlyStopping, say) is an error."""
    callbacks = list(callbacks)

    def take(cls, built, shorthand):
        given = [c for c in callbacks if isinstance(c, cls)]
        if len(given) > 1 or (given and built is not None):
            what = f"{shorthand} or " if shorthand else ""
            raise ValueError(f"fit: give one {cls.__name__} ({what}in callbacks), not two")
        for c in given:
            callbacks.remove(c)
        return given[0] if given else built

    progress = take(ProgressLogger, None, "") or progress
    guard = take(NonFiniteGuard, None, "") or NonFiniteGuard()
    stopper = take(EarlyStopping, stopper, "patience=")
    checkpointer = take(ModelCheckpoint, checkpointer, "checkpoint=")
    return [c for c in (progress, guard, *callbacks, stopper, checkpointer) if c is not None]


def _split_validation(x, t, validation_data, validation_split, model):
    if validation_data is not None:
        if validation_split:
            raise ValueError("fit: give validation_data or validation_split, not both")
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("fit: validation_data must be a pair (x_val, t_val)")
        xv = model.prepare_input(validation_data[0], "fit(validation_data)")
        tv = model.prepare_targets(validation_data[1], "fit(validation_data)")
        if len(xv) != len(tv):
            raise ValueError(f"fit: validation x has {len(xv)} samples but t has {len(tv)}")
        return x, t, (xv, tv)
    if validation_split == 0:
        return x, t, None
    n_val = int(round(len(x) * validation_split))
    if n_val < 1 or n_val >= len(x):
        raise ValueError(
            f"fit: validation_split={validation_split} leaves {n_val} of {len(x)} samples "
            "for validation; need at least one in each part"
        )
    # The last samples, before any shuffling, as Keras does.
    return x[:-n_val], t[:-n_val], (x[-n_val:], t[-n_val:])
