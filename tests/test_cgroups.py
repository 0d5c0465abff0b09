"""Cgroup managers (pyjail.runtime.cgroups).

Three kinds of tests:

* v1 tests run for real on a cgroup v1 / hybrid host as root, under
  "/pyjail-test-<random>/..." in every hierarchy so nothing collides with a real engine;
  forked children join the cgroup the way the runtime's child does (writing "0" into each
  of procs_files()).
* The v2 manager's resource handling is unit-tested against a fake cgroupfs tree in a tmp
  directory, because the development host has no v2 controllers (its cgroup2 mount at
  /sys/fs/cgroup/unified carries only hugetlb). The fake "kernel" is a manager subclass
  whose mkdir hook lays out the interface files the kernel would.
* What v2 does without controllers (the eBPF device filter, cgroup.freeze, cgroup.kill,
  cgroup.procs) is tested for real on the host's cgroup2 mount, whatever it is.

Every test removes what it made, even on failure: fixtures with finalizers destroy the
test's cgroups in every hierarchy, and forked children are killed by pid and reaped.
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from pyjail.errors import InvalidArgument, RuntimeFailure
from pyjail.runtime.cgroups import (
    MEMORY_UNLIMITED,
    CgroupV1Manager,
    CgroupV2Manager,
    DeviceRule,
    detect_layout,
    devices_bpf,
    manager_for,
    v2,
    validate_resources,
)
from pyjail.runtime.cgroups.base import read_text

MiB = 1024 * 1024
RUN = f"pyjail-test-{secrets.token_hex(4)}"     # every real cgroup of this run starts so

try:
    HOST = detect_layout()
except RuntimeFailure:
    HOST = None
IS_ROOT = os.geteuid() == 0
needs_v1 = pytest.mark.skipif(
    not (IS_ROOT and HOST and HOST.version == 1), reason="needs root on a cgroup v1/hybrid host")
needs_cgroup2 = pytest.mark.skipif(
    not (IS_ROOT and HOST and HOST.unified), reason="needs root and a cgroup2 mount")

DENY_ALL = {"allow": False, "access": "rwm"}
NULL_ONLY = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]


# ---------------------------------------------------------------------------- helpers

def _host_roots() -> list[str]:
    if HOST is None:
        return []
    return sorted(set(HOST.v1_mounts.values()) | ({HOST.unified} if HOST.unified else set()))


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers() -> Iterator[None]:
    """After the run, no cgroup of this run may be left anywhere (and none is kept)."""
    yield
    left = [p for root in _host_roots() for p in glob.glob(os.path.join(root, RUN + "*"))]
    for path in left:
        manager_for("/" + os.path.basename(path), HOST).destroy()
    assert not left, f"cgroups left behind: {left}"


@pytest.fixture
def parent(children: Children) -> Iterator[str]:
    """A unique parent cgroup path; the finalizer destroys it in every hierarchy.

    It depends on ``children`` so it is torn down first: destroy() thaws and kills what
    is inside, then the children can be reaped (a v1-frozen child would block waitpid).
    """
    path = f"/{RUN}-{secrets.token_hex(3)}"
    yield path
    if HOST is not None:
        manager_for(path, HOST).destroy()
        for root in _host_roots():
            assert not os.path.exists(os.path.join(root, path.lstrip("/")))


def join(procs_files: list[str]) -> None:
    """What the runtime's fresh child does: write "0" into each cgroup.procs."""
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


class Children:
    """Forked children of this test: each runs ``body`` and exits with its return value."""

    def __init__(self) -> None:
        self.live: set[int] = set()

    def fork(self, body: Callable[[], int | None]) -> int:
        pid = os.fork()
        if pid == 0:                      # never return into pytest
            code = 112
            try:
                code = body() or 0
            except BaseException:  # noqa: BLE001 - report anything, then _exit below
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                os._exit(code)
        self.live.add(pid)
        return pid

    def wait(self, pid: int, timeout: float = 30.0) -> int:
        """The raw wait status of ``pid``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.live.discard(pid)
                return status
            time.sleep(0.01)
        raise AssertionError(f"child {pid} still running after {timeout}s")

    def cleanup(self) -> None:
        """SIGKILL and reap every child still live; never hang (a frozen one cannot die)."""
        for pid in list(self.live):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stuck = []
        for pid in list(self.live):
            try:
                self.wait(pid, timeout=10)
            except AssertionError:
                stuck.append(pid)
        assert not stuck, f"children {stuck} could not be reaped"


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    yield kids
    kids.cleanup()


def join_and_wait(files: list[str]) -> Callable[[], int]:
    """A child body: join, then sleep until signalled."""
    def body() -> int:
        join(files)
        signal.pause()
        return 0
    return body


def exit_code(status: int) -> int:
    assert os.WIFEXITED(status), f"child died of signal {os.WTERMSIG(status)}"
    return os.WEXITSTATUS(status)


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------------------- layout

PURE_V2 = """\
22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
HYBRID_COMOUNTED = """\
25 22 0:23 / /sys/fs/cgroup ro shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw shared:10 - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct
32 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw shared:15 - cgroup cgroup rw,net_cls,net_prio
33 25 0:31 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory
"""


