#!/usr/bin/env python3
"""Backup and restore throughput against plain ``tar | zstd`` of the same data, side by side.

A (stopped) container holds SIZE MB, half in its own filesystem (upper dir), half in a named
volume. Each half is 80 % large files (8 files; odd ones random bytes, even ones repetitive
log text) and 20 % small files (1-32 KiB, spread over 50 directories, also alternately
random and text): about half the bytes compress well, half not at all.

Backup: ``engine.backups.backup(..., mode="stop")`` (the API call, timed with
time.perf_counter around it: layer tars, checksums, zstd, manifest, fsync, rename,
catalogue) vs ``tar -cf - -C upper . -C volume . | zstd -q -3 -T0 > f``.
Restore: ``engine.backups.restore(..., force=True)`` into a second engine on its own data
root (verify every checksum, then create container and volume) vs ``zstd -dc f | tar -x``
into an empty directory. Removing the previous restore's result is done before the clock
starts, for both, and so is a sync(). CPU seconds (user + system, this process's
threads and its children) are printed too: on a shared host they vary less than wall time.
Page cache warm (one untimed run of each first); the order of the two
sides alternates between runs; medians of N runs.

Usage: bench/bench_backup.py [SIZE_MB=500] [N=5] [--profile] [--dir=/var/tmp]   (as root)
``--dir``: where the data roots, archives and reference files go (e.g. a tmpfs, to take the
disk out of the comparison).
``--profile`` runs one more backup and restore under cProfile (main thread only) and
prints the top functions by own time.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyjail.engine import Engine  # noqa: E402
from pyjail.images.bootstrap import build_rootfs_tar  # noqa: E402

LARGE_FILES = 8
TEXT = b"2026-11-27T20:00:00Z INFO request served in 12 ms path=/api/v1/items id=%06d\n"


def _payload(size: int, compressible: bool, rng: random.Random) -> bytes:
    if not compressible:
        return os.urandom(size)
    lines = b"".join(TEXT % rng.randrange(1_000_000) for _ in range(256))
    return (lines * (size // len(lines) + 1))[:size]


def fill(directory: Path, megabytes: int, seed: int) -> tuple[int, int]:
    """Large and small files totalling ``megabytes``; returns (files, bytes)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    total = megabytes << 20
    large = total * 8 // 10 // LARGE_FILES
    files = written = 0
    for i in range(LARGE_FILES):
        (directory / f"large{i}.bin").write_bytes(_payload(large, i % 2 == 0, rng))
        files, written = files + 1, written + large
    while written < total:
        size = min(rng.randrange(1024, 32 * 1024), total - written)
        sub = directory / f"small{files % 50:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{files:06d}").write_bytes(_payload(size, files % 2 == 0, rng))
        files, written = files + 1, written + size
    return files, written


