"""Reading json-file container logs: since/until/tail/timestamps, and following."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..supervisor.logfile import parse_rfc3339_nano


@dataclass
class LogEntry:
    stream: str          # "stdout" | "stderr"
    data: bytes
    time: str            # RFC 3339 nano
    time_ns: int


def _parse(line: bytes) -> LogEntry | None:
    try:
        rec = json.loads(line)
        t = rec["time"]
        return LogEntry(rec.get("stream", "stdout"), rec.get("log", "").encode(), t,
                        parse_rfc3339_nano(t))
    except (ValueError, KeyError):
        return None


def _tail_lines(path: str, n: int) -> tuple[list[bytes], int]:
    """The last n lines without reading the whole file; returns (lines, end offset)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        pos, data = end, b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if pos > 0:
            lines = lines[1:]
        return lines[-n:] if n else [], end


def read_logs(path: str, *, since_ns: int = 0, until_ns: int = 0, tail: int | None = None,
              stdout: bool = True, stderr: bool = True, follow: bool = False,
              is_running: Callable[[], bool] | None = None,
              stop: Callable[[], bool] | None = None, poll: float = 0.05) -> Iterator[LogEntry]:
    """Yield entries; with ``follow`` keep going until the container stops (or ``stop()``)."""
    streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}

    def wanted(entry: LogEntry | None) -> bool:
        return (entry is not None and entry.stream in streams and entry.time_ns >= since_ns
                and (not until_ns or entry.time_ns <= until_ns))

    if not os.path.exists(path):
        return
    if tail is not None and tail >= 0:
        lines, offset = _tail_lines(path, tail)
        for line in lines:
            entry = _parse(line)
            if wanted(entry):
                yield entry
    else:
        offset = 0
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                entry = _parse(line)
                if wanted(entry):
                    yield entry
    if not follow:
        return
    pending = b""
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            chunk = f.read(65536)
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    entry = _parse(line)
                    if wanted(entry):
                        yield entry
                continue
            if until_ns and time.time_ns() > until_ns:
                return
            if stop is not None and stop():
                return
            if is_running is not None and not is_running():
                rest = f.read()
                for line in (pending + rest).split(b"\n"):
                    entry = _parse(line) if line else None
                    if wanted(entry):
                        yield entry
                return
            time.sleep(poll)
