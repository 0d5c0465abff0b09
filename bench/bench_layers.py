#!/usr/bin/env python3
"""Layer throughput on a ~200 MB tree: pyjail against GNU tar, unpacking and committing.

Builds a ~200 MB tree in a tmp dir (many small files in nested dirs, a few large files,
symlinks, hardlinks), archives it once with GNU tar, then extracts it alternately with
`tar -xf` and with extract_layer (N rounds each, fresh destination every time, page cache
warm for both) and prints the median seconds, MB/s and the throughput ratio pyjail / tar.
The two results are compared entry by entry (type, mode, owner, size, mtime, link target).
The order alternates every round; CPU time (user+sys, pyjail's side with its GNU tar child:
extract_layer has Python check every header and tar write the files) is printed beside
wall time because wall time on a shared VM is noisy. --dir picks the filesystem (default:
the tmp dir; try /dev/shm to see the CPU cost without the disk's file-creation cost).

commit: the tree plays a container's upper dir and becomes a registered layer in a fresh
image store, through the code ``docker commit`` runs (pyjail.images.commit.layer_image: the
layer tar written straight into a blob, hashed once, and fed to ``tar -x`` as it is written,
which makes the layer dir, synced, renamed into place). GNU tar does the same two steps
with no hashing and no sync: `tar -cf layer.tar -C upper . && tar -xf layer.tar -C layer/`
(uncompressed, as ``docker commit`` stores it: compression happens on push); and, for the
same outputs as a commit (tar, digest, layer dir), `tar -cf - | tee layer.tar | sha256sum`
before the `tar -xf`. `tar -cf` alone against the tar-writing half (create_layer into a
blob, hashed) is printed too.
Usage: bench/bench_layers.py [N=7] [--gzip] [--dir DIR] [--only unpack,commit]
       (as root: both then chown)
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyjail.images.commit import layer_image
from pyjail.images.layers import create_layer, extract_layer
from pyjail.images.store import ImageStore

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


BOTH = -99   # this process and its children: pyjail's extraction runs GNU tar as a child


def cpu_seconds(who: int) -> float:
    if who == BOTH:
        return cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def timed(fn, who: int) -> tuple[float, float]:
    c0, t0 = cpu_seconds(who), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_seconds(who) - c0


def alternate(rounds: int, runners: list[tuple[str, Callable[[], object], int]],
              setup: Callable[[str], object]) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds per runner; order alternates, round 0 only warms up."""
    times: dict[str, list[float]] = {label: [] for label, _, _ in runners}
    cpu: dict[str, list[float]] = {label: [] for label, _, _ in runners}
    for i in range(rounds + 1):
        for label, fn, who in (runners if i % 2 else runners[::-1]):
            setup(label)
            subprocess.run(["sync"], check=True)
            t, c = timed(fn, who)
            if i:
                times[label].append(t)
                cpu[label].append(c)
    return ({k: statistics.median(v) for k, v in times.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def show(total: int, med: dict[str, float], mcpu: dict[str, float], ours: str, tar: str,
         n: int) -> None:
    for label in med:
        print(f"{label:>22}: wall median {med[label]:.3f} s  {total / med[label] / 1e6:5.0f} MB/s"
              f"   cpu median {mcpu[label]:.3f} s  (n={n})")
    print(f"throughput ratio {ours} / {tar}: wall {med[tar] / med[ours]:.2f}x, "
          f"cpu {mcpu[tar] / mcpu[ours]:.2f}x")


def bench_unpack(tmp: Path, src: Path, total: int, rounds: int, gzip: bool) -> None:
    tarball = tmp / ("layer.tar.gz" if gzip else "layer.tar")
    subprocess.run(["tar", "-C", str(src), "-cf", str(tarball)] + (["-z"] if gzip else [])
                   + ["."], check=True)
    print(f"\nunpack: archive {tarball.stat().st_size / 1e6:.0f} MB{' (gzip)' if gzip else ''}")
    dests = {"tar -xf": tmp / "out-tar", "extract_layer": tmp / "out-ext"}

    def setup(label: str) -> None:
        shutil.rmtree(dests[label], ignore_errors=True)
        dests[label].mkdir()

    runners = [
        ("tar -xf", lambda: subprocess.run(["tar", "-xf", str(tarball), "-C",
                                            str(dests["tar -xf"])], check=True),
         resource.RUSAGE_CHILDREN),
        ("extract_layer", lambda: extract_layer(tarball, dests["extract_layer"]), BOTH)]
    med, mcpu = alternate(rounds, runners, setup)
    a, b = snapshot(dests["tar -xf"]), snapshot(dests["extract_layer"])
    diff = [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
    print(f"trees identical: {not diff}" + (f" (first differences: {diff[:5]})" if diff else ""))
    show(total, med, mcpu, "extract_layer", "tar -xf", rounds)
    for d in dests.values():
        shutil.rmtree(d, ignore_errors=True)
    tarball.unlink()


def bench_commit(tmp: Path, src: Path, total: int, rounds: int) -> None:
    store = ImageStore(tmp / "store")
    gnu_tar, gnu_dir = tmp / "gnu-layer.tar", tmp / "gnu-layer"
    made: list[str] = []

    def setup(label: str) -> None:
        """Reset the outputs of the runner about to go (``""``: everything)."""
        if label.startswith(("commit", "create")) or not label:
            for image_id in made:
                store.remove(image_id, force=True)
            made.clear()
            store.gc()
        if label.startswith("tar") or not label:
            gnu_tar.unlink(missing_ok=True)
            shutil.rmtree(gnu_dir, ignore_errors=True)
            gnu_dir.mkdir()

    def gnu_commit() -> None:
        subprocess.run(["tar", "-C", str(src), "-cf", str(gnu_tar), "."], check=True)
        subprocess.run(["tar", "-xf", str(gnu_tar), "-C", str(gnu_dir)], check=True)

    def gnu_commit_digest() -> None:   # the same outputs as a commit: tar, digest, layer dir
        subprocess.run(f"tar -C '{src}' -cf - . | tee '{gnu_tar}' | sha256sum >/dev/null",
                       shell=True, check=True)
        subprocess.run(["tar", "-xf", str(gnu_tar), "-C", str(gnu_dir)], check=True)

    def our_commit() -> None:
        made.append(layer_image(store, src, {"config": {}}).id)

    def our_create() -> None:   # into a pending blob, as commit does; dropped after
        with store.blobs.writer() as blob:
            create_layer(src, blob)

    print("\ncommit (tar + unpack into a layer dir)")
    med, mcpu = alternate(rounds, [("tar -cf && tar -xf", gnu_commit, resource.RUSAGE_CHILDREN),
                                   ("commit (layer_image)", our_commit, BOTH),
                                   ("tar|sha256sum && tar -xf", gnu_commit_digest,
                                    resource.RUSAGE_CHILDREN)],
                          setup)
    layer = store.layer_dirs(store.resolve(made[-1]))[0]
    a, b = snapshot(gnu_dir), snapshot(layer)
    diff = [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
    print(f"layer identical to GNU tar's copy: {not diff}"
          + (f" (first differences: {diff[:5]})" if diff else ""))
    show(total, med, mcpu, "commit (layer_image)", "tar -cf && tar -xf", rounds)
    print(f"throughput ratio commit (layer_image) / tar|sha256sum && tar -xf: wall "
          f"{med['tar|sha256sum && tar -xf'] / med['commit (layer_image)']:.2f}x")
    print("\ncreate the layer tar only")
    med, mcpu = alternate(rounds, [
        ("tar -cf", lambda: subprocess.run(["tar", "-C", str(src), "-cf", str(gnu_tar), "."],
                                           check=True), resource.RUSAGE_CHILDREN),
        ("create_layer", our_create, BOTH)], setup)
    show(total, med, mcpu, "create_layer", "tar -cf", rounds)
    setup("")


def main() -> None:
    argv = sys.argv[1:]
    opts: dict[str, str] = {}
    for flag in ("--dir", "--only"):
        if flag in argv:
            i = argv.index(flag)
            opts[flag] = argv[i + 1]
            del argv[i:i + 2]
    args = [a for a in argv if not a.startswith("--")]
    rounds = int(args[0]) if args else 7
    only = set(opts.get("--only", "unpack,commit").split(","))
    with tempfile.TemporaryDirectory(prefix="bench-layers-", dir=opts.get("--dir")) as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        total = make_tree(src)
        print(f"where: {tmp}")
        print(f"tree: {total / 1e6:.0f} MB of file data, {SMALL_FILES} small + {LARGE_FILES} "
              f"large files")
        if "unpack" in only:
            bench_unpack(tmp, src, total, rounds, "--gzip" in argv)
        if "commit" in only:
            bench_commit(tmp, src, total, rounds)


if __name__ == "__main__":
    main()
