"""Byte streams between HTTP clients and the engine: frame headers, the hijack, pumps.

Docker multiplexes stdout and stderr of a non-TTY stream with an 8-byte header per
chunk (stream id, three zero bytes, big-endian length). ``attach`` and ``exec start``
*hijack* the HTTP connection: after a ``101 UPGRADED`` answer it carries raw bytes both
ways, and a client half-close (shutdown of its write side) must reach the container as
stdin EOF while output keeps flowing back. Tornado's IOStream closes the whole socket
on EOF, so hijacked sockets leave Tornado: plain ones for asyncio streams (which keep
the write side open after EOF), TLS ones for a small driver of the SSL socket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Executor
from typing import Any

from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.web import RequestHandler

from pyjail.containers.logs import LogEntry
from pyjail.supervisor.server import STREAM_IDS, frame

__all__ = [
    "MULTIPLEXED_STREAM",
    "RAW_STREAM",
    "ClientStream",
    "PlainClient",
    "TlsClient",
    "encode_log",
    "frame",
    "hijack",
    "iterate_in_thread",
    "splice",
]

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
_CHUNK = 65536
_DISCONNECTED = (OSError, StreamClosedError, ConnectionError, asyncio.IncompleteReadError)


def encode_log(entry: LogEntry, tty: bool, timestamps: bool) -> bytes:
    """One log record as the logs/attach endpoints send it (framed unless TTY)."""
    data = entry.data
    if timestamps:
        data = entry.time.encode() + b" " + data
    return data if tty else frame(STREAM_IDS[entry.stream], data)


class ClientStream:
    """A hijacked client connection: raw bytes both ways, half-close included."""

    def __init__(self, buffered: bytes) -> None:
        self._buffered = buffered  # bytes Tornado had read past the request

    async def read(self) -> bytes:
        """The next bytes from the client; ``b""`` at EOF or disconnect."""
        if self._buffered:
            data, self._buffered = self._buffered, b""
            return data
        try:
            return await self._recv()
        except _DISCONNECTED:
            return b""

    async def _recv(self) -> bytes:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        """Send; raises OSError when the client is gone."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class PlainClient(ClientStream):
    """Unix and plain TCP sockets, through asyncio streams (EOF keeps the write side open)."""

    def __init__(self, buffered: bytes, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        super().__init__(buffered)
        self._reader = reader
        self._writer = writer

    async def _recv(self) -> bytes:
        return await self._reader.read(_CHUNK)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class TlsClient(ClientStream):
    """A TLS socket driven directly: asyncio cannot adopt an established SSLSocket.

    The docker CLI ends its stdin with a TLS close_notify and then reads the output, so
    a received close_notify must leave the sending direction working (TLS 1.3 allows it).
    """

    def __init__(self, buffered: bytes, sock: ssl.SSLSocket) -> None:
        super().__init__(buffered)
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._waiters: dict[bool, list[asyncio.Future]] = {False: [], True: []}

    async def _ready(self, for_write: bool) -> None:
        """Wait until the socket is readable/writable (read and write may both wait)."""
        waiters = self._waiters[for_write]
        future = self._loop.create_future()
        waiters.append(future)
        if len(waiters) == 1:
            fd = self._sock.fileno()
            add, remove = ((self._loop.add_writer, self._loop.remove_writer) if for_write
                           else (self._loop.add_reader, self._loop.remove_reader))

            def wake() -> None:
                remove(fd)
                for waiting in waiters:
                    if not waiting.done():
                        waiting.set_result(None)
                waiters.clear()

            add(fd, wake)
        await future

    async def _recv(self) -> bytes:
        while True:
            try:
                return self._sock.recv(_CHUNK)
            except ssl.SSLWantReadError:
                await self._ready(for_write=False)
            except ssl.SSLWantWriteError:
                await self._ready(for_write=True)
            except ssl.SSLZeroReturnError:
                return b""

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self._sock.send(view):]
            except ssl.SSLWantWriteError:
                await self._ready(for_write=True)
            except ssl.SSLWantReadError:
                await self._ready(for_write=False)

    def close(self) -> None:
        for for_write, waiters in self._waiters.items():
            if waiters:
                remove = self._loop.remove_writer if for_write else self._loop.remove_reader
                remove(self._sock.fileno())
                waiters.clear()
        self._sock.close()


