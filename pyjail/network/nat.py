"""pyjail's own nftables table: masquerade, network isolation and published ports.

Everything lives in one table per data root (``ip pyjail_<hash>``), so pyjail never
touches a rule it did not make and removing the table removes every trace. Per-container
state is kept in sets and maps (published ports, bridge names), so a container start or
stop adds or deletes *elements* — no rule handles to track, and each change is one
atomic netlink batch. The whole table is a pure function of the persisted state
(:func:`render_table`), so a restarted engine can rebuild it atomically.

Commands go through libnftables (ctypes, ~0.2 ms a batch) and fall back to the ``nft``
binary when the library is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
import threading
from dataclasses import dataclass

from .. import errors

PROTOCOLS = ("tcp", "udp")


class NftError(errors.PyjailError):
    """nftables refused a command (the message carries nft's own diagnostics)."""


@dataclass(frozen=True)
class NetRules:
    """What the table needs to know about one bridge network."""

    chain: str          # short, unique per network: "n" + id[:12]
    bridge: str
    subnet: str
    internal: bool


@dataclass(frozen=True)
class PortRule:
    """One DNAT mapping: host_ip:host_port/proto -> container_ip:container_port."""

    proto: str
    host_ip: str        # "0.0.0.0" means every local address
    host_port: int
    container_ip: str
    container_port: int

    def key(self) -> str:
        if self.host_ip == "0.0.0.0":
            return f"{self.host_port}"
        return f"{self.host_ip} . {self.host_port}"

    def map_name(self) -> str:
        return f"{self.proto}_{'any' if self.host_ip == '0.0.0.0' else 'addr'}"

    def element(self) -> str:
        return f"{self.key()} : {self.container_ip} . {self.container_port}"


class Nft:
    """A thread-safe handle on libnftables (or the nft binary)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib = None
        self._ctx = None
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            lib = None
        if lib is not None:
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
            for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_char_p
            ctx = lib.nft_ctx_new(0)
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            self._lib, self._ctx = lib, ctx
        elif shutil.which("nft") is None:
            raise errors.RuntimeFailure(
                "bridge networking needs nftables (apt-get install nftables)")

    def run(self, commands: str, check: bool = True) -> str:
        """Run a batch of nft commands atomically; return nft's output."""
        with self._lock:
            if self._lib is not None:
                rc = self._lib.nft_run_cmd_from_buffer(self._ctx, commands.encode())
                out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
                err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
            else:
                proc = subprocess.run(["nft", "-f", "-"], input=commands, text=True,
                                      capture_output=True)
                rc, out, err = proc.returncode, proc.stdout, proc.stderr
        if rc != 0 and check:
            raise NftError(f"nftables: {err.strip() or 'command failed'}")
        return out

    def close(self) -> None:
        with self._lock:
            if self._lib is not None and self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None
                self._lib = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', "") + '"'


def network_chains(table: str, net: NetRules) -> str:
    """Two chains per network: traffic leaving its bridge (_in) and entering it (_out).

    With br_netfilter loaded, bridged traffic between two containers of one network
    also passes the forward hook, hence the same-bridge accept first.
    """
    br = _quote(net.bridge)
    lines = [f"add chain ip {table} {net.chain}_in",
             f"add rule ip {table} {net.chain}_in oifname {br} accept"]
    if net.internal:
        lines.append(f"add rule ip {table} {net.chain}_in drop")
    else:
        lines += [f"add rule ip {table} {net.chain}_in ct status dnat accept",
                  f"add rule ip {table} {net.chain}_in oifname @bridges drop"]
    lines += [f"add chain ip {table} {net.chain}_out",
              f"add rule ip {table} {net.chain}_out iifname {br} accept"]
    if net.internal:
        lines.append(f"add rule ip {table} {net.chain}_out drop")
    else:
        lines += [f"add rule ip {table} {net.chain}_out ct state established,related accept",
                  f"add rule ip {table} {net.chain}_out ct status dnat accept",
                  f"add rule ip {table} {net.chain}_out iifname @bridges drop"]
    return "\n".join(lines) + "\n"


def add_network(table: str, net: NetRules) -> str:
    out = network_chains(table, net)
    out += (f"add element ip {table} bridges {{ {_quote(net.bridge)} }}\n"
            f"add element ip {table} subnets {{ {net.subnet} }}\n")
    if not net.internal:
        out += f"add element ip {table} nat_nets {{ {net.subnet} }}\n"
    out += (f"add element ip {table} fwd_in {{ {_quote(net.bridge)} : jump {net.chain}_in }}\n"
            f"add element ip {table} fwd_out {{ {_quote(net.bridge)} : jump {net.chain}_out }}\n")
    return out


def remove_network(table: str, net: NetRules) -> str:
    out = (f"delete element ip {table} fwd_in {{ {_quote(net.bridge)} }}\n"
           f"delete element ip {table} fwd_out {{ {_quote(net.bridge)} }}\n"
           f"delete element ip {table} bridges {{ {_quote(net.bridge)} }}\n"
           f"delete element ip {table} subnets {{ {net.subnet} }}\n")
    if not net.internal:
        out += f"delete element ip {table} nat_nets {{ {net.subnet} }}\n"
    for suffix in ("_in", "_out"):
        out += (f"flush chain ip {table} {net.chain}{suffix}\n"
                f"delete chain ip {table} {net.chain}{suffix}\n")
    return out


def add_ports(table: str, ports: list[PortRule]) -> str:
    return "".join(f"add element ip {table} {p.map_name()} {{ {p.element()} }}\n" for p in ports)


def remove_ports(table: str, ports: list[PortRule]) -> str:
    return "".join(f"delete element ip {table} {p.map_name()} {{ {p.key()} }}\n" for p in ports)


def render_table(table: str, networks: list[NetRules], ports: list[PortRule]) -> str:
    """The complete table, replacing any previous one in the same atomic batch."""
    maps = []
    for proto in PROTOCOLS:
        maps.append(f"add map ip {table} {proto}_any "
                    "{ type inet_service : ipv4_addr . inet_service; }")
        maps.append(f"add map ip {table} {proto}_addr "
                    "{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }")
    dnat = []
    for proto in PROTOCOLS:
        dnat.append(f"add rule ip {table} ports dnat ip to ip daddr . {proto} dport "
                    f"map @{proto}_addr")
        dnat.append(f"add rule ip {table} ports dnat ip to {proto} dport map @{proto}_any")
    head = f"""add table ip {table}
delete table ip {table}
add table ip {table}
add set ip {table} bridges {{ type ifname; }}
add set ip {table} nat_nets {{ type ipv4_addr; flags interval; }}
add set ip {table} subnets {{ type ipv4_addr; flags interval; }}
add map ip {table} fwd_in {{ type ifname : verdict; }}
add map ip {table} fwd_out {{ type ifname : verdict; }}
{chr(10).join(maps)}
add chain ip {table} ports
{chr(10).join(dnat)}
add chain ip {table} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add rule ip {table} prerouting fib daddr type local jump ports
add chain ip {table} output {{ type nat hook output priority -100; policy accept; }}
add rule ip {table} output fib daddr type local jump ports
add chain ip {table} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add rule ip {table} postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade
add rule ip {table} postrouting ct status dnat ip saddr @subnets oifname @bridges masquerade
add rule ip {table} postrouting ip saddr @nat_nets oifname != @bridges masquerade
add chain ip {table} forward {{ type filter hook forward priority filter; policy accept; }}
add rule ip {table} forward iifname vmap @fwd_in
add rule ip {table} forward oifname vmap @fwd_out
"""
    body = "".join(add_network(table, n) for n in networks)
    return head + body + add_ports(table, ports)


def delete_table(table: str) -> str:
    return f"add table ip {table}\ndelete table ip {table}\n"
