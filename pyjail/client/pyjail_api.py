"""Calls to pyjail's own endpoints (``/pyjail/v1/…``): backups, restore, image bootstrap.

The contract the client expects (the daemon side publishes it as OpenAPI):

- ``POST /pyjail/v1/containers/{ref}/backup?name=N`` → JSON lines
  ``{"status", "progress": {"current", "total"}}`` …, last ``{"aux": {"ID": backup_id}}``
- ``GET  /pyjail/v1/backups`` → ``[{"Id", "Name", "Container", "Image", "Created", "Size"}]``
- ``POST /pyjail/v1/backups/{id}/restore?name=N`` → JSON lines as for backup, last
  ``{"aux": {"ID": container_id}}``
- ``POST /pyjail/v1/backups/restore`` and ``/backups/verify`` take a local archive as
  the request body; ``GET /pyjail/v1/backups/{id}/archive`` downloads one
- ``POST /pyjail/v1/backups/prune?keep=&max_age=`` → ``{"BackupsDeleted", "SpaceReclaimed"}``
- ``GET|POST /pyjail/v1/schedules``, ``DELETE /pyjail/v1/schedules/{id}``
- ``POST /pyjail/v1/images/bootstrap?tag=T`` → ``{"Id": image_id}``

Errors are Docker's ``{"message": …}`` with 404/409/400/500.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .connection import json_lines
from .hosts import unix_path
from .progress import StreamTracker
from .ui import Frontend

if TYPE_CHECKING:
    from .connection import Client


def _results(events: Iterator[dict[str, Any]], into: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Pass a progress stream through, keeping its ``aux`` result (Path, Size, …)."""
    for event in events:
        if isinstance(event.get("aux"), dict):
            into.update(event["aux"])
        yield event


def backup(client: Client, container: str, name: str | None, frontend: Frontend,
           quiet: bool = False, *, mode: str = "live", with_image: bool = False,
           include_binds: bool = False) -> dict[str, Any]:
    """Back up a container; returns the daemon's result (``ID``, ``Path``, ``Size``, …)."""
    params: dict[str, Any] = {"mode": mode}
    if name:
        params["name"] = name
    if with_image:
        params["with_image"] = "1"
    if include_binds:
        params["include_binds"] = "1"
    resp = client.pyjail_request("POST", f"containers/{container}/backup", feature="backups",
                                 params=params, stream=True)
    result: dict[str, Any] = {}
    with resp:
        result_id = StreamTracker(frontend.progress(f"backup {container}", quiet)).run(
            _results(json_lines(resp), result), "backed up")
    result.setdefault("ID", result_id)
    return result


def download(client: Client, backup_id: str, dest: str) -> int:
    """Copy a catalogue archive to ``dest`` (atomically: a partial file never stays);
    checks the catalogue's sha256 when the daemon sends it. Returns the bytes written."""
    resp = client.pyjail_request("GET", f"backups/{backup_id}/archive", feature="backup "
                                 "download", stream=True)
    target = Path(dest)
    if target.is_dir():
        target = target / backup_id
    tmp = target.with_name(f".{target.name}.part{os.getpid()}")
    digest, size = hashlib.sha256(), 0
    try:
        with resp, open(tmp, "wb") as f:
            for chunk in resp.iter_content(1 << 20):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        expected = resp.headers.get("X-Pyjail-Sha256", "")
        if expected and expected != "sha256:" + digest.hexdigest():
            raise errors.ClientError(f"download of {backup_id} is damaged (sha256 mismatch)")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return size


def _archive_source(backup: str) -> tuple[str, dict[str, Any], Any]:
    """A local archive file is uploaded; anything else names a catalogue entry."""
    local = Path(backup)
    if local.is_file():
        return "backups/{verb}", {}, local
    return f"backups/{backup}/{{verb}}", {}, None


def restore(client: Client, backup_id: str, name: str | None, frontend: Frontend,
            quiet: bool = False, *, force: bool = False) -> str | None:
    """Restore from a catalogue entry, or from a local archive file (uploaded)."""
    path, params, local = _archive_source(backup_id)
    if name:
        params["name"] = name
    if force:
        params["force"] = "1"
    with _opened(local) as body:
        resp = client.pyjail_request("POST", path.format(verb="restore"), feature="restore",
                                     params=params, stream=True, data=body)
        with resp:
            return StreamTracker(frontend.progress(f"restore {backup_id}", quiet)).run(
                json_lines(resp), "restored")


def verify(client: Client, backup: str) -> dict[str, Any]:
    """Check an archive (a local file, uploaded, or a catalogue entry); a damaged one
    raises ``BadRequest`` with the daemon's one-line reason."""
    path, params, local = _archive_source(backup)
    with _opened(local) as body:
        resp = client.pyjail_request("POST", path.format(verb="verify"), feature="verify",
                                     params=params, data=body)
    return dict(resp.json())


@contextmanager
def _opened(local: Path | None) -> Iterator[Any]:
    if local is None:
        yield None
        return
    with open(local, "rb") as f:
        yield f


def backups(client: Client) -> list[dict[str, Any]]:
    resp = client.pyjail_request("GET", "backups", feature="backups")
    return list(resp.json() or [])


def prune_backups(client: Client, keep: int | None, max_age: float | None,
                  container: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {}
    if keep is not None:
        params["keep"] = keep
    if max_age is not None:
        params["max_age"] = max_age
    if container:
        params["container"] = container
    return dict(client.pyjail_request("POST", "backups/prune", feature="backup prune",
                                      params=params).json())


def schedules(client: Client) -> list[dict[str, Any]]:
    return list(client.pyjail_request("GET", "schedules", feature="schedules").json() or [])


def add_schedule(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.pyjail_request("POST", "schedules", feature="schedules",
                                      json_body=body).json())


def remove_schedule(client: Client, sched_id: str) -> None:
    client.pyjail_request("DELETE", f"schedules/{sched_id}", feature="schedules")


def bootstrap_image(client: Client, tag: str) -> str:
    """Make the offline busybox image in the daemon's store.

    Asks the daemon first. A pyjail daemon without the endpoint but on this host (unix
    socket) gets the image written into its data root by ``pyjail image bootstrap
    --data-root`` in a child process: the daemon reads its image store from disk, and this
    process stays free of engine code.
    """
    try:
        resp = client.pyjail_request("POST", "images/bootstrap", feature="image bootstrap",
                                     params={"tag": tag})
        return str(resp.json().get("Id", ""))
    except errors.NotSupported:
        if not client.is_pyjail or not unix_path(client.host):
            raise
    with client.translated():
        root = client.api.info().get("DockerRootDir")
    if not root:
        raise errors.NotSupported("image bootstrap: the daemon did not say its data root")
    proc = subprocess.run([sys.executable, "-m", "pyjail", "--data-root", root, "image",
                           "bootstrap", "--tag", tag], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise errors.ClientError(f"image bootstrap failed: {proc.stderr.strip() or proc.stdout}")
    return proc.stdout.strip().splitlines()[-1]
