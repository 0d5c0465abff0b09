"""The container's /etc/hosts and /etc/resolv.conf, as Docker writes them.

The files live in the container directory and are bind-mounted over the container's
/etc files, so they are rewritten *in place* (same inode): a rename would leave a
running container looking at the old file after a live connect or disconnect.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from .dns import DNS_ADDRESS

BASE_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n")
DOCKER_FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")


def write_in_place(path: Path, text: str) -> None:
    with open(path, "r+" if path.exists() else "w") as f:
        f.write(text)
        f.truncate()


def hosts_text(hostname: str, domainname: str, addresses: list[str],
               extra_hosts: list[str], host_gateway: str | None) -> str:
    text = BASE_HOSTS
    for entry in extra_hosts:
        name, _, ip = entry.partition(":")
        if ip == "host-gateway" and host_gateway:
            ip = host_gateway
        if name and ip:
            text += f"{ip}\t{name}\n"
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    for address in addresses:
        text += f"{address}\t{names}\n"
    return text


def resolv_text(host_resolv: str, embedded: bool, dns: list[str], search: list[str],
                options: list[str]) -> str:
    """Docker's rules: the embedded server on user networks, else the host's servers.

    Loopback resolvers of the host cannot be reached from a container's namespace, so
    they are dropped (and Docker's public fallback used when none is left).
    """
    servers, host_search, host_options = [], [], []
    for line in host_resolv.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            host_search = fields[1:]
        elif fields[0] == "options":
            host_options += fields[1:]
    search = search or host_search
    options = options or host_options
    out = []
    if search:
        out.append("search " + " ".join(search))
    if embedded:
        out.append(f"nameserver {DNS_ADDRESS}")
        if not any(o.startswith("ndots:") for o in options):
            options = [*options, "ndots:0"]
    else:
        chosen = dns or [s for s in servers if not _is_loopback(s)] or list(DOCKER_FALLBACK_DNS)
        out += [f"nameserver {s}" for s in chosen]
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
