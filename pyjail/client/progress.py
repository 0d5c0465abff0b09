"""Turning the daemon's JSON progress streams into progress-bar updates.

Build streams say ``{"stream": "Step 2/5 : RUN ..."}``; pull and push stream per-layer
``{"id", "status", "progressDetail": {"current", "total"}}``; pyjail's backup and restore
send ``{"status", "progress": {"current", "total"}}``. Every stream may end with
``{"error": ...}`` (raised as one line) and an ``{"aux": {"ID": ...}}`` result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import ClientError, one_line
from .ui import Progress

_STEP = re.compile(r"^Step (\d+)/(\d+) :")


class StreamTracker:
    """Feeds one JSON stream into a ``Progress``; remembers the result ID and the output."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.result_id: str | None = None
        self.lines: list[str] = []
        self._layers: dict[str, tuple[int, int]] = {}
        self._step = (0, 0)

    def feed(self, event: dict[str, Any]) -> None:
        if event.get("error") or event.get("errorDetail"):
            message = event.get("error") or (event.get("errorDetail") or {}).get("message")
            raise ClientError(one_line(str(message)))
        aux = event.get("aux")
        if isinstance(aux, dict) and (aux.get("ID") or aux.get("Id")):
            self.result_id = aux.get("ID") or aux.get("Id")
        if "stream" in event:
            self._stream_line(str(event["stream"]))
            return
        status = str(event.get("status") or "")
        detail = event.get("progressDetail") or event.get("progress") or {}
        if isinstance(detail, dict) and detail.get("total"):
            key = str(event.get("id") or "_")
            self._layers[key] = (int(detail.get("current") or 0), int(detail["total"]))
            current = sum(c for c, _ in self._layers.values())
            total = sum(t for _, t in self._layers.values())
            self.progress.update(current, total, status)
        elif status:
            line = f"{event['id']}: {status}" if event.get("id") else status
            self.lines.append(line)
            self.progress.update(None, None, line)

    def _stream_line(self, text: str) -> None:
        for line in text.splitlines():
            if not line.strip():
                continue
            self.lines.append(line)
            match = _STEP.match(line)
            if match:
                self._step = (int(match.group(1)), int(match.group(2)))
                self.progress.update(self._step[0] - 1, self._step[1], line)
            self.progress.log(line)
            found = re.match(r"^Successfully built ([0-9a-f]+)", line)
            if found and not self.result_id:
                self.result_id = found.group(1)

    def run(self, events: Iterable[dict[str, Any]], done_text: str = "done") -> str | None:
        ok = False
        try:
            for event in events:
                self.feed(event)
            if self._step[1]:
                self.progress.update(self._step[1], self._step[1], "")
            ok = True
        finally:
            self.progress.close(ok, done_text if ok else "failed")
        return self.result_id
