"""``pyjail storage migrate``: a data root with images, a container on a named volume, a
backup and a schedule moves to another directory; a daemon on the new root sees and runs
the same things. Refused while the daemon or a container runs; resumable after a crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from daemon_fixtures import Daemon, _env, import_busybox, start_daemon
from test_cli import pyjail

from pyjail.engine import Engine, run_dir_for
from pyjail.errors import Conflict
from pyjail.images import busybox_image
from pyjail.storage.migrate import MARKER, migrate

CMD = ["sh", "-c", "echo run >> /data/log; cat /data/log"]


def _start_with_config(base: Path, config: Path) -> Daemon:
    sock, pidfile, log_path = str(base / "d2.sock"), base / "d2.pid", base / "d2.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyjail_daemon.main", "--config", str(config),
             "-H", f"unix://{sock}", "--pidfile", str(pidfile)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env())
    d = Daemon(proc, base, sock, pidfile, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, d.log_text()
        try:
            if d.request("GET", "/_ping", timeout=2).status == 200:
                return d
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"daemon on the new root did not answer: {d.log_text()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)


def _listing(d: Daemon) -> dict:
    return {
        "images": sorted(i["Id"] for i in d.request("GET", "/images/json").json()),
        "containers": sorted((c["Id"], c["Names"][0]) for c in
                             d.request("GET", "/containers/json?all=1").json()),
        "volumes": sorted(v["Name"] for v in d.request("GET", "/volumes").json()["Volumes"]),
        "backups": sorted(b["Id"] for b in d.request("GET", "/pyjail/v1/backups").json()),
        "schedules": sorted(s["Id"] for s in d.request("GET", "/pyjail/v1/schedules").json()),
    }


def _wait_exit(d: Daemon, name: str) -> int:
    resp = d.request("POST", f"/containers/{name}/wait", timeout=60)
    assert resp.status == 200, resp.body
    return resp.json()["StatusCode"]


@pytest.mark.parametrize("how", ["rename", "copy"])
def test_migrate_a_daemon_data_root_and_run_it_there(how):
    d = start_daemon()
    base, old = d.data_root, d.data_root / "data"
    new = base / "moved"
    new_daemon = None
    try:
        import_busybox(d)
        assert d.request("POST", "/images/busybox/tag?repo=mine&tag=v1").status == 201
        assert d.request("POST", "/volumes/create", {"Name": "mv-vol"}).status == 201
        cid = d.create(CMD, name="mv-c", HostConfig={"NetworkMode": "none",
                                                    "Binds": ["mv-vol:/data"]})
        assert d.request("POST", f"/containers/{cid}/start").status == 204
        assert _wait_exit(d, cid) == 0
        backup = d.request("POST", "/pyjail/v1/containers/mv-c/backup?mode=stop", timeout=120)
        assert backup.status == 200 and b'"aux"' in backup.body, backup.body
        sched = d.request("POST", "/pyjail/v1/schedules",
                          {"Container": "mv-c", "Interval": 3600, "Keep": 3})
        assert sched.status == 201, sched.body
        runner = d.create(["sleep", "300"], name="mv-running")
        assert d.request("POST", f"/containers/{runner}/start").status == 204
        before = _listing(d)
        config = base / "daemon.json"
        config.write_text(json.dumps({"data-root": str(old), "log-level": "info"}))

        busy = pyjail("storage", "migrate", "--from", str(old), "--to", str(new))
        assert busy.returncode == 1 and "daemon is running" in busy.stderr, busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1

        _stop(d.process)   # its containers keep running in the supervisor
        running = pyjail("storage", "migrate", "--from", str(old), "--to", str(new))
        assert running.returncode == 1 and "mv-running" in running.stderr, running.stderr
        assert old.is_dir() and not new.exists()
        engine = Engine(old, restart_policies=False)
        engine.containers.kill("mv-running")
        engine.containers.wait("mv-running", timeout=10)
        engine.close()

        moved = pyjail("storage", "migrate", "--from", str(old), "--to", str(new),
                       "--config", str(config), *(["--copy"] if how == "copy" else []))
        assert moved.returncode == 0, moved.stderr
        assert ("verified the copy" in moved.stderr) == (how == "copy"), moved.stderr
        assert moved.stdout.strip() == str(new)
        assert not old.exists() and not (new / MARKER).exists()
        assert not os.path.exists(run_dir_for(str(old)))
        assert json.loads(config.read_text()) == {"data-root": str(new), "log-level": "info"}
        leftover = subprocess.run(["grep", "-rl", "--include=*.json", str(old), str(new)],
                                  capture_output=True, text=True).stdout
        assert leftover == ""

        new_daemon = _start_with_config(base, config)
        assert _listing(new_daemon) == before
        vol = new_daemon.request("GET", "/volumes/mv-vol").json()
        assert vol["Mountpoint"] == str(new / "volumes" / "mv-vol" / "_data")
        assert new_daemon.request("POST", "/containers/mv-c/start").status == 204
        assert _wait_exit(new_daemon, "mv-c") == 0
        assert (new / "volumes" / "mv-vol" / "_data" / "log").read_text() == "run\nrun\n"
        info = new_daemon.request("GET", "/containers/mv-c/json").json()
        assert info["Mounts"][0]["Source"] == vol["Mountpoint"]
        bid = before["backups"][0]
        entry = next(b for b in new_daemon.request("GET", "/pyjail/v1/backups").json()
                     if b["Id"] == bid)
        assert entry["Path"].startswith(str(new) + "/")
        assert new_daemon.request("POST", f"/pyjail/v1/backups/{bid}/verify").status == 200
    finally:
        _stop(d.process)
        if new_daemon is not None:
            _stop(new_daemon.process)
        for root in (old, new):
            if root.is_dir():
                Engine(root, restart_policies=False).shutdown_supervisor()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def small_root():
    """An engine data root (no daemon): busybox, a volume, a container record using it."""
    base = Path(tempfile.mkdtemp(prefix="pyjail-test-mig-", dir="/var/tmp"))
    root = base / "a"
    engine = Engine(root, start_supervisor=False, restart_policies=False)
    busybox_image(engine.images, "busybox:latest")
    engine.volumes.create("v1")
    (root / "volumes" / "v1" / "_data" / "f").write_text("data")
    os.link(root / "volumes" / "v1" / "_data" / "f", root / "volumes" / "v1" / "_data" / "g")
    os.setxattr(root / "volumes" / "v1" / "_data" / "f", "user.k", b"v")
    os.symlink("/etc/passwd", root / "volumes" / "v1" / "_data" / "abs-link")
    engine.containers.create({"Image": "busybox", "Cmd": ["true"],
                              "HostConfig": {"NetworkMode": "none", "Binds": ["v1:/data"]}},
                             name="rec")
    engine.close()
    yield base, root
    for r in (base / "a", base / "b"):
        if r.is_dir():
            Engine(r, start_supervisor=False, restart_policies=False).shutdown_supervisor()
    shutil.rmtree(base, ignore_errors=True)


def _source(root: Path) -> str:
    cdir = next((root / "containers").iterdir())
    return json.loads((cdir / "config.json").read_text())["Mounts"][0]["Source"]


def test_copy_mode_keeps_hardlinks_xattrs_symlinks(small_root):
    base, root = small_root
    dst = base / "b"
    result = migrate(root, dst, copy=True)
    assert result["Method"] == "copy" and not root.exists()
    data = dst / "volumes" / "v1" / "_data"
    assert os.stat(data / "f").st_ino == os.stat(data / "g").st_ino
    assert os.getxattr(data / "f", "user.k") == b"v"
    assert os.readlink(data / "abs-link") == "/etc/passwd"   # user data: never rewritten
    assert _source(dst) == str(data)


def test_rerun_after_a_crash_mid_copy_and_after_the_rename(small_root):
    base, root = small_root
    dst = base / "b"
    dst.mkdir()   # a copy that died half way: marked, partial, unverified
    (dst / MARKER).write_text(json.dumps({"From": str(root), "To": str(dst),
                                          "Step": "copying"}))
    (dst / "images").mkdir()
    (dst / "images" / "half-written").write_text("x")
    result = migrate(root, dst)
    assert result["Method"] == "copy" and not root.exists()
    assert not (dst / "images" / "half-written").exists()
    assert _source(dst) == str(dst / "volumes" / "v1" / "_data")

    # a rename that happened, records not yet rewritten: the marker moved with the tree
    (dst / MARKER).write_text(json.dumps({"From": str(root), "To": str(dst),
                                          "Step": "renamed"}))
    cdir = next((dst / "containers").iterdir())
    record = json.loads((cdir / "config.json").read_text())
    record["Mounts"][0]["Source"] = str(root / "volumes" / "v1" / "_data")
    (cdir / "config.json").write_text(json.dumps(record))
    result = migrate(root, dst)
    assert result["Method"] == "rename" and not (dst / MARKER).exists()
    assert _source(dst) == str(dst / "volumes" / "v1" / "_data")


def test_refusals(small_root):
    base, root = small_root
    engine = Engine(root, start_supervisor=False, restart_policies=False, exclusive=True)
    try:
        with pytest.raises(Conflict, match="daemon is running"):
            migrate(root, base / "b")
    finally:
        engine.close()
    (base / "b").mkdir()
    (base / "b" / "something").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        migrate(root, base / "b")
    with pytest.raises(Exception, match="contain each other"):
        migrate(root, root / "inner")
    assert root.is_dir()


def test_a_symlinked_root_moves_the_real_tree_and_rewrites_the_link_paths(small_root):
    base, real = small_root
    link = base / "link"
    link.symlink_to(real)
    cdir = next((real / "containers").iterdir())
    record = json.loads((cdir / "config.json").read_text())
    record["Mounts"][0]["Source"] = str(link / "volumes" / "v1" / "_data")   # opened by link
    (cdir / "config.json").write_text(json.dumps(record))
    result = migrate(link, base / "b")
    assert result["From"] == str(real) and not real.exists() and link.is_symlink()
    assert _source(base / "b") == str(base / "b" / "volumes" / "v1" / "_data")
