"""REST and WebSocket routes under ``{base_url}pyjail/api/``: the browser's only way in.

Every route needs the Jupyter server's login (token or cookie); writes go through
``APIHandler``'s XSRF check. Handlers only parse the request, ask the ``DaemonGateway``
and shape the answer; the daemon's own errors reach the browser with their status and a
``{"message"}`` body (``write_error``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from pyjail.client import pyjail_api
from pyjail.client.connection import Client, json_lines

from .build import build_stream, resolve_dockerfile
from .config import CONTAINER_ACTIONS, DESTRUCTIVE_ACTIONS
from .gateway import DaemonError, DaemonGateway, daemon_errors
from .progress import relay_lines
from .streams import EventSource, LogSource, Source, StatsSource

SETTINGS_KEY = "pyjail_gateway"
ID = r"([^/]+)"
IMAGE = r"(.+)"  # image references contain slashes (registry/repo:tag)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


class PyjailHandler(APIHandler):
    """Shared plumbing: the gateway, read-only refusals, daemon errors as HTTP errors."""

    @property
    def gateway(self) -> DaemonGateway:
        return self.settings[SETTINGS_KEY]

    async def daemon(self, fn: Callable[[Client], Any]) -> Any:
        try:
            return await self.gateway.call(fn)
        except DaemonError as exc:
            raise web.HTTPError(exc.status, "%s", exc.message)

    def refuse_if_read_only(self, action: str) -> None:
        if not self.gateway.config.allows(action):
            raise web.HTTPError(403, "%s", f"{action} is disabled: the pyjail extension is "
                                           "read-only (PyjailJupyterConfig.read_only)")

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(_dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"message": …}`` with our text; ``APIHandler`` would show ``log_message`` raw."""
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
            self.set_header("Content-Type", "application/json")
            self.finish(_dumps({"message": message}))
            return
        super().write_error(status_code, **kwargs)


class InfoHandler(PyjailHandler):
    """Which daemon, what it is, and which actions the sidebar should offer."""

    @web.authenticated
    async def get(self) -> None:
        def info(client: Client) -> dict[str, Any]:
            return {"server": client.server_name, "version": client.version,
                    "info": client.api.info()}

        data = await self.daemon(info)
        config = self.gateway.config
        actions = [*CONTAINER_ACTIONS, "remove", "prune", "restore"]
        self.reply({"host": self.gateway.host, "read_only": config.read_only,
                    "actions": [a for a in actions if config.allows(a)],
                    "destructive_actions": sorted(DESTRUCTIVE_ACTIONS), **data})


class ContainersHandler(PyjailHandler):
    """Stopped containers too by default (a sidebar lists them); ``?all=0`` for running."""

    @web.authenticated
    async def get(self) -> None:
        show_all = _flag(self.get_argument("all", "1"))
        self.reply(await self.daemon(lambda c: c.api.containers(all=show_all)))


class ContainerHandler(PyjailHandler):
    @web.authenticated
    async def get(self, ref: str) -> None:
        self.reply(await self.daemon(lambda c: c.api.inspect_container(ref)))

    @web.authenticated
    async def delete(self, ref: str) -> None:
        self.refuse_if_read_only("remove")
        force = _flag(self.get_argument("force", None))
        volumes = _flag(self.get_argument("v", None))
        await self.daemon(lambda c: c.api.remove_container(ref, v=volumes, force=force))
        self.set_status(204)
        self.finish()


class ContainerActionHandler(PyjailHandler):
    """``POST …/containers/{id}/{action}``: start, stop, restart, pause, unpause, kill."""

    @web.authenticated
    async def post(self, ref: str, action: str) -> None:
        self.refuse_if_read_only(action)
        timeout = self.get_argument("t", None)
        signal = self.get_argument("signal", None)

        def act(client: Client) -> None:
            api = client.api
            if action in ("stop", "restart"):
                method = api.stop if action == "stop" else api.restart
                method(ref, **({"timeout": int(timeout)} if timeout else {}))
            elif action == "kill":
                api.kill(ref, **({"signal": signal} if signal else {}))
            else:
                getattr(api, action)(ref)

        await self.daemon(act)
        self.set_status(204)
        self.finish()


class ImagesHandler(PyjailHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.daemon(lambda c: c.api.images()))


