"""fastnn.dashboard: the frames' values against independent computations, the throttle,
the no-watcher path, the protocol over plain HTTP, and ``fastnn train --dashboard``.

The models are tiny (8x8 digits), so every test runs a real ``fit``.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import fastnn as fnn
from fastnn.callbacks import Callback
from fastnn.dashboard import Dashboard, callback, frames
from fastnn.dashboard.frames import Series, image_shape

pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (pip install 'fastnn[data]')")


@pytest.fixture(scope="module")
def digits():
    (x, t), (x_test, t_test) = fnn.datasets.load_digits()
    return x[:600], t[:600], x_test, t_test


def mlp():
    return fnn.Sequential(
        [fnn.Flatten(), fnn.Dense(64, 16), fnn.ReLU(), fnn.Dense(16, 10)], seed=0, input_shape=(1, 8, 8)
    )


def convnet():
    return fnn.Sequential(
        [fnn.Conv2D(1, 4, 3), fnn.ReLU(), fnn.Flatten(), fnn.Dense(4 * 6 * 6, 10)],
        seed=0,
        input_shape=(1, 8, 8),
    )


def unpack(packed: dict) -> np.ndarray:
    pixels = np.frombuffer(base64.b64decode(packed["data"]), dtype=np.uint8)
    return pixels.reshape(-1, packed["height"], packed["width"], packed["channels"])


def scaled(images: np.ndarray) -> np.ndarray:
    """Each image from its minimum (0) to its maximum (255), as pack_images promises."""
    images = np.asarray(images, dtype=np.float64)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    return np.rint((images - low) / (high - low) * 255).astype(np.uint8)


class StubStream:
    """Stands in for the event stream: ``watchers`` as set, publishes recorded with their time."""

    def __init__(self, watchers):
        self.watchers = watchers
        self.published = []

    def publish(self, event, data):
        self.published.append((time.perf_counter(), event, data))


class Recorder(Callback):
    def __init__(self):
        self.losses, self.lrs = [], []

    def on_train_batch_end(self, batch, logs, model, optimizer):
        self.losses.append(logs["loss"])
        self.lrs.append(optimizer.lr)


class Slow(Callback):
    """Stretches every step, so a short run spans several throttle intervals."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs, model, optimizer):
        time.sleep(self.seconds)


