"""fastnn playground in a real browser: headless Chromium (Debian's package) driven by Playwright.

Never ``playwright install``: the tests launch the ``chromium`` found on PATH. They skip, saying
why, where Playwright (``pip install 'fastnn[web]'``) or Chromium (``apt-get install chromium``)
is missing. Screenshots go to each test's temporary folder.
"""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pytest
from browser_helpers import CHROMIUM, CHROMIUM_FLAGS

import fastnn as fnn
from fastnn.playground import Playground
from fastnn.playground.features import featurize

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install 'fastnn[web]'"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: apt-get install -y chromium chromium-driver"
)


@pytest.fixture(scope="module")
def playground():
    server = Playground(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")  # empty: --user-data-dir
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, playground):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    control(playground, "pause")
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def state(playground) -> dict:
    with urllib.request.urlopen(playground.url + "api/state", timeout=20) as response:
        return json.loads(response.read())


def control(playground, action: str) -> None:
    request = urllib.request.Request(
        playground.url + "api/control", data=json.dumps({"action": action}).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=20).close()


def wait_for(condition, timeout: float = 60, what: str = "the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def open_page(page, playground, hash_: str) -> None:
    page.goto(playground.url + "#" + hash_)
    page.wait_for_function("window.playground && window.playground.frame && window.playground.points")


def test_circle_plays_to_test_loss_below_0_1_and_the_heatmap_separates(page, playground, tmp_path):
    open_page(page, playground, "dataset=circle&layers=4,2&lr=0.03&optimizer=sgd&activation=tanh")
    page.click('.dataset[data-dataset="circle"]')
    page.select_option("#lr", "0.1")
    wait_for(lambda: state(playground)["settings"]["lr"] == 0.1, what="the learning rate to reach the server")
    page.click("#play")
    wait_for(
        lambda: float(page.text_content("#test-loss").replace("–", "9")) < 0.1,
        timeout=120,
        what="the page's test loss to fall below 0.1",
    )
    page.click("#play")  # pause
    wait_for(lambda: not state(playground)["playing"], what="the pause")
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "circle-trained.png"), full_page=True)
    assert float(page.text_content("#test-loss")) < 0.1
    assert int(page.text_content("#epoch").replace(",", "")) > 0
    # Read the heatmap's pixels under every training point: blue where the class is 1, orange for 0.
    agree = page.evaluate(
        """() => {
            const ctx = document.getElementById("heatmap").getContext("2d");
            const pixels = ctx.getImageData(0, 0, 100, 100).data;
            const train = window.playground.points.train;
            let right = 0;
            train.x.forEach(([x1, x2], i) => {
                const col = Math.min(99, Math.floor((x1 + 6) / 12 * 100));
                const row = Math.min(99, Math.floor((6 - x2) / 12 * 100));
                const k = 4 * (row * 100 + col);
                const blue = pixels[k + 2] > pixels[k];
                if (blue === (train.y[i] === 1)) right++;
            });
            return right / train.x.length;
        }"""
    )
    assert agree > 0.95, f"the heatmap's colour matches the class under only {agree:.1%} of the points"
    colours = """() => new Set(Array.from({length: 10000}, (_, i) => document.getElementById("heatmap")
        .getContext("2d").getImageData(i % 100, Math.floor(i / 100), 1, 1).data.join())).size"""
    assert page.evaluate(colours) > 50  # shades between the classes
    page.check("#discretize")
    assert page.evaluate(colours) == 2  # two colours only
    page.wait_for_function("location.hash.includes('discretize=true')")


def test_export_downloads_a_model_that_fnn_load_reads(page, playground, tmp_path):
    open_page(page, playground, "dataset=circle&layers=6,4&lr=0.03&optimizer=adam&activation=tanh")
    control(playground, "reset")
    for _ in range(30):
        control(playground, "step")
    with page.expect_download() as download:
        page.click("#export-npz")
    path = tmp_path / "playground.npz"
    download.value.save_as(path)
    model = fnn.load(path)
    session = playground.session
    x = featurize(session.test[0], session.settings["features"])
    accuracy = float(np.mean(model.predict_classes(x) == session.test[1]))
    assert accuracy > 0.95 and model.layers[0].in_features == 2
    with page.expect_download() as download:
        page.click("#export-py")
    script = tmp_path / "playground.py"
    download.value.save_as(script)
    assert "fnn.optim.Adam(lr=0.03" in script.read_text()


