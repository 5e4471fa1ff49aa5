"""The playground's web routes on :mod:`fastnn.web`: the page, its settings, controls and exports.

==========================  ==================================================================
route                       what it does
==========================  ==================================================================
``GET /``                   the page (``static/index.html``, ``playground.js``, ``.css``)
``GET /api/events``         Server-Sent Events: ``frame`` after every epoch, ``points``
``GET /api/state``          the current frame (JSON), with ``playing``
``GET /api/points``         the train and test points
``GET /api/spec``           every setting's allowed values and default
``POST /api/config``        change settings: ``{"lr": 0.1, "layers": [8, 8]}``
``POST /api/control``       ``{"action": "play" | "pause" | "step" | "reset" | "regenerate"}``
``POST /api/weight``        ``{"layer": L, "from": i or null (the bias), "to": j, "value": v}``
``POST /api/points``        add points ``{"points": [[x1, x2, label], ...], "replace": false}``
``POST /api/upload``        a CSV body of ``x1,x2,label`` rows (a header line is skipped)
``GET /api/export.npz``     the network as a fastnn model file (``fnn.load`` reads it)
``GET /api/export.py``      a Python script that rebuilds and trains it
==========================  ==================================================================

Bad input answers 400 with ``{"error": "... names the field and its allowed range"}``.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from ..web import EventStream, HTTPError, WebServer
from .runner import Runner
from .session import MAX_POINTS, Session
from .settings import DEFAULTS, SPEC, SettingsError, describe

STATIC = Path(__file__).resolve().parent / "static"
ACTIONS = ("play", "pause", "step", "reset", "regenerate")
#: The largest weight or bias the page may set by hand.
MAX_WEIGHT = 100.0


class Playground:
    """A session, its training thread and its web server. ``start()``; ``url``; ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, settings: dict | None = None):
        self.session = Session(settings)
        self.events = EventStream()
        self.server = WebServer(STATIC, host=host, port=port, max_body=1_000_000, name="fastnn playground")
        self.runner = Runner(self.session, self.events.publish, lambda: self.events.watchers)
        for method, path, handler in (
            ("GET", "/api/state", self.state),
            ("GET", "/api/points", lambda request: self.session.points()),
            ("GET", "/api/spec", self.spec),
            ("POST", "/api/config", self.config),
            ("POST", "/api/control", self.control),
            ("POST", "/api/weight", self.weight),
            ("POST", "/api/points", self.add_points),
            ("POST", "/api/upload", self.upload),
            ("GET", "/api/export.npz", self.export_npz),
            ("GET", "/api/export.py", self.export_script),
        ):
            self.server.route(method, path, handler)
        self.server.stream("/api/events", self.events)
        self.runner.publish_frame(points=True)

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/``."""
        return self.server.url

    def start(self) -> Playground:
        """Serve in a background thread; returns self."""
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop the training thread and the server."""
        self.runner.close()
        self.server.stop()

    def serve_until_interrupted(self) -> None:
        """Serve in the foreground until Ctrl-C, then stop cleanly."""
        try:
            self.server.serve_until_interrupted()
        finally:
            self.runner.close()

    # -- handlers ---------------------------------------------------------------------------

    def state(self, request):
        """``GET /api/state``: the current frame, ``playing`` and the frames sent."""
        return {**self.session.frame(), "playing": self.runner.playing, "frames": self.runner.frames}

    def spec(self, request):
        """``GET /api/spec``: every setting's kind, allowed values, default and help."""
        return {
            name: {"kind": kind, "allowed": list(allowed), "default": DEFAULTS[name], "help": describe(name)}
            for name, (kind, allowed) in SPEC.items()
        }

    def config(self, request):
        """``POST /api/config``: apply settings (400 naming a bad field)."""
        changes = _object(request)
        data_before = self.session.points()
        try:
            settings = self.session.update(changes)
        except SettingsError as error:
            raise HTTPError(400, str(error)) from None
        self.runner.publish_frame(points=self.session.points() != data_before)
        return {"settings": settings}

    def control(self, request):
        """``POST /api/control``: play, pause, step, reset or regenerate."""
        body = _object(request)
        action = body.get("action")
        if action not in ACTIONS:
            expected = ", ".join(ACTIONS)
            raise HTTPError(400, f"playground control 'action': expected one of {expected}, got {action!r}")
        if action == "play":
            self.runner.play()
        elif action == "pause":
            self.runner.pause()
        elif action == "step":
            self.runner.step()
        elif action == "reset":
            self.session.reset()
            self.runner.publish_frame()
        else:
            self.session.regenerate()
            self.runner.publish_frame(points=True)
        return {"playing": self.runner.playing, "epoch": self.session.epoch}

    def weight(self, request):
        """``POST /api/weight``: set one weight or bias by hand."""
        body = _object(request)
        layer = _int_field(body, "layer")
        target = _int_field(body, "to")
        source = None if body.get("from") is None else _int_field(body, "from")
        value = body.get("value")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise HTTPError(400, f"playground weight 'value': expected a finite number, got {value!r}")
        if abs(value) > MAX_WEIGHT:
            limit = f"{MAX_WEIGHT:g}"
            raise HTTPError(
                400, f"playground weight 'value': expected a number from -{limit} to {limit}, got {value!r}"
            )
        try:
            self.session.set_weight(layer, source, target, float(value))
        except SettingsError as error:
            raise HTTPError(400, str(error)) from None
        self.runner.publish_frame()
        return {"ok": True}

    def add_points(self, request):
        """``POST /api/points``: add (or replace with) the user's own points."""
        body = _object(request)
        try:
            count = self.session.add_points(body.get("points"), replace=bool(body.get("replace", False)))
        except SettingsError as error:
            raise HTTPError(400, str(error)) from None
        self.runner.publish_frame(points=True)
        return {"points": count, "settings": self.session.settings}

    def upload(self, request):
        """``POST /api/upload``: replace the points with a CSV body's rows."""
        try:
            text = request.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HTTPError(400, "playground upload: the CSV must be UTF-8 text") from None
        rows = parse_csv(text)
        try:
            count = self.session.add_points(rows, replace=True)
        except SettingsError as error:
            raise HTTPError(400, str(error)) from None
        self.runner.publish_frame(points=True)
        return {"points": count, "settings": self.session.settings}

    def export_npz(self, request):
        """``GET /api/export.npz``: the network as a fastnn model file."""
        return self.session.export_npz(), "application/octet-stream", "playground.npz"

    def export_script(self, request):
        """``GET /api/export.py``: a script that rebuilds and trains it."""
        return self.session.export_script().encode(), "text/x-python; charset=utf-8", "playground.py"


