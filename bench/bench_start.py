#!/usr/bin/env python3
"""Start latency: run `true` in a fresh busybox container and wait for its exit.

Side by side, interleaved round-robin so every engine sees the same machine state:
  pyjail-engine   the engine in-process (create + start + wait + remove)
  pyjail-runc     the same engine handing the bundle to runc
  runc / crun     bare `runc run` / `crun run` on an OCI bundle of the same rootfs
Prints median / min / p90 (ms) and the ratio of each to bare runc.
Usage: bench/bench_start.py [N=30]   (as root)
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyjail.engine import Engine  # noqa: E402
from pyjail.images import busybox_image  # noqa: E402


def make_bundle(base: Path, rootfs_src: Path) -> Path:
    bundle = base / "bundle"
    bundle.mkdir()
    shutil.copytree(rootfs_src, bundle / "rootfs", symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"]["readonly"] = True
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    base = Path(tempfile.mkdtemp(prefix="pyjail-bench-", dir="/var/tmp"))
    engine = Engine(base / "data")
    try:
        image = busybox_image(engine.images)
        rootfs = Path(engine.images.layer_dirs(image)[0])
        runners = {
            "pyjail-engine": lambda i: engine.run("busybox", ["true"]),
            "pyjail-runc": lambda i: engine.run("busybox", ["true"],
                                                HostConfig={"Runtime": "runc"}),
        }
        if shutil.which("runc"):
            bundle = make_bundle(base, rootfs)
            for tool in ("runc", "crun"):
                if not shutil.which(tool):
                    continue
                state = base / f"{tool}-state"
                cmd = [tool, "--root", str(state), "run", "--bundle", str(bundle)]
                probe = subprocess.run(cmd + [f"probe-{tool}"], capture_output=True)
                if probe.returncode != 0:
                    print(f"skip {tool}: {probe.stderr.decode().strip()[:120]}")
                    continue
                runners[tool] = (lambda c: lambda i: subprocess.run(
                    c + [f"b{i}"], check=True, stdout=subprocess.DEVNULL))(cmd)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for fn in runners.values():  # warm-up
            fn(-1)
        for i in range(n):
            for name, fn in runners.items():
                t0 = time.perf_counter()
                fn(i)
                times[name].append((time.perf_counter() - t0) * 1000)
        ref = statistics.median(times["runc"]) if "runc" in times else None
        print(f"{'engine':<15} {'n':>4} {'median_ms':>10} {'min_ms':>8} {'p90_ms':>8} {'vs runc':>8}")
        for name, values in times.items():
            values.sort()
            med = statistics.median(values)
            p90 = values[int(len(values) * 0.9) - 1]
            ratio = f"{med / ref:.2f}x" if ref else "-"
            print(f"{name:<15} {len(values):>4} {med:>10.1f} {values[0]:>8.1f} {p90:>8.1f} {ratio:>8}")
    finally:
        engine.shutdown_supervisor()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
