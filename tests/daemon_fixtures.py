"""A real ``pyjaild`` for the daemon tests: a subprocess on a throw-away data root.

Used by test_daemon_api.py, test_docker_cli.py and test_docker_py.py: each one
defines a module-scoped ``daemon`` fixture as ``yield from running_daemon()``.
The busybox image is made the way a user would: a rootfs tar built from the host's
static busybox, imported over the API.
Teardown stops the daemon by PID, then the supervisor of its data root (which kills the
containers), and removes the directories: no process, cgroup or mount is left.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "busybox:latest"


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over the daemon's unix socket."""

    def __init__(self, path: str, timeout: float = 60.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):  # noqa: ANN201 - any JSON value
        return json.loads(self.body)


@dataclass
class Daemon:
    """A running daemon and helpers to talk to it."""

    process: subprocess.Popen
    data_root: Path
    socket_path: str
    pidfile: Path
    log_path: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    def connect(self, timeout: float = 60.0) -> UnixHTTPConnection:
        return UnixHTTPConnection(self.socket_path, timeout)

    def request(self, method: str, path: str, body: object = None, *,
                raw: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> Response:
        conn = self.connect(timeout)
        try:
            data = raw if raw is not None else (
                None if body is None else json.dumps(body).encode())
            hdrs = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def create(self, cmd: list[str], name: str | None = None, **config: object) -> str:
        body = {"Image": BUSYBOX, "Cmd": cmd, **config}
        body.setdefault("HostConfig", {"NetworkMode": "none"})
        path = "/containers/create" + (f"?name={quote(name)}" if name else "")
        resp = self.request("POST", path, body)
        assert resp.status == 201, resp.body
        return resp.json()["Id"]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text()
        except OSError:
            return ""


def busybox_rootfs_tar() -> bytes:
    """The offline base image's rootfs, built by the engine's own bootstrap code."""
    from pyjail.images.bootstrap import build_rootfs_tar
    out = io.BytesIO()
    build_rootfs_tar("/bin/busybox", out, int(os.stat("/bin/busybox").st_mtime))
    return out.getvalue()


def import_busybox(daemon: Daemon) -> str:
    changes = quote('CMD ["sh"]')
    resp = daemon.request(
        "POST", f"/images/create?fromSrc=-&repo=busybox&tag=latest&changes={changes}",
        raw=busybox_rootfs_tar(), headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200, resp.body
    return json.loads(resp.body.splitlines()[-1])["status"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "daemon"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def start_daemon(extra_args: list[str] | None = None) -> Daemon:
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-d", dir="/var/tmp"))
    sock = str(root / "d.sock")
    pidfile = root / "d.pid"
    log_path = root / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(root / "data"),
             "-H", f"unix://{sock}", "--pidfile", str(pidfile), *(extra_args or [])],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env())
    daemon = Daemon(proc, root, sock, pidfile, log_path)
    wait_until_answering("pyjaild", proc, lambda: daemon.request(
        "GET", "/_ping", timeout=2).status == 200, daemon.log_text,
        lambda: stop_daemon(daemon), timeout=30)
    return daemon


def wait_until_answering(what: str, proc: subprocess.Popen, answers: Callable[[], bool],
                         log_text: Callable[[], str], stop: Callable[[], None],
                         timeout: float) -> None:
    """Poll ``answers`` (an OSError counts as "not yet") until it is true; if the process
    exits first, or the time runs out (then after ``stop``), raise with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_text()}")
        try:
            if answers():
                return
        except OSError:
            pass
        time.sleep(0.05)
    stop()
    raise RuntimeError(f"{what} did not answer:\n{log_text()}")


def stop_daemon(daemon: Daemon) -> None:
    proc = daemon.process
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    from pyjail.engine import Engine
    engine = Engine(daemon.data_root / "data", restart_policies=False)
    engine.shutdown_supervisor()
    if os.environ.get("PYJAILD_TEST_LOGS"):
        shutil.copy(daemon.log_path, os.path.join(os.environ["PYJAILD_TEST_LOGS"],
                                                  daemon.data_root.name + ".log"))
    shutil.rmtree(daemon.data_root, ignore_errors=True)


def running_daemon() -> Iterator[Daemon]:
    """Body of each test module's ``daemon`` fixture: a daemon with the busybox image."""
    d = start_daemon()
    try:
        import_busybox(d)
        yield d
    finally:
        stop_daemon(d)


def ipython_shell():
    """The process-wide test IPython shell: start_ipython() answers None once it has started."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython
    return start_ipython() or get_ipython()


DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def docker_cli(daemon: Daemon, **extra_env: str):
    """The real docker CLI against ``daemon``: ``run(*args)`` returns the CompletedProcess
    (text) and fails the test on a non-zero exit unless ``check=False``."""
    env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(daemon.data_root),
           **extra_env}

    def run(*args: str, input: str | None = None, timeout: float = 120, check: bool = True,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=timeout)
        if check:
            assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    run.env = env
    run.host = daemon.host
    return run
