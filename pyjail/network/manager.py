"""Container networking: networks (Docker's API), endpoints of containers, and their hooks.

The container manager calls four hooks (``container_created``, ``prepare_start``,
``container_stopped``, ``container_removed``); everything else is the engine-level
network API the daemon wraps (create, inspect, list, remove, prune, connect,
disconnect).

A container on a bridge network gets, before its process starts: an address from the
network's IPAM table, a named netns at ``/run/pyjail/netns/<id>`` holding ``eth0`` (the
peer of a veth whose host end is enslaved to the network's bridge), a default route via
the gateway, published ports as DNAT map elements and reservation sockets, its
hosts/resolv.conf files, and on user-defined networks a socket of the embedded DNS
server. The runtime joins the netns by path. All of it is undone when the container
stops, and re-made when it starts again.

Locking: one re-entrant lock serialises every change of the state document and the
kernel objects it describes (start-up work on the order of milliseconds).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import secrets
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from ..filters import labels_match
from . import bridge as br
from . import etcfiles, ipam, nat
from .dns import DNS_ADDRESS, DnsServer
from .netns import NETNS_DIR, NetlinkWorker, is_mounted_netns, netns_path, remove_netns
from .ports import Reservations, docker_ports, exposed_ports, list_ports, parse_bindings
from .store import (
    DEFAULT_BRIDGE_OPTIONS,
    PREDEFINED,
    Forbidden,
    NetworkNotFound,
    NetworkState,
    new_record,
    public,
)

log = logging.getLogger("pyjail.network")

DEFAULT_BRIDGE_NAME = "pyjail0"
LIST_FILTERS = {"name", "id", "label", "driver", "type", "dangling", "scope"}
PRUNE_FILTERS = {"until", "label", "label!"}
Publish = Callable[[str, str, str, dict], Any]


class NetworkManager:
    def __init__(self, data_root: Path, publish: Publish | None = None) -> None:
        self.root = Path(data_root) / "network"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.owner = str(self.root.resolve())
        digest = hashlib.sha1(os.path.realpath(data_root).encode()).hexdigest()[:8]
        self.tag = digest
        self.table = f"pyjail_{digest}"
        self.publish = publish or (lambda *a: None)
        self.containers: Any = None  # the ContainerManager, set by bind()
        self._lock = threading.RLock()
        self.state = NetworkState(self.root / "state.json")
        self.reservations = Reservations()
        self._worker: NetlinkWorker | None = None
        self._nft: nat.Nft | None = None
        self._dns: DnsServer | None = None
        self._active: set[str] = set()      # networks whose bridge and chains are up
        self._ported: set[str] = set()      # containers whose DNAT elements are in the table
        self._table_ready = False
        self._closed = False
        with self._lock:
            self._ensure_predefined()

    def bind(self, containers: Any) -> None:
        self.containers = containers

    def prewarm(self) -> None:
        """Import pyroute2 and start the netlink worker in the background (~0.3 s).

        A daemon calls this at start-up so its first bridge container does not pay it.
        """
        threading.Thread(target=lambda: self.worker, daemon=True,
                         name="pyjail-netlink-prewarm").start()

    # -- lazily made helpers ----------------------------------------------------------------
    @property
    def worker(self) -> NetlinkWorker:
        with self._lock:
            if self._worker is None:
                self._worker = NetlinkWorker()
            return self._worker

    @property
    def nft(self) -> nat.Nft:
        with self._lock:
            if self._nft is None:
                self._nft = nat.Nft()
            return self._nft

    @property
    def dns(self) -> DnsServer:
        with self._lock:
            if self._dns is None:
                self._dns = DnsServer(self._dns_resolve, self._dns_reverse,
                                      self._dns_upstreams)
            return self._dns

    # -- predefined networks ----------------------------------------------------------------
    def _ensure_predefined(self) -> None:
        with ipam.claims_locked() as claims:
            claims["roots"][self.tag] = self.owner
            orphans = claims["orphans"]
            for tag in orphans:
                del claims["roots"][tag]
        if orphans:
            self._reap(orphans)
        changed = False
        for name, driver in (("bridge", "bridge"), ("host", "host"), ("none", "null")):
            if self.state.by_name(name) is not None:
                continue
            if driver != "bridge":
                rec = new_record(name, driver, None, None)
            else:
                with ipam.claims_locked() as claims:
                    subnet = ipam.choose_subnet(claims, self.owner, self._our_subnets(),
                                                prefer=ipam.DEFAULT_BRIDGE_SUBNET)
                    bridge = self._free_bridge_name(claims)
                    claims["subnets"][str(subnet)] = self.owner
                    claims["bridges"][bridge] = self.owner
                gateway = str(subnet.network_address + 1)
                rec = new_record(name, "bridge", str(subnet), gateway, bridge=bridge,
                                 options={**DEFAULT_BRIDGE_OPTIONS,
                                          "com.docker.network.bridge.name": bridge})
            self.state.networks[rec["Id"]] = rec
            changed = True
        if changed:
            self.state.save()

    def _reap(self, tags: list[str]) -> None:
        """Remove the bridges and nft tables of data roots that vanished without a shutdown.

        Their bridges are found by the interface alias every pyjail bridge carries.
        """
        doomed = []
        for name in os.listdir("/sys/class/net"):
            try:
                alias = Path(f"/sys/class/net/{name}/ifalias").read_text().strip()
            except OSError:
                continue
            if any(alias.startswith(f"{br.ALIAS_PREFIX}{tag} ") for tag in tags):
                doomed.append((name, alias))
        try:
            for name, alias in doomed:
                self.worker.call(lambda w, n=name, a=alias: br.delete_bridge(w.ipr, n, a))
            self.nft.run("".join(nat.delete_table(f"pyjail_{t}") for t in tags), check=False)
        except Exception as exc:  # noqa: BLE001 - best effort, never blocks this engine
            log.warning("removing leftovers of deleted data roots: %s", exc)

    def _free_bridge_name(self, claims: dict) -> str:
        for i in range(100):
            name = f"{DEFAULT_BRIDGE_NAME[:-1]}{i}"
            owner = claims["bridges"].get(name)
            if owner == self.owner:
                return name
            if owner is None and not os.path.exists(f"/sys/class/net/{name}"):
                return name
        raise errors.RuntimeFailure("no free name for the default bridge")

    def _our_subnets(self) -> list[ipaddress.IPv4Network]:
        return [ipaddress.ip_network(c["Subnet"]) for r in self.state.networks.values()
                for c in r["IPAM"]["Config"] if c.get("Subnet")]

    def _alias(self, net: dict) -> str:
        return f"{br.ALIAS_PREFIX}{self.tag} {net['Id'][:12]}"

    @staticmethod
    def _is_bridge(net: dict) -> bool:
        return net["Driver"] == "bridge"

    @staticmethod
    def _subnet(net: dict) -> tuple[ipaddress.IPv4Network, str]:
        cfg = net["IPAM"]["Config"][0]
        return ipaddress.ip_network(cfg["Subnet"]), cfg["Gateway"]

    def _rules(self, net: dict) -> nat.NetRules:
        subnet, _gw = self._subnet(net)
        return nat.NetRules("n" + net["Id"][:12], net["_bridge"], str(subnet),
                            bool(net["Internal"]))

    # -- activation: bridge device + nft chains ---------------------------------------------
    def _activate(self, net: dict) -> None:
        """Make sure the network's bridge and rules exist (idempotent, cached).

        The bridge is checked on every call (a stat, ~20 µs) so one deleted behind our
        back is made again; the chains are ours alone and cached.
        """
        if os.path.exists(f"/sys/class/net/{net['_bridge']}") and net["Id"] in self._active:
            return
        subnet, gateway = self._subnet(net)
        alias = self._alias(net)
        self.worker.call(lambda w: br.ensure_bridge(w.ipr, net["_bridge"], alias, gateway,
                                                    subnet.prefixlen))
        if net["Id"] in self._active:
            return
        if not self._table_ready:
            self._active.add(net["Id"])
            self._render_table()
        else:
            self.nft.run(nat.add_network(self.table, self._rules(net)))
            self._active.add(net["Id"])

    def _render_table(self) -> None:
        nets = [self._rules(self.state.networks[i]) for i in sorted(self._active)
                if i in self.state.networks]
        self.nft.run(nat.render_table(self.table, nets, self._all_port_rules()))
        self._ported = {cid for cid, ep in self.state.endpoints.items() if _port_rules(ep)}
        self._table_ready = True

    def _all_port_rules(self) -> list[nat.PortRule]:
        return [rule for ep in self.state.endpoints.values() for rule in _port_rules(ep)]

    def _deactivate(self, net: dict) -> None:
        if net["Id"] in self._active and self._table_ready:
            try:
                self.nft.run(nat.remove_network(self.table, self._rules(net)))
            except nat.NftError as exc:
                log.warning("removing rules of network %s: %s", net["Name"], exc)
        self._active.discard(net["Id"])
        alias = self._alias(net)
        self.worker.call(lambda w: br.delete_bridge(w.ipr, net["_bridge"], alias))
        if not self._active and self._table_ready:
            self.nft.run(nat.delete_table(self.table))
            self._table_ready = False

    # -- the network API --------------------------------------------------------------------
    def create(self, body: dict) -> dict:
        """``POST /networks/create``: returns {"Id", "Warning"}."""
        if not isinstance(body, dict):
            raise errors.InvalidArgument("request body must be a JSON object")
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise errors.InvalidArgument("network name is required")
        if not _NAME_OK(name):
            raise errors.InvalidArgument(f"invalid network name {name!r}")
        driver = body.get("Driver") or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise errors.NotFound(f'plugin "{driver}" not found')
        if body.get("EnableIPv6"):
            raise errors.InvalidArgument("IPv6 networks are not supported by pyjail")
        labels = body.get("Labels") or {}
        options = body.get("Options") or {}
        for field, value in (("Labels", labels), ("Options", options)):
            if not isinstance(value, dict) or not all(isinstance(v, str)
                                                      for v in value.values()):
                raise errors.InvalidArgument(f"invalid type for {field}: expected an object "
                                             "of strings")
        ipam_body = body.get("IPAM") or {}
        if not isinstance(ipam_body, dict):
            raise errors.InvalidArgument("invalid type for IPAM: expected an object")
        if (ipam_body.get("Driver") or "default") != "default":
            raise errors.NotFound(f'plugin "{ipam_body["Driver"]}" not found')
        ipam_cfg = ipam_body.get("Config") or []
        if not isinstance(ipam_cfg, list) or len(ipam_cfg) > 1 or \
                not all(isinstance(cfg, dict) for cfg in ipam_cfg):
            raise errors.InvalidArgument("pyjail supports one IPAM config (IPv4) per network")
        for cfg in ipam_cfg:
            if cfg.get("IPRange") not in (None, "", cfg.get("Subnet")) or \
                    cfg.get("AuxiliaryAddresses"):
                raise errors.InvalidArgument("IPRange and AuxiliaryAddresses are not supported")
        with self._lock:
            if self.state.by_name(name) is not None:
                raise errors.Conflict(f"network with name {name} already exists")
            bridge = options.get("com.docker.network.bridge.name", "")
            if bridge and (len(bridge) > 15 or os.path.exists(f"/sys/class/net/{bridge}")):
                raise errors.Conflict(f"bridge name {bridge} is in use or invalid")
            with ipam.claims_locked() as claims:
                if ipam_cfg and ipam_cfg[0].get("Subnet"):
                    subnet = ipam.parse_subnet(ipam_cfg[0]["Subnet"])
                    taken = self._our_subnets() + ipam.foreign_subnets(claims, self.owner)
                    if ipam.overlaps(subnet, taken):
                        raise Forbidden("Pool overlaps with other one on this address space")
                    if ipam.overlaps(subnet, ipam.host_routes()):
                        raise Forbidden(f"Pool {subnet} overlaps with a route on this host")
                else:
                    subnet = ipam.choose_subnet(claims, self.owner, self._our_subnets())
                gateway_text = (ipam_cfg[0].get("Gateway") if ipam_cfg else "") or ""
                gateway = (str(ipam.parse_address(gateway_text, subnet, "gateway"))
                           if gateway_text else str(subnet.network_address + 1))
                rec = new_record(name, "bridge", str(subnet), gateway,
                                 internal=bool(body.get("Internal")), labels=labels,
                                 options=options, attachable=bool(body.get("Attachable")))
                rec["_bridge"] = bridge or f"pj-{rec['Id'][:12]}"
                claims["subnets"][str(subnet)] = self.owner
            self.state.networks[rec["Id"]] = rec
            self.state.save()
            try:
                self._activate(rec)
            except BaseException:
                self._forget_network(rec)
                raise
        self.publish("network", "create", rec["Id"], {"name": name, "type": "bridge"})
        return {"Id": rec["Id"], "Warning": ""}

    def _forget_network(self, rec: dict) -> None:
        try:
            if self._is_bridge(rec):
                self._deactivate(rec)
        finally:
            self.state.networks.pop(rec["Id"], None)
            self.state.ipam.pop(rec["Id"], None)
            self.state.save()
            with ipam.claims_locked() as claims:
                for cfg in rec["IPAM"]["Config"]:
                    if claims["subnets"].get(cfg["Subnet"]) == self.owner:
                        del claims["subnets"][cfg["Subnet"]]

    def get(self, ref: str) -> dict:
        with self._lock:
            return self.state.find(ref)

    def inspect(self, ref: str) -> dict:
        with self._lock:
            rec = self.state.find(ref)
            out = public(rec)
            containers = {}
            for cid in self.state.users(rec["Id"]):
                ep = self.state.endpoints[cid]["networks"][rec["Id"]]
                containers[cid] = {"Name": self._container_name(cid, ep),
                                   "EndpointID": ep["endpoint_id"], "MacAddress": ep["mac"],
                                   "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}",
                                   "IPv6Address": ""}
            out["Containers"] = containers
            return out

    def list(self, filters: dict | None = None) -> list[dict]:
        filters = {k: _values(v) for k, v in (filters or {}).items()}
        for key in filters:
            if key not in LIST_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        for t in filters.get("type", []):
            if t not in ("custom", "builtin"):
                raise errors.InvalidArgument(f"invalid filter: 'type'='{t}'")
        with self._lock:
            out = []
            for rec in sorted(self.state.networks.values(), key=lambda r: r["Created"]):
                if not self._matches(rec, filters):
                    continue
                out.append(self.inspect(rec["Id"]))
            return out

    def _matches(self, rec: dict, f: dict[str, list[str]]) -> bool:
        if f.get("name") and not any(n in rec["Name"] for n in f["name"]):
            return False
        if f.get("id") and not any(rec["Id"].startswith(i) for i in f["id"]):
            return False
        if f.get("driver") and rec["Driver"] not in f["driver"]:
            return False
        if f.get("scope") and "local" not in f["scope"]:
            return False
        builtin = rec["Name"] in PREDEFINED
        if f.get("type") and ("builtin" if builtin else "custom") not in f["type"]:
            return False
        if not labels_match(rec.get("Labels") or {}, f):
            return False
        for value in f.get("dangling", []):
            want = value.lower() in ("1", "true")
            if value.lower() not in ("0", "1", "true", "false"):
                raise errors.InvalidArgument(f"invalid filter 'dangling={value}'")
            dangling = not builtin and not self.state.users(rec["Id"])
            if dangling != want:
                return False
        return True

    def remove(self, ref: str) -> None:
        with self._lock:
            rec = self.state.find(ref)
            if rec["Name"] in PREDEFINED:
                raise Forbidden(f"{rec['Name']} is a pre-defined network and cannot be removed")
            if self.state.users(rec["Id"]):
                raise errors.Conflict(f"error while removing network: network {rec['Name']} "
                                      f"id {rec['Id']} has active endpoints")
            self._forget_network(rec)
        self.publish("network", "destroy", rec["Id"], {"name": rec["Name"], "type": "bridge"})

    def prune(self, filters: dict | None = None) -> dict:
        filters = {k: _values(v) for k, v in (filters or {}).items()}
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        until = _until(filters.get("until", []))
        deleted = []
        with self._lock:
            for rec in list(self.state.networks.values()):
                if rec["Name"] in PREDEFINED or self.state.users(rec["Id"]):
                    continue
                if not labels_match(rec.get("Labels") or {}, filters):
                    continue
                if until is not None and _created_ns(rec) > until:
                    continue
                try:
                    self.remove(rec["Id"])
                except errors.PyjailError as exc:
                    log.warning("prune: %s", exc)
                    continue
                deleted.append(rec["Name"])
        return {"NetworksDeleted": deleted}

    # -- connect / disconnect ---------------------------------------------------------------
    def connect(self, net_ref: str, container_ref: str, config: dict | None = None) -> None:
        config = config or {}
        c = self.containers.get(container_ref)
        with c.lock, self._lock:
            net = self.state.find(net_ref)
            mode = c.host.get("NetworkMode") or "none"
            if mode == "host" or mode.startswith("container:") or net["Name"] in ("host",
                                                                                  "none"):
                raise errors.InvalidArgument(
                    "container sharing network namespace with another container or host "
                    "cannot be connected to any other network")
            if mode == "none":
                raise errors.InvalidArgument(
                    "container cannot be connected to multiple networks with one of the "
                    "networks in private (none) mode")
            endpoints = _endpoints_config(c.record)
            if net["Name"] in endpoints:
                raise Forbidden(f"endpoint with name {c.name.lstrip('/')} already exists in "
                                f"network {net['Name']}")
            cfg = self._endpoint_config(net, config)
            live = c.running and c.id in self.state.endpoints
            if live:
                self._attach_live(c, net, cfg)
            endpoints[net["Name"]] = cfg
            c.save_record()
        self.publish("network", "connect", net["Id"],
                     {"container": c.id, "name": net["Name"], "type": net["Driver"]})

    def disconnect(self, net_ref: str, container_ref: str, force: bool = False) -> None:
        c = self.containers.get(container_ref)
        with c.lock, self._lock:
            net = self.state.find(net_ref)
            endpoints = _endpoints_config(c.record)
            ep_state = self.state.endpoints.get(c.id)
            live = ep_state is not None and net["Id"] in ep_state["networks"]
            if net["Name"] not in endpoints and not live:
                if net["Name"] in ("host", "none") and c.host.get("NetworkMode") == net["Name"]:
                    raise errors.InvalidArgument(
                        "container cannot be disconnected from host network or connected to "
                        "host network")
                raise errors.InvalidArgument(
                    f"container {c.id} is not connected to network {net['Name']}")
            if live:
                self._detach_live(c, net)
            endpoints.pop(net["Name"], None)
            c.save_record()
        self.publish("network", "disconnect", net["Id"],
                     {"container": c.id, "name": net["Name"], "type": net["Driver"]})

    # -- container hooks --------------------------------------------------------------------
    def container_created(self, record: dict, body: dict) -> None:
        """Validate networking of a new container; store its endpoint configs in the record."""
        host = record["HostConfig"]
        config = record["Config"]
        mode = host.get("NetworkMode") or "none"
        exposed = exposed_ports(config, record.get("ImageConfig") or {})
        parse_bindings(host.get("PortBindings"), bool(host.get("PublishAllPorts")), exposed)
        for field in ("Dns", "DnsSearch", "DnsOptions", "ExtraHosts"):
            value = host.get(field)
            if value is not None and (not isinstance(value, list)
                                      or not all(isinstance(v, str) for v in value)):
                raise errors.InvalidArgument(f"invalid type for HostConfig.{field}: expected "
                                             "a list of strings")
        networking = body.get("NetworkingConfig") or {}
        requested = networking.get("EndpointsConfig") if isinstance(networking, dict) else None
        if not isinstance(networking, dict) or not isinstance(requested or {}, dict):
            raise errors.InvalidArgument("invalid type for NetworkingConfig.EndpointsConfig")
        # The docker CLI names the default network "default" in EndpointsConfig too.
        requested = {("bridge" if k == "default" else k): v for k, v in (requested or {}).items()}
        if mode in ("none", "host"):
            return
        if mode.startswith("container:"):
            self.containers.get(mode.split(":", 1)[1])
            return
        endpoints: dict[str, dict] = {}
        with self._lock:
            primary = self.state.find(mode)
            if primary["Driver"] != "bridge":
                raise errors.InvalidArgument(f"network {mode} cannot be used as a network mode")
            asked = requested.get(mode) or requested.get(primary["Name"]) or \
                requested.get(primary["Id"]) or {}
            endpoints[primary["Name"]] = self._endpoint_config(primary, asked)
            for ref, asked in requested.items():
                net = self.state.find(ref)
                if net["Id"] == primary["Id"]:
                    continue
                if net["Driver"] != "bridge":
                    raise errors.InvalidArgument(
                        "container cannot be connected to multiple networks with one of the "
                        "networks in private (none) mode")
                endpoints[net["Name"]] = self._endpoint_config(net, asked or {})
        record["NetworkingConfig"] = {"EndpointsConfig": endpoints}

    def _endpoint_config(self, net: dict, asked: dict) -> dict:
        if not isinstance(asked, dict):
            raise errors.InvalidArgument("invalid endpoint settings")
        aliases = asked.get("Aliases") or []
        ipam_cfg = asked.get("IPAMConfig") or {}
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise errors.InvalidArgument("invalid type for Aliases: expected a list of strings")
        user_net = net["Name"] not in PREDEFINED
        if aliases and not user_net:
            raise errors.InvalidArgument("network-scoped alias is supported only for "
                                         "containers in user defined networks")
        wanted = ipam_cfg.get("IPv4Address") if isinstance(ipam_cfg, dict) else None
        if wanted:
            if not user_net:
                raise errors.InvalidArgument("user specified IP address is supported on user "
                                             "defined networks only")
            ipam.parse_address(wanted, self._subnet(net)[0])
        return {"IPAMConfig": {"IPv4Address": wanted} if wanted else None, "Links": None,
                "Aliases": aliases or None, "NetworkID": net["Id"], "MacAddress": "",
                "DriverOpts": None}

    def prepare_start(self, c: Any, spec: dict) -> None:
        """Before the process starts: netns, endpoints, ports, files; joins them in ``spec``.

        Leaves nothing behind when it raises.
        """
        mode = c.host.get("NetworkMode") or "none"
        if mode in ("none", "host"):
            return
        if mode.startswith("container:"):
            self._share_namespace(c, spec, mode.split(":", 1)[1])
            return
        if self._closed:
            raise errors.RuntimeFailure("the engine's networking is closed")
        with self._lock:
            if c.id in self.state.endpoints:
                self._teardown(c.id)
            nets = self._networks_of(c)
            bindings = parse_bindings(c.host.get("PortBindings"),
                                      bool(c.host.get("PublishAllPorts")), self._exposed(c))
            taken = [p for cid, ep in self.state.endpoints.items() for p in ep["ports"]]
            self.reservations.reserve(c.id, bindings, taken)
            path = netns_path(c.id)
            try:
                ep = self._allocate(c, nets, path)
                primary_ip = next(iter(ep["networks"].values()))["ip"] if ep["networks"] else ""
                ep["ports"] = [{**b.as_dict(), "container_ip": primary_ip} for b in bindings]
                self.state.endpoints[c.id] = ep
                self.state.save()
                for net in nets:
                    self._activate(net)
                sock = self.worker.call(lambda w: self._setup_netns(w, path, ep, nets))
                if sock is not None:
                    self.dns.add(c.id, sock)  # from here on, teardown closes it
                if ep["ports"] and c.id not in self._ported:
                    self.nft.run(nat.add_ports(self.table, _port_rules(ep)))
                    self._ported.add(c.id)
                self._write_files(c, ep)
            except BaseException:
                if c.id in self.state.endpoints:
                    self._teardown(c.id)
                else:
                    self.reservations.release(c.id)
                raise
        _join(spec, path)

    def container_stopped(self, c: Any) -> None:
        """The container's process ended (or never started): free everything it held.

        A closed manager does nothing: a newer engine owns the state file by then.
        """
        if self._closed:
            return
        with self._lock:
            if c.id in self.state.endpoints:
                self._teardown(c.id)

    def container_removed(self, c: Any) -> None:
        self.container_stopped(c)

    # -- start / stop internals -------------------------------------------------------------
    def _networks_of(self, c: Any) -> list[dict]:
        endpoints = _endpoints_config(c.record)
        mode = c.host.get("NetworkMode")
        if not endpoints:
            endpoints[mode] = {}
        out = []
        for name, cfg in endpoints.items():
            try:
                net = self.state.find(cfg.get("NetworkID") or name)
            except NetworkNotFound:
                try:
                    net = self.state.find(name)
                except NetworkNotFound:
                    raise NetworkNotFound(f"network {name} not found") from None
            out.append(net)
        try:
            primary = self.state.find(mode) if mode else None
        except NetworkNotFound:
            primary = None
        out.sort(key=lambda n: (primary is None or n["Id"] != primary["Id"], n["Name"]))
        return out

    def _exposed(self, c: Any) -> list[str]:
        return exposed_ports(c.config, c.record.get("ImageConfig") or {})

    def _allocate(self, c: Any, nets: list[dict], path: str) -> dict:
        """IP addresses and endpoint records, in memory (the caller saves the state)."""
        endpoints = _endpoints_config(c.record)
        ep: dict = {"netns": path, "networks": {}, "ports": [],
                    "dns": any(n["Name"] not in PREDEFINED for n in nets),
                    "name": c.name.lstrip("/")}
        route_set = False
        try:
            for i, net in enumerate(nets):
                cfg = endpoints.get(net["Name"]) or {}
                subnet, gateway = self._subnet(net)
                wanted = (cfg.get("IPAMConfig") or {}).get("IPv4Address")
                table = self.state.ipam.setdefault(net["Id"], {})
                ip = ipam.allocate(table, subnet, gateway, c.id, wanted)
                default_route = not net["Internal"] and not route_set
                route_set = route_set or default_route
                ep["networks"][net["Id"]] = {
                    "ifname": f"eth{i}", "veth": br.veth_name(c.id, net["Id"]), "ip": ip,
                    "prefixlen": subnet.prefixlen, "gateway": gateway,
                    "default_route": default_route, "mac": ipam.mac_for(ip),
                    "endpoint_id": secrets.token_hex(32), "aliases": cfg.get("Aliases") or [],
                    "bridge": net["_bridge"]}
        except BaseException:
            for net_id, e in ep["networks"].items():
                ipam.release(self.state.ipam.get(net_id, {}), e["ip"], c.id)
            raise
        return ep

    @staticmethod
    def _setup_netns(w: NetlinkWorker, path: str, ep: dict, nets: list[dict]) -> Any:
        """On the netlink worker: make the netns, its veths and config; return a DNS socket."""
        w.create_netns(path)
        try:
            ns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                for e in ep["networks"].values():
                    br.add_veth(w.ipr, e["veth"], _ifindex(e["bridge"]), ns_fd, e["ifname"],
                                e["mac"])
            finally:
                os.close(ns_fd)
            ns = w.ns_ipr()
            try:
                for i, e in enumerate(ep["networks"].values()):
                    br.configure_inside(ns, e["ifname"], e["ip"], e["prefixlen"],
                                        e["gateway"] if e["default_route"] else None,
                                        loopback=i == 0)
                if not ep["networks"]:
                    ns.link("set", index=socket.if_nametoindex("lo"), state="up")
            finally:
                ns.close()
            return w.ns_udp_socket((DNS_ADDRESS, 53)) if ep["dns"] else None
        finally:
            w.leave()

    def _teardown(self, cid: str) -> None:
        """Undo an endpoint record: tolerant of anything already gone (lock held)."""
        ep = self.state.endpoints.get(cid)
        if ep is None:
            return
        if self._dns is not None:
            self._dns.remove(cid)
        self.reservations.release(cid)
        rules = _port_rules(ep)
        if rules and self._table_ready and cid in self._ported:
            try:
                self.nft.run(nat.remove_ports(self.table, rules))
            except nat.NftError as exc:
                log.warning("removing port rules of %s: %s", cid[:12], exc)
        self._ported.discard(cid)
        veths = [e["veth"] for e in ep["networks"].values()]
        if veths or is_mounted_netns(ep["netns"]) or os.path.exists(ep["netns"]):
            def undo(w: NetlinkWorker) -> None:
                for name in veths:
                    br.delete_link(w.ipr, name)
                remove_netns(ep["netns"])
            try:
                self.worker.call(undo)
            except Exception as exc:  # noqa: BLE001 - keep releasing the rest
                log.warning("removing the network namespace of %s: %s", cid[:12], exc)
        for net_id, e in ep["networks"].items():
            ipam.release(self.state.ipam.get(net_id, {}), e["ip"], cid)
        del self.state.endpoints[cid]
        self.state.save()

    def _share_namespace(self, c: Any, spec: dict, ref: str) -> None:
        """``container:<id>``: join the other container's netns, share its hosts/resolv."""
        other = self.containers.get(ref)
        path = netns_path(other.id)
        if other.running and is_mounted_netns(path):
            _join(spec, path)
        for name in ("hosts", "resolv.conf"):
            try:
                shutil.copyfile(other.dir / name, c.dir / name)
            except OSError:
                pass

    def _write_files(self, c: Any, ep: dict) -> None:
        nets = ep["networks"].values()
        first = next(iter(nets), None)
        hostname = c.config.get("Hostname") or c.id[:12]
        etcfiles.write_in_place(c.dir / "hosts", etcfiles.hosts_text(
            hostname, c.config.get("Domainname") or "", [e["ip"] for e in nets],
            c.host.get("ExtraHosts") or [], first["gateway"] if first else None))
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        etcfiles.write_in_place(c.dir / "resolv.conf", etcfiles.resolv_text(
            host_resolv, ep["dns"], c.host.get("Dns") or [], c.host.get("DnsSearch") or [],
            c.host.get("DnsOptions") or []))

    def _attach_live(self, c: Any, net: dict, cfg: dict) -> None:
        ep = self.state.endpoints[c.id]
        subnet, gateway = self._subnet(net)
        wanted = (cfg.get("IPAMConfig") or {}).get("IPv4Address")
        ip = ipam.allocate(self.state.ipam.setdefault(net["Id"], {}), subnet, gateway, c.id,
                           wanted)
        used = {e["ifname"] for e in ep["networks"].values()}
        ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in used)
        has_route = any(e["default_route"] for e in ep["networks"].values())
        e = {"ifname": ifname, "veth": br.veth_name(c.id, net["Id"]), "ip": ip,
             "prefixlen": subnet.prefixlen, "gateway": gateway,
             "default_route": not has_route and not net["Internal"], "mac": ipam.mac_for(ip),
             "endpoint_id": secrets.token_hex(32), "aliases": cfg.get("Aliases") or [],
             "bridge": net["_bridge"]}
        ep["networks"][net["Id"]] = e
        want_dns = net["Name"] not in PREDEFINED and not ep["dns"]
        ep["dns"] = ep["dns"] or want_dns
        self.state.save()
        try:
            self._activate(net)

            def attach(w: NetlinkWorker) -> Any:
                fd = os.open(ep["netns"], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    br.add_veth(w.ipr, e["veth"], _ifindex(e["bridge"]), fd, ifname, e["mac"])
                finally:
                    os.close(fd)
                w.enter(ep["netns"])
                try:
                    ns = w.ns_ipr()
                    try:
                        br.configure_inside(ns, ifname, ip, subnet.prefixlen,
                                            gateway if e["default_route"] else None, False)
                    finally:
                        ns.close()
                    return w.ns_udp_socket((DNS_ADDRESS, 53)) if want_dns else None
                finally:
                    w.leave()
            sock = self.worker.call(attach)
        except BaseException:
            self.worker.call(lambda w: br.delete_link(w.ipr, e["veth"]))
            del ep["networks"][net["Id"]]
            ipam.release(self.state.ipam[net["Id"]], ip, c.id)
            if want_dns:
                ep["dns"] = False
            self.state.save()
            raise
        if sock is not None:
            self.dns.add(c.id, sock)
        self._write_files(c, ep)

    def _detach_live(self, c: Any, net: dict) -> None:
        ep = self.state.endpoints[c.id]
        e = ep["networks"].pop(net["Id"])
        self.worker.call(lambda w: br.delete_link(w.ipr, e["veth"]))
        ipam.release(self.state.ipam.get(net["Id"], {}), e["ip"], c.id)
        if ep["dns"] and not any(self.state.networks[n]["Name"] not in PREDEFINED
                                 for n in ep["networks"] if n in self.state.networks):
            ep["dns"] = False
            if self._dns is not None:
                self._dns.remove(c.id)
        self.state.save()
        self._write_files(c, ep)

    # -- NetworkSettings / ports for inspect and list ----------------------------------------
    def settings(self, c: Any) -> dict:
        with self._lock:
            ep = self.state.endpoints.get(c.id) if c.running else None
            mode = c.host.get("NetworkMode") or "none"
            configs = dict(_endpoints_config(c.record))
            if not configs and not mode.startswith("container:"):
                configs = {mode: None}
            networks = {}
            for name, cfg in configs.items():
                net = self.state.by_name(name)
                live = ep["networks"].get(net["Id"]) if (ep and net) else None
                networks[name] = _endpoint_settings(c, net, cfg, live)
            top = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                   "MacAddress": ""}
            bridge_net = self.state.by_name("bridge")
            if ep and bridge_net and bridge_net["Id"] in ep["networks"]:
                e = ep["networks"][bridge_net["Id"]]
                top = {"EndpointID": e["endpoint_id"], "Gateway": e["gateway"],
                       "IPAddress": e["ip"], "IPPrefixLen": e["prefixlen"],
                       "MacAddress": e["mac"]}
            ports = docker_ports(ep["ports"], self._exposed(c)) if ep else {}
            return {"Bridge": "", "SandboxID": _sandbox_id(ep), "HairpinMode": False,
                    "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
                    "SandboxKey": ep["netns"] if ep else "", "SecondaryIPAddresses": None,
                    "SecondaryIPv6Addresses": None, **top, "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", "Networks": networks}

    def port_list(self, c: Any) -> list[dict]:
        with self._lock:
            ep = self.state.endpoints.get(c.id) if c.running else None
            return list_ports(ep["ports"] if ep else [], self._exposed(c))

    def container_networks(self, c: Any) -> list[str]:
        """Names and ids of the networks a container is configured on (list filters)."""
        with self._lock:
            out = []
            for name in _endpoints_config(c.record) or {c.host.get("NetworkMode"): None}:
                out.append(name)
                net = self.state.by_name(name)
                if net:
                    out.append(net["Id"])
            return out

    # -- DNS callbacks (DNS thread) ---------------------------------------------------------
    def _dns_resolve(self, cid: str, name: str) -> tuple[list[str], bool] | None:
        with self._lock:
            ep = self.state.endpoints.get(cid)
            if ep is None:
                return None
            wanted = name.lower()
            found: list[str] = []
            forward_ok = False
            for net_id in ep["networks"]:
                net = self.state.networks.get(net_id)
                if net is None or net["Name"] in PREDEFINED:
                    continue
                forward_ok = forward_ok or not net["Internal"]
                for other_id in self.state.users(net_id):
                    other = self.state.endpoints[other_id]["networks"][net_id]
                    if wanted in self._dns_names(other_id, other, lower=True):
                        found.append(other["ip"])
            return found, forward_ok

    def _dns_reverse(self, cid: str, ip: str) -> list[str]:
        with self._lock:
            ep = self.state.endpoints.get(cid)
            if ep is None:
                return []
            for net_id in ep["networks"]:
                net = self.state.networks.get(net_id)
                if net is None or net["Name"] in PREDEFINED:
                    continue
                for other_id in self.state.users(net_id):
                    other = self.state.endpoints[other_id]["networks"][net_id]
                    if other["ip"] == ip:
                        return [f"{self._container_name(other_id, other)}.{net['Name']}"]
            return []

    def _dns_upstreams(self, cid: str) -> list[str]:
        try:
            c = self.containers.containers.get(cid) if self.containers else None
        except AttributeError:
            c = None
        if c is None:
            return []
        out = []
        for server in c.host.get("Dns") or []:
            try:
                ipaddress.IPv4Address(server)
                out.append(server)
            except ValueError:
                continue
        return out

    def _container_name(self, cid: str, ep: dict | None = None) -> str:
        c = self.containers.containers.get(cid) if self.containers is not None else None
        if c is not None:
            return c.name.lstrip("/")
        return (ep or {}).get("name") or self.state.endpoints.get(cid, {}).get("name", cid[:12])

    def _dns_names(self, cid: str, e: dict, lower: bool = False) -> list[str]:
        names = [self._container_name(cid), *e.get("aliases", []), cid[:12]]
        c = self.containers.containers.get(cid) if self.containers is not None else None
        if c is not None and c.config.get("Hostname"):
            names.append(c.config["Hostname"])
        return [n.lower() for n in names] if lower else names

    # -- engine start / stop ----------------------------------------------------------------
    def reconcile(self, containers: list[Any]) -> None:
        """After the engine (re)starts: free what died meanwhile, re-arm what still runs."""
        running = {c.id: c for c in containers if c.running}
        known = {c.id for c in containers}
        with self._lock:
            for cid in list(self.state.endpoints):
                if cid not in running:
                    self._teardown(cid)
            changed = False
            for net_id, table in self.state.ipam.items():
                for address, owner in list(table.get("allocated", {}).items()):
                    ep = self.state.endpoints.get(owner)
                    if ep is None or net_id not in ep["networks"]:
                        del table["allocated"][address]
                        changed = True
            if changed:
                self.state.save()
            self._remove_orphan_netns(known, set(self.state.endpoints))
            wanted = [n for n in self.state.networks.values() if self._is_bridge(n) and (
                n["Name"] != "bridge" or self.state.users(n["Id"])
                or os.path.exists(f"/sys/class/net/{n['_bridge']}"))]
            if not wanted:
                return
            for net in wanted:
                subnet, gateway = self._subnet(net)
                alias = self._alias(net)
                try:
                    self.worker.call(lambda w, net=net, alias=alias, s=subnet, g=gateway:
                                     br.ensure_bridge(w.ipr, net["_bridge"], alias, g,
                                                      s.prefixlen))
                    self._active.add(net["Id"])
                except Exception as exc:  # noqa: BLE001 - one bad network must not stop all
                    log.warning("cannot bring up network %s: %s", net["Name"], exc)
            self._render_table()
            for cid, ep in self.state.endpoints.items():
                for warning in self.reservations.adopt(cid, ep["ports"]):
                    log.warning("container %s: port %s", cid[:12], warning)
                if ep["dns"]:
                    self._reopen_dns(cid, ep)

    def _reopen_dns(self, cid: str, ep: dict) -> None:
        def make(w: NetlinkWorker) -> Any:
            w.enter(ep["netns"])
            try:
                return w.ns_udp_socket((DNS_ADDRESS, 53))
            finally:
                w.leave()
        try:
            self.dns.add(cid, self.worker.call(make))
        except OSError as exc:
            log.warning("container %s: embedded DNS not restored: %s", cid[:12], exc)

    def _remove_orphan_netns(self, known: set[str], live: set[str]) -> None:
        try:
            names = os.listdir(NETNS_DIR)
        except FileNotFoundError:
            return
        for name in names:
            if name in known and name not in live:
                remove_netns(f"{NETNS_DIR}/{name}")

    def close(self) -> None:
        """Stop serving (the engine closes); kernel state stays for the next engine."""
        if self._closed:
            return
        self._closed = True
        if self._dns is not None:
            self._dns.close()
        self.reservations.close()
        if self._worker is not None:
            self._worker.close()
        if self._nft is not None:
            self._nft.close()

    def shutdown(self) -> None:
        """Remove every kernel object of this data root (tests, uninstall); keep records."""
        with self._lock:
            for cid in list(self.state.endpoints):
                self._teardown(cid)
            for net in self.state.networks.values():
                if not self._is_bridge(net):
                    continue
                if net["Id"] in self._active or os.path.exists(f"/sys/class/net/{net['_bridge']}"):
                    self._active.add(net["Id"])
                    try:
                        self._deactivate(net)
                    except Exception as exc:  # noqa: BLE001
                        log.warning("removing network %s: %s", net["Name"], exc)
            if self._table_ready or self._nft is not None:
                self.nft.run(nat.delete_table(self.table), check=False)
                self._table_ready = False
            with ipam.claims_locked() as claims:
                for kind in ("subnets", "bridges", "roots"):
                    for key in [k for k, v in claims[kind].items() if v == self.owner]:
                        del claims[kind][key]
        self.close()


