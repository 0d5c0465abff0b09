"""What a command needs from where it runs: a terminal, or a notebook with widgets.

Commands write output and report progress through a ``Frontend``. ``TextFrontend`` is
the terminal's (and a kernel-less IPython's); the notebook's lives in ``pyjail_jupyter``
and swaps in widgets where a kernel can show them.
"""

from __future__ import annotations

import codecs
import sys
import threading
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .connection import Client


class Progress(Protocol):
    def update(self, current: float | None, total: float | None, text: str = "") -> None: ...

    def log(self, line: str) -> None: ...

    def close(self, ok: bool = True, text: str = "") -> None: ...


class NullProgress:
    """``-q``: progress nobody sees."""

    def update(self, current: float | None, total: float | None, text: str = "") -> None:
        pass

    def log(self, line: str) -> None:
        pass

    def close(self, ok: bool = True, text: str = "") -> None:
        pass


class TextProgress:
    """A one-line bar redrawn in place on a terminal; plain status lines elsewhere."""

    WIDTH = 30

    def __init__(self, title: str, stream: Any = None) -> None:
        self.title = title
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = ""
        self._drawn = False

    def update(self, current: float | None, total: float | None, text: str = "") -> None:
        if total:
            frac = max(0.0, min(1.0, (current or 0) / total))
            filled = int(frac * self.WIDTH)
            bar = "[" + "=" * filled + ">" * (filled < self.WIDTH) + " " * (
                self.WIDTH - filled - 1) + "]"
            line = f"{self.title} {bar} {frac * 100:5.1f}% {text}".rstrip()
        else:
            line = f"{self.title}: {text}".rstrip(": ")
        if line == self._last:
            return
        self._last = line
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        elif text and not total:
            self.stream.write(line + "\n")
        self.stream.flush()

    def log(self, line: str) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False
        self.stream.write(line.rstrip("\n") + "\n")
        self.stream.flush()

    def close(self, ok: bool = True, text: str = "") -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
        if text:
            self.stream.write(f"{self.title}: {text}\n")
        self.stream.flush()


class OutputSink:
    """Decodes a container's byte streams incrementally (UTF-8 may split across chunks)."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                          for s in ("stdout", "stderr")}
        self.parts: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def feed(self, stream: str, data: bytes, final: bool = False) -> None:
        text = self._decoders[stream].decode(data, final)
        if text:
            with self._lock:
                self.parts.append((stream, text))
            self.frontend.write(text, stream)

    def finish(self) -> None:
        for stream in ("stdout", "stderr"):
            self.feed(stream, b"", final=True)

    def text(self, stream: str | None = None) -> str:
        return "".join(t for s, t in self.parts if stream is None or s == stream)


class Frontend:
    """Text in a terminal. Subclasses override what they can show better."""

    rich = False  # True where DataFrames and widgets can be displayed

    def write(self, text: str, stream: str = "stdout") -> None:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write(text)
        out.flush()

    def progress(self, title: str, quiet: bool = False) -> Progress:
        return NullProgress() if quiet else TextProgress(title)

    def follow_logs(self, client: Client, container: str, *, tail: str = "all",
                    timestamps: bool = False, since: str | None = None) -> Any:
        """Print a container's log as it grows, until it stops or Ctrl-C."""
        from .live import LogFollower
        follower = LogFollower(client, container, tail=tail, timestamps=timestamps,
                               since=since)
        try:
            for stream, text in follower.chunks():
                self.write(text, stream)
        except KeyboardInterrupt:
            pass
        finally:
            follower.stop()
        return None

    def live_stats(self, client: Client, containers: list[str], *, interval: float = 1.0,
                   duration: float | None = None, wait: bool = True) -> Any:
        """Print one line per container per sample, until the time is up or Ctrl-C."""
        from .live import StatsSampler
        from .tables import Table
        from .views import STATS
        sampler = StatsSampler(client, containers, interval=interval, duration=duration)
        header = True
        try:
            for rows in sampler.samples():
                text = Table(STATS, rows).to_text()
                lines = text.splitlines()
                self.write("\n".join(lines if header else lines[1:]) + "\n")
                header = False
        except KeyboardInterrupt:
            pass
        finally:
            sampler.stop()
        return sampler.history_table()
