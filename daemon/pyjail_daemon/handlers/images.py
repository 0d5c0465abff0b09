"""``/images/...``: list, inspect, history, tag, remove, prune, import (``fromSrc``).

Pull (``fromImage``) and push live in ``distribution.py``; ``POST /images/create``
dispatches between pull and import. Import streams the request body through a pipe
into the image store on a worker thread, so a large rootfs tar is never held in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from tornado.web import stream_request_body

from pyjail import errors
from pyjail.images import listing
from pyjail.images.store import Image, unix_seconds

from ..filters import labels_match
from .base import ApiHandler
from .distribution import ImagePullHandler

LIST_FILTERS = {"dangling", "label", "reference", "before", "since", "until"}
PRUNE_FILTERS = {"dangling", "label", "label!", "until"}


def count(engine: Any) -> int:
    return len(engine.images.list())


def containers_by_image(engine: Any) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for c in engine.containers.all():
        users.setdefault(c.record["Image"], []).append(c.id)
    return users


def summary(image: Image, containers: int = -1) -> dict[str, Any]:
    """An ``/images/json`` entry."""
    labels = (image.config.get("config") or {}).get("Labels") or {}
    return {"Id": image.id, "ParentId": "", "RepoTags": list(image.references),
            "RepoDigests": list(image.repo_digests), "Created": unix_seconds(image.created),
            "Size": image.size, "SharedSize": -1, "VirtualSize": image.size, "Labels": labels,
            "Containers": containers}


def usage(engine: Any, containers: list[dict]) -> tuple[list[dict], int]:
    """``/system/df`` images (with container counts) and the size of all their layers."""
    return listing.usage(engine)   # exact: SharedSize, and each layer counted once


def _reference_matches(image: Image, patterns: list[str]) -> bool:
    import fnmatch
    for ref in image.references:
        name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        if any(fnmatch.fnmatch(ref, p) or fnmatch.fnmatch(name, p) for p in patterns):
            return True
    return False


class ImageListHandler(ApiHandler):
    async def get(self) -> None:
        filters = self.query_filters()
        for key in filters:
            if key not in LIST_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        self.write_json(await self.call(self._list, filters))

    def _list(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        engine = self.engine
        images = engine.images.list()
        hidden = set() if self.query_bool("all") else listing.intermediates(engine, images)
        images = [im for im in images if im.id not in hidden]   # build steps, as Docker hides
        created_limits = {}
        for key in ("before", "since"):
            for ref in filters.get(key, []):
                created_limits[key] = unix_seconds(engine.images.resolve(ref).created)
        until = max((engine.parse_time(v) for v in filters.get("until", [])), default=0)
        out = []
        for image in images:
            created = unix_seconds(image.created)
            if filters.get("dangling"):
                dangling = filters["dangling"][0].lower() in ("1", "true")
                if dangling == bool(image.references):
                    continue
            if filters.get("reference") and not _reference_matches(image, filters["reference"]):
                continue
            if not labels_match((image.config.get("config") or {}).get("Labels") or {},
                                filters):
                continue
            if "before" in created_limits and created >= created_limits["before"]:
                continue
            if "since" in created_limits and created <= created_limits["since"]:
                continue
            if until and created * 1_000_000_000 > until:
                continue
            out.append(summary(image))
        return out


class ImageInspectHandler(ApiHandler):
    async def get(self, name: str) -> None:
        store = self.engine.images
        self.write_json(await self.call(lambda: store.inspect(store.resolve(name))))


class ImageHistoryHandler(ApiHandler):
    async def get(self, name: str) -> None:
        store = self.engine.images
        self.write_json(await self.call(lambda: store.history(store.resolve(name))))


class ImageTagHandler(ApiHandler):
    async def post(self, name: str) -> None:
        repo = self.query("repo")
        if not repo:
            raise errors.InvalidArgument("repository name must have at least one component")
        tag = self.query("tag") or ""
        reference = f"{repo}:{tag}" if tag else repo
        await self.call(self._tag, name, reference)
        self.set_status(201)
        self.finish()

    def _tag(self, name: str, reference: str) -> None:
        store = self.engine.images
        store.tag(name, reference)
        image = store.resolve(reference)
        self.engine.events.publish("image", "tag", image.id, {"name": reference})


class ImageHandler(ApiHandler):
    """``DELETE /images/{name}``."""

    async def delete(self, name: str) -> None:
        records = await self.call(self._remove, name, self.query_bool("force"))
        self.write_json(records)

    def _remove(self, name: str, force: bool) -> list[dict[str, str]]:
        engine = self.engine
        records = listing.remove(engine, name, force=force,
                                 prune=not self.query_bool("noprune"))
        for record in records:
            for action, value in record.items():
                action = "untag" if action == "Untagged" else "delete"
                engine.events.publish("image", action, value, {"name": value})
        return records


class ImagePruneHandler(ApiHandler):
    """Dangling images by default; ``dangling=false`` takes every image no container uses."""

    async def post(self) -> None:
        filters = self.query_filters()
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        self.write_json(await self.call_blocking(self._prune, filters))

    def _prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        from pyjail.storage.usage import gone_size, tree_size
        engine = self.engine
        only_dangling = not filters.get("dangling") or filters["dangling"][0].lower() in (
            "1", "true")
        until = max((engine.parse_time(v) for v in filters.get("until", [])), default=0)
        users = containers_by_image(engine)
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        hidden = listing.intermediates(engine)
        for image in engine.images.list():
            if image.id in users or image.id in hidden or (only_dangling and image.references):
                continue
            if until and unix_seconds(image.created) * 1_000_000_000 >= until:
                continue
            if not labels_match((image.config.get("config") or {}).get("Labels") or {},
                                filters):
                continue
            if not engine.images.has_image(image.id):
                continue   # went with its child (a build step)
            try:
                before = {d: tree_size(d) for d in engine.images.layer_dirs(image)}
            except errors.PyjailError:
                before = {}   # a damaged image: removed, not measured
            try:
                records = listing.remove(engine, image.id, force=True)
            except errors.PyjailError:
                continue
            deleted.extend(records)
            reclaimed += gone_size(before)   # measured: the layer dirs that went
            engine.events.publish("image", "delete", image.id, {"name": image.id})
        return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}


@stream_request_body
class ImageCreateHandler(ImagePullHandler):
    """``POST /images/create``: ``fromImage`` pulls, ``fromSrc=-`` imports the body."""

    _pipe: int | None = None
    _import = None

    async def prepare(self) -> None:
        super().prepare()
        source = self.query("fromSrc")
        if source is None:
            return
        if source != "-":
            raise errors.InvalidArgument("importing from a URL is not supported; send the tar "
                                         "as the request body (fromSrc=-)")
        repo, tag = self.query("repo") or "", self.query("tag") or ""
        reference = (f"{repo}:{tag}" if tag else repo) or None
        changes = [c for c in self.get_query_arguments("changes") if c.strip()]
        message = self.query("message") or ""
        read_end, self._pipe = os.pipe2(os.O_CLOEXEC)
        import asyncio
        self._import = asyncio.ensure_future(self.call_blocking(
            self._run_import, read_end, reference, changes, message))

    def _run_import(self, fd: int, reference: str | None, changes: list[str],
                    message: str) -> Image:
        with os.fdopen(fd, "rb") as body:
            image = self.engine.images.import_rootfs(body, reference, changes=changes,
                                                     comment=message)
        self.engine.events.publish("image", "import", image.id, {"name": reference or image.id})
        return image

    async def data_received(self, chunk: bytes) -> None:
        if self._pipe is None:
            return
        try:
            await self.call(_write_all, self._pipe, chunk)
        except OSError:  # the import stopped reading (bad tar): its error tells the client
            self._close_pipe()

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = None

    def on_connection_close(self) -> None:
        self._close_pipe()

    def on_finish(self) -> None:
        self._close_pipe()

    async def post(self) -> None:
        if self._import is None:
            await self.pull()
            return
        self._close_pipe()
        image = await self._import
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": image.id}) + "\r\n")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
