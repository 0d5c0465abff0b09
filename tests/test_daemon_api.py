"""The daemon's HTTP contract, spoken raw over its unix socket (no client library).

Status codes and JSON errors as dockerd gives them, version prefixes, streaming
endpoints (wait, logs, events, stats, attach, exec), and fuzzing that must never
produce a 5xx nor take the daemon down.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
from urllib.parse import quote, urlencode

import daemon_fixtures as fx
import pytest
from daemon_fixtures import BUSYBOX, Daemon, running_daemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


def demux(data: bytes) -> list[tuple[int, bytes]]:
    """Split an 8-byte-header multiplexed stream into (stream id, payload) frames."""
    frames = []
    while data:
        kind, size = struct.unpack(">BxxxL", data[:8])
        frames.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return frames


def hijack(d: Daemon, path: str, body: bytes = b"") -> tuple[socket.socket, bytes]:
    """POST with ``Upgrade: tcp``; returns the socket and the response head."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(d.socket_path)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
                 f"Upgrade: tcp\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    return sock, head


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    sock.close()
    return out


def assert_error(resp, status: int) -> None:
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers["Content-Type"].startswith("application/json")
    assert isinstance(resp.json()["message"], str) and resp.json()["message"]


# -- system --------------------------------------------------------------------------------
def test_ping_get_and_head_carry_version_headers(daemon):
    for method in ("GET", "HEAD"):
        resp = daemon.request(method, "/_ping")
        assert resp.status == 200
        assert resp.headers["Api-Version"] == "1.44"
        assert resp.headers["Ostype"] == "linux"
        assert resp.headers["Docker-Experimental"] == "false"
        assert resp.headers["Builder-Version"] == "1"
    assert daemon.request("GET", "/_ping").body == b"OK"


@pytest.mark.parametrize("prefix", ["", "/v1.24", "/v1.41", "/v1.44"])
def test_paths_work_with_and_without_version_prefix(daemon, prefix):
    resp = daemon.request("GET", prefix + "/version")
    assert resp.status == 200
    info = resp.json()
    assert info["ApiVersion"] == "1.44" and info["MinAPIVersion"] == "1.24"
    assert daemon.request("GET", prefix + "/containers/json?all=1").status == 200


@pytest.mark.parametrize("version", ["1.12", "1.45", "2.0"])
def test_versions_outside_the_supported_range_are_400(daemon, version):
    assert_error(daemon.request("GET", f"/v{version}/info"), 400)


def test_unknown_route_is_json_404(daemon):
    assert_error(daemon.request("GET", "/no/such/thing"), 404)
    assert_error(daemon.request("GET", "/v1.44/containers/x/nonsense"), 404)


def test_info_counts_containers_and_images(daemon):
    info = daemon.request("GET", "/info").json()
    assert info["Images"] >= 1
    assert info["OSType"] == "linux" and info["Driver"] == "overlay2"
    assert info["Containers"] == (info["ContainersRunning"] + info["ContainersPaused"]
                                  + info["ContainersStopped"])


# -- errors --------------------------------------------------------------------------------
def test_malformed_json_is_400(daemon):
    resp = daemon.request("POST", "/containers/create", raw=b'{"Image": "busybox",')
    assert_error(resp, 400)
    assert_error(daemon.request("POST", "/containers/create", raw=b"[1, 2]"), 400)
    assert_error(daemon.request("POST", "/volumes/create", raw=b"\xff\xfe"), 400)


@pytest.mark.parametrize("body", [
    {"Image": BUSYBOX, "Cmd": 5},
    {"Image": BUSYBOX, "Env": "A=1"},
    {"Image": BUSYBOX, "Tty": "yes"},
    {"Image": 7},
    {"Image": BUSYBOX, "HostConfig": {"Memory": "lots"}},
    {"Image": BUSYBOX, "HostConfig": "none"},
])
def test_wrong_types_are_400(daemon, body):
    assert_error(daemon.request("POST", "/containers/create", body), 400)


