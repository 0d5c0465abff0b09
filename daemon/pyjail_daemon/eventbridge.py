"""Moves engine events (published on engine threads) onto the IOLoop, to every listener.

One subscription to the engine's EventBus and one thread for the whole daemon, however
many ``GET /events`` clients there are; each client gets its own asyncio queue.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyjail.events import EventBus

_STOP = object()


class EventBridge:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.listeners: set[asyncio.Queue] = set()
        self._source = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Subscribe; call from the IOLoop's thread."""
        self._loop = asyncio.get_running_loop()
        self._source = self.bus.subscribe()
        self._thread = threading.Thread(target=self._pump, daemon=True, name="pyjaild-events")
        self._thread.start()

    def stop(self) -> None:
        if self._source is not None:
            self.bus.unsubscribe(self._source)
            self._source.put(_STOP)
            self._source = None
        for queue in list(self.listeners):
            queue.put_nowait(None)

    def _pump(self) -> None:
        source, loop = self._source, self._loop
        assert source is not None and loop is not None
        while True:
            event = source.get()
            if event is _STOP:
                return
            try:
                loop.call_soon_threadsafe(self._fan_out, event)
            except RuntimeError:  # the loop is closed: we are shutting down
                return

    def _fan_out(self, event: dict) -> None:
        for queue in self.listeners:
            queue.put_nowait(event)

    def listen(self) -> asyncio.Queue:
        """A queue that receives every event from now on (``None`` means: stop)."""
        queue: asyncio.Queue = asyncio.Queue()
        self.listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue) -> None:
        self.listeners.discard(queue)

    @property
    def count(self) -> int:
        return len(self.listeners)
