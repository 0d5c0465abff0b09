"""docker cp / get_archive / put_archive: copies in and out, never outside the container."""

from __future__ import annotations

import io
import subprocess
import tarfile

import docker
import pytest
from daemon_fixtures import Daemon, running_daemon

NONE = {"network_mode": "none"}


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


@pytest.fixture(scope="module")
def client(daemon: Daemon):
    c = docker.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    yield c
    c.close()


def tar_of(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, target in (symlinks or {}).items():  # links first: then write through them
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_tar(chunks) -> dict[str, bytes]:
    data = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}


@pytest.mark.parametrize("running", [True, False])
def test_put_and_get_archive_round_trip(client, running):
    c = client.containers.create("busybox", ["sleep", "300"], **NONE)
    try:
        if running:
            c.start()
        assert c.put_archive("/tmp", tar_of({"hello.txt": b"hi there\n"}))
        chunks, stat = c.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 9
        assert read_tar(chunks) == {"hello.txt": b"hi there\n"}
        chunks, stat = c.get_archive("/etc")
        files = read_tar(chunks)
        assert "etc/passwd" in files and b"root:" in files["etc/passwd"]
        assert stat["mode"] & (1 << 31), "a directory has Go's ModeDir bit"
        if running:
            assert c.exec_run(["cat", "/tmp/hello.txt"]).output == b"hi there\n"
    finally:
        c.remove(force=True)


def test_missing_paths_are_404(client):
    c = client.containers.create("busybox", ["sleep", "300"], **NONE)
    try:
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/no/such/file")
        with pytest.raises(docker.errors.NotFound):
            c.put_archive("/no/such/dir", tar_of({"x": b"x"}))
    finally:
        c.remove(force=True)


def test_archive_cannot_escape_the_container(client, tmp_path):
    c = client.containers.create("busybox", ["sleep", "300"], **NONE)
    try:
        c.start()
        # A symlink inside the container pointing at / resolves to the container's root.
        c.exec_run(["ln", "-s", "/", "/tmp/up"])
        chunks, _ = c.get_archive("/tmp/up/etc/passwd")
        passwd = read_tar(chunks)["passwd"]
        assert passwd == c.exec_run(["cat", "/etc/passwd"]).output
        with open("/etc/passwd", "rb") as f:
            assert passwd != f.read()
        with pytest.raises(docker.errors.APIError):
            c.put_archive("/tmp", tar_of({"../../../../escape": b"x"}))
        # Writing through an absolute symlink is refused or stays inside the container;
        # either way nothing lands on the host.
        try:
            c.put_archive("/tmp", tar_of({"link/owned": b"x"}, {"link": str(tmp_path)}))
        except docker.errors.APIError:
            pass
        assert not (tmp_path / "owned").exists()
    finally:
        c.remove(force=True)


def test_docker_cp_both_ways(daemon, client, tmp_path):
    c = client.containers.create("busybox", ["sleep", "300"], **NONE)
    try:
        c.start()
        src = tmp_path / "in.txt"
        src.write_text("copied in\n")
        env = {"DOCKER_HOST": daemon.host, "PATH": "/usr/local/bin:/usr/bin:/bin"}
        subprocess.run(["docker", "cp", str(src), f"{c.id}:/tmp/in.txt"], check=True, env=env)
        subprocess.run(["docker", "cp", f"{c.id}:/tmp/in.txt", str(tmp_path / "out.txt")],
                       check=True, env=env)
        assert (tmp_path / "out.txt").read_text() == "copied in\n"
    finally:
        c.remove(force=True)