@pytest.mark.parametrize("host", [
    {"Memory": 1024}, {"CpuShares": -5}, {"OomScoreAdj": 5000}, {"NanoCpus": 10 ** 15},
    {"RestartPolicy": {"Name": "sometimes"}}, {"BlkioWeight": 5},
])
def test_out_of_range_values_are_400(daemon, host):
    body = {"Image": BUSYBOX, "HostConfig": {"NetworkMode": "none", **host}}
    assert_error(daemon.request("POST", "/containers/create", body), 400)


def test_bad_query_values_are_400(daemon):
    cid = daemon.create(["true"])
    try:
        assert_error(daemon.request("POST", f"/containers/{cid}/stop?t=soon"), 400)
        assert_error(daemon.request("POST", f"/containers/{cid}/kill?signal=SIGNOPE"), 400)
        assert_error(daemon.request("POST", f"/containers/{cid}/wait?condition=later"), 400)
        assert_error(daemon.request("GET", "/containers/json?filters=%7Bnope"), 400)
        assert_error(daemon.request("GET", '/containers/json?filters={"colour":["red"]}'), 400)
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_unknown_fields_are_ignored(daemon):
    resp = daemon.request("POST", "/containers/create", {
        "Image": BUSYBOX, "Cmd": ["true"], "FutureField": {"x": [1]},
        "HostConfig": {"NetworkMode": "none", "SomethingNew": True}})
    assert resp.status == 201, resp.body
    assert resp.json()["Warnings"] == []
    daemon.request("DELETE", f"/containers/{resp.json()['Id']}")


@pytest.mark.parametrize("method,path", [
    ("GET", "/containers/{x}/json"), ("POST", "/containers/{x}/start"),
    ("POST", "/containers/{x}/stop"), ("POST", "/containers/{x}/kill"),
    ("POST", "/containers/{x}/wait"), ("GET", "/containers/{x}/logs?stdout=1"),
    ("DELETE", "/containers/{x}"), ("POST", "/containers/{x}/exec"),
    ("GET", "/exec/{x}/json"), ("POST", "/exec/{x}/start"), ("GET", "/volumes/{x}"),
    ("DELETE", "/volumes/{x}"), ("GET", "/images/{x}/json"), ("DELETE", "/images/{x}"),
    ("GET", "/containers/{x}/stats?stream=0"), ("POST", "/containers/{x}/attach?stream=1"),
])
def test_unknown_ids_are_404(daemon, method, path):
    body = {"Cmd": ["true"]} if path.endswith("/exec") else None
    assert_error(daemon.request(method, path.format(x="nosuchthing0"), body), 404)


def test_conflicting_names_are_409(daemon):
    cid = daemon.create(["true"], name="taken")
    try:
        resp = daemon.request("POST", "/containers/create?name=taken",
                              {"Image": BUSYBOX, "HostConfig": {"NetworkMode": "none"}})
        assert_error(resp, 409)
        other = daemon.create(["true"], name="other")
        assert_error(daemon.request("POST", f"/containers/{other}/rename?name=taken"), 409)
        assert daemon.request("POST", f"/containers/{other}/rename?name=renamed").status == 204
        assert daemon.request("GET", "/containers/renamed/json").json()["Id"] == other
        daemon.request("DELETE", f"/containers/{other}")
    finally:
        daemon.request("DELETE", f"/containers/{cid}")