def get(url: str):
    """(status, content type, body bytes) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


# -- the frames' values ------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_mlp_run(digits):
    x, t, x_test, t_test = digits
    model = mlp()
    recorder = Recorder()
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), samples=200, verbose=False)
    history = model.fit(
        x,
        t,
        epochs=2,
        batch_size=50,
        optimizer=fnn.optim.Adam(0.01),
        callbacks=[recorder, dashboard],
        verbose=0,
    )
    yield model, dashboard, history, recorder, (x_test, t_test)
    dashboard.close()


def test_the_final_frame_holds_the_run_and_the_held_out_scores(finished_mlp_run):
    model, dashboard, history, recorder, (x_test, t_test) = finished_mlp_run
    frame = dashboard.frame
    assert frame["status"] == "finished" and dashboard.frames_built == 1  # nobody watched: only the last
    assert frame["position"] == {
        "epochs_done": 2,
        "batch": 0,
        "step": 24,
        "total_steps": 24,
        "stop_reason": None,
    }
    assert frame["time"]["eta"] == 0.0 and frame["time"]["elapsed"] > 0
    index = dashboard.held_out_indices
    assert len(index) == 200 == len(set(index.tolist())) and index.max() < len(x_test)
    x_sub, t_sub = x_test[index], t_test[index]
    expected = fnn.metrics.confusion_matrix(model.predict_classes(x_sub), t_sub, num_classes=10)
    held = frame["held_out"]
    assert np.array_equal(np.array(held["confusion"]), expected)
    scores = model.evaluate(x_sub, t_sub)
    assert held["loss"] == pytest.approx(scores["loss"], rel=1e-6)
    assert held["accuracy"] == pytest.approx(scores["accuracy"])
    wrong = np.flatnonzero(model.predict_classes(x_sub) != t_sub)
    assert held["misclassified"]["count"] == len(wrong) > 0
    shown = index[wrong[:24]]
    assert held["misclassified"]["index"] == shown.tolist()
    assert held["misclassified"]["true"] == t_test[shown].tolist()
    assert held["misclassified"]["predicted"] == model.predict_classes(x_test[shown]).tolist()
    images = unpack(held["misclassified"])
    assert np.array_equal(images, scaled(x_test[shown].transpose(0, 2, 3, 1)))


def test_steps_and_epochs_are_the_runs_own(finished_mlp_run):
    model, dashboard, history, recorder, _ = finished_mlp_run
    steps = dashboard.frame["steps"]
    assert steps["step"] == list(range(1, 25))
    assert steps["loss"] == pytest.approx(recorder.losses)
    assert steps["lr"] == pytest.approx(recorder.lrs)
    for epoch in range(2):  # the step accuracies, weighted by batch size, give the epoch's
        accuracies = np.array(steps["accuracy"][epoch * 12 : (epoch + 1) * 12])
        assert accuracies.mean() == pytest.approx(history["accuracy"][epoch])
    assert dashboard.frame["epochs"] == {key: pytest.approx(value) for key, value in history.items()}
    assert dashboard.frame["lr"] == pytest.approx(0.01)


def test_layer_norms_are_the_norms_of_the_weights_and_last_gradients(finished_mlp_run):
    model, dashboard, *_ = finished_mlp_run
    layers = dashboard.frame["layers"]
    assert [layer["name"] for layer in layers] == ["1 Dense(64->16)", "3 Dense(16->10)"]
    for entry, layer in zip(layers, (model.layers[1], model.layers[3])):
        weights = np.sqrt(np.linalg.norm(layer.params["W"]) ** 2 + np.linalg.norm(layer.params["b"]) ** 2)
        grads = np.sqrt(np.linalg.norm(layer.grads["W"]) ** 2 + np.linalg.norm(layer.grads["b"]) ** 2)
        assert entry["weight_norm"] == pytest.approx(weights, rel=1e-5)
        assert entry["grad_norm"] == pytest.approx(grads, rel=1e-5) and entry["grad_norm"] > 0
    assert dashboard.frame["norms"]["grad"][-1] == [layer["grad_norm"] for layer in layers]


def test_a_dense_first_layer_on_images_shows_its_units_as_images(finished_mlp_run):
    model, dashboard, *_ = finished_mlp_run
    filters = dashboard.frame["filters"]
    assert {k: filters[k] for k in ("layer", "kind", "count", "shown", "height", "width", "channels")} == {
        "layer": "1 Dense(64->16)",
        "kind": "dense",
        "count": 16,
        "shown": 16,
        "height": 8,
        "width": 8,
        "channels": 1,
    }
    W = model.layers[1].params["W"]
    assert np.array_equal(unpack(filters), scaled(W.T.reshape(16, 8, 8, 1)))


def test_a_conv_first_layer_shows_its_filters(digits):
    model = convnet()
    W = model.layers[0].params["W"]
    filters = frames.first_layer_images(model.layers, model.input_shape, max_images=3)
    assert (filters["kind"], filters["count"], filters["shown"], filters["height"]) == ("conv", 4, 3, 3)
    assert np.array_equal(unpack(filters), scaled(W[:3, :1].transpose(0, 2, 3, 1)))
    colour = fnn.Sequential([fnn.Conv2D(3, 2, 5)], seed=0)
    drawn = frames.first_layer_images(colour.layers, (3, 32, 32))
    assert drawn["channels"] == 3
    assert np.array_equal(unpack(drawn), scaled(colour.layers[0].params["W"].transpose(0, 2, 3, 1)))


def test_what_counts_as_an_image():
    assert image_shape((1, 28, 28)) == (28, 28, 1)
    assert image_shape((3, 32, 32)) == (32, 32, 3)
    assert image_shape((784,)) == (28, 28, 1)
    assert image_shape((4, 8, 8)) is None and image_shape((10,)) is None and image_shape(None) is None
    dense = fnn.Sequential([fnn.Dense(10, 3)], seed=0)
    assert frames.first_layer_images(dense.layers, (10,)) is None


def test_series_averages_neighbours_when_full():
    series = Series(("step", "loss"), max_points=4)
    for step in range(1, 11):
        series.append(step, 10.0 * step)
    # 1..4 fill it: [1.5, 3.5] by 2; 5..8 fill it again: [2.5, 6.5] by 4; 9, 10 still filling
    data = series.to_dict()
    assert data["step"] == [2.5, 6.5, 9.5]
    assert data["loss"] == [25.0, 65.0, 95.0]
    assert series.stride == 4
    series.append(11, float("nan"))
    assert series.to_dict()["loss"][-1] is None  # JSON has no NaN: a gap in the chart


# -- the cost --------------------------------------------------------------------------------


def test_nothing_heavy_is_computed_while_nobody_watches(digits, monkeypatch):
    x, t, x_test, t_test = digits
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0, verbose=False)
    stream = StubStream(watchers=0)
    built = []
    original = Dashboard.build_frame

    def counting(self, *args, **kwargs):
        built.append(self.loop.global_step)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Dashboard, "build_frame", counting)

    class Swap(Callback):
        def on_train_begin(self, model, optimizer):
            dashboard.stream = stream

    try:
        mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[dashboard, Swap()], verbose=0)
    finally:
        dashboard.close()
    assert built == [24]  # the final frame, after the last step; none during training
    assert [event for _, event, _ in stream.published] == ["frame"]
    assert len(dashboard.frame["steps"]["loss"]) == 24  # the cheap per-step record goes on


def test_frames_are_throttled_by_time_and_by_their_cost(digits, monkeypatch):
    x, t, x_test, t_test = digits
    stream = StubStream(watchers=1)
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0.1, budget=0.5, verbose=False)

    class Swap(Callback):
        def on_train_begin(self, model, optimizer):
            dashboard.stream = stream

    try:
        mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[dashboard, Swap(), Slow(0.02)], verbose=0)
    finally:
        dashboard.close()
    # when each frame began (its "elapsed"), not when it was sent, which varies with its cost
    times = [frame["time"]["elapsed"] for _, _, frame in stream.published if frame["status"] == "running"]
    assert len(times) >= 2
    assert min(np.diff(times)) >= 0.1 - 1e-3  # never more often than the interval
    assert stream.published[-1][2]["status"] == "finished"

    # a frame that takes 0.1 s with budget 1 (half of it for frames) waits 0.2 s for the next
    stream.published.clear()
    slow = Dashboard(port=0, validation_data=(x_test, t_test), interval=0, budget=1.0, verbose=False)
    original = Dashboard.build_frame

    def sleepy(self, *args, **kwargs):
        time.sleep(0.1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Dashboard, "build_frame", sleepy)

    class SwapSlow(Callback):
        def on_train_begin(self, model, optimizer):
            slow.stream = stream

    try:
        mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[slow, SwapSlow(), Slow(0.02)], verbose=0)
    finally:
        slow.close()
    times = [frame["time"]["elapsed"] for _, _, frame in stream.published]
    assert len(times) >= 4
    # after the first (free: it compiles the inference kernels), each waits cost / (budget / 2);
    # the final frame alone is not throttled
    assert min(np.diff(times[1:-1])) >= 0.2 - 1e-3


def test_scoring_the_held_out_samples_has_its_own_throttle(digits, monkeypatch):
    x, t, x_test, t_test = digits
    scored = []

    def sleepy_report(*args, **kwargs):
        scored.append(time.perf_counter())
        time.sleep(0.05)
        return frames.held_out_report(*args, **kwargs)

    monkeypatch.setattr(callback, "held_out_report", sleepy_report)
    stream = StubStream(watchers=1)
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0, budget=0.2, verbose=False)

    class Swap(Callback):
        def on_train_begin(self, model, optimizer):
            dashboard.stream = stream

    try:
        mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[dashboard, Swap(), Slow(0.03)], verbose=0)
    finally:
        dashboard.close()
    # 0.05 s with half of budget 0.2: at most every 0.5 s, while the cheap frames go on
    assert len(scored) >= 2 and min(np.diff(scored[1:-1]), default=1.0) >= 0.5
    assert dashboard.frames_built > len(scored) + 3
    steps_scored = [frame["held_out"]["step"] for _, _, frame in stream.published]
    assert len(set(steps_scored)) == len(scored)  # frames in between reuse the last scores
    assert dashboard.frame["held_out"]["step"] == 24  # the final frame scores afresh


def test_bad_settings_are_refused_with_the_expected_range():
    with pytest.raises(ValueError, match=r"Dashboard: port must be an int in 0\.\.65535, got 70000"):
        Dashboard(port=70000)
    with pytest.raises(ValueError, match=r"Dashboard: budget must be in \(0, 1\], got 0"):
        Dashboard(budget=0)
    with pytest.raises(ValueError, match="Dashboard: samples must be an int >= 1, got 0"):
        Dashboard(samples=0)
    with pytest.raises(ValueError, match=r"Dashboard: validation_data must be a pair \(x, t\)"):
        Dashboard(validation_data=np.zeros(3))


def test_a_port_in_use_says_how_to_choose_another():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(
            OSError, match=rf"Dashboard: cannot listen on 127.0.0.1:{port} .*; pass another port"
        ):
            Dashboard(port=port, verbose=False).start()
    finally:
        taken.close()


def test_a_frame_that_fails_warns_once_and_training_goes_on(digits, monkeypatch):
    x, t, x_test, t_test = digits

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(callback, "layer_norms", broken)
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0, verbose=False)
    stream = StubStream(watchers=1)

    class Swap(Callback):
        def on_train_begin(self, model, optimizer):
            dashboard.stream = stream

    try:
        with pytest.warns(
            RuntimeWarning, match="Dashboard: building a frame failed .KeyError: 'boom'."
        ) as caught:
            history = mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[dashboard, Swap()], verbose=0)
    finally:
        dashboard.close()
    assert len(caught) == 1 and len(history["loss"]) == 2 and history.stop_reason is None
    assert stream.published == [] and dashboard.frame is None


def test_mismatched_validation_data_fails_before_the_first_step(digits):
    x, t, x_test, t_test = digits
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test[:5]), verbose=False)
    with pytest.raises(ValueError, match="Dashboard: validation_data has 359 inputs and 5 targets"):
        mlp().fit(x, t, epochs=1, callbacks=[dashboard], verbose=0)
    assert dashboard.server is None


# -- the protocol ---------------------------------------------------------------------------


class WaitForWatchers(Callback):
    """Holds the first step until ``count`` clients listen, then stretches each step."""

    def __init__(self, dashboard, count, seconds=0.01):
        self.dashboard, self.count, self.seconds = dashboard, count, seconds

    def on_train_batch_begin(self, batch, model, optimizer):
        if self.loop.global_step == 0:
            deadline = time.monotonic() + 20
            while self.dashboard.watchers < self.count and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(self.seconds)


def listen(url: str, frames_seen: list, until_finished: bool = True):
    """Read the event stream at url, appending each frame's JSON, until the finished frame."""
    with urllib.request.urlopen(url + "api/events", timeout=30) as stream:
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "frame":
                frames_seen.append(json.loads(line[6:]))
                if until_finished and frames_seen[-1]["status"] == "finished":
                    return


