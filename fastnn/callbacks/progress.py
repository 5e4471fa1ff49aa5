"""ProgressLogger: what ``fit`` shows while it trains."""

from __future__ import annotations

import sys

from .._progress import ProgressBar
from .base import Callback

__all__ = ["ProgressLogger"]


class ProgressLogger(Callback):
    """A progress bar per epoch and one line of metrics after it.

    Args:
        verbose: 0 shows nothing, 1 a bar and the line, 2 only the line.
        file: the stream to write to (default: ``sys.stderr``).

    The line reads ``epoch 3/10  loss 0.1271  accuracy 0.9778  ...  (2.4s)``.
    ``fit(verbose=..., file=...)`` builds one.
    """

    def __init__(self, verbose: int = 1, file=None):
        self.verbose = verbose
        self.file = file
        self.bar: ProgressBar | None = None

    def _out(self):
        return self.file if self.file is not None else sys.stderr

    def on_train_batch_begin(self, batch, model, optimizer):
        if self.bar is None and self.verbose == 1:
            loop = self.loop
            self.bar = ProgressBar(
                loop.steps, desc=f"epoch {loop.epoch + 1}/{loop.epochs}", unit="batch", file=self._out()
            )
            if batch:  # an epoch resumed in its middle
                self.bar.update(batch)

    def on_train_batch_end(self, batch, logs, model, optimizer):
        if self.bar is None:
            return
        done, steps = batch + 1, self.loop.steps
        self.bar.update(1)
        if done % 10 == 1 or done == steps:
            self.bar.set_postfix(loss=logs["loss"])
        if done == steps or self.loop.interrupt_requested:
            self._close_bar()

    def on_epoch_end(self, epoch, metrics, model, optimizer):
        self._close_bar()
        if self.verbose:
            text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            seconds = self.loop.history["time"][-1]
            print(
                f"epoch {epoch + 1}/{self.loop.epochs}  {text}  ({seconds:.1f}s)",
                file=self._out(),
                flush=True,
            )

    def on_train_end(self, model, optimizer):
        self._close_bar()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
