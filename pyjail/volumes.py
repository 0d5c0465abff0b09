"""Named volumes: a directory per volume under the data root, with Docker's metadata."""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
from pathlib import Path

from .errors import Conflict, InvalidArgument, VolumeNotFound
from .fsutil import atomic_write_json, read_json

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class VolumeStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _meta_path(self, name: str) -> Path:
        return self.root / name / "meta.json"

    def create(self, name: str | None = None, labels: dict | None = None,
               driver: str = "local", options: dict | None = None,
               anonymous: bool = False) -> dict:
        if driver not in ("local", "", None):
            raise InvalidArgument(f"volume driver {driver!r} is not supported")
        name = name or secrets.token_hex(32)
        if not VOLUME_NAME_RE.match(name):
            raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, '
                                  "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed")
        with self._lock:
            if self._meta_path(name).exists():
                return self.inspect(name)
            (self.root / name / "_data").mkdir(parents=True, exist_ok=True)
            labels = dict(labels or {})
            if anonymous:
                labels.setdefault("com.docker.volume.anonymous", "")
            meta = {"Name": name, "Driver": "local", "Labels": labels, "Options": options or {},
                    "Scope": "local",
                    "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            atomic_write_json(self._meta_path(name), meta)
            return self.inspect(name)

    def exists(self, name: str) -> bool:
        return self._meta_path(name).exists()

    def inspect(self, name: str) -> dict:
        try:
            meta = read_json(self._meta_path(name))
        except (FileNotFoundError, NotADirectoryError):
            raise VolumeNotFound(f"get {name}: no such volume") from None
        meta["Mountpoint"] = str(self.root / name / "_data")
        return meta

    def list(self) -> list[dict]:
        out = []
        for entry in sorted(self.root.iterdir()):
            if (entry / "meta.json").exists():
                out.append(self.inspect(entry.name))
        return out

    def path(self, name: str) -> str:
        return self.inspect(name)["Mountpoint"]

    def remove(self, name: str, in_use_by: list[str] | None = None, force: bool = False) -> None:
        if not self.exists(name):
            if force:
                return
            raise VolumeNotFound(f"get {name}: no such volume")
        if in_use_by:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(in_use_by)}]")
        shutil.rmtree(self.root / name)

    def size(self, name: str) -> int:
        """Bytes on disk, Docker's rule: non-directories, each hardlinked file once."""
        from .storage.usage import tree_size
        return tree_size(self.root / name / "_data")
