"""Container resource statistics in the shape of Docker's ``/containers/{id}/stats``."""

from __future__ import annotations

import os

from .runtime.cgroups import manager_for
from .supervisor.logfile import rfc3339_nano

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_cpu_usage() -> int:
    """Host CPU time in nanoseconds, as Docker computes it from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1_000_000_000 // _CLK_TCK


def network_stats(pid: int) -> dict:
    networks = {}
    if not pid:
        return networks
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return networks
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        if name == "lo":
            continue
        v = [int(x) for x in rest.split()]
        networks[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2],
                          "rx_dropped": v[3], "tx_bytes": v[8], "tx_packets": v[9],
                          "tx_errors": v[10], "tx_dropped": v[11]}
    return networks


def sample(container_id: str, name: str, pid: int, running: bool) -> dict:
    """One sample; empty sections for a stopped container, as Docker returns."""
    out = {"read": rfc3339_nano(), "preread": "0001-01-01T00:00:00Z", "id": container_id,
           "name": name, "num_procs": 0,
           "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": None,
                                             "io_serviced_recursive": None},
           "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                                       "usage_in_usermode": 0},
                         "throttling_data": {"periods": 0, "throttled_periods": 0,
                                             "throttled_time": 0}},
           "memory_stats": {}, "storage_stats": {}}
    if not running:
        return out
    try:
        raw = manager_for(f"/pyjail/{container_id}").stats()
    except OSError:
        return out
    cpu = raw.get("cpu", {})
    percpu = cpu.get("usage_percpu") or []
    out["cpu_stats"] = {
        "cpu_usage": {"total_usage": cpu.get("usage_total", 0), "percpu_usage": percpu,
                      "usage_in_kernelmode": cpu.get("usage_system", 0),
                      "usage_in_usermode": cpu.get("usage_user", 0)},
        "system_cpu_usage": system_cpu_usage(),
        "online_cpus": len(percpu) or os.cpu_count() or 1,
        "throttling_data": cpu.get("throttling") or {"periods": 0, "throttled_periods": 0,
                                                     "throttled_time": 0},
    }
    mem = raw.get("memory", {})
    out["memory_stats"] = {"usage": mem.get("usage", 0), "max_usage": mem.get("max_usage", 0),
                           "limit": mem.get("limit", 0), "stats": mem.get("stats", {})}
    pids = raw.get("pids", {})
    out["pids_stats"] = {"current": pids.get("current", 0)}
    if pids.get("limit"):
        out["pids_stats"]["limit"] = pids["limit"]
    blk = raw.get("blkio", {})
    out["blkio_stats"]["io_service_bytes_recursive"] = blk.get("io_service_bytes_recursive") or []
    nets = network_stats(pid)
    if nets:
        out["networks"] = nets
    return out


def with_previous(current: dict, previous: dict | None) -> dict:
    current["precpu_stats"] = previous["cpu_stats"] if previous else {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    current["preread"] = previous["read"] if previous else "0001-01-01T00:00:00Z"
    return current