def test_detect_layout_pure_v2() -> None:
    layout = detect_layout(PURE_V2)
    assert layout.version == 2 and layout.unified == "/sys/fs/cgroup" and not layout.v1_mounts
    assert isinstance(manager_for("/pyjail/x", layout), CgroupV2Manager)


def test_detect_layout_hybrid_comounted() -> None:
    layout = detect_layout(HYBRID_COMOUNTED)
    assert layout.version == 1 and layout.unified == "/sys/fs/cgroup/unified"
    assert layout.v1_mounts["cpu"] == layout.v1_mounts["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.v1_mounts["name=systemd"] == "/sys/fs/cgroup/systemd"
    mgr = manager_for("/pyjail/x", layout)
    assert isinstance(mgr, CgroupV1Manager)
    assert mgr.controller_dir("cpu") == mgr.controller_dir("cpuacct")
    assert sorted(mgr.dirs()) == sorted([   # one directory per hierarchy, not per controller
        "/sys/fs/cgroup/cpu,cpuacct/pyjail/x", "/sys/fs/cgroup/net_cls,net_prio/pyjail/x",
        "/sys/fs/cgroup/memory/pyjail/x", "/sys/fs/cgroup/systemd/pyjail/x",
        "/sys/fs/cgroup/unified/pyjail/x"])


def test_detect_layout_prefers_root_mount_and_unescapes() -> None:
    text = (
        "40 25 0:31 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "41 25 0:31 / /mnt/my\\040cgroups/memory rw - cgroup cgroup rw,memory\n"
    )
    assert detect_layout(text).v1_mounts["memory"] == "/mnt/my cgroups/memory"


def test_detect_layout_v2_with_stray_v1_mount() -> None:
    text = PURE_V2 + "50 30 0:40 / /run/net_cls rw - cgroup cgroup rw,net_cls\n"
    assert detect_layout(text).version == 2


def test_detect_layout_without_cgroups() -> None:
    with pytest.raises(RuntimeFailure):
        detect_layout("22 1 0:21 / /sys rw - sysfs sysfs rw\n")


@pytest.mark.skipif(HOST is None, reason="no cgroup filesystem")
def test_detect_layout_host() -> None:
    """The host's own layout: every mount point named in it exists."""
    for mnt in _host_roots():
        assert os.path.isdir(mnt)


# ---------------------------------------------------------------------------- validation

INVALID = [
    {"memory": {"limit": -5}},
    {"memory": {"limit": 1024}},                               # under Docker's 6MB floor
    {"memory": {"limit": 64 * MiB, "reservation": 128 * MiB}},
    {"memory": {"limit": 64 * MiB, "swap": 32 * MiB}},         # memory+swap below memory
    {"memory": {"swap": 64 * MiB}},                            # swap without memory
    {"memory": {"limit": "lots"}},
    {"cpu": {"shares": 1}},
    {"cpu": {"shares": 262145}},
    {"cpu": {"quota": 999}},
    {"cpu": {"quota": -2}},
    {"cpu": {"period": 999}},
    {"cpu": {"period": 1_000_001}},
    {"cpu": {"cpus": "0-"}},
    {"cpu": {"cpus": "3-1"}},
    {"cpu": {"cpus": "4096"}},                                  # not online
    {"pids": {"limit": -2}},
    {"blockIO": {"weight": 5}},
    {"blockIO": {"weight": 1001}},
    {"devices": [{"allow": True, "type": "x"}]},
    {"devices": [{"allow": True, "type": "c", "access": "rwx"}]},
    {"devices": [{"type": "c"}]},
    {"devices": [{"allow": True, "type": "c", "major": -3}]},
]


@pytest.mark.parametrize("resources", INVALID)
def test_validate_rejects(resources: dict) -> None:
    with pytest.raises(InvalidArgument):
        validate_resources(resources)


def test_validate_normalises() -> None:
    lim = validate_resources({
        "memory": {"limit": -1, "reservation": 0}, "cpu": {"shares": 0, "quota": -1},
        "pids": {"limit": 0},
        "devices": [{"allow": True, "type": "c", "major": 136, "minor": None, "access": "wr"}]})
    assert lim.memory == -1 and lim.swap == -1 and lim.reservation is None
    assert lim.shares is None and lim.quota == -1 and lim.pids == -1
    assert lim.devices == [DeviceRule(True, "c", 136, -1, "rw")]
    assert lim.devices[0].v1_line() == "c 136:* rw"
    assert DeviceRule(False).v1_line() == "a"


def test_clean_path() -> None:
    for bad in ("pyjail/x", "/", "/pyjail/../x", ""):
        with pytest.raises(InvalidArgument):
            CgroupV2Manager(bad, root="/nonexistent")
    assert CgroupV2Manager("//pyjail//x/", root="/r").dir == "/r/pyjail/x"


# ---------------------------------------------------------------------------- v1, for real

@needs_v1
@pytest.mark.parametrize("resources", INVALID)
def test_v1_invalid_creates_nothing(parent: str, resources: dict) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    with pytest.raises(InvalidArgument):
        mgr.create(resources)
    assert not any(os.path.exists(os.path.join(root, parent.lstrip("/")))
                   for root in _host_roots())


@needs_v1
def test_v1_create_writes_limits(parent: str) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 128 * MiB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 100}, "blockIO": {"weight": 500},
        "devices": NULL_ONLY + [{"allow": True, "type": "c", "major": 136, "access": "rw"}],
    })
    for d in mgr.dirs():
        assert os.path.isdir(d), d
    mem, cpu = mgr.controller_dir("memory"), mgr.controller_dir("cpu")
    assert read_text(f"{mem}/memory.limit_in_bytes") == str(64 * MiB)
    assert read_text(f"{mem}/memory.soft_limit_in_bytes") == str(32 * MiB)
    if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
        assert read_text(f"{mem}/memory.memsw.limit_in_bytes") == str(128 * MiB)
    assert read_text(f"{cpu}/cpu.shares") == "512"
    assert read_text(f"{cpu}/cpu.cfs_quota_us") == "50000"
    assert read_text(f"{cpu}/cpu.cfs_period_us") == "100000"
    cpuset = mgr.controller_dir("cpuset")
    assert read_text(f"{cpuset}/cpuset.cpus") == "0"
    assert read_text(f"{cpuset}/cpuset.mems") == "0"
    assert read_text(f"{os.path.dirname(cpuset)}/cpuset.cpus")      # the parent was filled too
    assert read_text(f"{mgr.controller_dir('pids')}/pids.max") == "100"
    blkio = mgr.controller_dir("blkio")
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if os.path.exists(f"{blkio}/{name}"):
            assert read_text(f"{blkio}/{name}").split()[-1] == "500"
            break
    listed = read_text(f"{mgr.controller_dir('devices')}/devices.list").splitlines()
    assert sorted(listed) == sorted(["c 1:3 rwm", "c 136:* rw"])


