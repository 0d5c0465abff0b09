"""Per-container cgroups on v1 (legacy/hybrid) and v2 (unified) hosts, behind one interface.

``manager_for(path)`` reads the host's layout and returns the right manager; both take
OCI ``linux.resources`` and report stats in one shape (Docker's /containers/{id}/stats).
"""

from __future__ import annotations

from .base import (
    MEMORY_UNLIMITED,
    CgroupLayout,
    CgroupManager,
    DeviceRule,
    Limits,
    detect_layout,
    validate_resources,
)
from .v1 import CgroupV1Manager
from .v2 import CgroupV2Manager


def manager_for(path: str, layout: CgroupLayout | None = None) -> CgroupManager:
    """The manager for the host's cgroup version (v1 also covers hybrid hosts)."""
    layout = layout or detect_layout()
    if layout.version == 2:
        return CgroupV2Manager(path, layout=layout)
    return CgroupV1Manager(path, layout=layout)


__all__ = [
    "MEMORY_UNLIMITED",
    "CgroupLayout",
    "CgroupManager",
    "CgroupV1Manager",
    "CgroupV2Manager",
    "DeviceRule",
    "Limits",
    "detect_layout",
    "manager_for",
    "validate_resources",
]
