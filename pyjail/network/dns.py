"""The embedded DNS server: container names on user-defined networks, like Docker's.

Design (the same address as Docker's, 127.0.0.11): for every container on a
user-defined network the engine binds a UDP socket to 127.0.0.11:53 *inside the
container's network namespace* (the netlink worker makes it while it is in there), and
one engine thread serves all of those sockets with a selector. Why not a responder on
each network's gateway address: a per-container socket tells who asks without trusting
source addresses, works on ``--internal`` networks and behind a host firewall that
drops INPUT, never competes for port 53 on the host, and keeps ``nameserver
127.0.0.11`` which software written for Docker expects.

Names of other containers on a shared network are answered here; anything else is
forwarded, from the host's namespace, to the host's resolvers (or the container's
``--dns`` servers). While the engine (the daemon) is down nobody reads those sockets:
lookups time out until it is back, when the sockets are re-made for running containers.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

log = logging.getLogger("pyjail.network.dns")

DNS_ADDRESS = "127.0.0.11"
TTL = 600
FORWARD_TIMEOUT = 4.0
MAX_PENDING = 512

QTYPE_A, QTYPE_PTR, QTYPE_AAAA, QTYPE_ANY = 1, 12, 28, 255
RCODE_OK, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 2, 3, 4


# -- wire format -----------------------------------------------------------------------------
class Question:
    def __init__(self, msg_id: int, flags: int, name: str, qtype: int, qclass: int,
                 raw: bytes) -> None:
        self.id, self.flags, self.name, self.qtype, self.qclass = msg_id, flags, name, qtype, \
            qclass
        self.raw = raw  # the question section as received, echoed in the answer


def parse_query(data: bytes) -> Question | None:
    """The first question of a standard query, or None if the packet is not one."""
    if len(data) < 12:
        return None
    msg_id, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qdcount < 1:
        return None
    labels = []
    pos = 12
    while True:
        if pos >= len(data):
            return None
        length = data[pos]
        if length & 0xC0:
            return None  # no compression inside a question we parse
        pos += 1
        if length == 0:
            break
        labels.append(data[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return Question(msg_id, flags, ".".join(labels), qtype, qclass, data[12:pos + 4])


def build_reply(q: Question, rcode: int = RCODE_OK, a_records: list[str] = (),
                ptr_names: list[str] = ()) -> bytes:
    # QR, opcode and RD copied, RA set: a recursive resolver as far as clients care.
    flags = 0x8000 | (q.flags & 0x7900) | 0x0080 | rcode
    answers = b""
    count = 0
    for addr in a_records:
        answers += struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, TTL, 4) + socket.inet_aton(addr)
        count += 1
    for name in ptr_names:
        rdata = encode_name(name)
        answers += struct.pack("!HHHIH", 0xC00C, QTYPE_PTR, 1, TTL, len(rdata)) + rdata
        count += 1
    return struct.pack("!HHHHHH", q.id, flags, 1, count, 0, 0) + q.raw + answers


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        raw = label.encode("ascii", "replace")[:63]
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def reverse_name(name: str) -> str | None:
    """'4.0.29.172.in-addr.arpa' -> '172.29.0.4'."""
    suffix = ".in-addr.arpa"
    if not name.lower().endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    try:
                        ipaddress.IPv4Address(fields[1])
                    except ValueError:
                        continue
                    out.append(fields[1])
    except OSError:
        pass
    return out


# -- server ----------------------------------------------------------------------------------
Resolver = Callable[[str, str], "tuple[list[str], bool] | None"]
"""resolve(container_id, name) -> (addresses, forward_allowed); None: container unknown."""
ReverseResolver = Callable[[str, str], "list[str]"]
UpstreamsFor = Callable[[str], "list[str]"]


class DnsServer:
    """One thread serving every container's 127.0.0.11 socket and forwarding the rest."""

    def __init__(self, resolve: Resolver, reverse: ReverseResolver,
                 upstreams_for: UpstreamsFor) -> None:
        self.resolve = resolve
        self.reverse = reverse
        self.upstreams_for = upstreams_for
        self.upstreams: list[str] | None = None  # None: read /etc/resolv.conf; [] disables
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._lock = threading.Lock()
        self._commands: list[tuple[str, str, socket.socket | None]] = []
        self._sockets: dict[str, socket.socket] = {}
        self._pending: dict[socket.socket, tuple[float, socket.socket, tuple]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="pyjail-dns")
        self._thread.start()

    # -- called from any thread -----------------------------------------------------------
    def add(self, container_id: str, sock: socket.socket) -> None:
        self._command("add", container_id, sock)

    def remove(self, container_id: str) -> None:
        self._command("remove", container_id, None)

    def close(self) -> None:
        self._closed = True
        self._wake()
        self._thread.join(5)

    def _command(self, kind: str, container_id: str, sock: socket.socket | None) -> None:
        with self._lock:
            self._commands.append((kind, container_id, sock))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    # -- the thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._closed:
                timeout = 1.0 if self._pending else None
                for key, _mask in self._sel.select(timeout):
                    kind, data = key.data
                    try:
                        if kind == "wake":
                            self._drain_commands()
                        elif kind == "client":
                            self._on_query(key.fileobj, data)
                        else:
                            self._on_upstream(key.fileobj)
                    except Exception:  # noqa: BLE001 - one bad packet must not stop DNS
                        log.exception("dns: handling a packet failed")
                self._expire()
        finally:
            for sock in list(self._sockets.values()) + list(self._pending):
                sock.close()
            self._sel.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _drain_commands(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            commands, self._commands = self._commands, []
        for kind, cid, sock in commands:
            old = self._sockets.pop(cid, None)
            if old is not None:
                self._sel.unregister(old)
                old.close()
            if kind == "add" and sock is not None:
                self._sockets[cid] = sock
                self._sel.register(sock, selectors.EVENT_READ, ("client", cid))

    def _on_query(self, sock: socket.socket, cid: str) -> None:
        try:
            data, addr = sock.recvfrom(4096)
        except (BlockingIOError, InterruptedError):
            return
        q = parse_query(data)
        if q is None:
            return
        name = q.name.rstrip(".")
        if (q.flags >> 11) & 0xF:  # not a standard query
            sock.sendto(build_reply(q, RCODE_NOTIMP), addr)
            return
        if q.qtype == QTYPE_PTR:
            ip = reverse_name(name)
            names = self.reverse(cid, ip) if ip else []
            if names:
                sock.sendto(build_reply(q, ptr_names=names), addr)
                return
        else:
            found = self.resolve(cid, name)
            if found is None:
                return
            addresses, forward_ok = found
            if addresses:
                records = addresses if q.qtype in (QTYPE_A, QTYPE_ANY) else []
                sock.sendto(build_reply(q, a_records=records), addr)
                return
            if not forward_ok:
                sock.sendto(build_reply(q, RCODE_SERVFAIL), addr)
                return
        self._forward(sock, cid, addr, data, q)

    def _forward(self, sock: socket.socket, cid: str, addr: tuple, data: bytes,
                 q: Question) -> None:
        upstreams = self.upstreams_for(cid) or (
            host_resolvers() if self.upstreams is None else self.upstreams)
        upstreams = [u for u in upstreams if u != DNS_ADDRESS]
        if not upstreams or len(self._pending) >= MAX_PENDING:
            sock.sendto(build_reply(q, RCODE_SERVFAIL), addr)
            return
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.setblocking(False)
        try:
            up.connect((upstreams[0], 53))
            up.send(data)
        except OSError:
            up.close()
            sock.sendto(build_reply(q, RCODE_SERVFAIL), addr)
            return
        self._pending[up] = (time.monotonic() + FORWARD_TIMEOUT, sock, addr)
        self._sel.register(up, selectors.EVENT_READ, ("upstream", None))

    def _on_upstream(self, up: socket.socket) -> None:
        entry = self._pending.pop(up, None)
        self._sel.unregister(up)
        try:
            data = up.recv(65535)
        except OSError:
            data = b""
        finally:
            up.close()
        if entry is None or not data:
            return
        _deadline, sock, addr = entry
        if sock.fileno() != -1:
            try:
                sock.sendto(data, addr)
            except OSError:
                pass

    def _expire(self) -> None:
        now = time.monotonic()
        for up, (deadline, _sock, _addr) in list(self._pending.items()):
            if deadline < now:
                del self._pending[up]
                self._sel.unregister(up)
                up.close()
