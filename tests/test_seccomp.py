"""Seccomp: Docker profile resolution, libseccomp compilation, and filters on the real kernel.

Kernel tests fork a child, set no_new_privs, load the filter and try syscalls through ctypes;
results come back to the parent as JSON through a pipe. The test process runs as root with all
capabilities, so an EPERM in the child can only come from the filter.
"""

from __future__ import annotations

import copy
import ctypes
import errno
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable

import pytest

from pyjail.errors import InvalidArgument
from pyjail.runtime import seccomp
from pyjail.runtime.seccomp import DEFAULT_PROFILE, compile_filter, load_filter, profile_to_oci

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
X86_64 = os.uname().machine == "x86_64"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (all capabilities)")

PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000
AF_UNIX, AF_ALG, AF_VSOCK = 1, 38, 40
SOCK_STREAM, SOCK_SEQPACKET = 1, 5

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def nr(name: str) -> int:
    """Syscall number on this machine, from libseccomp (keeps the tests arch-neutral)."""
    number = seccomp._lib().seccomp_syscall_resolve_name(name.encode())
    assert number >= 0, name
    return number


def sc(name: str, *args: int | bytes | None) -> int:
    """Raw syscall: its return value, or -errno."""
    cargs = [a if isinstance(a, bytes) or a is None else ctypes.c_long(a) for a in args]
    ret = _libc.syscall(ctypes.c_long(nr(name)), *cargs)
    return -ctypes.get_errno() if ret == -1 else ret


