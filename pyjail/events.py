"""Docker-format events: a bounded history for since/until queries and live subscribers."""

from __future__ import annotations

import collections
import queue
import threading
import time


class EventBus:
    def __init__(self, history: int = 10000) -> None:
        self.history: collections.deque[dict] = collections.deque(maxlen=history)
        self.subscribers: list[queue.SimpleQueue] = []
        self.lock = threading.Lock()

    def publish(self, kind: str, action: str, actor_id: str, attributes: dict) -> dict:
        now = time.time_ns()
        event = {"Type": kind, "Action": action,
                 "Actor": {"ID": actor_id, "Attributes": attributes},
                 "scope": "local", "time": now // 1_000_000_000, "timeNano": now}
        if kind in ("container", "image"):   # dockerd's legacy fields, kept for old clients
            event.update(status=action, id=actor_id, **({"from": attributes["image"]}
                                                         if "image" in attributes else {}))
        with self.lock:
            self.history.append(event)
            subscribers = list(self.subscribers)
        for sub in subscribers:
            sub.put(event)
        return event

    def subscribe(self) -> queue.SimpleQueue:
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self.lock:
            self.subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self.lock:
            if q in self.subscribers:
                self.subscribers.remove(q)

    def since(self, since_ns: int, until_ns: int = 0) -> list[dict]:
        with self.lock:
            return [e for e in self.history
                    if e["timeNano"] >= since_ns and (not until_ns or e["timeNano"] <= until_ns)]
