r"""A tiny, dependency-free progress bar (fastnn does not depend on tqdm).

Example::

    with ProgressBar(total=len(batches), desc="epoch 1") as bar:
        for batch in batches:
            loss = model.train_step(*batch, opt)
            bar.update()
            bar.set_postfix(loss=loss)

draws, on one line redrawn with ``\r`` at most about ten times a second::

    epoch 1:  42%|[============>                 ]| 210/500 [00:03<00:04, 70.1 it/s] loss=0.3121

With ``total=None`` only the count, elapsed time and rate are shown. With
``unit="B"`` counts and rates are shown as bytes (``9.5 MiB``, ``1.2 MiB/s``),
which is what the dataset downloader uses. ``disable=True`` writes nothing.

The elapsed time is wall time since the bar was made. The rate (and so the time left)
counts only the steps after the last ``update(..., restart_rate=True)``: fit's bar passes
it for the first step of a run and for steps that compiled kernels, so seconds of
compiling do not turn into an ETA of hours. Until a rate exists the bar shows ``?``::

    epoch 1/2:   0%|[>                             ]| 1/600 [00:16<?, ? batch/s]
"""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar", "format_bytes", "format_time", "is_terminal"]

_MIN_INTERVAL = 0.1  # seconds between redraws: at most ~10 redraws per second


def format_bytes(n: float) -> str:
    """Human-readable byte count with binary prefixes: ``format_bytes(9961472) == '9.5 MiB'``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024.0 or unit == "TiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}"
        n /= 1024.0
    raise AssertionError("unreachable")


def format_time(seconds: float) -> str:
    """``mm:ss`` below an hour, ``h:mm:ss`` above."""
    seconds = int(max(seconds, 0))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours:d}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (its ``isatty()`` says so); False for files, pipes,
    ``io.StringIO`` and streams without ``isatty``."""
    isatty = getattr(stream, "isatty", None)
    if not callable(isatty):
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def _format_value(value) -> str:
    """Postfix values: floats to 4 significant digits, everything else with ``str``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):.4g}"
    return str(value)


class ProgressBar:
    """A one-line text progress bar.

    Args:
        total: number of expected steps (or bytes); None when unknown.
        desc: label shown first.
        unit: unit name for the rate (``"it"`` -> ``it/s``); ``"B"`` formats counts as bytes.
        file: the text stream to draw on (default ``sys.stderr``).
        disable: write nothing at all.
        width: number of characters inside the ``[...]`` bar.

    ``clock`` (a class attribute, ``time.perf_counter``) is what the bar reads the time
    from; tests replace it with a fake clock.
    """

    clock = staticmethod(time.perf_counter)

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        file=None,
        disable: bool = False,
        width: int = 30,
    ):
        self.total = None if total is None else int(total)
        self.desc = desc
        self.unit = unit
        self.file = file
        self.disable = disable
        self.width = max(int(width), 1)
        self.n = 0
        self.postfix = ""
        self.closed = False
        self._start = self.clock()
        self._rate_from = (self._start, 0)  # (time, count) the rate is measured from
        self._last_draw = -float("inf")
        self._last_len = 0
        self._refresh(force=True)

    # -- public API -------------------------------------------------------

    def update(self, n: int = 1, restart_rate: bool = False) -> None:
        """Advance by ``n`` steps and redraw (throttled). With ``restart_rate`` these steps
        are left out of the rate: it is measured afresh from now (and the time left shows
        ``?`` until the next step)."""
        self.n += n
        if restart_rate:
            self._rate_from = (self.clock(), self.n)
        self._refresh()

    def set_postfix(self, **values) -> None:
        """Show ``key=value`` pairs after the bar; floats get 4 significant digits."""
        self.postfix = ", ".join(f"{k}={_format_value(v)}" for k, v in values.items())
        self._refresh()

    def close(self) -> None:
        """Draw the final state and end the line. Calling it twice does nothing."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        self._draw()
        self._stream().write("\n")
        self._flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __str__(self) -> str:
        return self.format_line()

    # -- rendering --------------------------------------------------------

    def rate(self, now: float | None = None) -> float | None:
        """Steps per second since the rate was last restarted; None before a step counts."""
        now = self.clock() if now is None else now
        since, count = self._rate_from
        done, seconds = self.n - count, now - since
        return done / seconds if done > 0 and seconds > 0 else None

    def format_line(self, elapsed: float | None = None) -> str:
        r"""The text of the bar for the current state (without ``\r``); ``elapsed`` is the
        wall time since the bar was made (default: read from the clock)."""
        if elapsed is None:
            elapsed = self.clock() - self._start
        rate = self.rate(self._start + elapsed)
        prefix = f"{self.desc}: " if self.desc else ""
        if self.total is None:
            line = f"{prefix}{self._count(self.n)} [{format_time(elapsed)}, {self._rate(rate)}]"
        else:
            frac = 1.0 if self.total <= 0 else min(max(self.n / self.total, 0.0), 1.0)
            if self.n >= self.total:
                remaining = format_time(0)
            else:
                remaining = "?" if rate is None else format_time((self.total - self.n) / rate)
            line = (
                f"{prefix}{100 * frac:3.0f}%|{self._bar(frac)}| "
                f"{self._count(self.n)}/{self._count(self.total)} "
                f"[{format_time(elapsed)}<{remaining}, {self._rate(rate)}]"
            )
        if self.postfix:
            line += " " + self.postfix
        return line

    def _bar(self, frac: float) -> str:
        filled = int(frac * self.width)
        if filled >= self.width:
            body = "=" * self.width
        else:
            body = "=" * filled + ">" + " " * (self.width - filled - 1)
        return f"[{body}]"

    def _count(self, n: int) -> str:
        return format_bytes(n) if self.unit == "B" else str(n)

    def _rate(self, rate: float | None) -> str:
        if rate is None:
            return f"? {self.unit}/s" if self.unit != "B" else "? B/s"
        if self.unit == "B":
            return f"{format_bytes(rate)}/s"
        return f"{rate:.3g} {self.unit}/s"

    def _stream(self):
        return self.file if self.file is not None else sys.stderr

    def _flush(self) -> None:
        flush = getattr(self._stream(), "flush", None)
        if flush is not None:
            flush()

    def _refresh(self, force: bool = False) -> None:
        if self.disable or self.closed:
            return
        now = self.clock()
        if force or now - self._last_draw >= _MIN_INTERVAL:
            self._draw(now)

    def _draw(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._last_draw = now
        line = self.format_line(now - self._start)
        pad = " " * max(self._last_len - len(line), 0)  # wipe a longer previous line
        self._last_len = len(line)
        self._stream().write("\r" + line + pad)
        self._flush()
