"""docker-py 7 against pyjaild: the client library people script with, unchanged."""

from __future__ import annotations

import time

import docker
import pytest
from daemon_fixtures import Daemon, running_daemon
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound

NONE = {"network_mode": "none"}


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


@pytest.fixture(scope="module")
def client(daemon: Daemon):
    c = docker.DockerClient(base_url=daemon.host, version="auto", timeout=60)
    yield c
    c.close()


def test_ping_and_version(client):
    assert client.ping() is True
    assert client.version()["ApiVersion"] == "1.44"
    assert client.api.api_version == "1.44"


def test_run_in_foreground_returns_output(client):
    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"],
                                remove=True, stderr=True, **NONE)
    assert b"hello\n" in out and b"err\n" in out


def test_run_failure_raises_container_error(client):
    with pytest.raises(ContainerError) as info:
        client.containers.run("busybox", ["sh", "-c", "exit 9"], remove=True, **NONE)
    assert info.value.exit_status == 9


def test_unknown_image_is_image_not_found(client):
    with pytest.raises(ImageNotFound):
        client.containers.create("no-such-image-here:1", **NONE)


def test_detached_run_logs_follow_wait(client):
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo $i; "
                                          "sleep 0.1; done"], detach=True, **NONE)
    try:
        lines = list(c.logs(stream=True, follow=True))
        assert b"".join(lines) == b"1\n2\n3\n"
        assert c.wait(timeout=30) == {"StatusCode": 0, "Error": None}
        c.reload()
        assert c.status == "exited"
        assert c.logs(timestamps=True).split(b" ", 1)[1].startswith(b"1\n")
    finally:
        c.remove(force=True)
    with pytest.raises(NotFound):
        client.containers.get(c.id)


def test_exec_run_plain_stream_and_demux(client):
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, **NONE)
    try:
        result = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"])
        assert result.exit_code == 2
        assert b"out\n" in result.output and b"err\n" in result.output
        demuxed = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert demuxed.exit_code == 0
        assert demuxed.output == (b"out\n", b"err\n")
        streamed = c.exec_run(["sh", "-c", "echo a; sleep 0.1; echo b"], stream=True)
        assert b"".join(streamed.output) == b"a\nb\n"
        tty = c.exec_run(["sh", "-c", "[ -t 1 ] && echo is-tty"], tty=True)
        assert tty.output == b"is-tty\r\n"
        env = c.exec_run(["sh", "-c", "echo $GREETING in $PWD"], environment={"GREETING": "hi"},
                         workdir="/tmp")
        assert env.output == b"hi in /tmp\n"
    finally:
        c.remove(force=True)


def test_stats_once_and_streamed(client):
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, **NONE)
    try:
        one = c.stats(stream=False)
        assert one["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert one["memory_stats"]["usage"] > 0
        stream = c.stats(decode=True)
        first, second = next(stream), next(stream)
        assert second["precpu_stats"] == first["cpu_stats"]
        stream.close()
    finally:
        c.remove(force=True)


def test_attach_streams_live_output(client):
    c = client.containers.create("busybox", ["sh", "-c", "echo early; sleep 0.2; echo late"],
                                 **NONE)
    try:
        stream = c.attach(stdout=True, stderr=True, stream=True, logs=True)
        c.start()
        assert b"".join(stream) == b"early\nlate\n"
        assert c.wait()["StatusCode"] == 0
        assert c.attach(stdout=True, logs=True, stream=False) == b"early\nlate\n"
    finally:
        c.remove(force=True)


def test_attach_socket_sends_stdin(client):
    c = client.containers.create("busybox", ["cat"], stdin_open=True, **NONE)
    try:
        sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        c.start()
        sock._sock.sendall(b"echoed\n")
        sock._sock.shutdown(1)  # SHUT_WR: stdin EOF, cat ends
        data = b""
        while chunk := sock._sock.recv(4096):
            data += chunk
        assert data.endswith(b"echoed\n")
        assert c.wait(timeout=30)["StatusCode"] == 0
    finally:
        c.remove(force=True)


def test_lifecycle_calls(client):
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name="py-life", **NONE)
    try:
        c.pause()
        c.reload()
        assert c.status == "paused"
        with pytest.raises(APIError) as info:
            c.pause()
        assert info.value.status_code == 409
        c.unpause()
        c.rename("py-life2")
        c.reload()
        assert c.name == "py-life2"
        assert "sleep 60" in " ".join(" ".join(p) for p in c.top()["Processes"])
        c.kill(signal="SIGKILL")
        assert c.wait(timeout=30)["StatusCode"] == 137
        c.start()
        c.restart(timeout=1)
        c.reload()
        assert c.status == "running"
        c.stop(timeout=1)
        assert [x.name for x in client.containers.list(all=True, filters={
            "name": "py-life2"})] == ["py-life2"]
    finally:
        c.remove(force=True)
    assert client.containers.prune()["SpaceReclaimed"] >= 0


def test_volumes(client):
    vol = client.volumes.create("py-vol", labels={"by": "docker-py"})
    assert vol.attrs["Labels"] == {"by": "docker-py"}
    assert "py-vol" in [v.name for v in client.volumes.list(filters={"label": "by"})]
    out = client.containers.run("busybox", ["sh", "-c", "echo x > /v/f; ls /v"], remove=True,
                                volumes={"py-vol": {"bind": "/v", "mode": "rw"}}, **NONE)
    assert out == b"f\n"
    client.volumes.get("py-vol").remove()
    with pytest.raises(NotFound):
        client.volumes.get("py-vol")


def test_events_decoded(client):
    since = time.time()
    client.containers.run("busybox", ["true"], remove=True, name="py-events", **NONE)
    events = client.events(since=since, until=time.time() + 0.3, decode=True,
                           filters={"container": "py-events"})
    actions = [e["Action"] for e in events]
    assert "start" in actions and "die" in actions


def test_images(client):
    image = client.images.get("busybox")
    assert "busybox:latest" in image.tags
    image.tag("py/busybox", "t1")
    assert client.images.get("py/busybox:t1").id == image.id
    client.images.remove("py/busybox:t1")
    with pytest.raises(ImageNotFound):
        client.images.get("py/busybox:t1")


def test_networks_through_docker_py(client):
    net = client.networks.create("py-net", driver="bridge")
    c = client.containers.create("busybox", ["sleep", "300"], network="py-net")
    try:
        c.start()
        net.reload()
        assert c.id in net.attrs["Containers"]
        ip = net.attrs["Containers"][c.id]["IPv4Address"].split("/")[0]
        out = client.containers.run("busybox", ["ping", "-c", "1", "-W", "2", ip],
                                    network="py-net", remove=True)
        assert b"1 packets received" in out
        net.disconnect(c)
        net.reload()
        assert c.id not in (net.attrs["Containers"] or {})
    finally:
        c.remove(force=True)
        net.remove()
    assert not client.networks.list(names=["py-net"])
