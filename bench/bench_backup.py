#!/usr/bin/env python3
"""Backup and restore throughput against plain ``tar | zstd`` of the same data.

A (stopped) container holds SIZE MB: half in its own filesystem (upper dir), half in a
named volume; half of the bytes random, half repetitive text, so compression matters
but does not dominate. Backup = ``engine.backups.backup`` (layer tars staged, packed
through zstd, manifest, rename) vs ``tar -cf - -C upper . -C volume . | zstd -3 -T0``.
Restore = ``engine.backups.restore`` into a second engine on another data root (verify
everything, then create) vs ``zstd -dc | tar -xf -``. Page cache warm, best of N runs.

Usage: bench/bench_backup.py [SIZE_MB=500] [N=2]   (as root)
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyjail.engine import Engine  # noqa: E402
from pyjail.images.bootstrap import build_rootfs_tar  # noqa: E402

FILE_MB = 8


def fill(directory: Path, megabytes: int) -> None:
    """Files of FILE_MB: alternately random and repetitive."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (b"2026-11-27T20:00:00Z INFO request served in 12 ms path=/api/v1/items\n" * 20000)
    for i in range(max(1, megabytes // FILE_MB)):
        size = FILE_MB << 20
        data = os.urandom(size) if i % 2 == 0 else (text * (size // len(text) + 1))[:size]
        (directory / f"f{i:04d}.bin").write_bytes(data)


def best(fn, n: int) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    work = Path(tempfile.mkdtemp(prefix="pyjail-bench-backup-", dir="/var/tmp"))
    a = b = None
    try:
        a = Engine(work / "a", restart_policies=False)
        b = Engine(work / "b", restart_policies=False)
        tar = io.BytesIO()
        build_rootfs_tar("/bin/busybox", tar, int(os.stat("/bin/busybox").st_mtime))
        tar.seek(0)
        a.images.import_rootfs(tar, "busybox:latest", changes=['CMD ["sh"]'])
        c = a.containers.create({"Image": "busybox:latest", "Cmd": ["true"],
                                 "HostConfig": {"NetworkMode": "none",
                                                "Binds": ["benchvol:/data"]}}, name="big")
        upper = c.dir / "diff"
        volume = Path(a.volumes.path("benchvol"))
        fill(upper / "app", size_mb // 2)
        fill(volume, size_mb // 2)
        data_bytes = sum(f.stat().st_size for d in (upper, volume) for f in d.rglob("*")
                         if f.is_file())
        ref_out = work / "ref.tar.zst"

        def ref_backup() -> None:
            subprocess.run(f"tar -cf - -C {upper} . -C {volume} . | zstd -q -3 -T0 -c "
                           f"> {ref_out}", shell=True, check=True)

        archives: list[str] = []

        def our_backup() -> None:
            archives.append(a.backups.backup("big", mode="stop")["Path"])

        ref_dest = work / "ref-restore"

        def ref_restore() -> None:
            shutil.rmtree(ref_dest, ignore_errors=True)
            ref_dest.mkdir()
            subprocess.run(f"zstd -q -dc {ref_out} | tar -C {ref_dest} -xf -", shell=True,
                           check=True)

        def our_restore() -> None:
            b.backups.restore(Path(archives[-1]), force=True)

        ref_backup()
        our_backup()    # warm-up: page cache, imports
        t_ref_b, t_our_b = best(ref_backup, n), best(our_backup, n)
        b.images.import_rootfs(io.BytesIO(_rootfs()), "busybox:latest", changes=['CMD ["sh"]'])
        ref_restore()
        our_restore()
        t_ref_r, t_our_r = best(ref_restore, n), best(our_restore, n)
        mb = data_bytes / 1e6
        print(f"data: {mb:.0f} MB; archive: ours {os.path.getsize(archives[-1]) / 1e6:.0f} MB, "
              f"tar|zstd {ref_out.stat().st_size / 1e6:.0f} MB; best of {n}")
        print(f"backup : pyjail {mb / t_our_b:7.0f} MB/s ({t_our_b:.2f} s)   "
              f"tar|zstd {mb / t_ref_b:7.0f} MB/s ({t_ref_b:.2f} s)   "
              f"ratio (pyjail/ref throughput) {t_ref_b / t_our_b:.2f}")
        print(f"restore: pyjail {mb / t_our_r:7.0f} MB/s ({t_our_r:.2f} s)   "
              f"zstd|tar {mb / t_ref_r:7.0f} MB/s ({t_ref_r:.2f} s)   "
              f"ratio (pyjail/ref throughput) {t_ref_r / t_our_r:.2f}")
    finally:
        for e in (a, b):
            if e is not None:
                e.shutdown_supervisor()
        shutil.rmtree(work, ignore_errors=True)


def _rootfs() -> bytes:
    out = io.BytesIO()
    build_rootfs_tar("/bin/busybox", out, int(os.stat("/bin/busybox").st_mtime))
    return out.getvalue()


if __name__ == "__main__":
    main()
