"""The ``Dashboard`` callback: a live web page for any ``fit``.

It serves ``static/`` and two routes with :mod:`fastnn.web`: ``GET /api/state``, the
newest frame as JSON, and ``GET /api/events``, a Server-Sent Events stream of frames.
A frame is one self-contained JSON object (a tab that misses frames loses nothing but
time), built in the training thread between two steps.

What it costs the training:

* every step appends its loss, accuracy and learning rate to a :class:`~.frames.Series`
  (a few additions; the loss is already in the step's logs);
* a frame is built only while a client is watching (``stream.watchers > 0``), between
  two steps, at most once every ``interval`` seconds, and never sooner than its cost
  divided by half the ``budget`` after the last one (:class:`Throttle`): when frames take
  5 ms, ``budget=0.02`` builds one every 0.5 s;
* scoring the held-out samples, the costly part, has the other half of the budget: when
  it takes 100 ms, frames in between reuse its last result for 10 s. So frames take at
  most about ``budget`` of the training time;
* the held-out samples are a fixed subset of at most ``samples``, scored in one
  inference pass.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..callbacks import Callback
from ..web import EventStream, WebServer
from .frames import Series, first_layer_images, held_out_report, layer_norms

__all__ = ["Dashboard"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


class Throttle:
    """When a piece of work may run again: ``interval`` seconds after it last started, and
    not before its cost divided by ``share`` (so it takes at most ``share`` of the time).

    The first run is free (it compiles the inference kernels, once per process), so the
    second comes ``interval`` after it.
    """

    def __init__(self, interval: float, share: float):
        self.interval, self.share = interval, share
        self.next = 0.0
        self.runs = 0

    def due(self, now: float) -> bool:
        return now >= self.next

    def ran(self, started: float, cost: float) -> None:
        self.runs += 1
        self.next = started + max(self.interval, cost / self.share if self.runs > 1 else 0.0)


class Dashboard(Callback):
    """Serve a live page of the training run at ``http://host:port/``.

    Args:
        port: the TCP port (0 picks a free one; :attr:`url` says which).
        host: the address to listen on; the default, loopback, is reachable from this
            machine only.
        validation_data: (x, t) whose subset the page scores (loss, accuracy, confusion
            matrix, misclassified samples); default: fit's validation data, if any.
        held_out_name: what the page calls those samples (default "validation"; the
            ``fastnn train`` command shows its test set as "test").
        samples: at most this many held-out samples are scored (a fixed subset, drawn once
            with ``seed``).
        interval: seconds between frames, at least.
        budget: the largest share of the training time that building frames may take
            (half for the frames, half for scoring the held-out samples in them).
        max_images: filters and misclassified samples drawn, at most.
        max_points: points kept per chart series (older ones are averaged in pairs).
        seed: draws the subset of held-out samples.
        verbose, file: print the page's address to ``file`` (default stderr) when serving starts.

    The server starts with the run (or at :meth:`start`) and keeps serving the final
    frame until :meth:`close` or the end of the process. Several tabs can watch at once;
    a tab that closes costs nothing, and the run goes on, watched or not. In a
    data-parallel fit it serves from rank 0 alone (``root_only``).
    """

    root_only = True

    def __init__(
        self,
        port: int = 8000,
        host: str = "127.0.0.1",
        validation_data=None,
        held_out_name: str | None = None,
        samples: int = 500,
        interval: float = 0.25,
        budget: float = 0.02,
        max_images: int = 24,
        max_points: int = 1000,
        seed: int = 0,
        verbose: bool = True,
        file=None,
    ):
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"Dashboard: port must be an int in 0..65535, got {port!r}")
        for name, value, low in (("samples", samples, 1), ("max_images", max_images, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"Dashboard: {name} must be an int >= {low}, got {value!r}")
        if not interval >= 0:
            raise ValueError(f"Dashboard: interval must be >= 0 seconds, got {interval!r}")
        if not 0 < budget <= 1:
            raise ValueError(f"Dashboard: budget must be in (0, 1], got {budget!r}")
        if validation_data is not None and (
            not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2
        ):
            raise ValueError("Dashboard: validation_data must be a pair (x, t)")
        self.port, self.host = port, host
        self.validation_data = validation_data
        self.held_out_name = held_out_name
        self.samples, self.interval, self.budget = samples, float(interval), float(budget)
        self.max_images, self.max_points, self.seed = max_images, max_points, seed
        self.verbose, self.file = bool(verbose), file
        self.stream: EventStream | None = None
        self.server: WebServer | None = None
        self.frame: dict | None = None  # the newest frame, what GET /api/state answers
        self.frames_built = 0
        self.held_out_seconds = 0.0  # what scoring the held-out samples took in the last frame
        self.failed: str | None = None  # why frames stopped, after a frame failed to build
        self.frame_seconds = 0.0  # time spent building frames, in the training thread
        self.held_out: tuple | None = None  # (x, t) of the subset scored
        self.held_out_indices: np.ndarray | None = None
        self._reset_run()

    # ------------------------------------------------------------ the server

    @property
    def url(self) -> str | None:
        """The page's address, once the server runs."""
        return None if self.server is None else self.server.url

    @property
    def watchers(self) -> int:
        """Tabs connected to the event stream now."""
        return 0 if self.stream is None else self.stream.watchers

    def start(self) -> str:
        """Start serving (if not yet) and return the page's address."""
        if self.server is None:
            self.stream = EventStream()
            try:
                server = WebServer(
                    STATIC_DIR, host=self.host, port=self.port, max_body=1024, name="Dashboard"
                )
            except OSError as error:  # the port is taken: say which argument chooses another
                reason = str(error).split(";")[0]
                raise OSError(f"{reason}; pass another port (0 picks a free one)") from None
            server.route("GET", "/api/state", self._state)
            server.stream("/api/events", self.stream)
            server.start()
            self.server = server
            if self.verbose:
                print(f"dashboard: {server.url}", file=self.file or sys.stderr, flush=True)
        return self.server.url

    def close(self) -> None:
        """Stop serving: every tab's stream ends (the pages keep showing their last frame)."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _state(self, request) -> dict:
        return self.frame if self.frame is not None else {"status": "waiting", "frame": 0}

    # ------------------------------------------------------------ the hooks

    def _reset_run(self) -> None:
        self.steps = Series(("step", "loss", "accuracy", "lr"), self.max_points)
        self.validation = Series(("step", "loss", "accuracy"), self.max_points)
        self.norm_steps: list[int] = []
        self.grad_norms: list[list] = []
        self.weight_norms: list[list] = []
        # frames, and the held-out scoring within them, each get half of the budget
        self._frame_clock = Throttle(self.interval, self.budget / 2)
        self._held_out_clock = Throttle(self.interval, self.budget / 2)
        self._held_out_report = None
        self._samples_seen = 0
        self._correct_before = 0

    def check(self, loop) -> None:
        if self.validation_data is None and loop.validation is None:
            return
        x, t = self.validation_data if self.validation_data is not None else loop.validation
        if len(x) != len(t) or len(x) == 0:
            raise ValueError(
                f"Dashboard: validation_data has {len(x)} inputs and {len(t)} targets; "
                "expected the same, non-zero count"
            )

    def on_train_begin(self, model, optimizer) -> None:
        self._reset_run()
        self.start()
        loop = self.loop
        data = self.validation_data if self.validation_data is not None else loop.validation
        if data is not None:
            x, t = data
            x, t = model.prepare_input(x, "Dashboard"), model.prepare_targets(t, "Dashboard")
            n = min(self.samples, len(x))
            index = np.sort(np.random.default_rng(self.seed).choice(len(x), size=n, replace=False))
            self.held_out, self.held_out_indices = (x[index], t[index]), index
        self._held_out_name = self.held_out_name or "validation"
        self._started = time.perf_counter()
        self._start_step = loop.global_step
        self._correct_before = loop.correct
        self._last_rate = (self._started, 0)

    def on_epoch_begin(self, epoch, model, optimizer) -> None:
        self._correct_before = 0

    def on_train_batch_end(self, batch, logs, model, optimizer) -> None:
        loop = self.loop
        samples = getattr(loop, "batch_samples", loop.batch_size)
        correct = loop.correct - self._correct_before
        self._correct_before = loop.correct
        self._samples_seen += samples
        self.steps.append(loop.global_step, logs["loss"], correct / samples, optimizer.lr)
        now = time.perf_counter()
        if self._frame_clock.due(now) and self.stream is not None and self.stream.watchers > 0:
            self._publish(model, optimizer, now)

    def on_train_end(self, model, optimizer) -> None:
        if self.stream is None:
            return
        self._publish(model, optimizer, time.perf_counter(), finished=True)

    # ------------------------------------------------------------ frames

    def _publish(self, model, optimizer, now: float, finished: bool = False) -> None:
        if self.failed is not None:
            return
        score = finished or self._held_out_clock.due(now)
        try:
            frame = self.build_frame(model, optimizer, finished=finished, score_held_out=score)
            self.stream.publish("frame", frame)
        except Exception as error:  # the page must never end the training it shows
            self.failed = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"Dashboard: building a frame failed ({self.failed}); the page stops updating, "
                "training goes on",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self.frame = frame
        cost = time.perf_counter() - now
        self.frames_built += 1
        self.frame_seconds += cost
        self._frame_clock.ran(now, cost - (self.held_out_seconds if score else 0.0))
        if score:
            self._held_out_clock.ran(now, self.held_out_seconds)

    def build_frame(self, model, optimizer, finished: bool = False, score_held_out: bool = True) -> dict:
        """The page's whole state now (JSON data); see docs/dashboard.md for its fields.

        ``score_held_out=False`` reuses the last scoring of the held-out samples (the
        frame's costly part, timed in :attr:`held_out_seconds`).
        """
        loop = self.loop
        now = time.perf_counter()
        step = loop.global_step
        self.held_out_seconds = 0.0
        if self.held_out is not None and (score_held_out or self._held_out_report is None):
            held_out = held_out_report(model, *self.held_out, max_images=self.max_images)
            held_out.update(name=self._held_out_name, step=step)
            if held_out["misclassified"] is not None:  # indices into the whole held-out set
                subset = held_out["misclassified"]["index"]
                held_out["misclassified"]["index"] = self.held_out_indices[subset].tolist()
            self.validation.append(
                step, *(np.nan if held_out[k] is None else held_out[k] for k in ("loss", "accuracy"))
            )
            self._held_out_report = held_out
            self.held_out_seconds = time.perf_counter() - now
        held_out = self._held_out_report
        norms = layer_norms(model.layers)
        self.norm_steps.append(step)
        self.grad_norms.append([layer["grad_norm"] for layer in norms])
        self.weight_norms.append([layer["weight_norm"] for layer in norms])
        if len(self.norm_steps) > self.max_points:
            del self.norm_steps[::2], self.grad_norms[::2], self.weight_norms[::2]
        elapsed = now - self._started
        total_steps = loop.epochs * loop.steps
        done = step - self._start_step
        before, seen_before = self._last_rate
        self._last_rate = (now, self._samples_seen)
        recent = (self._samples_seen - seen_before) / (now - before) if now > before else None
        eta = (total_steps - step) * elapsed / done if done and not finished else 0.0 if finished else None
        history = loop.history
        return {
            "frame": self.frames_built + 1,
            "status": "finished" if finished else "running",
            "run": {
                "model": type(model).__name__,
                "layers": len(model.layers),
                "parameters": int(model.num_params),
                "optimizer": type(optimizer).__name__,
                "epochs": int(loop.epochs),
                "steps_per_epoch": int(loop.steps),
                "batch_size": int(loop.batch_size),
                "train_samples": int(loop.n_samples),
            },
            "position": {
                "epochs_done": int(loop.epoch),
                "batch": int(loop.batch),
                "step": int(step),
                "total_steps": int(total_steps),
                "stop_reason": history.stop_reason,
            },
            "time": {
                "elapsed": elapsed,
                "samples_per_second": recent,
                "mean_samples_per_second": self._samples_seen / elapsed if elapsed > 0 else None,
                "eta": eta,
                "dashboard_seconds": self.frame_seconds,
                "dashboard_share": self.frame_seconds / elapsed if elapsed > 0 else 0.0,
            },
            "lr": float(optimizer.lr),
            "steps": self.steps.to_dict(),
            "validation": self.validation.to_dict(),
            "epochs": {key: [_number(v) for v in values] for key, values in history.items()},
            "layers": norms,
            "norms": {
                "step": list(self.norm_steps),
                "grad": list(self.grad_norms),
                "weight": list(self.weight_norms),
            },
            "filters": first_layer_images(model.layers, model.input_shape, self.max_images),
            "held_out": held_out,
        }


def _number(value):
    value = float(value)
    return value if np.isfinite(value) else None
