"""Finding the daemon, and the cheapest possible "is it there?" check.

Order: an explicit address, then ``$PYJAIL_HOST``, then ``$DOCKER_HOST``, then pyjail's
default socket. The ping speaks HTTP/1.0 on a bare socket (no docker-py, no requests) so
``pyjail daemon status`` and the start-up wait stay cheap.
"""

from __future__ import annotations

import http.client
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_HOST = "unix:///run/pyjail/pyjail.sock"
ENV_VARS = ("PYJAIL_HOST", "DOCKER_HOST")
START_HINT = "start one with `pyjail daemon start` (or run `pyjaild`)"


def resolve_host(explicit: str | None = None) -> str:
    """The daemon address to use, normalised to ``unix:///path`` or ``tcp://host:port``."""
    for candidate in (explicit, *(os.environ.get(v) for v in ENV_VARS)):
        if candidate:
            return normalise(candidate)
    return DEFAULT_HOST


def host_source(explicit: str | None = None) -> str:
    """Where ``resolve_host`` got the address from (for error messages)."""
    if explicit:
        return "setting"
    for var in ENV_VARS:
        if os.environ.get(var):
            return f"${var}"
    return "default"


def normalise(host: str) -> str:
    host = host.strip()
    if host.startswith("/"):
        return "unix://" + host
    if host.startswith("http://"):
        return "tcp://" + host[len("http://"):]
    return host


def unix_path(host: str) -> str | None:
    """The socket path of a ``unix://`` address; None for TCP."""
    if host.startswith("unix://"):
        return host[len("unix://"):] or None
    return None


@dataclass
class PingResult:
    ok: bool
    api_version: str = ""
    server: str = ""
    error: str = ""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def http_connection(host: str, timeout: float = 2.0) -> http.client.HTTPConnection:
    """A plain HTTP connection to the daemon (TLS hosts are docker-py's job, not ours)."""
    path = unix_path(host)
    if path:
        return _UnixHTTPConnection(path, timeout)
    parts = urlsplit(host.replace("tcp://", "http://", 1))
    return http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 2375,
                                      timeout=timeout)


def ping(host: str, timeout: float = 2.0) -> PingResult:
    """``GET /_ping``: is a Docker-API daemon answering at ``host``?"""
    conn = http_connection(host, timeout)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace").strip()
        if resp.status != 200:
            return PingResult(False, error=f"HTTP {resp.status} {body[:80]}")
        return PingResult(True, api_version=resp.getheader("Api-Version") or "",
                          server=resp.getheader("Server") or "")
    except (OSError, http.client.HTTPException) as exc:
        return PingResult(False, error=describe_os_error(exc))
    finally:
        conn.close()


def describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such socket"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, PermissionError):
        return "permission denied (are you root or in the pyjail group?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


def unreachable_message(host: str, reason: str, source: str = "") -> str:
    """The one line a user sees when no daemon answers."""
    where = f" ({source})" if source and source != "default" else ""
    return f"cannot reach a daemon at {host}{where}: {reason}; {START_HINT}, or set PYJAIL_HOST"