# -- helpers ---------------------------------------------------------------------------------
def _NAME_OK(name: str) -> bool:
    import re
    return re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", name) is not None


def _endpoints_config(record: dict) -> dict:
    nc = record.setdefault("NetworkingConfig", {})
    if nc.get("EndpointsConfig") is None:
        nc["EndpointsConfig"] = {}
    return nc["EndpointsConfig"]


def _port_rules(ep: dict) -> list[nat.PortRule]:
    return [nat.PortRule(p["proto"], p["host_ip"], p["host_port"], p["container_ip"],
                         p["container_port"]) for p in ep.get("ports", []) if p.get("container_ip")]


def _ifindex(name: str) -> int:
    with open(f"/sys/class/net/{name}/ifindex") as f:
        return int(f.read())


def _join(spec: dict, path: str) -> None:
    for ns in spec.get("linux", {}).get("namespaces", []):
        if ns.get("type") == "network":
            ns["path"] = path
            return
    spec.setdefault("linux", {}).setdefault("namespaces", []).append(
        {"type": "network", "path": path})


def _sandbox_id(ep: dict | None) -> str:
    return hashlib.sha256(ep["netns"].encode()).hexdigest() if ep else ""


def _endpoint_settings(c: Any, net: dict | None, cfg: dict | None, live: dict | None) -> dict:
    cfg = cfg or {}
    out = {"IPAMConfig": cfg.get("IPAMConfig"), "Links": None, "Aliases": cfg.get("Aliases"),
           "MacAddress": "", "DriverOpts": None, "NetworkID": net["Id"] if net else "",
           "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
           "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
           "DNSNames": None}
    if live:
        out.update(MacAddress=live["mac"], EndpointID=live["endpoint_id"],
                   Gateway=live["gateway"], IPAddress=live["ip"],
                   IPPrefixLen=live["prefixlen"])
        if net and net["Name"] not in PREDEFINED:
            out["DNSNames"] = [c.name.lstrip("/"), *live.get("aliases", []), c.id[:12]]
    return out


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, dict):
        return [k for k, v in raw.items() if v]
    if isinstance(raw, str):
        return [raw]
    return [str(v) for v in raw]


def _until(values: list[str]) -> int | None:
    if not values:
        return None
    from ..supervisor.logfile import parse_rfc3339_nano
    text = values[-1]
    try:
        return int(float(text) * 1_000_000_000)
    except ValueError:
        pass
    try:
        return parse_rfc3339_nano(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid filter 'until={text}'") from None


def _created_ns(rec: dict) -> int:
    from ..supervisor.logfile import parse_rfc3339_nano
    try:
        return parse_rfc3339_nano(rec["Created"])
    except ValueError:
        return 0
