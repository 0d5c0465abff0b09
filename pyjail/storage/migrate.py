"""``pyjail storage migrate``: move a whole data root to another directory.

Why offline: a daemon holds the data root's lock and its containers keep files open in
it, so the move refuses while the daemon runs or any container runs (it names them),
rather than stopping anything on its own. Order of work, each step safe to repeat:

1. lock the old root (the daemon's own ``.lock``), check no container runs, then stop
   the old root's idle supervisor and network objects (both are keyed by the root path);
2. same filesystem: one ``rename`` (atomic); otherwise ``cp -a`` into the new directory,
   verify the copy byte for byte, and only then remove the old tree;
3. rewrite the absolute paths records hold (volume mounts, catalogue sidecars, schedules).

A marker file, ``.pyjail-migrate.json``, travels with the tree and records the step
reached; running the same command again after a crash finishes the move.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from ..engine import lock_data_root
from ..fsutil import atomic_write_json, fsync_dir, read_json
from .paths import rewrite_records
from .treecopy import copy_tree, verify

log = logging.getLogger("pyjail.storage")

MARKER = ".pyjail-migrate.json"
Say = Callable[[str], None]


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == str(root) or point.startswith(prefix):
                out.append(point)
    return out


def _container_names(root: Path, ids: list[str]) -> list[str]:
    names = []
    for cid in ids:
        try:
            names.append(read_json(root / "containers" / cid / "config.json")["Name"].lstrip("/"))
        except (OSError, ValueError, KeyError):
            names.append(cid[:12])
    return names


def _quiesce(root: Path, say: Say) -> None:
    """Refuse if a container runs; else stop what is keyed by the old path (supervisor,
    network objects, host-wide claims) so nothing of the old root outlives the move."""
    from ..engine import Engine, run_dir_for
    from ..supervisor.client import SupervisorClient
    sup = SupervisorClient(run_dir_for(str(root)))
    try:
        live = sup.request("list")["containers"]
    except errors.SupervisorUnavailable:
        live = {}
    if live:
        names = _container_names(root, sorted(live))
        raise errors.Conflict(f"containers are running on {root}: {', '.join(names)}; "
                              "stop them first")
    mounted = _mounts_under(root)
    if mounted:
        raise errors.Conflict(f"something is mounted under {root}: {mounted[0]}")
    if (root / "containers").is_dir() or (root / "network").is_dir():
        try:
            engine = Engine(root, start_supervisor=False, restart_policies=False)
        except errors.PyjailError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged record: one line, not a trace
            raise errors.RuntimeFailure(f"cannot open the data root {root}: "
                                        f"{type(exc).__name__}: {exc}") from None
        if any(c.running for c in engine.containers.all()):
            engine.close()
            raise errors.Conflict(f"containers are running on {root}; stop them first")
        engine.shutdown_supervisor()   # no container runs: only the idle supervisor stops
        say(f"stopped the idle supervisor and network objects of {root}")
    shutil.rmtree(run_dir_for(str(root)), ignore_errors=True)


def _check_paths(src: Path, dst: Path) -> None:
    if src == dst:
        raise errors.InvalidArgument("the new data root is the old one")
    if dst.is_relative_to(src) or src.is_relative_to(dst):
        raise errors.InvalidArgument(f"{dst} and {src} must not contain each other")
    if not dst.parent.is_dir():
        raise errors.InvalidArgument(f"{dst.parent} does not exist")


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(os.path.abspath(path))
    return Path(os.path.realpath(p.parent)) / p.name


def migrate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
            copy: bool = False, say: Say | None = None) -> dict[str, Any]:
    """Move the data root ``src`` to ``dst``; ``copy`` forces copy-verify-delete even on one
    filesystem. Returns ``{"From", "To", "Method", "Rewritten"}``."""
    say = say or (lambda _m: None)
    given = os.path.abspath(src)
    src_p, dst_p = Path(os.path.realpath(given)), _resolve(dst)
    _check_paths(src_p, dst_p)
    if given != str(src_p):   # a symlinked root: records hold the path it was opened by
        say(f"{given} is a link to {src_p}: moving {src_p}; records of either are rewritten")
    olds = sorted({given, str(src_p)}, key=len, reverse=True)
    marker = _read_marker(dst_p / MARKER)
    if marker and marker.get("From") == str(src_p):
        return _resume(src_p, dst_p, marker, say, olds)
    if not src_p.is_dir():
        raise errors.NotFound(f"no data root at {src_p}")
    if dst_p.exists() and (not dst_p.is_dir() or any(dst_p.iterdir())):
        raise errors.Conflict(f"{dst_p} exists and is not empty")
    fd = lock_data_root(src_p)
    try:
        _quiesce(src_p, say)
        same_fs = os.stat(src_p).st_dev == os.stat(dst_p.parent).st_dev
        if same_fs and not copy and _rename(src_p, dst_p):
            say(f"renamed {src_p} to {dst_p}")
            return _finish(src_p, dst_p, "rename", say, olds)
        dst_p.mkdir(mode=0o711, exist_ok=True)
        _write_marker(dst_p, src_p, dst_p, "copying")
        return _copy(src_p, dst_p, say, olds)
    finally:
        os.close(fd)


def _rename(src: Path, dst: Path) -> bool:
    """One atomic rename; False when the kernel says it crosses mounts (a bind mount on the
    same device), so the caller copies instead."""
    _write_marker(src, src, dst, "renamed")   # travels with the tree
    try:
        os.rename(src, dst)   # the lock's inode moves with the tree
    except OSError as exc:
        (src / MARKER).unlink(missing_ok=True)
        if exc.errno == errno.EXDEV:
            return False
        raise errors.RuntimeFailure(f"renaming {src} to {dst}: {exc.strerror}") from None
    fsync_dir(dst.parent)
    fsync_dir(src.parent)
    return True


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        return dict(read_json(path))
    except (OSError, ValueError):
        return None


def _write_marker(where: Path, src: Path, dst: Path, step: str) -> None:
    atomic_write_json(where / MARKER, {"From": str(src), "To": str(dst), "Step": step,
                                       "Time": time.time()})


def _copy(src: Path, dst: Path, say: Say, olds: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    for entry in src.iterdir():   # into the marked directory, entry by entry
        if entry.name != MARKER:
            copy_tree(entry, dst / entry.name)
    os.chmod(dst, os.stat(src).st_mode & 0o7777)
    say(f"copied {src} to {dst} in {time.monotonic() - started:.1f}s; verifying")
    verify(src, dst, skip={MARKER})
    _write_marker(dst, src, dst, "copied")
    shutil.rmtree(src)
    say(f"verified the copy and removed {src}")
    return _finish(src, dst, "copy", say, olds)


def _resume(src: Path, dst: Path, marker: dict[str, Any], say: Say,
            olds: list[str]) -> dict[str, Any]:
    """The same command again after a crash: redo or finish the step the marker names."""
    step = marker.get("Step")
    say(f"resuming an interrupted migration of {src} (step: {step})")
    if step == "copying":   # the copy was never verified: start it over
        if not src.is_dir():
            raise errors.RuntimeFailure(f"{src} vanished during an unfinished copy; "
                                        f"{dst} is incomplete")
        fd = lock_data_root(src)
        try:
            for entry in dst.iterdir():
                if entry.name != MARKER:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            return _copy(src, dst, say, olds)
        finally:
            os.close(fd)
    fd = lock_data_root(dst)
    try:
        if step == "copied":
            shutil.rmtree(src, ignore_errors=True)
            return _finish(src, dst, "copy", say, olds)
        return _finish(src, dst, "rename", say, olds)   # "renamed": only the rewrite was left
    finally:
        os.close(fd)


def _finish(src: Path, dst: Path, method: str, say: Say, olds: list[str]) -> dict[str, Any]:
    changed: list[str] = []
    for old in olds:   # longest first: a link path may be a prefix of the real one
        changed += [c for c in rewrite_records(dst, old, str(dst)) if c != MARKER]
    if changed:
        say(f"rewrote paths in {len(changed)} record(s)")
    (dst / MARKER).unlink(missing_ok=True)
    fsync_dir(dst)
    return {"From": str(src), "To": str(dst), "Method": method, "Rewritten": changed}


def set_config_data_root(config_file: str | os.PathLike[str], data_root: str) -> None:
    """Point a daemon.json-style file's ``data-root`` at the new place (other keys kept)."""
    path = Path(config_file)
    try:
        data = read_json(path) if path.exists() else {}
    except ValueError as exc:
        raise errors.InvalidArgument(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument(f"{path} is not a JSON object")
    data["data-root"] = data_root
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    atomic_write_json(path, data, mode=mode)
