"""Daemon options, from the command line and a ``daemon.json``-style file.

The names are dockerd's (``--data-root``, ``-H``, ``--tlsverify`` ...; ``data-root``,
``hosts`` ... in the file). An option given on the command line wins over the file.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_DATA_ROOT = "/var/lib/pyjail"
DEFAULT_HOST = "unix:///run/pyjail/pyjail.sock"
DEFAULT_PIDFILE = "/run/pyjail/pyjaild.pid"
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
              "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL}

log = logging.getLogger("pyjaild")


class ConfigError(Exception):
    """The options cannot work together (or the config file is unusable)."""


@dataclass
class DaemonConfig:
    data_root: str = DEFAULT_DATA_ROOT
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    insecure_tcp: bool = False
    pidfile: str | None = DEFAULT_PIDFILE
    log_level: str = "info"
    group: str | None = None
    default_runtime: str = "builtin"
    debug: bool = False
    insecure_registries: list[str] = field(default_factory=list)

    @property
    def use_tls(self) -> bool:
        return self.tls or self.tlsverify


# daemon.json key -> attribute (dockerd spells them with dashes)
_FILE_KEYS = {f.name.replace("_", "-"): f.name for f in fields(DaemonConfig)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyjaild", description="pyjail daemon: the Docker Engine API over a unix socket")
    add = p.add_argument
    add("--data-root", help=f"where images, containers and volumes live ({DEFAULT_DATA_ROOT})")
    add("-H", "--host", dest="hosts", action="append",
        help=f"socket to listen on, repeatable: unix:///path or tcp://addr:port ({DEFAULT_HOST})")
    add("--tls", action="store_const", const=True, help="serve TCP with TLS")
    add("--tlsverify", action="store_const", const=True,
        help="serve TCP with TLS and require client certificates signed by --tlscacert")
    add("--tlscacert", help="CA certificate that client certificates must be signed by")
    add("--tlscert", help="server certificate (PEM)")
    add("--tlskey", help="server key (PEM)")
    add("--insecure-tcp", action="store_const", const=True,
        help="allow TCP without TLS: anyone who reaches the port is root on this host")
    add("--config", dest="config_file", help="JSON options file (like dockerd's daemon.json)")
    add("-p", "--pidfile", help=f"PID file ({DEFAULT_PIDFILE}; empty: none)")
    add("-l", "--log-level", choices=sorted(LOG_LEVELS), help="logging level (info)")
    add("-D", "--debug", action="store_const", const=True, help="debug logging")
    add("-G", "--group", help="group owning the unix socket (default: pyjail if it exists)")
    add("--default-runtime", help="OCI runtime for new containers: builtin, runc, crun")
    add("--insecure-registry", dest="insecure_registries", action="append",
        help="registry (host:port or CIDR) that may be plain HTTP, repeatable; loopback always may")
    return p


def load(argv: list[str] | None = None) -> DaemonConfig:
    """Parse the command line, merge the config file under it, check the combination."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config_file:
        values.update(_read_file(args.config_file))
    for f in fields(DaemonConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    config = DaemonConfig(**values)
    if config.pidfile == "":
        config.pidfile = None
    if config.debug:
        config.log_level = "debug"
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"invalid log level: {config.log_level}")
    _check(config)
    return config


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a JSON object")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _FILE_KEYS.get(key)
        if name is None:
            log.warning("config file %s: ignoring unknown option %r", path, key)
            continue
        values[name] = value
    if isinstance(values.get("hosts"), str):
        values["hosts"] = [values["hosts"]]
    return values


def _check(config: DaemonConfig) -> None:
    if not config.hosts:
        config.hosts = [DEFAULT_HOST]
    for host in config.hosts:
        if not host.startswith(("unix://", "tcp://")):
            raise ConfigError(f"unsupported host {host!r}: use unix:///path or tcp://addr:port")
        if host.startswith("tcp://") and not config.use_tls and not config.insecure_tcp:
            raise ConfigError(
                f"refusing to serve {host} without TLS: anyone reaching it would be root on "
                "this host. Use --tlsverify --tlscacert --tlscert --tlskey, or --insecure-tcp "
                "if you really mean it")
    if config.use_tls and not (config.tlscert and config.tlskey):
        raise ConfigError("--tls/--tlsverify need --tlscert and --tlskey")
    if config.tlsverify and not config.tlscacert:
        raise ConfigError("--tlsverify needs --tlscacert")
