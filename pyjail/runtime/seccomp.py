"""Seccomp: Docker's default profile, dockerd's profile resolution, and a libseccomp compiler.

The work is split the way Docker splits it, so each step runs where it is cheap:

* ``profile_to_oci`` (dockerd's job) turns a Docker-format profile plus the container's
  capabilities into an OCI ``linux.seccomp`` object.
* ``compile_filter`` (runc's job) turns that object into a classic BPF program with libseccomp,
  in the parent, once per distinct profile (cached).
* ``load_filter`` installs the ready program in the forked child right before execve: one
  syscall, no libseccomp, no parsing.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import json
import os
import threading
from collections.abc import Iterable

from ..errors import InvalidArgument

__all__ = ["DEFAULT_PROFILE", "compile_filter", "load_filter", "profile_to_oci"]

# ---------------------------------------------------------------------------------------------
# Docker's default profile (facts from moby/profiles seccomp v0.2.3, default.json).
# ---------------------------------------------------------------------------------------------

_ALLOW = "SCMP_ACT_ALLOW"

# Allowed for every container, whatever its capabilities.
_ALWAYS_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2
dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat
fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32
geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp
getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create
memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid
setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr
setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64
utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# Allowed only with the capability that the kernel would check anyway.
_CAP_GROUPS: list[tuple[str, str]] = [
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ("CAP_SYS_ADMIN", (
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie "
        "lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount "
        "open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog "
        "umount umount2 unshare")),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", ("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev "
                        "ptrace")),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    ("CAP_SYS_TIME", "settimeofday stime clock_settime clock_settime64"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYS_NICE", "get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
]

# Arch-only syscalls (arch names are libseccomp/dockerd "native" names, not SCMP_ARCH_*).
_ARCH_GROUPS: list[tuple[str, str]] = [
    ("ppc64le", "sync_file_range2 swapcontext"),
    ("arm arm64", ("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint "
                   "cacheflush set_tls")),
    ("amd64 x32", "arch_prctl"),
    ("amd64 x32 x86", "modify_ldt"),
    ("s390 s390x", "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
    ("riscv64", "riscv_flush_icache"),
]

# Address families 38 (AF_ALG) and 40 (AF_VSOCK) are refused; everything else is allowed.
_AF_ALG, _AF_NFC, _AF_VSOCK = 38, 39, 40
# personality(2) values allowed: PER_LINUX, PER_LINUX32, with ADDR_NO_RANDOMIZE, and the query.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
# clone flags that create namespaces: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
_CLONE_NS_MASK = 0x7E020000


def _arg(index: int, op: str, value: int, value_two: int = 0) -> dict:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _rule(names: str, action: str = _ALLOW, *, args: list[dict] | None = None,
          includes: dict | None = None, excludes: dict | None = None,
          errno_ret: int | None = None, comment: str | None = None) -> dict:
    """One Docker-format syscall entry; keeps the table below readable."""
    rule: dict = {"names": names.split(), "action": action}
    for key, value in (("errnoRet", errno_ret), ("args", args), ("comment", comment),
                       ("includes", includes), ("excludes", excludes)):
        if value is not None:
            rule[key] = value
    return rule


def _default_profile() -> dict:
    syscalls = [
        _rule(_ALWAYS_ALLOWED),
        _rule("process_vm_readv process_vm_writev ptrace", includes={"minKernel": "4.8"}),
        _rule("socket", args=[_arg(0, "SCMP_CMP_LT", _AF_ALG)]),
        _rule("socket", args=[_arg(0, "SCMP_CMP_EQ", _AF_NFC)]),
        _rule("socket", args=[_arg(0, "SCMP_CMP_GT", _AF_VSOCK)]),
        *(_rule("personality", args=[_arg(0, "SCMP_CMP_EQ", p)]) for p in _PERSONALITIES),
        *(_rule(names, includes={"arches": arches.split()}) for arches, names in _ARCH_GROUPS),
        *(_rule(names, includes={"caps": [cap]}) for cap, names in _CAP_GROUPS[:2]),
        # Without CAP_SYS_ADMIN: fork/threads yes, namespace-creating clone no, clone3 ENOSYS
        # (its flags live in memory a filter cannot read, so libc must fall back to clone).
        _rule("clone", args=[_arg(0, "SCMP_CMP_MASKED_EQ", _CLONE_NS_MASK)],
              excludes={"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}),
        _rule("clone", args=[_arg(1, "SCMP_CMP_MASKED_EQ", _CLONE_NS_MASK)],
              comment="s390 parameter ordering for clone is different",
              includes={"arches": ["s390", "s390x"]}, excludes={"caps": ["CAP_SYS_ADMIN"]}),
        _rule("clone3", "SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS,
              excludes={"caps": ["CAP_SYS_ADMIN"]}),
        *(_rule(names, includes={"caps": [cap]}) for cap, names in _CAP_GROUPS[2:]),
    ]
    arch_map = [
        ("SCMP_ARCH_X86_64", ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ("SCMP_ARCH_AARCH64", ["SCMP_ARCH_ARM"]),
        ("SCMP_ARCH_MIPS64", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"]),
        ("SCMP_ARCH_MIPS64N32", ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"]),
        ("SCMP_ARCH_MIPSEL64", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"]),
        ("SCMP_ARCH_MIPSEL64N32", ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"]),
        ("SCMP_ARCH_S390X", ["SCMP_ARCH_S390"]),
        ("SCMP_ARCH_RISCV64", None),
        ("SCMP_ARCH_LOONGARCH64", None),
    ]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "archMap": [{"architecture": a, "subArchitectures": s} for a, s in arch_map],
        "syscalls": syscalls,
    }


DEFAULT_PROFILE: dict = _default_profile()
"""Docker's default profile in Docker's JSON format. Treat as read-only; profile_to_oci copies."""

# ---------------------------------------------------------------------------------------------
# Profile resolution (what dockerd does before handing the spec to runc).
# ---------------------------------------------------------------------------------------------

# uname machine -> (dockerd "native" arch name used by includes/excludes.arches, SCMP_ARCH_*).
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i386": ("x86", "SCMP_ARCH_X86"), "i686": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"), "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "armv6l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "ppc64": ("ppc64", "SCMP_ARCH_PPC64"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}
_NATIVE_ARCH, _NATIVE_SCMP_ARCH = _MACHINES.get(os.uname().machine, ("", ""))

_OCI_ARCHES = frozenset("SCMP_ARCH_" + a for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL", "MIPSEL64",
    "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC", "PARISC64", "RISCV64",
    "LOONGARCH64"))

_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_U64 = (1 << 64) - 1


def _kernel_version() -> tuple[int, int]:
    release = os.uname().release
    try:
        major, minor = release.split(".")[:2]
        return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)
    except ValueError:
        return (0, 0)


_KERNEL = _kernel_version()


def _parse_kernel(value: object) -> tuple[int, int]:
    """minKernel is "major.minor" in Docker's JSON (dockerd also ignores the patch level)."""
    try:
        parts = str(value).split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        raise InvalidArgument(f"seccomp: invalid minKernel {value!r}") from None


