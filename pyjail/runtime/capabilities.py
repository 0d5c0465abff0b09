"""Linux capabilities by name, and applying an OCI ``process.capabilities`` object."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidArgument
from . import syscalls

CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
]
CAP_NUMBERS = {f"CAP_{name}": i for i, name in enumerate(CAPABILITIES)}

# Docker's default set (moby oci/caps/defaults.go).
DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def _own_bounding() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return (1 << 64) - 1


LAST_CAP = _last_cap()
# --privileged means every capability *we* hold: a host without CAP_SYS_RESOURCE in its
# bounding set (like this one) cannot hand it to a container, and capset would fail.
ALL_CAPS = [f"CAP_{n}" for i, n in enumerate(CAPABILITIES[: LAST_CAP + 1])
            if _own_bounding() >> i & 1]


def normalize(name: str) -> str:
    """'net_admin', 'NET_ADMIN' and 'CAP_NET_ADMIN' all mean CAP_NET_ADMIN; 'ALL' stays."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAP_NUMBERS:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return upper


def resolve(add: Iterable[str] = (), drop: Iterable[str] = (), privileged: bool = False,
            base: Iterable[str] = DOCKER_DEFAULT_CAPS) -> list[str]:
    """The effective capability list for docker's --cap-add/--cap-drop/--privileged."""
    if privileged:
        return list(ALL_CAPS)
    add_n = [normalize(c) for c in add]
    drop_n = [normalize(c) for c in drop]
    caps = [] if "ALL" in drop_n else list(base)
    if "ALL" in add_n:
        caps = list(ALL_CAPS)
    for cap in add_n:
        if cap != "ALL" and cap not in caps:
            caps.append(cap)
    return [c for c in caps if c not in drop_n]


def mask(names: Iterable[str]) -> int:
    bits = 0
    for name in names:
        number = CAP_NUMBERS.get(name)
        if number is not None and number <= LAST_CAP:
            bits |= 1 << number
    return bits


def drop_bounding(keep: int) -> None:
    """Remove every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for number in range(LAST_CAP + 1):
        if not keep & (1 << number):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number)


def apply(caps: dict) -> None:
    """Set effective/permitted/inheritable and ambient sets from an OCI capabilities object.

    Called after the uid switch (with PR_SET_KEEPCAPS held) and after drop_bounding.
    """
    syscalls.capset(mask(caps.get("effective", ())), mask(caps.get("permitted", ())),
                    mask(caps.get("inheritable", ())))
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    for name in caps.get("ambient", ()):
        number = CAP_NUMBERS.get(name)
        if number is not None:
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, number)
