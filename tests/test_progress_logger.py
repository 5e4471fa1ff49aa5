"""ProgressLogger: fit's progress bar and epoch lines."""

from __future__ import annotations

import io

from fastnn.callbacks import ProgressLogger

from fit_recipe import clusters as blobs
from fit_recipe import small_model


def test_progress_bar_is_shown_and_silenced():
    x, t = blobs(50)
    out = io.StringIO()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=1, file=out)
    assert "5/5" in out.getvalue() and "epoch 1/1" in out.getvalue()
    quiet = io.StringIO()
    small_model().fit(x, t, epochs=1, batch_size=10, verbose=0, file=quiet)
    assert quiet.getvalue() == ""


def test_verbose_2_writes_one_line_per_epoch_and_no_bar():
    x, t = blobs(50)
    out = io.StringIO()
    small_model().fit(x, t, epochs=3, batch_size=10, verbose=2, file=out, validation_split=0.2)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 3
    assert lines[0].startswith("epoch 1/3  loss ") and "val_accuracy" in lines[0]
    assert lines[2].startswith("epoch 3/3") and lines[2].endswith("s)")


def test_a_bar_per_epoch_with_the_loss_and_the_line_after_it():
    x, t = blobs(50)
    out = io.StringIO()
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
