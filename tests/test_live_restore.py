"""Live restore: a `kill -9` of the daemon loses no container, log line or exit code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from conftest import ROOT, make_data_root  # noqa: E402


def wait_for(predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(interval)
    return False


def start_daemon(root: Path, sock: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'daemon'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(root),
         "-H", f"unix://{sock}", "--pidfile", str(root.parent / f"{root.name}.pid")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(root.parent / f"{root.name}.log", "ab"))
    client = docker.DockerClient(base_url=f"unix://{sock}", timeout=30, version="1.44")
    try:
        if not wait_for(client.ping, timeout=30):
            proc.kill()  # never leave a daemon behind when the test cannot go on
            proc.wait()
            pytest.fail("daemon did not answer /_ping")
    finally:
        client.close()
    return proc


@pytest.fixture
def daemon_root():
    from pyjail.engine import Engine
    from pyjail.images import busybox_image
    root = make_data_root()
    data = root / "data"
    engine = Engine(data)
    busybox_image(engine.images)
    engine.close()
    yield data
    engine = Engine(data, restart_policies=False)
    engine.shutdown_supervisor()
    shutil.rmtree(root, ignore_errors=True)


def test_kill_9_of_daemon_keeps_containers_logs_and_exit_codes(daemon_root):
    sock = daemon_root.parent / "d.sock"
    proc = start_daemon(daemon_root, sock)
    client = docker.DockerClient(base_url=f"unix://{sock}", timeout=30, version="1.44")
    try:
        ticker = client.containers.run(
            "busybox", ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"],
            detach=True, name="ticker", network_mode="none")
        signal_dir = daemon_root.parent / "signal"
        signal_dir.mkdir()
        quitter = client.containers.run(
            "busybox", ["sh", "-c", "while [ ! -e /sig/go ]; do sleep 0.05; done; exit 7"],
            detach=True, name="quitter", network_mode="none",
            volumes={str(signal_dir): {"bind": "/sig", "mode": "rw"}})
        sleepers = [client.containers.run("busybox", ["sleep", "1000"], detach=True,
                                          network_mode="none") for _ in range(3)]
        assert wait_for(lambda: len(ticker.logs().splitlines()) >= 3)
        ids = {c.id for c in [ticker, quitter, *sleepers]}

        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # With the daemon gone, make the quitter exit through its bind mount.
        (signal_dir / "go").write_text("")
        exit_file = daemon_root / "containers" / quitter.id / "exit.json"
        assert wait_for(exit_file.exists), "the quitter did not exit while the daemon was down"
        log_file = daemon_root / "containers" / ticker.id / f"{ticker.id}-json.log"
        lines_down = len(log_file.read_text().splitlines())
        assert wait_for(lambda: len(log_file.read_text().splitlines()) >= lines_down + 5), \
            "logs stopped while the daemon was down"

        proc = start_daemon(daemon_root, sock)
        listed = {c.id: c for c in client.containers.list(all=True)}
        assert ids <= set(listed)
        quitter.reload()
        assert quitter.status == "exited"
        assert quitter.attrs["State"]["ExitCode"] == 7
        ticker.reload()
        assert ticker.status == "running"
        numbers = [int(x) for x in ticker.logs().split()]
        assert numbers == list(range(len(numbers))), "a log line is missing"
        assert wait_for(lambda: len(ticker.logs().split()) > len(numbers)), "logs do not continue"
        sleepers[0].stop(timeout=1)
        sleepers[0].reload()
        assert sleepers[0].status == "exited"
        for c in client.containers.list(all=True):
            c.remove(force=True)
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
