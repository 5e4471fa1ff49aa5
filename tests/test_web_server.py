"""fastnn.web: the server behind the playground and the dashboard, over plain HTTP.

Every answer is checked as a browser or a hostile client would see it: JSON routes,
bad bodies, unknown paths, path traversal, event streams with several and with
vanishing clients, Ctrl-C.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from fastnn.web import EventStream, HTTPError, WebServer
from fastnn.web.events import format_event


@pytest.fixture
def static(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>page</title>")
    (folder / "app.js").write_text("console.log(1);")
    (tmp_path / "secret.txt").write_text("outside the static folder")
    return folder


@pytest.fixture
def server(static):
    events = EventStream(backlog=4)
    server = WebServer(static, port=0, max_body=1000, name="testpage")

    def echo(request):
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("n"), int) or not 1 <= body["n"] <= 8:
            raise HTTPError(400, "testpage: n must be an integer in 1..8")
        return {"n": body["n"], "query": request.query}

    def crash(request):
        raise RuntimeError("the handler broke")

    server.route("POST", "/api/echo", echo)
    server.route("GET", "/api/state", lambda request: {"ok": True, "query": request.query})
    server.route("GET", "/api/crash", crash)
    server.route("GET", "/api/download", lambda request: (b"\x00\x01", "application/octet-stream", "m.npz"))
    server.stream("/api/events", events)
    server.events = events
    server.start()
    yield server
    server.stop()


def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def error_of(data):
    return json.loads(data)["error"]


def test_json_route_answers_and_parses_the_query(server):
    response, data = request(server, "GET", "/api/state?a=1&a=2&b=x")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data) == {"ok": True, "query": {"a": "2", "b": "x"}}


def test_post_json_body(server):
    response, data = request(server, "POST", "/api/echo", body=json.dumps({"n": 3}))
    assert response.status == 200 and json.loads(data)["n"] == 3


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"n": 1e9}', "1..8"),
    ],
)
def test_bad_bodies_get_a_400_with_a_message(server, body, needle):
    response, data = request(server, "POST", "/api/echo", body=body)
    assert response.status == 400
    assert needle in error_of(data)
    assert request(server, "GET", "/api/state")[0].status == 200  # still up


def test_a_huge_body_gets_413_without_being_read(server):
    response, data = request(server, "POST", "/api/echo", body=b"x" * 5000)
    assert response.status == 413
    assert "5000 bytes" in error_of(data) and "1000" in error_of(data)
    response, _ = request(server, "POST", "/api/echo", body=b"1", headers={"Content-Length": "-5"})
    assert response.status == 400


def test_unknown_paths_and_wrong_methods(server):
    response, data = request(server, "GET", "/api/nothing")
    assert response.status == 404 and "/api/nothing" in error_of(data)
    response, data = request(server, "DELETE", "/api/echo")
    assert response.status == 405 and "POST" in error_of(data)
    response, data = request(server, "POST", "/api/events", body=b"{}")
    assert response.status == 405


def test_a_handler_exception_is_a_500_and_the_server_stays_up(server):
    response, data = request(server, "GET", "/api/crash")
    assert response.status == 500 and "the handler broke" in error_of(data)
    assert request(server, "GET", "/api/state")[0].status == 200


def test_downloads_carry_a_filename(server):
    response, data = request(server, "GET", "/api/download")
    assert data == b"\x00\x01"
    assert response.getheader("Content-Disposition") == 'attachment; filename="m.npz"'


def test_static_files_and_index(server):
    response, data = request(server, "GET", "/")
    assert response.status == 200 and b"<title>page</title>" in data
    assert response.getheader("Content-Type").startswith("text/html")
    response, data = request(server, "GET", "/app.js")
    assert response.status == 200 and data == b"console.log(1);"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/static/../../secret.txt",
        "/..%2fsecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/nothing.html",
    ],
)
def test_no_path_traversal(server, path):
    response, data = request(server, "GET", path)
    assert response.status == 404
    assert b"outside the static folder" not in data and b"root:" not in data


def read_events(response, count, timeout=5.0):
    """The next ``count`` (event, data) pairs from an open event-stream response."""
    found, event = [], None
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        line = response.fp.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            found.append((event, json.loads(line[len("data: ") :])))
    return found


def open_stream(server):
    return urllib.request.urlopen(server.url + "api/events", timeout=10)


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_several_tabs_receive_every_event(server):
    first, second = open_stream(server), open_stream(server)
    assert wait_for(lambda: server.events.watchers == 2)
    server.events.publish("frame", {"epoch": 1})
    server.events.publish("frame", {"epoch": 2})
    assert read_events(first, 2) == [("frame", {"epoch": 1}), ("frame", {"epoch": 2})]
    assert read_events(second, 2) == [("frame", {"epoch": 1}), ("frame", {"epoch": 2})]
    assert first.getheader("Content-Type") == "text/event-stream"
    first.close(), second.close()


def test_a_new_tab_gets_the_latest_event_of_each_name_first(server):
    server.events.publish("config", {"layers": [8]})
    server.events.publish("frame", {"epoch": 1})
    server.events.publish("frame", {"epoch": 7})
    stream = open_stream(server)
    assert read_events(stream, 2) == [("config", {"layers": [8]}), ("frame", {"epoch": 7})]
    stream.close()


def test_a_client_that_disconnects_mid_stream_is_forgotten(server):
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert wait_for(lambda: server.events.watchers == 1)
    sock.close()
    for epoch in range(50):  # writes to the closed socket fail, and the client is dropped
        server.events.publish("frame", {"epoch": epoch})
        if server.events.watchers == 0:
            break
        time.sleep(0.02)
    assert server.events.watchers == 0
    assert request(server, "GET", "/api/state")[0].status == 200


def test_a_slow_client_gets_the_newest_events_and_never_blocks_the_publisher():
    events = EventStream(backlog=3)
    client = events.subscribe()
    start = time.perf_counter()
    for epoch in range(10_000):
        events.publish("frame", {"epoch": epoch})
    assert time.perf_counter() - start < 2.0
    queued = [client.get_nowait() for _ in range(client.qsize())]
    assert queued == [format_event("frame", {"epoch": e}) for e in (9997, 9998, 9999)]


def test_stop_ends_open_streams(server):
    stream = open_stream(server)
    assert wait_for(lambda: server.events.watchers == 1)
    server.stop()
    assert stream.read() in (b"", b": connected\n\n")
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "api/state", timeout=2)


def test_format_event_encodes_json_and_refuses_newlines_in_names():
    assert format_event("frame", {"a": [1, 2]}) == b'event: frame\ndata: {"a":[1,2]}\n\n'
    assert format_event("log", "two\nlines") == b"event: log\ndata: two\ndata: lines\n\n"
    with pytest.raises(ValueError, match="one line"):
        format_event("a\nb", {})
    with pytest.raises(ValueError):
        format_event("frame", {"loss": float("nan")})  # not JSON: browsers would reject it


def test_binds_to_loopback_by_default(static):
    server = WebServer(static, port=0)
    try:
        assert server._httpd.server_address[0] == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.stop()


def test_a_busy_port_gets_a_clear_error(static):
    first = WebServer(static, port=0, name="playground")
    try:
        with socket.socket() as probe:  # a port some other program holds without SO_REUSEADDR
            probe.bind(("127.0.0.1", 0))
            probe.listen()
            port = probe.getsockname()[1]
            with pytest.raises(OSError, match=rf"playground: cannot listen on 127.0.0.1:{port}.*--port"):
                WebServer(static, port=port, name="playground")
    finally:
        first.stop()


def test_bad_arguments(static, tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        WebServer(tmp_path / "missing", port=0)
    with pytest.raises(ValueError, match="port must be in 0..65535"):
        WebServer(static, port=70000)


def test_ctrl_c_stops_the_server_cleanly(static):
    script = textwrap.dedent(
        f"""
        import sys
        from fastnn.web import WebServer
        server = WebServer({str(static)!r}, port=0)
        print(server.port, flush=True)
        server.serve_until_interrupted()
        print("stopped", flush=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        port = int(process.stdout.readline())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
        os.kill(process.pid, signal.SIGINT)
        out, _ = process.communicate(timeout=10)
        assert process.returncode == 0 and "stopped" in out
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_ctrl_c_while_the_server_thread_starts_stops_cleanly(static):
    """The race the test above can hit on a busy machine: Ctrl-C arrives while ``start``
    still waits for its thread. Raised there on purpose, in a child process (a
    KeyboardInterrupt that escaped would end this pytest run)."""
    script = textwrap.dedent(
        f"""
        from fastnn.web import WebServer
        server = WebServer({str(static)!r}, port=0)
        started = server.start
        def interrupted_start():
            started()
            raise KeyboardInterrupt
        server.start = interrupted_start
        server.serve_until_interrupted()
        print("stopped", server._thread is None, flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stopped", "True"]
