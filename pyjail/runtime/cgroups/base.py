"""The cgroup manager interface, the host's cgroup layout, and the parts v1 and v2 share.

Validation lives here so both versions reject exactly the same inputs before anything
is created, and the kill/destroy loops live here because they only need "which
directories, which pids", which each version answers.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from pyjail.errors import InvalidArgument, PyjailError, RuntimeFailure

# Every controller a v1 hierarchy can carry; named hierarchies ("name=systemd") come on top.
V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
})
# The ones whose presence on a v1 mount means the host manages resources through v1
# (a lone net_cls or name=systemd v1 mount next to a cgroup2 root is still a v2 host).
V1_RESOURCE_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
})

_PAGE = os.sysconf("SC_PAGE_SIZE")
# What v1 reports for "no memory limit" (PAGE_COUNTER_MAX pages); v2's "max" maps to it too,
# so callers see one sentinel whichever version the host runs.
MEMORY_UNLIMITED = (2**63 - 1) // _PAGE * _PAGE

MIN_MEMORY = 6 * 1024 * 1024          # Docker's floor for memory limits and reservations
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
MIN_CFS_US, MAX_CFS_PERIOD_US = 1000, 1_000_000
MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT = 10, 1000


# ---------------------------------------------------------------------------- layout

@dataclass
class CgroupLayout:
    """Where the host mounts its cgroup filesystems.

    ``version`` is 1 when resource controllers live on v1 hierarchies (legacy or hybrid),
    2 when everything is on the cgroup2 mount. ``unified`` is the cgroup2 mount point (the
    whole tree on v2, the controller-less tracking tree on hybrid). ``v1_mounts`` maps each
    v1 controller (and "name=..." hierarchy) to its mount point; co-mounted controllers such
    as ``cpu,cpuacct`` map to the same directory.
    """

    version: int
    unified: str | None = None
    v1_mounts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fake_v1(cls, root: str, controllers: tuple[str, ...] = (
            "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"),
    ) -> CgroupLayout:
        """A v1 layout with each controller at ``root/<controller>`` (for fake trees in tests)."""
        return cls(1, None, {c: os.path.join(root, c) for c in controllers})

    def v1_hierarchies(self) -> list[tuple[str, frozenset[str]]]:
        """Distinct v1 mount points with the controllers each carries, in a stable order."""
        groups: dict[str, set[str]] = {}
        for ctrl, mnt in sorted(self.v1_mounts.items()):
            groups.setdefault(mnt, set()).add(ctrl)
        return [(mnt, frozenset(ctrls)) for mnt, ctrls in groups.items()]


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def detect_layout(mountinfo: str | None = None) -> CgroupLayout:
    """Read which cgroup version the host runs and where each controller is mounted.

    A hierarchy mounted several times (bind mounts, a container's view of a subtree) is
    taken at the mount that shows its root ("/"), else at the first one listed.
    """
    if mountinfo is None:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            mountinfo = f.read()
    v1: dict[str, tuple[str, bool]] = {}
    unified: tuple[str, bool] | None = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        at_root = _unescape(fields[3]) == "/"
        mnt = _unescape(fields[4])
        if tail[0] == "cgroup2":
            if unified is None or (at_root and not unified[1]):
                unified = (mnt, at_root)
        elif tail[0] == "cgroup":
            opts = tail[2].split(",") if len(tail) > 2 else []
            for opt in opts:
                if opt in V1_CONTROLLERS or opt.startswith("name="):
                    old = v1.get(opt)
                    if old is None or (at_root and not old[1]):
                        v1[opt] = (mnt, at_root)
    mounts = {ctrl: mnt for ctrl, (mnt, _) in v1.items()}
    unified_mnt = unified[0] if unified else None
    if V1_RESOURCE_CONTROLLERS & mounts.keys():
        return CgroupLayout(1, unified_mnt, mounts)
    if unified_mnt is not None:
        return CgroupLayout(2, unified_mnt, {})
    raise RuntimeFailure("no cgroup filesystem is mounted (see /proc/self/mountinfo)")


# ---------------------------------------------------------------------------- files

def read_text(path: str, default: str = "") -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return default


def read_int(path: str, default: int = 0, max_value: int | None = None) -> int:
    """An integer file; "max" (v2's unlimited) becomes ``max_value`` or ``default``."""
    text = read_text(path)
    if text == "max":
        return default if max_value is None else max_value
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return default


def read_keyed(path: str) -> dict[str, int]:
    """A flat "key value" file (memory.stat, cpu.stat, memory.events ...) as ints."""
    out: dict[str, int] = {}
    for line in read_text(path).splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def write_file(path: str, value: str | int) -> None:
    """One write(2), like the kernel expects; no O_CREAT, a missing file is an error."""
    data = str(value).encode()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    except OSError as e:
        raise OSError(e.errno, f"write {value!r}: {e.strerror}", path) from None
    finally:
        os.close(fd)


def clean_path(path: str) -> str:
    """Normalise a cgroup path ("/pyjail/<id>"); refuse the root and anything with "..".

    The root check matters: destroy() would otherwise try to empty the whole hierarchy.
    """
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"cgroup path must be absolute: {path!r}")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"cgroup path must not contain . or ..: {path!r}")
    if not parts:
        raise InvalidArgument("cgroup path must not be the hierarchy root")
    return "/" + "/".join(parts)


