"""cgroup v1: one directory per hierarchy (cpu, memory, pids, ...), each with its own files.

On a hybrid host the container also joins the controller-less cgroup2 tree, as runc and
systemd do, so tools that look there find it; that part is best effort.
"""

from __future__ import annotations

import errno
import os

from pyjail.errors import PyjailError, RuntimeFailure

from .base import (
    MEMORY_UNLIMITED,
    V1_CONTROLLERS,
    CgroupLayout,
    CgroupManager,
    DeviceRule,
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

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_BLKIO_BYTES = (   # CFQ's files, else BFQ's, else the throttle layer's (counts all I/O)
    "blkio.io_service_bytes_recursive",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
)


def parse_blkio(text: str) -> list[dict]:
    """"8:0 Read 4096" lines -> Docker's BlkioStatEntry dicts (the "Total" line is dropped)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            out.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
        except ValueError:
            continue
    return out


class CgroupV1Manager(CgroupManager):
    """A container's cgroup on v1 hierarchies.

    ``layout`` (or ``root``: every controller at ``root/<controller>``) points the manager at
    a fake tree in tests; by default the host's mounts are read from /proc/self/mountinfo.
    """

    def __init__(self, path: str, layout: CgroupLayout | None = None,
                 root: str | None = None) -> None:
        self.path = clean_path(path)
        if layout is None:
            layout = CgroupLayout.fake_v1(root) if root else detect_layout()
        self.layout = layout
        self._rel = self.path.lstrip("/")

    # -- where things are
    def _hierarchies(self) -> list[tuple[str, bool]]:
        """(mount point, required): controller hierarchies are required, the rest best effort."""
        out = [(mnt, bool(ctrls & V1_CONTROLLERS)) for mnt, ctrls in self.layout.v1_hierarchies()]
        if self.layout.unified:
            out.append((self.layout.unified, False))
        return out

    def dirs(self) -> list[str]:
        return [os.path.join(mnt, self._rel) for mnt, _ in self._hierarchies()]

    def controller_dir(self, controller: str) -> str | None:
        mnt = self.layout.v1_mounts.get(controller)
        return None if mnt is None else os.path.join(mnt, self._rel)

    def _file(self, controller: str, name: str) -> str | None:
        d = self.controller_dir(controller)
        return None if d is None else os.path.join(d, name)

    def _need(self, controller: str, name: str) -> str:
        path = self._file(controller, name)
        if path is None or not os.path.exists(path):
            raise RuntimeFailure(f"the {controller} cgroup controller is not available ({name})")
        return path

    def _int(self, controller: str, name: str, default: int = 0) -> int:
        path = self._file(controller, name)
        return default if path is None else read_int(path, default)

    # -- lifecycle
    def create(self, resources: dict) -> None:
        lim = validate_resources(resources)
        made: list[str] = []
        try:
            for mnt, required in self._hierarchies():
                try:
                    self._make(mnt, made)
                except OSError:
                    if required:
                        raise
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

    def _make(self, mnt: str, made: list[str]) -> None:
        """mkdir each level; on cpuset, fill the empty cpus/mems a new v1 cpuset starts with."""
        is_cpuset = os.path.exists(os.path.join(mnt, "cpuset.cpus"))
        cur = mnt
        for part in self._rel.split("/"):
            parent, cur = cur, os.path.join(cur, part)
            try:
                self._mkdir(cur)
                made.append(cur)
            except FileExistsError:
                pass
            if is_cpuset:
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not read_text(os.path.join(cur, name)):
                        write_file(os.path.join(cur, name), read_text(os.path.join(parent, name)))

    def update(self, resources: dict) -> None:
        lim = validate_resources(resources, update=True)
        try:
            self._apply(lim)
        except OSError as e:
            raise RuntimeFailure(f"cannot update cgroup {self.path}: {e}") from e

    def _apply(self, lim: Limits) -> None:
        if lim.memory is not None or lim.swap is not None or lim.reservation is not None:
            self._set_memory(lim)
        if lim.shares is not None:
            write_file(self._need("cpu", "cpu.shares"), lim.shares)
        if lim.quota is not None or lim.period is not None:
            self._set_cfs(lim.quota, lim.period)
        if lim.cpus is not None:
            write_file(self._need("cpuset", "cpuset.cpus"), lim.cpus)
        if lim.mems is not None:
            write_file(self._need("cpuset", "cpuset.mems"), lim.mems)
        if lim.pids is not None:
            write_file(self._need("pids", "pids.max"), "max" if lim.pids < 0 else lim.pids)
        if lim.blkio_weight is not None:
            # blkio.weight went with CFQ; BFQ has its own file; neither: ignored, like Docker
            for name in ("blkio.weight", "blkio.bfq.weight"):
                path = self._file("blkio", name)
                if path and os.path.exists(path):
                    write_file(path, lim.blkio_weight)
                    break
        if lim.devices is not None:
            self._set_devices(lim.devices)

    def _set_memory(self, lim: Limits) -> None:
        """The kernel keeps limit <= memsw at every step, so the write order depends on both."""
        limit = self._need("memory", "memory.limit_in_bytes")
        memsw = limit.replace("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        swap = lim.swap if os.path.exists(memsw) else None     # no swap accounting: ignored
        if lim.memory is not None and swap is not None:
            if swap == -1 or read_int(limit) < swap:
                write_file(memsw, swap)
                write_file(limit, lim.memory)
            else:
                write_file(limit, lim.memory)
                write_file(memsw, swap)
        elif lim.memory is not None:
            write_file(limit, lim.memory)
        elif swap is not None:
            write_file(memsw, swap)
        if lim.reservation is not None:
            write_file(self._need("memory", "memory.soft_limit_in_bytes"), lim.reservation)

    def _set_cfs(self, quota: int | None, period: int | None) -> None:
        quota_f = self._need("cpu", "cpu.cfs_quota_us")
        period_f = self._need("cpu", "cpu.cfs_period_us")
        if period is None or quota is None:
            write_file(period_f if quota is None else quota_f, period if quota is None else quota)
            return
        try:
            write_file(period_f, period)
            write_file(quota_f, quota)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            write_file(quota_f, quota)
            write_file(period_f, period)

    def _set_devices(self, rules: list[DeviceRule]) -> None:
        """Deny everything, then replay the rules in order (the OCI baseline is deny-all)."""
        deny = self._need("devices", "devices.deny")
        allow = self._need("devices", "devices.allow")
        write_file(deny, "a")
        for rule in rules:
            write_file(allow if rule.allow else deny, rule.v1_line())

    # -- freezer
    def _set_freezer(self, target: str, timeout: float | None) -> None:
        state = self._need("freezer", "freezer.state")
        write_file(state, target)
        tries = [0]

        def retry() -> None:        # a FREEZING cgroup needs the write repeated to finish
            tries[0] += 1
            if tries[0] % 10 == 0:
                write_file(state, target)

        if not poll_until(lambda: read_text(state) == target,
                     self.freeze_timeout if timeout is None else timeout, tick=retry):
            if target == "FROZEN":
                write_file(state, "THAWED")
            raise RuntimeFailure(f"cgroup {self.path} did not reach {target} in time")

    def freeze(self, timeout: float | None = None) -> None:
        self._set_freezer("FROZEN", timeout)

    def thaw(self, timeout: float | None = None) -> None:
        self._set_freezer("THAWED", timeout)

    def _thaw_for_kill(self, timeout: float) -> None:
        """A nested v1 cgroup frozen on its own stays FROZEN when its parent thaws: thaw all."""
        top = self.controller_dir("freezer")
        if top and os.path.isdir(top):
            for root, _dirs, files in os.walk(top, topdown=False):
                if root != top and "freezer.state" in files:
                    try:
                        write_file(os.path.join(root, "freezer.state"), "THAWED")
                    except OSError:
                        pass
        self.thaw(timeout=timeout)

    def is_frozen(self) -> bool:
        path = self._file("freezer", "freezer.state")
        return path is not None and read_text(path) == "FROZEN"

    # -- accounting
    def stats(self) -> dict:
        acct = self.controller_dir("cpuacct")
        percpu: list[int] = []
        if acct:
            percpu = [int(x) for x in read_text(os.path.join(acct, "cpuacct.usage_percpu")).split()
                      if x.isdigit()]
        if acct and os.path.exists(os.path.join(acct, "cpuacct.usage_user")):
            user = self._int("cpuacct", "cpuacct.usage_user")
            system = self._int("cpuacct", "cpuacct.usage_sys")
        else:    # older kernels: USER_HZ ticks only
            ticks = read_keyed(os.path.join(acct, "cpuacct.stat")) if acct else {}
            user = ticks.get("user", 0) * 1_000_000_000 // _CLK_TCK
            system = ticks.get("system", 0) * 1_000_000_000 // _CLK_TCK
        cpu_dir = self.controller_dir("cpu")
        thr = read_keyed(os.path.join(cpu_dir, "cpu.stat")) if cpu_dir else {}
        mem_dir = self.controller_dir("memory")
        mem = read_keyed(os.path.join(mem_dir, "memory.stat")) if mem_dir else {}
        blkio: list[dict] = []
        blk_dir = self.controller_dir("blkio")
        for name in _BLKIO_BYTES if blk_dir else ():
            blkio = parse_blkio(read_text(os.path.join(blk_dir, name)))
            if blkio:
                break
        pids_max = self._file("pids", "pids.max")
        return {
            "cpu": {
                "usage_total": self._int("cpuacct", "cpuacct.usage"),
                "usage_percpu": percpu, "usage_user": user, "usage_system": system,
                "throttling": {"periods": thr.get("nr_periods", 0),
                               "throttled_periods": thr.get("nr_throttled", 0),
                               "throttled_time": thr.get("throttled_time", 0)},
            },
            "memory": {
                "usage": self._int("memory", "memory.usage_in_bytes"),
                "max_usage": self._int("memory", "memory.max_usage_in_bytes"),
                "limit": self._int("memory", "memory.limit_in_bytes", MEMORY_UNLIMITED),
                "cache": mem.get("total_cache", mem.get("cache", 0)),
                "stats": mem,
            },
            "pids": {"current": self._int("pids", "pids.current"),
                     "limit": read_int(pids_max, 0, max_value=0) if pids_max else 0},
            "blkio": {"io_service_bytes_recursive": blkio},
        }

    def oom_kill_count(self) -> int:
        path = self._file("memory", "memory.oom_control")
        return read_keyed(path).get("oom_kill", 0) if path else 0
