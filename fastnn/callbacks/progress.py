"""ProgressLogger: what ``fit`` shows while it trains."""

from __future__ import annotations

import numbers
import sys

from .._kernel_cache import compile_count
from .._progress import ProgressBar, is_terminal
from .base import Callback

__all__ = ["ProgressLogger"]


class ProgressLogger(Callback):
    r"""A progress bar per epoch and one line of metrics after it.

    Args:
        verbose: 0 shows nothing, 1 a bar and the line, 2 only the line.
        file: the stream to write to (default: ``sys.stderr``).

    The line reads ``epoch 3/10  loss 0.1271  accuracy 0.9778  ...  (2.4s)``, the epoch's
    wall time. The bar is drawn only on a terminal: on a stream that is not one (a file,
    a pipe, ``io.StringIO``: ``isatty()`` false or missing) ``verbose=1`` writes the
    epoch lines alone, as 2 does, and no ``\r`` frames.

    The bar's rate and time left count steady steps only: the first step of a run and any
    step during which kernels were compiled (:func:`fastnn._kernel_cache.compile_count`)
    are left out, and until a later step has run the time left reads ``?``. The elapsed
    time is wall time. ``fit(verbose=..., file=...)`` builds one.
    """

    def __init__(self, verbose: int = 1, file=None):
        if verbose not in (0, 1, 2) or not isinstance(verbose, numbers.Integral):
            raise ValueError(
                f"ProgressLogger: verbose must be 0 (silent), 1 (a bar and a line per epoch) or "
                f"2 (a line per epoch), got {verbose!r}"
            )
        if file is not None and not callable(getattr(file, "write", None)):
            raise TypeError(
                f"ProgressLogger: file must be a text stream with write() (sys.stdout, an open "
                f"file, io.StringIO), got {type(file).__name__}"
            )
        self.verbose = int(verbose)
        self.file = file
        self.bar: ProgressBar | None = None
        self._steady = False  # a step of this run has run: the next ones count for the rate
        self._compiles = 0

    def _out(self):
        return self.file if self.file is not None else sys.stderr

    def on_train_begin(self, model, optimizer):
        self._steady = False

    def on_train_batch_begin(self, batch, model, optimizer):
        self._compiles = compile_count()
        if self.bar is None and self.verbose == 1 and is_terminal(self._out()):
            loop = self.loop
            self.bar = ProgressBar(
                loop.steps, desc=f"epoch {loop.epoch + 1}/{loop.epochs}", unit="batch", file=self._out()
            )
            if batch:  # an epoch resumed in its middle
                self.bar.update(batch, restart_rate=True)

    def on_train_batch_end(self, batch, logs, model, optimizer):
        warm_up = not self._steady or compile_count() != self._compiles
        self._steady = True
        if self.bar is None:
            return
        done, steps = batch + 1, self.loop.steps
        self.bar.update(1, restart_rate=warm_up)
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
