"""IP address management: subnets for networks, addresses for endpoints.

The allocation tables live in the network state file (written atomically with every
change, see ``store.py``) so an address is never handed out twice, even across daemon
restarts. Addresses are handed out round-robin from the last one given, so a released
address is not reused at once (stale ARP entries and conntrack flows age out first).

Subnets for networks without an explicit one come from a pool and must not overlap the
host's routes, any other pyjail network on this data root, or a subnet another data
root on this host has claimed (``/run/pyjail/net/claims.json``, under a file lock).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from .. import errors
from ..fsutil import atomic_write_json

CLAIMS_DIR = "/run/pyjail/net"
DEFAULT_BRIDGE_SUBNET = "172.29.0.0/16"
# User networks get /24s from 172.30.0.0/15 (512 networks), then from 10.199.0.0/16.
POOLS = (("172.30.0.0/15", 24), ("10.199.0.0/16", 24))

Net = ipaddress.IPv4Network


def parse_subnet(text: str) -> Net:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise errors.InvalidArgument(f"invalid subnet {text}: invalid CIDR address") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise errors.InvalidArgument(f"invalid subnet {text}: only IPv4 is supported")
    if str(net) != text and net.with_prefixlen != text:
        # Docker refuses host bits in a subnet too.
        raise errors.InvalidArgument(f"invalid subnet {text}: it should be {net}")
    if net.prefixlen > 30:
        raise errors.InvalidArgument(f"invalid subnet {text}: too small for a network")
    return net


def parse_address(text: str, subnet: Net, what: str = "address") -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid {what}: {text}") from None
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        raise errors.InvalidArgument(f"no matching subnet for {what} {text} (subnet {subnet})")
    return addr


def host_routes() -> list[Net]:
    """Destinations of the host's IPv4 routes (main table), default route excluded."""
    out = []
    try:
        with open("/proc/net/route") as f:
            lines = f.readlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = int(fields[1], 16).to_bytes(4, "little")
        mask = int(fields[7], 16).to_bytes(4, "little")
        if mask == b"\0\0\0\0":
            continue
        prefix = bin(int.from_bytes(mask, "big")).count("1")
        out.append(ipaddress.IPv4Network((ipaddress.IPv4Address(dest), prefix), strict=False))
    return out


def overlaps(net: Net, others: Iterable[Net]) -> bool:
    return any(net.overlaps(o) for o in others)


def pool_candidates() -> Iterator[Net]:
    for pool, prefix in POOLS:
        yield from ipaddress.ip_network(pool).subnets(new_prefix=prefix)


# -- host-wide claims (several data roots on one host) ---------------------------------------
@contextmanager
def claims_locked() -> Iterator[dict]:
    """The host-wide claims table, locked; entries of vanished data roots are dropped."""
    os.makedirs(CLAIMS_DIR, mode=0o700, exist_ok=True)
    fd = os.open(f"{CLAIMS_DIR}/lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = f"{CLAIMS_DIR}/claims.json"
        try:
            with open(path) as f:
                claims = json.load(f)
        except (OSError, ValueError):
            claims = {}
        for kind in ("subnets", "bridges", "roots"):
            claims.setdefault(kind, {})
        for kind in ("subnets", "bridges"):
            claims[kind] = {k: v for k, v in claims[kind].items() if os.path.isdir(v)}
        # Data roots deleted without a network shutdown: their tags, for the caller to reap
        # (their bridges and nft table outlive them otherwise).
        claims["orphans"] = sorted(t for t, v in claims["roots"].items() if not os.path.isdir(v))
        before = json.dumps(claims, sort_keys=True)
        yield claims
        del claims["orphans"]
        if json.dumps(claims, sort_keys=True) != before:
            atomic_write_json(path, claims)
    finally:
        os.close(fd)


def foreign_subnets(claims: dict, owner: str) -> list[Net]:
    return [ipaddress.ip_network(k) for k, v in claims["subnets"].items() if v != owner]


def choose_subnet(claims: dict, owner: str, ours: list[Net], prefer: str | None = None) -> Net:
    """A free subnet: ``prefer`` if free, else the first free one of the pool."""
    taken = host_routes() + foreign_subnets(claims, owner) + ours
    candidates: Iterable[Net] = pool_candidates()
    if prefer:
        candidates = [ipaddress.ip_network(prefer), *pool_candidates()]
    for net in candidates:
        if not overlaps(net, taken):
            return net
    raise errors.RuntimeFailure("could not find an available, non-overlapping IPv4 address "
                                "pool among the defaults to assign to the network")


# -- addresses -------------------------------------------------------------------------------
def allocate(table: dict, subnet: Net, gateway: str, owner: str,
             wanted: str | None = None) -> str:
    """Take an address in ``subnet`` for ``owner``; ``table`` is {"last", "allocated"}."""
    allocated: dict[str, str] = table.setdefault("allocated", {})
    if wanted:
        addr = parse_address(wanted, subnet)
        if str(addr) == gateway or str(addr) in allocated:
            raise errors.Conflict(f"Address already in use: {addr}")
        allocated[str(addr)] = owner
        return str(addr)
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    size = last - first + 1
    start = table.get("last", first - 1) + 1
    gw = int(ipaddress.IPv4Address(gateway))
    for i in range(size):
        n = first + (start - first + i) % size
        text = str(ipaddress.IPv4Address(n))
        if n == gw or text in allocated:
            continue
        allocated[text] = owner
        table["last"] = n
        return text
    raise errors.RuntimeFailure(f"no available IPv4 addresses on the network ({subnet})")


def release(table: dict, address: str, owner: str) -> None:
    allocated = table.get("allocated", {})
    if allocated.get(address) == owner:
        del allocated[address]


def mac_for(address: str) -> str:
    """Docker's scheme: 02:42 and the four address bytes (unique while the address is)."""
    raw = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)
