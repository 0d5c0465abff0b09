"""Following things over time: a container's log, and resource samples of containers.

Shared by the terminal (which prints) and the notebook widgets (which draw). Each one
can be stopped from another thread: ``stop()`` closes the HTTP response the reader is
blocked on.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import errors
from .tables import Table
from .views import STATS, stats_row

if TYPE_CHECKING:
    from .connection import Client

_STREAMS = {0: "stdout", 1: "stdout", 2: "stderr"}


def demux_frames(chunks: Iterator[bytes], tty: bool) -> Iterator[tuple[str, bytes]]:
    """Docker's 8-byte-header framing (non-TTY) → (stream, payload); TTY data is stdout."""
    if tty:
        for chunk in chunks:
            if chunk:
                yield "stdout", chunk
        return
    buf = b""
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 8:
            kind, length = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + length:
                break
            yield _STREAMS.get(kind, "stdout"), buf[8:8 + length]
            buf = buf[8 + length:]


class LogFollower:
    """``GET /containers/{id}/logs?follow=1`` as (stream, text) pieces."""

    def __init__(self, client: Client, container: str, *, tail: str = "all",
                 timestamps: bool = False, since: str | None = None) -> None:
        self.client = client
        self.container = container
        self.params: dict[str, Any] = {"follow": 1, "stdout": 1, "stderr": 1,
                                       "tail": tail or "all", "timestamps": int(timestamps)}
        if since:
            self.params["since"] = since
        self._resp: Any = None
        self._stopped = threading.Event()

    def chunks(self) -> Iterator[tuple[str, str]]:
        import codecs
        api = self.client.api
        with self.client.translated():
            info = api.inspect_container(self.container)
            tty = bool((info.get("Config") or {}).get("Tty"))
            self._resp = api._get(api._url("/containers/{0}/logs", info["Id"]),
                                  params=self.params, stream=True, timeout=None)
            api._raise_for_status(self._resp)
        if self._stopped.is_set():
            self._resp.close()
            return
        decoders = {s: codecs.getincrementaldecoder("utf-8")("replace")
                    for s in ("stdout", "stderr")}
        try:
            for stream, data in demux_frames(self._resp.iter_content(chunk_size=None), tty):
                text = decoders[stream].decode(data)
                if text:
                    yield stream, text
        except Exception:  # noqa: BLE001 - a closed response ends the follow
            if not self._stopped.is_set():
                raise
        finally:
            self._resp.close()

    def stop(self) -> None:
        self._stopped.set()
        resp = self._resp
        if resp is not None:
            try:
                resp.raw._fp.fp.raw._sock.shutdown(2)  # wake the blocked reader
            except (AttributeError, OSError):
                pass
            resp.close()


class StatsSampler:
    """One ``stats`` sample per container every ``interval`` seconds.

    Uses ``one-shot`` samples and computes CPU % against the previous sample itself, so
    one sample costs one quick request on dockerd too (its ``stream=false`` waits 1 s).
    """

    def __init__(self, client: Client, containers: list[str], *, interval: float = 1.0,
                 duration: float | None = None) -> None:
        self.client = client
        self.names = list(containers)
        self.interval = max(0.05, interval)
        self.duration = duration
        self.history: list[dict[str, Any]] = []
        self._previous: dict[str, dict[str, Any]] = {}
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pyjail-stats")

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _targets(self) -> list[str]:
        if self.names:
            return self.names
        with self.client.translated():
            return [c["Id"] for c in self.client.api.containers()]

    def _one(self, ref: str) -> dict[str, Any] | None:
        api = self.client.api
        try:
            with self.client.translated():
                sample = api.stats(ref, stream=False, one_shot=True)
        except errors.NotFound:
            return None
        if not (sample.get("cpu_stats") or {}).get("system_cpu_usage"):
            return None  # not running (any more)
        key = sample.get("id") or ref
        previous = self._previous.get(key)
        self._previous[key] = sample
        if previous is None:
            return None
        sample["precpu_stats"] = previous.get("cpu_stats") or {}
        return stats_row(sample)

    def sample_once(self, targets: list[str]) -> list[dict[str, Any]]:
        rows = [r for r in self._pool.map(self._one, targets) if r is not None]
        self.history.extend(rows)
        return rows

    def samples(self) -> Iterator[list[dict[str, Any]]]:
        """Rows per tick until the duration ends, ``stop()``, or nothing runs any more."""
        started = time.monotonic()
        try:
            targets = self._targets()
            self.sample_once(targets)  # primes the CPU deltas
            while not self._stopped.is_set():
                if self.duration is not None and time.monotonic() - started >= self.duration:
                    break
                self._stopped.wait(self.interval)
                if self._stopped.is_set():
                    break
                rows = self.sample_once(targets)
                if not rows and not any(self._alive(k) for k in targets):
                    break
                if rows:
                    yield rows
        finally:
            self._pool.shutdown(wait=False)

    def _alive(self, ref: str) -> bool:
        try:
            with self.client.translated():
                return bool(self.client.api.inspect_container(ref)["State"]["Running"])
        except errors.ClientError:
            return False

    def history_table(self) -> Table:
        return Table(STATS, list(self.history))
