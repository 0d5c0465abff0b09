"""Building a container's filesystem view inside its new mount namespace.

Runs in the forked child, after unshare(CLONE_NEWNS) and before pivot_root. Everything
mounted here lives only in the container's namespace, so the host sees no mount to clean.
"""

from __future__ import annotations

import os
import stat

from . import syscalls as sc

_FLAGS = {
    "ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False),
    "nosuid": (sc.MS_NOSUID, True), "suid": (sc.MS_NOSUID, False),
    "nodev": (sc.MS_NODEV, True), "dev": (sc.MS_NODEV, False),
    "noexec": (sc.MS_NOEXEC, True), "exec": (sc.MS_NOEXEC, False),
    "sync": (sc.MS_SYNCHRONOUS, True), "async": (sc.MS_SYNCHRONOUS, False),
    "noatime": (sc.MS_NOATIME, True), "atime": (sc.MS_NOATIME, False),
    "nodiratime": (sc.MS_NODIRATIME, True), "diratime": (sc.MS_NODIRATIME, False),
    "relatime": (sc.MS_RELATIME, True), "norelatime": (sc.MS_RELATIME, False),
    "strictatime": (sc.MS_STRICTATIME, True), "nostrictatime": (sc.MS_STRICTATIME, False),
    "bind": (sc.MS_BIND, True), "rbind": (sc.MS_BIND | sc.MS_REC, True),
    "remount": (sc.MS_REMOUNT, True), "dirsync": (sc.MS_DIRSYNC, True),
}
_PROPAGATION = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """OCI mount options -> (mount flags, propagation flags, fs-specific data string)."""
    flags = 0
    propagation = 0
    data = []
    for opt in options:
        if opt in _FLAGS:
            bit, on = _FLAGS[opt]
            flags = flags | bit if on else flags & ~bit
        elif opt in _PROPAGATION:
            propagation |= _PROPAGATION[opt]
        elif opt in ("newinstance",) or "=" in opt or opt not in ("defaults",):
            if opt != "defaults":
                data.append(opt)
    return flags, propagation, ",".join(data)


def secure_join(root: str, path: str) -> str:
    """Resolve ``path`` inside ``root`` following symlinks as if ``root`` were ``/``.

    A mount destination inside an image may be a symlink; following it on the host
    would let an image mount over host paths (the classic runc mount escape).
    """
    parts = [p for p in path.split("/") if p and p != "."]
    current = root
    depth = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if current != root:
                current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            current = candidate
            continue
        if stat.S_ISLNK(st.st_mode):
            depth += 1
            if depth > 40:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        current = candidate
    return current


def ensure_mountpoint(target: str, source_is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    if source_is_dir:
        os.makedirs(target, 0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def mount_cgroups(target: str, hierarchies: list[tuple[str, str, str]]) -> None:
    """Mount a read-only /sys/fs/cgroup that shows the container's own cgroup as root."""
    if len(hierarchies) == 1 and hierarchies[0][0] == "":
        sc.mount("cgroup2", target, "cgroup2", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY)
        return
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755")
    for name, fstype, options in hierarchies:
        sub = os.path.join(target, name)
        os.makedirs(sub, 0o555, exist_ok=True)
        try:
            sc.mount("cgroup", sub, fstype,
                     sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY, options or None)
        except OSError:
            os.rmdir(sub)
    sc.mount(None, target, None,
             sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def do_mount(rootfs: str, m: dict, cgroup_hierarchies: list[tuple[str, str, str]]) -> None:
    dest = secure_join(rootfs, m["destination"])
    fstype = m.get("type") or ""
    options = list(m.get("options") or [])
    flags, propagation, data = parse_options(options)
    is_bind = fstype == "bind" or flags & sc.MS_BIND
    if is_bind:
        source = m["source"]
        ensure_mountpoint(dest, os.path.isdir(source))
        sc.mount(source, dest, None, flags & (sc.MS_BIND | sc.MS_REC) | sc.MS_BIND)
        remount_flags = flags & ~(sc.MS_BIND | sc.MS_REC)
        if remount_flags & (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC):
            sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | remount_flags)
    elif fstype == "cgroup":
        os.makedirs(dest, 0o755, exist_ok=True)
        mount_cgroups(dest, cgroup_hierarchies)
    else:
        os.makedirs(dest, 0o755, exist_ok=True)
        try:
            sc.mount(m.get("source") or fstype, dest, fstype, flags, data or None)
        except OSError:
            if fstype == "sysfs":
                # Without its own network namespace a container cannot mount sysfs:
                # bind the host's, read-only, as runc does.
                sc.mount("/sys", dest, None, sc.MS_BIND | sc.MS_REC)
                sc.mount(None, dest, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY
                         | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
            elif fstype == "mqueue":
                pass  # host IPC namespace: the host's mqueue stays where it is
            else:
                raise
    if propagation:
        sc.mount(None, dest, None, propagation)


def make_devices(rootfs: str, devices: list[dict]) -> None:
    old = os.umask(0)
    try:
        for dev in devices:
            path = secure_join(rootfs, dev["path"])
            kind = stat.S_IFCHR if dev.get("type", "c") == "c" else stat.S_IFBLK
            mode = dev.get("fileMode", 0o666)
            if os.path.lexists(path):
                os.unlink(path)
            os.mknod(path, kind | mode, os.makedev(dev["major"], dev["minor"]))
            os.chown(path, dev.get("uid", 0), dev.get("gid", 0))
    finally:
        os.umask(old)


def default_symlinks(rootfs: str) -> None:
    for link, target in (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
                         ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
                         ("/dev/ptmx", "pts/ptmx"), ("/dev/core", "/proc/kcore")):
        path = rootfs + link
        if not os.path.lexists(path):
            os.symlink(target, path)


def mask_paths(paths: list[str]) -> None:
    """After pivot_root: hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)


def readonly_paths(paths: list[str]) -> None:
    for path in paths:
        if not os.path.exists(path):
            continue
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC
                 | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def pivot(rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root: no host path stays reachable."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount(".", sc.MNT_DETACH)
    os.chdir("/")


def host_cgroup_hierarchies() -> list[tuple[str, str, str]]:
    """(name under /sys/fs/cgroup, fstype, mount data) for every cgroup mount on the host.

    A lone cgroup2 at /sys/fs/cgroup is returned as [("", "cgroup2", "")].
    """
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mountpoint, fstype, super_opts = fields[4], fields[sep + 1], fields[sep + 3]
            if fstype not in ("cgroup", "cgroup2") or not mountpoint.startswith("/sys/fs/cgroup"):
                continue
            name = mountpoint[len("/sys/fs/cgroup"):].lstrip("/")
            if fstype == "cgroup":
                opts = [o for o in super_opts.split(",") if o not in ("rw", "ro")
                        and not o.startswith("release_agent")]
            else:
                opts = []
            out.append((name, fstype, ",".join(opts)))
    return out
