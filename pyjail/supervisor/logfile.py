"""Docker's json-file log format: one JSON object per line, written by the supervisor.

Lines are cut at newlines (and at 16 KiB, as Docker does, without the newline), each
stamped with RFC 3339 nanosecond UTC time, so `docker logs --timestamps/--since` work.
"""

from __future__ import annotations

import json
import os
import time

MAX_LINE = 16 * 1024


def rfc3339_nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_rfc3339_nano(text: str) -> int:
    """Inverse of rfc3339_nano (also accepts fewer fraction digits and a +00:00 zone)."""
    import calendar
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1]
    elif text.endswith("+00:00"):
        text = text[:-6]
    main, _, frac = text.partition(".")
    secs = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


class JsonFileLog:
    """Appends json-file records; holds partial lines per stream until a newline arrives."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        records = []
        now = rfc3339_nano()
        start = 0
        while True:
            nl = buf.find(b"\n", start, start + MAX_LINE)
            if nl >= 0:
                records.append(self._record(buf[start:nl + 1], stream, now))
                start = nl + 1
            elif len(buf) - start >= MAX_LINE:
                records.append(self._record(buf[start:start + MAX_LINE], stream, now))
                start += MAX_LINE
            else:
                break
        self._partial[stream] = buf[start:]
        if records:
            os.write(self.fd, b"".join(records))

    @staticmethod
    def _record(chunk: bytes, stream: str, now: str) -> bytes:
        return (json.dumps({"log": chunk.decode("utf-8", errors="replace"), "stream": stream,
                            "time": now}, ensure_ascii=False) + "\n").encode()

    def flush_partial(self) -> None:
        now = rfc3339_nano()
        records = [self._record(data, stream, now) for stream, data in self._partial.items() if data]
        self._partial = {"stdout": b"", "stderr": b""}
        if records:
            os.write(self.fd, b"".join(records))

    def close(self) -> None:
        if self.fd >= 0:
            self.flush_partial()
            os.close(self.fd)
            self.fd = -1
