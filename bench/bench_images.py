#!/usr/bin/env python3
"""Image operations: pyjail against dockerd and podman, side by side, same docker CLI.

Measures (medians of wall-clock CLI calls; engines interleaved round by round):
  build    cached rebuild of a 5-step Dockerfile (DOCKER_BUILDKIT=0, legacy builder)
  save     `save -o X busybox:local` (file removed before each)
  load     `load -i X` after an untimed `rmi busybox:local`
  export   `export -o X CID` of a created (not started) container
  and save / load / export again for a ~100 MB image (one RUN writing 100 MB of random data)
Anchors are used when ../shared/anchors has started them (sockets under /tmp/anchors).
Usage: bench/bench_images.py [-n N] [--only build,save,big] [--big-mb 100]   (as root)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
ANCHORS = Path(os.environ.get("ANCHOR_DIR", "/tmp/anchors"))
IMAGE = "busybox:local"
FIVE = """FROM busybox:local
RUN echo a > /a
COPY file.txt /file.txt
ENV FOO=bar
WORKDIR /app
CMD ["sleep", "1"]
"""


def cli(sock: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    return subprocess.run([DOCKER, "-H", sock, *args], capture_output=True, text=True,
                          check=check, env=env)


def median_ms(n: int, fn: Callable[[], object], before: Callable[[], object] | None = None,
              ) -> float:
    times = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class PyjailDaemon:
    """A throw-away pyjaild with busybox:local (the host's static busybox)."""

    def __init__(self) -> None:
        from pyjail.images import ImageStore, busybox_image
        self.base = Path(tempfile.mkdtemp(prefix="pyjail-bench-img-", dir="/var/tmp"))
        self.data = self.base / "data"
        busybox_image(ImageStore(self.data / "images"), IMAGE)
        self.sock = f"unix://{self.base}/d.sock"
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'daemon'}"}
        with open(self.base / "daemon.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(self.data),
                 "-H", self.sock, "--pidfile", str(self.base / "d.pid"),
                 "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(300):
            if cli(self.sock, "version", check=False).returncode == 0:
                break
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        from pyjail.engine import Engine
        Engine(self.data, restart_policies=False).shutdown_supervisor()
        shutil.rmtree(self.base, ignore_errors=True)


def engines(pyjail: PyjailDaemon) -> dict[str, str]:
    found = {"pyjail": pyjail.sock}
    for name, sock in (("dockerd", ANCHORS / "dockerd.sock"), ("podman", ANCHORS / "podman.sock")):
        if sock.exists() and cli(f"unix://{sock}", "image", "inspect", IMAGE,
                                 check=False).returncode == 0:
            found[name] = f"unix://{sock}"
        else:
            print(f"# {name}: not running (start it with ../shared/anchors), skipped")
    return found


def report(title: str, results: dict[str, float]) -> None:
    print(f"\n{title}")
    ref, pod = results.get("dockerd"), results.get("podman")
    for name, value in results.items():
        ratio = f"  {value / ref:.2f}x dockerd" if ref and name != "dockerd" else ""
        ratio += f"  {value / pod:.2f}x podman" if pod and name != "podman" else ""
        print(f"  {name:<8} {value:10.1f} ms{ratio}")


def bench_build(socks: dict[str, str], n: int, work: Path) -> None:
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(FIVE)
    (ctx / "file.txt").write_text("file\n")
    results = {}
    for name, sock in socks.items():
        args = ("build", "--network", "none", "-t", "bench-build:1", str(ctx))
        cli(sock, *args)
        out = cli(sock, *args).stdout
        if out.count("Using cache") < 5:
            print(f"# {name}: the rebuild did not use the cache for every step:\n{out}")
        results[name] = median_ms(n, lambda s=sock, a=args: cli(s, *a))
        cli(sock, "rmi", "bench-build:1", check=False)
    report("cached rebuild, 5-step Dockerfile (median)", results)


def interleaved_ms(n: int, runs: dict[str, tuple[Callable[[], object], Callable[[], object]]],
                   ) -> dict[str, float]:
    """Median ms per engine; every round runs each engine once, the order alternating, so a
    busy moment on a shared host hits both sides alike. ``runs`` maps a name to
    (untimed setup, timed call)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(n):
        for name, (setup, call) in (list(runs.items()) if i % 2 else list(runs.items())[::-1]):
            setup()
            t0 = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_archives(socks: dict[str, str], n: int, work: Path, image: str, label: str) -> None:
    tars = {name: work / f"{name}-save.tar" for name in socks}
    exps = {name: work / f"{name}-export.tar" for name in socks}

    def nothing() -> None:
        return None
    saves = interleaved_ms(n, {name: (lambda t=tars[name]: t.unlink(missing_ok=True),
                                      lambda s=sock, t=tars[name]: cli(s, "save", "-o", str(t), image))
                               for name, sock in socks.items()})
    loads = interleaved_ms(n, {name: (lambda s=sock: cli(s, "rmi", image, check=False),
                                      lambda s=sock, t=tars[name]: cli(s, "load", "-i", str(t)))
                               for name, sock in socks.items()})
    cids = {name: cli(sock, "create", "--network", "none", image, "true").stdout.strip()
            for name, sock in socks.items()}
    exports = interleaved_ms(n, {name: (nothing, lambda s=sock, e=exps[name], c=cids[name]:
                                        cli(s, "export", "-o", str(e), c))
                                 for name, sock in socks.items()})
    for name, sock in socks.items():
        cli(sock, "rm", "-f", cids[name], check=False)
        print(f"# {name} {label}: save {tars[name].stat().st_size / 1e6:.1f} MB, "
              f"export {exps[name].stat().st_size / 1e6:.1f} MB")
        tars[name].unlink(missing_ok=True)
        exps[name].unlink(missing_ok=True)
    report(f"save, {label} (median)", saves)
    report(f"load after rmi, {label} (median)", loads)
    report(f"export of a created container, {label} (median)", exports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--only", default="build,save,big")
    parser.add_argument("--big-mb", type=int, default=100)
    args = parser.parse_args()
    only = set(args.only.split(","))
    pyjail = PyjailDaemon()
    work = Path(tempfile.mkdtemp(prefix="pyjail-bench-img-work-", dir="/var/tmp"))
    try:
        socks = engines(pyjail)
        if "build" in only:
            bench_build(socks, args.n, work)
        if "save" in only:
            bench_archives(socks, args.n, work, IMAGE, "busybox")
        if "big" in only:
            ctx = work / "big"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(
                f"FROM busybox:local\nRUN dd if=/dev/urandom of=/big bs=1M count={args.big_mb}"
                " 2>/dev/null\n")
            for sock in socks.values():
                cli(sock, "build", "--network", "none", "-t", "bench-big:1", str(ctx))
            bench_archives(socks, args.n, work, "bench-big:1", f"{args.big_mb} MB image")
            for sock in socks.values():
                cli(sock, "rmi", "bench-big:1", check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        pyjail.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