# ---------------------------------------------------------------------------- validation

@dataclass(frozen=True)
class DeviceRule:
    """One OCI device rule, normalised: type "a"/"b"/"c", -1 for a wildcard number."""

    allow: bool
    type: str = "a"
    major: int = -1
    minor: int = -1
    access: str = "rwm"

    def v1_line(self) -> str:
        """The devices.allow / devices.deny syntax ("c 1:3 rwm", "a")."""
        if self.type == "a":
            return "a"
        major = "*" if self.major < 0 else str(self.major)
        minor = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


@dataclass
class Limits:
    """linux.resources after validation. None means "leave as is"; -1 means unlimited."""

    memory: int | None = None
    reservation: int | None = None
    swap: int | None = None            # memory + swap, Docker's MemorySwap
    shares: int | None = None
    quota: int | None = None           # µs per period
    period: int | None = None          # µs
    cpus: str | None = None
    mems: str | None = None
    pids: int | None = None
    blkio_weight: int | None = None
    devices: list[DeviceRule] | None = None


def _int(section: dict, key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{where}.{key} must be an integer, not {value!r}")
    return value


def _section(resources: dict, key: str) -> dict:
    value = resources.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"resources.{key} must be an object")
    return value


def _online(path: str, fallback: str) -> set[int]:
    return parse_cpu_list(read_text(path, fallback) or fallback)


def parse_cpu_list(text: str) -> set[int]:
    """"0-3,5" -> {0, 1, 2, 3, 5}; raises InvalidArgument on bad syntax."""
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", text):
        raise InvalidArgument(f"invalid cpuset list {text!r}")
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise InvalidArgument(f"invalid cpuset range {part!r}")
        out.update(range(first, last + 1))
    return out


def _cpuset(cpu: dict, key: str, online_file: str) -> str | None:
    value = cpu.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"cpu.{key} must be a string like '0-3,5'")
    wanted = parse_cpu_list(value.strip())
    missing = wanted - _online(online_file, "0")
    if missing:
        what = "CPUs" if key == "cpus" else "memory nodes"
        raise InvalidArgument(f"requested {what} are not available: {sorted(missing)}")
    return value.strip()


def _devices(raw: object) -> list[DeviceRule] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidArgument("resources.devices must be a list")
    rules = []
    for i, d in enumerate(raw):
        if not isinstance(d, dict) or not isinstance(d.get("allow"), bool):
            raise InvalidArgument(f"devices[{i}] needs a boolean 'allow'")
        dtype = d.get("type") or "a"
        if dtype not in ("a", "b", "c"):
            raise InvalidArgument(f"devices[{i}].type must be a, b or c, not {dtype!r}")
        nums = []
        for key in ("major", "minor"):
            n = _int(d, key, f"devices[{i}]")
            if n is not None and (n < -1 or n >= 1 << 31):
                raise InvalidArgument(f"devices[{i}].{key} out of range: {n}")
            nums.append(-1 if n is None else n)
        access = d.get("access") or "rwm"
        if not isinstance(access, str) or set(access) - set("rwm"):
            raise InvalidArgument(f"devices[{i}].access must be made of r, w, m: {access!r}")
        access = "".join(c for c in "rwm" if c in access)
        rules.append(DeviceRule(d["allow"], dtype, nums[0], nums[1], access))
    return rules