@needs_v1
def test_v1_cpuset_without_request_is_usable(parent: str, children: Children) -> None:
    """A v1 cpuset starts empty: create() must copy the parent's or nobody could join."""
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({})
    cpuset = mgr.controller_dir("cpuset")
    assert read_text(f"{cpuset}/cpuset.cpus") and read_text(f"{cpuset}/cpuset.mems")
    files = mgr.procs_files()
    assert exit_code(children.wait(children.fork(lambda: join(files)))) == 0


@needs_v1
def test_v1_update(parent: str) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}, "pids": {"limit": 10}})
    mem = mgr.controller_dir("memory")
    mgr.update({"memory": {"limit": 128 * MiB, "swap": 256 * MiB},
                "pids": {"limit": -1}, "cpu": {"shares": 2048, "quota": 20000}})
    assert read_text(f"{mem}/memory.limit_in_bytes") == str(128 * MiB)
    assert read_text(f"{mgr.controller_dir('pids')}/pids.max") == "max"
    assert read_text(f"{mgr.controller_dir('cpu')}/cpu.shares") == "2048"
    assert read_text(f"{mgr.controller_dir('cpu')}/cpu.cfs_quota_us") == "20000"
    mgr.update({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})      # shrink: other order
    assert read_text(f"{mem}/memory.limit_in_bytes") == str(32 * MiB)
    mgr.update({"memory": {"limit": -1}})                               # unlimited again
    assert int(read_text(f"{mem}/memory.limit_in_bytes")) >= MEMORY_UNLIMITED
    with pytest.raises(InvalidArgument):
        mgr.update({"cpu": {"quota": 10}})


