"""save / load (Docker's current and legacy formats, plain OCI), export / import / commit,
history, tag, rmi, prune, list filters and df sizes: real daemon, real docker CLI 28."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from daemon_fixtures import Daemon, running_daemon

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
SKOPEO = shutil.which("skopeo")
NONE = ["--network", "none"]
DOCKERD_SOCK = "/tmp/anchors/dockerd.sock"

pytestmark = pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


def _runner(env: dict[str, str]):
    def run(*args: str, check: bool = True, input: bytes | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([DOCKER, *args], capture_output=True, env=env, input=input,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} -> {proc.returncode}\n"
                                 f"{proc.stdout[-2000:]!r}\n{proc.stderr.decode()}")
        return proc
    return run


@pytest.fixture(scope="module")
def docker(daemon: Daemon):
    return _runner({**os.environ, "DOCKER_HOST": daemon.host,
                    "DOCKER_CONFIG": str(daemon.data_root), "DOCKER_BUILDKIT": "0"})


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode()


def _image_id(docker, ref: str) -> str:
    return _out(docker("image", "inspect", "-f", "{{.Id}}", ref)).strip()


def _build(docker, tmp: Path, name: str, dockerfile: str) -> str:
    ctx = tmp / f"ctx-{hashlib.sha256(dockerfile.encode()).hexdigest()[:12]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    docker("build", "-q", "-t", name, str(ctx))
    return _image_id(docker, name)


def _members(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            if m.isreg():
                out[m.name] = tf.extractfile(m).read()
    return out


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_save_load_round_trip_keeps_ids_and_tags(docker, tmp_path: Path) -> None:
    image_id = _build(docker, tmp_path, "saved:1",
                      "FROM busybox\nRUN echo saved > /saved\nLABEL a=b\n")
    docker("tag", "saved:1", "saved:other")
    data = docker("save", "saved:1", "saved:other").stdout
    files = _members(data)
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= set(files)
    for name, content in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(content).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files["manifest.json"])
    assert sorted(manifest[0]["RepoTags"]) == ["saved:1", "saved:other"]
    docker("rmi", "saved:1", "saved:other")
    assert docker("image", "inspect", image_id, check=False).returncode != 0
    loaded = _out(docker("load", input=data))
    assert "Loaded image: saved:1" in loaded and "Loaded image: saved:other" in loaded
    assert _image_id(docker, "saved:1") == image_id == _image_id(docker, "saved:other")
    out = _out(docker("run", "--rm", *NONE, "saved:1", "cat", "/saved"))
    assert out == "saved\n"


@pytest.mark.skipif(SKOPEO is None, reason="skopeo not installed")
def test_skopeo_reads_what_pyjail_saves(docker, tmp_path: Path) -> None:
    image_id = _build(docker, tmp_path, "skopeo:1", "FROM busybox\nRUN echo s > /s\n")
    archive = tmp_path / "skopeo.tar"
    archive.write_bytes(docker("save", "skopeo:1").stdout)
    for transport in ("docker-archive", "oci-archive"):
        proc = subprocess.run([SKOPEO, "inspect", "--config", f"{transport}:{archive}"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        config = json.loads(proc.stdout)
        assert len(config["rootfs"]["diff_ids"]) == 2
        raw = subprocess.run([SKOPEO, "inspect", "--raw", "--config", f"{transport}:{archive}"],
                             capture_output=True, timeout=60).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == image_id


def _dockerd_archive() -> bytes | None:
    if not os.path.exists(DOCKERD_SOCK):
        return None
    proc = subprocess.run([DOCKER, "-H", f"unix://{DOCKERD_SOCK}", "save", "busybox:local"],
                          capture_output=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


def _legacy_archive(layer: bytes, tag: str) -> bytes:
    """What dockerd 20.10 writes: <id>.json, <layer id>/layer.tar, manifest.json."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                         "created": "2024-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "history": [{"created": "2024-01-01T00:00:00Z"}]}).encode()
    image_hex = hashlib.sha256(config).hexdigest()
    layer_dir = hashlib.sha256(b"v1" + layer).hexdigest()
    name, _, t = tag.partition(":")
    return _tar({
        f"{image_hex}.json": config, f"{layer_dir}/layer.tar": layer,
        f"{layer_dir}/VERSION": b"1.0", f"{layer_dir}/json": b"{}",
        "manifest.json": json.dumps([{"Config": f"{image_hex}.json", "RepoTags": [tag],
                                      "Layers": [f"{layer_dir}/layer.tar"]}]).encode(),
        "repositories": json.dumps({name: {t: layer_dir}}).encode()})


