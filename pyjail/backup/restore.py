"""Restoring a backup: verify everything, then create — or create nothing.

The whole archive is unpacked into a staging directory and checked against its manifest
before the first object exists, in one pass: the container filesystem and the volumes are
extracted there as they stream past, then renamed into place (staging sits on the data
root's filesystem, so that costs one rename per top-level entry, not a second copy).
Conflicts (a container or volume of that name) are found before anything is created too;
``force`` replaces them. If a step after that fails, what this restore created is removed
again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..images import archive as image_archive
from ..images.layers import extract_layer
from .archive import Progress, progress_message, read_archive

if TYPE_CHECKING:
    from ..engine import Engine

# Sent once every check has passed and before anything is created: a daemon may hold the
# stream's headers until then, so refusals are plain HTTP errors (400/404/409).
CHECKED = "Archive verified, restoring"


def _clear_dir(path: Path) -> None:
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _unpacked(name: str) -> bool | None:
    """Members extracted during the verify pass (the bool is for_overlay); others stay files.

    Bind contents stay tars: their host paths may be on any filesystem.
    """
    if name == "rootfs.tar":
        return True
    if name.startswith("volumes/"):
        return False
    return None


def _move_tree(src: Path, dst: Path) -> None:
    """Move the entries of the unpacked tree ``src`` into the directory ``dst``.

    Entries in the way are replaced, directories already there merged (taking the staged
    owner, mode and times); across filesystems the entries are copied instead.
    """
    for name in os.listdir(src):
        s, d = src / name, dst / name
        s_st = os.lstat(s)
        try:
            d_st = os.lstat(d)
        except FileNotFoundError:
            d_st = None
        if d_st is not None:
            if stat.S_ISDIR(d_st.st_mode) and stat.S_ISDIR(s_st.st_mode):
                _move_tree(s, d)
                os.chown(d, s_st.st_uid, s_st.st_gid)
                os.chmod(d, stat.S_IMODE(s_st.st_mode))
                os.utime(d, ns=(s_st.st_atime_ns, s_st.st_mtime_ns))
                continue
            if stat.S_ISDIR(d_st.st_mode):
                shutil.rmtree(d)
            else:
                d.unlink()
        try:
            os.rename(s, d)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
            _copy_across(s, d)


def _copy_across(src: Path, dst: Path) -> None:
    """The slow path of _move_tree: copy with owners, modes and times (symlinks as links)."""
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
        for dirpath, dirs, files in os.walk(src):
            for entry in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
                st = os.lstat(entry)
                os.lchown(Path(dst) / os.path.relpath(entry, src), st.st_uid, st.st_gid)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)
        st = os.lstat(src)
        os.lchown(dst, st.st_uid, st.st_gid)


def _ensure_image(engine: Engine, record: dict[str, Any], staged: Path,
                  report: Progress) -> str:
    """The image reference to create from: the same id, loaded from the archive if needed."""
    image_id, ref = record["Image"], record.get("ImageRef") or ""
    if not engine.images.has_image(image_id) and (staged / "image.tar").exists():
        report(progress_message("Loading image from the backup"))
        with open(staged / "image.tar", "rb") as f:
            image_archive.load(engine.images, f, lambda line: report({"stream": line}))
        engine._emit("image", "load", image_id)
    if engine.images.has_image(image_id):
        with suppress(errors.PyjailError):
            if ref and engine.images.resolve(ref).id == image_id:
                return ref
        return image_id
    try:
        engine.images.resolve(ref)
    except errors.PyjailError:
        raise errors.ImageNotFound(
            f"the backup needs image {ref or image_id}, which this daemon does not have; "
            "load or pull it, or back up with with_image") from None
    report(progress_message(f"Image {ref} differs from the backed-up {image_id[:19]}; using it"))
    return ref


def restore_archive(engine: Engine, path: Path, staging: Path, *, name: str | None = None,
                    force: bool = False, start: bool | None = None,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Restore a container or volume backup; returns {"Kind", "ID", "Name", "Volumes"}.

    ``start`` None: start the container if it was running when it was backed up.
    """
    report = progress or (lambda m: None)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        report(progress_message("Verifying archive"))
        manifest = read_archive(path, staging, report, unpack=_unpacked)
        if manifest.get("Kind") == "volume":
            return _restore_volume(engine, manifest, staging, name, force, report)
        if start is None:
            start = bool(manifest.get("Running"))
        return _restore_container(engine, manifest, staging, name, force, start, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _restore_volume(engine: Engine, manifest: dict[str, Any], staged: Path, name: str | None,
                    force: bool, report: Progress) -> dict[str, Any]:
    meta = json.loads((staged / "volume.json").read_bytes())
    old = manifest["Volumes"][0]
    target = name or old
    _check_volume(engine, target, force)
    report(progress_message(CHECKED))
    _fill_volume(engine, target, staged / "volumes" / f"{old}.tar", meta.get("Labels"), report)
    return {"Kind": "volume", "ID": target, "Name": target, "Volumes": [target]}


def _check_volume(engine: Engine, name: str, force: bool, replaced: set[str] | None = None
                  ) -> None:
    """Refuse an existing volume unless forced, and a forced one still used by a running
    container (other than the one being replaced)."""
    if engine.volumes.exists(name):
        if not force:
            raise errors.Conflict(f"volume {name} already exists (use force to overwrite it)")
        users = [u for u in engine.containers.volume_users(name) if u not in (replaced or ())]
        running = [u for u in users if engine.containers.get(u).running]
        if running:
            raise errors.Conflict(f"volume {name} is in use by running containers {running}")


def _fill_volume(engine: Engine, name: str, tree: Path, labels: dict | None,
                 report: Progress) -> None:
    existed = engine.volumes.exists(name)
    vol = engine.volumes.create(name, labels=labels)
    if not existed:
        engine._emit("volume", "create", vol)
    data = Path(vol["Mountpoint"])
    _clear_dir(data)
    report(progress_message(f"Restoring volume {name}"))
    _move_tree(tree, data)


def _restore_container(engine: Engine, manifest: dict[str, Any], staged: Path,
                       name: str | None, force: bool, start: bool,
                       report: Progress) -> dict[str, Any]:
    record = json.loads((staged / "container.json").read_bytes())
    target = "/" + (name or record["Name"]).lstrip("/")
    named = [m for m in record["Mounts"] if m["Type"] == "volume" and not m.get("Anonymous")]
    # every conflict is found before anything is created
    existing = None
    with suppress(errors.NotFound):
        existing = engine.containers.get(target)
        if existing.name != target:
            existing = None
    if existing is not None:
        if not force:
            raise errors.Conflict(f"container {target} already exists (use force to replace it)")
    replaced = {existing.id} if existing is not None else set()
    for m in named:
        _check_volume(engine, m["Name"], force, replaced)
    for b in manifest.get("Binds") or []:
        path = Path(b["Source"])
        if path.is_dir() and any(path.iterdir()) and not force:
            raise errors.Conflict(f"bind source {b['Source']} is not empty (use force to "
                                  "overwrite it)")
    image_ref = _ensure_image(engine, record, staged, report)
    report(progress_message(CHECKED))
    if existing is not None:
        report(progress_message(f"Removing existing container {target}"))
        engine.containers.remove(existing.id, force=True)
    created_volumes: list[str] = []
    container_id = None
    try:
        for m in named:
            if not engine.volumes.exists(m["Name"]):
                created_volumes.append(m["Name"])
            _fill_volume(engine, m["Name"], staged / "volumes" / f"{m['Name']}.tar", None, report)
        report(progress_message(f"Creating container {target}"))
        body = {**record["Config"], "Image": image_ref, "HostConfig": record["HostConfig"]}
        c = engine.containers.create(body, name=target)
        container_id = c.id
        report(progress_message("Restoring container filesystem"))
        _move_tree(staged / "rootfs.tar", c.dir / "diff")
        for m in record["Mounts"]:
            if m["Type"] == "volume" and m.get("Anonymous"):
                new = next((n for n in c.record["Mounts"]
                            if n["Destination"] == m["Destination"]), None)
                tree = staged / "volumes" / f"{m['Name']}.tar"
                if new is not None and tree.is_dir():
                    _clear_dir(Path(new["Source"]))
                    _move_tree(tree, Path(new["Source"]))
        for i, b in enumerate(manifest.get("Binds") or []):
            _restore_bind(b["Source"], staged / "binds" / f"{i}.tar", force, report)
        if start:
            engine.containers.start(c.id)
    except BaseException:
        if container_id is not None:
            with suppress(errors.PyjailError):
                engine.containers.remove(container_id, force=True)
        for v in created_volumes:
            with suppress(errors.PyjailError, OSError):
                engine.volumes.remove(v, force=True)
        raise
    engine._emit("container", "restore", c)
    return {"Kind": "container", "ID": c.id, "Name": target.lstrip("/"),
            "Volumes": [m["Name"] for m in named]}


def _restore_bind(source: str, tar: Path, force: bool, report: Progress) -> None:
    """Bind contents go back to the same host path, only into an empty one unless force."""
    path = Path(source)
    if path.exists() and any(path.iterdir()):
        if not force:
            raise errors.Conflict(f"bind source {source} is not empty (use force to overwrite)")
        _clear_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    report(progress_message(f"Restoring bind mount {source}"))
    extract_layer(tar, path, for_overlay=False)