def test_the_page_and_the_api_over_http_with_two_tabs(digits):
    x, t, x_test, t_test = digits
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0.05, verbose=False)
    url = dashboard.start()
    try:
        status, kind, body = get(url)
        assert status == 200 and kind.startswith("text/html") and b"dashboard.js" in body
        for name, expected in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
            status, kind, body = get(url + name)
            assert status == 200 and expected in kind and len(body) > 1000
        assert json.loads(get(url + "api/state")[2]) == {"status": "waiting", "frame": 0}

        tabs = [[], []]
        listeners = [threading.Thread(target=listen, args=(url, seen), daemon=True) for seen in tabs]
        for listener in listeners:
            listener.start()
        mlp().fit(
            x, t, epochs=2, batch_size=50, callbacks=[dashboard, WaitForWatchers(dashboard, 2)], verbose=0
        )
        for listener in listeners:
            listener.join(timeout=20)
        for seen in tabs:  # both tabs saw the run going on and its final frame
            assert seen and seen[-1]["status"] == "finished"
            assert any(frame["status"] == "running" for frame in seen)
            assert seen[-1] == dashboard.frame
        assert dashboard.frames_built >= 3
        assert json.loads(get(url + "api/state")[2]) == dashboard.frame  # a late tab gets the last frame
    finally:
        dashboard.close()


