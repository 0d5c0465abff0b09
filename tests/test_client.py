"""pyjail.client against a real pyjaild on a real unix socket (and a real dockerd if one
can be started): discovery, errors, run/exec streaming, every listing's columns.

``DaemonProcess`` and ``DockerdProcess`` here are also used by test_magics, test_cli and
test_notebooks (``from test_client import ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pyjail.client import commands, grammar, hosts, views
from pyjail.client.connection import Client
from pyjail.client.errors import ClientError, DaemonUnavailable, NotFound, NotSupported
from pyjail.client.live import LogFollower, StatsSampler
from pyjail.client.tables import Table
from pyjail.client.ui import Frontend

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"
SERVER_MISSING = "server side not implemented yet"


class DaemonProcess:
    """A real ``pyjaild`` on a throw-away data root under /var/tmp, with busybox."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pyjail-test-client-", dir="/var/tmp"))
        self.host = f"unix://{self.root}/pyjaild.sock"
        self.pidfile = self.root / "pyjaild.pid"
        self.proc: subprocess.Popen | None = None

    def start(self) -> DaemonProcess:
        subprocess.run([sys.executable, "-m", "pyjail", "--data-root", str(self.root), "image",
                        "bootstrap"], check=True, capture_output=True, timeout=120)
        log = open(self.root / "pyjaild.log", "wb")  # noqa: SIM115 - the daemon owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(self.root),
             "-H", self.host, "--pidfile", str(self.pidfile)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 30
        while not hosts.ping(self.host, timeout=1).ok:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"pyjaild did not start: {self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "pyjaild.log").read_text()[-2000:]
        return ""

    def stop(self) -> None:
        """The daemon by PID, then the data root's supervisor (and containers), then files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        from pyjail.engine import Engine
        Engine(self.root, restart_policies=False).shutdown_supervisor()
        shutil.rmtree(self.root, ignore_errors=True)


class DockerdProcess:
    """dockerd via the shared anchor script; reused (and left running) if already up."""

    def __init__(self) -> None:
        self.dir = Path(os.environ.get("ANCHOR_DIR", "/tmp/anchors"))
        self.host = f"unix://{self.dir}/dockerd.sock"
        self.started_here = False

    def start(self) -> DockerdProcess:
        if not shutil.which("dockerd") or not (ANCHORS / "start-dockerd.sh").exists():
            pytest.skip("dockerd or the anchor scripts are not installed on this host")
        if hosts.ping(self.host, timeout=1).ok:
            return self
        if not (self.dir / "busybox-rootfs.tar").exists():
            subprocess.run(["bash", str(ANCHORS / "make-busybox-image.sh")],
                           capture_output=True, timeout=120)
        proc = subprocess.run(["bash", str(ANCHORS / "start-dockerd.sh")],
                              capture_output=True, text=True, timeout=120)
        if not hosts.ping(self.host, timeout=2).ok:
            pytest.skip(f"dockerd could not be started here: {proc.stderr.strip()[-300:]}")
        self.started_here = True
        return self

    def stop(self) -> None:
        if not self.started_here:
            return
        pidfile = self.dir / "dockerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)


def server_has(client: Client, method: str, path: str) -> bool:
    """False when the daemon answers "page not found" / 501 for an endpoint (not built yet)."""
    api = client.api
    url = path if path.startswith("/pyjail/") else api._url(path)
    if url.startswith("/"):
        url = api.base_url + url
    resp = api.request(method, url, timeout=10)
    if resp.status_code == 501:
        return False
    if resp.status_code == 404:
        try:
            return resp.json().get("message") != "page not found"
        except ValueError:
            return False
    return True


def require_server(client: Client, method: str, path: str) -> None:
    if not server_has(client, method, path):
        pytest.xfail(f"{SERVER_MISSING} ({method} {path} answers 404/501)")


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess().start()
    yield d
    d.stop()


@pytest.fixture
def client(daemon):
    c = Client(daemon.host)
    yield c
    with contextlib.suppress(ClientError):
        for entry in c.api.containers(all=True, filters={"label": ["pyjail-test"]}):
            c.api.remove_container(entry["Id"], force=True)
    c.close()


class Recorder(Frontend):
    """A front end that records what was written, and when."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, str, str]] = []

    def write(self, text: str, stream: str = "stdout") -> None:
        self.writes.append((time.monotonic(), stream, text))


def parse(line: str) -> argparse.Namespace:
    return grammar.build_parser("%container", cli=False).parse_args(line.split())


def run_line(client: Client, argv: list[str], frontend: Frontend | None = None):
    args = grammar.build_parser("%container", cli=False).parse_args(argv)
    return commands.execute(commands.Session(client, frontend or Recorder()), args)


