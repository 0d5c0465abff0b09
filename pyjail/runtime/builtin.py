"""pyjail's own OCI runtime: fork, confine and exec in Python, no helper binary.

The caller (the supervisor) is single-threaded, so ``os.fork`` is safe. PID and time
namespaces apply to children only: the parent unshares them, forks, and at once goes
back to its own namespaces, so the forked child *is* PID 1 and stays our direct child
(we reap it and get its exit status without an intermediate process).
"""

from __future__ import annotations

import os

from . import process
from . import syscalls as sc
from .base import Runtime, Spawned
from .cgroups import manager_for
from .mounts import host_cgroup_hierarchies
from .seccomp import compile_filter


class BuiltinRuntime(Runtime):
    name = "builtin"

    def __init__(self) -> None:
        self._own_ns = {kind: os.open(f"/proc/self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
                        for kind in ("pid", "time") if os.path.exists(f"/proc/self/ns/{kind}")}
        self._cgroup_hierarchies = host_cgroup_hierarchies()

    def _prepare(self, spec: dict) -> tuple[list[str], bytes | None]:
        linux = spec.get("linux", {})
        procs: list[str] = []
        if linux.get("cgroupsPath"):
            cg = manager_for(linux["cgroupsPath"])
            cg.create(linux.get("resources") or {})
            procs = cg.procs_files()
        seccomp = linux.get("seccomp")
        bpf = compile_filter(seccomp) if seccomp else None
        return procs, bpf

    supports_console = True

    def spawn(self, container_id: str, spec: dict, bundle: str,
              stdio: tuple[int, int, int], console: int | None = None) -> Spawned:
        procs, bpf = self._prepare(spec)
        namespaces = {ns["type"]: ns for ns in spec.get("linux", {}).get("namespaces", [])}
        child_only = 0
        for kind in ("pid", "time"):
            ns = namespaces.get(kind)
            if ns is None:
                continue
            if ns.get("path"):
                fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
                finally:
                    os.close(fd)
            else:
                child_only |= sc.NAMESPACE_FLAGS[kind]
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            if child_only:
                sc.unshare(child_only)
                offsets = spec.get("linux", {}).get("timeOffsets")
                if child_only & sc.CLONE_NEWTIME and offsets:
                    _write_time_offsets(offsets)
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                process.run_child(lambda: process.container_child(
                    spec, stdio, write_end, procs, bpf, self._cgroup_hierarchies, console),
                    write_end)
        finally:
            self._restore_namespaces()
        os.close(write_end)
        return Spawned(pid, read_end)

    def spawn_exec(self, container_id: str, spec: dict, init_pid: int,
                   stdio: tuple[int, int, int], console: int | None = None) -> Spawned:
        linux = spec.get("linux", {})
        procs = manager_for(linux["cgroupsPath"]).procs_files() if linux.get("cgroupsPath") else []
        seccomp = linux.get("seccomp")
        bpf = compile_filter(seccomp) if seccomp else None
        kinds = {ns["type"] for ns in linux.get("namespaces", [])}
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            for kind in ("pid", "time"):
                if kind in kinds:
                    fd = os.open(f"/proc/{init_pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
                    finally:
                        os.close(fd)
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                process.run_child(lambda: process.exec_child(
                    spec, init_pid, stdio, write_end, procs, bpf, console), write_end)
        finally:
            self._restore_namespaces()
        os.close(write_end)
        return Spawned(pid, read_end)

    def _restore_namespaces(self) -> None:
        for kind, fd in self._own_ns.items():
            try:
                sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
            except OSError:
                pass

    def pause(self, container_id: str, spec: dict | None = None) -> None:
        manager_for(_cgroup_path(container_id, spec)).freeze()

    def resume(self, container_id: str, spec: dict | None = None) -> None:
        manager_for(_cgroup_path(container_id, spec)).thaw()


def _cgroup_path(container_id: str, spec: dict | None) -> str:
    if spec and spec.get("linux", {}).get("cgroupsPath"):
        return spec["linux"]["cgroupsPath"]
    return f"/pyjail/{container_id}"


def _write_time_offsets(offsets: dict) -> None:
    lines = []
    for clock, value in offsets.items():
        lines.append(f"{clock} {int(value.get('secs', 0))} {int(value.get('nanosecs', 0))}\n")
    with open("/proc/self/timens_offsets", "w") as f:
        f.write("".join(lines))
