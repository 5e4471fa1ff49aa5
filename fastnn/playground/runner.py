"""The playground's training thread: one epoch, then one frame to the page, while playing."""

from __future__ import annotations

import threading
import time

from .._config import set_num_threads
from .session import Session

#: Numba threads in the training thread. The playground's arrays are tiny (batches of at most
#: 30, a 10,000-point grid of <= 8 features): one thread beats a parallel kernel's fork and
#: join: 2.5-4x more frames per second on a busy 2-core machine (benchmarks/bench_playground.py --threads).
TRAINING_THREADS = 1


class Runner:
    """Trains ``session`` in a daemon thread while playing and publishes what the page draws.

    ``publish(event, data)`` is an :class:`fastnn.web.EventStream`'s publish; ``watchers()``
    says how many pages listen: with none, epochs run without computing frames (the last
    epoch of a run, where training stops on its own, always publishes one). Events:
    ``frame`` (:meth:`Session.frame` plus ``playing``) and ``points`` (:meth:`Session.points`).
    """

    def __init__(self, session: Session, publish, watchers=lambda: 1):
        self.session = session
        self._publish = publish
        self._watchers = watchers
        self._playing = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="playground-training", daemon=True)
        self._thread.start()
        self.frames = 0  # frames published, for the page's frames-per-second figure

    @property
    def playing(self) -> bool:
        """Whether the training thread is running epochs."""
        return self._playing.is_set()

    def play(self) -> None:
        """Run epochs until paused or stopped (epoch limit, stop loss, divergence)."""
        with self.session.lock:
            self.session.stopped = None
        self._playing.set()
        self.publish_frame()

    def pause(self) -> None:
        """Stop after the current epoch."""
        self._playing.clear()
        self.publish_frame()

    def step(self) -> None:
        """One epoch now (the page's step button); pauses first."""
        self._playing.clear()
        self.session.train_epoch()
        self.publish_frame()

    def publish_frame(self, points: bool = False, always: bool = True) -> None:
        """Send the current frame (and the points, after they changed) to every page.

        The training loop passes ``always=False``: with no page watching it skips the frame.
        Every other change publishes one, so a page that connects later starts from it.
        """
        with self.session.lock:
            if points:
                self._publish("points", self.session.points())
            if always or self._watchers():
                self._publish("frame", {**self.session.frame(), "playing": self.playing})
                self.frames += 1

    def close(self) -> None:
        """End the training thread."""
        self._closed.set()
        self._playing.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        set_num_threads(TRAINING_THREADS)  # thread-local: the web threads keep theirs
        while not self._closed.is_set():
            if not self._playing.wait(timeout=0.2) or self._closed.is_set():
                continue
            with self.session.lock:
                limit = self.session.settings["max_epochs"]
                if limit and self.session.epoch >= limit:  # play pressed at the limit: train no further
                    self.session.stopped = f"epoch limit {limit} reached"
                else:
                    self.session.train_epoch()
                if self.session.stopped:
                    self._playing.clear()
            self.publish_frame(always=not self.playing)
            time.sleep(0.001)  # let the web threads take the lock between epochs
