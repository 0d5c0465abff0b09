#!/usr/bin/env python3
"""The daemon against dockerd and podman, side by side, all driven by the same docker CLI.

Measures (medians of wall-clock CLI calls, interleaved across engines):
  run      `docker run --rm --network none busybox:local true`
  mem      memory per idle container: 20 x `run -d ... sleep`, per-container helper PSS plus
           daemon growth (pyjail: supervisor PSS growth + daemon RSS growth)
  starts   50 detached starts, sequential and 8 in parallel
  ps       `docker ps -a` with 200 created containers
  stats    `docker stats --no-stream` with 20 running
Anchors are used when ../shared/anchors has started them (sockets under /tmp/anchors).
Usage: bench/bench_daemon.py [--only run,mem,...] [-n N]    (as root)
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
ANCHORS = Path(os.environ.get("ANCHOR_DIR", "/tmp/anchors"))
IMAGE = "busybox:local"


def cli(sock: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, "-H", sock, *args], capture_output=True, text=True,
                          check=check)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pids_named(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


class PyjailDaemon:
    def __init__(self) -> None:
        from pyjail.engine import Engine
        from pyjail.images import busybox_image
        self.base = Path(tempfile.mkdtemp(prefix="pyjail-bench-", dir="/var/tmp"))
        self.data = self.base / "data"
        engine = Engine(self.data)
        image = busybox_image(engine.images)
        engine.images.tag(image.id, IMAGE)
        self.supervisor_pid = engine.supervisor.request("ping")["pid"]
        engine.close()
        self.sock = f"unix://{self.base}/d.sock"
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'daemon'}"}
        self.proc = subprocess.Popen([sys.executable, "-m", "pyjail_daemon.main", "--data-root",
                                      str(self.data), "-H", self.sock, "--log-level", "warning"],
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.base / "daemon.log", "wb"))
        for _ in range(300):
            if cli(self.sock, "version", check=False).returncode == 0:
                break
            time.sleep(0.05)

    def memory_kb(self) -> int:
        return pss_kb(self.supervisor_pid) + rss_kb(self.proc.pid)

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


def clean(sock: str) -> None:
    ids = cli(sock, "ps", "-aq", check=False).stdout.split()
    for i in range(0, len(ids), 50):
        cli(sock, "rm", "-f", *ids[i:i + 50], check=False)


def report(title: str, results: dict[str, float], unit: str = "ms") -> None:
    print(f"\n{title}")
    ref = results.get("dockerd")
    for name, value in results.items():
        ratio = f"  {value / ref:.2f}x dockerd" if ref else ""
        pod = results.get("podman")
        ratio += f"  {value / pod:.2f}x podman" if pod and name != "podman" else ""
        digits = 2 if unit == "MB" else 1
        print(f"  {name:<8} {value:10.{digits}f} {unit}{ratio}")


def bench_run(socks: dict[str, str], n: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in socks}
    run = ("run", "--rm", "--network", "none", IMAGE, "true")
    for sock in socks.values():
        cli(sock, *run)
    for _ in range(n):
        for name, sock in socks.items():
            times[name].append(timed(lambda s=sock: cli(s, *run)))
    report(f"docker run --rm --network none {IMAGE} true (median of {n})",
           {k: statistics.median(v) for k, v in times.items()})


def bench_mem(socks: dict[str, str], pyjail: PyjailDaemon) -> None:
    out = {}
    for name, sock in socks.items():
        clean(sock)
        if name == "pyjail":
            before = pyjail.memory_kb()
        elif name == "dockerd":
            before = sum(rss_kb(p) for p in pids_named("dockerd") + pids_named("containerd"))
        else:
            before = 0
        for _ in range(20):
            cli(sock, "run", "-d", "--network", "none", IMAGE, "sleep", "100000")
        time.sleep(2)
        if name == "pyjail":
            per = (pyjail.memory_kb() - before) / 20
        elif name == "dockerd":
            shims = sum(pss_kb(p) for p in pids_named("containerd-shim"))
            growth = sum(rss_kb(p) for p in pids_named("dockerd") + pids_named("containerd"))
            per = (shims + growth - before) / 20
        else:
            per = sum(pss_kb(p) for p in pids_named("conmon")) / 20
        out[name] = per / 1024
        clean(sock)
    report("memory per idle container, 20 running (helper PSS + daemon growth)", out, "MB")


def bench_starts(socks: dict[str, str]) -> None:
    seq, par = {}, {}
    args = ("run", "-d", "--network", "none", IMAGE, "sleep", "100000")
    for name, sock in socks.items():
        clean(sock)
        seq[name] = timed(lambda s=sock: [cli(s, *args) for _ in range(50)]) / 1000
        clean(sock)
        with ThreadPoolExecutor(8) as pool:
            par[name] = timed(lambda s=sock: list(pool.map(lambda _: cli(s, *args),
                                                           range(50)))) / 1000
        clean(sock)
    report("50 detached starts, sequential", seq, "s")
    report("50 detached starts, 8 in parallel", par, "s")


def bench_ps(socks: dict[str, str]) -> None:
    out = {}
    for name, sock in socks.items():
        clean(sock)
        for _ in range(200):
            cli(sock, "create", "--network", "none", IMAGE, "sleep", "100000")
        cli(sock, "ps", "-a")
        out[name] = statistics.median(timed(lambda s=sock: cli(s, "ps", "-a")) for _ in range(10))
        clean(sock)
    report("docker ps -a with 200 containers (median of 10)", out)


def bench_stats(socks: dict[str, str]) -> None:
    out, api = {}, {}
    for name, sock in socks.items():
        clean(sock)
        for _ in range(20):
            cli(sock, "run", "-d", "--network", "none", IMAGE, "sleep", "100000")
        cli(sock, "stats", "--no-stream")
        out[name] = statistics.median(timed(lambda s=sock: cli(s, "stats", "--no-stream"))
                                      for _ in range(5))
        api[name] = statistics.median(timed(lambda s=sock: api_stats(s)) for _ in range(5))
        clean(sock)
    report("docker stats --no-stream with 20 running (median of 5)", out)
    report("the same through the API: 20 parallel GET /stats?stream=false (the docker CLI\n"
           "  itself adds a ~500 ms display tick in --no-stream mode)", api)


def api_stats(sock: str) -> None:
    import docker
    client = docker.APIClient(base_url=sock, version="1.41")
    ids = [c["Id"] for c in client.containers()]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda i: client.stats(i, stream=False), ids))
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="run,mem,starts,ps,stats")
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    pyjail = PyjailDaemon()
    try:
        socks = engines(pyjail)
        wanted = args.only.split(",")
        if "run" in wanted:
            bench_run(socks, args.n)
        if "mem" in wanted:
            bench_mem(socks, pyjail)
        if "starts" in wanted:
            bench_starts(socks)
        if "ps" in wanted:
            bench_ps(socks)
        if "stats" in wanted:
            bench_stats(socks)
    finally:
        pyjail.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
