"""``GET /images/get`` and ``/images/{name}/get`` (save), ``POST /images/load``, and
``POST /commit`` (a container's upper dir as a new image layer).

``save`` streams the tar as the engine produces it (a thread yields ~1 MiB chunks, layer
blobs are copied straight from the store), so a large image never sits in memory whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

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


class ImageLoadHandler(_ProgressStream):
    """``POST /images/load?quiet=``: streamed ``Loaded image: …`` lines."""

    async def post(self) -> None:
        body = self.request.body
        store = self.engine.images

        def work(progress: Callable[[dict[str, Any]], None]) -> None:
            ids = archive.load(store, io.BytesIO(body), lambda line: progress({"stream": line}))
            for i in ids:
                self.engine._emit("image", "load", i)
        await self.stream(work)


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

