#!/usr/bin/env python3
"""``storage migrate --copy`` (copy, verify every byte, delete) against plain
``cp -a --preserve=all`` then ``rm -rf``, on the same tree, side by side.

The tree looks like a data root: SIZE MB in ``images/layers/*/diff`` (80 % in 16 large
files, 20 % in 1-32 KiB files over 50 directories), a few hardlinks and symlinks, and
JSON records
(catalogue sidecars). Both sides move it to a fresh directory on the same filesystem and remove
the source; the tree is rebuilt (untimed) before each run, then sync. Medians of N runs;
the ratio says what the verification pass costs. Page cache warm (the tree was just
written), which is the case right after a daemon stops.

Usage: bench/bench_migrate.py [SIZE_MB=300] [N=3]   (as root)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyjail.storage.migrate import migrate  # noqa: E402


def make_tree(root: Path, size_mb: int) -> None:
    rng = random.Random(7)
    total = size_mb << 20
    layer = root / "images" / "layers" / "a" / "diff"
    layer.mkdir(parents=True)
    big = int(total * 0.8) // 16
    for i in range(16):
        (layer / f"big{i}").write_bytes(rng.randbytes(big))
    left, n = int(total * 0.2), 0
    while left > 0:
        d = layer / f"d{n % 50}"
        d.mkdir(exist_ok=True)
        size = min(left, rng.randint(1 << 10, 32 << 10))
        (d / f"f{n}").write_bytes(rng.randbytes(size))
        left -= size
        n += 1
    os.link(layer / "big0", layer / "big0-link")
    os.symlink("/etc/passwd", layer / "abs-link")
    (root / "backups").mkdir()
    for i in range(20):   # catalogue sidecars: records holding the root's path
        (root / "backups" / f".b{i}.tar.zst.json").write_text(json.dumps(
            {"Id": f"b{i}.tar.zst", "Path": str(root / "backups" / f"b{i}.tar.zst")}))
    subprocess.run(["sync"], check=True)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = Path(tempfile.mkdtemp(prefix="pyjail-bench-migrate-", dir="/var/tmp"))
    src, dst = base / "src", base / "dst"

    def ours_once() -> None:
        migrate(src, dst, copy=True)

    def plain_once() -> None:
        subprocess.run(["cp", "-a", "--preserve=all", str(src), str(dst)], check=True)
        shutil.rmtree(src)

    ours, plain = [], []
    try:
        for i in range(runs):
            for side in (("ours", "plain") if i % 2 == 0 else ("plain", "ours")):
                shutil.rmtree(src, ignore_errors=True)
                shutil.rmtree(dst, ignore_errors=True)
                make_tree(src, size_mb)
                if side == "ours":
                    ours.append(timed(ours_once))
                else:
                    plain.append(timed(plain_once))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    mo, mp = statistics.median(ours), statistics.median(plain)
    print(f"tree {size_mb} MB, {runs} runs each (medians)")
    print(f"  storage migrate --copy  {mo:7.2f} s  {size_mb / mo:7.1f} MB/s")
    print(f"  cp -a && rm -rf         {mp:7.2f} s  {size_mb / mp:7.1f} MB/s")
    print(f"  ratio (ours / plain)    {mo / mp:7.2f}")


if __name__ == "__main__":
    main()
