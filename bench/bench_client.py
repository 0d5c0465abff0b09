#!/usr/bin/env python3
"""The notebook client's costs, against one real pyjaild on a throw-away data root.

  run     `%container run --rm --network none busybox true` in IPython (warm client) vs Go
          `docker run --rm --network none busybox true`, same daemon; interleaved, median
          (goal: ratio <= 1.3)
  ps      `%container ps -a` returning a DataFrame, with 200 containers (goal < 100 ms)
  help    `pyjail --help`, a fresh process each time (goal < 150 ms)

Usage: bench/bench_client.py [N=20]   (as root)
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyjail.client.hosts import ping  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def start_daemon(root: Path) -> tuple[subprocess.Popen, str]:
    host = f"unix://{root}/pyjaild.sock"
    subprocess.run([sys.executable, "-m", "pyjail", "--data-root", str(root), "image",
                    "bootstrap"], check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "pyjail_daemon.main", "--data-root",
                             str(root), "-H", host, "--pidfile", str(root / "pyjaild.pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ping(host).ok:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("pyjaild did not start")
        time.sleep(0.05)
    return proc, host


def bench_run(ip, host: str, n: int) -> dict[str, float]:
    ours, theirs = [], []
    docker = shutil.which("docker")
    ip.run_cell("%container run --rm --network none busybox true")  # warm the connection
    for _ in range(n):
        t = time.perf_counter()
        result = ip.run_cell("%container run --rm --network none busybox true")
        ours.append(time.perf_counter() - t)
        assert result.result.exit_code == 0, result
        if docker:
            t = time.perf_counter()
            subprocess.run([docker, "-H", host, "run", "--rm", "--network", "none", "busybox",
                            "true"], check=True, capture_output=True)
            theirs.append(time.perf_counter() - t)
    out = {"magic_run_ms": median_ms(ours)}
    if theirs:
        out["docker_run_ms"] = median_ms(theirs)
        out["run_ratio"] = out["magic_run_ms"] / out["docker_run_ms"]
    return out


def bench_ps(ip, client, n: int) -> dict[str, float]:
    body = client.api.create_container_config("busybox", ["true"])
    for i in range(200):
        client.api.create_container_from_config(body, name=f"bench-ps-{i}")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        frame = ip.run_cell("%container ps -a").result
        times.append(time.perf_counter() - t)
    assert len(frame) >= 200, len(frame)
    return {"magic_ps_200_ms": median_ms(times)}


def bench_help(n: int) -> dict[str, float]:
    script = Path(sys.executable).with_name("pyjail")
    cmd = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "pyjail",
                                                          "--help"]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return {"help_ms": median_ms(times)}


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    root = Path(tempfile.mkdtemp(prefix="pyjail-bench-client-", dir="/var/tmp"))
    proc, host = start_daemon(root)
    try:
        from IPython.testing.globalipapp import start_ipython

        from pyjail.client.connection import Client
        ip = start_ipython()
        ip.run_cell("%load_ext pyjail_jupyter")
        ip.run_cell(f"%config ContainerMagics.host = '{host}'")
        client = Client(host)
        with contextlib.redirect_stdout(io.StringIO()):  # Out[] of every cell
            figures = {**bench_help(n), **bench_run(ip, host, n), **bench_ps(ip, client, n)}
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        from pyjail.engine import Engine
        Engine(root, restart_policies=False).shutdown_supervisor()
        shutil.rmtree(root, ignore_errors=True)
    goals = {"help_ms": 150, "run_ratio": 1.3, "magic_ps_200_ms": 100}
    for key, value in figures.items():
        goal = goals.get(key)
        verdict = "" if goal is None else ("  ok" if value <= goal else f"  MISSES goal {goal}")
        print(f"{key:18s} {value:8.2f}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
