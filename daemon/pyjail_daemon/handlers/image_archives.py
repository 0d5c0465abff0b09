"""``GET /images/get`` and ``/images/{name}/get`` (save), ``POST /images/load``, and
``POST /commit`` (a container's upper dir as a new image layer).

``save`` streams the tar as the engine produces it (a thread yields ~1 MiB chunks, layer
blobs are copied straight from the store), so a large image never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tornado.web import stream_request_body

from pyjail import errors
from pyjail.images import archive
from pyjail.images import commit as commit_mod

from .base import ApiHandler
from .distribution import _ProgressStream


class _TarStream(ApiHandler):
    """Stream chunks from a blocking generator; an error before the first is plain HTTP."""

    async def send_tar(self, make: Callable[[], Iterator[bytes]]) -> None:
        chunks = await self.call(lambda: _Primed(make()))
        await self.stream_chunks(lambda: chunks)


class _Primed:
    """Runs the generator's first step at once, so name errors happen before headers."""

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it
        self._first: list[bytes] = [next(it, b"")]

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            yield self._first.pop()
        yield from self._it


class ImagesGetHandler(_TarStream):
    """``GET /images/get?names=a&names=b``."""

    async def get(self) -> None:
        names = [n for n in self.get_query_arguments("names") if n]
        if not names:
            raise errors.InvalidArgument("no images given to save")
        await self._save(names)

    async def _save(self, names: list[str]) -> None:
        store = self.engine.images
        await self.send_tar(lambda: archive.save(store, names))
        for n in names:
            self.engine._emit("image", "save", n)


class ImageGetHandler(ImagesGetHandler):
    """``GET /images/{name}/get``."""

    async def get(self, name: str) -> None:  # type: ignore[override]
        await self._save([name])


class _BodyReader:
    """Request body chunks handed from the IOLoop to the loading thread as they arrive, so
    the archive is parsed while it is still being received (and never sits in memory whole).

    ``put`` waits while more than ``limit`` bytes are queued; ``read`` blocks for the next
    chunk and returns b"" at the end of the body, or fails if the client went away.
    """

    def __init__(self, limit: int = 16 << 20) -> None:
        self._loop = asyncio.get_running_loop()
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._limit = limit
        self._state = ""          # "" receiving, "end" body complete, "gone" client left
        self._room = asyncio.Event()
        self._room.set()
        self._abandoned = False

    def abandon(self) -> None:
        """The reader stopped (done or failed): drop what is queued and what still comes."""
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._queued = 0
        self._loop.call_soon_threadsafe(self._room.set)

    async def put(self, chunk: bytes) -> None:
        await self._room.wait()
        with self._cond:
            if self._abandoned:
                return
            self._chunks.append(chunk)
            self._queued += len(chunk)
            if self._queued >= self._limit:
                self._room.clear()
            self._cond.notify()

    def close(self, state: str = "end") -> None:
        with self._cond:
            if not self._state:
                self._state = state
            self._cond.notify()

    def _wake(self) -> None:
        if self._queued < self._limit:
            self._room.set()

    def read(self, n: int = -1) -> bytes:
        with self._cond:
            while not self._chunks and not self._state:
                self._cond.wait()
            if self._chunks:
                chunk = self._chunks.popleft()
                self._queued -= len(chunk)
                if self._queued < self._limit:
                    self._loop.call_soon_threadsafe(self._wake)
                return chunk
            if self._state == "gone":
                raise errors.InvalidArgument("the client closed the connection during the load")
            return b""

    read1 = read


@stream_request_body
class ImageLoadHandler(_ProgressStream):
    """``POST /images/load?quiet=``: streamed ``Loaded image: …`` lines; the archive is
    loaded while it arrives."""

    _body: _BodyReader | None = None

    def prepare(self) -> None:
        super().prepare()
        self._body = body = _BodyReader()
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        store = self.engine.images
        lines = self._lines

        def load() -> list[str]:
            try:
                return archive.load(store, body, lambda line: lines.put({"stream": line}))
            finally:
                body.abandon()
                lines.put(None)
        self._loading = asyncio.ensure_future(self.call_blocking(load))
        # a client that leaves mid-body never reaches post(): its failure is expected
        self._loading.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def data_received(self, chunk: bytes) -> None:
        assert self._body is not None
        await self._body.put(chunk)

    def on_connection_close(self) -> None:
        if self._body is not None:
            self._body.close("gone")

    def on_finish(self) -> None:
        if self._body is not None:
            self._body.close("gone")

    async def post(self) -> None:
        assert self._body is not None
        self._body.close()
        loading, lines = self._loading, self._lines

        def relay(progress: Callable[[dict[str, Any]], None]) -> None:
            while (msg := lines.get()) is not None:
                progress(msg)
            for i in loading.result():
                self.engine._emit("image", "load", i)
        await asyncio.wait([loading])
        await self.stream(relay)


class CommitHandler(ApiHandler):
    """``POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=``."""

    async def post(self) -> None:
        ref = self.query("container")
        if not ref:
            raise errors.InvalidArgument("container is required")
        repo = self.query("repo") or ""
        tag = self.query("tag") or ""
        reference = (f"{repo}:{tag}" if tag else repo) or None
        body = self.json_body()
        changes = self.get_query_arguments("changes")
        changes = [line for c in changes for line in c.splitlines()]
        image = await self.call_blocking(
            commit_mod.commit, self.engine, ref, reference, comment=self.query("comment") or "",
            author=self.query("author") or "", changes=changes, config=body or None,
            pause=self.query_bool("pause", True))
        self.write_json({"Id": image.id}, status=201)