def seccomp_mode() -> str:
    with open("/proc/self/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith("Seccomp:"))


def in_filtered_child(bpf: bytes, probe: Callable[[], dict], *, log_failures: bool = False,
                      no_new_privs: bool = True) -> tuple[dict, int]:
    """Fork, (set no_new_privs,) load ``bpf``, run ``probe``; return its dict and wait status."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(rfd)
            if no_new_privs:
                assert _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            t0 = time.perf_counter()
            load_filter(bpf, log_failures=log_failures)
            result = {"load_seconds": time.perf_counter() - t0, **probe()}
        except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
            result, code = {"error": f"{type(exc).__name__}: {exc}",
                            "errno": getattr(exc, "errno", None)}, 1
        try:
            os.write(wfd, json.dumps(result).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    return (json.loads(b"".join(chunks)) if chunks else {}), status


def run_ok(bpf: bytes, probe: Callable[[], dict], **kw: bool) -> dict:
    result, status = in_filtered_child(bpf, probe, **kw)
    assert "error" not in result, result
    assert os.waitstatus_to_exitcode(status) == 0
    return result


@pytest.fixture(scope="module")
def default_oci() -> dict:
    return profile_to_oci(DEFAULT_PROFILE, DOCKER_CAPS)


@pytest.fixture(scope="module")
def default_bpf(default_oci: dict) -> bytes:
    return compile_filter(default_oci)


def names_in(oci: dict) -> set[str]:
    return {name for call in oci["syscalls"] for name in call["names"]}


def rules_for(oci: dict, name: str) -> list[dict]:
    return [call for call in oci["syscalls"] if name in call["names"]]


# --- profile_to_oci -------------------------------------------------------------------------

def test_default_profile_shape() -> None:
    assert DEFAULT_PROFILE["defaultAction"] == "SCMP_ACT_ERRNO"
    assert DEFAULT_PROFILE["defaultErrnoRet"] == errno.EPERM
    allowed = DEFAULT_PROFILE["syscalls"][0]
    assert allowed["action"] == "SCMP_ACT_ALLOW" and "includes" not in allowed
    assert {"read", "write", "openat", "execve", "getpid", "socketcall"} <= set(allowed["names"])
    assert not {"mount", "reboot", "keyctl", "unshare", "setns", "ptrace", "clone"} & set(
        allowed["names"])
    json.dumps(DEFAULT_PROFILE)  # plain JSON data, like a profile file


def test_default_caps_resolution(default_oci: dict) -> None:
    oci = default_oci
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 1
    names = names_in(oci)
    assert "chroot" in names  # CAP_SYS_CHROOT is a default cap
    for name in ("mount", "umount2", "unshare", "setns", "reboot", "kcmp", "init_module", "acct",
                 "bpf", "perf_event_open", "syslog", "open_by_handle_at", "settimeofday"):
        assert name not in names, name
    # clone only without namespace flags; clone3 answers ENOSYS so libc falls back to clone.
    (clone,) = rules_for(oci, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                              "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = rules_for(oci, "clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == errno.ENOSYS
    socket_ops = sorted((r["args"][0]["op"], r["args"][0]["value"])
                        for r in rules_for(oci, "socket"))
    assert socket_ops == [("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40), ("SCMP_CMP_LT", 38)]
    assert sorted(r["args"][0]["value"] for r in rules_for(oci, "personality")) == [
        0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    for call in oci["syscalls"]:  # OCI form: no Docker-only keys
        assert set(call) <= {"names", "action", "errnoRet", "args"}
    if X86_64:
        assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        assert {"arch_prctl", "modify_ldt"} <= names
        assert not {"s390_runtime_instr", "set_tls", "riscv_flush_icache"} & names


def test_sys_admin_and_other_caps() -> None:
    oci = profile_to_oci(DEFAULT_PROFILE, [*DOCKER_CAPS, "sys_admin", "SYS_PTRACE", "CAP_SYS_BOOT"])
    names = names_in(oci)
    assert {"mount", "umount2", "unshare", "setns", "sethostname", "clone3", "bpf", "syslog",
            "ptrace", "kcmp", "pidfd_getfd", "reboot"} <= names
    # With CAP_SYS_ADMIN, clone is unconditional and the restricted clone/clone3 rules drop out.
    assert all("args" not in r for r in rules_for(oci, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(oci, "clone3"))
    assert "init_module" not in names and "iopl" not in names


def test_result_is_a_copy(default_oci: dict) -> None:
    before = json.dumps(DEFAULT_PROFILE, sort_keys=True)
    oci = profile_to_oci(DEFAULT_PROFILE, DOCKER_CAPS)
    oci["syscalls"][0]["names"].append("kexec_load")
    oci["syscalls"][2]["args"][0]["value"] = 0
    assert json.dumps(DEFAULT_PROFILE, sort_keys=True) == before


def test_includes_excludes_min_kernel_and_arches() -> None:
    native = seccomp._NATIVE_ARCH
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"name": "old_kernel", "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "1.0"}},
            {"names": ["future_kernel"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "99.0"}},
            {"names": ["excl_old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "2.6"}},
            {"names": ["here"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": [native]}},
            {"names": ["elsewhere"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["nope"]}},
            {"names": ["not_here"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": [native]}},
            {"names": ["two_caps"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_KILL", "CAP_NET_ADMIN"]}},
            {"names": ["one_cap"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_KILL"]}},
            {"names": ["unless_any"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"caps": ["CAP_NET_ADMIN", "CAP_KILL"]}},
        ],
    }
    oci = profile_to_oci(profile, ["kill"])
    assert oci["architectures"] == ["SCMP_ARCH_X86_64"]  # legacy key passes through
    assert names_in(oci) == {"old_kernel", "here", "one_cap"}
    oci = profile_to_oci(profile, ["CAP_NET_ADMIN", "CAP_KILL"])
    assert names_in(oci) == {"old_kernel", "here", "two_caps", "one_cap"}
    assert names_in(profile_to_oci(profile, [])) == {"old_kernel", "here", "unless_any"}


def test_unconfined_and_arch_map_miss() -> None:
    assert profile_to_oci({}, DOCKER_CAPS) == {}
    assert profile_to_oci({"syscalls": []}, DOCKER_CAPS) == {}
    oci = profile_to_oci({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [
        {"architecture": "SCMP_ARCH_PARISC", "subArchitectures": None}]}, [])
    assert "architectures" not in oci and oci["syscalls"] == []


@pytest.mark.parametrize("profile", [
    {"defaultAction": "SCMP_ACT_NOPE"},
    {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
    {"defaultAction": "SCMP_ACT_NOTIFY"},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
     "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]},
])
def test_invalid_profile(profile: dict) -> None:
    with pytest.raises(InvalidArgument):
        profile_to_oci(profile, DOCKER_CAPS)


@pytest.mark.parametrize("oci", [
    {},
    {"defaultAction": "SCMP_ACT_EXPLODE"},
    {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_PDP11"]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "nope"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "GT"}]}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1 << 64, "op": "SCMP_CMP_EQ"}]}]},
    {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": object()}]},
])
def test_compile_invalid(oci: dict) -> None:
    with pytest.raises(InvalidArgument):
        compile_filter(oci)


# --- compile_filter -------------------------------------------------------------------------

def test_compile_shape_and_cache(default_oci: dict, default_bpf: bytes) -> None:
    assert isinstance(default_bpf, bytes)
    assert len(default_bpf) % 8 == 0 and 0 < len(default_bpf) // 8 <= 4096
    shuffled = json.loads(json.dumps(default_oci, sort_keys=True))  # other key order, new objects
    again = compile_filter(shuffled)
    assert again is default_bpf  # the cache answered: the very same object
    assert compile_filter(copy.deepcopy(default_oci)) is default_bpf
    other = compile_filter(profile_to_oci(DEFAULT_PROFILE, [*DOCKER_CAPS, "CAP_SYS_ADMIN"]))
    assert other != default_bpf


def test_unknown_syscalls_and_redundant_rules_are_skipped() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["definitely_not_a_syscall", "getppid"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 99},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},  # same as default: dropped
    ]}
    bpf = compile_filter(oci)
    result = run_ok(bpf, lambda: {"getppid": sc("getppid"), "getpid": sc("getpid")})
    assert result["getppid"] == -99
    assert result["getpid"] > 0


# --- on the kernel --------------------------------------------------------------------------

def _probe_default() -> dict:
    tmp = tempfile.mkdtemp(prefix="pyjail-seccomp-")
    path = os.path.join(tmp, "f")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b"hello")
    os.lseek(fd, 0, 0)
    data = os.read(fd, 5).decode()
    os.close(fd)
    os.unlink(path)
    os.rmdir(tmp)

    sock = sc("socket", AF_UNIX, SOCK_STREAM, 0)
    if sock >= 0:
        os.close(sock)
    child = os.fork()  # clone without namespace flags
    if child == 0:
        os._exit(7)
    _, status = os.waitpid(child, 0)
    box: list[int] = []
    worker = threading.Thread(target=lambda: box.append(sc("gettid")))
    worker.start()  # glibc tries clone3 first, gets ENOSYS, falls back to clone
    worker.join()
    raw_clone = sc("clone", CLONE_NEWNS | signal.SIGCHLD, 0, 0, 0, 0)
    if raw_clone == 0:  # the filter failed to stop it: leave quietly
        os._exit(0)
    return {
        "seccomp": seccomp_mode(), "data": data, "getpid": sc("getpid") == os.getpid(),
        "fork_status": os.waitstatus_to_exitcode(status), "thread_tid": box[0] if box else 0,
        "socket_unix": sock,
        "mount": sc("mount", b"none", b"/nonexistent-pyjail", b"tmpfs", 0, None),
        "umount2": sc("umount2", b"/nonexistent-pyjail", 0),
        "reboot": sc("reboot", 0, 0, 0, None),  # bad magic: EINVAL if the filter let it by
        "keyctl": sc("keyctl", 0, -3, 0),
        # Over-long name: EINVAL if the filter let it by (the capability check comes first).
        "sethostname": sc("sethostname", b"x", 10000),
        "unshare_user": sc("unshare", CLONE_NEWUSER),
        "unshare_ns": sc("unshare", CLONE_NEWNS),
        "setns": sc("setns", -1, 0),
        "clone3": sc("clone3", None, 0),
        "clone_newns": raw_clone,
        "socket_vsock": sc("socket", AF_VSOCK, SOCK_STREAM, 0),
        "socket_alg": sc("socket", AF_ALG, SOCK_SEQPACKET, 0),
        "personality_query": sc("personality", 0xFFFFFFFF),
        "personality_rie": sc("personality", 0x0400000),  # READ_IMPLIES_EXEC
        "chroot": sc("chroot", b"/nonexistent-pyjail"),
    }


@needs_root
def test_default_filter_in_child(default_bpf: bytes) -> None:
    r = run_ok(default_bpf, _probe_default)
    assert r["seccomp"] == "2"
    assert r["data"] == "hello" and r["getpid"] is True
    assert r["fork_status"] == 7 and r["thread_tid"] > 0 and r["socket_unix"] >= 0
    for name in ("mount", "umount2", "reboot", "keyctl", "unshare_user", "unshare_ns", "setns",
                 "sethostname", "clone_newns", "socket_vsock", "socket_alg", "personality_rie"):
        assert r[name] == -errno.EPERM, (name, r[name])
    assert r["clone3"] == -errno.ENOSYS
    assert r["personality_query"] >= 0
    assert r["chroot"] == -errno.ENOENT  # CAP_SYS_CHROOT is in the default set
    print(f"\nload_filter (default profile, {len(default_bpf) // 8} insns): "
          f"{r['load_seconds'] * 1e6:.0f} us")


def _probe_sys_admin() -> dict:
    out = {"clone3": sc("clone3", None, 0), "unshare_ns": sc("unshare", CLONE_NEWNS)}
    if out["unshare_ns"] == 0:
        # Private first, so nothing we mount propagates back to the host's namespace.
        out["make_private"] = sc("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        target = tempfile.mkdtemp(prefix="pyjail-seccomp-")
        if out["make_private"] == 0:
            out["mount"] = sc("mount", b"pyjail", target.encode(), b"tmpfs", 0, None)
            out["umount2"] = sc("umount2", target.encode(), 0)
        os.rmdir(target)
    out["reboot"] = sc("reboot", 0, 0, 0, None)
    return out


@needs_root
def test_sys_admin_filter_allows_mount() -> None:
    bpf = compile_filter(profile_to_oci(DEFAULT_PROFILE, [*DOCKER_CAPS, "CAP_SYS_ADMIN"]))
    r = run_ok(bpf, _probe_sys_admin)
    assert r["unshare_ns"] == 0
    assert r["make_private"] == 0 and r["mount"] == 0 and r["umount2"] == 0
    assert r["clone3"] == -errno.EINVAL  # reached the kernel, which wants a real clone_args
    assert r["reboot"] == -errno.EPERM  # still no CAP_SYS_BOOT


def test_log_failures_flag(default_bpf: bytes) -> None:
    r = run_ok(default_bpf, lambda: {"seccomp": seccomp_mode(), "keyctl": sc("keyctl", 0, -3, 0)},
               log_failures=True)
    assert r["seccomp"] == "2" and r["keyctl"] == -errno.EPERM


@pytest.mark.parametrize(("op", "value", "value_two", "matching"), [
    ("SCMP_CMP_NE", 100, 0, {99, 101}),
    ("SCMP_CMP_LT", 100, 0, {99}),
    ("SCMP_CMP_LE", 100, 0, {99, 100}),
    ("SCMP_CMP_EQ", 100, 0, {100}),
    ("SCMP_CMP_GE", 100, 0, {100, 101}),
    ("SCMP_CMP_GT", 100, 0, {101}),
    ("SCMP_CMP_MASKED_EQ", 0x0F, 0x04, {100}),  # 100 & 0xf == 4; 99 -> 3, 101 -> 5
])
def test_arg_comparisons(op: str, value: int, value_two: int, matching: set[int]) -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 90,
         "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]}
    r = run_ok(compile_filter(oci),
               lambda: {str(who): sc("getpriority", 0, who) for who in (99, 100, 101)})
    assert {int(who) for who, ret in r.items() if ret == -90} == matching


def test_and_or_semantics() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        # Different arg indexes: one rule, all conditions must hold.
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 12345, "op": "SCMP_CMP_EQ"}]},
        # Same arg index twice: one rule per condition, any may hold (runc's behaviour).
        {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
         "args": [{"index": 0, "value": 11111, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 22222, "op": "SCMP_CMP_EQ"}]},
    ]}
    r = run_ok(compile_filter(oci), lambda: {
        "both": sc("getpriority", 0, 12345), "first": sc("getpriority", 0, 0),
        "second": sc("getpriority", 1, 12345),
        "pg1": sc("getpgid", 11111), "pg2": sc("getpgid", 22222), "pg0": sc("getpgid", 0)})
    assert r["both"] == -77 and r["first"] != -77 and r["second"] != -77
    assert r["pg1"] == -78 and r["pg2"] == -78 and r["pg0"] >= 0


def test_kill_process_action() -> None:
    oci = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    result, status = in_filtered_child(compile_filter(oci), lambda: {"ppid": sc("getppid")})
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (result, status)


@pytest.mark.parametrize(("bpf", "expected"), [
    (b"\x00" * 7, errno.EINVAL),  # not whole instructions
    (b"", errno.EINVAL),
    (b"\xff\xff\x00\x00\x00\x00\x00\x00", errno.EINVAL),  # opcode the kernel rejects
])
def test_load_filter_rejects_bad_programs(bpf: bytes, expected: int) -> None:
    result, status = in_filtered_child(bpf, dict)
    assert result.get("error", "").startswith("OSError") and result["errno"] == expected, result
    assert os.waitstatus_to_exitcode(status) == 1


@needs_root
def test_load_filter_needs_no_new_privs_or_cap(default_bpf: bytes) -> None:
    def drop_then_load() -> dict:
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)  # all capabilities gone, no_new_privs not set
        try:
            load_filter(default_bpf)
        except OSError as exc:
            return {"errno": exc.errno, "seccomp": seccomp_mode()}
        return {"errno": 0}

    allow_all = compile_filter({"defaultAction": "SCMP_ACT_ALLOW"})
    r = run_ok(allow_all, drop_then_load, no_new_privs=False)  # root may load without nnp
    assert r["errno"] == errno.EACCES and r["seccomp"] == "2"