def _norm_cap(name: str) -> str:
    upper = str(name).strip().upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def _is_uint(value: object, limit: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _action(name: object, errno_ret: object = None) -> int:
    """libseccomp's action value for an OCI action name; ERRNO/TRACE default to EPERM (as runc)."""
    if name == "SCMP_ACT_NOTIFY":
        raise InvalidArgument("seccomp: SCMP_ACT_NOTIFY is not supported (no seccomp agent)")
    if not isinstance(name, str) or name not in _ACTIONS:
        raise InvalidArgument(f"seccomp: unknown action {name!r}")
    value = _ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        if errno_ret is None:
            errno_ret = errno.EPERM
        if not _is_uint(errno_ret, 0xFFFF):
            raise InvalidArgument(f"seccomp: invalid errnoRet {errno_ret!r}")
        value |= errno_ret
    return value


def _check_args(args: object, where: str) -> list[dict]:
    """Validate OCI/Docker arg comparisons and return them in OCI form (valueTwo always set)."""
    if args is None:
        return []
    if not isinstance(args, list):
        raise InvalidArgument(f"seccomp: {where}: args must be a list")
    out = []
    for arg in args:
        if not isinstance(arg, dict):
            raise InvalidArgument(f"seccomp: {where}: bad arg {arg!r}")
        index, op = arg.get("index"), arg.get("op")
        value, value_two = arg.get("value", 0), arg.get("valueTwo", 0)
        if not _is_uint(index, 5):
            raise InvalidArgument(f"seccomp: {where}: arg index must be 0..5, got {index!r}")
        if op not in _OPS:
            raise InvalidArgument(f"seccomp: {where}: unknown comparison op {op!r}")
        if not _is_uint(value, _U64) or not _is_uint(value_two, _U64):
            raise InvalidArgument(f"seccomp: {where}: arg values must be uint64")
        out.append({"index": index, "value": value, "valueTwo": value_two, "op": op})
    return out


def _names(call: dict) -> list[str]:
    name, names = call.get("name"), call.get("names")
    if name and names:
        raise InvalidArgument("seccomp: both 'name' and 'names' are specified, use one")
    result = [name] if name else names
    if not isinstance(result, list) or not result or not all(
            isinstance(n, str) and n for n in result):
        raise InvalidArgument(f"seccomp: syscall entry needs a non-empty 'names' list: {call!r}")
    return list(result)


def _filter(spec: object, where: str) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InvalidArgument(f"seccomp: {where} must be an object")
    return spec


def _selected(call: dict, caps: set[str]) -> bool:
    """dockerd's includes/excludes test: excluded if any exclude matches, else all includes."""
    excludes = _filter(call.get("excludes"), "excludes")
    includes = _filter(call.get("includes"), "includes")
    if _NATIVE_ARCH in (excludes.get("arches") or ()):
        return False
    if any(_norm_cap(c) in caps for c in excludes.get("caps") or ()):
        return False
    if excludes.get("minKernel") and _parse_kernel(excludes["minKernel"]) <= _KERNEL:
        return False
    if includes.get("arches") and _NATIVE_ARCH not in includes["arches"]:
        return False
    if not all(_norm_cap(c) in caps for c in includes.get("caps") or ()):
        return False
    return not includes.get("minKernel") or _parse_kernel(includes["minKernel"]) <= _KERNEL


def profile_to_oci(profile: dict, capabilities: Iterable[str]) -> dict:
    """Resolve a Docker-format profile for a container's (bounding) capabilities, as dockerd does.

    Returns an OCI ``linux.seccomp`` object, or ``{}`` when the profile disables seccomp
    (no defaultAction and no syscalls, like dockerd). Everything returned is a fresh copy.
    """
    if not isinstance(profile, dict):
        raise InvalidArgument("seccomp: profile must be a JSON object")
    if isinstance(capabilities, str):
        capabilities = [capabilities]
    caps = {_norm_cap(c) for c in capabilities}
    syscalls = profile.get("syscalls") or []
    if not profile.get("defaultAction") and not syscalls:
        return {}
    if not isinstance(syscalls, list):
        raise InvalidArgument("seccomp: 'syscalls' must be a list")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("seccomp: both 'architectures' and 'archMap' are specified, use one")
    _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"))

    oci: dict = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        oci["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if not isinstance(entry, dict):
            raise InvalidArgument(f"seccomp: bad archMap entry {entry!r}")
        if entry.get("architecture") == _NATIVE_SCMP_ARCH:
            arches = [entry["architecture"], *(entry.get("subArchitectures") or [])]
            break
    if arches:
        oci["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            oci[key] = json.loads(json.dumps(profile[key]))

    out = []
    for call in syscalls:
        if not isinstance(call, dict):
            raise InvalidArgument(f"seccomp: bad syscall entry {call!r}")
        names = _names(call)
        _action(call.get("action"), call.get("errnoRet"))
        args = _check_args(call.get("args"), names[0])
        if not _selected(call, caps):
            continue
        entry: dict = {"names": names, "action": call["action"]}
        if call.get("errnoRet") is not None:
            entry["errnoRet"] = call["errnoRet"]
        if args:
            entry["args"] = args
        out.append(entry)
    oci["syscalls"] = out
    return oci


# ---------------------------------------------------------------------------------------------
# Compilation with libseccomp (ctypes), cached per canonical input.
# ---------------------------------------------------------------------------------------------

_SCMP_FLTATR_CTL_NNP = 3
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_NR_SCMP_ERROR = -1
_BPF_MAXINSNS = 4096
_CACHE_SIZE = 64


class _ScmpArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


_lib_handle: ctypes.CDLL | None = None
_lib_lock = threading.Lock()
_cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
_cache_lock = threading.Lock()


def _lib() -> ctypes.CDLL:
    """Load libseccomp on first compile, not at import: the forked child imports this module."""
    global _lib_handle
    with _lib_lock:
        if _lib_handle is None:
            try:
                lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
            except OSError:
                from ctypes.util import find_library  # runs ldconfig: only as a fallback

                path = find_library("seccomp")
                if not path:
                    raise OSError(errno.ENOSYS, "seccomp: libseccomp is not installed") from None
                lib = ctypes.CDLL(path, use_errno=True)
            c_void_p, c_int, c_uint, c_u32 = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint,
                                              ctypes.c_uint32)
            for name, restype, argtypes in (
                ("seccomp_init", c_void_p, [c_u32]),
                ("seccomp_release", None, [c_void_p]),
                ("seccomp_arch_resolve_name", c_u32, [ctypes.c_char_p]),
                ("seccomp_arch_add", c_int, [c_void_p, c_u32]),
                ("seccomp_attr_set", c_int, [c_void_p, c_int, c_u32]),
                ("seccomp_syscall_resolve_name", c_int, [ctypes.c_char_p]),
                ("seccomp_rule_add_array", c_int,
                 [c_void_p, c_u32, c_int, c_uint, ctypes.POINTER(_ScmpArgCmp)]),
                ("seccomp_export_bpf", c_int, [c_void_p, c_int]),
            ):
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
            _lib_handle = lib
        return _lib_handle


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise InvalidArgument(f"seccomp: {what}: {os.strerror(-rc)}")


def _rules_for(args: list[dict]) -> list[list[dict]]:
    """Conditions per rule: AND in one rule, unless an arg index repeats, then OR (as runc)."""
    if not args:
        return [[]]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) != len(indexes):
        return [[a] for a in args]
    return [args]


def _build(lib: ctypes.CDLL, oci: dict) -> bytes:
    if not isinstance(oci, dict) or "defaultAction" not in oci:
        raise InvalidArgument("seccomp: linux.seccomp needs a defaultAction")
    default = _action(oci["defaultAction"], oci.get("defaultErrnoRet"))
    syscalls = oci.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise InvalidArgument("seccomp: 'syscalls' must be a list")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgument("seccomp: seccomp_init failed")
    try:
        for arch in oci.get("architectures") or []:
            if arch not in _OCI_ARCHES:
                raise InvalidArgument(f"seccomp: unknown architecture {arch!r}")
            token = lib.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_"):].lower().encode())
            if token == 0:
                continue  # this libseccomp predates the arch; it cannot run here anyway
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno.EEXIST:  # the native arch is already in the filter
                _check(rc, f"adding architecture {arch}")
        # The caller sets no_new_privs itself; TSYNC stays at its default (off).
        _check(lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0), "clearing CTL_NNP")
        if len(syscalls) > 32:
            # Binary-tree dispatch, as runc does for long rulesets (libseccomp >= 2.5).
            lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for call in syscalls:
            if not isinstance(call, dict):
                raise InvalidArgument(f"seccomp: bad syscall entry {call!r}")
            names = _names(call)
            action = _action(call.get("action"), call.get("errnoRet"))
            args = _check_args(call.get("args"), names[0])
            if action == default:
                continue  # libseccomp refuses rules that repeat the default action
            rules = []
            for conds in _rules_for(args):
                arr = (_ScmpArgCmp * max(len(conds), 1))(
                    *((a["index"], _OPS[a["op"]], a["value"], a["valueTwo"]) for a in conds))
                rules.append((len(conds), arr))
            for name in names:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # unknown to this libseccomp/arch: skip, like runc
                for count, arr in rules:
                    _check(lib.seccomp_rule_add_array(ctx, action, nr, count, arr),
                           f"adding rule for {name}")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    try:
        fd = os.memfd_create("pyjail-seccomp", os.MFD_CLOEXEC)
    except OSError:  # no memfd (old kernel, or refused by an outer seccomp policy)
        import tempfile

        with tempfile.TemporaryFile() as tmp:
            return _export_to(lib, ctx, tmp.fileno())
    try:
        return _export_to(lib, ctx, fd)
    finally:
        os.close(fd)


