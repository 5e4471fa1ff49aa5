"""The training loop behind ``Sequential.fit``: mini-batches, validation, early stopping.

Nothing already trained is lost: a NaN/Inf loss or gradient stops training with
a message and leaves the model holding the last weights whose loss was finite.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from ._progress import ProgressBar
from .errors import NonFiniteError
from .model import _check_batch_size, count_correct
from .optim import get_optimizer


class History(dict):
    """Per-epoch metrics: ``history["loss"]``, ``["accuracy"]``, ``["val_loss"]``,
    ``["val_accuracy"]``, ``["lr"]``, ``["time"]`` (lists, one entry per finished epoch).

    ``best_epoch`` (0-based) and ``stop_reason`` (None if all epochs ran) say how it ended.
    """

    def __init__(self):
        super().__init__(loss=[], accuracy=[], lr=[], time=[])
        self.best_epoch: int | None = None
        self.stop_reason: str | None = None

    @property
    def epochs(self) -> int:
        return len(self["loss"])


class _WeightsSnapshot:
    """A copy of the model's parameters and the optimizer's state, refreshed in place."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = model.flat_params.copy()
        self.state: dict[str, np.ndarray] = {}
        self.iterations = optimizer.iterations

    def take(self) -> None:
        np.copyto(self.params, self.model.flat_params)
        for name, array in self.optimizer.state.items():
            if name in self.state:
                np.copyto(self.state[name], array)
            else:
                self.state[name] = array.copy()
        self.iterations = self.optimizer.iterations

    def restore(self) -> None:
        np.copyto(self.model.flat_params, self.params)
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


def fit(model, x, t, epochs: int = 1, batch_size: int = 32, optimizer=None,
        validation_data=None, validation_split: float = 0.0, shuffle: bool = True,
        patience: int | None = None, monitor: str | None = None, min_delta: float = 0.0,
        restore_best_weights: bool = True, verbose: int = 1, seed: int | None = None,
        callbacks=(), augment=None, include_penalty: bool = False, file=None) -> History:
    """Train ``model`` on (x, t) with mini-batches; returns a :class:`History`.

    Args:
        x: inputs (N, ...), float. t: class indices (N,) or targets (N, C).
        epochs, batch_size: passes over the data, samples per step (the last batch may be smaller).
        optimizer: an Optimizer or a name (default ``Adam()``).
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
        augment: a callable ``augment(x_batch, rng) -> x_batch`` applied to every training
            batch (fresh randomness every epoch; ``rng`` is fit's seeded generator).
        include_penalty: add the optimizer's L2/L1 penalty to the reported "loss".

    A NaN or Inf loss or gradient stops training with a RuntimeWarning; the model
    keeps the last weights whose loss was finite and ``history.stop_reason`` says why.
    """
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
    batch_size = _check_batch_size("fit", batch_size)
    x = model.prepare_input(x, "fit")
    t = model.prepare_targets(t, "fit")
    if len(x) != len(t) or len(x) == 0:
        raise ValueError(f"fit: x has {len(x)} samples and t has {len(t)}; expected the same, non-zero count")
    x, t, validation = _split_validation(x, t, validation_data, validation_split, model)
    optimizer = get_optimizer(optimizer if optimizer is not None else "adam")
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    if monitor.startswith("val_") and validation is None:
        raise ValueError(f"fit: monitor={monitor!r} needs validation_data or validation_split")
    stopper = None
    if patience is not None:
        if not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"fit: patience must be a positive integer, got {patience!r}")
        stopper = _EarlyStopping(monitor, int(patience), float(min_delta))
    best_params = None
    out = file if file is not None else sys.stderr

    rng = np.random.default_rng(seed if seed is not None else model.seed)
    history = History()
    if validation is not None:
        history["val_loss"], history["val_accuracy"] = [], []
    good = _WeightsSnapshot(model, optimizer)
    pending = _WeightsSnapshot(model, optimizer)
    n = len(x)
    steps = -(-n // batch_size)
    callbacks = list(callbacks)
    for callback in callbacks:
        callback.on_train_begin(model, optimizer)

    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch, model, optimizer)
        started = time.perf_counter()
        order = rng.permutation(n) if shuffle else np.arange(n)
        bar = ProgressBar(steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                          file=out, disable=verbose != 1)
        total_loss, correct = 0.0, 0
        try:
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, tb = x[idx], t[idx]
                if augment is not None:
                    xb = augment(xb, rng)
                pending.take()
                loss = model.train_step(xb, tb, optimizer)
                good, pending = pending, good
                total_loss += loss * len(idx)
                correct += count_correct(model._last_output, tb)
                bar.update(1)
                if step % 10 == 0 or step == steps - 1:
                    bar.set_postfix(loss=loss)
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
            break
        bar.close()
        metrics = {"loss": total_loss / n, "accuracy": correct / n}
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
            break
        if stopper is not None:
            if stopper.update(epoch, metrics[monitor]):
                best_params = model.flat_params.copy()
            history.best_epoch = stopper.best_epoch
            if stopper.should_stop:
                history.stop_reason = (
                    f"early stopping: {monitor} did not improve for {stopper.patience} epochs "
                    f"(best {stopper.best:.4f} at epoch {stopper.best_epoch + 1})")
                if verbose:
                    print(history.stop_reason, file=out, flush=True)
                break
    if stopper is not None and restore_best_weights and best_params is not None:
        np.copyto(model.flat_params, best_params)
    for callback in callbacks:
        callback.on_train_end(model, optimizer)
    return history
