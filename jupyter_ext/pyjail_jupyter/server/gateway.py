"""The server extension's only way to the daemon: ``pyjail.client`` calls on a thread pool.

docker-py blocks, so every call runs on an executor and the server's IOLoop never waits on
the daemon. Failures come back as one ``DaemonError`` carrying the HTTP status the daemon
answered with (or the status its ``ClientError`` class stands for), so handlers pass the
daemon's verdict through instead of turning everything into a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pyjail.client import errors
from pyjail.client.connection import Client

from .config import PyjailJupyterConfig

T = TypeVar("T")

_STATUS: dict[type[errors.ClientError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.BadRequest: 400,
    errors.NotSupported: 501,
    errors.DaemonUnavailable: 503,
    errors.ServerError: 500,
}


class DaemonError(Exception):
    """The daemon refused or failed: ``status`` and a one-line ``message`` for the browser."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_of(exc: errors.ClientError) -> int:
    """The HTTP status a client error class stands for (500 when nothing more precise)."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


@contextlib.contextmanager
def daemon_errors(client: Client) -> Iterator[None]:
    """docker-py and client failures → ``DaemonError``, keeping the daemon's exact status."""
    from docker import errors as derr
    try:
        with client.translated():
            try:
                yield
            except derr.APIError as exc:
                if exc.status_code and exc.status_code >= 400:
                    message = exc.explanation or str(exc)
                    if isinstance(message, bytes):
                        message = message.decode(errors="replace")
                    raise DaemonError(exc.status_code, errors.one_line(message))
                raise
    except errors.ClientError as exc:
        raise DaemonError(status_of(exc), exc.message)


class DaemonGateway:
    """One daemon connection shared by the REST handlers, plus fresh ones for streams."""

    def __init__(self, config: PyjailJupyterConfig) -> None:
        self.config = config
        self.client = Client(config.host, timeout=config.timeout)
        self.host = self.client.host
        self._executor = ThreadPoolExecutor(max_workers=max(1, config.max_workers),
                                            thread_name_prefix="pyjail-jupyter")

    async def call(self, fn: Callable[[Client], T]) -> T:
        """Run ``fn(client)`` on the executor; raises ``DaemonError`` on any daemon failure."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn)

    def _guarded(self, fn: Callable[[Client], Any]) -> Any:
        with daemon_errors(self.client):
            return fn(self.client)

    def reconnect(self, host: str | None) -> None:
        """Talk to another daemon from now on (the sidebar's "daemon address" setting);
        empty means the client's own discovery. Open streams keep their connection."""
        new = Client(host or self.config.host, timeout=self.config.timeout)
        old, self.client, self.host = self.client, new, new.host
        old.close()

    def stream_client(self) -> Client:
        """A connection of its own for a long-lived stream, so closing it touches nothing else."""
        return Client(self.host, timeout=self.config.timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
