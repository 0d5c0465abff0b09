"""``engine.backups``: backup, restore, verify, the catalogue and scheduled backups.

Schedules live in ``<data-root>/backups/schedules.json`` (atomic writes) and run on one
daemon thread of the engine, so they survive daemon restarts; each run emits a
``backup`` event and applies the schedule's retention (keep the last N, drop older than
max age) to the archives that schedule made.
"""

from __future__ import annotations

import calendar
import logging
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors
from ..fsutil import atomic_write_json, read_json
from .archive import SUFFIX, Progress, read_archive
from .catalogue import Catalogue, new_name, write_entry
from .create import MODES, backup_container, backup_volume
from .cron import Cron
from .restore import restore_archive

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("pyjail.backup")


def _created_unix(entry: dict[str, Any]) -> float:
    text = (entry.get("Created") or "1970-01-01T00:00:00Z").rstrip("Z")
    base, _, frac = text.partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


class BackupService:
    def __init__(self, engine: Engine, run_schedules: bool = True) -> None:
        self.engine = engine
        self.root = engine.data_root / "backups"
        self.catalogue = Catalogue(self.root)
        self._sched_path = self.root / "schedules.json"
        self._lock = threading.RLock()
        self._wake = threading.Event()
        for stale in self.root.glob(".tmp-*"):   # an interrupted restore's staging or upload
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        for stale in self.root.glob(".*.partial"):   # an archive a crash left unfinished
            stale.unlink(missing_ok=True)
        self._thread: threading.Thread | None = None
        if run_schedules:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="pyjail-backup-schedules")
            self._thread.start()

    def _staging(self) -> Path:
        return Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))

    def _dest(self, base: str, output: str | None, name: str | None = None) -> Path:
        if name:   # the client's ?name=: a catalogue name, extension added
            if "/" in name or name.startswith(".") or not name.strip():
                raise errors.InvalidArgument(f"invalid backup name {name!r}")
            dest = (Path(output) if output else self.root) / (name + SUFFIX)
            if dest.exists():
                raise errors.Conflict(f"backup {dest.name} already exists")
            return dest
        if not output:
            return self.root / new_name(base)
        out = Path(output)
        if out.is_dir():
            return out / new_name(base)
        if not out.parent.is_dir():
            raise errors.InvalidArgument(f"output directory {out.parent} does not exist")
        return out

    # -- backup / restore -------------------------------------------------------------------
    def backup(self, ref: str, *, mode: str = "live", with_image: bool = False,
               include_binds: bool = False, output: str | None = None,
               pre_hook: str | None = None, post_hook: str | None = None,
               progress: Progress | None = None, schedule: str = "",
               name: str | None = None) -> dict[str, Any]:
        """Back up a container; returns the catalogue entry (Path, Size, Sha256, …)."""
        c = self.engine.containers.get(ref)
        dest = self._dest(c.name, output, name)
        result = backup_container(
            self.engine, c.id, dest, mode=mode, with_image=with_image,
            include_binds=include_binds, pre_hook=pre_hook, post_hook=post_hook,
            progress=progress, extra={"Schedule": schedule} if schedule else None)
        entry = write_entry(result)
        self.engine._emit("backup", "create", c, path=entry["Path"], mode=mode,
                          schedule=schedule)
        return entry

    def backup_volume(self, name: str, *, output: str | None = None,
                      progress: Progress | None = None, schedule: str = "",
                      backup_name: str | None = None) -> dict[str, Any]:
        dest = self._dest(f"volume-{name}", output, backup_name)
        result = backup_volume(self.engine, name, dest, progress=progress,
                               extra={"Schedule": schedule} if schedule else None)
        entry = write_entry(result)
        self.engine._emit("backup", "create", name, path=entry["Path"], volume=name)
        return entry

    def resolve(self, name_or_path: str) -> Path:
        """A catalogue name, or an absolute path to an archive on this host."""
        if name_or_path.startswith("/"):
            path = Path(name_or_path)
            if not path.is_file():
                raise errors.NotFound(f"No such backup archive: {name_or_path}")
            return path
        return self.catalogue.path(name_or_path)

    def restore(self, archive: str | Path, *, name: str | None = None, force: bool = False,
                start: bool | None = None, progress: Progress | None = None) -> dict[str, Any]:
        path = archive if isinstance(archive, Path) else self.resolve(archive)
        result = restore_archive(self.engine, path, self._staging(), name=name, force=force,
                                 start=start, progress=progress)
        self.engine._emit("backup", "restore", result["Name"], path=str(path))
        return result

    def verify(self, archive: str | Path, progress: Progress | None = None) -> dict[str, Any]:
        path = archive if isinstance(archive, Path) else self.resolve(archive)
        manifest = read_archive(path, None, progress)
        return {"Path": str(path), "Valid": True, "Manifest": manifest}

    def list(self) -> list[dict[str, Any]]:
        return self.catalogue.list()

    def delete(self, name: str) -> int:
        """Remove one archive; returns the bytes freed (archive plus sidecar)."""
        freed = self.catalogue.delete(name)
        self.engine._emit("backup", "delete", name)
        return freed

    def prune(self, *, keep: int | None = None, max_age: float | None = None,
              container: str = "", schedule: str = "") -> dict[str, Any]:
        """Old archives of the catalogue: per container (or volume), keep the newest
        ``keep`` and drop those older than ``max_age`` seconds. ``container``/``schedule``
        narrow what is considered. Needs at least one of keep, max_age."""
        if keep is None and max_age is None:
            raise errors.InvalidArgument("backup prune needs keep or max_age")
        if keep is not None and keep < 0 or max_age is not None and max_age < 0:
            raise errors.InvalidArgument("keep and max_age must not be negative")
        groups: dict[str, list[dict[str, Any]]] = {}
        for e in self.catalogue.list():
            owner = e.get("Container") or ",".join(e.get("Volumes") or []) or e["Name"]
            if container and container.lstrip("/") != owner.lstrip("/"):
                continue
            if schedule and e.get("Schedule") != schedule:
                continue
            groups.setdefault(owner, []).append(e)
        limit = time.time() - max_age if max_age is not None else None
        doomed = []
        for entries in groups.values():
            entries.sort(key=_created_unix, reverse=True)   # newest first
            for i, e in enumerate(entries):
                if (keep is not None and i >= keep) or (
                        limit is not None and _created_unix(e) < limit):
                    doomed.append(e["Name"])
        deleted, freed = [], 0
        for name in doomed:
            try:
                freed += self.delete(name)
            except errors.NotFound:
                continue
            deleted.append(name)
        return {"BackupsDeleted": deleted, "SpaceReclaimed": freed}

    # -- schedules --------------------------------------------------------------------------
    def _load(self) -> list[dict[str, Any]]:
        try:
            return list(read_json(self._sched_path))
        except (FileNotFoundError, ValueError):
            return []

    def _save(self, schedules: list[dict[str, Any]]) -> None:
        atomic_write_json(self._sched_path, schedules)

    def schedules(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._load()

    def add_schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("Container") or ""
        volume = body.get("Volume") or ""
        if bool(target) == bool(volume):
            raise errors.InvalidArgument("a schedule needs exactly one of Container or Volume")
        if target:
            target = self.engine.containers.get(target).name.lstrip("/")
        else:
            self.engine.volumes.inspect(volume)
        interval, cron = body.get("Interval"), body.get("Cron")
        if bool(interval) == bool(cron):
            raise errors.InvalidArgument("a schedule needs exactly one of Interval or Cron")
        if cron:
            Cron(str(cron))
        elif not isinstance(interval, (int, float)) or interval < 1:
            raise errors.InvalidArgument("Interval must be a number of seconds >= 1")
        mode = body.get("Mode") or "live"
        if mode not in MODES:
            raise errors.InvalidArgument(f"invalid backup mode {mode!r}")
        keep, max_age = body.get("Keep") or 0, body.get("MaxAge") or 0
        if not isinstance(keep, int) or keep < 0 or not isinstance(max_age, (int, float)):
            raise errors.InvalidArgument("Keep must be an integer >= 0, MaxAge seconds")
        now = time.time()
        sched = {"Id": secrets.token_hex(8), "Container": target, "Volume": volume,
                 "Interval": interval or 0, "Cron": cron or "", "Keep": keep, "MaxAge": max_age,
                 "Mode": mode, "WithImage": bool(body.get("WithImage")),
                 "Output": body.get("Output") or "", "Runs": 0, "LastRun": 0.0,
                 "LastError": "", "NextRun": self._next(interval, cron, now)}
        with self._lock:
            schedules = self._load()
            schedules.append(sched)
            self._save(schedules)
        self._wake.set()
        return sched

    def delete_schedule(self, sched_id: str) -> None:
        with self._lock:
            schedules = self._load()
            kept = [s for s in schedules if s["Id"] != sched_id]
            if len(kept) == len(schedules):
                raise errors.NotFound(f"No such schedule: {sched_id}")
            self._save(kept)

    @staticmethod
    def _next(interval: float | None, cron: str | None, after: float) -> float:
        if cron:
            return Cron(cron).next_after(after)
        return after + float(interval or 0)

    def _loop(self) -> None:
        while not self.engine._closed:
            try:
                delay = self.run_due()
            except Exception:  # noqa: BLE001 - the scheduler must survive anything
                log.exception("scheduled backups failed")
                delay = 5.0
            self._wake.wait(max(0.05, min(delay, 5.0)))
            self._wake.clear()

    def run_due(self) -> float:
        """Run every due schedule once; returns seconds until the next one is due."""
        now = time.time()
        for sched in self.schedules():
            if sched["NextRun"] <= now and not self.engine._closed:
                self._run(sched)
        upcoming = [s["NextRun"] for s in self.schedules()]
        return min(upcoming) - time.time() if upcoming else 5.0

    def _run(self, sched: dict[str, Any]) -> None:
        error = ""
        try:
            if sched["Container"]:
                self.backup(sched["Container"], mode=sched["Mode"], with_image=sched["WithImage"],
                            output=sched["Output"] or None, schedule=sched["Id"])
            else:
                self.backup_volume(sched["Volume"], output=sched["Output"] or None,
                                   schedule=sched["Id"])
            self._retain(sched)
        except errors.PyjailError as e:
            error = e.message
            self.engine._emit("backup", "error", sched["Container"] or sched["Volume"],
                              schedule=sched["Id"], error=error)
        with self._lock:
            schedules = self._load()
            for s in schedules:
                if s["Id"] == sched["Id"]:
                    now = time.time()
                    s.update(Runs=s["Runs"] + 1, LastRun=now, LastError=error,
                             NextRun=self._next(s["Interval"], s["Cron"], now))
            self._save(schedules)

    def _retain(self, sched: dict[str, Any]) -> None:
        mine = [e for e in self.catalogue.list() if e.get("Schedule") == sched["Id"]]
        mine.sort(key=_created_unix)
        drop = []
        if sched["Keep"]:
            drop = mine[:-sched["Keep"]]
        if sched["MaxAge"]:
            limit = time.time() - sched["MaxAge"]
            drop += [e for e in mine if _created_unix(e) < limit and e not in drop]
        for e in drop:
            try:
                self.delete(e["Name"])
            except errors.NotFound:
                pass
