"""Device access control on cgroup v2: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices controller; the kernel instead runs the eBPF programs attached
to the cgroup (type BPF_CGROUP_DEVICE) on every open/mknod of a device node. This is what
runc and crun do. The rule list is first reduced the way the v1 devices controller would
(a default plus exceptions), then assembled into straight-line code: one block per
exception, returning its verdict on a match, and the default at the end.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

from pyjail.errors import RuntimeFailure

from .base import DeviceRule

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
SYS_bpf = _SYS_BPF.get(platform.machine(), 321)

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

# struct bpf_cgroup_dev_ctx { u32 access_type /* (access << 16) | type */; u32 major, minor; }
DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_ALL_ACCESS = ACC_MKNOD | ACC_READ | ACC_WRITE

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61          # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND64_K = 0x57
_RSH64_K = 0x77
_MOV64_K = 0xB7
_MOV64_X = 0xBF
_JEQ_K = 0x15
_JNE_K = 0x55
_EXIT = 0x95

_ATTR_SIZE = 128       # a zeroed union bpf_attr prefix; the kernel zero-fills the rest
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """struct bpf_insn: u8 code; u8 dst:4, src:4; s16 off; s32 imm (little endian)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _mask(access: str) -> int:
    return sum(_ACCESS_BITS[c] for c in set(access))


def emulate(rules: list[DeviceRule]) -> tuple[bool, list[DeviceRule]]:
    """Reduce an ordered rule list to (default_allow, exceptions) with v1 semantics.

    Starts from deny-all (the OCI baseline). A type "a" rule resets the default and drops
    all exceptions; a rule against the default adds an exception; a rule agreeing with the
    default takes its access away from the exception for the same device.
    """
    default_allow = False
    exceptions: dict[tuple[str, int, int], int] = {}
    for rule in rules:
        if rule.type == "a":
            default_allow, exceptions = rule.allow, {}
            continue
        key = (rule.type, rule.major, rule.minor)
        if rule.allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | _mask(rule.access)
        elif key in exceptions:
            left = exceptions[key] & ~_mask(rule.access)
            if left:
                exceptions[key] = left
            else:
                del exceptions[key]
    out = [DeviceRule(not default_allow, t, ma, mi, "".join(c for c in "rwm" if m & _mask(c)))
           for (t, ma, mi), m in exceptions.items()]
    return default_allow, out


def assemble(rules: list[DeviceRule]) -> bytes:
    """The program: 1 lets the access through, 0 makes open/mknod fail with EPERM.

    Allow exceptions must cover all requested access bits (v1's match_exception); deny
    exceptions match on any overlap (v1's match_exception_partial).
    """
    default_allow, exceptions = emulate(rules)
    prog = [
        _insn(_LDX_W, 2, 1, 0), _insn(_AND64_K, 2, imm=0xFFFF),    # r2 = device type
        _insn(_LDX_W, 3, 1, 0), _insn(_RSH64_K, 3, imm=16),        # r3 = access bits
        _insn(_LDX_W, 4, 1, 4),                                    # r4 = major
        _insn(_LDX_W, 5, 1, 8),                                    # r5 = minor
    ]
    for ex in exceptions:
        block: list[tuple] = [(_JNE_K, 2, DEV_BLOCK if ex.type == "b" else DEV_CHAR)]
        mask = _mask(ex.access)
        if ex.allow and mask != _ALL_ACCESS:
            block += [(_MOV64_X, 1, 3), (_AND64_K, 1, ~mask & _ALL_ACCESS), (_JNE_K, 1, 0)]
        elif not ex.allow and mask != _ALL_ACCESS:
            block += [(_MOV64_X, 1, 3), (_AND64_K, 1, mask), (_JEQ_K, 1, 0)]
        if ex.major >= 0:
            block.append((_JNE_K, 4, ex.major))
        if ex.minor >= 0:
            block.append((_JNE_K, 5, ex.minor))
        end = len(block) + 2                 # + "r0 = verdict; exit": a miss skips to here
        for i, (code, reg, value) in enumerate(block):
            if code == _MOV64_X:
                prog.append(_insn(code, reg, value))
            elif code == _AND64_K:
                prog.append(_insn(code, reg, imm=value))
            else:
                prog.append(_insn(code, reg, off=end - i - 1, imm=value))
        prog += [_insn(_MOV64_K, 0, imm=int(ex.allow)), _insn(_EXIT)]
    prog += [_insn(_MOV64_K, 0, imm=int(default_allow)), _insn(_EXIT)]
    return b"".join(prog)


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    ret = _libc.syscall(SYS_bpf, ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def load_program(insns: bytes) -> int:
    """bpf(BPF_PROG_LOAD); returns the program fd. On rejection the verifier log is quoted."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
                     ctypes.addressof(code), ctypes.addressof(license_))
    struct.pack_into("16s", attr, 48, b"pyjail_devices")
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as first:
        log = ctypes.create_string_buffer(1 << 16)
        struct.pack_into("<IIQ", attr, 24, 1, len(log), ctypes.addressof(log))
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError:
            text = log.value.decode(errors="replace").strip()
            raise RuntimeFailure(
                f"cannot load the device filter: {first.strerror}" + (f"\n{text}" if text else ""),
            ) from first


def query_programs(cgroup_fd: int) -> tuple[list[int], int]:
    """Ids of the device programs attached directly to the cgroup, and their attach flags."""
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, BPF_CGROUP_DEVICE, 0, 0,
                     ctypes.addressof(ids), len(ids))
    _bpf(BPF_PROG_QUERY, attr)
    flags, = struct.unpack_from("<I", attr, 12)
    count, = struct.unpack_from("<I", attr, 24)
    return list(ids[:count]), flags


def _attach_attr(cgroup_fd: int, prog_fd: int, flags: int = 0) -> ctypes.Array:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, flags)
    return attr


def _prog_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def attached_program_ids(cgroup_dir: str) -> list[int]:
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return query_programs(fd)[0]
    finally:
        os.close(fd)


def set_device_rules(cgroup_dir: str, rules: list[DeviceRule]) -> None:
    """Attach a program enforcing ``rules`` to a cgroup2 directory, replacing older ones.

    The new program is attached (BPF_F_ALLOW_MULTI) before the old ones are detached, so
    there is no moment without a filter. The cgroup holds the program: our fds are closed.
    """
    prog_fd = load_program(assemble(rules))
    try:
        cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(prog_fd)
        raise RuntimeFailure(f"cannot open cgroup {cgroup_dir}: {e.strerror}") from e
    try:
        old, old_flags = query_programs(cg_fd)
        try:
            _bpf(BPF_PROG_ATTACH, _attach_attr(cg_fd, prog_fd, BPF_F_ALLOW_MULTI))
        except OSError as e:
            if e.errno != errno.EPERM or not old or old_flags & BPF_F_ALLOW_MULTI:
                raise
            # someone attached in single-program mode: attaching the same way replaces it
            _bpf(BPF_PROG_ATTACH, _attach_attr(cg_fd, prog_fd, old_flags))
            return
        for prog_id in old:
            try:
                fd = _prog_fd_by_id(prog_id)
            except OSError:
                continue         # already gone
            try:
                _bpf(BPF_PROG_DETACH, _attach_attr(cg_fd, fd))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
            finally:
                os.close(fd)
    except OSError as e:
        raise RuntimeFailure(f"cannot attach the device filter to {cgroup_dir}: "
                             f"{e.strerror}") from e
    finally:
        os.close(cg_fd)
        os.close(prog_fd)
