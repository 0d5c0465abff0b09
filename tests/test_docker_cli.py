"""The real docker CLI (28.x) against pyjaild: the commands people type, unchanged.

Every container uses ``--network none`` so these tests pin the API, not networking.
Interactive commands run under a real pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import termios
import time

import pytest
from daemon_fixtures import DOCKER, Daemon, busybox_rootfs_tar, docker_cli, running_daemon

NONE = ["--network", "none"]

pytestmark = pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


@pytest.fixture(scope="module")
def docker(daemon: Daemon):
    """Run ``docker ARGS``; returns the CompletedProcess (text)."""
    return docker_cli(daemon)


def run_in_pty(docker, args: list[str], keys: bytes = b"", timeout: float = 30) -> tuple[int, str]:
    """``docker ARGS`` with a pseudo-terminal as stdin/stdout/stderr, typing ``keys``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([DOCKER, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=docker.env, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        if keys:
            os.write(master, keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave side closed it
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")


def test_version_and_info(docker):
    out = docker("version", "--format", "{{json .}}").stdout
    server = json.loads(out)["Server"]
    assert server["ApiVersion"] == "1.44" and server["MinAPIVersion"] == "1.24"
    assert server["Os"] == "linux"
    info = docker("info", "--format", "{{json .}}").stdout
    info = json.loads(info)
    assert info["Driver"] == "overlay2" and info["OSType"] == "linux"
    assert info["Images"] >= 1


def test_import_then_images_and_rmi(docker, daemon, tmp_path):
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(busybox_rootfs_tar())
    out = docker("import", "-c", 'CMD ["sh"]', "-m", "cli import", str(tar), "imported:v1")
    image_id = out.stdout.strip()
    assert image_id.startswith("sha256:")
    listing = docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert f"imported:v1 {image_id[7:19]}" in listing.splitlines()
    cmd = docker("image", "inspect", "-f", "{{json .Config.Cmd}}", "imported:v1").stdout
    assert json.loads(cmd) == ["sh"]
    assert "cli import" in docker("history", "imported:v1").stdout
    assert docker("run", "--rm", *NONE, "imported:v1", "echo", "from-import").stdout == \
        "from-import\n"
    assert "Untagged: imported:v1" in docker("rmi", "imported:v1").stdout


def test_run_prints_output_and_returns_the_exit_code(docker):
    proc = docker("run", "--rm", *NONE, "busybox", "sh", "-c", "echo hi; echo oops >&2; exit 3",
                  check=False)
    assert proc.returncode == 3
    assert proc.stdout == "hi\n" and proc.stderr == "oops\n"
    assert docker("ps", "-aq").stdout == ""  # --rm removed it


def test_run_with_stdin(docker):
    proc = docker("run", "--rm", "-i", *NONE, "busybox", "sh", "-c", "cat; echo end",
                  input="piped\n")
    assert proc.stdout == "piped\nend\n"


def test_run_it_under_a_pty(docker):
    code, out = run_in_pty(docker, ["run", "-it", "--rm", *NONE, "busybox", "sh"],
                           keys=b"[ -t 0 ] && echo tty=$((6*7))\rexit 4\r")
    assert code == 4, out
    assert "tty=42" in out


def test_detached_container_lifecycle(docker):
    cid = docker("run", "-d", *NONE, "--name", "cli-life", "--label", "suite=cli", "busybox",
                 "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    try:
        names = docker("ps", "--filter", "label=suite=cli", "--format", "{{.Names}}").stdout
        assert names.split() == ["cli-life"]
        assert docker("inspect", "-f", "{{.State.Status}} {{.Name}}", "cli-life").stdout == \
            "running /cli-life\n"
        top = docker("top", "cli-life").stdout
        assert "PID" in top.splitlines()[0] and "while true" in top
        stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}",
                       "cli-life").stdout
        assert stats.startswith("cli-life ") and stats.strip().endswith("%")
        docker("pause", "cli-life")
        assert docker("inspect", "-f", "{{.State.Status}}", "cli-life").stdout == "paused\n"
        assert "(Paused)" in docker("ps", "--filter", "status=paused").stdout
        docker("unpause", "cli-life")
        docker("rename", "cli-life", "cli-renamed")
        docker("restart", "-t", "2", "cli-renamed")
        assert docker("inspect", "-f", "{{.State.Running}}", "cli-renamed").stdout == "true\n"
        docker("stop", "-t", "5", "cli-renamed")
        assert docker("wait", "cli-renamed").stdout == "0\n"
        exited = docker("ps", "-a", "--filter", "status=exited", "--filter", "name=cli-renamed",
                        "--format", "{{.Status}}").stdout
        assert exited.startswith("Exited (0)")
        docker("start", "cli-renamed")
        docker("kill", "cli-renamed")
        assert docker("wait", "cli-renamed").stdout == "137\n"
    finally:
        docker("rm", "-f", "cli-life", "cli-renamed", check=False)
    assert docker("ps", "-aq", "--filter", "label=suite=cli").stdout == ""


def test_logs_follow_and_timestamps(docker):
    docker("run", "-d", *NONE, "--name", "cli-logs", "busybox", "sh", "-c",
           "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo bye >&2")
    try:
        proc = docker("logs", "-f", "cli-logs", timeout=30)
        assert proc.stdout == "line 1\nline 2\nline 3\n" and proc.stderr == "bye\n"
        stamped = docker("logs", "-t", "--tail", "1", "cli-logs").stderr
        stamp, _, text = stamped.partition(" ")
        assert text == "bye\n" and stamp.endswith("Z")
    finally:
        docker("rm", "-f", "cli-logs")


def test_exec_and_exec_it(docker):
    docker("run", "-d", *NONE, "--name", "cli-exec", "busybox", "sleep", "60")
    try:
        proc = docker("exec", "cli-exec", "sh", "-c", "echo inside; exit 5", check=False)
        assert (proc.returncode, proc.stdout) == (5, "inside\n")
        assert docker("exec", "-i", "cli-exec", "cat", input="via-stdin\n").stdout == \
            "via-stdin\n"
        code, out = run_in_pty(docker, ["exec", "-it", "cli-exec", "sh"],
                               keys=b"[ -t 1 ] && echo exec-tty\rexit 6\r")
        assert code == 6, out
        assert "exec-tty" in out
        missing = docker("exec", "cli-exec", "no-such-binary", check=False)
        assert missing.returncode == 127
    finally:
        docker("rm", "-f", "cli-exec")


def test_container_prune(docker):
    docker("create", *NONE, "--name", "cli-prune", "busybox", "true")
    out = docker("container", "prune", "-f").stdout
    assert "Deleted Containers:" in out
    assert docker("ps", "-aq", "--filter", "name=cli-prune").stdout == ""


def test_volumes(docker):
    docker("volume", "create", "--label", "owner=cli", "cli-vol")
    assert "cli-vol" in docker("volume", "ls", "--format", "{{.Name}}").stdout.split()
    docker("run", "--rm", *NONE, "-v", "cli-vol:/data", "busybox", "sh", "-c",
           "echo kept > /data/f")
    assert docker("run", "--rm", *NONE, "-v", "cli-vol:/data", "busybox", "cat",
                  "/data/f").stdout == "kept\n"
    docker("create", *NONE, "--name", "cli-vol-user", "-v", "cli-vol:/data", "busybox")
    busy = docker("volume", "rm", "cli-vol", check=False)
    assert busy.returncode != 0 and "in use" in busy.stderr
    docker("rm", "cli-vol-user")
    docker("volume", "rm", "cli-vol")
    assert "cli-vol" not in docker("volume", "ls", "-q").stdout.split()


def test_system_df(docker):
    out = docker("system", "df").stdout
    assert out.splitlines()[0].split()[:2] == ["TYPE", "TOTAL"]
    assert "Images" in out and "Containers" in out and "Local Volumes" in out


def test_events_since_until(docker):
    since = time.time()
    docker("run", "--rm", *NONE, "--name", "cli-events", "busybox", "true")
    until = time.time() + 0.5
    out = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter",
                 "container=cli-events", "--format", "{{.Action}}", timeout=30).stdout
    actions = out.split()
    for action in ("create", "start", "die", "destroy"):
        assert action in actions, actions


def test_network_commands_and_names_that_resolve(docker):
    docker("network", "create", "--subnet", "10.231.7.0/24", "cli-net")
    try:
        assert "cli-net" in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        inspect = json.loads(docker("network", "inspect", "cli-net").stdout)[0]
        assert inspect["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
        docker("run", "-d", "--name", "cli-web", "--network", "cli-net", "--network-alias",
               "web", "busybox", "sh", "-c", "mkdir /www; echo page > /www/index.html; "
               "httpd -f -p 80 -h /www")
        out = docker("run", "--rm", "--network", "cli-net", "busybox", "sh", "-c",
                     "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web/ && exit 0; "
                     "sleep 0.2; done; exit 1").stdout
        assert out == "page\n"
        members = json.loads(docker("network", "inspect", "cli-net").stdout)[0]["Containers"]
        assert any(m["Name"] == "cli-web" for m in members.values())
        rm = docker("network", "rm", "cli-net", check=False)
        assert rm.returncode != 0 and "active endpoints" in rm.stderr
    finally:
        docker("rm", "-f", "cli-web", check=False)
        docker("network", "rm", "cli-net", check=False)
    assert "cli-net" not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()