@needs_v1
def test_v1_join_freeze_thaw_kill(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"memory": {"limit": 256 * MiB}})
    files = mgr.procs_files()
    assert len(files) == len(mgr.dirs())
    r, w = os.pipe()

    def ticker() -> None:
        join(files)
        os.close(r)
        while True:
            os.write(w, b".")
            time.sleep(0.01)

    pid = children.fork(ticker)
    os.close(w)
    os.set_blocking(r, False)

    def ticking() -> bool:
        try:
            return bool(os.read(r, 4096))
        except BlockingIOError:
            return False

    assert wait_for(ticking)
    assert mgr.pids() == [pid]
    mgr.freeze()
    assert mgr.is_frozen()
    assert read_text(f"{mgr.controller_dir('freezer')}/freezer.state") == "FROZEN"
    ticking()                           # drain what was written before the freeze
    time.sleep(0.3)
    assert not ticking(), "a frozen child kept running"
    mgr.thaw()
    assert not mgr.is_frozen()
    assert wait_for(ticking), "a thawed child did not resume"
    mgr.freeze()
    mgr.kill_all(signal.SIGKILL)        # must thaw, or the frozen child never dies
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert wait_for(lambda: mgr.pids() == [])
    os.close(r)


@needs_v1
def test_v1_kill_all_other_signal(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({})
    pid = children.fork(join_and_wait(mgr.procs_files()))
    assert wait_for(lambda: pid in mgr.pids())
    mgr.kill_all(signal.SIGTERM)
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


@needs_v1
def test_v1_add_process(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({})
    pid = children.fork(lambda: signal.pause())
    mgr.add_process(pid)
    assert mgr.pids() == [pid]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"memory:{parent}/c" in f.read()


@needs_v1
def test_v1_pids_limit(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"pids": {"limit": 5}})
    files = mgr.procs_files()

    def forker() -> int:
        join(files)
        r, w = os.pipe()
        kids = []
        for _ in range(10):
            try:
                kid = os.fork()
            except OSError as e:            # BlockingIOError: EAGAIN from the pids controller
                assert e.errno == errno.EAGAIN
                break
            if kid == 0:
                os.close(w)
                os.read(r, 1)               # until the parent closes its end
                os._exit(0)
            kids.append(kid)
        else:
            return 100                      # never refused
        os.close(w)
        for kid in kids:
            os.waitpid(kid, 0)
        return len(kids)

    forked = exit_code(children.wait(children.fork(forker)))
    assert 1 <= forked <= 4, f"forked {forked} times under pids.max=5"
    assert mgr.stats()["pids"]["limit"] == 5


@needs_v1
def test_v1_oom_kill(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    # swap equal to memory: no room to swap out, the OOM killer has to act
    mgr.create({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    mem = mgr.controller_dir("memory")
    if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
        assert read_text(f"{mem}/memory.memsw.limit_in_bytes") == str(16 * MiB)
    files = mgr.procs_files()

    def hog() -> int:
        join(files)
        data = b"\x01" * (64 * MiB)          # touches every page
        return len(data) and 0

    status = children.wait(children.fork(hog), timeout=60)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert mgr.oom_kill_count() >= 1


@needs_v1
def test_v1_devices_enforced(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"devices": NULL_ONLY})
    files = mgr.procs_files()

    def opener() -> int:
        join(files)
        with open("/dev/null", "rb"):
            pass
        try:
            open("/dev/zero", "rb").close()
        except PermissionError:
            return 0
        return 1

    assert exit_code(children.wait(children.fork(opener))) == 0


@needs_v1
def test_v1_stats(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"memory": {"limit": 128 * MiB}, "pids": {"limit": 50}})
    files = mgr.procs_files()

    def burn() -> int:
        join(files)
        junk = bytearray(8 * MiB)           # some memory use, well under the limit
        end = time.monotonic() + 0.2
        while time.monotonic() < end:       # and some CPU time
            junk[0] = (junk[0] + 1) % 256
        signal.pause()
        return 0

    pid = children.fork(burn)
    assert wait_for(lambda: pid in mgr.pids())
    time.sleep(0.4)
    stats = mgr.stats()
    cpu, mem = stats["cpu"], stats["memory"]
    assert set(cpu) == {"usage_total", "usage_percpu", "usage_user", "usage_system",
                        "throttling"}
    assert set(cpu["throttling"]) == {"periods", "throttled_periods", "throttled_time"}
    assert set(mem) == {"usage", "max_usage", "limit", "cache", "stats"}
    assert set(stats["pids"]) == {"current", "limit"}
    assert cpu["usage_total"] > 0 and sum(cpu["usage_percpu"]) > 0
    assert cpu["usage_user"] + cpu["usage_system"] > 0
    assert mem["usage"] > 0 and mem["max_usage"] >= mem["usage"]
    assert mem["limit"] == 128 * MiB
    assert stats["pids"] == {"current": 1, "limit": 50}
    numbers = [cpu["usage_total"], cpu["usage_user"], cpu["usage_system"], *cpu["usage_percpu"],
               *cpu["throttling"].values(), mem["usage"], mem["max_usage"], mem["cache"],
               *mem["stats"].values()]
    assert all(n >= 0 for n in numbers)
    for entry in stats["blkio"]["io_service_bytes_recursive"]:
        assert set(entry) == {"major", "minor", "op", "value"} and entry["value"] >= 0
    assert mgr.oom_kill_count() == 0


@needs_v1
def test_v1_destroy(parent: str, children: Children) -> None:
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({"pids": {"limit": 20}})
    pid = children.fork(join_and_wait(mgr.procs_files()))
    assert wait_for(lambda: pid in mgr.pids())
    os.mkdir(os.path.join(mgr.controller_dir("memory"), "nested"))    # as a container might
    mgr.destroy()
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert not any(os.path.exists(d) for d in mgr.dirs())
    mgr.destroy()                                                      # idempotent
    assert mgr.pids() == [] and mgr.procs_files() == []


@needs_v1
def test_v1_destroy_from_parent_with_frozen_nested(parent: str, children: Children) -> None:
    """Destroying an ancestor must thaw a nested cgroup frozen on its own, or SIGKILL waits."""
    mgr = CgroupV1Manager(parent + "/c", layout=HOST)
    mgr.create({})
    pid = children.fork(join_and_wait(mgr.procs_files()))
    assert wait_for(lambda: pid in mgr.pids())
    mgr.freeze()
    top = CgroupV1Manager(parent, layout=HOST)
    assert top.pids() == [pid]                 # pids() sees nested cgroups
    top.destroy()
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert not any(os.path.exists(d) for d in top.dirs())


# ---------------------------------------------------------------------------- v1, fake tree

class FakeV1(CgroupV1Manager):
    """v1 on a tmp tree: the mkdir hook writes the files the kernel would."""

    FILES: ClassVar[dict[str, str]] = {
        "cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
        "cpu.stat": "nr_periods 7\nnr_throttled 2\nthrottled_time 5000\n",
        "cpuacct.usage": "900", "cpuacct.usage_percpu": "400 500",
        "cpuacct.stat": "user 3\nsystem 1\n", "cgroup.procs": "",
    }

    def _mkdir(self, path: str) -> None:
        os.mkdir(path)
        for name, text in self.FILES.items():
            with open(os.path.join(path, name), "w") as f:
                f.write(text)


def test_v1_fake_comounted_cpu_cpuacct(tmp_path) -> None:
    """A "cpu,cpuacct" co-mount: one directory, both controllers' files in it."""
    mnt = tmp_path / "cpu,cpuacct"
    mnt.mkdir()
    layout = detect_layout(f"31 25 0:29 / {mnt} rw - cgroup cgroup rw,cpu,cpuacct\n")
    mgr = FakeV1("/pyjail/c", layout=layout)
    mgr.create({"cpu": {"shares": 512, "quota": 25000, "period": 50000}})
    assert mgr.dirs() == [str(mnt / "pyjail/c")]
    assert (mnt / "pyjail/c/cpu.shares").read_text() == "512"
    assert (mnt / "pyjail/c/cpu.cfs_quota_us").read_text() == "25000"
    assert (mnt / "pyjail/c/cpu.cfs_period_us").read_text() == "50000"
    cpu = mgr.stats()["cpu"]
    assert cpu["usage_total"] == 900 and cpu["usage_percpu"] == [400, 500]
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert cpu["usage_user"] == 3 * tick and cpu["usage_system"] == tick
    assert cpu["throttling"] == {"periods": 7, "throttled_periods": 2, "throttled_time": 5000}
    assert mgr.stats()["memory"]["usage"] == 0        # no memory hierarchy: zeros, same keys
    with pytest.raises(RuntimeFailure):
        mgr.update({"pids": {"limit": 3}})             # no pids hierarchy


# ---------------------------------------------------------------------------- v2, fake tree

V2_FILES = {      # what the kernel puts in a new cgroup, by controller ("" = always)
    "": {"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.freeze": "0",
         "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "",
         "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
    "memory": {"memory.max": "max", "memory.low": "0", "memory.swap.max": "max",
               "memory.current": "0", "memory.peak": "0", "memory.stat": "",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
    "cpu": {"cpu.max": "max 100000", "cpu.weight": "100"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "io": {"io.weight": "default 100", "io.stat": ""},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
}


class FakeV2(CgroupV2Manager):
    """v2 on a tmp tree: mkdir adds core files and those of the controllers the parent enabled."""

    def _mkdir(self, path: str) -> None:
        enabled = {c.lstrip("+") for c in
                   read_text(os.path.join(os.path.dirname(path), "cgroup.subtree_control")).split()}
        os.mkdir(path)
        with open(os.path.join(path, "cgroup.controllers"), "w") as f:
            f.write(" ".join(sorted(enabled)))
        for ctrl, files in V2_FILES.items():
            if ctrl == "" or ctrl in enabled:
                for name, text in files.items():
                    with open(os.path.join(path, name), "w") as f:
                        f.write(text)


@pytest.fixture
def fake_v2(tmp_path) -> str:
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    (root / "cgroup.procs").write_text("")
    return str(root)


def _r(root: str, rel: str) -> str:
    with open(os.path.join(root, rel)) as f:
        return f.read().strip()


def test_v2_conversions() -> None:
    assert [v2.shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    assert [v2.blkio_to_io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]


def test_v2_create_writes_files(fake_v2: str, monkeypatch: pytest.MonkeyPatch) -> None:
    attached: list = []
    monkeypatch.setattr(devices_bpf, "set_device_rules", lambda d, r: attached.append((d, r)))
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 100}, "blockIO": {"weight": 500}, "devices": NULL_ONLY,
    })
    for level in (".", "pyjail"):       # controllers enabled top-down, in one write each
        assert _r(fake_v2, f"{level}/cgroup.subtree_control") == "+cpu +memory +pids +io +cpuset"
    assert _r(fake_v2, "pyjail/c1/memory.max") == str(64 * MiB)
    assert _r(fake_v2, "pyjail/c1/memory.swap.max") == str(32 * MiB)    # swap alone
    assert _r(fake_v2, "pyjail/c1/memory.low") == str(32 * MiB)
    assert _r(fake_v2, "pyjail/c1/cpu.weight") == "39"
    assert _r(fake_v2, "pyjail/c1/cpu.max") == "50000 100000"
    assert _r(fake_v2, "pyjail/c1/cpuset.cpus") == "0"
    assert _r(fake_v2, "pyjail/c1/cpuset.mems") == "0"
    assert _r(fake_v2, "pyjail/c1/pids.max") == "100"
    assert _r(fake_v2, "pyjail/c1/io.weight") == "4950"
    assert attached == [(mgr.dir, validate_resources({"devices": NULL_ONLY}).devices)]
    assert mgr.procs_files() == [os.path.join(fake_v2, "pyjail/c1/cgroup.procs")]


def test_v2_unlimited_values(fake_v2: str) -> None:
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 20000},
                "pids": {"limit": -1}})
    assert _r(fake_v2, "pyjail/c1/memory.max") == "max"
    assert _r(fake_v2, "pyjail/c1/memory.swap.max") == "max"
    assert _r(fake_v2, "pyjail/c1/cpu.max") == "max 20000"
    assert _r(fake_v2, "pyjail/c1/pids.max") == "max"