def _export_to(lib: ctypes.CDLL, ctx: int, fd: int) -> bytes:
    _check(lib.seccomp_export_bpf(ctx, fd), "exporting BPF")
    bpf = os.pread(fd, os.fstat(fd).st_size, 0)
    if len(bpf) % 8 or not 0 < len(bpf) // 8 <= _BPF_MAXINSNS:
        raise InvalidArgument(f"seccomp: filter has {len(bpf) / 8:g} instructions, the kernel "
                              f"takes 1..{_BPF_MAXINSNS}")
    return bpf


def compile_filter(oci_seccomp: dict) -> bytes:
    """Compile an OCI ``linux.seccomp`` object to raw ``struct sock_filter`` instructions.

    Cached by canonical JSON: containers start often with the same profile, and compiling
    costs milliseconds while a dict lookup does not. Unknown syscall names are skipped.
    """
    try:
        key = json.dumps(oci_seccomp, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"seccomp: profile is not JSON data: {exc}") from None
    with _cache_lock:
        bpf = _cache.get(key)
        if bpf is not None:
            _cache.move_to_end(key)
            return bpf
    bpf = _build(_lib(), oci_seccomp)
    with _cache_lock:
        bpf = _cache.setdefault(key, bpf)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return bpf


# ---------------------------------------------------------------------------------------------
# Loading (runs in the forked child right before execve: keep it to one syscall).
# ---------------------------------------------------------------------------------------------

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_LOG = 2
_SYS_SECCOMP = {"x86_64": 317, "i386": 354, "i686": 354, "aarch64": 277, "arm64": 277,
                "armv7l": 383, "armv6l": 383, "ppc64le": 358, "ppc64": 358, "s390x": 348,
                "riscv64": 277, "loongarch64": 277, "mips64": 5312}.get(os.uname().machine)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# A private libc handle so restype/argtypes here cannot clash with other modules' settings.
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int


