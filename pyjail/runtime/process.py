"""The child side of a container start or exec: from a forked process to execve.

The order matters and follows runc's: join cgroups, unshare namespaces, build the root
and pivot into it, set identity, drop capabilities, no_new_privs, seccomp, and exec.
Any failure is reported to the parent as one JSON line on the error pipe, then _exit.
"""

from __future__ import annotations

import json
import os
import resource
import stat

from . import capabilities, mounts
from . import syscalls as sc
from .defaults import DEFAULT_PATH
from .seccomp import load_filter
from .users import resolve_user

ANNOTATION_LOWER = "org.pyjail.overlay.lower"
ANNOTATION_UPPER = "org.pyjail.overlay.upper"
ANNOTATION_WORK = "org.pyjail.overlay.work"
ANNOTATION_USER = "org.pyjail.user"

# Linux resource numbers (Python's resource module lacks a few of them).
RLIMITS = {f"RLIMIT_{name}": number for number, name in enumerate(
    ["CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS",
     "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"])}


class ChildError(Exception):
    """A setup failure with the kind the parent maps to a pyjail error class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _report(errfd: int, kind: str, message: str) -> None:
    try:
        os.write(errfd, json.dumps({"kind": kind, "message": message}).encode())
    except OSError:
        pass


def run_child(main, errfd: int) -> None:
    """Wrap a child main: never return into the parent's Python code."""
    code = 1
    try:
        main()
    except ChildError as exc:
        _report(errfd, exc.kind, str(exc))
        code = 127 if exc.kind == "ExecutableNotFound" else 126 if exc.kind == "PermissionDenied" else 1
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        _report(errfd, "RuntimeFailure", f"{type(exc).__name__}: {exc}")
    finally:
        os._exit(code)


def setup_stdio(stdin: int, stdout: int, stderr: int, tty: bool) -> None:
    os.setsid()
    for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
        if fd != target:
            os.dup2(fd, target, inheritable=True)
        else:
            os.set_inheritable(fd, True)
    if tty:
        import fcntl
        fcntl.ioctl(0, sc.TIOCSCTTY, 0)


def open_console(console: int) -> None:
    """Make the terminal inside the container's own devpts and hand its master to the
    supervisor over ``console`` (SCM_RIGHTS), like runc's console socket: a pty from
    the host's devpts would not exist under /dev/pts inside, so `tty` would fail."""
    import fcntl
    import socket
    master, slave = os.openpty()
    with socket.socket(fileno=console) as sock:
        socket.send_fds(sock, [b"pty"], [master])
    os.close(master)
    for target in (0, 1, 2):
        os.dup2(slave, target, inheritable=True)
    os.close(slave)
    fcntl.ioctl(0, sc.TIOCSCTTY, 0)


def join_cgroups(procs_files: list[str]) -> None:
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def enter_namespaces(spec: dict, skip: tuple[str, ...] = ("pid", "time")) -> None:
    """setns into namespaces with a path, unshare the others (pid/time are the parent's job)."""
    unshare_flags = 0
    for ns in spec.get("linux", {}).get("namespaces", []):
        kind = ns["type"]
        if kind in skip:
            continue
        if ns.get("path"):
            fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
            finally:
                os.close(fd)
        else:
            unshare_flags |= sc.NAMESPACE_FLAGS[kind]
    if unshare_flags:
        sc.unshare(unshare_flags)


def build_root(spec: dict, cgroup_hierarchies: list[tuple[str, str, str]]) -> None:
    annotations = spec.get("annotations") or {}
    root = spec["root"]["path"]
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    lower = annotations.get(ANNOTATION_LOWER)
    if lower:
        data = f"lowerdir={lower}"
        if annotations.get(ANNOTATION_UPPER):
            data += f",upperdir={annotations[ANNOTATION_UPPER]},workdir={annotations[ANNOTATION_WORK]}"
        sc.mount("overlay", root, "overlay", 0, data)
    else:
        sc.mount(root, root, None, sc.MS_BIND | sc.MS_REC)
    for m in spec.get("mounts", []):
        mounts.do_mount(root, m, cgroup_hierarchies)
    linux = spec.get("linux", {})
    if any(m.get("destination") == "/dev" for m in spec.get("mounts", [])):
        mounts.make_devices(root, linux.get("devices", []))
        mounts.default_symlinks(root)
    mounts.pivot(root)
    for key, value in (linux.get("sysctl") or {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))
    mounts.mask_paths(linux.get("maskedPaths", []))
    mounts.readonly_paths(linux.get("readonlyPaths", []))
    if spec["root"].get("readonly"):
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)


def set_rlimits(process: dict) -> None:
    for rl in process.get("rlimits", []):
        kind = RLIMITS.get(rl["type"])
        if kind is None:
            continue
        soft, hard = rl["soft"], rl["hard"]
        cur_soft, cur_hard = resource.getrlimit(kind)
        # Without CAP_SYS_RESOURCE a hard limit cannot grow: clamp instead of failing.
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        resource.setrlimit(kind, (soft, hard))