def test_invalid_state_transitions(daemon):
    cid = daemon.create(["sleep", "30"])
    try:
        assert_error(daemon.request("POST", f"/containers/{cid}/pause"), 409)
        assert_error(daemon.request("POST", f"/containers/{cid}/kill"), 409)
        assert daemon.request("POST", f"/containers/{cid}/start").status == 204
        resp = daemon.request("POST", f"/containers/{cid}/start")
        assert resp.status == 304 and resp.body == b""
        assert_error(daemon.request("POST", f"/containers/{cid}/unpause"), 409)
        assert_error(daemon.request("DELETE", f"/containers/{cid}"), 409)
        assert daemon.request("POST", f"/containers/{cid}/pause").status == 204
        state = daemon.request("GET", f"/containers/{cid}/json").json()["State"]
        assert state["Status"] == "paused"
        assert_error(daemon.request("POST", f"/containers/{cid}/pause"), 409)
        assert daemon.request("POST", f"/containers/{cid}/unpause").status == 204
        assert daemon.request("POST", f"/containers/{cid}/stop?t=1").status == 204
        assert daemon.request("POST", f"/containers/{cid}/stop").status == 304
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


# -- lifecycle and streams -----------------------------------------------------------------
def test_wait_flushes_headers_before_the_container_ends(daemon):
    cid = daemon.create(["sh", "-c", "exit 7"])
    conn = daemon.connect()
    conn.request("POST", f"/containers/{cid}/wait?condition=next-exit")
    resp = conn.getresponse()  # returns as soon as the headers arrive: nothing started yet
    assert resp.status == 200
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    assert json.loads(resp.read()) == {"StatusCode": 7, "Error": None}
    conn.close()
    daemon.request("DELETE", f"/containers/{cid}")


def test_logs_are_framed_with_timestamps_tail_and_stream_selection(daemon):
    cid = daemon.create(["sh", "-c", "echo one; echo two >&2; sleep 0.1; echo three"])
    daemon.request("POST", f"/containers/{cid}/start")
    daemon.request("POST", f"/containers/{cid}/wait")
    resp = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert resp.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    frames = demux(resp.body)
    assert sorted(frames) == sorted([(1, b"one\n"), (2, b"two\n"), (1, b"three\n")])
    only_err = demux(daemon.request("GET", f"/containers/{cid}/logs?stderr=1").body)
    assert only_err == [(2, b"two\n")]
    tail = demux(daemon.request("GET", f"/containers/{cid}/logs?stdout=1&tail=1").body)
    assert tail == [(1, b"three\n")]
    stamped = demux(daemon.request("GET", f"/containers/{cid}/logs?stdout=1&timestamps=1").body)
    stamp, _, text = stamped[0][1].partition(b" ")
    assert text == b"one\n" and stamp.endswith(b"Z") and len(stamp) == 30
    assert_error(daemon.request("GET", f"/containers/{cid}/logs"), 400)
    daemon.request("DELETE", f"/containers/{cid}")


def test_logs_of_a_tty_container_are_raw(daemon):
    cid = daemon.create(["echo", "raw"], Tty=True)
    daemon.request("POST", f"/containers/{cid}/start")
    daemon.request("POST", f"/containers/{cid}/wait")
    resp = daemon.request("GET", f"/containers/{cid}/logs?stdout=1")
    assert resp.body == b"raw\r\n"
    daemon.request("DELETE", f"/containers/{cid}")


def test_follow_logs_stream_until_the_container_exits(daemon):
    cid = daemon.create(["sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"])
    daemon.request("POST", f"/containers/{cid}/start")
    conn = daemon.connect()
    conn.request("GET", f"/containers/{cid}/logs?stdout=1&follow=1")
    resp = conn.getresponse()
    assert resp.status == 200
    assert demux(resp.read()) == [(1, b"1\n"), (1, b"2\n"), (1, b"3\n")]
    conn.close()
    daemon.request("DELETE", f"/containers/{cid}")


