"""Shared fixtures: real engines on throw-away data roots, and a leak check at the end.

Everything runs for real as root: namespaces, cgroups, overlayfs, the supervisor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


SESSION_MARK = "PYJAIL_TEST_SESSION"


def pytest_configure(config):
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    # Inherited by every daemon and supervisor this suite starts: the leak check can tell
    # its own processes from those of another suite running on the same host.
    os.environ[SESSION_MARK] = str(os.getpid())


def _session_of(pid: str) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(SESSION_MARK.encode() + b"="):
            return item.split(b"=", 1)[1].decode()
    return None


def _other_suites() -> set[str]:
    """Marks of other live test sessions (their pytest, daemons or supervisors)."""
    ours, others = os.environ[SESSION_MARK], set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            mark = _session_of(proc.name)
            if mark and mark != ours:
                others.add(mark)
    return others


def _leftovers(only_processes: bool = False) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"pyjail.supervisor" in cmdline and b"pyjail-test" in cmdline \
                    and _session_of(proc.name) in (None, os.environ[SESSION_MARK]):
                found.append(f"process {proc.name}: {cmdline.decode(errors='replace')}")
    if only_processes:
        return found
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if "pyjail-test" in line:
                found.append("mount: " + line.split()[4])
    run = Path("/run/pyjail")
    if run.is_dir():
        found += [f"run dir: {d}" for d in run.glob("sup-*")]
    for base in Path("/sys/fs/cgroup").iterdir():
        pj = base / "pyjail"
        if pj.is_dir():
            for child in pj.iterdir():
                if child.is_dir():
                    found.append(f"cgroup: {child}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_after_suite():
    """Exact when this suite runs alone (as in CI). While another suite runs on the host,
    mounts and cgroups cannot be told apart, so only this suite's processes are checked."""
    before = set(_leftovers())
    yield
    alone = not _other_suites()
    after = [x for x in _leftovers(only_processes=not alone) if x not in before]
    assert not after, f"the suite left these behind: {after}"


def make_data_root(prefix: str = "pyjail-test-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))


def destroy_engine(engine) -> None:
    engine.shutdown_supervisor()
    shutil.rmtree(engine.data_root, ignore_errors=True)


@pytest.fixture(scope="session")
def engine():
    """One engine (and supervisor) for the session, with the offline busybox image."""
    from pyjail.engine import Engine
    from pyjail.images import busybox_image
    root = make_data_root()
    eng = Engine(root)
    busybox_image(eng.images)
    yield eng
    destroy_engine(eng)


@pytest.fixture
def run(engine):
    """Run a command in a fresh busybox container; returns (exit code, stdout, stderr)."""
    created = []

    def _run(cmd, image="busybox", host=None, **config):
        result = engine.run(image, cmd, HostConfig=host or {}, timeout=60, **config)
        created.append(result["Id"])
        return result["StatusCode"], result["stdout"].decode(), result["stderr"].decode()

    return _run


def runc_available() -> bool:
    return shutil.which("runc") is not None and subprocess.run(
        ["runc", "--version"], capture_output=True).returncode == 0