def validate_resources(resources: dict | None, update: bool = False) -> Limits:
    """Check OCI linux.resources and normalise them (0 = unset, as in Docker's API).

    ``update`` relaxes the rules that depend on the current state (swap without memory).
    """
    resources = resources or {}
    if not isinstance(resources, dict):
        raise InvalidArgument("resources must be an object")
    lim = Limits()
    mem = _section(resources, "memory")
    lim.memory = _int(mem, "limit", "memory") or None
    lim.reservation = _int(mem, "reservation", "memory") or None
    lim.swap = _int(mem, "swap", "memory") or None
    if lim.memory is not None and (lim.memory < -1 or 0 < lim.memory < MIN_MEMORY):
        raise InvalidArgument(f"memory limit must be -1 or at least 6MB, not {lim.memory}")
    if lim.reservation is not None and lim.reservation < MIN_MEMORY:
        raise InvalidArgument(f"memory reservation must be at least 6MB, not {lim.reservation}")
    if lim.swap is not None and lim.swap < -1:
        raise InvalidArgument(f"memory swap must be -1 or positive, not {lim.swap}")
    if lim.memory and lim.memory > 0 and lim.reservation and lim.reservation > lim.memory:
        raise InvalidArgument("memory limit can not be less than memory reservation")
    if lim.swap is not None and lim.swap > 0:
        if lim.memory is None and not update:
            raise InvalidArgument("a memory limit is needed with a memory+swap limit")
        if lim.memory == -1 or (lim.memory and lim.swap < lim.memory):
            raise InvalidArgument("memory+swap limit must be at least the memory limit")
    if lim.memory == -1 and lim.swap is None:
        lim.swap = -1       # unlimited memory with a finite memsw would be refused (runc does this)

    cpu = _section(resources, "cpu")
    lim.shares = _int(cpu, "shares", "cpu") or None
    lim.quota = _int(cpu, "quota", "cpu") or None
    lim.period = _int(cpu, "period", "cpu") or None
    if lim.shares is not None and not MIN_CPU_SHARES <= lim.shares <= MAX_CPU_SHARES:
        raise InvalidArgument(f"cpu shares must be in [2, 262144], not {lim.shares}")
    if lim.quota is not None and lim.quota != -1 and lim.quota < MIN_CFS_US:
        raise InvalidArgument(f"cpu quota must be -1 or at least 1000µs, not {lim.quota}")
    if lim.period is not None and not MIN_CFS_US <= lim.period <= MAX_CFS_PERIOD_US:
        raise InvalidArgument(f"cpu period must be in [1000, 1000000]µs, not {lim.period}")
    lim.cpus = _cpuset(cpu, "cpus", "/sys/devices/system/cpu/online")
    lim.mems = _cpuset(cpu, "mems", "/sys/devices/system/node/online")

    pids = _int(_section(resources, "pids"), "limit", "pids")
    if pids is not None:
        if pids < -1:
            raise InvalidArgument(f"pids limit must be -1, 0 or positive, not {pids}")
        lim.pids = -1 if pids <= 0 else pids

    weight = _int(_section(resources, "blockIO"), "weight", "blockIO") or None
    if weight is not None and not MIN_BLKIO_WEIGHT <= weight <= MAX_BLKIO_WEIGHT:
        raise InvalidArgument(f"blkio weight must be in [10, 1000], not {weight}")
    lim.blkio_weight = weight
    lim.devices = _devices(resources.get("devices"))
    return lim


# ---------------------------------------------------------------------------- manager

