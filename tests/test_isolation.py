"""Isolation probes: a script inside a real container reports what it can see and do."""

from __future__ import annotations

import re

import pytest

DOCKER_DEFAULT_CAP_MASK = 0xA80425FB  # the 14 default capabilities

PROBE = r"""
echo "pid=$$"
echo "hostname=$(hostname)"
grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ',')"
echo "kcore=$(wc -c < /proc/kcore 2>/dev/null || echo unreadable)"
echo "keys=$(cat /proc/keys 2>/dev/null | wc -c)"
echo "firmware=$(ls -A /sys/firmware 2>/dev/null | wc -l)"
touch /proc/sys/kernel/hostname 2>/dev/null && echo procsys=rw || echo procsys=ro
touch /sys/pyjail 2>/dev/null && echo sys=rw || echo sys=ro
mount -t tmpfs none /mnt 2>/dev/null && echo mount=ok || echo mount=denied
unshare -m true 2>/dev/null && echo unshare=ok || echo unshare=denied
echo "devs=$(ls /dev | tr '\n' ',')"
echo "mounts=$(cut -d' ' -f5 /proc/self/mountinfo | tr '\n' ',')"
echo "procs=$(ls /proc | grep -E '^[0-9]+$' | wc -l)"
"""


def parse(out: str) -> dict:
    facts = {}
    for line in out.splitlines():
        m = re.match(r"^([A-Za-z]+)[=:]\s*(.*)$", line)
        if m:
            facts[m.group(1)] = m.group(2)
    return facts


@pytest.fixture(scope="module")
def probe(engine):
    result = engine.run("busybox", ["sh", "-c", PROBE], HostConfig={}, timeout=60)
    assert result["StatusCode"] == 0, result
    return parse(result["stdout"].decode())


def test_container_process_is_pid_1_and_sees_only_its_own_processes(probe):
    assert probe["pid"] == "1"
    assert int(probe["procs"]) <= 6  # sh and its pipeline; the host has far more


def test_container_has_its_own_hostname(probe, engine):
    assert re.fullmatch(r"[0-9a-f]{12}", probe["hostname"])


def test_default_capabilities_are_dockers_14(probe):
    for key in ("CapEff", "CapPrm", "CapBnd"):
        assert int(probe[key], 16) == DOCKER_DEFAULT_CAP_MASK, key
    assert int(probe["CapInh"], 16) == 0
    assert bin(DOCKER_DEFAULT_CAP_MASK).count("1") == 14


def test_no_new_privs_and_seccomp_filter_are_set(probe):
    assert probe["NoNewPrivs"] == "1"
    assert probe["Seccomp"] == "2"


def test_network_none_has_only_loopback(probe):
    assert probe["ifaces"].strip(",") == "lo"


def test_masked_paths_are_empty(probe):
    assert probe["kcore"] in ("0", "unreadable")
    assert probe["keys"] == "0"
    assert probe["firmware"] == "0"


def test_proc_sys_and_sys_are_read_only(probe):
    assert probe["procsys"] == "ro"
    assert probe["sys"] == "ro"


def test_forbidden_syscalls_fail(probe):
    assert probe["mount"] == "denied"
    assert probe["unshare"] == "denied"


def test_dev_holds_only_the_standard_nodes(probe):
    devs = set(filter(None, probe["devs"].split(",")))
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"} <= devs
    assert not devs & {"sda", "vda", "mem", "kmsg", "console"}


def test_container_sees_only_its_own_mounts(probe):
    mounts = probe["mounts"].split(",")
    assert "/" in mounts
    assert not any(m.startswith(("/work", "/var/lib", "/var/tmp", "/root")) for m in mounts)


def test_memory_limit_kills_and_reports_oom(engine):
    result = engine.run("busybox", ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                        HostConfig={"Memory": 16 * 1024 * 1024}, timeout=60)
    assert result["StatusCode"] == 137
    assert result["OOMKilled"] is True


def test_pids_limit_makes_fork_fail(engine):
    script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; wait"
    result = engine.run("busybox", ["sh", "-c", script], HostConfig={"PidsLimit": 5}, timeout=60)
    assert b"can't fork" in result["stderr"] or b"Resource temporarily" in result["stderr"]


def test_exec_gets_the_same_confinement(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"]})
    try:
        engine.containers.start(c.id)
        exec_id = engine.execs.create(c.id, {"Cmd": ["sh", "-c", PROBE], "AttachStdout": True})
        sock, tty, early = engine.execs.start(exec_id)
        data = early
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        out = demux(data)[1].decode()
        facts = parse(out)
        assert int(facts["CapEff"], 16) == DOCKER_DEFAULT_CAP_MASK
        assert facts["NoNewPrivs"] == "1" and facts["Seccomp"] == "2"
        assert facts["mount"] == "denied"
        assert facts["hostname"] == c.id[:12]
        assert engine.execs.wait(exec_id) == 0
    finally:
        engine.containers.remove(c.id, force=True)


def demux(data: bytes) -> dict[int, bytes]:
    out = {1: b"", 2: b""}
    while len(data) >= 8:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        out[stream] = out.get(stream, b"") + data[8:8 + size]
        data = data[8 + size:]
    return out


def test_time_namespace_offsets_shift_boottime(engine):
    day = 86400
    result = engine.run("busybox", ["cut", "-d.", "-f1", "/proc/uptime"],
                        HostConfig={"TimeOffsets": {"boottime": 10 * day}}, timeout=30)
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    assert result["StatusCode"] == 0
    assert int(result["stdout"]) >= host_uptime + 10 * day - 5


def test_no_host_file_descriptor_leaks_into_the_container(engine):
    # PID 1 (the shell) holds 0-2; anything else would be a host fd that leaked in.
    result = engine.run("busybox", ["sh", "-c", "ls /proc/1/fd; true"], timeout=30)
    assert sorted(result["stdout"].split()) == [b"0", b"1", b"2"]