def test_v2_update(fake_v2: str) -> None:
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({"memory": {"limit": 64 * MiB}, "cpu": {"quota": 50000, "period": 100000}})
    mgr.update({"cpu": {"quota": 20000}})                    # period kept
    assert _r(fake_v2, "pyjail/c1/cpu.max") == "20000"
    mgr.update({"cpu": {"period": 50000}})                   # quota kept
    assert _r(fake_v2, "pyjail/c1/cpu.max") == "20000 50000"
    mgr.update({"memory": {"swap": 100 * MiB}})              # against the current memory.max
    assert _r(fake_v2, "pyjail/c1/memory.swap.max") == str(36 * MiB)
    with pytest.raises(InvalidArgument):
        mgr.update({"memory": {"swap": 10 * MiB}})
    assert _r(fake_v2, "pyjail/c1/memory.swap.max") == str(36 * MiB)
    mgr.update({"memory": {"swap": -1}, "cpu": {"shares": 262144}, "blockIO": {"weight": 10}})
    assert _r(fake_v2, "pyjail/c1/memory.swap.max") == "max"
    assert _r(fake_v2, "pyjail/c1/cpu.weight") == "10000"
    assert _r(fake_v2, "pyjail/c1/io.weight") == "1"


@pytest.mark.parametrize("resources", INVALID)
def test_v2_invalid_creates_nothing(fake_v2: str, resources: dict) -> None:
    with pytest.raises(InvalidArgument):
        FakeV2("/pyjail/c1", root=fake_v2).create(resources)
    assert sorted(os.listdir(fake_v2)) == ["cgroup.controllers", "cgroup.procs",
                                           "cgroup.subtree_control"]
    assert _r(fake_v2, "cgroup.subtree_control") == ""


