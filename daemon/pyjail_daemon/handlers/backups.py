"""``/pyjail/v1/…`` backups: backup, restore, verify, catalogue, schedules, OpenAPI.

Backup and restore stream Docker-style JSON progress lines (``_ProgressStream``) ending
with an ``{"aux": …}`` result; errors before the first line are plain HTTP errors.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from tornado.web import stream_request_body

from pyjail import errors
from pyjail.backup.restore import CHECKED

from ..openapi import OPENAPI
from .base import ApiHandler
from .distribution import _ProgressStream

ID = r"([^/]+)"
P = "/pyjail/v1"


class ContainerBackupHandler(_ProgressStream):
    """``POST /pyjail/v1/containers/{id}/backup?mode=&with_image=&include_binds=&output=&name=``.

    The last line is ``{"aux": {"ID", "Path", "Size", "Sha256"}}`` (``ID`` is the catalogue
    name, what pyjail.client.pyjail_api expects).
    """

    async def post(self, ref: str) -> None:
        svc = self.engine.backups
        await self.call(self.engine.containers.get, ref)   # 404 before any stream
        opts = {"mode": self.query("mode") or "live", "with_image": self.query_bool("with_image"),
                "include_binds": self.query_bool("include_binds"),
                "output": self.query("output") or None, "pre_hook": self.query("pre_hook"),
                "post_hook": self.query("post_hook"), "name": self.query("name") or None}

        def work(progress: Any) -> None:
            entry = svc.backup(ref, progress=progress, **opts)
            progress({"aux": {"ID": entry["Id"], "Path": entry["Path"], "Size": entry["Size"],
                              "Sha256": entry["Sha256"]}})
        await self.stream(work)


class VolumeBackupHandler(_ProgressStream):
    """``POST /pyjail/v1/volumes/{name}/backup?output=&name=``."""

    async def post(self, name: str) -> None:
        svc = self.engine.backups
        await self.call(self.engine.volumes.inspect, name)
        output, backup_name = self.query("output") or None, self.query("name") or None

        def work(progress: Any) -> None:
            entry = svc.backup_volume(name, output=output, progress=progress,
                                      backup_name=backup_name)
            progress({"aux": {"ID": entry["Id"], "Path": entry["Path"], "Size": entry["Size"],
                              "Sha256": entry["Sha256"]}})
        await self.stream(work)


@stream_request_body
class _ArchiveInput(_ProgressStream):
    """The archive of a request: ``{id}`` in the path, ``?path=``, or the request body.

    A body is streamed into a temporary file in the backups directory as it arrives (an
    archive can be many gigabytes: never held in memory); it is removed when the request
    ends, whatever happened.
    """

    _upload: BinaryIO | None = None
    _upload_path: Path | None = None
    selectors: tuple[str, ...] = ("path",)   # query parameters that name a stored archive

    def prepare(self) -> None:
        super().prepare()
        if any(self.path_args) or any(self.query(q) for q in self.selectors):
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-upload-", dir=self.engine.backups.root)
        self._upload, self._upload_path = os.fdopen(fd, "wb"), Path(tmp)

    async def data_received(self, chunk: bytes) -> None:
        if self._upload is not None:
            await self.call(self._upload.write, chunk)

    def _drop_upload(self) -> None:
        if self._upload is not None:
            self._upload.close()
            self._upload = None
        if self._upload_path is not None:
            self._upload_path.unlink(missing_ok=True)
            self._upload_path = None

    def on_finish(self) -> None:
        self._drop_upload()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._upload is not None:   # gone mid-upload: post() never runs
            self._drop_upload()

    def archive(self, backup_id: str | None) -> tuple[Path, bool]:
        svc = self.engine.backups
        if backup_id:
            return svc.resolve(backup_id), False
        path = self.query("path")
        if path:
            return svc.resolve(path), False
        if self._upload is None or self._upload_path is None:
            raise errors.InvalidArgument("send the archive as the body, or give ?path=")
        self._upload.flush()
        self._upload.close()
        self._upload = None
        if self._upload_path.stat().st_size == 0:
            raise errors.InvalidArgument("send the archive as the body, or give ?path=")
        return self._upload_path, True


class RestoreHandler(_ArchiveInput):
    """``POST /pyjail/v1/backups/restore`` and ``/pyjail/v1/backups/{id}/restore``."""

    async def post(self, backup_id: str | None = None) -> None:
        path, temporary = await self.call(self.archive, backup_id)
        name, force = self.query("name"), self.query_bool("force")
        # absent: start it if it was running when backed up (what pyjail.client expects)
        start = self.query_bool("start") if self.query("start") is not None else None
        svc = self.engine.backups

        def work(progress: Any) -> None:
            held: list[dict[str, Any]] | None = []

            def report(msg: dict[str, Any]) -> None:
                nonlocal held
                if held is None:
                    progress(msg)
                    return
                held.append(msg)
                if msg.get("status") == CHECKED:   # headers go out only now
                    for m in held:
                        progress(m)
                    held = None
            try:
                result = svc.restore(path, name=name, force=force, start=start,
                                     progress=report)
            finally:
                if temporary:
                    path.unlink(missing_ok=True)
            progress({"aux": result})
        await self.stream(work)


class VerifyHandler(_ArchiveInput):
    """``POST /pyjail/v1/backups/verify?path=|name=`` (or body): 200 valid, 400 damaged."""

    selectors = ("path", "name")

    async def post(self, backup_id: str | None = None) -> None:
        path, temporary = await self.call(self.archive, backup_id or self.query("name"))
        try:
            result = await self.call_blocking(self.engine.backups.verify, path)
        finally:
            if temporary:
                path.unlink(missing_ok=True)
        manifest = result["Manifest"]
        self.write_json({"Path": str(path) if not temporary else "", "Valid": True,
                         "Kind": manifest.get("Kind"), "Container": manifest.get("Container"),
                         "Members": len(manifest["Members"])})


class BackupListHandler(ApiHandler):
    """``GET /pyjail/v1/backups``."""

    async def get(self) -> None:
        self.write_json(await self.call(self.engine.backups.list))


class BackupArchiveHandler(ApiHandler):
    """``GET /pyjail/v1/backups/{name}/archive``: the archive's bytes, as stored.

    ``X-Pyjail-Sha256`` carries the catalogue's digest so a client can check its copy.
    """

    async def get(self, name: str) -> None:
        svc = self.engine.backups
        path = await self.call(svc.catalogue.path, name)
        entries = {e["Name"]: e for e in await self.call(svc.list)}
        size = path.stat().st_size
        self.set_header("Content-Length", str(size))
        self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
        digest = (entries.get(path.name) or {}).get("Sha256")
        if digest:
            self.set_header("X-Pyjail-Sha256", digest)

        def chunks() -> Any:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
        await self.stream_chunks(chunks, "application/octet-stream")


class BackupPruneHandler(ApiHandler):
    """``POST /pyjail/v1/backups/prune?keep=N&max_age=SECONDS&container=&schedule=``."""

    async def post(self) -> None:
        opts = {"keep": self.query_int("keep", minimum=0),
                "max_age": self.query_float("max_age", minimum=0),
                "container": self.query("container") or "",
                "schedule": self.query("schedule") or ""}
        self.write_json(await self.call_blocking(self.engine.backups.prune, **opts))


class BackupHandler(ApiHandler):
    """``DELETE /pyjail/v1/backups/{name}``."""

    async def delete(self, name: str) -> None:
        await self.call(self.engine.backups.delete, name)
        self.no_content()


class SchedulesHandler(ApiHandler):
    """``GET`` / ``POST /pyjail/v1/schedules``."""

    async def get(self) -> None:
        self.write_json(await self.call(self.engine.backups.schedules))

    async def post(self) -> None:
        self.write_json(await self.call(self.engine.backups.add_schedule, self.json_body()), 201)


class ScheduleHandler(ApiHandler):
    """``DELETE /pyjail/v1/schedules/{id}``."""

    async def delete(self, sched_id: str) -> None:
        await self.call(self.engine.backups.delete_schedule, sched_id)
        self.no_content()


class OpenApiHandler(ApiHandler):
    """``GET /pyjail/v1/openapi.json``."""

    async def get(self) -> None:
        self.write_json(OPENAPI)


# Added to app.ROUTES with ``*backups.ROUTES`` (paths without the /v1.NN prefix).
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (rf"{P}/openapi.json", OpenApiHandler),
    (rf"{P}/containers/{ID}/backup", ContainerBackupHandler),
    (rf"{P}/volumes/{ID}/backup", VolumeBackupHandler),
    (rf"{P}/volumes/restore", RestoreHandler),
    (rf"{P}/backups", BackupListHandler),
    (rf"{P}/backups/restore", RestoreHandler),
    (rf"{P}/backups/verify", VerifyHandler),
    (rf"{P}/backups/prune", BackupPruneHandler),
    (rf"{P}/backups/{ID}/archive", BackupArchiveHandler),
    (rf"{P}/backups/{ID}/restore", RestoreHandler),
    (rf"{P}/backups/{ID}/verify", VerifyHandler),
    (rf"{P}/backups/{ID}", BackupHandler),
    (rf"{P}/schedules", SchedulesHandler),
    (rf"{P}/schedules/{ID}", ScheduleHandler),
]
