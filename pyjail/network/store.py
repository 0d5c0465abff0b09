"""The network state file: networks, IPAM tables and live endpoints, one atomic document.

One file, so a crash can never leave an address allocated without its endpoint record
(or the reverse): every change is written whole with ``atomic_write_json`` before the
kernel objects it describes are made, and a restarted engine reconciles the kernel
against it.

Shape::

    {"networks":  {id: Docker's network record (private keys start with "_")},
     "ipam":      {network id: {"last": int, "allocated": {address: container id}}},
     "endpoints": {container id: {"netns": path, "networks": {network id: endpoint},
                                  "ports": [binding], "dns": bool}}}
"""

from __future__ import annotations

import copy
import secrets
from pathlib import Path

from .. import errors
from ..fsutil import atomic_write_json, read_json
from ..supervisor.logfile import rfc3339_nano

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE_OPTIONS = {
    "com.docker.network.bridge.default_bridge": "true",
    "com.docker.network.bridge.enable_icc": "true",
    "com.docker.network.bridge.enable_ip_masquerade": "true",
    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
    "com.docker.network.driver.mtu": "1500",
}


class NetworkNotFound(errors.NotFound):
    pass


class Forbidden(errors.PyjailError):
    """Docker answers 403 for operations on predefined networks and duplicate endpoints."""

    status = 403


def new_record(name: str, driver: str, subnet: str | None, gateway: str | None, *,
               internal: bool = False, labels: dict | None = None,
               options: dict | None = None, attachable: bool = False,
               bridge: str = "") -> dict:
    config = [{"Subnet": subnet, "Gateway": gateway}] if subnet else []
    return {
        "Name": name, "Id": secrets.token_hex(32), "Created": rfc3339_nano(), "Scope": "local",
        "Driver": driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if name in PREDEFINED else {},
                 "Config": config},
        "Internal": internal, "Attachable": attachable, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
        "Options": dict(options or {}), "Labels": dict(labels or {}), "_bridge": bridge,
    }


def public(record: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


class NetworkState:
    """The state document and its file; callers hold the network manager's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = read_json(path)
        except FileNotFoundError:
            data = {}
        self.networks: dict[str, dict] = data.get("networks", {})
        self.ipam: dict[str, dict] = data.get("ipam", {})
        self.endpoints: dict[str, dict] = data.get("endpoints", {})

    def save(self) -> None:
        atomic_write_json(self.path, {"networks": self.networks, "ipam": self.ipam,
                                      "endpoints": self.endpoints})

    # -- lookups --------------------------------------------------------------------------
    def find(self, ref: str) -> dict:
        """Docker's order: full id, exact name, then a unique id prefix."""
        if ref in self.networks:
            return self.networks[ref]
        for rec in self.networks.values():
            if rec["Name"] == ref:
                return rec
        if ref:
            found = [r for i, r in self.networks.items() if i.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise errors.InvalidArgument(f"network {ref} is ambiguous ({len(found)} "
                                             "matches found on name)")
        raise NetworkNotFound(f"network {ref} not found")

    def by_name(self, name: str) -> dict | None:
        for rec in self.networks.values():
            if rec["Name"] == name:
                return rec
        return None

    def users(self, network_id: str) -> list[str]:
        """Container ids with a live endpoint on the network."""
        return [cid for cid, ep in self.endpoints.items() if network_id in ep["networks"]]