def test_load_legacy_dockerd_archive(docker, daemon: Daemon) -> None:
    real = _dockerd_archive()
    if real is not None:   # the real thing, from dockerd 20.10
        out = _out(docker("load", input=real))
        assert "Loaded image: busybox:local" in out
        ref = _out(subprocess.run([DOCKER, "-H", f"unix://{DOCKERD_SOCK}", "image", "inspect",
                                   "-f", "{{.Id}}", "busybox:local"], capture_output=True))
        assert _image_id(docker, "busybox:local") == ref.strip()
        assert _out(docker("run", "--rm", *NONE, "busybox:local", "echo", "ok")) == "ok\n"
    # and always a hand-made legacy archive (dockerd may not be running)
    from daemon_fixtures import busybox_rootfs_tar
    legacy = _legacy_archive(busybox_rootfs_tar(), "legacy:1")
    assert "Loaded image: legacy:1" in _out(docker("load", input=legacy))
    assert _out(docker("run", "--rm", *NONE, "legacy:1", "echo", "legacy")) == "legacy\n"


def test_load_plain_oci_and_digest_mismatch_stores_nothing(docker, tmp_path: Path) -> None:
    image_id = _build(docker, tmp_path, "oci:1", "FROM busybox\nRUN echo o > /o\n")
    files = _members(docker("save", "oci:1").stdout)
    plain = {k: v for k, v in files.items() if k not in ("manifest.json", "repositories")}
    docker("rmi", "oci:1")
    assert "Loaded image: oci:1" in _out(docker("load", input=_tar(plain)))
    assert _image_id(docker, "oci:1") == image_id
    docker("rmi", "oci:1")

    before = _out(docker("images", "-aq", "--no-trunc"))
    config = json.loads(plain["blobs/sha256/" + image_id[7:]])
    top = config["rootfs"]["diff_ids"][-1][7:]
    bad = dict(files)
    layer_names = [k for k in bad if k.startswith("blobs/sha256/") and k.endswith(top)]
    assert layer_names
    bad[layer_names[0]] = bad[layer_names[0]][:-1] + b"x"
    proc = docker("load", input=_tar(bad), check=False)
    assert proc.returncode != 0
    assert "digest" in (proc.stdout + proc.stderr).decode()
    assert _out(docker("images", "-aq", "--no-trunc")) == before


def test_export_import_commit_history(docker) -> None:
    cid = _out(docker("run", *NONE, "-d", "busybox", "sh", "-c",
                      "echo x > /x; rm /bin/ls; mkdir -p /d; echo y > /d/y"))
    cid = cid.strip()
    docker("wait", cid)
    exported = docker("export", cid).stdout
    names = set()
    with tarfile.open(fileobj=io.BytesIO(exported)) as tf:
        names = {m.name for m in tf}
    assert {"x", "d/y", "bin/sh"} <= names and "bin/ls" not in names
    out = _out(docker("import", "-c", "ENV IMPORTED=1", "-c", 'CMD ["cat", "/x"]', "-m", "imp",
                      "-", "imported:1", input=exported)).strip()
    assert out.startswith("sha256:")
    assert _out(docker("run", "--rm", *NONE, "imported:1")) == "x\n"
    env = _out(docker("image", "inspect", "-f", "{{json .Config.Env}}", "imported:1"))
    assert "IMPORTED=1" in env

    new = _out(docker("commit", "-c", 'CMD ["cat", "/d/y"]', "-m", "committed", "-a", "me",
                      cid, "committed:1")).strip()
    assert new == _image_id(docker, "committed:1")
    assert _out(docker("run", "--rm", *NONE, "committed:1")) == "y\n"
    assert docker("run", "--rm", *NONE, "committed:1", "ls", check=False).returncode != 0
    history = json.loads(_out(docker("history", "--format", "{{json .}}", "--no-trunc",
                                     "committed:1")).splitlines()[0])
    assert history["Comment"] == "committed"
    assert _out(docker("image", "inspect", "-f", "{{.Author}}", "committed:1")) == "me\n"
    saved = _members(docker("save", "committed:1").stdout)
    top = json.loads(saved["manifest.json"])[0]["Layers"][-1]
    with tarfile.open(fileobj=io.BytesIO(saved[top])) as tf:
        layer = {m.name for m in tf}
    assert {"x", "d/y", "bin/.wh.ls"} <= layer
    assert "etc/hostname" not in layer   # the runtime's mount targets are not committed
    docker("rm", "-f", cid)


