"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

A short run on the 8x8 digits streams to two tabs; the test waits for the charts, the
filters, the confusion matrix and the misclassified samples to show the run's own values,
saves screenshots (PNG) under the test's temp folder, and checks that the page keeps
the final frame after the server stops. Never ``playwright install``: the browser is
the ``chromium`` on PATH.
"""

from __future__ import annotations

import copy
import threading
import time

import numpy as np
import pytest
from browser_helpers import CHROMIUM, CHROMIUM_FLAGS

import fastnn as fnn
from fastnn.callbacks import Callback
from fastnn.dashboard import Dashboard

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright: pip install 'fastnn[web]' (playwright==1.64.*)"
)
pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (pip install 'fastnn[data]')")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: apt-get install chromium", allow_module_level=True)

# Pixels a canvas has drawn (alpha > 0): a blank canvas has none.
INK = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
  return count;
}"""


class HoldUntilWatched(Callback):
    """The first step waits until ``count`` tabs listen (up to two minutes: Chromium starts slowly
    on a loaded machine, and a run that trains through before the tabs listen never shows
    "running"); then every step takes a little longer, so the tabs see the run go on."""

    def __init__(self, dashboard, count, seconds):
        self.dashboard, self.count, self.seconds = dashboard, count, seconds

    def on_train_batch_begin(self, batch, model, optimizer):
        if self.loop.global_step == 0:
            deadline = time.monotonic() + 120
            while self.dashboard.watchers < self.count and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(self.seconds)


def test_the_page_shows_a_run_in_two_tabs_and_keeps_the_final_frame(tmp_path):
    (x, t), (x_test, t_test) = fnn.datasets.load_digits()
    model = fnn.Sequential(
        [fnn.Conv2D(1, 8, 3, pad=1), fnn.ReLU(), fnn.MaxPool2D(2), fnn.Flatten(), fnn.Dense(8 * 4 * 4, 10)],
        seed=0,
        input_shape=(1, 8, 8),
    )
    # The run's kernels compile first, on a copy: on an empty kernel cache, next to other
    # tests, the first step's compiling could outlast the page's wait for "running".
    warm = copy.deepcopy(model)
    warm.train_step(x[:32], t[:32], fnn.optim.Adam(0.01))
    warm.predict(x_test)
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), samples=300, interval=0.1, verbose=False)
    url = dashboard.start()
    hold = HoldUntilWatched(dashboard, count=2, seconds=0.004)
    run = threading.Thread(
        target=lambda: model.fit(
            x,
            t,
            epochs=4,
            batch_size=32,
            optimizer=fnn.optim.Adam(0.01),
            callbacks=[dashboard, hold],
            verbose=0,
        ),
        daemon=True,
    )
    run.start()
    profile = tmp_path / "profile"
    profile.mkdir()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                first, second = browser.new_page(), browser.new_page()
                errors = []
                for page in (first, second):
                    page.on("pageerror", lambda error: errors.append(str(error)))
                    page.goto(url)
                first.wait_for_selector("body[data-status=running]", state="attached", timeout=90_000)
                first.screenshot(path=str(tmp_path / "dashboard-running.png"), full_page=True)
                for page in (first, second):
                    page.wait_for_selector("body[data-status=finished]", state="attached", timeout=90_000)
                run.join(timeout=30)
                assert not run.is_alive()
                frame = dashboard.frame
                page = first
                page.wait_for_function(f"document.body.dataset.frame === '{frame['frame']}'", timeout=10_000)
                page.screenshot(path=str(tmp_path / "dashboard-finished.png"), full_page=True)
                assert not errors, errors

                for canvas in (
                    "loss-chart",
                    "accuracy-chart",
                    "lr-chart",
                    "norms-chart",
                    "grad-history-chart",
                ):
                    assert page.evaluate(INK, canvas) > 500, canvas
                assert page.evaluate(INK, "confusion-chart") > 5000
                steps = frame["position"]["total_steps"]
                assert page.inner_text("#stat-step") == f"{steps} / {steps}"
                assert page.inner_text("#stat-epoch") == "4 / 4"
                assert page.inner_text("#stat-eta") == "done"
                held = frame["held_out"]
                accuracy = np.trace(np.array(held["confusion"])) / held["samples"]
                assert page.inner_text("#stat-held-out") == f"{100 * accuracy:.2f} %"
                assert page.inner_text("#stat-held-out-name").lower() == "validation accuracy"
                assert f"{np.trace(np.array(held['confusion']))} of 300 right" in page.inner_text(
                    "#confusion-caption"
                )
                assert page.locator("#filters canvas").count() == 8
                assert "0 Conv2D(1->8, 3x3, pad 1): 8 of 8 filters, 3\u00d73" in page.inner_text(
                    "#filters-caption"
                )
                wrong = held["misclassified"]
                captions = page.locator("#misclassified figcaption").all_inner_texts()
                assert captions == [f"{a} \u2192 {b}" for a, b in zip(wrong["true"], wrong["predicted"])]
                assert len(captions) == min(wrong["count"], 24) > 0
                assert page.locator("#epochs-table tbody tr").count() == 4
                assert second.inner_text("#stat-step") == f"{steps} / {steps}"

                dashboard.close()  # the server goes; the pages keep the last frame
                time.sleep(1.0)
                for page in (first, second):
                    assert page.get_attribute("body", "data-status") == "finished"
                    assert page.inner_text("#status") == "finished"
                    assert page.locator("#filters canvas").count() == 8
            finally:
                browser.close()
    finally:
        dashboard.close()
        run.join(timeout=30)
    assert (tmp_path / "dashboard-finished.png").stat().st_size > 10_000