def test_v2_missing_controller(fake_v2: str) -> None:
    with open(os.path.join(fake_v2, "cgroup.controllers"), "w") as f:
        f.write("cpu pids")                                  # no memory controller here
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    with pytest.raises(RuntimeFailure, match="memory"):
        mgr.create({"memory": {"limit": 64 * MiB}})
    assert _r(fake_v2, "cgroup.subtree_control") == "+cpu +pids"


def test_v2_stats(fake_v2: str) -> None:
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({})
    files = {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                    "nr_periods 10\nnr_throttled 3\nthrottled_usec 250\n",
        "memory.current": "4096000\n", "memory.peak": "8192000\n", "memory.max": "max\n",
        "memory.stat": "anon 1000\nfile 2048\nkernel_stack 16384\npgfault 7\n",
        "memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n",
        "pids.current": "3\n", "pids.max": "max\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                   "253:1 rbytes=10 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    }
    for name, text in files.items():
        with open(os.path.join(mgr.dir, name), "w") as f:
            f.write(text)
    stats = mgr.stats()
    assert stats["cpu"] == {
        "usage_total": 1_500_000, "usage_percpu": [], "usage_user": 1_000_000,
        "usage_system": 500_000,
        "throttling": {"periods": 10, "throttled_periods": 3, "throttled_time": 250_000}}
    assert stats["memory"] == {
        "usage": 4096000, "max_usage": 8192000, "limit": MEMORY_UNLIMITED, "cache": 2048,
        "stats": {"anon": 1000, "file": 2048, "kernel_stack": 16384, "pgfault": 7}}
    assert stats["pids"] == {"current": 3, "limit": 0}
    assert stats["blkio"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192},
        {"major": 253, "minor": 1, "op": "Read", "value": 10},
        {"major": 253, "minor": 1, "op": "Write", "value": 0}]
    assert mgr.oom_kill_count() == 2
    with open(os.path.join(mgr.dir, "memory.max"), "w") as f:
        f.write("67108864\n")
    with open(os.path.join(mgr.dir, "pids.max"), "w") as f:
        f.write("20\n")
    assert mgr.stats()["memory"]["limit"] == 64 * MiB
    assert mgr.stats()["pids"]["limit"] == 20


