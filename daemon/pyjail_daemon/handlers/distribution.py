"""``POST /images/create?fromImage=`` (pull) and ``POST /images/{name}/push``.

Both stream Docker's JSON progress lines. The engine call runs on its own thread and
hands each message to the IOLoop; the response headers go out with the first message, so
an error before any progress (unknown manifest, refused credentials) is still a plain
HTTP error as dockerd sends it, and a later one is the stream's ``errorDetail``. A client
that goes away stops the transfer at its next progress message.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from tornado.iostream import StreamClosedError

from pyjail import errors
from pyjail.images.registry import decode_registry_auth
from pyjail.images.registry.progress import error as error_message

from .. import errors as api_errors
from .base import ApiHandler

_DONE = object()


class ClientGone(errors.PyjailError):
    """The HTTP client disconnected; the pull/push stops at its next progress message."""


class _ProgressStream(ApiHandler):
    """Run ``work(progress)`` on a thread; stream what it reports as JSON lines."""

    def credentials(self) -> Any:
        return decode_registry_auth(self.request.headers.get("X-Registry-Auth"))

    async def stream(self, work: Callable[[Callable[[dict[str, Any]], None]], Any]) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()

        def progress(msg: dict[str, Any]) -> None:
            if gone.is_set():
                raise ClientGone("the client went away")
            loop.call_soon_threadsafe(queue.put_nowait, msg)

        task = asyncio.ensure_future(self.call_blocking(work, progress))
        task.add_done_callback(lambda _f: queue.put_nowait(_DONE))
        started = False
        while (msg := await queue.get()) is not _DONE:
            if gone.is_set():
                continue
            if not started:
                started = True
                self.set_status(200)
                self.set_header("Content-Type", "application/json")
            try:
                self.write(json.dumps(msg) + "\r\n")
                await self.flush()
            except StreamClosedError:
                gone.set()
        exc = task.exception()
        if exc is not None and not started:
            raise exc   # nothing sent yet: an ordinary HTTP error
        if exc is not None and not gone.is_set():
            if not isinstance(exc, errors.PyjailError):
                self.log_exception(type(exc), exc, exc.__traceback__)
            _, message = api_errors.status_and_message(exc)
            self.write(json.dumps(error_message(message)) + "\r\n")
        if not started:
            self.set_header("Content-Type", "application/json")
        self.end_stream()


def pull_reference(from_image: str, tag: str | None) -> str:
    """Docker's fromImage + tag: the tag may be a digest, or come inside fromImage."""
    if not tag:
        return from_image
    sep = "@" if tag.startswith("sha256:") else ":"
    base = from_image
    if "@" in base:
        base = base.split("@", 1)[0]
    elif base.rfind(":") > base.rfind("/"):
        base = base[:base.rfind(":")]
    return f"{base}{sep}{tag}"


class ImagePullHandler(_ProgressStream):
    """``POST /images/create?fromImage=…&tag=…&platform=…``."""

    async def post(self) -> None:
        await self.pull()

    async def pull(self) -> None:
        from_image = self.query("fromImage")
        if not from_image:
            raise errors.InvalidArgument("fromImage is required")
        reference = pull_reference(from_image, self.query("tag"))
        credentials = self.credentials()
        platform = self.query("platform") or None
        await self.stream(lambda progress: self.engine.pull_image(
            reference, credentials=credentials, platform=platform, progress=progress))


class ImagePushHandler(_ProgressStream):
    """``POST /images/{name}/push?tag=…``: an empty tag pushes every tag of the repository."""

    async def post(self, name: str) -> None:
        tag = self.query("tag") or ""
        if "@" in name or (name.rfind(":") > name.rfind("/") and tag):
            raise errors.InvalidArgument(f"invalid reference format: {name}")
        reference = f"{name}:{tag}" if tag else name
        all_tags = not tag and not (name.rfind(":") > name.rfind("/"))
        credentials = self.credentials()
        await self.stream(lambda progress: self.engine.push_image(
            reference, credentials=credentials, all_tags=all_tags, progress=progress))
