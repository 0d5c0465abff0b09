"""Making a backup of a container or a volume, in one of three consistency modes.

``live`` copies while the container runs (each file as it is at the moment it is read),
``pause`` freezes the container's cgroup for the copy (a crash-consistent snapshot: what
the processes wrote, no torn writes in flight), ``stop`` stops it, copies, and starts it
again if it was running (a clean shutdown: byte-identical data). Hooks run inside the
container first and last (flush a database, resume it).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..images import archive as image_archive
from ..images.layers import create_layer
from .archive import Progress, progress_message
from .writer import ArchiveWriter

if TYPE_CHECKING:
    from ..containers.model import Container
    from ..engine import Engine

MODES = ("live", "pause", "stop")


def tree_size(path: str | os.PathLike[str]) -> int:
    """Bytes of regular files under ``path`` (the progress total; races are harmless)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def run_hook(engine: Engine, container: Container, command: str, timeout: float = 60) -> None:
    """Run ``sh -c command`` in the container; a failing hook aborts the backup."""
    if not container.running:
        raise errors.Conflict(f"hook {command!r}: container {container.id[:12]} is not running")
    exec_id = engine.execs.create(container.id, {"Cmd": ["sh", "-c", command]})
    engine.execs.start(exec_id, detach=True)
    code = engine.execs.wait(exec_id, timeout=timeout)
    if code is None:
        raise errors.RuntimeFailure(f"hook {command!r} did not finish within {timeout:g} s")
    if code != 0:
        raise errors.RuntimeFailure(f"hook {command!r} failed with exit code {code}")


@contextmanager
def consistent(engine: Engine, c: Container, mode: str, progress: Progress):
    """Hold the container in the state ``mode`` promises for the duration of the copy."""
    if mode == "pause" and c.running and not c.state["Paused"]:
        progress(progress_message("Pausing container"))
        engine.containers.pause(c.id)
        try:
            yield
        finally:
            engine.containers.unpause(c.id)
            progress(progress_message("Container unpaused"))
    elif mode == "stop" and c.running:
        progress(progress_message("Stopping container"))
        engine.containers.stop(c.id)
        try:
            yield
        finally:
            engine.containers.start(c.id)
            progress(progress_message("Container started again"))
    else:
        yield


def container_record(engine: Engine, c: Container) -> dict[str, Any]:
    """What a restore needs to recreate the container elsewhere."""
    rec = c.record
    mounts = [{k: m.get(k) for k in ("Type", "Name", "Source", "Destination", "RW", "Anonymous")}
              for m in rec.get("Mounts", [])]
    return {"Id": c.id, "Name": c.name, "Config": rec["Config"], "HostConfig": rec["HostConfig"],
            "Image": rec["Image"], "ImageRef": rec["Config"].get("Image", ""),
            "Mounts": mounts}


class _Ticker:
    """Turns byte counts into progress messages against a running total."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.current = progress, total, 0
        self.status = ""

    def tick(self, n: int) -> None:
        self.current += n
        self.progress(progress_message(self.status, self.current, max(self.total, self.current)))


def backup_container(engine: Engine, ref: str, dest: Path, *,
                     mode: str = "live", with_image: bool = False, include_binds: bool = False,
                     pre_hook: str | None = None, post_hook: str | None = None,
                     progress: Progress | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the archive ``dest``; returns Path, Size, Sha256 and the manifest."""
    if mode not in MODES:
        raise errors.InvalidArgument(f"invalid backup mode {mode!r}: use one of {', '.join(MODES)}")
    report = progress or (lambda m: None)
    c = engine.containers.get(ref)
    image = engine.images.resolve(c.record["Image"])
    record = container_record(engine, c)
    volumes = [m for m in c.record.get("Mounts", []) if m.get("Type") == "volume"]
    binds = [m for m in c.record.get("Mounts", []) if m.get("Type") == "bind"] \
        if include_binds else []
    with ArchiveWriter(dest, report) as writer:
        if pre_hook:
            report(progress_message(f"Running pre hook: {pre_hook}"))
            run_hook(engine, c, pre_hook)
        was_running = c.running
        with consistent(engine, c, mode, report):
            sources = [c.dir / "diff"] + [Path(m["Source"]) for m in volumes + binds]
            ticker = _Ticker(report, sum(tree_size(s) for s in sources))
            ticker.status = "Copying container filesystem"
            writer.add("rootfs.tar", lambda out: create_layer(c.dir / "diff", out), ticker.tick)
            for m in volumes:
                ticker.status = f"Copying volume {m['Name']}"
                writer.add(f"volumes/{m['Name']}.tar",
                           lambda out, m=m: create_layer(m["Source"], out), ticker.tick)
            for i, m in enumerate(binds):
                ticker.status = f"Copying bind mount {m['Source']}"
                writer.add(f"binds/{i}.tar", lambda out, m=m: create_layer(m["Source"], out),
                           ticker.tick)
        if post_hook and (c.running or not was_running):
            report(progress_message(f"Running post hook: {post_hook}"))
            run_hook(engine, c, post_hook)
        if with_image:
            report(progress_message(f"Saving image {record['ImageRef'] or image.id}"))
            names = [record["ImageRef"]] if _resolves_to(engine, record["ImageRef"], image.id) \
                else [image.id]
            writer.add("image.tar", lambda out: _write_all(out, image_archive.save(engine.images,
                                                                                  names)))
        writer.add_bytes("container.json", _json(record))
        info = {"Kind": "container", "Created": _now(), "Mode": mode, "Running": was_running,
                "Container": c.name.lstrip("/"), "ContainerId": c.id,
                "Image": record["ImageRef"], "ImageId": image.id, "WithImage": with_image,
                "Volumes": [m["Name"] for m in volumes],
                "Binds": [{"Source": m["Source"], "Destination": m["Destination"]} for m in binds],
                **(extra or {})}
        return writer.finish(info)


def backup_volume(engine: Engine, name: str, dest: Path, *,
                  progress: Progress | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A volume on its own (copied live: pause or stop its users first if it matters)."""
    report = progress or (lambda m: None)
    meta = engine.volumes.inspect(name)
    with ArchiveWriter(dest, report) as writer:
        ticker = _Ticker(report, tree_size(meta["Mountpoint"]))
        ticker.status = f"Copying volume {name}"
        writer.add(f"volumes/{name}.tar", lambda out: create_layer(meta["Mountpoint"], out),
                   ticker.tick)
        writer.add_bytes("volume.json", _json({k: v for k, v in meta.items() if k != "Mountpoint"}))
        info = {"Kind": "volume", "Created": _now(), "Mode": "live", "Container": "", "Image": "",
                "Volumes": [name], **(extra or {})}
        return writer.finish(info)


def _resolves_to(engine: Engine, ref: str, image_id: str) -> bool:
    try:
        return bool(ref) and engine.images.resolve(ref).id == image_id
    except errors.PyjailError:
        return False


def _write_all(out: Any, chunks: Any) -> None:
    for chunk in chunks:
        out.write(chunk)


def _json(obj: Any) -> bytes:
    import json
    return json.dumps(obj, indent=1, sort_keys=True).encode()


def _now() -> str:
    """RFC 3339 with microseconds: scheduled runs a second apart must still sort."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"