def _cpu() -> float:
    """CPU seconds of this process (all threads) and its waited-for children (zstd, tar)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object], before: Callable[[], object] | None = None
          ) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    if before is not None:
        before()
    os.sync()   # earlier runs' dirty pages are not this run's writeback
    c, t = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t, _cpu() - c


def _rootfs() -> io.BytesIO:
    out = io.BytesIO()
    build_rootfs_tar("/bin/busybox", out, int(os.stat("/bin/busybox").st_mtime))
    out.seek(0)
    return out


def profile(label: str, fn: Callable[[], object]) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    print(f"\n=== profile: {label} (main thread) ===")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(14)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    base = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--dir=")), "/var/tmp")
    size_mb = int(args[0]) if args else 500
    n = int(args[1]) if len(args) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="pyjail-bench-backup-", dir=base))
    a = b = None
    try:
        a = Engine(work / "a", restart_policies=False)
        b = Engine(work / "b", restart_policies=False)
        a.images.import_rootfs(_rootfs(), "busybox:latest", changes=['CMD ["sh"]'])
        b.images.import_rootfs(_rootfs(), "busybox:latest", changes=['CMD ["sh"]'])
        c = a.containers.create({"Image": "busybox:latest", "Cmd": ["true"],
                                 "HostConfig": {"NetworkMode": "none",
                                                "Binds": ["benchvol:/data"]}}, name="big")
        upper = c.dir / "diff"
        volume = Path(a.volumes.path("benchvol"))
        f1, b1 = fill(upper / "app", size_mb // 2, 1)
        f2, b2 = fill(volume, size_mb // 2, 2)
        mb = (b1 + b2) / 1e6
        ref_out = work / "ref.tar.zst"
        ref_dest = work / "ref-restore"
        archives: list[str] = []

        def ref_backup() -> None:
            subprocess.run(f"tar -cf - -C {upper} . -C {volume} . | zstd -q -3 -T0 -c "
                           f"> {ref_out}", shell=True, check=True)

        def our_backup() -> None:
            archives.append(a.backups.backup("big", mode="stop")["Path"])

        def ref_clear() -> None:
            shutil.rmtree(ref_dest, ignore_errors=True)
            ref_dest.mkdir()

        def ref_restore() -> None:
            subprocess.run(f"zstd -q -dc {ref_out} | tar -C {ref_dest} -xf -", shell=True,
                           check=True)

        def our_clear() -> None:
            for old in b.containers.all():
                b.containers.remove(old.id, force=True)
            if b.volumes.exists("benchvol"):
                b.volumes.remove("benchvol", force=True)
            for old in archives[:-1]:    # keep the disk from filling up
                Path(old).unlink(missing_ok=True)
            del archives[:-1]

        def our_restore() -> None:
            b.backups.restore(Path(archives[-1]), force=True)

        ref_backup()
        our_backup()       # warm-up: page cache, imports
        times: dict[str, list[float]] = {"ref_b": [], "our_b": [], "ref_r": [], "our_r": []}
        cpu: dict[str, list[float]] = {k: [] for k in times}
        for i in range(n):
            pairs = [("ref_b", ref_backup), ("our_b", our_backup)]
            for key, fn in pairs if i % 2 == 0 else pairs[::-1]:
                wall, used = timed(fn)
                times[key].append(wall)
                cpu[key].append(used)
        ref_clear()
        ref_restore()
        our_clear()
        our_restore()      # warm-up
        for i in range(n):
            pairs = [("ref_r", ref_restore, ref_clear), ("our_r", our_restore, our_clear)]
            for key, fn, clear in pairs if i % 2 == 0 else pairs[::-1]:
                wall, used = timed(fn, clear)
                times[key].append(wall)
                cpu[key].append(used)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"data: {mb:.0f} MB in {f1 + f2} files ({2 * LARGE_FILES} large); archive: ours "
              f"{os.path.getsize(archives[-1]) / 1e6:.0f} MB, tar|zstd "
              f"{ref_out.stat().st_size / 1e6:.0f} MB; medians of {n}; {os.cpu_count()} CPUs; in {base}")
        for label, ours, ref, other in (("backup ", "our_b", "ref_b", "tar|zstd"),
                                        ("restore", "our_r", "ref_r", "zstd|tar")):
            print(f"{label}: pyjail {mb / med[ours]:5.0f} MB/s ({med[ours]:.2f} s)   "
                  f"{other} {mb / med[ref]:5.0f} MB/s ({med[ref]:.2f} s)   "
                  f"ratio {med[ref] / med[ours]:.2f}   "
                  f"[runs pyjail {' '.join(f'{t:.2f}' for t in times[ours])}; "
                  f"ref {' '.join(f'{t:.2f}' for t in times[ref])}]")
            print(f"         CPU seconds (all threads and children): pyjail "
                  f"{statistics.median(cpu[ours]):.2f}, ref {statistics.median(cpu[ref]):.2f}")
        if "--profile" in sys.argv:
            profile("backup", our_backup)
            our_clear()
            profile("restore", our_restore)
    finally:
        for e in (a, b):
            if e is not None:
                e.shutdown_supervisor()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
