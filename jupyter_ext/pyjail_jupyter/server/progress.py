"""Streamed replies: JSON lines relayed from a blocking daemon stream as they arrive.

Builds, backups and restores answer with Docker-style progress lines (``{"status"…}``,
``{"stream"…}``, last ``{"aux"…}`` or ``{"error"…}``). The daemon stream is read on a
thread of its own and every line is written and flushed to the browser at once, so a
``fetch`` reader shows progress while the work runs. A failure before the first line is a
plain HTTP error; after it, a final ``{"error": …}`` line.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError

from pyjail.client.connection import Client

from .gateway import DaemonError, daemon_errors

_DONE = object()


async def relay_lines(handler: web.RequestHandler, client: Client,
                      produce: Callable[[Client], Iterable[dict[str, Any]]]) -> None:
    """Write each item of ``produce(client)`` as one JSON line; closes ``client`` after."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    failure: list[DaemonError] = []

    def pump() -> None:
        try:
            with daemon_errors(client):
                for item in produce(client):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
        except DaemonError as exc:
            failure.append(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the browser, not lost
            failure.append(DaemonError(500, str(exc)))
        finally:
            client.close()
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    threading.Thread(target=pump, name="pyjail-jupyter-progress", daemon=True).start()
    started = False
    gone = False
    while (item := await queue.get()) is not _DONE:
        if gone:
            continue
        if not started:
            started = True
            handler.set_status(200)
            handler.set_header("Content-Type", "application/x-ndjson")
        try:
            handler.write(json.dumps(item, default=str) + "\n")
            await handler.flush()
        except StreamClosedError:
            gone = True
    if failure and not started:
        raise web.HTTPError(failure[0].status, "%s", failure[0].message)
    if failure and not gone:
        handler.write(json.dumps({"error": failure[0].message}) + "\n")
    if not gone:
        handler.finish()
