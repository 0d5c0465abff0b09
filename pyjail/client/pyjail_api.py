"""Calls to pyjail's own endpoints (``/pyjail/v1/…``): backups, restore, image bootstrap.

The contract the client expects (the daemon side publishes it as OpenAPI):

- ``POST /pyjail/v1/containers/{ref}/backup?name=N`` → JSON lines
  ``{"status", "progress": {"current", "total"}}`` …, last ``{"aux": {"ID": backup_id}}``
- ``GET  /pyjail/v1/backups`` → ``[{"Id", "Name", "Container", "Image", "Created", "Size"}]``
- ``POST /pyjail/v1/backups/{id}/restore?name=N`` → JSON lines as for backup, last
  ``{"aux": {"ID": container_id}}``
- ``POST /pyjail/v1/images/bootstrap?tag=T`` → ``{"Id": image_id}``

Errors are Docker's ``{"message": …}`` with 404/409/400/500.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

from . import errors
from .connection import json_lines
from .hosts import unix_path
from .progress import StreamTracker
from .ui import Frontend

if TYPE_CHECKING:
    from .connection import Client


def backup(client: Client, container: str, name: str | None, frontend: Frontend,
           quiet: bool = False) -> str | None:
    params = {"name": name} if name else None
    resp = client.pyjail_request("POST", f"containers/{container}/backup", feature="backups",
                                 params=params, stream=True)
    with resp:
        return StreamTracker(frontend.progress(f"backup {container}", quiet)).run(
            json_lines(resp), "backed up")


def restore(client: Client, backup_id: str, name: str | None, frontend: Frontend,
            quiet: bool = False) -> str | None:
    params = {"name": name} if name else None
    resp = client.pyjail_request("POST", f"backups/{backup_id}/restore", feature="restore",
                                 params=params, stream=True)
    with resp:
        return StreamTracker(frontend.progress(f"restore {backup_id}", quiet)).run(
            json_lines(resp), "restored")


def backups(client: Client) -> list[dict[str, Any]]:
    resp = client.pyjail_request("GET", "backups", feature="backups")
    return list(resp.json() or [])


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
