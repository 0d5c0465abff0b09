"""Networking, for real: bridges, veths, nftables rules, the embedded DNS, published ports.

Traffic only flows over loopback and the networks these tests create. Forwarding of
unknown names to the host's resolvers is switched off for the module, so no query
leaves the host either. Every test removes what it made, and the ``lab`` fixture checks
that no veth, netns, IPAM entry, bridge or rule of its containers and networks is left.
"""

from __future__ import annotations

import copy
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from pyjail import errors
from pyjail.network import Forbidden, NetworkNotFound
from pyjail.network.bridge import veth_name
from pyjail.network.netns import NETNS_DIR

HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html "
         "&& exec httpd -f -p 80 -h /www"]


def wget_loop(url: str, tries: int = 60) -> list[str]:
    """Inside a container: retry until the server answers (bounded), print the page."""
    return ["sh", "-c", f"(for i in $(seq {tries}); do timeout 2 wget -qO- {url} && exit 0; "
            "sleep 0.1; done; exit 1)"]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read()
    except OSError:
        return None


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_table(engine) -> str:
    proc = subprocess.run(["nft", "list", "table", "ip", engine.networks.table],
                          capture_output=True, text=True)
    return proc.stdout


def snapshot(engine, *containers: Any) -> dict:
    """What a failed start of ``containers`` must leave unchanged.

    Host-wide lists are narrowed to this engine's objects: other engines on the host
    (other test sessions) make bridges and namespaces of their own meanwhile.
    """
    with engine.networks._lock:
        state = copy.deepcopy({"endpoints": engine.networks.state.endpoints, "ipam": {
            net: table["allocated"] for net, table in engine.networks.state.ipam.items()
            if table.get("allocated")}})
        ours = {net["_bridge"] for net in engine.networks.state.networks.values()}
        ours |= {veth_name(c.id, net_id) for c in containers
                 for net_id in engine.networks.state.networks}
    netns = {c.id for c in containers if os.path.exists(f"{NETNS_DIR}/{c.id}")}
    return {"links": links() & ours, "netns": netns, "nft": nft_table(engine), **state}


def exec_in(engine, cid: str, cmd: list[str]) -> tuple[int, str]:
    exec_id = engine.execs.create(cid, {"Cmd": cmd, "AttachStdout": True,
                                        "AttachStderr": True})
    sock, _tty, early = engine.execs.start(exec_id)
    data = early + b"".join(iter(lambda: sock.recv(65536), b""))
    sock.close()
    out = b""
    while len(data) >= 8:
        size = int.from_bytes(data[4:8], "big")
        if data[0] == 1:
            out += data[8:8 + size]
        data = data[8 + size:]
    return engine.execs.wait(exec_id), out.decode()