async def hijack(handler: RequestHandler, content_type: str, upgrade: bool) -> ClientStream:
    """Take the connection from Tornado and answer the way dockerd does.

    With ``Upgrade: tcp`` the answer is ``101 UPGRADED``; old clients that did not ask
    for an upgrade get ``200 OK`` and then the same raw stream.
    """
    if upgrade:
        head = (f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    else:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {RAW_STREAM}\r\n\r\n"
    stream: IOStream = handler.detach()
    buffered = b""
    # Bytes the client sent right behind the request (early stdin) sit in Tornado's
    # read buffer; there is no public accessor for its size.
    pending = getattr(stream, "_read_buffer_size", 0)
    if pending:
        buffered = bytes(await stream.read_bytes(pending))
    client: ClientStream
    if isinstance(stream, SSLIOStream):
        sock = stream.socket
        stream.io_loop.remove_handler(sock)  # Tornado lets go; the SSL state stays with us
        client = TlsClient(buffered, sock)
    else:
        sock = socket.socket(fileno=os.dup(stream.socket.fileno()))
        stream.close()  # closes Tornado's descriptor only: the duplicate keeps the connection
        reader, writer = await asyncio.open_connection(sock=sock, limit=_CHUNK * 4)
        client = PlainClient(buffered, reader, writer)
    await client.write(head.encode())
    return client


async def splice(client: ClientStream, backend: socket.socket, *, early: bytes = b"",
                 stdin: bool = False, stdin_ready: Awaitable[None] | None = None) -> None:
    """Pump bytes between the client and a supervisor stream until the output ends.

    Client EOF is a half-close (the docker CLI shuts its write side down as soon as it
    has no more stdin, even when it sends none): it is passed on as a write shutdown, so
    the supervisor closes the process's stdin, and output keeps flowing. A client that
    really left is noticed when writing to it fails.
    """
    reader, writer = await asyncio.open_connection(sock=backend, limit=_CHUNK * 4)

    async def upstream() -> None:
        if stdin_ready is not None:
            await stdin_ready
        try:
            while data := await client.read():
                if stdin:
                    writer.write(data)
                    await writer.drain()
            if not writer.is_closing():
                writer.write_eof()
        except _DISCONNECTED:
            writer.close()

    up = asyncio.ensure_future(upstream())
    try:
        if early:
            await client.write(early)
        while data := await reader.read(_CHUNK):
            await client.write(data)
    except _DISCONNECTED:
        pass
    finally:
        up.cancel()
        writer.close()


_END = object()


async def iterate_in_thread(executor: Executor, produce: Callable[[], Iterator[Any]],
                            stop: threading.Event, max_pending: int = 16) -> AsyncIterator[Any]:
    """Run a blocking iterator on ``executor`` and yield its items on the IOLoop.

    ``stop`` is set when the consumer goes away; the producer must check it (the
    engine's log reader takes it as its ``stop`` callback) to end its thread. At most
    ``max_pending`` items wait for a slow client, so an export of gigabytes is never
    queued whole in the daemon's memory.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    room = threading.Semaphore(max_pending)

    def post(item: Any) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
            return True
        except RuntimeError:  # the loop is closed: the daemon is shutting down
            return False

    def wait_for_room() -> bool:
        while not room.acquire(timeout=0.2):
            if stop.is_set():
                return False
        return not stop.is_set()

    def run() -> None:
        try:
            for item in produce():
                if not wait_for_room() or not post(item):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised on the loop
            post(_Failure(exc))
        post(_END)

    executor.submit(run)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            room.release()
            yield item
    finally:
        stop.set()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
