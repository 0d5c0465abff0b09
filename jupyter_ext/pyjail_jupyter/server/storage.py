"""Volumes, backups and backup schedules for the sidebar (routes under ``pyjail/api``).

Backups and restores stream the daemon's progress lines (``progress.relay_lines``);
listing, verifying and schedules are plain JSON. Removing a volume, a backup or a
schedule counts as "remove" for read-only mode, restoring as "restore".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tornado import web

from pyjail.client.connection import Client, json_lines

from .handlers import ID, PyjailHandler
from .progress import relay_lines

API = "/pyjail/api"


def _pyjail_lines(method: str, path: str, params: dict[str, Any],
                  feature: str) -> Any:
    def produce(client: Client) -> Iterator[dict[str, Any]]:
        resp = client.pyjail_request(method, path, feature=feature, stream=True,
                                     params={k: v for k, v in params.items() if v} or None)
        with resp:
            yield from json_lines(resp)
    return produce


class VolumesHandler(PyjailHandler):
    """``GET volumes`` lists; ``POST volumes`` with ``{"Name"?, "Labels"?}`` creates one."""

    @web.authenticated
    async def get(self) -> None:
        data = await self.daemon(lambda c: c.api.volumes())
        self.reply((data or {}).get("Volumes") or [])

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        name = str(body.get("Name") or "") or None
        labels = body.get("Labels") or None
        self.reply(await self.daemon(lambda c: c.api.create_volume(name, labels=labels)), 201)


class VolumeHandler(PyjailHandler):
    @web.authenticated
    async def delete(self, name: str) -> None:
        self.refuse_if_read_only("remove")
        force = self.get_argument("force", "") in ("1", "true")
        await self.daemon(lambda c: c.api.remove_volume(name, force=force))
        self.set_status(204)
        self.finish()


class _BackupStream(PyjailHandler):
    async def relay(self, path: str, feature: str, **params: Any) -> None:
        await relay_lines(self, self.gateway.stream_client(),
                          _pyjail_lines("POST", path, params, feature))


class ContainerBackupHandler(_BackupStream):
    """``POST containers/{id}/backup?name=&mode=``: progress lines, last ``{"aux": {"ID"}}``."""

    @web.authenticated
    async def post(self, ref: str) -> None:
        await self.relay(f"containers/{ref}/backup", "backups",
                         name=self.get_argument("name", None),
                         mode=self.get_argument("mode", None))


class VolumeBackupHandler(_BackupStream):
    @web.authenticated
    async def post(self, name: str) -> None:
        await self.relay(f"volumes/{name}/backup", "backups",
                         name=self.get_argument("name", None))


class BackupVerifyHandler(PyjailHandler):
    """``POST backups/{id}/verify``: 200 with the manifest summary, 400 when damaged."""

    @web.authenticated
    async def post(self, backup_id: str) -> None:
        self.reply(await self.daemon(lambda c: c.pyjail_request(
            "POST", f"backups/{backup_id}/verify", feature="backup verify").json()))


class BackupHandler(PyjailHandler):
    @web.authenticated
    async def delete(self, backup_id: str) -> None:
        self.refuse_if_read_only("remove")
        await self.daemon(lambda c: c.pyjail_request("DELETE", f"backups/{backup_id}",
                                                     feature="backups"))
        self.set_status(204)
        self.finish()


class SchedulesHandler(PyjailHandler):
    """``GET``/``POST schedules``: the daemon's schedule objects (``Container`` or
    ``Volume``, ``Interval`` seconds or ``Cron``, ``Keep``, ``MaxAge``, ``Mode``)."""

    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.daemon(lambda c: c.pyjail_request(
            "GET", "schedules", feature="backup schedules").json()))

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        self.reply(await self.daemon(lambda c: c.pyjail_request(
            "POST", "schedules", feature="backup schedules", json_body=body).json()), 201)


class ScheduleHandler(PyjailHandler):
    @web.authenticated
    async def delete(self, sched_id: str) -> None:
        self.refuse_if_read_only("remove")
        await self.daemon(lambda c: c.pyjail_request("DELETE", f"schedules/{sched_id}",
                                                     feature="backup schedules"))
        self.set_status(204)
        self.finish()


STORAGE_HANDLERS: list[tuple[str, type[web.RequestHandler]]] = [
    (rf"{API}/volumes", VolumesHandler),
    (rf"{API}/volumes/{ID}/backup", VolumeBackupHandler),
    (rf"{API}/volumes/{ID}", VolumeHandler),
    (rf"{API}/containers/{ID}/backup", ContainerBackupHandler),
    (rf"{API}/backups/{ID}/verify", BackupVerifyHandler),
    (rf"{API}/backups/{ID}", BackupHandler),
    (rf"{API}/schedules", SchedulesHandler),
    (rf"{API}/schedules/{ID}", ScheduleHandler),
]
