"""The training loop behind ``Sequential.fit``: mini-batches, validation, early stopping,
checkpoints, exact resume and clean Ctrl-C.

Nothing already trained is lost:

* a NaN/Inf loss or gradient stops training with a message and leaves the model
  holding the last weights whose loss was finite;
* with ``checkpoint=DIR`` the whole training state is written atomically every
  ``checkpoint_every`` steps (default: every epoch), and ``resume=True`` continues
  from the newest checkpoint, giving bit-for-bit the weights of an uninterrupted run;
* Ctrl-C finishes the current step, writes a checkpoint and returns cleanly.
"""

from __future__ import annotations

import numbers
import signal
import sys
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

from . import _config
from ._config import get_num_threads
from ._progress import ProgressBar
from .checkpoint import (list_checkpoints, load_latest, remove_stale_temporaries, rng_state,
                         save_checkpoint, set_rng_state)
from .errors import NonFiniteError
from .model import _check_batch_size, count_correct
from .optim import get_optimizer


class History(dict):
    """Per-epoch metrics: ``history["loss"]``, ``["accuracy"]``, ``["val_loss"]``,
    ``["val_accuracy"]``, ``["lr"]``, ``["time"]`` (lists, one entry per finished epoch).

    ``best_epoch`` (0-based) and ``stop_reason`` (None if all epochs ran) say how it ended;
    ``interrupted`` is True when Ctrl-C stopped it; ``checkpoint`` is the path of the
    last checkpoint written (None without ``checkpoint=``).
    """

    def __init__(self):
        super().__init__(loss=[], accuracy=[], lr=[], time=[])
        self.best_epoch: int | None = None
        self.stop_reason: str | None = None
        self.interrupted: bool = False
        self.checkpoint: str | None = None

    @property
    def epochs(self) -> int:
        return len(self["loss"])

    def state_dict(self) -> dict:
        return {"metrics": {k: list(v) for k, v in self.items()}, "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason}

    def load_state_dict(self, state: dict) -> None:
        self.clear()
        self.update({k: list(v) for k, v in state["metrics"].items()})
        self.best_epoch = state["best_epoch"]
        self.stop_reason = state["stop_reason"]


class _WeightsSnapshot:
    """A copy of the model's parameters and buffers and the optimizer's state, refreshed in place."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = model.flat_params.copy()
        self.buffers = [array.copy() for array in self._live_buffers()]
        self.state: dict[str, np.ndarray] = {}
        self.iterations = optimizer.iterations

    def _live_buffers(self):
        """The buffers training changes (fixed ones, like a fitted ZCA matrix, need no copy)."""
        return [array for layer in self.model.layers if layer.buffers_change_in_training
                for array in layer.buffers.values()]

    def take(self) -> None:
        np.copyto(self.params, self.model.flat_params)
        for saved, live in zip(self.buffers, self._live_buffers()):
            np.copyto(saved, live)
        for name, array in self.optimizer.state.items():
            if name in self.state:
                np.copyto(self.state[name], array)
            else:
                self.state[name] = array.copy()
        self.iterations = self.optimizer.iterations

    def restore(self) -> None:
        np.copyto(self.model.flat_params, self.params)
        for saved, live in zip(self.buffers, self._live_buffers()):
            np.copyto(live, saved)
        for name, array in self.state.items():
            np.copyto(self.optimizer.state[name], array)
        self.optimizer.iterations = self.iterations


class _EarlyStopping:
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``."""

    def __init__(self, monitor: str, patience: int, min_delta: float):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.maximise = "accuracy" in monitor
        self.best = -np.inf if self.maximise else np.inf
        self.best_epoch = None
        self.wait = 0

    def improved(self, value: float) -> bool:
        if self.maximise:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record this epoch's value; return True if it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.patience

    def state_dict(self) -> dict:
        return {"monitor": self.monitor, "best": float(self.best), "best_epoch": self.best_epoch,
                "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = float(state["best"]), state["best_epoch"], int(state["wait"])


class _BestWeights:
    """Early stopping's copy of the best epoch's parameters and layer buffers."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] | None = None

    def take(self, model) -> None:
        self.arrays = {"params": model.flat_params.copy()}
        for index, layer in enumerate(model.layers):
            for name, array in layer.buffers.items():
                self.arrays[f"buffers/{index}/{name}"] = array.copy()

    def restore(self, model) -> None:
        if self.arrays is None:
            return
        np.copyto(model.flat_params, self.arrays["params"])
        for index, layer in enumerate(model.layers):
            for name, array in layer.buffers.items():
                key = f"buffers/{index}/{name}"
                if key in self.arrays:
                    np.copyto(array, self.arrays[key])


class _InterruptGuard:
    """While active (in the main thread only), Ctrl-C (SIGINT) sets ``requested`` instead
    of raising; the loop checks it after every step. A second Ctrl-C raises
    KeyboardInterrupt at once. The previous handler is put back on exit."""

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
        print("\nfit: interrupted: finishing the current step (Ctrl-C again to abort at once)",
              file=self.out, flush=True)

    def __exit__(self, *exc):
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
        return False


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
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    if validation_split == 0:
        return x, t, None
    n_val = int(round(len(x) * validation_split))
    if n_val < 1 or n_val >= len(x):
        raise ValueError(
            f"fit: validation_split={validation_split} leaves {n_val} of {len(x)} samples "
            "for validation; need at least one in each part")
    # The last samples, before any shuffling, as Keras does.
    return x[:-n_val], t[:-n_val], (x[-n_val:], t[-n_val:])


def _format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _check_count(name: str, value, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        kind = "non-negative" if minimum == 0 else "positive"
        raise ValueError(f"fit: {name} must be a {kind} integer, got {value!r}")
    return int(value)


def _fingerprint(x: np.ndarray, t: np.ndarray) -> str:
    """CRC-32 of the training data's dtypes, shapes and bytes: a resumed run must see the same data."""
    crc = 0
    for array in (x, t):
        array = np.ascontiguousarray(array)
        crc = zlib.crc32(f"{array.dtype.str}{array.shape}".encode(), crc)
        crc = zlib.crc32(array.reshape(-1).view(np.uint8), crc)
    return f"crc32:{crc:08x}"


class _Loop:
    """Where training stands: the next step to run and the running totals of its epoch.

    ``epoch`` (0-based) and ``step`` (within the epoch) name the next step; ``order`` is
    the epoch's permutation of the samples, ``rng`` the generator that draws it (and
    feeds ``augment``).
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.epoch = 0
        self.step = 0
        self.global_step = 0
        self.order: np.ndarray | None = None
        self.total_loss = 0.0
        self.correct = 0
        self.elapsed = 0.0
        self.stopped = False

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "global_step": self.global_step,
                "total_loss": self.total_loss, "correct": self.correct,
                "elapsed": self.elapsed, "stopped": self.stopped, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict, order) -> None:
        set_rng_state(self.rng, state["rng"], "fit(resume)")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.global_step = int(state["global_step"])
        self.total_loss, self.correct = float(state["total_loss"]), int(state["correct"])
        self.elapsed, self.stopped = float(state["elapsed"]), bool(state["stopped"])
        self.order = None if order is None else np.array(order, dtype=np.int64)


def fit(model, x, t, epochs: int = 1, batch_size: int = 32, optimizer=None,
        validation_data=None, validation_split: float = 0.0, shuffle: bool = True,
        patience: int | None = None, monitor: str | None = None, min_delta: float = 0.0,
        restore_best_weights: bool = True, verbose: int = 1, seed: int | None = None,
        callbacks=(), augment=None, include_penalty: bool = False, file=None,
        clip_norm: float | None = None, checkpoint=None, checkpoint_every: int | None = None,
        keep: int = 3, resume: bool = False) -> History:
    """Train ``model`` on (x, t) with mini-batches; returns a :class:`History`.

    Args:
        x: inputs (N, ...), float. t: class indices (N,) or targets (N, C).
        epochs, batch_size: passes over the data, samples per step (the last batch may be smaller).
        optimizer: an Optimizer or a name (default ``Adam()``; on resume, the saved one).
        validation_data: (x_val, t_val) scored after every epoch; or
        validation_split: the fraction of (x, t), taken from the end, held out for that.
        shuffle: draw a new permutation of the batches every epoch.
        patience: early stopping: stop after this many epochs without improvement of
            ``monitor`` (default "val_loss" with validation data, else "loss") by more
            than ``min_delta``; with ``restore_best_weights`` the model ends with the
            weights of its best epoch.
        verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        seed: seeds the shuffling (default: the model's seed).
        callbacks: :class:`fastnn.callbacks.Callback` objects (schedules and the like).
            A callback with ``state_dict()``/``load_state_dict(state)`` (JSON data) has
            its state saved in checkpoints and restored on resume.
        augment: a callable ``augment(x_batch, rng) -> x_batch`` applied to every training
            batch (fresh randomness every epoch; ``rng`` is fit's seeded generator, whose
            state checkpoints keep).
        include_penalty: add the optimizer's L2/L1 penalty to the reported "loss".
        clip_norm: scale each step's gradient to a global L2 norm of at most this
            (``g <- g * min(1, clip_norm / (||g|| + 1e-6))``, as PyTorch's ``clip_grad_norm_``).
        checkpoint: a folder for checkpoints (:mod:`fastnn.checkpoint`); each one holds
            the model, the optimizer, the loop's counters, RNG states, history, early
            stopping and callback state. One is written every ``checkpoint_every``
            optimizer steps (mid-epoch too), or at the end of every epoch when that is
            None, and when training ends, stops or is interrupted. The newest ``keep``
            files are kept. Without ``resume`` the folder must hold no checkpoint yet.
        resume: continue from the newest checkpoint in ``checkpoint`` (or start afresh if
            there is none). Pass the same data, batch_size, shuffle, validation and
            callbacks; ``epochs`` may be larger than before. With the same thread count
            the final weights equal an uninterrupted run's bit for bit. Callbacks get
            ``on_train_begin`` again, but not ``on_epoch_begin`` for an epoch resumed in
            its middle (the optimizer's saved hyperparameters already reflect it).

    A NaN or Inf loss or gradient stops training with a RuntimeWarning; the model
    keeps the last weights whose loss was finite and ``history.stop_reason`` says why
    (no checkpoint is written then: the last periodic one is the state to go back to).

    Ctrl-C (in the main thread) finishes the current step, writes a checkpoint if
    ``checkpoint`` is set, prints how to resume and returns the history with
    ``interrupted`` set; the model keeps the weights of its last step. A second Ctrl-C
    aborts at once with KeyboardInterrupt.
    """
    epochs = _check_count("epochs", epochs, 0)
    batch_size = _check_batch_size("fit", batch_size)
    keep = _check_count("keep", keep, 1)
    if checkpoint_every is not None:
        checkpoint_every = _check_count("checkpoint_every", checkpoint_every, 1)
    if clip_norm is not None and not (isinstance(clip_norm, numbers.Real) and not isinstance(
            clip_norm, bool) and np.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"fit: clip_norm must be a positive finite number, got {clip_norm!r}")
    if checkpoint is None and (resume or checkpoint_every is not None):
        raise ValueError("fit: resume and checkpoint_every need checkpoint=DIR, the checkpoint folder")
    x = model.prepare_input(x, "fit")
    t = model.prepare_targets(t, "fit")
    if len(x) != len(t) or len(x) == 0:
        raise ValueError(f"fit: x has {len(x)} samples and t has {len(t)}; expected the same, non-zero count")
    x, t, validation = _split_validation(x, t, validation_data, validation_split, model)
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    if monitor.startswith("val_") and validation is None:
        raise ValueError(f"fit: monitor={monitor!r} needs validation_data or validation_split")
    stopper = None
    if patience is not None:
        if not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"fit: patience must be a positive integer, got {patience!r}")
        stopper = _EarlyStopping(monitor, int(patience), float(min_delta))
    out = file if file is not None else sys.stderr

    directory = None if checkpoint is None else Path(checkpoint)
    saved = None
    if directory is not None:
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"fit: checkpoint={str(directory)!r} is a file, not a folder")
        remove_stale_temporaries(directory)
        if resume:
            saved = load_latest(directory)
        elif list_checkpoints(directory):
            raise ValueError(
                f"fit: {directory} already holds checkpoints ({list_checkpoints(directory)[-1].name}); "
                "pass resume=True to continue that run, or give an empty folder")
    if saved is not None and optimizer is None:
        optimizer = saved.build_optimizer()
    else:
        optimizer = get_optimizer(optimizer if optimizer is not None else "adam")

    n = len(x)
    steps = -(-n // batch_size)
    settings = {"n_samples": n, "batch_size": batch_size, "shuffle": bool(shuffle),
                "data": _fingerprint(x, t) if directory is not None else None}
    loop = _Loop(np.random.default_rng(seed if seed is not None else model.seed))
    history = History()
    if validation is not None:
        history["val_loss"], history["val_accuracy"] = [], []
    best = _BestWeights()
    callbacks = list(callbacks)
    for callback in callbacks:
        callback.on_train_begin(model, optimizer)
    if saved is not None:
        _resume(saved, model, optimizer, loop, history, stopper, best, callbacks, settings)
        if verbose:
            where = (f"epoch {loop.epoch + 1}, step {loop.step}/{steps}" if loop.epoch < epochs
                     else f"the end of epoch {loop.epoch}")
            print(f"fit: resuming from {saved.path} at {where}", file=out, flush=True)
        history.checkpoint = str(saved.path)

    def write_checkpoint():
        state = {"fit": settings, "loop": loop.state_dict(), "history": history.state_dict(),
                 "early_stopping": stopper.state_dict() if stopper is not None else None,
                 "callbacks": [callback.state_dict() if hasattr(callback, "state_dict") else None
                               for callback in callbacks],
                 "backend": model.ops.name, "threads": get_num_threads()}
        extra = {"order": loop.order} if loop.order is not None else {}
        if best.arrays is not None:
            extra.update({f"best/{k}": v for k, v in best.arrays.items()})
        path = save_checkpoint(directory, model, optimizer, state=state, extra=extra,
                               step=loop.global_step, keep=keep)
        history.checkpoint = str(path)

    good = _WeightsSnapshot(model, optimizer)
    pending = _WeightsSnapshot(model, optimizer)
    failed = interrupted = False
    with _InterruptGuard(out) as guard:
        while not loop.stopped and loop.epoch < epochs:
            epoch = loop.epoch
            if loop.step == 0:
                for callback in callbacks:
                    callback.on_epoch_begin(epoch, model, optimizer)
                loop.order = loop.rng.permutation(n) if shuffle else np.arange(n)
                loop.total_loss, loop.correct, loop.elapsed = 0.0, 0, 0.0
            started = time.perf_counter() - loop.elapsed
            bar = ProgressBar(steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                              file=out, disable=verbose != 1)
            if loop.step:
                bar.update(loop.step)
            step = loop.step
            try:
                while step < steps:
                    idx = loop.order[step * batch_size:(step + 1) * batch_size]
                    xb, tb = x[idx], t[idx]
                    if augment is not None:
                        xb = augment(xb, loop.rng)
                    pending.take()
                    if clip_norm is None:
                        loss = model.train_step(xb, tb, optimizer)
                    else:
                        loss = model.train_step(xb, tb, optimizer, clip_norm=clip_norm)
                    good, pending = pending, good
                    loop.total_loss += loss * len(idx)
                    loop.correct += count_correct(model._last_output, tb)
                    step += 1
                    loop.step, loop.global_step = step, loop.global_step + 1
                    bar.update(1)
                    if step % 10 == 1 or step == steps:
                        bar.set_postfix(loss=loss)
                    if step < steps and (guard.requested or (
                            checkpoint_every and loop.global_step % checkpoint_every == 0)):
                        loop.elapsed = time.perf_counter() - started
                        if directory is not None:
                            write_checkpoint()
                        if guard.requested:
                            interrupted = True
                            break
            except NonFiniteError as error:
                bar.close()
                if np.isfinite(model.flat_params).all() and "gradient" in str(error):
                    pending.restore()
                else:
                    good.restore()
                history.stop_reason = (
                    f"training stopped at epoch {epoch + 1}, step {step + 1}: {error}; "
                    "the model keeps the last weights whose loss was finite")
                warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=3)
                failed = True
                break
            bar.close()
            if interrupted:
                break
            metrics = {"loss": loop.total_loss / n, "accuracy": loop.correct / n}
            if include_penalty:
                metrics["loss"] += optimizer.penalty(model.flat_params)
            if validation is not None:
                val = model.evaluate(*validation, batch_size=max(batch_size, 256))
                metrics.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            for key, value in metrics.items():
                history[key].append(value)
            history["lr"].append(optimizer.lr)
            history["time"].append(time.perf_counter() - started)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs}  {_format_metrics(metrics)}  "
                      f"({history['time'][-1]:.1f}s)", file=out, flush=True)
            stops = [callback for callback in callbacks
                     if callback.on_epoch_end(epoch, metrics, model, optimizer)]
            if stops:
                history.stop_reason = stops[0].stop_reason or f"stopped by {type(stops[0]).__name__}"
                if verbose:
                    print(history.stop_reason, file=out, flush=True)
                loop.stopped = True
            elif stopper is not None:
                if stopper.update(epoch, metrics[monitor]):
                    best.take(model)
                history.best_epoch = stopper.best_epoch
                if stopper.should_stop:
                    history.stop_reason = (
                        f"early stopping: {monitor} did not improve for {stopper.patience} epochs "
                        f"(best {stopper.best:.4f} at epoch {stopper.best_epoch + 1})")
                    if verbose:
                        print(history.stop_reason, file=out, flush=True)
                    loop.stopped = True
            loop.epoch, loop.step, loop.elapsed = epoch + 1, 0, 0.0
            if directory is not None and (
                    checkpoint_every is None or loop.global_step % checkpoint_every == 0
                    or loop.stopped or loop.epoch == epochs or guard.requested):
                write_checkpoint()
            if guard.requested and not loop.stopped and loop.epoch < epochs:
                interrupted = True
                break

    if interrupted:
        history.interrupted = True
        where = f"epoch {loop.epoch + 1}/{epochs}, step {loop.step}/{steps}"
        if directory is not None:
            history.stop_reason = (f"interrupted at {where}; checkpoint written to "
                                   f"{history.checkpoint}")
            hint = f"resume with fit(..., checkpoint={str(directory)!r}, resume=True)"
        else:
            history.stop_reason = f"interrupted at {where}; the model keeps the weights of its last step"
            hint = "no checkpoint was written: pass checkpoint=DIR to fit to be able to resume"
        print(f"fit: {history.stop_reason}; {hint}", file=out, flush=True)
    elif not failed and stopper is not None and restore_best_weights:
        best.restore(model)
    for callback in callbacks:
        callback.on_train_end(model, optimizer)
    return history


def _resume(saved, model, optimizer, loop, history, stopper, best, callbacks, settings) -> None:
    """Put the training state of checkpoint ``saved`` back, after checking it fits this call."""
    state = saved.state
    try:
        previous = state["fit"]
        for key in ("n_samples", "batch_size", "shuffle", "data"):
            if previous[key] != settings[key]:
                what = "training data" if key in ("n_samples", "data") else key
                raise ValueError(
                    f"fit: cannot resume from {saved.path}: it was made with different {what} "
                    f"({previous[key]!r}, now {settings[key]!r}); resume with the same x, t, "
                    "batch_size, shuffle and validation split")
        saved.restore(model, optimizer)
        loop.load_state_dict(state["loop"], saved.extra.get("order"))
        history.load_state_dict(state["history"])
        if stopper is not None and state["early_stopping"] is not None:
            stopper.load_state_dict(state["early_stopping"])
        best_arrays = {k[len("best/"):]: v for k, v in saved.extra.items() if k.startswith("best/")}
        best.arrays = best_arrays or None
        for callback, callback_state in zip(callbacks, state["callbacks"]):
            if callback_state is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(callback_state)
    except (KeyError, TypeError) as error:
        from .serialization import ModelFileError

        raise ModelFileError(f"{saved.path}: corrupt training state "
                             f"({type(error).__name__}: {error})") from None
    threads = state.get("threads")
    if (isinstance(threads, int) and threads != get_num_threads() and model.ops.name == "numba"
            and _config.FASTMATH and _config.PARALLEL):
        warnings.warn(
            f"fit: resuming with {get_num_threads()} kernel threads, but {saved.path} was written "
            f"with {threads}: with fast-math on, the weights may differ from an uninterrupted "
            f"run in the last bits (call fastnn.set_num_threads({threads}) for an exact resume)",
            RuntimeWarning, stacklevel=4)
    if loop.step and (loop.order is None or len(loop.order) != settings["n_samples"]):
        from .serialization import ModelFileError

        raise ModelFileError(f"{saved.path}: the epoch's sample order is missing or malformed")