def test_the_url_holds_the_state_and_hides_controls(page, playground, tmp_path):
    open_page(
        page,
        playground,
        "dataset=xor&layers=3,5&activation=relu&lr=0.3&features=x1,x2,x1x2&showTestData=true&hide=noise,dropout",
    )
    wait_for(lambda: state(playground)["settings"]["dataset"] == "xor", what="the URL's settings")
    settings = state(playground)["settings"]
    assert settings["layers"] == [3, 5] and settings["activation"] == "relu" and settings["lr"] == 0.3
    assert settings["features"] == ["x1", "x2", "x1x2"]
    page.wait_for_function("document.querySelectorAll('.node.hidden').length === 8")
    # the controls follow the reply to the page's settings request, which may land after the
    # server's first frame drew the nodes
    page.wait_for_function(
        "document.getElementById('activation').value === 'relu'"
        " && document.getElementById('lr').value === '0.3'"
    )
    assert page.text_content("#num-layers") == "2"
    assert page.get_attribute('.dataset[data-dataset="xor"]', "class").split() == ["dataset", "selected"]
    assert page.is_checked("#show-test") and page.is_hidden("#noise") and page.is_hidden("#dropout")
    assert page.is_visible("#batch_size")
    assert page.locator(".node.input.inactive").count() == 4
    page.screenshot(path=str(tmp_path / "xor-from-url.png"), full_page=True)

    page.select_option("#activation", "tanh")  # a control writes the URL
    page.wait_for_function("location.hash.includes('activation=tanh')")
    page.evaluate("location.hash = 'dataset=spiral&layers=8,8,8&features=x1,x2,sinx1,sinx2'")
    wait_for(lambda: state(playground)["settings"]["dataset"] == "spiral", what="the changed URL's settings")
    assert state(playground)["settings"]["layers"] == [8, 8, 8]
    page.wait_for_function("document.querySelectorAll('.node.hidden').length === 24")
    # the nodes come with the server's next frame, the label with the reply to the page's own
    # settings request: either may land first
    page.wait_for_function("document.getElementById('num-layers').textContent === '3'")


def test_hover_shows_a_neuron_click_edits_a_weight_and_the_backend_switches(page, playground, tmp_path):
    open_page(page, playground, "dataset=gauss&layers=3&activation=tanh&lr=0.03&optimizer=sgd&backend=numba")
    wait_for(lambda: state(playground)["settings"]["dataset"] == "gauss", what="the gauss settings")
    page.wait_for_function("document.querySelectorAll('.node.hidden').length === 3")
    read = "() => [...document.getElementById('heatmap').getContext('2d').getImageData(0, 0, 50, 50).data]"
    before = page.evaluate(read)
    page.hover('.node[data-key="hidden:0:1"]')
    assert page.evaluate("document.getElementById('heatmap').width") == 50  # the neuron's own map
    page.mouse.move(5, 5)
    assert page.evaluate(read) == before

    page.dispatch_event('#links path[data-layer="0"][data-from="1"][data-to="2"]', "click")
    page.fill("#weight-input", "2.5")
    page.press("#weight-input", "Enter")
    wait_for(lambda: state(playground)["weights"][0]["W"][1][2] == 2.5, what="the edited weight")

    page.click('#backend-switch button[data-backend="numpy"]')
    wait_for(lambda: state(playground)["settings"]["backend"] == "numpy", what="the backend switch")
    assert state(playground)["weights"][0]["W"][1][2] == 2.5  # the weights came along
    page.click("#play")
    page.wait_for_function("document.getElementById('rate-numpy').textContent.includes('steps/s')")
    page.click("#play")
    page.screenshot(path=str(tmp_path / "gauss-numpy.png"), full_page=True)


def test_more_classes_and_points_added_by_clicking(page, playground, tmp_path):
    settings = "dataset=blobs&classes=4&layers=6&optimizer=adam&lr=0.03&activation=relu&features=x1,x2"
    open_page(page, playground, settings)
    wait_for(lambda: state(playground)["classes"] == 4, what="four classes")
    for _ in range(15):
        control(playground, "step")
    page.wait_for_function("document.querySelectorAll('#confusion tr').length === 5")
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "blobs.png"), full_page=True)
    page.select_option("#click-class", "2")
    count = len(playground.session.train[0]) + len(playground.session.test[0])
    page.click("#points", position={"x": 200, "y": 200})
    wait_for(lambda: state(playground)["settings"]["dataset"] == "custom", what="the clicked point")
    assert len(playground.session.train[0]) + len(playground.session.test[0]) == count + 1
