#!/usr/bin/env python3
"""Networking costs: start latency on the default bridge, and published-port throughput.

  start     `run --rm busybox true` on the bridge (and on `none`, for reference), the
            pyjail engine in-process; interleaved round-robin with dockerd on its bridge
            (docker CLI) when a dockerd with a bridge is available.
  tput      BYTES pushed from the host to 127.0.0.1:PORT published to busybox `nc -l`
            in a container (pyjail: nftables DNAT; docker: docker-proxy, its userland
            proxy, which serves loopback), timed until the container has read it all.

dockerd: --docker unix:///path.sock uses a running one (it needs --bridge and iptables);
--start-dockerd starts a private one (data under /tmp/pyjail-bench-dockerd, default
docker0 bridge, iptables on) and removes its bridge, its iptables chains and rules, and
its mounts afterwards; ip_forward is set to 1 first so dockerd leaves the FORWARD policy
alone, and restored. Only loopback and the engines' own bridges carry traffic.

Usage: bench/bench_network.py [-n 20] [--bytes 1G] [--docker SOCK | --start-dockerd]
Prints medians (ms, MB/s) and pyjail/docker ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyjail.engine import Engine  # noqa: E402
from pyjail.images import busybox_image  # noqa: E402

DOCKERD_DIR = Path("/tmp/pyjail-bench-dockerd")
BUSYBOX_TAR = Path("/tmp/anchors/busybox-rootfs.tar")
CHUNK = b"\0" * (1 << 20)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(port: int, nbytes: int, timeout: float = 20.0) -> None:
    """Connect (retrying until the server listens) and send nbytes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    with sock:
        sent = 0
        view = memoryview(CHUNK)
        while sent < nbytes:
            n = min(len(CHUNK), nbytes - sent)
            sock.sendall(view[:n])
            sent += n
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)


# -- dockerd -----------------------------------------------------------------------------------
class Dockerd:
    """A private dockerd with its default bridge, torn down without touching anything else."""

    def __init__(self) -> None:
        self.sock = f"unix://{DOCKERD_DIR}/docker.sock"
        self.pidfile = DOCKERD_DIR / "dockerd.pid"
        self.forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self.had_docker0 = os.path.exists("/sys/class/net/docker0")
        self.tables_before = nft_tables()
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        DOCKERD_DIR.mkdir(exist_ok=True)
        # With ip_forward already on, dockerd does not set the FORWARD policy to DROP.
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
        log = open(DOCKERD_DIR / "dockerd.log", "w")
        self.proc = subprocess.Popen(
            ["dockerd", "--storage-driver=overlay2", "--exec-opt",
             "native.cgroupdriver=cgroupfs", "--data-root", str(DOCKERD_DIR / "data"),
             "--exec-root", str(DOCKERD_DIR / "exec"), "--pidfile", str(self.pidfile),
             "-H", self.sock], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while subprocess.run(self.cli("version"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"dockerd did not start, see {DOCKERD_DIR}/dockerd.log")
            time.sleep(0.2)
        if subprocess.run(self.cli("image", "inspect", "busybox:local"),
                          capture_output=True).returncode != 0:
            subprocess.run(self.cli("import", str(BUSYBOX_TAR), "busybox:local"), check=True,
                           capture_output=True)
        return self.sock

    def cli(self, *args: str) -> list[str]:
        return ["docker", "-H", self.sock, *args]

    def stop(self) -> None:
        ids = subprocess.run(self.cli("ps", "-aq"), capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(self.cli("rm", "-f", *ids), capture_output=True)
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for line in sorted(Path("/proc/self/mounts").read_text().splitlines(), reverse=True):
            target = line.split()[1]
            if target.startswith(str(DOCKERD_DIR)):
                subprocess.run(["umount", "-l", target], capture_output=True)
        remove_docker_iptables()
        # iptables-nft made its tables for dockerd: drop them again if they hold no rule.
        for table in nft_tables() - self.tables_before:
            family, name = table.split()
            rules = subprocess.run(["nft", "-a", "list", "table", family, name],
                                   capture_output=True, text=True).stdout
            has_rules = any("# handle" in line and not line.strip().startswith(
                ("table", "chain", "set", "map")) for line in rules.splitlines())
            if not has_rules:
                subprocess.run(["nft", "delete", "table", family, name], capture_output=True)
        if not self.had_docker0 and os.path.exists("/sys/class/net/docker0"):
            subprocess.run(["ip", "link", "del", "docker0"], capture_output=True)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(self.forward_before)


def nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.split(None, 1)[1] for line in out.splitlines() if line.startswith("table ")}


def remove_docker_iptables() -> None:
    """Delete the rules and chains dockerd made (its names), nothing else."""
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                               text=True).stdout.splitlines()
        for rule in rules:
            if rule.startswith("-A ") and ("DOCKER" in rule or "docker0" in rule):
                chain = rule.split()[1]
                if not chain.startswith("DOCKER"):
                    subprocess.run(["iptables", "-t", table, "-D", *rule.split()[1:]],
                                   capture_output=True)
        chains = [r.split()[1] for r in rules if r.startswith("-N DOCKER")]
        for chain in chains:
            subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True)
        for chain in chains:
            subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True)


