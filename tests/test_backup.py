"""Backups end to end: two real daemons, real containers, every consistency mode.

A container appends a counter to a file in a named volume and to one in its own
filesystem; it is backed up on daemon A (with its image) and restored into daemon B,
which has no images at all, so the image must come from the archive. Damaged archives
(a flipped byte, a truncated file) must be refused before anything is created. A
schedule with retention 3 fires 5 times across a daemon restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from daemon_fixtures import (
    ROOT,
    Daemon,
    _env,
    import_busybox,
    start_daemon,
    stop_daemon,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

WRITER = ("trap 'exit 0' TERM; echo start >> /data/log; i=0; "
          "while true; do i=$((i+1)); echo line-$i >> /data/log; echo line-$i >> /fs.log; "
          "sleep 0.02; done")


def wait_for(cond: Callable[[], object], timeout: float = 20, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def daemons() -> Iterator[tuple[Daemon, Daemon]]:
    a = start_daemon()
    b = None
    try:
        import_busybox(a)
        b = start_daemon()   # no images at all: restores must bring their own
        yield a, b
    finally:
        for d in (a, b):
            if d is not None:
                stop_daemon(d)


def restart(d: Daemon) -> Daemon:
    """SIGTERM the daemon by PID and start a new one on the same data root."""
    os.kill(d.process.pid, signal.SIGTERM)
    d.process.wait(15)
    log = open(d.log_path, "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(d.data_root / "data"),
         "-H", f"unix://{d.socket_path}", "--pidfile", str(d.pidfile)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(), cwd=ROOT)
    log.close()
    d.process = proc

    def up() -> bool:
        try:
            return d.request("GET", "/_ping", timeout=2).status == 200
        except OSError:
            return False
    wait_for(up, 30, "daemon restart")
    return d


def stream(d: Daemon, path: str, raw: bytes | None = None) -> tuple[int, list[dict]]:
    resp = d.request("POST", path, raw=raw, timeout=120)
    if resp.status != 200:
        return resp.status, [resp.json()]
    return 200, [json.loads(line) for line in resp.body.splitlines() if line.strip()]


def backup(d: Daemon, container: str, **query: str) -> dict:
    qs = "&".join(f"{k}={quote(v)}" for k, v in query.items())
    status, lines = stream(d, f"/pyjail/v1/containers/{container}/backup?{qs}")
    assert status == 200, lines
    assert all("error" not in m for m in lines), lines
    assert any("progressDetail" in m for m in lines)
    return lines[-1]["aux"]


def volume_file(d: Daemon, volume: str, name: str) -> bytes:
    return (d.data_root / "data" / "volumes" / volume / "_data" / name).read_bytes()


def container_file(d: Daemon, cid: str, name: str) -> bytes:
    return (d.data_root / "data" / "containers" / cid / "diff" / name).read_bytes()


def state(d: Daemon) -> tuple[list[str], list[str]]:
    cs = sorted(c["Id"] for c in d.request("GET", "/containers/json?all=1").json())
    vs = sorted(v["Name"] for v in d.request("GET", "/volumes").json()["Volumes"] or [])
    return cs, vs


def start_writer(a: Daemon, name: str, volume: str) -> str:
    cid = a.create(["sh", "-c", WRITER], name=name,
                   HostConfig={"NetworkMode": "none", "Binds": [f"{volume}:/data"]})
    assert a.request("POST", f"/containers/{cid}/start").status == 204
    wait_for(lambda: volume_file(a, volume, "log").count(b"\n") > 15
             if (a.data_root / "data/volumes" / volume / "_data/log").exists() else False,
             what="writer output")
    return cid


@pytest.mark.parametrize("mode", ["live", "pause", "stop"])
def test_backup_and_restore_into_other_daemon(daemons: tuple[Daemon, Daemon], mode: str) -> None:
    a, b = daemons
    name, volume = f"app-{mode}", f"vol-{mode}"
    cid = start_writer(a, name, volume)
    hooks = {"pre_hook": "echo flushed > /data/hook", "post_hook": "echo resumed >> /data/hook"}
    aux = backup(a, name, mode=mode, with_image="1", **(hooks if mode == "pause" else {}))
    assert Path(aux["Path"]).parent == a.data_root / "data" / "backups"
    data = Path(aux["Path"]).read_bytes()
    assert aux["Size"] == len(data)
    assert aux["Sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    listed = {e["Name"]: e for e in a.request("GET", "/pyjail/v1/backups").json()}
    entry = listed[Path(aux["Path"]).name]
    assert (entry["Container"], entry["Mode"], entry["Image"]) == (name, mode, "busybox:latest")
    # the container is running again (stop mode restarts it) and still writing
    assert a.request("GET", f"/containers/{cid}/json").json()["State"]["Running"]

    status, lines = stream(b, "/pyjail/v1/backups/restore?start=0", raw=data)
    assert status == 200, lines
    result = lines[-1]["aux"]
    assert result["Name"] == name and result["Volumes"] == [volume]
    restored_vol = volume_file(b, volume, "log")
    restored_fs = container_file(b, result["ID"], "fs.log")
    wait_for(lambda: len(volume_file(a, volume, "log")) > len(restored_vol) + 20,
             what="source to move on")
    source_vol = volume_file(a, volume, "log")
    source_fs = container_file(a, cid, "fs.log")
    assert restored_vol.startswith(b"start\nline-1\n")
    assert source_vol.startswith(restored_vol) and source_fs.startswith(restored_fs)
    if mode in ("pause", "stop"):
        # frozen or stopped: no torn line, and both files from the same instant
        assert restored_vol.endswith(b"\n") and restored_fs.endswith(b"\n")
        assert restored_vol.count(b"\n") - 1 - restored_fs.count(b"\n") in (0, 1)
    if mode == "pause":
        assert volume_file(b, volume, "hook") == b"flushed\n"   # pre hook ran before the copy
        assert volume_file(a, volume, "hook") == b"flushed\nresumed\n"
    if mode == "stop":
        # byte-identical to the stopped state: the restarted writer continues right after it
        assert source_vol[len(restored_vol):].startswith(b"start\n")
    # the restored container runs on daemon B with its image loaded from the archive
    assert b.request("POST", f"/containers/{result['ID']}/start").status == 204
    wait_for(lambda: volume_file(b, volume, "log").count(b"start\n") == 2, what="restored run")
    # restoring again conflicts unless forced, and creates nothing
    before = state(b)
    status, body = stream(b, "/pyjail/v1/backups/restore", raw=data)
    assert status == 409, body
    assert state(b) == before


def test_damaged_archives_are_refused(daemons: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    a, b = daemons
    start_writer(a, "app-damage", "vol-damage")
    aux = backup(a, "app-damage", mode="pause")
    good = Path(aux["Path"]).read_bytes()
    ok = a.request("POST", f"/pyjail/v1/backups/verify?path={quote(aux['Path'])}")
    assert ok.status == 200 and ok.json()["Valid"], ok.body
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    bad = {"flipped": bytes(flipped), "truncated": good[: len(good) * 2 // 3]}
    before = state(b)
    for kind, blob in bad.items():
        path = tmp_path / f"{kind}.tar"
        path.write_bytes(blob)
        resp = b.request("POST", f"/pyjail/v1/backups/verify?path={quote(str(path))}")
        assert resp.status == 400, (kind, resp.body)
        assert resp.json()["message"]
        status, body = stream(b, f"/pyjail/v1/backups/restore?path={quote(str(path))}"
                                 "&name=damaged")
        assert status == 400, (kind, body)
        assert state(b) == before, kind
        assert not [p for p in (b.data_root / "data" / "backups").iterdir()
                    if p.name.startswith(".tmp-")]
    # the good one restores, and starts by default because it was running when backed up
    status, lines = stream(b, f"/pyjail/v1/backups/restore?path={quote(aux['Path'])}"
                              "&name=undamaged")
    assert status == 200, lines
    assert b.request("GET", "/containers/undamaged/json").json()["State"]["Running"]
    missing = b.request("POST", "/pyjail/v1/backups/restore?path=/nonexistent.tar")
    assert missing.status == 404
    assert b.request("DELETE", "/pyjail/v1/backups/nope").status == 404
    spec = a.request("GET", "/pyjail/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/pyjail/v1/backups/restore" in spec["paths"]


def test_volume_backup_restore(daemons: tuple[Daemon, Daemon]) -> None:
    a, b = daemons
    assert a.request("POST", "/volumes/create", {"Name": "solo"}).status == 201
    (a.data_root / "data/volumes/solo/_data/hello").write_bytes(b"hi\n")
    status, lines = stream(a, "/pyjail/v1/volumes/solo/backup?name=solo-1")
    assert status == 200 and "aux" in lines[-1], lines
    assert lines[-1]["aux"]["ID"] == "solo-1.tar"
    assert stream(a, "/pyjail/v1/volumes/solo/backup?name=solo-1")[0] == 409
    path = lines[-1]["aux"]["Path"]
    status, lines = stream(b, "/pyjail/v1/volumes/restore", raw=Path(path).read_bytes())
    assert status == 200, lines
    assert volume_file(b, "solo", "hello") == b"hi\n"
    name = Path(path).name
    assert a.request("DELETE", f"/pyjail/v1/backups/{name}").status == 204
    assert name not in {e["Name"] for e in a.request("GET", "/pyjail/v1/backups").json()}


def test_schedule_retention_survives_restart(daemons: tuple[Daemon, Daemon]) -> None:
    a, _ = daemons
    cid = a.create(["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"],
                   name="sched")
    assert a.request("POST", f"/containers/{cid}/start").status == 204
    bad = a.request("POST", "/pyjail/v1/schedules", {"Container": "sched", "Cron": "61 * * * *"})
    assert bad.status == 400
    resp = a.request("POST", "/pyjail/v1/schedules",
                     {"Container": "sched", "Interval": 1, "Keep": 3})
    assert resp.status == 201, resp.body
    sid = resp.json()["Id"]

    def runs() -> int:
        return next(s["Runs"] for s in a.request("GET", "/pyjail/v1/schedules").json()
                    if s["Id"] == sid)
    wait_for(lambda: runs() >= 2, 20, "two scheduled runs")
    restart(a)
    assert sid in {s["Id"] for s in a.request("GET", "/pyjail/v1/schedules").json()}
    wait_for(lambda: runs() >= 5, 20, "five scheduled runs")
    assert a.request("DELETE", f"/pyjail/v1/schedules/{sid}").status == 204
    mine = wait_for(lambda: (lambda m: m if len(m) == 3 else None)(
        [e for e in a.request("GET", "/pyjail/v1/backups").json() if e["Schedule"] == sid]),
        10, "retention to settle")
    assert all(e["Container"] == "sched" for e in mine)
    events = a.request("GET", f"/events?since=1&until={int(time.time()) + 1}").body
    assert b'"Type":"backup"' in events or b'"Type": "backup"' in events


def test_cron_matcher() -> None:
    from pyjail.backup.cron import Cron
    from pyjail.errors import InvalidArgument
    t0 = time.mktime((2026, 11, 27, 10, 7, 30, 0, 0, -1))   # a Friday
    assert Cron("*/15 * * * *").next_after(t0) == time.mktime((2026, 11, 27, 10, 15, 0, 0, 0, -1))
    assert Cron("0 3 * * 1").next_after(t0) == time.mktime((2026, 11, 30, 3, 0, 0, 0, 0, -1))
    assert Cron("30 8 1,15 * *").next_after(t0) == time.mktime((2026, 12, 1, 8, 30, 0, 0, 0, -1))
    for bad in ("* * * *", "60 * * * *", "*/0 * * * *", "a * * * *"):
        with pytest.raises(InvalidArgument):
            Cron(bad)


def test_bind_contents_when_asked(daemons: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    a, b = daemons
    src = tmp_path / "bind"
    src.mkdir()
    (src / "conf").write_bytes(b"setting=1\n")
    cid = a.create(["true"], name="binder",
                   HostConfig={"NetworkMode": "none", "Binds": [f"{src}:/conf:ro"]})
    assert cid
    plain = backup(a, "binder", with_image="1")
    with_binds = backup(a, "binder", include_binds="1", with_image="1")
    (src / "conf").unlink()
    # the same host path is not empty any more: a conflict without force, nothing created
    (src / "other").write_bytes(b"x")
    before = state(b)
    status, body = stream(b, f"/pyjail/v1/backups/restore?path={quote(with_binds['Path'])}")
    assert status == 409, body
    assert state(b) == before
    status, body = stream(b, f"/pyjail/v1/backups/restore?path={quote(with_binds['Path'])}"
                             "&force=1")
    assert status == 200, body
    assert (src / "conf").read_bytes() == b"setting=1\n" and not (src / "other").exists()
    status, body = stream(b, f"/pyjail/v1/backups/restore?path={quote(plain['Path'])}"
                             "&name=binder2")
    assert status == 200, body


def _volume_archive(path: Path, volume: str, layer: Callable[[object], object]) -> None:
    """A volume backup whose layer member is produced by ``layer(stream)``."""
    from pyjail.backup.writer import ArchiveWriter
    meta = {"Name": volume, "Driver": "local", "Labels": {}, "Options": {}, "Scope": "local"}
    with ArchiveWriter(path, lambda m: None) as w:
        w.add(f"volumes/{volume}.tar", layer)
        w.add_bytes("volume.json", json.dumps(meta).encode())
        w.finish({"Kind": "volume", "Created": "2026-11-27T20:00:00.000000Z", "Mode": "live",
                  "Container": "", "Image": "", "Volumes": [volume]})


def test_large_volume_restores_across_parts(daemons: tuple[Daemon, Daemon],
                                            tmp_path: Path) -> None:
    """A layer bigger than one archive part is extracted while it streams, part to part."""
    from pyjail.images.layers import create_layer
    _, b = daemons
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    big = os.urandom(40 << 20)   # three 16 MiB parts (random bytes do not compress)
    (tree / "sub" / "big").write_bytes(big)
    (tree / "small").write_bytes(b"small\n")
    os.chmod(tree / "small", 0o640)
    os.link(tree / "small", tree / "sub" / "hard")
    os.symlink("../small", tree / "sub" / "link")
    archive = tmp_path / "big.tar"
    _volume_archive(archive, "bigvol", lambda out: create_layer(tree, out))
    status, lines = stream(b, f"/pyjail/v1/backups/restore?path={quote(str(archive))}")
    assert status == 200, lines
    data = b.data_root / "data" / "volumes" / "bigvol" / "_data"
    assert (data / "sub" / "big").read_bytes() == big
    assert (data / "small").read_bytes() == b"small\n"
    assert (data / "small").stat().st_mode & 0o777 == 0o640
    assert (data / "sub" / "hard").stat().st_ino == (data / "small").stat().st_ino
    assert os.readlink(data / "sub" / "link") == "../small"
    assert not [p for p in (b.data_root / "data" / "backups").iterdir()
                if p.name.startswith(".tmp-")]


def test_unsafe_layer_is_refused_before_anything_exists(daemons: tuple[Daemon, Daemon],
                                                        tmp_path: Path) -> None:
    """Checksums fine, but a layer climbing out through a symlink: refused while verifying,
    so no volume is created and nothing is written outside the staging area."""
    import io
    import tarfile
    _, b = daemons
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        t.addfile(link)
        evil = tarfile.TarInfo("link/evil")
        evil.size = 5
        t.addfile(evil, io.BytesIO(b"owned"))
    archive = tmp_path / "evil.tar"
    _volume_archive(archive, "evilvol", lambda out: out.write(layer.getvalue()))
    before = state(b)
    status, body = stream(b, f"/pyjail/v1/backups/restore?path={quote(str(archive))}")
    assert status == 400, body
    assert "outside" in body[0]["message"], body
    assert state(b) == before
    assert list(outside.iterdir()) == []
    assert not [p for p in (b.data_root / "data" / "backups").iterdir()
                if p.name.startswith(".tmp-")]