def test_v2_freeze_thaw_files(fake_v2: str) -> None:
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({})
    events = os.path.join(mgr.dir, "cgroup.events")
    with open(events, "w") as f:
        f.write("populated 1\nfrozen 1\n")          # the "kernel" reports frozen
    mgr.freeze()
    assert _r(mgr.dir, "cgroup.freeze") == "1" and mgr.is_frozen()
    with open(events, "w") as f:
        f.write("populated 1\nfrozen 0\n")
    mgr.thaw()
    assert _r(mgr.dir, "cgroup.freeze") == "0" and not mgr.is_frozen()
    with pytest.raises(RuntimeFailure):             # never reaches frozen: gives up, undoes
        mgr.freeze(timeout=0.2)
    assert _r(mgr.dir, "cgroup.freeze") == "0"


def test_v2_kill_all_files(fake_v2: str, children: Children) -> None:
    mgr = FakeV2("/pyjail/c1", root=fake_v2)
    mgr.create({})
    mgr.kill_all(signal.SIGKILL)
    assert _r(mgr.dir, "cgroup.kill") == "1"         # the kernel kills the subtree
    pid = children.fork(lambda: signal.pause())
    with open(os.path.join(mgr.dir, "cgroup.procs"), "w") as f:
        f.write(f"{pid}\n0\n")                        # 0: a process outside our pid namespace
    assert mgr.pids() == [pid]
    mgr.kill_all(signal.SIGTERM)                      # other signals go to each pid
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


