"""The HTTP server behind fastnn's pages: JSON routes, static files, Server-Sent Events.

Built on the standard library's ``ThreadingHTTPServer``, one thread per connection. A
handler's error becomes a JSON answer (``{"error": message}``) and the server stays up.
Static files come only from ``static_dir``: a path that resolves outside it is a 404.
"""

from __future__ import annotations

import json
import mimetypes
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from fastnn.web.events import EventStream

__all__ = ["HTTPError", "Request", "WebServer"]

KEEPALIVE_SECONDS = 10.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class HTTPError(Exception):
    """Raise in a handler to answer ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


class Request:
    """What a route handler sees: ``method``, ``path``, ``query`` (str -> str), ``body`` (bytes)."""

    def __init__(self, method: str, path: str, query: dict[str, str], body: bytes, headers):
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.headers = headers

    def json(self):
        """The body parsed as JSON; HTTPError 400 naming the problem if it is not valid JSON."""
        if not self.body:
            raise HTTPError(400, f"{self.method} {self.path}: expected a JSON body, got an empty one")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPError(400, f"{self.method} {self.path}: the body is not valid JSON ({exc})") from None


Handler = Callable[[Request], object]


class WebServer:
    """A local web server for one page: routes, a static folder and event streams.

    ``host`` defaults to loopback, so nothing listens beyond this machine unless asked.
    ``port=0`` picks a free port (``url`` tells which). ``max_body`` bounds a request body
    in bytes (larger: 413 without reading it). ``name`` prefixes error messages.
    """

    def __init__(
        self,
        static_dir,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_body: int = 1_000_000,
        name: str = "fastnn",
    ):
        self.static_dir = Path(static_dir).resolve()
        if not self.static_dir.is_dir():
            raise ValueError(f"WebServer: static_dir {str(static_dir)!r} is not a folder")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"{name}: port must be in 0..65535, got {port}")
        self.host = host
        self.max_body = int(max_body)
        self.name = name
        self._routes: dict[str, dict[str, Handler]] = {}
        self._streams: dict[str, EventStream] = {}
        self._thread: threading.Thread | None = None
        try:
            self._httpd = _Server((host, int(port)), _make_handler(self))
        except OSError as exc:
            raise OSError(
                f"{name}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "pass another --port (0 picks a free one)"
            ) from None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when constructed with port 0)."""
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}/"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler(request)``.

        The handler returns a dict or list (sent as JSON), ``None`` (204), ``(bytes,
        content_type)`` or ``(bytes, content_type, filename)`` (a download), or raises
        HTTPError.
        """
        self._routes.setdefault(path, {})[method.upper()] = handler

    def stream(self, path: str, events: EventStream) -> None:
        """Serve ``events`` as ``text/event-stream`` at ``GET path``."""
        self._streams[path] = events

    def start(self) -> WebServer:
        """Serve in a background daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name=f"{self.name}-server", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """End every stream, stop serving and close the socket."""
        for events in self._streams.values():
            events.close()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def serve_until_interrupted(self) -> None:
        """Serve in the foreground until Ctrl-C, then stop cleanly (also a Ctrl-C that comes
        while the server thread is still starting)."""
        try:
            self.start()
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _make_handler(server: WebServer):
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fastnn"

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            try:
                self._answer(method)
            except HTTPError as exc:
                self._send_json(exc.status, {"error": exc.message})
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as exc:  # a handler's bug must not take the server down
                self._send_json(500, {"error": f"{server.name}: {type(exc).__name__}: {exc}"})

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            body = self._read_body()
            if path in server._streams:
                if method != "GET":
                    raise HTTPError(405, f"{server.name}: {path} answers GET only, got {method}")
                self._serve_events(server._streams[path])
                return
            if path in server._routes:
                handlers = server._routes[path]
                if method not in handlers:
                    allowed = ", ".join(sorted(handlers))
                    raise HTTPError(405, f"{server.name}: {path} answers {allowed}, got {method}")
                self._send_result(handlers[method](Request(method, path, query, body, self.headers)))
                return
            if method == "GET" and not path.startswith("/api/"):
                self._serve_static(path)
                return
            raise HTTPError(404, f"{server.name}: no such path {path!r}")

        def _read_body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if length is None:
                return b""
            try:
                size = int(length)
            except ValueError:
                raise HTTPError(400, f"{server.name}: bad Content-Length {length!r}") from None
            if size < 0:
                raise HTTPError(400, f"{server.name}: bad Content-Length {length!r}")
            if size > server.max_body:
                self.close_connection = True
                raise HTTPError(413, f"{server.name}: the body has {size} bytes, at most {server.max_body}")
            return self.rfile.read(size)

        def _send_result(self, result) -> None:
            if result is None:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif isinstance(result, tuple):
                data, content_type, *filename = result
                headers = {}
                if filename:
                    headers["Content-Disposition"] = f'attachment; filename="{filename[0]}"'
                self._send_bytes(200, data, content_type, headers)
            else:
                self._send_json(200, result)

        def _send_json(self, status: int, payload) -> None:
            data = json.dumps(payload, allow_nan=False).encode()
            self._send_bytes(status, data, "application/json", {"Cache-Control": "no-store"})

        def _send_bytes(self, status: int, data: bytes, content_type: str, headers=None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _serve_static(self, path: str) -> None:
            relative = path.lstrip("/") or "index.html"
            target = (server.static_dir / relative).resolve()
            if not target.is_relative_to(server.static_dir) or not target.is_file():
                raise HTTPError(404, f"{server.name}: no such file {path!r}")
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type.endswith("javascript"):
                content_type += "; charset=utf-8"
            self._send_bytes(200, target.read_bytes(), content_type, {"Cache-Control": "no-cache"})

        def _serve_events(self, events: EventStream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            client = events.subscribe()
            try:
                self.wfile.write(b": connected\n\n")
                self.wfile.flush()
                while True:
                    try:
                        message = client.get(timeout=KEEPALIVE_SECONDS)
                    except queue.Empty:
                        message = b": keepalive\n\n"
                    if EventStream.is_end(message):
                        return
                    self.wfile.write(message)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return
            finally:
                events.unsubscribe(client)

    return _Handler