def set_identity(process: dict, env: dict[str, str], user_spec: str | None) -> None:
    user = process.get("user", {})
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    extra = list(user.get("additionalGids", []))
    if user_spec:
        try:
            resolved = resolve_user(user_spec)
        except Exception as exc:
            raise ChildError("InvalidArgument", str(exc)) from None
        uid, gid = resolved.uid, resolved.gid
        extra = sorted(set(extra) | set(resolved.additional_gids))
        if "HOME" not in env:
            env["HOME"] = resolved.home
    elif "HOME" not in env:
        env["HOME"] = "/root" if uid == 0 else "/"
    # The bounding set needs CAP_SETPCAP, which a non-root uid no longer has: drop first.
    caps = process.get("capabilities") or {}
    capabilities.drop_bounding(capabilities.mask(caps.get("bounding", ())))
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    os.setgroups(extra)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)


def find_executable(argv0: str, path: str) -> str:
    """Docker's lookup and its exact wording for a missing command."""
    if "/" in argv0:
        try:
            st = os.stat(argv0)
        except FileNotFoundError:
            raise ChildError("ExecutableNotFound",
                             f'exec: "{argv0}": stat {argv0}: no such file or directory') from None
        if stat.S_ISDIR(st.st_mode) or not os.access(argv0, os.X_OK):
            raise ChildError("PermissionDenied", f'exec: "{argv0}": permission denied')
        return argv0
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", argv0)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            return candidate
    raise ChildError("ExecutableNotFound", f'exec: "{argv0}": executable file not found in $PATH')


def finish_and_exec(spec: dict, errfd: int, seccomp_bpf: bytes | None, env: dict[str, str]) -> None:
    """Common tail of start and exec: cwd, caps, no_new_privs, seccomp, close fds, execve."""
    process = spec["process"]
    cwd = process.get("cwd", "/")
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    # CVE-2024-21626: a leaked directory fd as cwd would leave us outside the root.
    if not os.getcwd().startswith("/"):
        raise ChildError("RuntimeFailure", "working directory is outside the container root")
    args = process.get("args") or []
    if not args:
        raise ChildError("InvalidArgument", "no command specified")
    exe = find_executable(args[0], env.get("PATH", DEFAULT_PATH))
    caps = process.get("capabilities") or {}
    no_new_privs = process.get("noNewPrivileges", True)
    if seccomp_bpf and not no_new_privs:
        # Without no_new_privs the kernel wants CAP_SYS_ADMIN to install a filter, so
        # load it while we still hold every capability (runc does the same).
        load_filter(seccomp_bpf)
    capabilities.apply(caps)
    if no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    # errfd is close-on-exec: EOF on it tells the parent that execve succeeded.
    if errfd > 3:
        sc.close_range(3, errfd - 1)
    sc.close_range(errfd + 1)
    if seccomp_bpf and no_new_privs:
        load_filter(seccomp_bpf)
    try:
        os.execve(exe, args, env)
    except PermissionError:
        raise ChildError("PermissionDenied", f'exec: "{args[0]}": permission denied') from None
    except OSError as exc:
        raise ChildError("RuntimeFailure", f'exec: "{args[0]}": {exc.strerror}') from None


def env_dict(process: dict) -> dict[str, str]:
    env = {}
    for item in process.get("env", []):
        key, _, value = item.partition("=")
        env[key] = value
    return env


def container_child(spec: dict, stdio: tuple[int, int, int], errfd: int, procs_files: list[str],
                    seccomp_bpf: bytes | None, cgroup_hierarchies: list[tuple[str, str, str]],
                    console: int | None = None) -> None:
    """PID 1 of the new container, between fork and execve."""
    process = spec["process"]
    setup_stdio(*stdio, tty=process.get("terminal", False) and console is None)
    join_cgroups(procs_files)
    enter_namespaces(spec)
    build_root(spec, cgroup_hierarchies)
    if console is not None:
        open_console(console)
    hostname = spec.get("hostname")
    if hostname and _has_ns(spec, "uts"):
        sc.sethostname(hostname)
    if spec.get("domainname") and _has_ns(spec, "uts"):
        sc.setdomainname(spec["domainname"])
    oom = process.get("oomScoreAdj")
    if oom is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(oom))
    set_rlimits(process)
    env = env_dict(process)
    set_identity(process, env, (spec.get("annotations") or {}).get(ANNOTATION_USER))
    finish_and_exec(spec, errfd, seccomp_bpf, env)


def exec_child(spec: dict, init_pid: int, stdio: tuple[int, int, int], errfd: int,
               procs_files: list[str], seccomp_bpf: bytes | None,
               console: int | None = None) -> None:
    """A process joining a running container (docker exec): same confinement as its PID 1.

    It stays non-dumpable until execve so nothing inside can open its /proc/PID/exe
    (CVE-2019-5736) or ptrace the host binary.
    """
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    process = spec["process"]
    setup_stdio(*stdio, tty=process.get("terminal", False) and console is None)
    join_cgroups(procs_files)
    order = ["cgroup", "ipc", "uts", "network", "mount"]
    present = {ns["type"] for ns in spec.get("linux", {}).get("namespaces", [])}
    for kind in order:
        if kind not in present:
            continue
        fd = os.open(f"/proc/{init_pid}/ns/{sc.NAMESPACE_PROC_NAMES[kind]}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.NAMESPACE_FLAGS[kind])
        finally:
            os.close(fd)
    os.chdir("/")
    if console is not None:
        open_console(console)
    set_rlimits(process)
    env = env_dict(process)
    set_identity(process, env, (spec.get("annotations") or {}).get(ANNOTATION_USER))
    finish_and_exec(spec, errfd, seccomp_bpf, env)


def _has_ns(spec: dict, kind: str) -> bool:
    return any(ns["type"] == kind for ns in spec.get("linux", {}).get("namespaces", []))
