"""Published ports: parse ``PortBindings`` / ``ExposedPorts``, reserve host ports.

Traffic is forwarded by DNAT rules (``nat.py``), not by a userland proxy, so nothing
listens on a published port. To report conflicts like Docker and to stop a host process
from taking a published port later, the engine holds a *bound* (never listening) socket
per binding — a host process already on the port makes that bind fail, which is the
conflict check. A random host port (``HostPort`` empty or 0) is a bind to port 0: the
kernel picks a free one.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from .. import errors

PROTOCOLS = ("tcp", "udp")


@dataclass
class Binding:
    """One requested (then reserved) publication of a container port."""

    proto: str
    container_port: int
    host_ip: str              # "0.0.0.0" for every address
    host_port: int            # 0 until reserved when random
    host_port_end: int = 0    # a range "8000-8010": the last port to try

    def as_dict(self) -> dict:
        return {"proto": self.proto, "container_port": self.container_port,
                "host_ip": self.host_ip, "host_port": self.host_port}


def parse_port_key(key: str) -> tuple[int, str]:
    """'80', '80/tcp', '53/udp' -> (port, proto)."""
    port_text, _, proto = str(key).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        if proto == "sctp":
            raise errors.InvalidArgument("sctp ports are not supported by pyjail")
        raise errors.InvalidArgument(f"invalid proto: {proto}")
    return _port(port_text, "container port"), proto


def _port(text: str, what: str) -> int:
    try:
        number = int(text)
    except (TypeError, ValueError):
        raise errors.InvalidArgument(f"invalid {what}: {text!r}") from None
    if not 0 < number < 65536:
        raise errors.InvalidArgument(f"invalid {what}: {text!r}")
    return number


def _host_ip(text: str | None) -> str | None:
    """'' -> 0.0.0.0; an IPv6 address -> None (pyjail publishes IPv4 only)."""
    if not text:
        return "0.0.0.0"
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
        return socket.inet_ntop(socket.AF_INET, packed)
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, text)
        return None
    except OSError:
        raise errors.InvalidArgument(f"invalid IP address: {text}") from None


def parse_bindings(port_bindings: dict | None, publish_all: bool,
                   exposed: list[str]) -> list[Binding]:
    """The bindings a container asks for, validated (raises InvalidArgument)."""
    out: list[Binding] = []
    if port_bindings is not None and not isinstance(port_bindings, dict):
        raise errors.InvalidArgument("invalid type for HostConfig.PortBindings")
    seen = set()
    for key, entries in (port_bindings or {}).items():
        port, proto = parse_port_key(key)
        seen.add((port, proto))
        if entries is None:
            entries = [{}]
        if not isinstance(entries, list):
            raise errors.InvalidArgument(f"invalid port binding for {key}")
        for entry in entries or [{}]:
            entry = entry or {}
            if not isinstance(entry, dict) or not isinstance(entry.get("HostIp") or "", str) \
                    or not isinstance(entry.get("HostPort") or "", (str, int)):
                raise errors.InvalidArgument(f"invalid port binding for {key}")
            host_ip = _host_ip(entry.get("HostIp"))
            if host_ip is None:
                continue
            text = str(entry.get("HostPort") or "")
            start, end = 0, 0
            if text:
                first, sep, last = text.partition("-")
                start = 0 if first == "0" else _port(first, "host port")
                end = _port(last, "host port") if sep else 0
                if end and end < start:
                    raise errors.InvalidArgument(f"invalid host port range: {text}")
            out.append(Binding(proto, port, host_ip, start, end))
    if publish_all:
        for key in exposed:
            port, proto = parse_port_key(key)
            if (port, proto) not in seen:
                seen.add((port, proto))
                out.append(Binding(proto, port, "0.0.0.0", 0))
    return out


def exposed_ports(config: dict, image_config: dict) -> list[str]:
    keys: dict = {}
    for source in (image_config.get("ExposedPorts"), config.get("ExposedPorts")):
        if source is None:
            continue
        if not isinstance(source, dict) or not all(isinstance(k, str) for k in source):
            raise errors.InvalidArgument("invalid type for ExposedPorts: expected an object")
        keys.update(source)
    out = []
    for key in keys:
        port, proto = parse_port_key(key)
        out.append(f"{port}/{proto}")
    return out


class Reservations:
    """Bound sockets holding the host ports of running containers (per container id)."""

    def __init__(self) -> None:
        self._held: dict[str, list[socket.socket]] = {}

    def reserve(self, owner: str, bindings: list[Binding], taken: list[dict]) -> list[Binding]:
        """Bind every binding (all or nothing); fills in random/ranged host ports.

        ``taken`` lists bindings the engine already manages (dicts of ``as_dict``), so a
        conflict is found even when its reservation socket could not be re-made.
        """
        socks: list[socket.socket] = []
        done: list[Binding] = []
        try:
            for b in bindings:
                sock = self._bind_one(b, taken + [d.as_dict() for d in done])
                socks.append(sock)
                done.append(b)
        except BaseException:
            for s in socks:
                s.close()
            raise
        self._held.setdefault(owner, []).extend(socks)
        return done

    def _bind_one(self, b: Binding, taken: list[dict]) -> socket.socket:
        kind = socket.SOCK_STREAM if b.proto == "tcp" else socket.SOCK_DGRAM
        if b.host_port == 0:
            sock = socket.socket(socket.AF_INET, kind)
            sock.bind((b.host_ip, 0))
            b.host_port = sock.getsockname()[1]
            return sock
        last = b.host_port_end or b.host_port
        for port in range(b.host_port, last + 1):
            if _clashes(b.proto, b.host_ip, port, taken):
                continue
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind((b.host_ip, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise errors.InvalidArgument(
                        f"Bind for {b.host_ip}:{port} failed: the address is not local "
                        "to this host") from None
                raise
            b.host_port, b.host_port_end = port, 0
            return sock
        where = f"{b.host_ip}:{b.host_port}" + (f"-{last}" if last != b.host_port else "")
        raise errors.Conflict(f"Bind for {where} failed: port is already allocated")

    def adopt(self, owner: str, bindings: list[dict]) -> list[str]:
        """Re-bind the ports of a container that kept running (engine restart).

        Returns a warning per port some other process took while no engine held it.
        """
        warnings = []
        for d in bindings:
            kind = socket.SOCK_STREAM if d["proto"] == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(socket.AF_INET, kind)
            try:
                sock.bind((d["host_ip"], d["host_port"]))
            except OSError as exc:
                sock.close()
                warnings.append(f"{d['host_ip']}:{d['host_port']}/{d['proto']}: {exc.strerror}")
                continue
            self._held.setdefault(owner, []).append(sock)
        return warnings

    def release(self, owner: str) -> None:
        for sock in self._held.pop(owner, []):
            sock.close()

    def close(self) -> None:
        for owner in list(self._held):
            self.release(owner)


def _clashes(proto: str, host_ip: str, port: int, taken: list[dict]) -> bool:
    for d in taken:
        if d["proto"] == proto and d["host_port"] == port and (
                d["host_ip"] == host_ip or "0.0.0.0" in (d["host_ip"], host_ip)):
            return True
    return False


def docker_ports(bindings: list[dict], exposed: list[str]) -> dict:
    """``NetworkSettings.Ports``: every exposed or published port, None when unpublished."""
    out: dict[str, list[dict] | None] = {key: None for key in exposed}
    for d in bindings:
        key = f"{d['container_port']}/{d['proto']}"
        if out.get(key) is None:
            out[key] = []
        out[key].append({"HostIp": d["host_ip"], "HostPort": str(d["host_port"])})
    return out


def list_ports(bindings: list[dict], exposed: list[str]) -> list[dict]:
    """The ``Ports`` field of ``GET /containers/json``."""
    out = []
    published = set()
    for d in bindings:
        published.add(f"{d['container_port']}/{d['proto']}")
        out.append({"IP": d["host_ip"], "PrivatePort": d["container_port"],
                    "PublicPort": d["host_port"], "Type": d["proto"]})
    for key in exposed:
        if key not in published:
            port, _, proto = key.partition("/")
            out.append({"PrivatePort": int(port), "Type": proto})
    return out