class ImageHandler(PyjailHandler):
    @web.authenticated
    async def get(self, ref: str) -> None:
        self.reply(await self.daemon(lambda c: c.api.inspect_image(ref)))

    @web.authenticated
    async def delete(self, ref: str) -> None:
        self.refuse_if_read_only("remove")
        force = _flag(self.get_argument("force", None))
        self.reply(await self.daemon(lambda c: c.api.remove_image(ref, force=force)))


class ImageTagHandler(PyjailHandler):
    """``POST images/{ref}/tag`` with ``{"repo", "tag"?}`` (tag defaults to latest)."""

    @web.authenticated
    async def post(self, ref: str) -> None:
        body = self.get_json_body() or {}
        repo, tag = str(body.get("repo") or ""), str(body.get("tag") or "")
        if not repo:
            raise web.HTTPError(400, "%s", 'give the new name as {"repo", "tag"}')
        await self.daemon(lambda c: c.api.tag(ref, repo, tag or "latest"))
        self.reply({"Name": f"{repo}:{tag or 'latest'}"}, status=201)


class ImageBuildHandler(PyjailHandler):
    """``POST images/build`` with ``{"path", "tag"?}``: a Dockerfile in the Jupyter root,
    its folder as the context; the daemon's build progress streams back as JSON lines."""

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        root = self.settings["server_root_dir"]
        dockerfile = resolve_dockerfile(root, str(body.get("path") or ""))
        tag = str(body.get("tag") or "") or None
        await relay_lines(self, self.gateway.stream_client(),
                          lambda c: build_stream(c, dockerfile, tag))


class ImagePruneHandler(PyjailHandler):
    """Dangling images by default; ``?all=1`` prunes every unused image, as ``docker``."""

    @web.authenticated
    async def post(self) -> None:
        self.refuse_if_read_only("prune")
        filters = {"dangling": False} if _flag(self.get_argument("all", None)) else None
        self.reply(await self.daemon(lambda c: c.api.prune_images(filters=filters)))


class DaemonHandler(PyjailHandler):
    """``GET daemon`` names the daemon in use; ``PUT daemon`` with ``{"host"}`` switches to
    another (empty: the configured one). Refused in read-only mode."""

    @web.authenticated
    async def get(self) -> None:
        self.reply({"host": self.gateway.host})

    @web.authenticated
    async def put(self) -> None:
        if self.gateway.config.read_only:
            raise web.HTTPError(403, "%s", "changing the daemon is disabled: the pyjail "
                                           "extension is read-only")
        host = str((self.get_json_body() or {}).get("host") or "") or None
        try:
            self.gateway.reconnect(host)
        except Exception as exc:  # noqa: BLE001 - a bad address is the user's mistake
            raise web.HTTPError(400, "%s", f"cannot use daemon {host}: {exc}")
        self.reply({"host": self.gateway.host})


class BackupsHandler(PyjailHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.daemon(pyjail_api.backups))


class BackupRestoreHandler(PyjailHandler):
    """Restores a backup into a new container and answers its id (``?name=`` optional)."""

    @web.authenticated
    async def post(self, backup_id: str) -> None:
        self.refuse_if_read_only("restore")
        name = self.get_argument("name", None)

        def restore(client: Client) -> str:
            resp = client.pyjail_request("POST", f"backups/{backup_id}/restore",
                                         feature="restore", stream=True,
                                         params={"name": name} if name else None)
            container = ""
            with resp:
                for message in json_lines(resp):
                    if message.get("error"):
                        raise DaemonError(500, str(message["error"]))
                    container = (message.get("aux") or {}).get("ID", container)
            return container

        self.reply({"Id": await self.daemon(restore)}, status=201)


