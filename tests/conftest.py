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


def pytest_configure(config):
    os.environ.setdefault("PYTHONPATH", str(ROOT))


def _leftovers() -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if "pyjail-test" in line:
                found.append("mount: " + line.split()[4])
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"pyjail.supervisor" in cmdline and b"pyjail-test" in cmdline:
                found.append(f"process {proc.name}: {cmdline.decode(errors='replace')}")
    for base in Path("/sys/fs/cgroup").iterdir():
        pj = base / "pyjail"
        if pj.is_dir():
            for child in pj.iterdir():
                if child.is_dir():
                    found.append(f"cgroup: {child}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_leftovers_after_suite():
    before = set(_leftovers())
    yield
    after = [x for x in _leftovers() if x not in before]
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