def test_attach_hijacks_and_half_close_ends_stdin(daemon):
    cid = daemon.create(["sh", "-c", "cat; echo done >&2"], OpenStdin=True, StdinOnce=True,
                        AttachStdin=True)
    sock, head = hijack(daemon, f"/v1.44/containers/{cid}/attach?stream=1&stdin=1&stdout=1"
                                "&stderr=1")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
    assert b"Upgrade: tcp" in head
    sock.sendall(b"hello\n")  # sent before the start: must not be lost
    sock.shutdown(socket.SHUT_WR)
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    assert demux(read_all(sock)) == [(1, b"hello\n"), (2, b"done\n")]
    assert daemon.request("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    daemon.request("DELETE", f"/containers/{cid}")


def test_attach_without_upgrade_header_answers_200(daemon):
    cid = daemon.create(["echo", "old"])
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(daemon.socket_path)
    sock.sendall(f"POST /v1.24/containers/{cid}/attach?stream=1&stdout=1 HTTP/1.1\r\n"
                 "Host: d\r\nContent-Length: 0\r\n\r\n".encode())
    time.sleep(0.1)
    daemon.request("POST", f"/containers/{cid}/start")
    head, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert demux(body) == [(1, b"old\n")]
    daemon.request("DELETE", f"/containers/{cid}")


def test_exec_create_start_inspect(daemon):
    cid = daemon.create(["sleep", "30"])
    daemon.request("POST", f"/containers/{cid}/start")
    try:
        resp = daemon.request("POST", f"/containers/{cid}/exec", {
            "Cmd": ["sh", "-c", "echo out; echo err >&2; exit 3"], "AttachStdout": True,
            "AttachStderr": True})
        assert resp.status == 201
        exec_id = resp.json()["Id"]
        sock, head = hijack(daemon, f"/exec/{exec_id}/start",
                            json.dumps({"Detach": False, "Tty": False}).encode())
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        assert sorted(demux(read_all(sock))) == [(1, b"out\n"), (2, b"err\n")]
        info = daemon.request("GET", f"/exec/{exec_id}/json").json()
        assert info["ExitCode"] == 3 and info["Running"] is False
        assert info["ContainerID"] == cid
        again = daemon.request("POST", f"/exec/{exec_id}/start", {"Detach": True})
        assert_error(again, 409)
        missing = daemon.request("POST", f"/containers/{cid}/exec", {"Cmd": ["nonexistent"]})
        sock, _ = hijack(daemon, f"/exec/{missing.json()['Id']}/start", b"{}")
        assert b"executable file not found" in read_all(sock)
        info = daemon.request("GET", f"/exec/{missing.json()['Id']}/json").json()
        assert info["ExitCode"] == 127
        assert_error(daemon.request("POST", f"/containers/{cid}/exec", {"Cmd": []}), 400)
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")
    stopped = daemon.create(["true"])
    assert_error(daemon.request("POST", f"/containers/{stopped}/exec", {"Cmd": ["ls"]}), 409)
    daemon.request("DELETE", f"/containers/{stopped}")


def test_stats_one_shot_and_stream_carry_precpu(daemon):
    cid = daemon.create(["sleep", "30"])
    daemon.request("POST", f"/containers/{cid}/start")
    try:
        started = time.monotonic()
        one = daemon.request("GET", f"/containers/{cid}/stats?stream=false").json()
        assert time.monotonic() - started < 0.9
        assert one["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert one["memory_stats"]["usage"] > 0 and one["id"] == cid
        conn = daemon.connect()
        conn.request("GET", f"/containers/{cid}/stats")
        resp = conn.getresponse()
        first, second = json.loads(resp.readline()), json.loads(resp.readline())
        conn.close()
        assert second["precpu_stats"] == first["cpu_stats"]
        assert second["preread"] == first["read"]
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_top_changes_and_export(daemon):
    cid = daemon.create(["sh", "-c", "touch /made-here; rm /bin/ls; sleep 30"])
    daemon.request("POST", f"/containers/{cid}/start")
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            changes = daemon.request("GET", f"/containers/{cid}/changes").json() or []
            if {"Path": "/bin/ls", "Kind": 2} in changes:
                break
            time.sleep(0.05)
        assert {"Path": "/made-here", "Kind": 1} in changes
        top = daemon.request("GET", f"/containers/{cid}/top?ps_args=-ef").json()
        assert "PID" in top["Titles"]
        assert any("sleep 30" in " ".join(p) for p in top["Processes"])
        resp = daemon.request("GET", f"/containers/{cid}/export")
        assert resp.headers["Content-Type"] == "application/x-tar"
        names = tarfile.open(fileobj=io.BytesIO(resp.body)).getnames()
        names = {n.lstrip("./") for n in names}
        assert "made-here" in names and "bin/sh" in names and "bin/ls" not in names
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")
    stopped = daemon.create(["true"])
    assert_error(daemon.request("GET", f"/containers/{stopped}/top"), 409)
    daemon.request("DELETE", f"/containers/{stopped}")


def test_list_filters_limit_and_prune(daemon):
    keep = daemon.create(["sleep", "30"], Labels={"suite": "api", "keep": "yes"})
    gone = daemon.create(["true"], Labels={"suite": "api"})
    daemon.request("POST", f"/containers/{keep}/start")
    try:
        f = quote(json.dumps({"label": ["suite=api"], "status": ["created"]}))
        ids = [c["Id"] for c in daemon.request("GET", f"/containers/json?all=1&filters={f}")
               .json()]
        assert ids == [gone]
        legacy = quote(json.dumps({"label": {"keep=yes": True}}))
        ids = [c["Id"] for c in daemon.request("GET", f"/containers/json?filters={legacy}")
               .json()]
        assert ids == [keep]
        assert len(daemon.request("GET", "/containers/json?limit=1").json()) == 1
        pruned = daemon.request("POST", "/containers/prune?filters=" + quote(json.dumps(
            {"label": ["suite=api"]}))).json()
        assert pruned["ContainersDeleted"] == [gone]
        assert isinstance(pruned["SpaceReclaimed"], int)
        assert daemon.request("GET", f"/containers/{keep}/json").status == 200
    finally:
        daemon.request("DELETE", f"/containers/{keep}?force=1")


def test_volumes_in_use_cannot_be_removed(daemon):
    resp = daemon.request("POST", "/volumes/create", {"Name": "apivol", "Labels": {"a": "b"}})
    assert resp.status == 201 and resp.json()["Name"] == "apivol"
    cid = daemon.create(["true"], HostConfig={"NetworkMode": "none",
                                              "Binds": ["apivol:/data"]})
    assert_error(daemon.request("DELETE", "/volumes/apivol"), 409)
    dangling = quote(json.dumps({"dangling": ["true"]}))
    names = [v["Name"] for v in daemon.request("GET", f"/volumes?filters={dangling}")
             .json()["Volumes"]]
    assert "apivol" not in names
    daemon.request("DELETE", f"/containers/{cid}")
    assert daemon.request("GET", "/volumes/apivol").json()["Labels"] == {"a": "b"}
    assert daemon.request("DELETE", "/volumes/apivol").status == 204
    assert_error(daemon.request("DELETE", "/volumes/apivol"), 404)
    assert_error(daemon.request("POST", "/volumes/create", {"Name": "bad/name"}), 400)
    assert_error(daemon.request("POST", "/volumes/create", {"Labels": ["x"]}), 400)
    daemon.request("POST", "/volumes/create", {"Name": "prunable"})
    pruned = daemon.request("POST", "/volumes/prune?filters=" + quote('{"all":["true"]}'))
    assert "prunable" in pruned.json()["VolumesDeleted"]


def test_images_tag_inspect_history_and_remove(daemon):
    image = daemon.request("GET", f"/images/{BUSYBOX}/json").json()
    assert image["Config"]["Cmd"] == ["sh"]
    assert daemon.request("POST", f"/images/{BUSYBOX}/tag?repo=example/bb&tag=v1").status == 201
    listed = daemon.request("GET", "/images/json").json()
    assert any("example/bb:v1" in im["RepoTags"] for im in listed)
    ref = quote(json.dumps({"reference": ["example/bb"]}))
    assert [im["Id"] for im in daemon.request("GET", f"/images/json?filters={ref}").json()] \
        == [image["Id"]]
    history = daemon.request("GET", "/images/example/bb:v1/history").json()
    assert history[0]["Id"] == image["Id"]
    assert daemon.request("DELETE", "/images/example/bb:v1").json() == [
        {"Untagged": "example/bb:v1"}]
    assert_error(daemon.request("POST", "/images/create?fromSrc=-&repo=broken",
                                raw=b"this is not a tar"), 400)


def test_events_since_until_with_filters(daemon):
    since = time.time()
    cid = daemon.create(["true"], name="evented")
    daemon.request("POST", f"/containers/{cid}/start")
    daemon.request("POST", f"/containers/{cid}/wait")
    until = time.time() + 0.2
    filters = quote(json.dumps({"type": ["container"], "container": ["evented"]}))
    resp = daemon.request("GET", f"/events?since={since:.6f}&until={until:.6f}"
                                 f"&filters={filters}")
    events = [json.loads(line) for line in resp.body.splitlines()]
    actions = [e["Action"] for e in events]
    assert actions[:3] == ["create", "start", "die"] or actions[:4] == [
        "create", "attach", "start", "die"], actions
    assert all(e["Actor"]["ID"] == cid for e in events)
    assert events[-1]["Actor"]["Attributes"]["exitCode"] == "0"
    daemon.request("DELETE", f"/containers/{cid}")


def test_live_events_stream_until_the_client_leaves(daemon):
    conn = daemon.connect(timeout=10)
    conn.request("GET", "/events?filters=" + quote('{"type":["volume"]}'))
    resp = conn.getresponse()
    assert resp.status == 200
    daemon.request("POST", "/volumes/create", {"Name": "evvol"})
    event = json.loads(resp.readline())
    assert (event["Type"], event["Action"], event["Actor"]["ID"]) == ("volume", "create",
                                                                     "evvol")
    conn.close()
    daemon.request("DELETE", "/volumes/evvol")
    assert daemon.request("GET", "/_ping").status == 200


def test_system_df(daemon):
    df = daemon.request("GET", "/system/df").json()
    assert df["LayersSize"] > 0 and df["Images"] and df["BuildCache"] == []
    assert isinstance(df["Containers"], list) and isinstance(df["Volumes"], list)


# -- the process ---------------------------------------------------------------------------
def test_tcp_without_tls_is_refused():
    proc = subprocess.run([sys.executable, "-m", "pyjail_daemon.main", "-H",
                           "tcp://127.0.0.1:23750", "--data-root", "/nonexistent/x"],
                          capture_output=True, text=True, env=fx._env(), timeout=30)
    assert proc.returncode == 2
    assert "without TLS" in proc.stderr


def test_config_file_is_merged_under_the_command_line(tmp_path):
    from pyjail_daemon.config import ConfigError, load
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"data-root": "/from/file", "hosts": ["unix:///tmp/f.sock"],
                                "log-level": "debug", "some-future-option": 1}))
    config = load(["--config", str(path), "--data-root", "/from/cli"])
    assert config.data_root == "/from/cli"
    assert config.hosts == ["unix:///tmp/f.sock"] and config.log_level == "debug"
    assert load(["-H", "tcp://127.0.0.1:2375", "--insecure-tcp"]).insecure_tcp is True
    with pytest.raises(ConfigError):
        load(["--tlsverify", "-H", "tcp://0.0.0.0:2376"])
    path.write_text("[1]")
    with pytest.raises(ConfigError):
        load(["--config", str(path)])


