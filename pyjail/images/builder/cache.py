"""The build cache: (parent image, instruction, args, copied content) -> image id.

Why a separate file and not labels in image configs: a lookup must be one dict access
(the cached-rebuild path creates no container and touches no layer), and entries whose
image has been deleted simply miss. Also records each build step's parent, so image
listing can hide intermediate images the way Docker hides images that have children.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from pyjail.fsutil import atomic_write_json, read_json


def cache_key(parent: str, instruction: str, args: dict[str, str | None],
              extra: str = "") -> str:
    text = json.dumps([parent, instruction, sorted((k, v) for k, v in args.items()
                                                   if v is not None), extra])
    return hashlib.sha256(text.encode()).hexdigest()


def temp_file(directory: Path, what: str) -> str:
    """A temp file named after our pid, so ``sweep`` can tell a crashed writer's leftovers."""
    fd, path = tempfile.mkstemp(prefix=f".tmp-{os.getpid()}-{what}-", dir=directory)
    os.close(fd)
    return path


def sweep(directory: Path) -> None:
    """Remove temp files of writers that are gone (a crash mid-build or mid-commit)."""
    for name in os.listdir(directory):
        if not name.startswith(".tmp-"):
            continue
        try:
            pid = int(name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
        except PermissionError:
            pass


class BuildCache:
    """``<images root>/builder/cache.json``, reloaded when another process changed it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "cache.json"
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self.entries: dict[str, str] = {}
        self.parents: dict[str, str] = {}
        sweep(self.dir)
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mtime:
            return
        try:
            data: dict[str, Any] = read_json(self.path)
        except (OSError, ValueError):
            return
        self.entries = dict(data.get("entries") or {})
        self.parents = dict(data.get("parents") or {})
        self._mtime = mtime

    def get(self, key: str) -> str | None:
        with self._lock:
            self._reload()
            return self.entries.get(key)

    def update(self, entries: dict[str, str], parents: dict[str, str],
               live: set[str] | None = None) -> None:
        """Merge new entries and write atomically; drop those whose image is gone."""
        if not entries and not parents and live is None:
            return
        with self._lock:
            self._reload()
            self.entries.update(entries)
            self.parents.update(parents)
            if live is not None:
                self.entries = {k: v for k, v in self.entries.items() if v in live}
                self.parents = {k: v for k, v in self.parents.items() if k in live}
            atomic_write_json(self.path, {"entries": self.entries, "parents": self.parents})
            self._mtime = os.stat(self.path).st_mtime_ns