class StreamSocket(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A WebSocket that relays one ``Source`` as JSON text frames, behind the server's login.

    The source is read on a thread of its own and each item is handed to the IOLoop; a
    daemon failure is sent as ``{"error": {"status", "message"}}`` before closing.
    """

    source: Source | None = None
    _client: Client | None = None

    @property
    def gateway(self) -> DaemonGateway:
        return self.settings[SETTINGS_KEY]

    def set_default_headers(self) -> None:
        """No CSP/HTML headers on an upgrade response (as the server's kernel sockets)."""

    async def get(self, *args: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(403)
        await self.check_before_upgrade(*args)
        await super().get(*args)

    async def check_before_upgrade(self, *args: str) -> None:
        """Hook: refuse with a plain HTTP error (e.g. 404) while that is still possible."""

    def make_source(self, client: Client, *args: str) -> Source:
        raise NotImplementedError

    def open(self, *args: str) -> None:
        if self.current_user is None:
            self.close(code=1008, reason="forbidden")
            return
        super().open()
        self._client = self.gateway.stream_client()
        self.source = self.make_source(self._client, *args)
        loop = IOLoop.current()
        threading.Thread(target=self._pump, args=(loop, self.source, self._client),
                         name="pyjail-jupyter-stream", daemon=True).start()

    def _pump(self, loop: IOLoop, source: Source, client: Client) -> None:
        try:
            with daemon_errors(client):
                for item in source.items():
                    loop.add_callback(self._send, item)
        except DaemonError as exc:
            loop.add_callback(self._send, {"error": {"status": exc.status,
                                                     "message": exc.message}})
        except Exception as exc:  # noqa: BLE001 - report, do not kill the thread silently
            loop.add_callback(self._send, {"error": {"status": 500, "message": str(exc)}})
        loop.add_callback(self._finish_stream)

    def _send(self, item: dict[str, Any]) -> None:
        if self.ws_connection is not None:
            try:
                self.write_message(_dumps(item))
            except WebSocketClosedError:
                pass

    def _finish_stream(self) -> None:
        if self.ws_connection is not None:
            self.close(code=1000, reason="stream ended")

    def on_message(self, message: str | bytes) -> None:
        """Read-only streams: whatever the browser sends is ignored."""

    def on_close(self) -> None:
        if self.source is not None:
            self.source.stop()
        if self._client is not None:
            self._client.close()
        super().on_close()


class ContainerStreamSocket(StreamSocket):
    async def check_before_upgrade(self, ref: str) -> None:
        try:
            await self.gateway.call(lambda c: c.api.inspect_container(ref))
        except DaemonError as exc:
            raise web.HTTPError(exc.status, "%s", exc.message)


class LogsSocket(ContainerStreamSocket):
    """``?tail=N`` lines of history (default 100), then the log as it grows."""

    def make_source(self, client: Client, ref: str) -> Source:  # type: ignore[override]
        return LogSource(client, ref, tail=self.get_argument("tail", "100"))


class StatsSocket(ContainerStreamSocket):
    """A stats row every ``?interval=`` seconds (default 1) while the container runs."""

    def make_source(self, client: Client, ref: str) -> Source:  # type: ignore[override]
        try:
            interval = float(self.get_argument("interval", "1"))
        except ValueError:
            interval = 1.0
        return StatsSource(client, ref, interval=interval)


class EventsSocket(StreamSocket):
    """Daemon events from now on (or from ``?since=`` Unix seconds); ``?filters=`` is
    Docker's JSON filter object."""

    def make_source(self, client: Client) -> Source:  # type: ignore[override]
        raw = self.get_argument("filters", None)
        try:
            filters = json.loads(raw) if raw else None
        except ValueError:
            filters = None
        return EventSource(client, filters if isinstance(filters, dict) else None,
                           since=self.get_argument("since", None))


API = "/pyjail/api"
ACTIONS = "|".join(CONTAINER_ACTIONS)

HANDLERS: list[tuple[str, type[web.RequestHandler]]] = [
    (rf"{API}/info", InfoHandler),
    (rf"{API}/containers", ContainersHandler),
    (rf"{API}/containers/{ID}/logs/ws", LogsSocket),
    (rf"{API}/containers/{ID}/stats/ws", StatsSocket),
    (rf"{API}/containers/{ID}/({ACTIONS})", ContainerActionHandler),
    (rf"{API}/containers/{ID}", ContainerHandler),
    (rf"{API}/images", ImagesHandler),
    (rf"{API}/images/prune", ImagePruneHandler),
    (rf"{API}/images/build", ImageBuildHandler),
    (rf"{API}/images/{IMAGE}/tag", ImageTagHandler),
    (rf"{API}/images/{IMAGE}", ImageHandler),
    (rf"{API}/daemon", DaemonHandler),
    (rf"{API}/backups", BackupsHandler),
    (rf"{API}/backups/{ID}/restore", BackupRestoreHandler),
    (rf"{API}/events/ws", EventsSocket),
]
