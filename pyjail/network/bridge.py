"""Linux bridges and veth pairs (pyroute2 netlink; run on the netlink worker thread).

Each bridge carries an interface alias ``pyjail <owner> <network id>``, so pyjail only
ever deletes devices it made, and finds them again after a crash. ``ip_forward`` is
switched on with the first pyjail bridge on the host and restored to its previous value
when the last one goes.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import socket
from typing import Any

from .ipam import CLAIMS_DIR

log = logging.getLogger("pyjail.network")

ALIAS_PREFIX = "pyjail "
_FORWARD_SAVED = f"{CLAIMS_DIR}/ip_forward.orig"


def link_index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_alias(ipr: Any, index: int) -> str:
    msg = ipr.link("get", index=index)[0]
    return msg.get_attr("IFLA_IFALIAS") or ""


def ensure_bridge(ipr: Any, name: str, alias: str, gateway: str, prefixlen: int) -> int:
    """Create (or adopt, if it carries our alias) the bridge with its gateway address."""
    index = link_index(ipr, name)
    if index is not None and link_alias(ipr, index) != alias:
        raise RuntimeError(f"interface {name} exists and does not belong to this network")
    if index is None:
        mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
        ipr.link("add", ifname=name, kind="bridge", address=mac)
        index = link_index(ipr, name)
        ipr.link("set", index=index, ifalias=alias)
    _sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index)}
    if (gateway, prefixlen) not in have:
        broadcast = str(ipaddress.IPv4Network(f"{gateway}/{prefixlen}", strict=False)
                        .broadcast_address)
        ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen, broadcast=broadcast)
    ipr.link("set", index=index, state="up")
    enable_forwarding()
    return index


def delete_bridge(ipr: Any, name: str, alias: str) -> None:
    index = link_index(ipr, name)
    if index is not None and link_alias(ipr, index) == alias:
        ipr.link("del", index=index)
    if not any_pyjail_bridge(ipr):
        restore_forwarding()


def any_pyjail_bridge(ipr: Any) -> bool:
    for link in ipr.get_links():
        if (link.get_attr("IFLA_IFALIAS") or "").startswith(ALIAS_PREFIX):
            return True
    return False


def add_veth(ipr: Any, host_name: str, bridge_index: int, ns_fd: int, peer_name: str,
             peer_mac: str) -> None:
    """One message: host end enslaved and up, peer created directly in the netns."""
    ipr.link("add", ifname=host_name, kind="veth", master=bridge_index, state="up",
             peer={"ifname": peer_name, "net_ns_fd": ns_fd, "address": peer_mac})


def delete_link(ipr: Any, name: str) -> None:
    index = link_index(ipr, name)
    if index is not None:
        try:
            ipr.link("del", index=index)
        except Exception as exc:  # noqa: BLE001 - gone already (its netns died) is fine
            log.debug("deleting %s: %s", name, exc)


def configure_inside(ns: Any, ifname: str, address: str, prefixlen: int,
                     gateway: str | None, loopback: bool) -> None:
    """Inside the container's netns: lo up, the interface up with its address, the route."""
    # if_nametoindex asks (by ioctl) the namespace of the calling thread: the one ``ns``
    # belongs to, and far cheaper than a netlink dump.
    if loopback:
        ns.link("set", index=socket.if_nametoindex("lo"), state="up")
    index = socket.if_nametoindex(ifname)
    broadcast = str(ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
                    .broadcast_address)
    ns.addr("add", index=index, address=address, prefixlen=prefixlen, broadcast=broadcast)
    ns.link("set", index=index, state="up")
    if gateway:
        ns.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)


def veth_name(container_id: str, network_id: str) -> str:
    import hashlib
    return "veth" + hashlib.sha1(f"{container_id}/{network_id}".encode()).hexdigest()[:7]


# -- ip_forward ------------------------------------------------------------------------------
def enable_forwarding() -> None:
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path) as f:
        current = f.read().strip()
    if current == "1":
        return
    os.makedirs(CLAIMS_DIR, mode=0o700, exist_ok=True)
    if not os.path.exists(_FORWARD_SAVED):
        with open(_FORWARD_SAVED, "w") as f:
            f.write(current)
    _sysctl("net/ipv4/ip_forward", "1")


def restore_forwarding() -> None:
    try:
        with open(_FORWARD_SAVED) as f:
            saved = f.read().strip()
    except FileNotFoundError:
        return
    _sysctl("net/ipv4/ip_forward", saved or "0")
    os.unlink(_FORWARD_SAVED)


def _sysctl(key: str, value: str) -> None:
    with open(f"/proc/sys/{key}", "w") as f:
        f.write(value)
