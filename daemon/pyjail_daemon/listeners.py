"""Opening the sockets the daemon serves on: unix (mode 0660, group-owned) and TCP (TLS)."""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado.netutil import bind_sockets, bind_unix_socket

from .config import ConfigError, DaemonConfig

log = logging.getLogger("pyjaild")

SOCKET_MODE = 0o660
DEFAULT_GROUP = "pyjail"


@dataclass
class Listener:
    url: str
    sockets: list[socket.socket]
    tls: bool
    path: str | None = None  # unix socket file to remove at shutdown

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def socket_gid(group: str | None) -> int:
    """The socket's group: the one asked for, else ``pyjail`` if it exists, else root."""
    if group is None:
        try:
            return grp.getgrnam(DEFAULT_GROUP).gr_gid
        except KeyError:
            return 0
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"group {group!r} not found") from None


def _unix(url: str, path: str, gid: int) -> Listener:
    if not path:
        raise ConfigError(f"no socket path in {url!r}")
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ECONNREFUSED):
            raise ConfigError(f"cannot use {path}: {exc.strerror}") from None
    else:
        raise ConfigError(f"another daemon is already listening on {path}")
    finally:
        probe.close()
    sock = bind_unix_socket(path, mode=SOCKET_MODE)
    os.chown(path, 0, gid)
    return Listener(url, [sock], tls=False, path=path)


def _tcp(url: str, config: DaemonConfig) -> Listener:
    parts = urlsplit(url)
    default_port = 2376 if config.use_tls else 2375
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(f"invalid port in {url!r}") from None
    address = parts.hostname or "0.0.0.0"
    sockets = bind_sockets(port, address)
    if not config.use_tls:
        log.warning("!!! serving the API on %s WITHOUT TLS: anyone who can reach this port "
                    "can run containers as root on this host !!!", url)
    return Listener(url, sockets, tls=config.use_tls)


def tls_context(config: DaemonConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tlscert or "", config.tlskey)
        if config.tlscacert:
            ctx.load_verify_locations(config.tlscacert)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS files: {exc}") from None
    if config.tlsverify:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def open_listeners(config: DaemonConfig) -> list[Listener]:
    """Bind every ``-H`` address; on failure close what was opened and raise ConfigError."""
    gid = socket_gid(config.group)
    opened: list[Listener] = []
    try:
        for url in config.hosts:
            if url.startswith("unix://"):
                opened.append(_unix(url, url[len("unix://"):], gid))
            else:
                opened.append(_tcp(url, config))
    except BaseException:
        for listener in opened:
            listener.close()
        raise
    return opened
