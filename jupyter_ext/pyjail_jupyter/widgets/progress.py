"""A progress bar widget for build, pull, push, backup and restore."""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as w

from .display import StaticFallback

MAX_LOG_LINES = 12


class ProgressBar(StaticFallback, w.VBox):
    """Title, bar, percentage and status; the last lines of the log below it."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                   layout=w.Layout(width="40%"))
        self.label = w.HTML(f"<b>{html.escape(title)}</b>")
        self.status = w.HTML("")
        self.log_view = w.HTML("")
        self.lines: list[str] = []
        self.done = False
        self.ok: bool | None = None
        self.started = time.monotonic()
        self._last_push = 0.0
        super().__init__([w.HBox([self.label, self.bar, self.status]), self.log_view])

    # the Progress protocol of pyjail.client.ui
    def update(self, current: float | None, total: float | None, text: str = "") -> None:
        if total:
            self.bar.max = float(total)
            self.bar.value = float(min(current or 0, total))
            pct = f"{100.0 * (current or 0) / total:.0f}% "
        else:
            pct = ""
        now = time.monotonic()
        if now - self._last_push > 0.1 or total and current == total:
            self.status.value = html.escape(f"{pct}{text}"[:120])
            self._last_push = now

    def log(self, line: str) -> None:
        self.lines.append(line)
        self.log_view.value = self._log_html()

    def close(self, ok: bool = True, text: str = "") -> None:
        self.done, self.ok = True, ok
        if ok:
            self.bar.value = self.bar.max
        self.bar.bar_style = "success" if ok else "danger"
        elapsed = time.monotonic() - self.started
        self.status.value = html.escape(f"{text} in {elapsed:.1f}s" if text else "")
        self.log_view.value = self._log_html()
        self.refresh_display()

    def _log_html(self) -> str:
        tail = self.lines[-MAX_LOG_LINES:]
        if not tail:
            return ""
        return ("<pre style='margin:0;font-size:85%'>" + html.escape("\n".join(tail))
                + "</pre>")

    def summary(self) -> str:
        state = "running" if not self.done else ("done" if self.ok else "failed")
        pct = 100.0 * self.bar.value / self.bar.max if self.bar.max else 0.0
        return f"{self.title}: {state} {pct:.0f}% {html.unescape(self.status.value)}".strip()

    def fallback_bundle(self) -> dict[str, Any]:
        pct = 100.0 * self.bar.value / self.bar.max if self.bar.max else 0.0
        color = {True: "#4caf50", False: "#e53935", None: "#2196f3"}[self.ok]
        bar = (f"<div style='display:inline-block;width:200px;height:10px;background:#eee'>"
               f"<div style='width:{pct:.0f}%;height:10px;background:{color}'></div></div>")
        return {"text/plain": self.summary(),
                "text/html": f"<div><b>{html.escape(self.title)}</b> {bar} "
                             f"{self.status.value}{self._log_html()}</div>"}
