"""``docker commit`` and ``docker export``: a container's upper dir as a layer, its merged
filesystem as a tar (walked, not mounted: see pyjail.images.export)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyjail.images import changes as dockerfile_changes
from pyjail.images.export import container_tree, tar_chunks
from pyjail.images.store import Image, ImageStore, now_rfc3339
from pyjail.images.unpacking import write_layer

_MOUNTPOINTS = ("etc/hosts", "etc/resolv.conf", "etc/hostname")
# What ``docker commit`` copies from the container's Config into the image's.
_COMMITTED = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
              "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal",
              "Shell", "Hostname", "Domainname", "Tty", "OpenStdin", "StdinOnce",
              "AttachStdin", "AttachStdout", "AttachStderr")


def _config_section(container: Any, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The container's effective config (image values under its own), as Docker commits it."""
    image_cfg = dict(container.record.get("ImageConfig") or {})
    cfg = container.config
    out = dict(image_cfg)
    for key in _COMMITTED:
        value = cfg.get(key)
        if value not in (None, "", [], {}):
            out[key] = value
    if cfg.get("Entrypoint") is not None and cfg.get("Cmd") is None:
        out.pop("Cmd", None)
    from pyjail.containers.spec import merged_env
    out["Env"] = merged_env(image_cfg.get("Env") or [], cfg.get("Env") or [])
    labels = dict(image_cfg.get("Labels") or {})
    labels.update(cfg.get("Labels") or {})
    out["Labels"] = labels or None
    out.pop("Image", None)
    for key in ("Hostname", "Domainname", "Tty", "OpenStdin", "StdinOnce", "AttachStdin",
                "AttachStdout", "AttachStderr"):
        out.pop(key, None)
    if overrides:
        out.update({k: v for k, v in overrides.items() if k in dockerfile_changes.CONFIG_KEYS})
    return {k: v for k, v in out.items() if v is not None}


@contextlib.contextmanager
def _mountpoints_aside(c: Any, base: Image, store: Any) -> Iterator[None]:
    """The runtime's empty mount targets (/etc/hosts & co.) are no part of the image, as in
    Docker (where they live in an init layer). Only moved while the container is stopped:
    renaming a live mount target would detach it inside the container."""
    moved: list[tuple[Path, Path]] = []
    if not c.running:
        lower = store.layer_dirs(base)
        for rel in _MOUNTPOINTS:
            p = c.dir / "diff" / rel
            try:
                empty = p.stat().st_size == 0
            except FileNotFoundError:
                continue
            if empty and not any(os.path.lexists(d / rel) for d in lower):
                aside = c.dir / f".commit-aside-{p.name}"
                os.rename(p, aside)
                moved.append((aside, p))
    try:
        yield
    finally:
        for aside, p in moved:
            os.rename(aside, p)


def layer_image(store: ImageStore, upper: Path | str, config: dict[str, Any],
                reference: str | None = None) -> Image:
    """An upper dir as a new layer on ``config``'s rootfs: the layer tar goes straight into a
    pending blob (written once, hashed once), which the store commits and unpacks."""
    with store.blobs.writer() as blob:
        write_layer(store, upper, blob)
        return store.create_image([blob], config, reference)


def commit(engine: Any, ref: str, reference: str | None = None, *, comment: str = "",
           author: str = "", changes: list[str] | None = None,
           config: dict[str, Any] | None = None, pause: bool = True) -> Image:
    """The container's upper dir becomes a new layer on its image."""
    c = engine.containers.get(ref)
    store = engine.images
    base = store.resolve(c.record["Image"])
    paused_here = False
    if pause and c.running and not c.state.get("Paused"):
        engine.containers.pause(c.id)
        paused_here = True
    try:
        with store.blobs.writer() as blob:
            with _mountpoints_aside(c, base, store):
                write_layer(store, c.dir / "diff", blob)
            if paused_here:
                engine.containers.unpause(c.id)
                paused_here = False
            section = _config_section(c, config)
            if changes:
                section = dockerfile_changes.apply_changes(section, changes)
            created = now_rfc3339()
            full = {k: v for k, v in base.config.items()
                    if k not in ("container", "container_config")}
            full.update({"created": created, "config": section, "container": c.id})
            if comment:
                full["comment"] = comment
            if author:
                full["author"] = author
            step: dict[str, Any] = {"created": created,
                                    "created_by": " ".join([c.record.get("Path", ""),
                                                            *c.record.get("Args", [])]).strip()}
            if comment:
                step["comment"] = comment
            if author:
                step["author"] = author
            full["history"] = [*(base.config.get("history") or []), step]
            image = store.create_image([blob], full, reference, parent=base.id)
    finally:
        if paused_here:
            with contextlib.suppress(Exception):
                engine.containers.unpause(c.id)
    engine._emit("container", "commit", c)
    return image


def export(engine: Any, ref: str) -> Iterator[bytes]:
    """``docker export``: the merged filesystem, upper over the image's layers."""
    c = engine.containers.get(ref)
    lower = engine.images.layer_dirs(engine.images.resolve(c.record["Image"]))
    tree = container_tree(c.dir / "diff", lower)
    engine._emit("container", "export", c)
    return tar_chunks(tree)