# -- discovery and errors ------------------------------------------------------------------
def test_host_discovery_order(monkeypatch):
    monkeypatch.delenv("PYJAIL_HOST", raising=False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert hosts.resolve_host() == hosts.DEFAULT_HOST == "unix:///run/pyjail/pyjail.sock"
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/docker.sock")
    assert hosts.resolve_host() == "unix:///tmp/docker.sock"
    monkeypatch.setenv("PYJAIL_HOST", "/tmp/pyjail.sock")
    assert hosts.resolve_host() == "unix:///tmp/pyjail.sock"
    assert hosts.resolve_host("tcp://127.0.0.1:2375") == "tcp://127.0.0.1:2375"


def test_missing_daemon_is_one_line_that_says_how_to_start_one(tmp_path):
    client = Client(f"unix://{tmp_path}/none.sock")
    with pytest.raises(DaemonUnavailable) as info:
        run_line(client, ["ps"])
    message = str(info.value)
    assert "\n" not in message
    assert "pyjail daemon start" in message and "pyjaild" in message
    assert "no such socket" in message


def test_refused_socket_is_one_line(tmp_path):
    import socket
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # a socket file nobody listens on
    with pytest.raises(DaemonUnavailable, match="connection refused"):
        Client(f"unix://{path}").version  # noqa: B018


def test_client_knows_it_talks_to_pyjail(client):
    assert client.is_pyjail
    assert client.server_name.startswith("pyjail ")
    assert client.api_version == "1.44"


def test_unknown_container_is_not_found(client):
    with pytest.raises(NotFound, match="no-such-container"):
        run_line(client, ["logs", "no-such-container"])


# -- run and exec --------------------------------------------------------------------------
def test_run_streams_output_as_it_comes_and_returns_exit_code(client):
    rec = Recorder()
    result = run_line(client, ["run", "--rm", "-l", "pyjail-test", "busybox", "sh", "-c",
                               "echo first; sleep 1; echo second >&2; exit 3"], rec)
    assert result.exit_code == 3
    assert result.stdout == "first\n" and result.stderr == "second\n"
    assert result.output == "first\nsecond\n"
    assert result.removed and result.container is None
    first = next(t for t, _, text in rec.writes if "first" in text)
    second = next(t for t, s, text in rec.writes if "second" in text and s == "stderr")
    assert second - first >= 0.8, "output was buffered until the container ended"
    assert not client.api.containers(all=True, filters={"id": [result.container_id]})


def test_run_flags_reach_the_container(client, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    tmp_path.chmod(0o755)  # read as nobody inside
    argv = ["run", "--name", "flags", "-l", "pyjail-test", "-l", "tier=web", "-e", "A=1",
            "-e", "B=two words", "-w", "/tmp", "-u", "nobody", "-m", "64m", "--cpus", "0.5",
            "-v", f"{tmp_path}:/data:ro", "--cap-drop", "NET_RAW", "--cap-add", "SYS_TIME",
            "--restart", "on-failure:2", "--init", "--network", "none", "-h", "box",
            "--health-cmd", "true", "--health-interval", "1s", "--health-retries", "2",
            "--health-timeout", "2s", "--health-start-period", "500ms",
            "--entrypoint", "sh", "busybox", "-c",
            "echo $A $B; pwd; id -u; hostname; cat /data/in.txt"]
    result = run_line(client, argv)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["1 two words", "/tmp", "65534", "box",
                                          "from the host"]
    info = result.container.attrs
    host = info["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000
    assert host["CapDrop"] == ["NET_RAW"] and host["CapAdd"] == ["SYS_TIME"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert host["Init"] is True and host["NetworkMode"] == "none"
    assert info["Config"]["Labels"] == {"pyjail-test": "", "tier": "web"}
    assert info["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "Timeout": 2_000_000_000,
        "Retries": 2, "StartPeriod": 500_000_000}
    assert info["Config"]["Entrypoint"] == ["sh"]


def test_detached_run_then_exec(client):
    result = run_line(client, ["run", "-d", "--name", "sleeper", "-l", "pyjail-test",
                               "busybox", "sleep", "30"])
    assert result.exit_code is None and len(result.container_id) == 64
    rec = Recorder()
    done = run_line(client, ["exec", "-e", "X=42", "sleeper", "sh", "-c",
                             "echo x=$X; echo oops >&2; exit 5"], rec)
    assert (done.exit_code, done.stdout, done.stderr) == (5, "x=42\n", "oops\n")
    assert run_line(client, ["rm", "-f", "sleeper"]) == ["sleeper"]


def test_publish_flag_becomes_port_bindings(client):
    result = run_line(client, ["run", "-d", "--name", "ports", "-l", "pyjail-test", "-p",
                               "127.0.0.1:18080:80", "-p", "9000:90/udp", "busybox",
                               "sleep", "30"])
    bindings = result.container.attrs["HostConfig"]["PortBindings"]
    assert bindings["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18080"}]
    assert bindings["90/udp"] == [{"HostIp": "", "HostPort": "9000"}]
    table = run_line(client, ["ps", "-f", "name=ports"])
    assert "127.0.0.1:18080->80/tcp" in table.rows[0]["ports"]


# -- listings ------------------------------------------------------------------------------
def test_ps_table_has_documented_columns(client):
    run_line(client, ["run", "-d", "--name", "listed", "-l", "pyjail-test", "busybox",
                      "sleep", "30"])
    table = run_line(client, ["ps", "-a", "-f", "name=listed"])
    assert isinstance(table, Table)
    assert [c.name for c in table.columns] == [c.name for c in views.PS]
    row = table.rows[0]
    assert row["name"] == "listed" and row["state"] == "running"
    assert row["created"].tzinfo is not None
    assert run_line(client, ["ps", "-q", "-f", "name=listed"]) == [row["id"][:12]]


def test_stats_and_top_of_a_running_container(client):
    run_line(client, ["run", "-d", "--name", "busy", "-l", "pyjail-test", "busybox", "sh",
                      "-c", "while true; do :; done"])
    table = run_line(client, ["stats", "busy"])
    row = table.rows[0]
    assert row["name"] == "busy" and row["pids"] >= 1 and row["mem_usage"] > 0
    assert row["cpu_percent"] > 1.0, "a spinning shell should show CPU use"
    top = run_line(client, ["top", "busy"])
    assert {"pid", "cmd"} <= {c.name for c in top.columns}
    assert any("while true" in r["cmd"] for r in top.rows)


def test_inspect_flattens_to_field_value(client):
    run_line(client, ["run", "--name", "inspected", "-l", "pyjail-test", "busybox", "true"])
    table = run_line(client, ["inspect", "inspected"])
    fields = {r["field"]: r["value"] for r in table.rows}
    assert fields["Name"] == "/inspected"
    assert fields["State.ExitCode"] == 0
    assert fields["Config.Labels.pyjail-test"] == ""
    with pytest.raises(NotFound, match="No such object: nothing-here"):
        run_line(client, ["inspect", "nothing-here"])


def test_events_df_and_volumes(client):
    client.api.create_volume("pyjail-test-vol", labels={"pyjail-test": ""})
    try:
        events = run_line(client, ["events", "--since", "60s", "-f", "type=volume"])
        assert any(r["action"] == "create" and r["id"] == "pyjail-test-vol"
                   for r in events.rows)
        volumes = run_line(client, ["volumes", "-f", "label=pyjail-test"])
        assert [r["name"] for r in volumes.rows] == ["pyjail-test-vol"]
        df = run_line(client, ["df"])
        assert [r["type"] for r in df.rows] == ["Images", "Containers", "Local Volumes",
                                               "Build Cache"]
    finally:
        client.api.remove_volume("pyjail-test-vol")


def test_lifecycle_commands_report_every_failure(client):
    run_line(client, ["run", "-d", "--name", "cycle", "-l", "pyjail-test", "busybox",
                      "sleep", "30"])
    assert run_line(client, ["stop", "-t", "1", "cycle"]) == ["cycle"]
    assert run_line(client, ["start", "cycle"]) == ["cycle"]
    assert run_line(client, ["restart", "-t", "1", "cycle"]) == ["cycle"]
    with pytest.raises(ClientError) as info:
        run_line(client, ["rm", "cycle", "ghost"])
    assert "ghost" in str(info.value) and "\n" not in str(info.value)
    assert run_line(client, ["rm", "-f", "cycle"]) == ["cycle"]


def test_prune_removes_stopped_containers(client):
    run_line(client, ["run", "--name", "stopped", "-l", "pyjail-test", "busybox", "true"])
    table = run_line(client, ["prune", "containers", "-f", "label=pyjail-test"])
    row = table.rows[0]
    assert row["type"] == "containers" and row["deleted"] >= 1
    assert not client.api.containers(all=True, filters={"name": ["stopped"]})


# -- following -----------------------------------------------------------------------------
def test_log_follower_follows_until_the_container_ends(client):
    run_line(client, ["run", "-d", "--name", "talker", "-l", "pyjail-test", "busybox", "sh",
                      "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo bye >&2"])
    pieces = list(LogFollower(client, "talker").chunks())
    assert "".join(t for s, t in pieces if s == "stdout") == "line 1\nline 2\nline 3\n"
    assert ("stderr", "bye\n") in pieces


def test_log_follower_stops_on_request(client):
    run_line(client, ["run", "-d", "--name", "forever", "-l", "pyjail-test", "busybox", "sh",
                      "-c", "while true; do echo tick; sleep 0.1; done"])
    follower = LogFollower(client, "forever")
    got = []
    started = time.monotonic()
    for _stream, text in follower.chunks():
        got.append(text)
        if len(got) == 3:
            follower.stop()
    assert len(got) >= 3 and time.monotonic() - started < 5


def test_stats_sampler_samples_over_time(client):
    run_line(client, ["run", "-d", "--name", "sampled", "-l", "pyjail-test", "busybox",
                      "sleep", "30"])
    sampler = StatsSampler(client, ["sampled"], interval=0.2, duration=1.0)
    ticks = list(sampler.samples())
    assert len(ticks) >= 3
    frame = sampler.history_table().to_frame()
    assert str(frame["read"].dtype) == "datetime64[ns, UTC]"
    assert frame["read"].is_monotonic_increasing


# -- images, builds, registries, backups -----------------------------------------------------
def test_image_bootstrap_through_the_daemon(client):
    image_id = run_line(client, ["image", "bootstrap", "--tag", "bb-test:1"])
    assert image_id.startswith("sha256:")
    result = run_line(client, ["run", "--rm", "bb-test:1", "echo", "ok"])
    assert result.stdout == "ok\n"


def test_images_and_history(client):
    require_server(client, "GET", "/images/json")
    table = run_line(client, ["images"])
    assert any(r["repository"] == "busybox" and r["tag"] == "latest" for r in table.rows)
    require_server(client, "GET", "/images/busybox/history")
    history = run_line(client, ["history", "busybox"])
    assert history.rows and history.rows[0]["created_by"]


def test_tag(client):
    require_server(client, "POST", "/images/busybox/tag?repo=bb-tagged&tag=1")
    run_line(client, ["tag", "busybox", "bb-tagged:2"])
    assert client.api.inspect_image("bb-tagged:2")["Id"]


def test_build_returns_image_id(client, tmp_path):
    require_server(client, "POST", "/build")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    image_id = run_line(client, ["build", "-q", "-t", "built:1", str(tmp_path)])
    assert run_line(client, ["run", "--rm", "built:1", "cat", "/built"]).stdout == "built\n"
    assert image_id


def test_pull_of_unknown_image_is_one_line(client):
    with pytest.raises(ClientError) as info:
        run_line(client, ["pull", "-q", "127.0.0.1:9/nothing:here"])
    assert "\n" not in str(info.value)


def test_backups_need_the_server_side(client):
    require_server(client, "GET", "/pyjail/v1/backups")
    table = run_line(client, ["backups"])
    assert [c.name for c in table.columns] == [c.name for c in views.BACKUPS]


def test_missing_pyjail_endpoint_is_one_clear_line(client):
    if server_has(client, "GET", "/pyjail/v1/backups"):
        pytest.skip("the daemon serves backups now")
    with pytest.raises(NotSupported) as info:
        run_line(client, ["backups"])
    assert "does not serve /pyjail/v1/backups" in str(info.value)


# -- the same client against dockerd ---------------------------------------------------------
@pytest.fixture(scope="module")
def dockerd():
    d = DockerdProcess().start()
    yield d
    d.stop()


@pytest.fixture
def docker_client(dockerd):
    c = Client(dockerd.host)
    yield c
    for entry in c.api.containers(all=True, filters={"label": ["pyjail-test"]}):
        c.api.remove_container(entry["Id"], force=True)
    c.close()


def test_against_dockerd_run_ps_stats_logs(docker_client):
    c = docker_client
    assert not c.is_pyjail
    result = run_line(c, ["run", "--rm", "--network", "none", "-l", "pyjail-test",
                          "busybox:local", "sh", "-c", "echo hi; exit 2"])
    assert (result.exit_code, result.output) == (2, "hi\n")
    run_line(c, ["run", "-d", "--network", "none", "--name", "pj-docker", "-l", "pyjail-test",
                 "busybox:local", "sh", "-c", "echo up; sleep 30"])
    ps = run_line(c, ["ps", "-f", "name=pj-docker"])
    assert ps.rows[0]["name"] == "pj-docker"
    stats = run_line(c, ["stats", "pj-docker"])
    assert stats.rows[0]["pids"] >= 1
    images = run_line(c, ["images", "busybox"])
    assert [(r["repository"], r["tag"]) for r in images.rows] == [("busybox", "local")]
    assert run_line(c, ["history", "busybox:local"]).rows
    assert run_line(c, ["rm", "-f", "pj-docker"]) == ["pj-docker"]


def test_against_dockerd_pyjail_features_say_so(docker_client):
    with pytest.raises(NotSupported) as info:
        run_line(docker_client, ["backups"])
    assert "need a pyjail daemon" in str(info.value) and "\n" not in str(info.value)
