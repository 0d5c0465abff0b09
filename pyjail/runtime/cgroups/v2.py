"""cgroup v2: one directory in the unified tree; controllers enabled top-down.

A controller's files appear in a cgroup only once its parent lists the controller in
cgroup.subtree_control, so create() enables them on every ancestor first. Devices have no
controller on v2: an eBPF program does that job (devices_bpf).
"""

from __future__ import annotations

import os
import signal

from pyjail.errors import InvalidArgument, PyjailError, RuntimeFailure

from . import devices_bpf
from .base import (
    MEMORY_UNLIMITED,
    CgroupLayout,
    CgroupManager,
    Limits,
    clean_path,
    detect_layout,
    poll_until,
    read_int,
    read_keyed,
    read_text,
    validate_resources,
    write_file,
)

CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset")


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's and Docker's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], runc's formula."""
    return 1 + ((weight - 10) * 9999) // 990


def parse_io_stat(text: str) -> list[dict]:
    """io.stat "8:0 rbytes=1 wbytes=2 ..." -> v1-style Read/Write BlkioStatEntry dicts."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        dev, *pairs = line.split()
        major, sep, minor = dev.partition(":")
        if not sep or not major.isdigit() or not minor.isdigit():
            continue
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op in (("rbytes", "Read"), ("wbytes", "Write")):
            if values.get(key, "").isdigit():
                out.append({"major": int(major), "minor": int(minor), "op": op,
                            "value": int(values[key])})
    return out


class CgroupV2Manager(CgroupManager):
    """A container's cgroup on the unified hierarchy.

    ``root`` overrides the cgroup2 mount point (a fake tree in tests); otherwise it comes
    from ``layout`` or /proc/self/mountinfo.
    """

    def __init__(self, path: str, root: str | None = None,
                 layout: CgroupLayout | None = None) -> None:
        self.path = clean_path(path)
        if root is None:
            root = (layout or detect_layout()).unified
            if root is None:
                raise RuntimeFailure("no cgroup2 filesystem is mounted")
        self.root = root
        self.dir = os.path.join(root, self.path.lstrip("/"))

    def dirs(self) -> list[str]:
        return [self.dir]

    def _f(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _need(self, controller: str, name: str) -> str:
        path = self._f(name)
        if not os.path.exists(path):
            raise RuntimeFailure(f"the {controller} cgroup controller is not enabled for "
                                 f"{self.path} ({name} missing)")
        return path

    # -- lifecycle
    def create(self, resources: dict) -> None:
        lim = validate_resources(resources)
        made: list[str] = []
        try:
            cur = self.root
            for part in self.path.strip("/").split("/"):
                self._enable_controllers(cur)
                cur = os.path.join(cur, part)
                try:
                    self._mkdir(cur)
                    made.append(cur)
                except FileExistsError:
                    pass
            self._apply(lim)
        except (OSError, PyjailError) as e:
            for d in reversed(made):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            if isinstance(e, PyjailError):
                raise
            raise RuntimeFailure(f"cannot set up cgroup {self.path}: {e}") from e

    @staticmethod
    def _enable_controllers(parent: str) -> None:
        """Enable our controllers for ``parent``'s children, those it has and lacks.

        One write for all; if the kernel refuses it (a controller busy or unavailable),
        each alone, so one refusal does not cost the others. Missing limits are reported
        when a limit needs them.
        """
        control = os.path.join(parent, "cgroup.subtree_control")
        if not os.path.exists(control):
            return
        have = read_text(os.path.join(parent, "cgroup.controllers"), " ".join(CONTROLLERS))
        enabled = set(read_text(control).split())
        wanted = [c for c in CONTROLLERS if c in have.split() and c not in enabled]
        if not wanted:
            return
        try:
            write_file(control, " ".join("+" + c for c in wanted))
        except OSError:
            for c in wanted:
                try:
                    write_file(control, "+" + c)
                except OSError:
                    pass

    def update(self, resources: dict) -> None:
        lim = validate_resources(resources, update=True)
        try:
            self._apply(lim)
        except OSError as e:
            raise RuntimeFailure(f"cannot update cgroup {self.path}: {e}") from e

    def _apply(self, lim: Limits) -> None:
        swap = None         # no memory.swap.max: no swap accounting, the limit is ignored
        if lim.swap is not None and os.path.exists(self._f("memory.swap.max")):
            swap = self._swap_value(lim)        # checked before anything is written
        if lim.memory is not None:
            write_file(self._need("memory", "memory.max"), "max" if lim.memory < 0 else lim.memory)
        if swap is not None:
            write_file(self._f("memory.swap.max"), swap)
        if lim.reservation is not None:
            write_file(self._need("memory", "memory.low"), lim.reservation)
        if lim.shares is not None:
            write_file(self._need("cpu", "cpu.weight"), shares_to_weight(lim.shares))
        if lim.quota is not None or lim.period is not None:
            self._set_cpu_max(lim.quota, lim.period)
        if lim.cpus is not None:
            write_file(self._need("cpuset", "cpuset.cpus"), lim.cpus)
        if lim.mems is not None:
            write_file(self._need("cpuset", "cpuset.mems"), lim.mems)
        if lim.pids is not None:
            write_file(self._need("pids", "pids.max"), "max" if lim.pids < 0 else lim.pids)
        if lim.blkio_weight is not None:
            if os.path.exists(self._f("io.bfq.weight")):      # BFQ takes the v1 scale
                write_file(self._f("io.bfq.weight"), lim.blkio_weight)
            elif os.path.exists(self._f("io.weight")):
                write_file(self._f("io.weight"), blkio_to_io_weight(lim.blkio_weight))
        if lim.devices is not None:
            devices_bpf.set_device_rules(self.dir, lim.devices)

    def _swap_value(self, lim: Limits) -> str | int:
        """Docker's swap is memory+swap; memory.swap.max is the swap alone."""
        if lim.swap == -1:
            return "max"
        memory = lim.memory
        if memory is None:       # update of the swap alone: against the current limit
            memory = read_int(self._f("memory.max"), -1, max_value=-1)
        if memory < 0:
            raise InvalidArgument("a memory+swap limit needs a memory limit")
        if lim.swap < memory:
            raise InvalidArgument("memory+swap limit must be at least the memory limit")
        return lim.swap - memory

    def _set_cpu_max(self, quota: int | None, period: int | None) -> None:
        """cpu.max is "quota period" in one file; keep the half that is not being changed."""
        path = self._need("cpu", "cpu.max")
        if quota is None:
            quota_text = (read_text(path).split() or ["max"])[0]
        else:
            quota_text = "max" if quota < 0 else str(quota)
        write_file(path, quota_text if period is None else f"{quota_text} {period}")

    # -- freezer
    def _frozen_flag(self) -> int:
        return read_keyed(self._f("cgroup.events")).get("frozen", 0)

    def _set_frozen(self, frozen: bool, timeout: float | None) -> None:
        write_file(self._need("freezer", "cgroup.freeze"), int(frozen))
        if not poll_until(lambda: self._frozen_flag() == int(frozen),
                          self.freeze_timeout if timeout is None else timeout):
            if frozen:
                write_file(self._f("cgroup.freeze"), 0)
            state = "frozen" if frozen else "thawed"
            raise RuntimeFailure(f"cgroup {self.path} was not {state} in time")

    def freeze(self, timeout: float | None = None) -> None:
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float | None = None) -> None:
        self._set_frozen(False, timeout)

    def is_frozen(self) -> bool:
        return self._frozen_flag() == 1

    def kill_all(self, sig: int) -> None:
        """cgroup.kill (Linux 5.14) kills the whole subtree at once, frozen or not."""
        if sig == signal.SIGKILL and os.path.exists(self._f("cgroup.kill")):
            write_file(self._f("cgroup.kill"), 1)
            return
        super().kill_all(sig)

    # -- accounting
    def stats(self) -> dict:
        cpu = read_keyed(self._f("cpu.stat"))
        mem = read_keyed(self._f("memory.stat"))
        return {
            "cpu": {
                "usage_total": cpu.get("usage_usec", 0) * 1000,
                "usage_percpu": [],          # v2 does not account per CPU
                "usage_user": cpu.get("user_usec", 0) * 1000,
                "usage_system": cpu.get("system_usec", 0) * 1000,
                "throttling": {"periods": cpu.get("nr_periods", 0),
                               "throttled_periods": cpu.get("nr_throttled", 0),
                               "throttled_time": cpu.get("throttled_usec", 0) * 1000},
            },
            "memory": {
                "usage": read_int(self._f("memory.current")),
                "max_usage": read_int(self._f("memory.peak")),
                "limit": read_int(self._f("memory.max"), MEMORY_UNLIMITED,
                                  max_value=MEMORY_UNLIMITED),
                "cache": mem.get("file", 0),
                "stats": mem,
            },
            "pids": {"current": read_int(self._f("pids.current")),
                     "limit": read_int(self._f("pids.max"), 0, max_value=0)},
            "blkio": {"io_service_bytes_recursive": parse_io_stat(read_text(self._f("io.stat")))},
        }

    def oom_kill_count(self) -> int:
        return read_keyed(self._f("memory.events")).get("oom_kill", 0)
