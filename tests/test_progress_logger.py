"""ProgressLogger: fit's progress bar and epoch lines; the bar only on a terminal, its rate
and time left without the first step's compile time."""

from __future__ import annotations

import io
import re

import pytest

import fastnn as fnn
from fastnn import _kernel_cache
from fastnn._progress import ProgressBar, format_time
from fastnn.callbacks import ProgressLogger

from fit_recipe import clusters as blobs
from fit_recipe import small_model


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_is_shown_on_a_terminal_and_silenced():
    x, t = blobs(50)
    out = Terminal()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=1, file=out)
    assert "5/5" in out.getvalue() and "epoch 1/1" in out.getvalue() and "\r" in out.getvalue()
    quiet = Terminal()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=0, file=quiet)
    assert quiet.getvalue() == ""


class NoIsatty:
    """A stream with write() and flush() only."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass


@pytest.mark.parametrize("stream", [io.StringIO, NoIsatty])
def test_not_a_terminal_gets_one_line_per_epoch_and_no_frames(stream):
    x, t = blobs(50)
    out = stream()
    small_model().fit(x, t, epochs=3, batch_size=10, verbose=1, file=out)
    text = out.getvalue() if isinstance(out, io.StringIO) else "".join(out.parts)
    lines = text.splitlines()
    assert "\r" not in text and len(lines) == 3
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]


def test_verbose_2_writes_one_line_per_epoch_and_no_bar_even_on_a_terminal():
    x, t = blobs(50)
    out = Terminal()
    small_model().fit(x, t, epochs=3, batch_size=10, verbose=2, file=out, validation_split=0.2)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 3
    assert lines[0].startswith("epoch 1/3  loss ") and "val_accuracy" in lines[0]
    assert lines[2].startswith("epoch 3/3") and lines[2].endswith("s)")


def test_a_bar_per_epoch_with_the_loss_and_the_line_after_it():
    x, t = blobs(50)
    out = Terminal()
    small_model().fit(x, t, epochs=2, batch_size=10, verbose=1, file=out)
    text = out.getvalue()
    for epoch in (1, 2):
        bar_end = text.index(f"epoch {epoch}/2: 100%")
        assert "5/5" in text[bar_end:] and "loss=" in text[bar_end : text.index("\n", bar_end)]
        assert text.index(f"\nepoch {epoch}/2  loss") > bar_end


def test_the_callback_given_explicitly_replaces_verbose():
    x, t = blobs(30)
    out = io.StringIO()
    small_model().fit(
        x, t, epochs=2, batch_size=10, verbose=1, callbacks=[ProgressLogger(verbose=2, file=out)]
    )
    assert out.getvalue().count("\n") == 2 and "\r" not in out.getvalue()


def test_bad_verbose_and_file_are_refused():
    with pytest.raises(ValueError, match=r"ProgressLogger: verbose must be 0 .* got 3"):
        ProgressLogger(verbose=3)
    with pytest.raises(TypeError, match="ProgressLogger: file must be a text stream.*got str"):
        ProgressLogger(file="log.txt")


# ----------------------------------------------------------------- the rate without compile time


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _frames(text):
    return [frame for frame in re.split(r"[\r\n]", text) if frame.strip()]


def _eta(frame):
    """The time left of a bar frame: '?' or seconds."""
    left = re.search(r"<([^,]+),", frame).group(1)
    if left == "?":
        return left
    parts = [int(p) for p in left.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def _slow_first_step_model(monkeypatch, clock, first=16.0, then=0.5, compiles_at=()):
    """small_model whose steps advance the fake clock: ``first`` s for the first step of the
    run, ``then`` s for the others; steps numbered in ``compiles_at`` report a compile."""
    model = small_model()
    real, count = model.train_step, [0]
    compiles = [_kernel_cache.compile_count()]
    monkeypatch.setattr(_kernel_cache, "compile_count", lambda: compiles[0])
    monkeypatch.setattr(fnn.callbacks.progress, "compile_count", lambda: compiles[0])

    def train_step(*args, **kwargs):
        count[0] += 1
        clock.now += first if count[0] == 1 else then
        if count[0] in compiles_at:
            compiles[0] += 1
            clock.now += first
        return real(*args, **kwargs)

    model.train_step = train_step
    return model


def test_the_time_left_ignores_the_slow_first_step(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(ProgressBar, "clock", clock)
    monkeypatch.setattr(fnn.training.time, "perf_counter", clock)  # the loop's epoch clock
    x, t = blobs(200)
    out = Terminal()
    model = _slow_first_step_model(monkeypatch, clock, first=16.0, then=0.5)
    history = model.fit(x, t, epochs=1, batch_size=5, verbose=1, file=out)
    frames = _frames(out.getvalue())
    bars = [f for f in frames if "/40 [" in f]
    # before any step and after the slow first one there is no rate yet: '?', not an ETA of hours
    assert bars[0].startswith("epoch 1/1:   0%") and _eta(bars[0]) == "?" and "? batch/s" in bars[0]
    first = next(f for f in bars if " 1/40 [" in f)
    assert _eta(first) == "?" and first.split("[")[2].startswith("00:16<?")
    # later frames: the rate of the 0.5 s steps, 2 batch/s; the time left is what remains at it
    for frame in bars:
        done = int(re.search(r" (\d+)/40 \[", frame).group(1))
        if 2 <= done < 40:
            assert "2 batch/s" in frame, frame
            assert _eta(frame) == int((40 - done) * 0.5), frame
    assert history["time"][0] == pytest.approx(16.0 + 39 * 0.5)  # the epoch's wall time, all of it


def test_a_step_that_compiles_restarts_the_rate(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(ProgressBar, "clock", clock)
    x, t = blobs(100)
    out = Terminal()
    # step 5 compiles kernels (16 s more); the bar must not average that in
    model = _slow_first_step_model(monkeypatch, clock, first=16.0, then=0.25, compiles_at=(5,))
    model.fit(x, t, epochs=1, batch_size=5, verbose=1, file=out)
    bars = [f for f in _frames(out.getvalue()) if "/20 [" in f]
    after = [f for f in bars if int(re.search(r" (\d+)/20 \[", f).group(1)) == 5]
    assert after and all(_eta(f) == "?" for f in after)
    for frame in bars:
        done = int(re.search(r" (\d+)/20 \[", frame).group(1))
        if 6 <= done < 20:
            assert "4 batch/s" in frame and _eta(frame) == int((20 - done) * 0.25), frame


def test_the_bar_formats_an_unknown_rate_with_a_question_mark(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(ProgressBar, "clock", clock)
    bar = ProgressBar(10, unit="batch", file=io.StringIO())
    assert "0/10 [00:00<?, ? batch/s]" in bar.format_line()
    clock.now += 20
    bar.update(1, restart_rate=True)
    assert "1/10 [00:20<?, ? batch/s]" in bar.format_line()
    clock.now += 1
    bar.update(2)
    assert f"3/10 [00:21<{format_time(3.5)}, 2 batch/s]" in bar.format_line()
