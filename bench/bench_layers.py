#!/usr/bin/env python3
"""Layer extraction throughput: pyjail's extract_layer against GNU `tar -xf`.

Builds a ~200 MB tree in a tmp dir (many small files in nested dirs, a few large files,
symlinks, hardlinks), archives it once with GNU tar, then extracts it alternately with
`tar -xf` and with extract_layer (N rounds each, fresh destination every time, page cache
warm for both) and prints the median seconds, MB/s and the throughput ratio pyjail / tar.
The two results are compared entry by entry (type, mode, owner, size, mtime, link target).
The order alternates every round; CPU time (user+sys) is printed beside wall time because
wall time on a shared VM is noisy. --dir picks the filesystem (default: the tmp dir; try
/dev/shm to see the CPU cost without the disk's file-creation cost).
Usage: bench/bench_layers.py [N=7] [--gzip] [--dir DIR]   (as root: both then chown)
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyjail.images.layers import extract_layer

SMALL_FILES = 20_000       # 0.5-8 KiB each, ~85 MB
LARGE_FILES = 12           # 10 MiB each, ~126 MB


def make_tree(root: Path) -> int:
    rng = random.Random(42)
    total = 0
    payload = rng.randbytes(1 << 20)
    for i in range(SMALL_FILES):
        d = root / f"d{i % 40:02d}" / f"s{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = rng.randint(512, 8192)
        off = rng.randint(0, len(payload) - size)
        (d / f"f{i:05d}.txt").write_bytes(payload[off:off + size])
        total += size
        if i % 500 == 0:
            (d / f"l{i:05d}").symlink_to(f"f{i:05d}.txt")
            os.link(d / f"f{i:05d}.txt", d / f"h{i:05d}")
    big = root / "big"
    big.mkdir()
    for i in range(LARGE_FILES):
        with open(big / f"blob{i}.bin", "wb") as f:
            f.writelines(payload for _ in range(10))
        total += 10 << 20
    os.chmod(root / "d00" / "s0" / "f00000.txt", 0o4755)
    os.chown(root / "d01", 1000, 1000) if os.geteuid() == 0 else None
    return total


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            link = os.readlink(p) if os.path.islink(p) else ""
            size = st.st_size if not os.path.isdir(p) else 0
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, size,
                                             int(st.st_mtime), link, st.st_nlink)
    return out


def cpu_seconds(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed(fn, who: int) -> tuple[float, float]:
    c0, t0 = cpu_seconds(who), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_seconds(who) - c0


def main() -> None:
    argv = sys.argv[1:]
    where = None
    if "--dir" in argv:
        i = argv.index("--dir")
        where = argv[i + 1]
        del argv[i:i + 2]
    args = [a for a in argv if not a.startswith("--")]
    rounds = int(args[0]) if args else 7
    gzip = "--gzip" in argv
    with tempfile.TemporaryDirectory(prefix="bench-layers-", dir=where) as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        total = make_tree(src)
        tarball = tmp / ("layer.tar.gz" if gzip else "layer.tar")
        subprocess.run(["tar", "-C", str(src), "-cf", str(tarball)] + (["-z"] if gzip else [])
                       + ["."], check=True)
        print(f"where: {tmp}")
        print(f"tree: {total / 1e6:.0f} MB of file data, {SMALL_FILES} small + {LARGE_FILES} "
              f"large files; archive {tarball.stat().st_size / 1e6:.0f} MB"
              f"{' (gzip)' if gzip else ''}")

        def run_tar(dest: Path) -> None:
            subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest)], check=True)

        def run_ours(dest: Path) -> None:
            extract_layer(tarball, dest)

        runners = [("tar -xf", run_tar, resource.RUSAGE_CHILDREN),
                   ("extract_layer", run_ours, resource.RUSAGE_SELF)]
        times: dict[str, list[float]] = {"tar -xf": [], "extract_layer": []}
        cpu: dict[str, list[float]] = {"tar -xf": [], "extract_layer": []}
        for i in range(rounds + 1):               # round 0 warms the page cache, not counted
            for label, fn, who in (runners if i % 2 else runners[::-1]):
                dest = tmp / f"out-{label[:3]}"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                subprocess.run(["sync"], check=True)
                t, c = timed(lambda fn=fn, dest=dest: fn(dest), who)
                if i:
                    times[label].append(t)
                    cpu[label].append(c)
        a, b = snapshot(tmp / "out-tar"), snapshot(tmp / "out-ext")
        diff = [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
        print(f"trees identical: {not diff}"
              + (f" (first differences: {diff[:5]})" if diff else ""))
        med = {k: statistics.median(v) for k, v in times.items()}
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        for label, v in times.items():
            print(f"{label:>14}: wall median {med[label]:.3f} s  min {min(v):.3f} s  "
                  f"{total / med[label] / 1e6:.0f} MB/s   cpu median {mcpu[label]:.3f} s  "
                  f"(n={len(v)})")
        print(f"throughput ratio extract_layer / tar (wall): "
              f"{med['tar -xf'] / med['extract_layer']:.2f}x")
        print(f"throughput ratio extract_layer / tar (cpu):  "
              f"{mcpu['tar -xf'] / mcpu['extract_layer']:.2f}x")


if __name__ == "__main__":
    main()
