"""The backups directory: archives plus a small JSON sidecar each, for quick listing."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from .. import errors
from ..fsutil import atomic_write_json, read_json
from .archive import SUFFIX

SUFFIXES = (SUFFIX, ".tar.zst", ".tar.gz")   # the last two: format 1
_SAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def new_name(base: str) -> str:
    """``<base>-<UTC time>-<random>`` plus the extension this host writes."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{_SAFE.sub('_', base.lstrip('/')) or 'backup'}-{stamp}-{secrets.token_hex(3)}" \
        + SUFFIX


def sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.json")


def write_entry(result: dict[str, Any]) -> dict[str, Any]:
    """Record a finished archive in the catalogue; returns the list entry."""
    m = result["Manifest"]
    path = Path(result["Path"])
    entry = {"Id": path.name, "Name": path.name, "Path": str(path), "Size": result["Size"],
             "Sha256": result["Sha256"], "Created": m.get("Created"), "Kind": m.get("Kind"),
             "Container": m.get("Container", ""), "Image": m.get("Image", ""),
             "Mode": m.get("Mode", ""), "Volumes": m.get("Volumes", []),
             "Schedule": m.get("Schedule", "")}
    atomic_write_json(sidecar(path), entry, mode=0o600)
    return entry


class Catalogue:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for path in self.root.iterdir():
            if path.name.startswith(".") or not path.name.endswith(SUFFIXES):
                continue
            try:
                entry = read_json(sidecar(path))
            except (OSError, ValueError):
                st = path.stat()
                entry = {"Id": path.name, "Name": path.name, "Path": str(path),
                         "Size": st.st_size, "Created": time.strftime(
                             "%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)),
                         "Kind": "", "Container": "", "Image": "", "Mode": "", "Schedule": ""}
            out.append(entry)
        return sorted(out, key=lambda e: e.get("Created") or "")

    def path(self, name: str) -> Path:
        """A catalogue name (with or without extension), or 404."""
        if "/" in name or name.startswith("."):
            raise errors.InvalidArgument(f"invalid backup name {name!r}")
        for cand in [name] + [name + s for s in SUFFIXES]:
            if (self.root / cand).is_file():
                return self.root / cand
        raise errors.NotFound(f"No such backup: {name}")

    def delete(self, name: str) -> int:
        """Remove an archive and its sidecar; returns the bytes they took."""
        path = self.path(name)
        freed = path.stat().st_size
        os.unlink(path)
        try:
            freed += sidecar(path).stat().st_size
            sidecar(path).unlink()
        except FileNotFoundError:
            pass
        return freed
