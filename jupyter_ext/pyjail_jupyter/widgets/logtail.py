"""A live log tail: follows a container's output into the notebook until it stops."""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from pyjail.client.live import LogFollower

from .display import StaticFallback

if TYPE_CHECKING:
    from pyjail.client.connection import Client

MAX_LINES = 500
PUSH_EVERY = 0.2  # seconds between view updates: a chatty container must not flood the comm


class LogTail(StaticFallback, w.VBox):
    """Follows ``container``'s log in a background thread; ``stop()`` or the button ends it."""

    def __init__(self, client: Client, container: str, *, tail: str = "all",
                 timestamps: bool = False, since: str | None = None,
                 max_lines: int = MAX_LINES) -> None:
        self.container = container
        self.max_lines = max_lines
        self.lines: list[str] = []
        self._partial = ""
        self._lock = threading.Lock()
        self.error: str | None = None
        self.finished = threading.Event()
        self._follower = LogFollower(client, container, tail=tail, timestamps=timestamps,
                                     since=since)
        self.header = w.HTML(self._header_html("following"))
        self.stop_button = w.Button(description="Stop", button_style="warning",
                                    layout=w.Layout(width="80px"))
        self.stop_button.on_click(lambda _b: self.stop())
        self.view = w.HTML("<pre></pre>", layout=w.Layout(max_height="300px",
                                                           overflow="auto"))
        super().__init__([w.HBox([self.header, self.stop_button]), self.view])
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"pyjail-logs-{container}")
        self._thread.start()
        self._first.wait(0.5)  # show what is already there in the first rendering

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines) + (("\n" + self._partial) if self._partial else "")

    def _header_html(self, state: str) -> str:
        return f"<b>logs of {html.escape(self.container)}</b> <i>({html.escape(state)})</i>"

    def _add(self, text: str) -> None:
        with self._lock:
            pieces = (self._partial + text).split("\n")
            self._partial = pieces.pop()
            self.lines.extend(pieces)
            del self.lines[:-self.max_lines]

    def _push(self) -> None:
        self.view.value = "<pre style='margin:0'>" + html.escape(self.text) + "</pre>"

    def _follow(self) -> None:
        state = "ended"
        last = 0.0
        try:
            for _stream, text in self._follower.chunks():
                self._add(text)
                now = time.monotonic()
                if now - last >= PUSH_EVERY or not self._first.is_set():
                    self._push()
                    last = now
                self._first.set()
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not raised in a thread
            self.error = str(exc)
            state = f"error: {exc}"
        finally:
            if self._follower._stopped.is_set():
                state = "stopped"
            self._push()
            self.header.value = self._header_html(state)
            self.stop_button.disabled = True
            self.finished.set()
            self._first.set()
            self.refresh_display()

    def stop(self) -> None:
        self._follower.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def fallback_bundle(self) -> dict[str, Any]:
        text = self.text
        return {"text/plain": f"logs of {self.container}:\n{text}",
                "text/html": f"<div>{self.header.value}<pre>{html.escape(text)}</pre></div>"}