def test_sigterm_shuts_down_cleanly_and_containers_survive():
    d = fx.start_daemon()
    try:
        fx.import_busybox(d)
        cid = d.create(["sleep", "30"])
        assert d.request("POST", f"/containers/{cid}/start").status == 204
        assert d.pidfile.read_text().strip() == str(d.process.pid)
        os.kill(d.process.pid, signal.SIGTERM)
        assert d.process.wait(10) == 0
        assert not os.path.exists(d.socket_path) and not d.pidfile.exists()
        again = start_daemon_on(d)
        state = again.request("GET", f"/containers/{cid}/json").json()["State"]
        assert state["Running"] is True
        os.kill(again.process.pid, signal.SIGTERM)
        again.process.wait(10)
    finally:
        fx.stop_daemon(d)


def start_daemon_on(d: Daemon) -> Daemon:
    """A second daemon on the same data root and socket."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyjail_daemon.main", "--data-root", str(d.data_root / "data"),
         "-H", d.host, "--pidfile", str(d.pidfile)], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=fx._env())
    again = Daemon(proc, d.data_root, d.socket_path, d.pidfile, d.log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if again.request("GET", "/_ping", timeout=2).status == 200:
                return again
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the restarted daemon did not answer")


# -- fuzzing -------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 63) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
CONFIG_KEYS = ["Cmd", "Entrypoint", "Env", "Tty", "OpenStdin", "StdinOnce", "User",
               "WorkingDir", "Hostname", "Labels", "StopSignal", "StopTimeout", "Healthcheck",
               "AttachStdin", "ExposedPorts", "Unknown"]
HOST_KEYS = ["Memory", "MemorySwap", "CpuShares", "NanoCpus", "CpuQuota", "CpuPeriod",
             "PidsLimit", "RestartPolicy", "AutoRemove", "CapAdd", "CapDrop", "Privileged",
             "ReadonlyRootfs", "ShmSize", "OomScoreAdj", "Ulimits", "Tmpfs", "Init", "Sysctls",
             "SecurityOpt", "Runtime", "Unknown"]
CREATE_BODIES = st.fixed_dictionaries(
    {"Image": st.sampled_from([BUSYBOX, "busybox", "nosuchimage:1", ""]) | st.text(max_size=8)},
    optional={**{k: JSON for k in CONFIG_KEYS},
              "HostConfig": st.fixed_dictionaries(
                  {"NetworkMode": st.sampled_from(["none", "host", "bogus"])},
                  optional={k: JSON for k in HOST_KEYS}) | JSON})
FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(body=CREATE_BODIES, name=st.none() | st.text(max_size=10))
def test_fuzzed_create_bodies_never_fail_with_5xx(daemon, body, name):
    path = "/containers/create" + (f"?{urlencode({'name': name})}" if name is not None else "")
    resp = daemon.request("POST", path, body)
    assert resp.status < 500, (resp.status, resp.body)
    if resp.status == 201:
        cid = resp.json()["Id"]
        inspected = daemon.request("GET", f"/containers/{cid}/json")
        assert inspected.status == 200, inspected.body
        removed = daemon.request("DELETE", f"/containers/{cid}?force=1&v=1")
        assert removed.status == 204, removed.body
    else:
        assert resp.json()["message"]
    assert daemon.request("HEAD", "/_ping").status == 200


QUERY_VALUES = st.sampled_from(["", "0", "1", "true", "-1", "all", "9" * 30, "{}", "[]",
                                '{"status":["exited"]}', '{"label":{"a":true}}', "1.5",
                                "2001-01-01T00:00:00Z", "SIGKILL", "%", "\x00"]) | st.text(
    max_size=10)
QUERY_TARGETS = [
    ("GET", "/containers/json", ["all", "limit", "size", "filters"]),
    ("GET", "/containers/{c}/logs", ["stdout", "stderr", "tail", "since", "until",
                                      "timestamps"]),
    ("GET", "/containers/{c}/json", ["size"]),
    ("GET", "/containers/{c}/stats", ["one-shot"]),
    ("GET", "/containers/{c}/top", ["ps_args"]),
    ("POST", "/containers/{c}/kill", ["signal"]),
    ("POST", "/containers/{c}/resize", ["h", "w"]),
    ("POST", "/containers/{c}/wait", ["condition"]),
    ("GET", "/events", ["since", "filters"]),
    ("GET", "/images/json", ["all", "filters", "digests"]),
    ("GET", "/volumes", ["filters"]),
    ("POST", "/containers/prune", ["filters"]),
    ("POST", "/images/prune", ["filters"]),
]


@pytest.fixture(scope="module")
def fuzz_target(daemon):
    """A running container for the query fuzz (and one that has exited)."""
    cid = daemon.create(["sleep", "300"], name="fuzz-target",
                        Labels={"fuzz": "keep"})
    daemon.request("POST", f"/containers/{cid}/start")
    yield cid
    daemon.request("DELETE", f"/containers/{cid}?force=1")


@FUZZ
@given(target=st.sampled_from(QUERY_TARGETS), data=st.data())
def test_fuzzed_query_strings_never_fail_with_5xx(daemon, fuzz_target, target, data):
    method, path, names = target
    params = data.draw(st.dictionaries(st.sampled_from(names), QUERY_VALUES, max_size=3))
    if path == "/containers/{c}/stats":
        params["stream"] = "0"
    if path == "/containers/{c}/logs":
        params["follow"] = "0"
    if path == "/events":
        params["until"] = "1"  # in the past: the answer ends
    if path == "/containers/{c}/wait":
        params["condition"] = "not-running"  # the target keeps running: do not block
    if path == "/containers/prune" or path == "/images/prune":
        params["filters"] = json.dumps({"label": ["fuzz=never-set"]})
    url = path.format(c="fuzz-target") + "?" + urlencode(params)
    if path == "/containers/{c}/wait":
        url = "/containers/nosuchthing/wait?" + urlencode(params)
    resp = daemon.request(method, url, timeout=20)
    assert resp.status < 500, (url, resp.status, resp.body)
    assert daemon.request("GET", "/_ping").status == 200


# -- TLS -----------------------------------------------------------------------------------
def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
             "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for name, ext in (("server", "ext.cnf"), ("client", "client.cnf")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}-key.pem"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                 "-CAkey", str(d / "ca-key.pem"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(d / ext), "-out", str(d / f"{name}.pem"))
    return d


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_tcp_with_tlsverify_requires_a_client_certificate(tls_files):
    import http.client
    import ssl
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    t = tls_files
    d = fx.start_daemon(["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                         "--tlscacert", str(t / "ca.pem"), "--tlscert", str(t / "server.pem"),
                         "--tlskey", str(t / "server-key.pem")])
    try:
        ctx = ssl.create_default_context(cafile=str(t / "ca.pem"))
        ctx.load_cert_chain(str(t / "client.pem"), str(t / "client-key.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        conn.request("GET", "/v1.44/version")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["ApiVersion"] == "1.44"
        conn.close()
        anonymous = ssl.create_default_context(cafile=str(t / "ca.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=anonymous, timeout=10)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            conn.request("GET", "/_ping")
            conn.getresponse().read()
        conn.close()
        # A hijacked stream over TLS: the CLI ends stdin with close_notify, output follows.
        fx.import_busybox(d)
        docker = ["docker", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                  "--tlscacert", str(t / "ca.pem"), "--tlscert", str(t / "client.pem"),
                  "--tlskey", str(t / "client-key.pem")]
        if shutil.which("docker"):
            proc = subprocess.run([*docker, "run", "-i", "--rm", "--network", "none", "busybox",
                                   "sh", "-c", "cat; exit 3"], input="over tls\n",
                                  capture_output=True, text=True, timeout=60)
            assert (proc.returncode, proc.stdout) == (3, "over tls\n"), proc.stderr
    finally:
        fx.stop_daemon(d)
