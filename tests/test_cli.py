"""The ``pyjail`` command in a real shell process: fast help, one grammar with the magic,
text tables, one-line errors, ``daemon start|stop|status`` by PID file, image bootstrap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_client import DaemonProcess

from pyjail.client import grammar, hosts

PYJAIL = [sys.executable, "-m", "pyjail"]


def pyjail(*args: str, host: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    if host:
        env["PYJAIL_HOST"] = host
    else:
        env.pop("PYJAIL_HOST", None)
    return subprocess.run([*PYJAIL, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess().start()
    yield d
    d.stop()


def test_help_runs_without_heavy_imports():
    """--help must not pay for pandas, docker-py or the engine (its time is in bench/bench_client.py)."""
    script = Path(sys.executable).with_name("pyjail")
    cmd = [str(script), "--help"] if script.exists() else [*PYJAIL, "--help"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and "daemon" in proc.stdout
    imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "pyjail", "--help"],
                             capture_output=True, text=True).stderr
    for heavy in ("pandas", "ipywidgets", "docker", "requests", "IPython", "pyjail.engine"):
        assert f" {heavy}\n" not in imports and f" {heavy}." not in imports, heavy


def test_cli_and_magic_share_one_grammar():
    cli = grammar.build_parser("pyjail", cli=True)
    magic = grammar.build_parser("%container", cli=False)

    def commands(parser):
        action = next(a for a in parser._actions if a.dest == "command")
        return set(action.choices)

    assert commands(cli) - commands(magic) == set(grammar.CLI_ONLY)
    argv = ["run", "--rm", "-m", "1g", "--health-interval", "1m30s", "busybox", "ls", "-l"]
    assert vars(cli.parse_args(argv)) | {"host": None, "data_root": None} == vars(
        magic.parse_args(argv)) | {"host": None, "data_root": None}
    args = magic.parse_args(argv)
    assert (args.memory, args.health_interval, args.cmd) == (1 << 30, 90 * 10**9, ["ls", "-l"])


def test_tables_errors_and_exit_codes(daemon):
    run = pyjail("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7",
                 host=daemon.host)
    assert (run.returncode, run.stdout, run.stderr) == (7, "out\n", "err\n")
    started = pyjail("run", "-d", "--name", "cli-ps", "-l", "pyjail-test", "busybox", "sleep",
                     "30", host=daemon.host)
    assert started.returncode == 0 and len(started.stdout.strip()) == 64
    ps = pyjail("ps", "--filter", "name=cli-ps", host=daemon.host)
    header, row = ps.stdout.splitlines()
    assert header.split()[:3] == ["CONTAINER", "ID", "NAMES"]
    assert row.startswith(started.stdout.strip()[:12]) and "cli-ps" in row
    for command in (["stats", "cli-ps"], ["top", "cli-ps"], ["df"], ["volumes"],
                    ["inspect", "cli-ps"], ["events", "--since", "60s"]):
        out = pyjail(*command, host=daemon.host)
        assert out.returncode == 0 and out.stdout.strip(), (command, out.stderr)
    assert pyjail("rm", "-f", "cli-ps", host=daemon.host).stdout == "cli-ps\n"

    bad = pyjail("run", "--cpus", "lots", "busybox", host=daemon.host)
    assert bad.returncode == 2 and bad.stderr.splitlines()[0].startswith("pyjail run: argument")
    missing = pyjail("logs", "ghost", host=daemon.host)
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1
    assert "Traceback" not in missing.stderr


def test_daemon_down_is_one_line_with_the_start_hint(tmp_path):
    out = pyjail("ps", host=f"unix://{tmp_path}/none.sock")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "pyjail daemon start" in out.stderr


def test_daemon_start_status_stop_by_pidfile():
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-cli-", dir="/var/tmp"))
    host = f"unix://{root}/d.sock"
    pidfile = root / "d.pid"
    try:
        config = root / "daemon.json"    # the data root comes from pyjaild's config file
        config.write_text(json.dumps({"data-root": str(root / "data")}))
        started = pyjail("-H", host, "daemon", "start", "--config", str(config), "--pidfile",
                         str(pidfile))
        assert started.returncode == 0, started.stderr
        assert "pyjaild is running" in started.stdout
        assert (root / "data" / "pyjaild.log").is_file() and (root / "data" / "images").is_dir()
        pid = int(pidfile.read_text())
        assert hosts.ping(host).ok
        again = pyjail("-H", host, "daemon", "start", "--pidfile", str(pidfile))
        assert again.returncode == 0 and int(pidfile.read_text()) == pid  # no second daemon
        status = pyjail("-H", host, "daemon", "status")
        assert status.returncode == 0 and "API 1.44" in status.stdout
        boot = pyjail("-H", host, "image", "bootstrap")  # through the daemon
        assert boot.returncode == 0 and boot.stdout.startswith("sha256:")
        ran = pyjail("run", "--rm", "busybox", "echo", "up", host=host)
        assert ran.stdout == "up\n"
        stopped = pyjail("daemon", "stop", "--pidfile", str(pidfile))
        assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
        assert not alive(pid)
        down = pyjail("-H", host, "daemon", "status")
        assert down.returncode == 1 and "no daemon" in down.stdout
        not_running = pyjail("daemon", "stop", "--pidfile", str(pidfile))
        assert not_running.returncode == 1 and "not running" in not_running.stderr
    finally:
        pid_text = pidfile.read_text() if pidfile.exists() else ""
        if pid_text.strip() and Path(f"/proc/{pid_text.strip()}").exists():
            os.kill(int(pid_text), 15)
        from pyjail.engine import Engine
        Engine(root / "data", restart_policies=False).shutdown_supervisor()
        shutil.rmtree(root, ignore_errors=True)


def test_image_bootstrap_into_a_data_root_offline():
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-cli-", dir="/var/tmp"))
    try:
        first = pyjail("--data-root", str(root), "image", "bootstrap", "--tag", "bb:1")
        second = pyjail("--data-root", str(root), "image", "bootstrap", "--tag", "bb:1")
        assert first.returncode == 0 and first.stdout == second.stdout
        assert first.stdout.startswith("sha256:")
        assert (root / "images" / "repositories.json").exists()
        supervisors = [p for p in Path("/proc").glob("[0-9]*/cmdline")
                       if str(root).encode() in _read(p)]
        assert not supervisors, "bootstrap needs only the image store, no supervisor"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a subreaper to collect it does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_times_to_come_and_durations_read_like_the_grammar():
    from datetime import UTC, datetime, timedelta

    from pyjail.client.tables import human_ago, human_duration
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert human_ago(now - timedelta(minutes=3), now) == "3 minutes ago"
    assert human_ago(now + timedelta(minutes=59, seconds=30), now) == "in 59 minutes"
    assert human_ago(now, now) == "Less than a second ago"
    assert [human_duration(s) for s in (0, 90, 3600, 5400, 7 * 86400)] == [
        "", "1m30s", "1h", "1h30m", "7d"]
    assert grammar.duration_seconds(human_duration(5400)) == 5400   # reads back