def parse_csv(text: str) -> list[list[float]]:
    """Rows ``x1,x2,label`` (commas, semicolons, tabs or spaces); a first line that is not
    numbers is a header. HTTPError 400 naming the first bad line."""
    rows = []
    lines = [line.strip() for line in text.splitlines()]
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        fields = [f for f in line.replace(";", ",").replace("\t", ",").replace(" ", ",").split(",") if f]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows and number == next(i for i, text in enumerate(lines, start=1) if text):
                continue  # the header
            raise HTTPError(
                400, f"playground upload: line {number} is not x1,x2,label: {line[:60]!r}"
            ) from None
        if len(values) != 3:
            raise HTTPError(
                400, f"playground upload: line {number} has {len(values)} values, not 3 (x1,x2,label)"
            )
        rows.append(values)
        if len(rows) > MAX_POINTS:
            raise HTTPError(400, f"playground upload: at most {MAX_POINTS} points")
    if not rows:
        raise HTTPError(400, "playground upload: no rows of x1,x2,label in the CSV")
    return rows


def _object(request) -> dict:
    body = request.json()
    if not isinstance(body, dict):
        raise HTTPError(400, f"{request.path}: expected a JSON object, got {type(body).__name__}")
    return body


def _int_field(body: dict, name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(400, f"playground weight '{name}': expected an integer index, got {value!r}")
    return value
