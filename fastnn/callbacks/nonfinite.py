"""NonFiniteGuard: a NaN or Inf stops training and the model keeps its last good weights."""

from __future__ import annotations

import warnings

import numpy as np

from .base import Callback

__all__ = ["NonFiniteGuard"]


class _Snapshot:
    """A copy of the model's parameters, the buffers training changes and the optimizer's
    state, refreshed in place."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer
        self.params = model.flat_params.copy()
        self.buffers = [array.copy() for array in self._live_buffers()]
        self.state: dict[str, np.ndarray] = {}
        self.iterations = optimizer.iterations

    def _live_buffers(self):
        """The buffers training changes (fixed ones, like a fitted ZCA matrix, need no copy)."""
        return [
            array
            for layer in self.model.layers
            if layer.buffers_change_in_training
            for array in layer.buffers.values()
        ]

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


class NonFiniteGuard(Callback):
    """Keeps the last weights whose loss was finite when a NaN or Inf stops training.

    ``model.train_step`` raises :class:`~fastnn.errors.NonFiniteError`, before it
    changes any weight, when the loss or a gradient is NaN or Inf; ``fit`` then stops
    after that batch. This guard keeps two snapshots of the parameters, the buffers
    training changes and the optimizer state (taken before each batch, reused in place)
    and, when training stopped that way, puts back:

    * the state before the previous step if the loss was not finite: that step made
      the weights whose loss is NaN or Inf;
    * the state before this step if only a gradient was: the weights are the last
      good ones, but the forward pass may have moved BatchNorm's running statistics.

    It sets ``history.stop_reason`` and issues a RuntimeWarning saying where it stopped.
    ``fit`` always runs one (first in its list after the progress display).
    """

    def __init__(self):
        self.good: _Snapshot | None = None
        self.pending: _Snapshot | None = None

    def on_train_begin(self, model, optimizer):
        self.good = self.pending = None

    def on_train_batch_begin(self, batch, model, optimizer):
        if self.good is None:  # the weights training starts from (or resumes from)
            self.good, self.pending = _Snapshot(model, optimizer), _Snapshot(model, optimizer)
        self.pending.take()

    def on_train_batch_end(self, batch, logs, model, optimizer):
        self.good, self.pending = self.pending, self.good

    def on_train_end(self, model, optimizer):
        loop = self.loop
        error = loop.error
        if error is None:
            return
        if np.isfinite(model.flat_params).all() and "gradient" in str(error):
            self.pending.restore()
        else:
            self.good.restore()
        loop.history.stop_reason = (
            f"training stopped at epoch {loop.epoch + 1}, step {loop.batch + 1}: {error}; "
            "the model keeps the last weights whose loss was finite"
        )
        # 5: past this hook, CallbackList.on_train_end, training.fit and Sequential.fit
        warnings.warn(loop.history.stop_reason, RuntimeWarning, stacklevel=5)
