"""Server-Sent Events: one publisher, any number of listening clients.

Each client has a short queue. ``publish`` never blocks: when a client is slow, its
oldest queued event is dropped, so it always receives the newest frame and a stalled
client costs the publisher nothing.
"""

from __future__ import annotations

import json
import queue
import threading

__all__ = ["EventStream", "format_event"]

_CLOSED = object()


def format_event(event: str, data) -> bytes:
    """One SSE message: ``event: NAME`` and ``data: JSON`` lines, then a blank line."""
    if "\n" in event or "\r" in event:
        raise ValueError(f"format_event: the event name must be one line, got {event!r}")
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), allow_nan=False)
    lines = "".join(f"data: {line}\n" for line in payload.split("\n"))
    return f"event: {event}\n{lines}\n".encode()


class EventStream:
    """Fan-out of events to every connected client.

    ``backlog`` is how many events a client may have waiting before the oldest is dropped.
    ``latest`` keeps the last event of each name, which a new client receives first (so a
    tab opened mid-run shows the current state at once).
    """

    def __init__(self, backlog: int = 8):
        if backlog < 1:
            raise ValueError(f"EventStream: backlog must be >= 1, got {backlog}")
        self.backlog = backlog
        self._clients: set[queue.Queue] = set()
        self._latest: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def watchers(self) -> int:
        """How many clients are connected now (0: nobody is watching)."""
        with self._lock:
            return len(self._clients)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def publish(self, event: str, data) -> None:
        """Send ``data`` (JSON-encodable, or a str sent as is) as event ``event`` to every client."""
        message = format_event(event, data)
        with self._lock:
            if self._closed:
                return
            self._latest[event] = message
            clients = list(self._clients)
        for client in clients:
            _put_dropping_oldest(client, message)

    def subscribe(self) -> queue.Queue:
        """A new client's queue, primed with the latest event of each name."""
        client: queue.Queue = queue.Queue(maxsize=self.backlog)
        with self._lock:
            for message in list(self._latest.values())[-self.backlog :]:
                client.put_nowait(message)
            if self._closed:
                _put_dropping_oldest(client, _CLOSED)
            else:
                self._clients.add(client)
        return client

    def unsubscribe(self, client: queue.Queue) -> None:
        """Forget a client (its connection ended)."""
        with self._lock:
            self._clients.discard(client)

    def close(self) -> None:
        """End every client's stream; later publishes are ignored."""
        with self._lock:
            self._closed = True
            clients = list(self._clients)
            self._clients.clear()
        for client in clients:
            _put_dropping_oldest(client, _CLOSED)

    @staticmethod
    def is_end(message) -> bool:
        """True for the marker :meth:`close` puts in each client's queue."""
        return message is _CLOSED


def _put_dropping_oldest(client: queue.Queue, message) -> None:
    while True:
        try:
            client.put_nowait(message)
            return
        except queue.Full:
            try:
                client.get_nowait()
            except queue.Empty:
                pass