def load_filter(bpf: bytes, log_failures: bool = False) -> None:
    """Install ``bpf`` on the calling thread (no_new_privs must already be set by the caller).

    ``log_failures`` adds SECCOMP_FILTER_FLAG_LOG so denied calls reach the audit log.
    Raises OSError with the kernel's errno.
    """
    if not isinstance(bpf, bytes):
        bpf = bytes(bpf)
    count, rest = divmod(len(bpf), 8)
    if rest or not 0 < count <= _BPF_MAXINSNS:
        raise OSError(errno.EINVAL, "seccomp: BPF program must be 1..4096 8-byte instructions")
    buf = ctypes.c_char_p(bpf)  # points into the bytes object; no copy
    prog = _SockFprog(count, ctypes.cast(buf, ctypes.c_void_p))
    flags = _SECCOMP_FILTER_FLAG_LOG if log_failures else 0
    err = errno.ENOSYS
    if _SYS_SECCOMP is not None:
        if _syscall(ctypes.c_long(_SYS_SECCOMP), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                    ctypes.c_long(flags), ctypes.byref(prog)) == 0:
            return
        err = ctypes.get_errno()
    if err == errno.ENOSYS and not flags:
        # Kernels before 3.17 (or an unknown syscall number): the prctl interface.
        if _prctl(ctypes.c_int(_PR_SET_SECCOMP), ctypes.c_ulong(_SECCOMP_MODE_FILTER),
                  ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0:
            return
        err = ctypes.get_errno()
    raise OSError(err, f"seccomp: loading filter: {os.strerror(err)}")