# ---------------------------------------------------------------------------- v2 devices

def test_device_emulation() -> None:
    rules = validate_resources({"devices": [
        DENY_ALL,
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "w"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "m"},
        {"allow": True, "type": "b", "major": 8, "access": "r"},
        {"allow": False, "type": "b", "major": 8, "access": "r"},
    ]}).devices
    default_allow, exceptions = devices_bpf.emulate(rules)
    assert default_allow is False
    assert exceptions == [DeviceRule(True, "c", 1, 3, "rw"), DeviceRule(True, "c", 1, 5, "rw")]
    default_allow, exceptions = devices_bpf.emulate(
        rules + [DeviceRule(True), DeviceRule(False, "c", 10, 200, "rwm")])
    assert default_allow is True and exceptions == [DeviceRule(False, "c", 10, 200, "rwm")]


def test_device_program_shape() -> None:
    insns = devices_bpf.assemble(validate_resources({"devices": NULL_ONLY}).devices)
    assert len(insns) % 8 == 0
    # 6 prologue + (type, major, minor jumps + mov + exit) + (mov + exit)
    assert len(insns) // 8 == 6 + 5 + 2
    assert insns[-8:] == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])         # exit


@needs_cgroup2
def test_v2_device_filter_real(parent: str, children: Children) -> None:
    """eBPF device filter on the host's cgroup2 mount: /dev/null yes, /dev/zero EPERM."""
    cg = os.path.join(HOST.unified, parent.lstrip("/"))
    os.mkdir(cg)
    read_only_zero = [*NULL_ONLY, {"allow": True, "type": "c", "major": 1, "minor": 5,
                                   "access": "r"}]
    devices_bpf.set_device_rules(cg, validate_resources({"devices": NULL_ONLY}).devices)
    assert len(devices_bpf.attached_program_ids(cg)) == 1
    procs = [os.path.join(cg, "cgroup.procs")]

    def opener() -> int:
        join(procs)
        failures = 0
        with open("/dev/null", "r+b"):
            pass
        try:
            open("/dev/zero", "rb").close()
            failures |= 1
        except PermissionError as e:
            failures |= 0 if e.errno == errno.EPERM else 2
        return failures

    assert exit_code(children.wait(children.fork(opener))) == 0

    # replacing the rules leaves one program, and the new one is in force
    devices_bpf.set_device_rules(cg, validate_resources({"devices": read_only_zero}).devices)
    assert len(devices_bpf.attached_program_ids(cg)) == 1

    def reader() -> int:
        join(procs)
        open("/dev/zero", "rb").close()
        try:
            open("/dev/zero", "wb").close()
        except PermissionError:
            return 0
        return 1

    assert exit_code(children.wait(children.fork(reader))) == 0


@needs_cgroup2
def test_v2_manager_real_without_controllers(parent: str, children: Children) -> None:
    """The v2 manager on the host's cgroup2 mount, using what needs no controller:
    devices (eBPF), cgroup.procs, cgroup.freeze, cgroup.kill, rmdir."""
    mgr = CgroupV2Manager(parent + "/c", root=HOST.unified)
    mgr.create({"devices": NULL_ONLY})
    files = mgr.procs_files()
    r, w = os.pipe()

    def child() -> int:
        join(files)
        os.close(r)
        try:
            open("/dev/zero", "rb").close()
            os.write(w, b"open")
        except PermissionError:
            os.write(w, b"EPERM")
        signal.pause()
        return 0

    pid = children.fork(child)
    os.close(w)
    assert os.read(r, 16) == b"EPERM"
    os.close(r)
    assert mgr.pids() == [pid]
    if os.path.exists(os.path.join(mgr.dir, "cgroup.freeze")):
        mgr.freeze()
        assert mgr.is_frozen()
        mgr.thaw()
        assert not mgr.is_frozen()
    mgr.destroy()                                     # cgroup.kill (or signals), then rmdir
    status = children.wait(pid, timeout=10)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert not os.path.exists(mgr.dir)
