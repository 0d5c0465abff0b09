"""Facts about the host the daemon reports in ``/info`` and ``/version`` (read once)."""

from __future__ import annotations

import functools
import os
import platform
import socket
import uuid
from pathlib import Path
from typing import Any

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


@functools.cache
def host_facts() -> dict[str, Any]:
    """What does not change while the daemon runs (read once)."""
    uname = os.uname()
    os_name = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.partition("=")[2].strip('"')
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    cgroup_version = "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"
    return {"kernel": uname.release, "os": os_name, "arch": _GO_ARCH.get(uname.machine,
                                                                         uname.machine),
            "machine": uname.machine, "mem": mem, "ncpu": os.cpu_count() or 1,
            "hostname": socket.gethostname(), "cgroup_version": cgroup_version,
            "python": f"python{platform.python_version()}"}


def engine_id(data_root: str) -> str:
    """A stable daemon ID, kept in the data root like dockerd's engine-id."""
    path = Path(data_root) / "engine-id"
    try:
        return path.read_text().strip()
    except OSError:
        value = str(uuid.uuid4())
        try:
            path.write_text(value + "\n")
        except OSError:
            pass
        return value
