"""``/containers/{id}/archive``: what ``docker cp`` and docker-py's get/put_archive use."""

from __future__ import annotations

import io

from pyjail.containers import archive

from .base import ApiHandler

STAT_HEADER = "X-Docker-Container-Path-Stat"


class ContainerArchiveHandler(ApiHandler):
    async def head(self, ref: str) -> None:
        name, host, _tree = await self.call(archive.resolve, self.engine, ref,
                                            self.query("path", ""))
        self.set_header(STAT_HEADER, archive.stat_header(name, host))

    async def get(self, ref: str) -> None:
        header, chunks = await self.call(archive.get_archive, self.engine, ref,
                                         self.query("path", ""))
        self.set_header(STAT_HEADER, header)
        await self.stream_chunks(lambda: chunks)

    async def put(self, ref: str) -> None:
        await self.call(archive.put_archive, self.engine, ref, self.query("path", ""),
                        io.BytesIO(self.request.body))
        self.set_status(200)
        self.finish()
