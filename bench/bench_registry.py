#!/usr/bin/env python3
"""Push and pull of busybox (and a 64 MB random layer) against Debian's docker-registry on
loopback, pyjail vs skopeo (medians of N runs; each pull into an empty store).

Usage: bench/bench_registry.py [-n N]    (needs docker-registry; skopeo optional)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_registry import Registry  # noqa: E402

from pyjail.images import ImageStore, busybox_image  # noqa: E402
from pyjail.images.registry import pull, push  # noqa: E402


def big_image(store: ImageStore, ref: str, size: int) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    buf.seek(0)
    return store.import_rootfs(buf, ref).id


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=5)
    n = ap.parse_args().n
    reg = Registry()
    work = Path(tempfile.mkdtemp(prefix="pyjail-bench-registry-"))
    try:
        src = ImageStore(work / "src")
        busybox_image(src, f"{reg.host}/busybox:1")
        big_image(src, f"{reg.host}/big:1", 64 << 20)
        for name in ("busybox", "big"):
            ref = f"{reg.host}/{name}:1"
            first = timed(lambda: push(src, ref))   # noqa: B023
            pulls = []
            for i in range(n):
                dest = work / f"{name}-{i}"
                pulls.append(timed(lambda: pull(ImageStore(dest), ref)))   # noqa: B023
                shutil.rmtree(dest)
            again = statistics.median(timed(lambda: push(src, ref)) for _ in range(n))  # noqa: B023
            line = (f"{name:8} push {first:7.0f} ms   push (all blobs present) {again:6.0f} ms   "
                    f"pull {statistics.median(pulls):7.0f} ms")
            if shutil.which("skopeo"):
                sk = []
                for i in range(n):
                    out = work / f"sk-{name}-{i}"
                    cmd = ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                           f"oci:{out}:x"]
                    sk.append(timed(lambda: subprocess.run(cmd, check=True)))   # noqa: B023
                    shutil.rmtree(out)
                line += f"   skopeo copy to oci: {statistics.median(sk):7.0f} ms"
            print(line)
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
