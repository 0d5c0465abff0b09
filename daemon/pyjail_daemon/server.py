"""The daemon's life: startup, serve, shutdown — three stages, each in one method.

Startup opens the engine (which starts or finds the supervisor holding the
containers), binds the sockets and writes the PID file. Serving lasts until SIGTERM or
SIGINT. Shutdown stops accepting, removes the socket files, cuts open streams and the
PID file; the containers keep running in the supervisor, and a restarted daemon finds
them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from tornado.httpserver import HTTPServer

from .app import make_app
from .config import ConfigError, DaemonConfig
from .context import DaemonContext
from .eventbridge import EventBridge
from .listeners import Listener, open_listeners, tls_context

log = logging.getLogger("pyjaild")

SHUTDOWN_GRACE = 2.0  # seconds for in-flight requests to finish


class DaemonServer:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.ctx: DaemonContext | None = None
        self.listeners: list[Listener] = []
        self.servers: list[HTTPServer] = []
        self._stop = asyncio.Event()
        self._pidfile_written = False

    # -- stages -----------------------------------------------------------------------------
    async def startup(self) -> None:
        from pyjail.engine import Engine
        config = self.config
        self._claim_pidfile()
        loop = asyncio.get_running_loop()
        engine = await loop.run_in_executor(
            None, lambda: Engine(config.data_root, runtime=config.default_runtime,
                                 insecure_registries=config.insecure_registries,
                                 exclusive=True))
        events = EventBridge(engine.events)
        events.start()
        self.ctx = DaemonContext(engine=engine, events=events, data_root=config.data_root,
                                 debug=config.log_level == "debug",
                                 security_options=["name=seccomp,profile=builtin"])
        app = make_app(self.ctx)
        self.listeners = open_listeners(config)
        plain = [s for lst in self.listeners if not lst.tls for s in lst.sockets]
        secure = [s for lst in self.listeners if lst.tls for s in lst.sockets]
        options = {"idle_connection_timeout": 3600, "body_timeout": 3600,
                   "max_body_size": 16 << 30, "decompress_request": False}
        if plain:
            server = HTTPServer(app, **options)
            server.add_sockets(plain)
            self.servers.append(server)
        if secure:
            server = HTTPServer(app, ssl_options=tls_context(config), **options)
            server.add_sockets(secure)
            self.servers.append(server)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info("pyjaild serving the Docker API on %s (data root %s)",
                 ", ".join(lst.url for lst in self.listeners), config.data_root)

    async def serve(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        log.info("pyjaild shutting down; containers keep running")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for server in self.servers:
            server.stop()
        for listener in self.listeners:
            listener.close()
        if self.ctx is not None:
            self.ctx.events.stop()
            for client in list(self.ctx.hijacked):
                client.close()
        for server in self.servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE)
        if self.ctx is not None:
            self.ctx.engine.close()
            self.ctx.pool.shutdown(wait=False, cancel_futures=True)
        self._release_pidfile()

    def stop(self) -> None:
        """Ask ``serve`` to return (also what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run(self) -> None:
        try:
            await self.startup()
            await self.serve()
        finally:
            await self.shutdown()

    # -- PID file ---------------------------------------------------------------------------
    def _claim_pidfile(self) -> None:
        path = self.config.pidfile
        if not path:
            return
        pidfile = Path(path)
        try:
            other = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            other = 0
        if other and other != os.getpid() and Path(f"/proc/{other}").exists():
            raise ConfigError(f"pid file found, ensure pyjaild is not running or delete {path} "
                              f"(process {other})")
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        tmp = pidfile.with_name(pidfile.name + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, pidfile)
        self._pidfile_written = True

    def _release_pidfile(self) -> None:
        if self._pidfile_written and self.config.pidfile:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.pidfile)
            self._pidfile_written = False
