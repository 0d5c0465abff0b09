"""``/containers/{id}/archive``: what ``docker cp`` and docker-py's get/put_archive use."""

from __future__ import annotations

import io
import threading

from tornado.iostream import StreamClosedError

from pyjail.containers import archive

from ..streams import iterate_in_thread
from .base import ApiHandler

STAT_HEADER = "X-Docker-Container-Path-Stat"


class ContainerArchiveHandler(ApiHandler):
    _stop: threading.Event

    def on_connection_close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()

    async def head(self, ref: str) -> None:
        name, host, _tree = await self.call(archive.resolve, self.engine, ref,
                                            self.query("path", ""))
        self.set_header(STAT_HEADER, archive.stat_header(name, host))

    async def get(self, ref: str) -> None:
        header, chunks = await self.call(archive.get_archive, self.engine, ref,
                                         self.query("path", ""))
        self.set_header(STAT_HEADER, header)
        self.set_header("Content-Type", "application/x-tar")
        self._stop = threading.Event()
        try:
            async for chunk in iterate_in_thread(self.ctx.blocking, lambda: chunks, self._stop):
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return
        finally:
            self._stop.set()
        self.end_stream()

    async def put(self, ref: str) -> None:
        await self.call(archive.put_archive, self.engine, ref, self.query("path", ""),
                        io.BytesIO(self.request.body))
        self.set_status(200)
        self.finish()