def test_unknown_paths_huge_bodies_and_traversal_are_refused(digits):
    dashboard = Dashboard(port=0, verbose=False)
    url = dashboard.start()
    try:
        for path in ("api/nope", "nope.js", "static/index.html"):
            status, kind, body = get(url + path)
            assert status == 404 and kind == "application/json" and "error" in json.loads(body)
        host, port = dashboard.server.host, dashboard.server.port
        for path in (
            "/../callback.py",
            "/%2e%2e/callback.py",
            "/..%2f..%2fweb/server.py",
            "/../../../../etc/passwd",
        ):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("GET", path)  # sent as is, not normalised by a client
            answer = connection.getresponse()
            body = answer.read()
            connection.close()
            assert answer.status == 404 and b"import" not in body and b"def " not in body, path
            assert "no such" in json.loads(body)["error"]
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.putrequest("POST", "/api/state")
        connection.putheader("Content-Length", str(50_000_000))
        connection.endheaders()  # the body is never sent: the answer comes from the header alone
        answer = connection.getresponse()
        assert answer.status == 413 and "at most" in json.loads(answer.read())["error"]
        connection.close()
        status, _, body = get(url + "api/state")
        assert status == 200  # still up
        request = urllib.request.Request(url + "api/state", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405
    finally:
        dashboard.close()


def test_a_client_that_disconnects_mid_stream_costs_nothing(digits):
    x, t, x_test, t_test = digits
    dashboard = Dashboard(port=0, validation_data=(x_test, t_test), interval=0.02, verbose=False)
    dashboard.start()
    host, port = dashboard.server.host, dashboard.server.port

    class Vanish(Callback):
        """At step 3 a client connects, reads a little of the stream, and vanishes."""

        watchers_later = None

        def on_train_batch_end(self, batch, logs, model, optimizer):
            step = self.loop.global_step
            if step == 3:
                raw = socket.create_connection((host, port), timeout=10)
                raw.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
                deadline = time.monotonic() + 10
                while dashboard.watchers == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)
                raw.recv(100)
                raw.close()
            if step == self.loop.epochs * self.loop.steps - 1:
                Vanish.watchers_later = dashboard.watchers
            time.sleep(0.02)

    try:
        started = time.perf_counter()
        history = mlp().fit(x, t, epochs=2, batch_size=50, callbacks=[dashboard, Vanish()], verbose=0)
        assert time.perf_counter() - started < 20
    finally:
        dashboard.close()
    assert len(history["loss"]) == 2 and history.stop_reason is None
    assert Vanish.watchers_later == 0  # the server noticed, and frames stopped being built
    assert 1 <= dashboard.frames_built < 24


# -- the command line -------------------------------------------------------------------------


def test_fastnn_train_dashboard_runs_to_the_end_unwatched(capsys):
    from fastnn.cli import main

    assert main(["train", "--epochs", "1", "--quiet", "--dashboard", "0"]) == 0
    captured = capsys.readouterr()
    assert "test accuracy" in captured.out
    assert "dashboard: http://127.0.0.1:" in captured.err


def test_fastnn_train_refuses_a_port_out_of_range(capsys):
    from fastnn.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--dashboard", "70000"])
    assert "expected a port in 0..65535, got 70000" in capsys.readouterr().err


def test_the_dashboard_lives_in_the_top_layer():
    assert callback.STATIC_DIR.name == "static" and (callback.STATIC_DIR / "index.html").is_file()
