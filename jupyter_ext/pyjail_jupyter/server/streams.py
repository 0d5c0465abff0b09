"""The three things a browser follows live: a container's log, its stats, daemon events.

Each source is a blocking iterator of JSON-ready dicts read on a thread of its own (they
last as long as the WebSocket), and a ``stop()`` that may be called from the IOLoop
thread to unblock that reader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

from pyjail.client.connection import Client
from pyjail.client.live import LogFollower, StatsSampler


class Source(Protocol):
    def items(self) -> Iterator[dict[str, Any]]: ...

    def stop(self) -> None: ...


class LogSource:
    """``{"stream": "stdout"|"stderr", "text": …}`` pieces of ``logs --follow``."""

    def __init__(self, client: Client, container: str, tail: str) -> None:
        self._follower = LogFollower(client, container, tail=tail)

    def items(self) -> Iterator[dict[str, Any]]:
        for stream, text in self._follower.chunks():
            yield {"stream": stream, "text": text}

    def stop(self) -> None:
        self._follower.stop()


class StatsSource:
    """One row per tick with the columns of ``pyjail stats`` (CPU %, memory, I/O, pids)."""

    def __init__(self, client: Client, container: str, interval: float) -> None:
        self._sampler = StatsSampler(client, [container], interval=interval)

    def items(self) -> Iterator[dict[str, Any]]:
        for rows in self._sampler.samples():
            yield from rows

    def stop(self) -> None:
        self._sampler.stop()


class EventSource:
    """The daemon's ``/events`` stream, Docker's event objects unchanged.

    ``since`` (Unix seconds) replays what happened from then on before the live events, so
    a browser that reconnects, or acts right after connecting, misses nothing.
    """

    def __init__(self, client: Client, filters: dict[str, list[str]] | None,
                 since: str | None = None) -> None:
        self._client = client
        self._filters = filters or None
        self._since = since or None
        self._stream: Any = None
        self._lock = threading.Lock()
        self._stopped = False

    def items(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            if self._stopped:
                return
            self._stream = self._client.api.events(decode=True, filters=self._filters,
                                                 since=self._since)
        try:
            yield from self._stream
        except Exception:  # noqa: BLE001 - closing the stream from stop() ends the read
            if not self._stopped:
                raise

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - already closed by the daemon is fine
                pass
