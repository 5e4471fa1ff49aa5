"""ProgressLogger: fit's progress bar and epoch lines."""

from __future__ import annotations

import io

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
