"""Absolute paths a data root writes into its own records, rewritten after a move.

Only records hold host paths: container records (volume mount ``Source``), volume and
network metadata, the backup catalogue's sidecars and schedules. Image data is content
addressed and container/volume trees are user data: those are never touched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_bytes

# Trees below which files are user data or content-addressed, never records.
_DATA_DIRS = {"layers", "blobs", "imagedb", "diff", "rootfs", "work", "_data", "merged"}


def rewrite(value: Any, old: str, new: str) -> Any:
    """``value`` with every string equal to ``old`` or under ``old/`` moved to ``new``."""
    if isinstance(value, str):
        if value == old or value.startswith(old + "/"):
            return new + value[len(old):]
        return value
    if isinstance(value, list):
        return [rewrite(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: rewrite(v, old, new) for k, v in value.items()}
    return value


def record_files(root: Path) -> Iterator[Path]:
    """Every JSON record of a data root (depth-limited, data trees skipped)."""
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = [d for d in dirnames if d not in _DATA_DIRS and depth < 3]
        for name in filenames:
            if name.endswith(".json"):
                yield Path(dirpath) / name


def rewrite_records(root: Path, old: str, new: str) -> list[str]:
    """Rewrite the records under ``root`` in place (atomically, modes kept); returns the
    paths (relative to root) that changed. Running it twice changes nothing the second time."""
    changed = []
    needle = old.encode()
    for path in record_files(root):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if needle not in raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        moved = rewrite(data, old, new)
        if moved != data:
            mode = path.stat().st_mode & 0o7777
            atomic_write_bytes(path, json.dumps(moved, separators=(",", ":")).encode(), mode)
            changed.append(str(path.relative_to(root)))
    return changed
