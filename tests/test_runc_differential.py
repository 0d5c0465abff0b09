"""The same container under the built-in runtime and under runc (and crun where it runs):
an isolation probe must see the same confinement."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_isolation import PROBE, parse

RUNTIMES = ["runc", "crun"]

COMPARED = ["pid", "CapEff", "CapPrm", "CapBnd", "CapInh", "NoNewPrivs", "Seccomp", "ifaces",
            "keys", "firmware", "procsys", "sys", "mount", "unshare"]


def runtime_works(engine, name: str) -> str | None:
    if shutil.which(name) is None:
        return f"{name} is not installed"
    try:
        result = engine.run("busybox", ["true"], HostConfig={"Runtime": name}, timeout=30)
    except Exception as exc:  # noqa: BLE001 - the reason is the skip message
        return f"{name} cannot run containers on this host: {exc}"
    if result["StatusCode"] != 0:
        return f"{name} probe exited {result['StatusCode']}"
    return None


@pytest.fixture(scope="module")
def builtin_probe(engine):
    result = engine.run("busybox", ["sh", "-c", PROBE], timeout=60)
    assert result["StatusCode"] == 0
    return parse(result["stdout"].decode())


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_probe_sees_the_same_confinement(engine, builtin_probe, runtime):
    reason = runtime_works(engine, runtime)
    if reason:
        if runtime == "runc" and shutil.which("runc"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = engine.run("busybox", ["sh", "-c", PROBE], HostConfig={"Runtime": runtime},
                        timeout=60)
    assert result["StatusCode"] == 0, result
    other = parse(result["stdout"].decode())
    differences = {k: (builtin_probe.get(k), other.get(k)) for k in COMPARED
                   if builtin_probe.get(k) != other.get(k)}
    assert not differences, differences


@pytest.mark.parametrize("runtime", ["runc"])
def test_exit_code_logs_and_exec_under_runc(engine, runtime):
    if runtime_works(engine, runtime):
        pytest.skip(f"{runtime} unavailable")
    result = engine.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 5"],
                        HostConfig={"Runtime": runtime}, timeout=30)
    assert (result["StatusCode"], result["stdout"], result["stderr"]) == (5, b"out\n", b"err\n")
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"],
                                  "HostConfig": {"Runtime": runtime}})
    try:
        engine.containers.start(c.id)
        exec_id = engine.execs.create(c.id, {"Cmd": ["hostname"], "AttachStdout": True})
        sock, _tty, early = engine.execs.start(exec_id)
        data = early + b"".join(iter(lambda: sock.recv(65536), b""))
        sock.close()
        assert c.id[:12].encode() in data
        engine.containers.stop(c.id, timeout=1)
        assert not c.running
    finally:
        engine.containers.remove(c.id, force=True)
    assert subprocess.run(["runc", "--root", "/run/pyjail/runc", "state", c.id],
                          capture_output=True).returncode != 0
