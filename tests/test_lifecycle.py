"""Container lifecycle against a real supervisor: exit codes, stop, logs, remove, bad input."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pyjail import errors


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_exit_code_propagates(run):
    code, out, _ = run(["sh", "-c", "echo hi; exit 3"])
    assert code == 3 and out == "hi\n"


def test_logs_keep_stdout_and_stderr_apart(engine):
    c = engine.containers.create({"Image": "busybox",
                                  "Cmd": ["sh", "-c", "echo out; echo err >&2; echo out2"]})
    try:
        engine.containers.start(c.id)
        engine.containers.wait(c.id, timeout=30)
        entries = list(engine.containers.logs(c.id))
        assert [(e.stream, e.data) for e in entries if e.stream == "stdout"] == [
            ("stdout", b"out\n"), ("stdout", b"out2\n")]
        assert [e.data for e in entries if e.stream == "stderr"] == [b"err\n"]
        raw = Path(c.log_path).read_text().splitlines()
        last = [e.data for e in engine.containers.logs(c.id, tail=1)]
        assert len(last) == 1 and last[0].decode() == json.loads(raw[-1])["log"]
        assert all('"time":' in line and '"stream":' in line for line in raw)
    finally:
        engine.containers.remove(c.id, force=True)


def test_stop_escalates_to_sigkill_after_timeout(engine):
    c = engine.containers.create({"Image": "busybox",
                                  "Cmd": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]})
    try:
        engine.containers.start(c.id)
        t0 = time.monotonic()
        engine.containers.stop(c.id, timeout=1)
        elapsed = time.monotonic() - t0
        assert c.state["ExitCode"] == 137
        assert elapsed >= 1.0
        assert c.status == "exited"
    finally:
        engine.containers.remove(c.id, force=True)


def test_stop_with_sigterm_handled_exits_promptly(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "100"]})
    try:
        engine.containers.start(c.id)
        engine.containers.stop(c.id, timeout=10)
        # sleep as PID 1 ignores SIGTERM's default action, so it needs the SIGKILL:
        assert c.state["ExitCode"] in (137, 143)
    finally:
        engine.containers.remove(c.id, force=True)


def test_init_reaps_and_forwards_signals(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "100"],
                                  "HostConfig": {"Init": True}})
    try:
        engine.containers.start(c.id)
        t0 = time.monotonic()
        engine.containers.stop(c.id, timeout=10)
        assert time.monotonic() - t0 < 5, "tini should forward SIGTERM to sleep"
        assert c.state["ExitCode"] == 143
    finally:
        engine.containers.remove(c.id, force=True)


def test_pause_and_unpause_freeze_the_container(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "100"]})
    try:
        engine.containers.start(c.id)
        from pyjail.runtime.cgroups import manager_for
        freezer = manager_for(f"/pyjail/{c.id}")
        engine.containers.pause(c.id)
        assert c.status == "paused" and freezer.is_frozen()
        with pytest.raises(errors.Conflict):
            engine.containers.pause(c.id)
        engine.containers.unpause(c.id)
        assert c.status == "running" and not freezer.is_frozen()
    finally:
        engine.containers.remove(c.id, force=True)


def test_remove_cleans_cgroups_and_directories(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "100"]})
    engine.containers.start(c.id)
    cgroup = Path(f"/sys/fs/cgroup/memory/pyjail/{c.id}")
    assert cgroup.is_dir()
    with pytest.raises(errors.Conflict):
        engine.containers.remove(c.id)
    engine.containers.remove(c.id, force=True)
    assert wait_for(lambda: not cgroup.exists())
    assert not c.dir.exists()
    with pytest.raises(errors.ContainerNotFound):
        engine.containers.get(c.id)


def test_restart_and_rename(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "100"]},
                                 name="lifecycle-rename")
    try:
        engine.containers.start(c.id)
        first_pid = c.state["Pid"]
        engine.containers.restart(c.id, timeout=0)
        assert c.running and c.state["Pid"] != first_pid
        engine.containers.rename(c.id, "lifecycle-renamed")
        assert engine.containers.get("lifecycle-renamed") is c
        with pytest.raises(errors.ContainerNotFound):
            engine.containers.get("lifecycle-rename")
    finally:
        engine.containers.remove(c.id, force=True)


def test_name_conflict_is_409(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, name="dup-name")
    try:
        with pytest.raises(errors.Conflict) as exc:
            engine.containers.create({"Image": "busybox", "Cmd": ["true"]}, name="dup-name")
        assert exc.value.status == 409 and "already in use" in str(exc.value)
    finally:
        engine.containers.remove(c.id, force=True)


def test_missing_command_fails_like_docker(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["no-such-command"]})
    try:
        with pytest.raises(errors.ExecutableNotFound) as exc:
            engine.containers.start(c.id)
        assert 'exec: "no-such-command": executable file not found in $PATH' in str(exc.value)
        assert exc.value.exit_code == 127
        assert c.state["ExitCode"] == 127
        assert not c.running
    finally:
        engine.containers.remove(c.id, force=True)


def test_unknown_image_is_not_found(engine):
    with pytest.raises(errors.ImageNotFound) as exc:
        engine.containers.create({"Image": "no-such-image:1.0", "Cmd": ["true"]})
    assert exc.value.status == 404


@pytest.mark.parametrize("host", [
    {"Memory": 1024}, {"Memory": -5}, {"NanoCpus": 10**15}, {"CpuQuota": 10},
    {"RestartPolicy": {"Name": "sometimes"}}, {"CapAdd": ["CAP_NOPE"]},
    {"Binds": ["relative:/x:bogus"]},
])
def test_invalid_input_is_rejected_before_anything_exists(engine, host):
    before = set(os.listdir(engine.data_root / "containers"))
    with pytest.raises(errors.InvalidArgument):
        engine.containers.create({"Image": "busybox", "Cmd": ["true"], "HostConfig": host})
    assert set(os.listdir(engine.data_root / "containers")) == before


def test_named_volume_and_read_only_bind(engine, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "greeting").write_text("hello from host\n")
    result = engine.run("busybox", ["sh", "-c", "cat /in/greeting; echo data > /vol/f; "
                                    "touch /in/x 2>/dev/null || echo ro"],
                        HostConfig={"Binds": [f"{host_dir}:/in:ro", "lifecycle-vol:/vol"]},
                        timeout=30)
    assert result["stdout"] == b"hello from host\nro\n"
    assert Path(engine.volumes.path("lifecycle-vol"), "f").read_text() == "data\n"
    again = engine.run("busybox", ["cat", "/vol/f"],
                       HostConfig={"Binds": ["lifecycle-vol:/vol"]}, timeout=30)
    assert again["stdout"] == b"data\n"
    engine.volumes.remove("lifecycle-vol")


def test_user_is_resolved_from_the_image(run):
    code, out, _ = run(["id"], User="nobody")
    assert code == 0 and "uid=65534(nobody)" in out


def test_env_workdir_and_cap_drop(run):
    code, out, _ = run(["sh", "-c", "echo $FOO; pwd; grep CapEff /proc/self/status"],
                       Env=["FOO=bar"], WorkingDir="/tmp", host={"CapDrop": ["ALL"]})
    lines = out.splitlines()
    assert lines[0] == "bar" and lines[1] == "/tmp"
    assert lines[2].endswith("0000000000000000")


def test_container_survives_the_engine_object(engine):
    """The supervisor holds the process: a second Engine on the same root sees it running."""
    from pyjail.engine import Engine
    c = engine.containers.create({"Image": "busybox",
                                  "Cmd": ["sh", "-c", "echo started; sleep 1; exit 7"]})
    engine.containers.start(c.id)
    other = Engine(engine.data_root)
    try:
        seen = other.containers.get(c.id)
        assert seen.running or seen.state["ExitCode"] == 7
        assert other.containers.wait(c.id, timeout=30)["StatusCode"] == 7
    finally:
        other.close()
        engine.containers.wait(c.id, timeout=30)
        engine.containers.remove(c.id, force=True)


def test_privileged_gets_every_capability_the_host_can_give(run):
    from pyjail.runtime.capabilities import ALL_CAPS, mask
    code, out, _ = run(["grep", "CapEff", "/proc/self/status"], host={"Privileged": True})
    assert code == 0
    assert int(out.split()[1], 16) == mask(ALL_CAPS)


def test_failed_start_of_auto_remove_container_removes_it(engine):
    c = engine.containers.create({"Image": "busybox", "Cmd": ["no-such-binary"],
                                  "HostConfig": {"AutoRemove": True}})
    with pytest.raises(errors.ExecutableNotFound):
        engine.containers.start(c.id)
    with pytest.raises(errors.ContainerNotFound):
        engine.containers.get(c.id)


def test_tty_lives_in_the_containers_own_devpts(engine):
    c = engine.containers.create({"Image": "busybox", "Tty": True,
                                  "Cmd": ["sh", "-c", "tty; ls /dev/pts"]})
    try:
        engine.containers.start(c.id)
        engine.containers.wait(c.id, timeout=30)
        out = b"".join(e.data for e in engine.containers.logs(c.id)).decode()
        assert "/dev/pts/0" in out and "not a tty" not in out
        exec_c = engine.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"]})
        engine.containers.start(exec_c.id)
        try:
            exec_id = engine.execs.create(exec_c.id, {"Cmd": ["tty"], "Tty": True,
                                                      "AttachStdout": True})
            sock, tty, early = engine.execs.start(exec_id)
            data = early + b"".join(iter(lambda: sock.recv(65536), b""))
            sock.close()
            assert tty and b"/dev/pts/" in data
        finally:
            engine.containers.remove(exec_c.id, force=True)
    finally:
        engine.containers.remove(c.id, force=True)