def test_tag_rmi_prune_filters_and_df(docker, daemon: Daemon, tmp_path: Path) -> None:
    a = _build(docker, tmp_path, "filt:a", "FROM busybox\nLABEL tier=a\nRUN echo a > /a\n")
    time.sleep(1.05)   # before/since compare Created, which has one-second resolution
    b = _build(docker, tmp_path, "filt:b", "FROM busybox\nLABEL tier=b\nRUN echo b > /b\n")
    docker("tag", "filt:a", "other/name:x")
    assert _image_id(docker, "other/name:x") == a

    def ids(*args: str) -> set[str]:
        return set(_out(docker("images", "-q", "--no-trunc", *args)).split())
    assert ids("--filter", "label=tier=a") == {a}
    assert ids("--filter", "label=tier") == {a, b}
    assert ids("--filter", "reference=filt:*") == {a, b}
    assert ids("--filter", "reference=other/*") == {a}
    assert b not in ids("--filter", "before=filt:b")
    assert ids("--filter", "since=filt:a") == {b}

    # a container keeps its image: rmi answers 409 unless forced
    cid = _out(docker("create", *NONE, "filt:b", "true")).strip()
    proc = docker("rmi", "filt:b", check=False)
    assert proc.returncode != 0 and b"conflict" in proc.stderr.lower()

    usage = daemon.request("GET", "/system/df").json()
    by_id = {i["Id"]: i for i in usage["Images"]}
    assert by_id[b]["Containers"] == 1 and by_id[a]["Containers"] == 0
    busybox_size = by_id[_image_id(docker, "busybox")]["Size"]
    assert by_id[a]["SharedSize"] >= busybox_size   # the busybox layer is shared
    assert by_id[a]["Size"] == busybox_size + 2      # plus "a\n"
    assert usage["LayersSize"] < sum(i["Size"] for i in usage["Images"])   # counted once

    docker("rm", "-f", cid)
    c = _build(docker, tmp_path, "dangle:1", "FROM busybox\nLABEL dangle=1\n")
    _build(docker, tmp_path, "dangle:1", "FROM busybox\nLABEL dangle=2\n")   # moves the tag
    dangling = ids("--filter", "dangling=true")
    assert c in dangling
    out = _out(docker("image", "prune", "-f"))
    assert c[7:] in out
    assert c not in ids("-a")
    # prune -a: every unused image, with exact reclaimed space
    out = _out(docker("image", "prune", "-af"))
    assert "Total reclaimed space" in out
    assert ids() == set()


def test_load_streams_the_body_and_a_client_leaving_midway_stores_nothing(
        docker, daemon: Daemon, tmp_path: Path) -> None:
    """load parses the archive while it arrives: 24 MB of layer never sits in the daemon's
    memory whole, and a client that hangs up halfway leaves no image and no pending blob."""
    import socket

    from daemon_fixtures import import_busybox
    if docker("image", "inspect", "busybox", check=False).returncode != 0:
        import_busybox(daemon)   # an earlier test pruned it
    _build(docker, tmp_path, "stream:1", "FROM busybox\nRUN head -c 24000000 /dev/urandom > /r\n")
    archive = docker("save", "stream:1").stdout
    docker("rmi", "stream:1")
    before = _out(docker("images", "-aq", "--no-trunc"))
    blobs = daemon.data_root / "data" / "images" / "blobs" / "sha256"
    sock_path = daemon.host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(b"POST /v1.44/images/load HTTP/1.1\r\nHost: d\r\nContent-Type: "
                  b"application/x-tar\r\nContent-Length: " + str(len(archive)).encode()
                  + b"\r\n\r\n" + archive[:len(archive) // 2])
    deadline = time.monotonic() + 30
    while any(p.name.startswith(".tmp-") for p in blobs.iterdir()):
        assert time.monotonic() < deadline, "pending blobs of the cut load were not removed"
        time.sleep(0.05)
    assert _out(docker("images", "-aq", "--no-trunc")) == before
    assert "Loaded image: stream:1" in _out(docker("load", input=archive))
    assert _out(docker("run", "--rm", *NONE, "stream:1", "wc", "-c", "/r")).split()[0] == \
        "24000000"
    docker("rmi", "stream:1")