# -- measurements ------------------------------------------------------------------------------
def start_latency(engine: Engine, docker: list[str] | None, n: int) -> dict[str, list[float]]:
    runners = {
        "pyjail bridge": lambda: engine.run("busybox", ["true"],
                                            HostConfig={"NetworkMode": "bridge"}),
        "pyjail none": lambda: engine.run("busybox", ["true"]),
    }
    if docker:
        runners["docker bridge"] = lambda: subprocess.run(
            [*docker, "run", "--rm", "busybox:local", "true"], check=True,
            stdout=subprocess.DEVNULL)
        runners["docker none"] = lambda: subprocess.run(
            [*docker, "run", "--rm", "--network", "none", "busybox:local", "true"],
            check=True, stdout=subprocess.DEVNULL)
    for fn in runners.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(n):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


def pyjail_throughput(engine: Engine, nbytes: int) -> float:
    port = free_port()
    c = engine.containers.create({
        "Image": "busybox", "Cmd": ["sh", "-c", "nc -l -p 5000 > /dev/null"],
        "HostConfig": {"NetworkMode": "bridge", "PortBindings": {
            "5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}})
    try:
        engine.containers.start(c.id)
        t0 = time.perf_counter()
        push(port, nbytes)
        engine.containers.wait(c.id, timeout=300)
        return nbytes / (time.perf_counter() - t0) / 1e6
    finally:
        engine.containers.remove(c.id, force=True)


def docker_throughput(docker: list[str], nbytes: int) -> float:
    port = free_port()
    cid = subprocess.run([*docker, "run", "-d", "-p", f"127.0.0.1:{port}:5000",
                          "busybox:local", "sh", "-c", "nc -l -p 5000 > /dev/null"],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        t0 = time.perf_counter()
        push(port, nbytes)
        subprocess.run([*docker, "wait", cid], check=True, capture_output=True)
        return nbytes / (time.perf_counter() - t0) / 1e6
    finally:
        subprocess.run([*docker, "rm", "-f", cid], capture_output=True)


def report(times: dict[str, list[float]]) -> None:
    print(f"{'start':<15} {'n':>4} {'median_ms':>10} {'min_ms':>8} {'p90_ms':>8}")
    for name, values in times.items():
        values = sorted(values)
        p90 = values[max(0, int(len(values) * 0.9) - 1)]
        print(f"{name:<15} {len(values):>4} {statistics.median(values):>10.1f} "
              f"{values[0]:>8.1f} {p90:>8.1f}")
    if "docker bridge" in times:
        ratio = statistics.median(times["pyjail bridge"]) / statistics.median(
            times["docker bridge"])
        print(f"pyjail bridge / docker bridge: {ratio:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--bytes", default="1G")
    parser.add_argument("--tput-runs", type=int, default=3)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--docker", help="socket of a dockerd that has a bridge")
    group.add_argument("--start-dockerd", action="store_true")
    args = parser.parse_args()
    nbytes = parse_size(args.bytes)
    dockerd = None
    docker = ["docker", "-H", args.docker] if args.docker else None
    base = Path(tempfile.mkdtemp(prefix="pyjail-bench-", dir="/var/tmp"))
    engine = Engine(base / "data")
    try:
        if args.start_dockerd:
            dockerd = Dockerd()
            docker = ["docker", "-H", dockerd.start()]
        busybox_image(engine.images)
        report(start_latency(engine, docker, args.n))
        rates = {"pyjail (nft DNAT)": [pyjail_throughput(engine, nbytes)
                                       for _ in range(args.tput_runs)]}
        if docker:
            rates["docker (docker-proxy)"] = [docker_throughput(docker, nbytes)
                                              for _ in range(args.tput_runs)]
        print(f"{'throughput ' + args.bytes:<24} {'runs':>4} {'median_MB/s':>12}")
        for name, values in rates.items():
            print(f"{name:<24} {len(values):>4} {statistics.median(values):>12.0f}")
        if docker:
            ratio = statistics.median(rates["pyjail (nft DNAT)"]) / statistics.median(
                rates["docker (docker-proxy)"])
            print(f"pyjail / docker throughput: {ratio:.2f}x")
    finally:
        engine.shutdown_supervisor()
        shutil.rmtree(base, ignore_errors=True)
        if dockerd is not None:
            dockerd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