class Lab:
    """Networks and containers of one test, removed (and checked) at the end."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.network_ids: list[str] = []

    def network(self, **body: Any) -> str:
        name = f"pjt-{secrets.token_hex(3)}"
        reply = self.engine.networks.create({"Name": name, **body})
        self.networks.append(name)
        self.network_ids.append(reply["Id"])
        return name

    def create(self, cmd: list[str], network: str, name: str | None = None,
               **config: Any) -> Any:
        host = {"NetworkMode": network, **config.pop("host", {})}
        c = self.engine.containers.create({"Image": "busybox", "Cmd": cmd, "HostConfig": host,
                                           **config}, name=name)
        self.containers.append(c.id)
        return c

    def start(self, cmd: list[str], network: str, name: str | None = None,
              **config: Any) -> Any:
        c = self.create(cmd, network, name, **config)
        self.engine.containers.start(c.id)
        return c

    def run(self, cmd: list[str], network: str, **config: Any) -> tuple[int, str, str]:
        c = self.start(cmd, network, **config)
        code = self.engine.containers.wait(c.id, timeout=60)["StatusCode"]
        logs = list(self.engine.containers.logs(c.id))
        out = b"".join(e.data for e in logs if e.stream == "stdout").decode()
        err = b"".join(e.data for e in logs if e.stream == "stderr").decode()
        self.engine.containers.remove(c.id, force=True)
        return code, out, err

    def cleanup(self) -> None:
        engine = self.engine
        for cid in self.containers:
            try:
                engine.containers.remove(cid, force=True)
            except errors.NotFound:
                pass
        for name in self.networks:
            try:
                engine.networks.remove(name)
            except NetworkNotFound:
                pass
        state = engine.networks.state
        left = []
        for cid in self.containers:
            if os.path.exists(f"{NETNS_DIR}/{cid}"):
                left.append(f"netns {cid[:12]}")
            if cid in state.endpoints:
                left.append(f"endpoint {cid[:12]}")
            for table in state.ipam.values():
                left += [f"ip {ip}" for ip, owner in table.get("allocated", {}).items()
                         if owner == cid]
            for net in state.networks.values():
                if os.path.exists(f"/sys/class/net/{veth_name(cid, net['Id'])}"):
                    left.append(f"veth of {cid[:12]}")
        rules = nft_table(engine)
        for nid in self.network_ids:
            if os.path.exists(f"/sys/class/net/pj-{nid[:12]}"):
                left.append(f"bridge pj-{nid[:12]}")
            if f"n{nid[:12]}_" in rules:
                left.append(f"chains of network {nid[:12]}")
        assert not left, f"left behind: {left}"


@pytest.fixture
def lab(engine):
    saved = engine.networks.dns.upstreams
    engine.networks.dns.upstreams = []  # unknown names: SERVFAIL, never the host's resolvers
    lab = Lab(engine)
    try:
        yield lab
    finally:
        engine.networks.dns.upstreams = saved
        lab.cleanup()


def ip_of(engine, cid: str, network: str) -> str:
    return engine.inspect_container(cid)["NetworkSettings"]["Networks"][network]["IPAddress"]


# -- names and isolation ---------------------------------------------------------------------
def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(engine, lab):
    net = lab.network()
    web_name = f"web-{secrets.token_hex(2)}"
    web = lab.start(HTTPD, net, name=web_name,
                    NetworkingConfig={"EndpointsConfig": {net: {"Aliases": ["www-alias"]}}})
    code, out, err = lab.run(["sh", "-c", f"{wget_loop('http://' + web_name + '/')[2]} && "
                              "timeout 2 wget -qO- http://www-alias/ && cat /etc/resolv.conf "
                              "&& cat /etc/hosts && ip route"], net)
    assert code == 0, err
    assert out.count(f"hello-from-{web.id[:12]}") == 2
    assert "nameserver 127.0.0.11" in out
    assert "default via" in out
    inspect = engine.inspect_container(web.id)["NetworkSettings"]["Networks"][net]
    assert inspect["Aliases"] == ["www-alias"] and inspect["IPAddress"]
    assert web_name in inspect["DNSNames"] and "www-alias" in inspect["DNSNames"]


def test_other_networks_can_neither_reach_nor_resolve(engine, lab):
    net, other = lab.network(), lab.network()
    web_name = f"web-{secrets.token_hex(2)}"
    web = lab.start(HTTPD, net, name=web_name)
    web_ip = ip_of(engine, web.id, net)
    code, out, _ = lab.run(wget_loop(f"http://{web_ip}/"), net)
    assert code == 0 and f"hello-from-{web.id[:12]}" in out  # the server is up
    code, out, _ = lab.run(["sh", "-c", f"timeout 2 wget -qO- http://{web_ip}/ && echo REACHED; "
                            f"nslookup {web_name} 127.0.0.11 || echo NO-NAME"], other)
    assert "REACHED" not in out and "NO-NAME" in out
    code, out, _ = lab.run(["sh", "-c", f"timeout 2 wget -qO- http://{web_ip}/ && echo REACHED; "
                            "true"], "bridge")
    assert "REACHED" not in out


def test_internal_network_has_no_route_out_but_names_resolve(engine, lab):
    net = lab.network(Internal=True)
    peer_name = f"peer-{secrets.token_hex(2)}"
    lab.start(["sleep", "60"], net, name=peer_name)
    code, out, err = lab.run(["sh", "-c", "ip route; ip route get 1.1.1.1 || echo UNREACHABLE; "
                              f"nslookup {peer_name} 127.0.0.11"], net)
    assert "default" not in out and "UNREACHABLE" in out
    subnet = engine.networks.inspect(net)["IPAM"]["Config"][0]["Subnet"]
    rules = nft_table(engine)
    nat_nets = rules.split("set nat_nets", 1)[1].split("}", 1)[0]
    assert subnet not in nat_nets


def test_masquerade_and_isolation_rules_exist_per_network(engine, lab):
    net = lab.network()
    rec = engine.networks.inspect(net)
    subnet = rec["IPAM"]["Config"][0]["Subnet"]
    rules = nft_table(engine)
    chain = "n" + rec["Id"][:12]
    assert f"{chain}_in" in rules and f"{chain}_out" in rules
    assert subnet in rules.split("set nat_nets", 1)[1].split("}", 1)[0]
    assert "masquerade" in rules
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"


# -- published ports -------------------------------------------------------------------------
def test_published_port_serves_the_host_loopback_and_other_containers(engine, lab):
    port = free_port()
    web = lab.start(HTTPD, "bridge", host={"PortBindings": {"80/tcp": [
        {"HostIp": "127.0.0.1", "HostPort": str(port)}, {"HostIp": "", "HostPort": ""}]}},
        ExposedPorts={"80/tcp": {}, "443/tcp": {}})
    page = wait_until(lambda: http_get(f"http://127.0.0.1:{port}/"), what="the published port")
    assert page == f"hello-from-{web.id[:12]}\n".encode()
    ports = engine.inspect_container(web.id)["NetworkSettings"]["Ports"]
    assert ports["443/tcp"] is None
    bindings = {b["HostIp"]: int(b["HostPort"]) for b in ports["80/tcp"]}
    assert bindings["127.0.0.1"] == port and bindings["0.0.0.0"] > 0
    listed = next(e for e in engine.list_containers() if e["Id"] == web.id)["Ports"]
    assert {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": "tcp"} in listed
    assert {"PrivatePort": 443, "Type": "tcp"} in listed
    # From a container of another network, through its gateway (a local address).
    net = lab.network()
    gateway = engine.networks.inspect(net)["IPAM"]["Config"][0]["Gateway"]
    code, out, _ = lab.run(wget_loop(f"http://{gateway}:{bindings['0.0.0.0']}/", 30), net)
    assert code == 0 and f"hello-from-{web.id[:12]}" in out
    engine.containers.stop(web.id, timeout=1)
    assert f" . {port} :" not in nft_table(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # released with the container


def test_publish_all_exposed_udp_port_is_dnatted(engine, lab):
    """busybox has no UDP server: the conntrack entry shows where the datagram went."""
    c = lab.start(["sleep", "60"], "bridge", host={"PublishAllPorts": True},
                  ExposedPorts={"5353/udp": {}})
    settings = engine.inspect_container(c.id)["NetworkSettings"]
    binding = settings["Ports"]["5353/udp"][0]
    assert binding["HostIp"] == "0.0.0.0" and int(binding["HostPort"]) > 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(b"ping", ("127.0.0.1", int(binding["HostPort"])))
        sport = s.getsockname()[1]
    with open("/proc/net/nf_conntrack") as f:
        entry = next(line for line in f if f"sport={sport} dport={binding['HostPort']}" in line)
    assert f"src={settings['IPAddress']} dst=" in entry and "sport=5353" in entry


def test_port_conflict_fails_clearly_and_leaves_nothing(engine, lab):
    net = lab.network()
    port = free_port()
    binding = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}
    lab.start(HTTPD, net, host=binding)
    second = lab.create(HTTPD, net, host=binding)
    before = snapshot(engine, second)
    with pytest.raises(errors.PyjailError) as exc:
        engine.containers.start(second.id)
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in str(exc.value)
    assert snapshot(engine, second) == before
    assert not second.running
    # A port a host process holds is refused the same way.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        third = lab.create(HTTPD, net, host={"PortBindings": {"80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": str(taken)}]}})
        with pytest.raises(errors.PyjailError, match="port is already allocated"):
            engine.containers.start(third.id)
        assert snapshot(engine, third) == snapshot(engine, second) == before


def test_a_failure_half_way_through_setup_leaves_nothing(engine, lab, monkeypatch):
    from pyjail.network import bridge
    net = lab.network()
    c = lab.create(["sleep", "60"], net, host={"PortBindings": {"80/tcp": [{}]}})
    before = snapshot(engine, c)
    real = bridge.add_veth

    def add_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError("injected failure after the veth exists")
    monkeypatch.setattr(bridge, "add_veth", add_then_fail)
    with pytest.raises(OSError, match="injected"):
        engine.containers.start(c.id)
    assert snapshot(engine, c) == before
    monkeypatch.setattr(bridge, "add_veth", real)
    engine.containers.start(c.id)
    assert engine.inspect_container(c.id)["NetworkSettings"]["Networks"][net]["IPAddress"]


# -- lifecycle -------------------------------------------------------------------------------
def test_stop_start_and_remove_clean_veth_netns_rules_and_dns(engine, lab):
    net = lab.network()
    name = f"svc-{secrets.token_hex(2)}"
    svc = lab.start(HTTPD, net, name=name, host={"PortBindings": {"80/tcp": [{}]}})
    peer = lab.start(["sleep", "60"], net)
    assert engine.networks._dns_resolve(peer.id, name)[0] == [ip_of(engine, svc.id, net)]
    net_id = engine.networks.get(net)["Id"]
    veth = veth_name(svc.id, net_id)
    assert veth in links() and os.path.exists(f"{NETNS_DIR}/{svc.id}")
    host_port = engine.networks.state.endpoints[svc.id]["ports"][0]["host_port"]
    assert f"{host_port} : " in nft_table(engine)
    engine.containers.stop(svc.id, timeout=1)
    assert veth not in links() and not os.path.exists(f"{NETNS_DIR}/{svc.id}")
    assert svc.id not in engine.networks.state.endpoints
    assert f"{host_port} : " not in nft_table(engine)
    assert engine.networks._dns_resolve(peer.id, name) == ([], True)
    engine.containers.start(svc.id)  # a restart re-creates everything
    code, out, _ = lab.run(wget_loop(f"http://{name}/"), net)
    assert code == 0 and f"hello-from-{svc.id[:12]}" in out
    engine.containers.remove(svc.id, force=True)
    assert veth not in links() and not os.path.exists(f"{NETNS_DIR}/{svc.id}")
    assert not any(o == svc.id for t in engine.networks.state.ipam.values()
                   for o in t.get("allocated", {}).values())
    bridge = f"pj-{net_id[:12]}"
    assert bridge in links()
    engine.containers.remove(peer.id, force=True)
    engine.networks.remove(net)
    assert bridge not in links() and f"n{net_id[:12]}_in" not in nft_table(engine)


def test_stats_count_the_bytes_of_eth0(engine, lab):
    net = lab.network()
    web_name = f"web-{secrets.token_hex(2)}"
    web = lab.start(HTTPD, net, name=web_name)
    assert lab.run(wget_loop(f"http://{web_name}/"), net)[0] == 0
    stats = engine.stats(web.id)
    assert stats["networks"]["eth0"]["rx_bytes"] > 0 and stats["networks"]["eth0"]["tx_bytes"] > 0


# -- the network API -------------------------------------------------------------------------
def test_network_create_inspect_list_remove_prune(engine, lab):
    api = engine.networks
    name = lab.network(IPAM={"Config": [{"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.254"}]},
                       Labels={"team": "net"})
    rec = api.inspect(name)
    assert rec["IPAM"]["Config"] == [{"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.254"}]
    assert rec["Driver"] == "bridge" and rec["Labels"] == {"team": "net"}
    assert rec["Containers"] == {} and rec["Scope"] == "local"
    assert api.inspect(rec["Id"][:10])["Name"] == name
    with pytest.raises(errors.Conflict):
        api.create({"Name": name})
    with pytest.raises(Forbidden, match="overlaps"):
        api.create({"Name": "pjt-overlap", "IPAM": {"Config": [{"Subnet": "10.231.7.128/25"}]}})
    with pytest.raises(errors.InvalidArgument):
        api.create({"Name": "pjt-bad", "IPAM": {"Config": [{"Subnet": "10.231.8.0/24",
                                                            "Gateway": "10.231.9.1"}]}})
    with pytest.raises(errors.NotFound):
        api.create({"Name": "pjt-overlay", "Driver": "overlay"})
    names = {n["Name"] for n in api.list()}
    assert {"bridge", "host", "none", name} <= names
    assert {n["Name"] for n in api.list({"type": ["builtin"]})} == {"bridge", "host", "none"}
    assert [n["Name"] for n in api.list({"label": ["team=net"]})] == [name]
    assert name in {n["Name"] for n in api.list({"dangling": ["true"]})}
    for predefined in ("bridge", "host", "none"):
        with pytest.raises(Forbidden) as exc:
            api.remove(predefined)
        assert exc.value.status == 403
    c = lab.start(["sleep", "60"], name, NetworkingConfig={"EndpointsConfig": {
        name: {"IPAMConfig": {"IPv4Address": "10.231.7.9"}}}})
    assert api.inspect(name)["Containers"][c.id]["IPv4Address"] == "10.231.7.9/24"
    assert name not in {n["Name"] for n in api.list({"dangling": ["true"]})}
    with pytest.raises(errors.Conflict, match="active endpoints"):
        api.remove(name)
    assert name not in api.prune()["NetworksDeleted"]
    engine.containers.remove(c.id, force=True)
    unused = lab.network()
    deleted = api.prune({"label": ["team=net"]})["NetworksDeleted"]
    assert deleted == [name]
    assert unused in api.prune()["NetworksDeleted"]
    with pytest.raises(NetworkNotFound):
        api.inspect(name)


def test_connect_and_disconnect_a_running_container(engine, lab):
    front, back = lab.network(), lab.network()
    db_name = f"db-{secrets.token_hex(2)}"
    db = lab.start(HTTPD, back, name=db_name)
    app = lab.start(["sleep", "60"], front)
    engine.networks.connect(back, app.id, {"Aliases": ["app-alias"]})
    code, out = exec_in(engine, app.id, wget_loop(f"http://{db_name}/"))
    assert code == 0 and f"hello-from-{db.id[:12]}" in out
    code, out = exec_in(engine, app.id, ["ip", "-o", "-4", "addr"])
    assert "eth1" in out
    networks = engine.inspect_container(app.id)["NetworkSettings"]["Networks"]
    assert set(networks) == {front, back} and networks[back]["Aliases"] == ["app-alias"]
    assert app.id in engine.networks.inspect(back)["Containers"]
    with pytest.raises(Forbidden):
        engine.networks.connect(back, app.id)
    engine.networks.disconnect(back, app.id)
    code, out = exec_in(engine, app.id, ["ip", "-o", "-4", "addr"])
    assert "eth1" not in out and "eth0" in out
    assert app.id not in engine.networks.inspect(back)["Containers"]
    code, _ = exec_in(engine, app.id, ["nslookup", db_name, "127.0.0.11"])
    assert code != 0
    with pytest.raises(errors.InvalidArgument):
        engine.networks.disconnect(back, app.id)


def test_invalid_network_settings_are_rejected_at_create(engine, lab):
    with pytest.raises(NetworkNotFound):
        lab.create(["true"], "no-such-network")
    with pytest.raises(errors.InvalidArgument, match="alias"):
        lab.create(["true"], "bridge", NetworkingConfig={"EndpointsConfig": {
            "bridge": {"Aliases": ["x"]}}})
    with pytest.raises(errors.InvalidArgument):
        lab.create(["true"], "bridge", host={"PortBindings": {"80/sctp": [{}]}})
    with pytest.raises(errors.InvalidArgument):
        lab.create(["true"], "bridge", host={"PortBindings": {"80/tcp": [{"HostPort": "x"}]}})


# -- a daemon restart ------------------------------------------------------------------------
def test_a_new_engine_keeps_running_containers_networking(engine):
    from conftest import destroy_engine, make_data_root

    from pyjail.engine import Engine
    from pyjail.images import busybox_image
    first = Engine(make_data_root())
    second = None
    try:
        busybox_image(first.images)
        first.networks.dns.upstreams = []
        lab = Lab(first)
        net = lab.network()
        port = free_port()
        web_name = f"web-{secrets.token_hex(2)}"
        web = lab.start(HTTPD, net, name=web_name, host={"PortBindings": {"80/tcp": [
            {"HostIp": "127.0.0.1", "HostPort": str(port)}]}})
        wait_until(lambda: http_get(f"http://127.0.0.1:{port}/"), what="the published port")
        web_ip = ip_of(first, web.id, net)
        doomed = lab.start(["sleep", "60"], net)
        doomed_veth = veth_name(doomed.id, first.networks.get(net)["Id"])
        first.close()  # the daemon goes away; the containers keep running ...
        first.supervisor.request("kill", id=doomed.id, signal=9, all=True)  # ... but one
        wait_until(lambda: (doomed.dir / "exit.json").exists(), what="the exit record")
        second = Engine(first.data_root)
        assert doomed_veth not in links() and doomed.id not in second.networks.state.endpoints
        second.networks.dns.upstreams = []
        lab.engine = second
        assert http_get(f"http://127.0.0.1:{port}/") == f"hello-from-{web.id[:12]}\n".encode()
        client = lab.start(["sh", "-c", wget_loop(f"http://{web_name}/")[2] + "; sleep 60"],
                           net)
        assert ip_of(second, client.id, net) != web_ip
        allocated = second.networks.state.ipam[second.networks.get(net)["Id"]]["allocated"]
        assert sorted(allocated.values()) == sorted([web.id, client.id])
        logs = wait_until(lambda: b"".join(e.data for e in second.containers.logs(client.id)),
                          what="the client's output")
        assert f"hello-from-{web.id[:12]}".encode() in logs
        with pytest.raises(errors.PyjailError, match="already allocated"):
            lab.start(HTTPD, net, host={"PortBindings": {"80/tcp": [
                {"HostIp": "127.0.0.1", "HostPort": str(port)}]}})
        lab.cleanup()
    finally:
        destroy_engine(second or first)
        first.close()
    assert subprocess.run(["nft", "list", "table", "ip", first.networks.table],
                          capture_output=True).returncode != 0


# -- the HTTP API (daemon/pyjail_daemon/handlers/networks.py) --------------------------------
@pytest.fixture
def api(engine):
    """The network routes on a real Tornado server on loopback; yields request(method, path)."""
    tornado = pytest.importorskip("tornado")
    import asyncio
    import http.client
    import json
    import threading

    from pyjail_daemon.context import DaemonContext
    from pyjail_daemon.eventbridge import EventBridge
    from pyjail_daemon.handlers import networks
    from pyjail_daemon.handlers.base import PREFIX
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application

    assert tornado
    ctx = DaemonContext(engine=engine, events=EventBridge(engine.events),
                        data_root=str(engine.data_root))
    app = Application([(PREFIX + path + "$", handler, {"ctx": ctx})
                       for path, handler in networks.ROUTES])
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        HTTPServer(app).add_sockets(sockets)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)

    def request(method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data.strip() else None
        finally:
            conn.close()

    try:
        yield request
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        for s in sockets:
            s.close()


def test_network_http_api_speaks_dockers_statuses(engine, lab, api):
    name = f"pjt-{secrets.token_hex(3)}"
    status, body = api("POST", "/v1.44/networks/create",
                       {"Name": name, "Labels": {"k": "v"}, "CheckDuplicate": True})
    assert status == 201 and len(body["Id"]) == 64
    lab.networks.append(name)
    lab.network_ids.append(body["Id"])
    assert api("POST", "/networks/create", {"Name": name})[0] == 409
    status, listed = api("GET", '/networks?filters={"label":["k=v"]}')
    assert status == 200 and [n["Name"] for n in listed] == [name]
    assert api("GET", f"/v1.44/networks/{name}")[1]["Id"] == body["Id"]
    assert api("GET", "/networks/no-such-net")[0] == 404
    assert api("DELETE", "/networks/bridge")[0] == 403
    c = lab.start(["sleep", "60"], "bridge")
    assert api("POST", f"/networks/{name}/connect", {"Container": c.id})[0] == 200
    assert c.id in api("GET", f"/networks/{name}")[1]["Containers"]
    assert api("DELETE", f"/networks/{name}")[0] == 409
    assert api("POST", f"/networks/{name}/disconnect", {"Container": c.id})[0] == 200
    assert api("POST", "/networks/bridge/connect", {"Container": "nope"})[0] == 404
    status, pruned = api("POST", '/networks/prune?filters={"label":["k=v"]}')
    assert status == 200 and pruned == {"NetworksDeleted": [name]}
    assert api("GET", f"/networks/{name}")[0] == 404


def test_leftovers_of_a_deleted_data_root_are_reaped(engine):
    """A data root removed without a network shutdown: the next engine deletes its bridges."""
    import shutil

    from conftest import make_data_root

    from pyjail.engine import Engine
    root = make_data_root()
    gone = Engine(root)
    try:
        bridge = f"pj-{gone.networks.create({'Name': 'pjt-orphan'})['Id'][:12]}"
        table = gone.networks.table
        gone.close()
        gone.supervisor.request("shutdown", force=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert bridge in links()
    other = Engine(make_data_root())
    try:
        assert bridge not in links()
        assert subprocess.run(["nft", "list", "table", "ip", table],
                              capture_output=True).returncode != 0
    finally:
        other.shutdown_supervisor()
        shutil.rmtree(other.data_root, ignore_errors=True)
