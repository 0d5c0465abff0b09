"""``pyjail daemon start|stop|status``: run ``pyjaild`` in the background on this host.

``start`` launches it detached (own session, output to a log file), lets it write its PID
file, and returns once ``/_ping`` answers. ``stop`` signals the PID in that file, never a
process found by name. Nothing here imports the engine: the daemon is another process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ClientError
from .hosts import DEFAULT_HOST, normalise, ping, unix_path

DEFAULT_DATA_ROOT = "/var/lib/pyjail"
DEFAULT_PIDFILE = "/run/pyjail/pyjaild.pid"


@dataclass
class DaemonStatus:
    running: bool
    host: str
    pid: int | None = None
    api_version: str = ""
    error: str = ""

    def __str__(self) -> str:
        if self.running:
            pid = f", pid {self.pid}" if self.pid else ""
            return f"pyjaild is running at {self.host} (API {self.api_version}{pid})"
        return f"no daemon at {self.host}: {self.error}"


def daemon_host(explicit: str | None) -> str:
    """The address a local daemon listens on: -H, $PYJAIL_HOST, pyjail's default socket.

    ``$DOCKER_HOST`` is left out on purpose: it usually names dockerd's socket.
    """
    return normalise(explicit or os.environ.get("PYJAIL_HOST") or DEFAULT_HOST)


def read_pid(pidfile: str) -> int | None:
    try:
        pid = int(Path(pidfile).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _reap(pid: int) -> bool:
    """True once ``pid`` is gone (reaping it if it happens to be our child)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def start(host: str | None = None, data_root: str | None = None, pidfile: str | None = None,
          log_file: str | None = None, timeout: float = 30.0,
          runtime: str | None = None, config: str | None = None) -> DaemonStatus:
    """Start pyjaild unless one already answers at the address; wait for ``/_ping``.

    ``config`` is pyjaild's daemon.json: its ``data-root`` applies unless ``data_root`` is
    given (so a root moved by ``pyjail storage migrate --config`` is found again)."""
    address = daemon_host(host)
    if not unix_path(address):
        raise ClientError(f"`pyjail daemon start` serves unix sockets only; run pyjaild "
                          f"with TLS options yourself for {address}")
    already = ping(address, timeout=1)
    pidfile = pidfile or DEFAULT_PIDFILE
    if already.ok:
        return DaemonStatus(True, address, read_pid(pidfile), already.api_version)
    root = data_root or _config_data_root(config) or DEFAULT_DATA_ROOT
    Path(root).mkdir(parents=True, exist_ok=True, mode=0o711)
    log_path = log_file or str(Path(root) / "pyjaild.log")
    cmd = [sys.executable, "-m", "pyjail_daemon.main", "--data-root", root, "-H", address,
           "--pidfile", pidfile]
    if runtime:
        cmd += ["--default-runtime", runtime]
    if config:
        cmd += ["--config", config]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClientError(f"pyjaild exited with status {proc.returncode}: "
                              f"{_last_line(log_path)} (log: {log_path})")
        answer = ping(address, timeout=1)
        if answer.ok:
            return DaemonStatus(True, address, proc.pid, answer.api_version)
        time.sleep(0.05)
    proc.terminate()
    raise ClientError(f"pyjaild did not answer on {address} within {timeout:g}s "
                      f"(log: {log_path})")


def _config_data_root(config: str | None) -> str | None:
    if not config:
        return None
    try:
        with open(config) as f:
            value = json.load(f).get("data-root")
    except (OSError, ValueError, AttributeError) as exc:
        raise ClientError(f"cannot read config file {config}: {exc}") from None
    return value if isinstance(value, str) and value else None


def _last_line(path: str) -> str:
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def stop(pidfile: str | None = None, timeout: float = 15.0) -> int:
    """SIGTERM to the PID in the PID file, SIGKILL after ``timeout``; returns the PID."""
    pidfile = pidfile or DEFAULT_PIDFILE
    pid = read_pid(pidfile)
    if pid is None:
        raise ClientError(f"pyjaild is not running (no live process in {pidfile})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reap(pid):
            return pid
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    while not _reap(pid):
        time.sleep(0.05)
    return pid


def status(host: str | None = None, pidfile: str | None = None) -> DaemonStatus:
    address = daemon_host(host)
    answer = ping(address)
    pid = read_pid(pidfile or DEFAULT_PIDFILE) if answer.ok else None
    return DaemonStatus(answer.ok, address, pid, answer.api_version, answer.error)
