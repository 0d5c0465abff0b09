"""Docker's JSON progress messages (the ``/images/create`` and ``/push`` stream lines)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[dict[str, Any]], None]


def status(text: str, id_: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"status": text}
    if id_ is not None:
        msg["progressDetail"] = {}
        msg["id"] = id_
    return msg


def bar(current: int, total: int) -> str:
    """The ``progress`` string older clients print: ``[=====>    ]  1.2MB/2.3MB``."""
    width = 50
    filled = min(width, int(width * current / total)) if total > 0 else 0
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
    return f"[{arrow}] {_size(current)}/{_size(total)}"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n}B"


def detail(text: str, id_: str, current: int, total: int) -> dict[str, Any]:
    return {"status": text, "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total), "id": id_}


def error(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}


class Throttle:
    """At most one byte-count update per ``interval`` per id (the stream stays small)."""

    def __init__(self, progress: Progress, text: str, id_: str, total: int,
                 interval: float = 0.1) -> None:
        self.progress, self.text, self.id, self.total = progress, text, id_, total
        self.interval = interval
        self.current = 0
        self._last = 0.0

    def add(self, n: int) -> None:
        self.current += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.progress(detail(self.text, self.id, self.current, self.total))


def short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def ignore(_msg: dict[str, Any]) -> None:
    """The default sink: no one is watching."""