def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.01,
               tick: Callable[[], None] | None = None) -> bool:
    """Call ``check`` until it is true or ``timeout`` passes; ``tick`` runs between tries."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        if tick is not None:
            tick()
        time.sleep(interval)


class CgroupManager(ABC):
    """One container's cgroup, whatever the host's cgroup version."""

    path: str
    freeze_timeout: float = 10.0     # seconds to wait for FROZEN / THAWED
    destroy_timeout: float = 10.0    # seconds to wait for the kernel to empty the cgroup

    # -- what each version provides
    @abstractmethod
    def dirs(self) -> list[str]:
        """Every directory of this cgroup (one per v1 hierarchy, one on v2)."""

    @abstractmethod
    def create(self, resources: dict) -> None: ...

    @abstractmethod
    def update(self, resources: dict) -> None: ...

    @abstractmethod
    def freeze(self, timeout: float | None = None) -> None: ...

    @abstractmethod
    def thaw(self, timeout: float | None = None) -> None: ...

    @abstractmethod
    def is_frozen(self) -> bool: ...

    @abstractmethod
    def stats(self) -> dict: ...

    @abstractmethod
    def oom_kill_count(self) -> int: ...

    # -- shared behaviour
    def _mkdir(self, path: str) -> None:
        """mkdir one cgroup level; a hook so a fake tree in tests can add the kernel's files."""
        os.mkdir(path, 0o755)

    def procs_files(self) -> list[str]:
        """cgroup.procs of every existing directory; a new child writes "0" into each."""
        return [os.path.join(d, "cgroup.procs") for d in self.dirs() if os.path.isdir(d)]

    def add_process(self, pid: int) -> None:
        """Move ``pid`` (its whole thread group) into the cgroup in every hierarchy."""
        for procs in self.procs_files():
            try:
                write_file(procs, pid)
            except OSError as e:
                raise RuntimeFailure(f"cannot move pid {pid} into {procs}: {e.strerror}") from e

    def pids(self) -> list[int]:
        """Every process in the cgroup, including nested cgroups the container made."""
        found: set[int] = set()
        for top in self.dirs():
            for root, _dirs, files in os.walk(top):
                if "cgroup.procs" in files:
                    for line in read_text(os.path.join(root, "cgroup.procs")).split():
                        # pid 0 = a process outside our pid namespace; never os.kill(0, ...)
                        if line.isdigit() and int(line) > 0:
                            found.add(int(line))
        return sorted(found)

    def _signal(self, sig: int) -> int:
        count = 0
        for pid in self.pids():
            try:
                os.kill(pid, sig)
                count += 1
            except ProcessLookupError:
                pass
        return count

    def kill_all(self, sig: int) -> None:
        """Signal every process in the cgroup.

        For SIGKILL the cgroup is frozen while the pids are listed and signalled (nothing
        can fork in between), then thawed so the kill is delivered (a v1-frozen task never
        dies). Other signals stay pending in a frozen cgroup until thaw().
        """
        if not any(os.path.isdir(d) for d in self.dirs()):
            return
        if sig != signal.SIGKILL:
            self._signal(sig)
            return
        try:
            self.freeze(timeout=1.0)
        except (PyjailError, OSError):
            pass            # no freezer, or a task stuck in D state: signal anyway
        try:
            self._signal(sig)
        finally:
            try:
                self._thaw_for_kill(timeout=1.0)
            except (PyjailError, OSError):
                pass

    def _thaw_for_kill(self, timeout: float) -> None:
        """Let a pending SIGKILL be delivered; v1 overrides this to thaw nested cgroups too."""
        self.thaw(timeout=timeout)

    def destroy(self) -> None:
        """Kill what is left and remove every directory, deepest first. Idempotent."""
        if not any(os.path.isdir(d) for d in self.dirs()):
            return
        self.kill_all(signal.SIGKILL)
        deadline = time.monotonic() + self.destroy_timeout
        for top in self.dirs():
            if not os.path.isdir(top):
                continue
            nested = [os.path.join(r, d) for r, ds, _ in os.walk(top, topdown=False) for d in ds]
            for d in [*nested, top]:
                self._rmdir(d, deadline)

    def _rmdir(self, path: str, deadline: float) -> None:
        """rmdir, retrying on EBUSY while the kernel reaps the killed tasks."""
        while True:
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    raise RuntimeFailure(f"cannot remove cgroup {path}: {e.strerror}") from e
            self._signal(signal.SIGKILL)
            time.sleep(0.01)
