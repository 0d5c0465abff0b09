"""The Jupyter server extension (``pyjail_jupyter.server``) through real HTTP and WebSockets,
in front of a real ``pyjaild``: every route, the server's auth and XSRF, read-only mode,
daemon errors passed through, and live events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jupyter_server")
pytest.importorskip("pytest_jupyter")

ROOT = Path(__file__).resolve().parent.parent
if "pyjail_jupyter" in sys.modules:
    _pkg = sys.modules["pyjail_jupyter"]
    _here = str(ROOT / "jupyter_ext" / "pyjail_jupyter")
    if _here not in list(_pkg.__path__):
        _pkg.__path__.insert(0, _here)

from test_client import DaemonProcess  # noqa: E402
from tornado.httpclient import HTTPClientError, HTTPRequest  # noqa: E402
from tornado.websocket import websocket_connect  # noqa: E402
from traitlets.config import Config  # noqa: E402

from pyjail.client.connection import Client, json_lines  # noqa: E402

pytest_plugins = ["pytest_jupyter.jupyter_server"]

LOOP = "while true; do echo tick; sleep 0.2; done"


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonProcess]:
    d = DaemonProcess().start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def client(daemon: DaemonProcess) -> Iterator[Client]:
    c = Client(daemon.host, timeout=30)
    yield c
    c.close()


@pytest.fixture
def container(client: Client) -> Iterator[str]:
    """A created (not started) busybox container that prints a line every 0.2 s."""
    cid = client.api.create_container("busybox", ["sh", "-c", LOOP],
                                      labels={"pyjail-test": "jupyter"})["Id"]
    yield cid
    with contextlib.suppress(Exception):
        client.api.remove_container(cid, force=True)


@pytest.fixture
def read_only() -> bool:
    return False


@pytest.fixture
def jp_server_config(daemon: DaemonProcess, read_only: bool) -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"pyjail_jupyter.server": True}},
        "PyjailJupyterConfig": {"host": daemon.host, "read_only": read_only},
    })


async def call(jp_fetch: Any, *parts: str, method: str = "GET", **kwargs: Any) -> Any:
    """``jp_fetch`` under ``pyjail/api`` that hands back every status (no raise)."""
    if method == "POST":
        kwargs.setdefault("body", b"")
    return await jp_fetch("pyjail", "api", *parts, method=method, raise_error=False, **kwargs)


def body(resp: Any) -> Any:
    return json.loads(resp.body or b"null")


def state(client: Client, cid: str) -> str:
    return client.api.inspect_container(cid)["State"]["Status"]


def wait_for_state(client: Client, cid: str, wanted: str, timeout: float = 10) -> str:
    """The daemon may answer an action before the process is gone; poll briefly."""
    deadline = time.monotonic() + timeout
    while (current := state(client, cid)) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return current


@pytest.fixture
def ws_connect(http_server_client: Any, jp_http_port: int, jp_base_url: str,
               jp_auth_header: dict[str, str]) -> Callable[..., Any]:
    """``websocket_connect`` to a ``pyjail/api`` path, with the server's token unless
    ``auth=False``. Depends on ``http_server_client`` because that fixture is what starts
    the test server listening on ``jp_http_port``."""

    def connect(path: str, auth: bool = True) -> Any:
        request = HTTPRequest(f"ws://localhost:{jp_http_port}{jp_base_url}pyjail/api/{path}",
                              headers=dict(jp_auth_header) if auth else {},
                              connect_timeout=10)
        return websocket_connect(request)

    return connect


# -- REST -------------------------------------------------------------------------------------
async def test_info_names_the_daemon_and_the_allowed_actions(jp_fetch: Any,
                                                             daemon: DaemonProcess) -> None:
    resp = await call(jp_fetch, "info")
    assert resp.code == 200
    data = body(resp)
    assert data["host"] == daemon.host
    assert data["read_only"] is False
    assert "pyjail" in data["server"].lower()
    assert {"stop", "kill", "remove", "prune", "restore"} <= set(data["actions"])
    assert "Containers" in data["info"]


async def test_listings_answer_the_daemons_json(jp_fetch: Any, client: Client,
                                                container: str) -> None:
    containers = body(await call(jp_fetch, "containers"))
    assert container in [c["Id"] for c in containers]
    images = body(await call(jp_fetch, "images"))
    assert any("busybox:latest" in (i.get("RepoTags") or []) for i in images)
    volumes = await call(jp_fetch, "volumes")
    assert volumes.code == 200 and isinstance(body(volumes), list)
    backups = await call(jp_fetch, "backups")
    assert backups.code in (200, 501), backups.body
    assert isinstance(body(backups), list) if backups.code == 200 else "message" in body(backups)
    inspected = body(await call(jp_fetch, "containers", container))
    assert inspected["Id"] == container
    image = body(await call(jp_fetch, "images", "busybox:latest"))
    assert image["Id"].startswith("sha256:")


async def test_container_actions_drive_the_daemon(jp_fetch: Any, client: Client,
                                                  container: str) -> None:
    for action, expected in [("start", "running"), ("pause", "paused"),
                             ("unpause", "running"), ("restart", "running")]:
        resp = await call(jp_fetch, "containers", container, action, method="POST",
                          params={"t": "0"} if action == "restart" else None)
        assert resp.code == 204, (action, resp.body)
        assert state(client, container) == expected, action
    resp = await call(jp_fetch, "containers", container, "kill", method="POST")
    assert resp.code == 204
    assert wait_for_state(client, container, "exited") == "exited"
    resp = await call(jp_fetch, "containers", container, "start", method="POST")
    resp = await call(jp_fetch, "containers", container, "stop", method="POST",
                      params={"t": "0"})
    assert resp.code == 204
    assert wait_for_state(client, container, "exited") == "exited"
    resp = await call(jp_fetch, "containers", container, method="DELETE")
    assert resp.code == 204
    assert container not in [c["Id"] for c in client.api.containers(all=True)]


async def test_image_prune_and_removal(jp_fetch: Any) -> None:
    resp = await call(jp_fetch, "images", "prune", method="POST")
    assert resp.code == 200
    assert "SpaceReclaimed" in body(resp)
    resp = await call(jp_fetch, "images", "no-such-image:never", method="DELETE")
    assert resp.code == 404
    assert body(resp)["message"]


async def test_daemon_errors_keep_their_status_and_message(jp_fetch: Any, client: Client,
                                                           container: str) -> None:
    for parts, method in [(("containers", "nope-nope"), "GET"),
                          (("containers", "nope-nope", "start"), "POST"),
                          (("containers", "nope-nope"), "DELETE")]:
        resp = await call(jp_fetch, *parts, method=method)
        assert resp.code == 404, (parts, resp.body)
        assert "nope-nope" in body(resp)["message"]
    client.api.start(container)
    resp = await call(jp_fetch, "containers", container, method="DELETE")
    assert resp.code == 409
    assert body(resp)["message"]


async def test_backups_list_and_restore_into_a_new_container(jp_fetch: Any, client: Client,
                                                             container: str) -> None:
    resp = client.pyjail_request("POST", f"containers/{container}/backup", feature="backups",
                                 stream=True)
    with resp:
        backup_id = [m for m in json_lines(resp) if "aux" in m][-1]["aux"]["ID"]
    listed = body(await call(jp_fetch, "backups"))
    assert backup_id in [b["Id"] for b in listed]
    resp = await call(jp_fetch, "backups", backup_id, "restore", method="POST",
                      params={"name": "pyjail-jupyter-restored"})
    assert resp.code == 201, resp.body
    restored = body(resp)["Id"]
    try:
        assert client.api.inspect_container(restored)["Name"] == "/pyjail-jupyter-restored"
    finally:
        client.api.remove_container(restored, force=True)
    missing = await call(jp_fetch, "backups", "no-such-backup", "restore", method="POST")
    assert missing.code == 404 and body(missing)["message"]


def test_the_shipped_config_enables_this_extension() -> None:
    shipped = ROOT / "jupyter_ext" / "jupyter-config" / "jupyter_server_config.d"
    enabled = json.loads((shipped / "pyjail_jupyter.json").read_text())
    modules = [m for m, on in enabled["ServerApp"]["jpserver_extensions"].items() if on]
    assert modules == ["pyjail_jupyter.server"]
    import pyjail_jupyter.server as ext
    assert ext._jupyter_server_extension_points()[0]["module"] == modules[0]


# -- auth ---------------------------------------------------------------------------------------
async def test_requests_without_auth_are_forbidden(http_server_client: Any, jp_base_url: str,
                                                   ws_connect: Callable[..., Any],
                                                   container: str) -> None:
    for path, method in [("info", "GET"), ("containers", "GET"),
                         (f"containers/{container}/start", "POST"),
                         (f"containers/{container}", "DELETE")]:
        resp = await http_server_client.fetch(
            f"{jp_base_url}pyjail/api/{path}", method=method, raise_error=False,
            body=b"" if method == "POST" else None)
        assert resp.code == 403, (path, resp.code)
    with pytest.raises(HTTPClientError) as refused:
        await ws_connect("events/ws", auth=False)
    assert refused.value.code == 403
    with pytest.raises(HTTPClientError) as refused:
        await ws_connect(f"containers/{container}/logs/ws", auth=False)
    assert refused.value.code == 403


async def test_cookie_auth_needs_the_xsrf_token_for_writes(http_server_client: Any,
                                                           jp_base_url: str,
                                                           jp_auth_header: dict[str, str],
                                                           client: Client,
                                                           container: str) -> None:
    first = await http_server_client.fetch(f"{jp_base_url}pyjail/api/info",
                                           headers=jp_auth_header)
    cookies = "; ".join(c.split(";", 1)[0] for c in first.headers.get_list("Set-Cookie"))
    assert cookies, "token login should set the login cookie"
    url = f"{jp_base_url}pyjail/api/containers/{container}/start"
    read = await http_server_client.fetch(f"{jp_base_url}pyjail/api/containers",
                                          headers={"Cookie": cookies}, raise_error=False)
    assert read.code == 200
    write = await http_server_client.fetch(url, method="POST", body=b"", raise_error=False,
                                           headers={"Cookie": cookies})
    assert write.code == 403
    assert "xsrf" in body(write)["message"].lower()
    assert state(client, container) == "created"
    xsrf = "2|aaaaaaaa|bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb|1700000000"
    write = await http_server_client.fetch(
        url, method="POST", body=b"", raise_error=False,
        headers={"Cookie": f"{cookies}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert write.code == 204, write.body
    assert state(client, container) == "running"


# -- read-only ----------------------------------------------------------------------------------
class TestReadOnly:
    @pytest.fixture
    def read_only(self) -> bool:
        return True

    async def test_destructive_actions_are_refused(self, jp_fetch: Any, client: Client,
                                                   container: str) -> None:
        info = body(await call(jp_fetch, "info"))
        assert info["read_only"] is True
        assert not {"stop", "kill", "remove", "prune", "restore"} & set(info["actions"])
        assert (await call(jp_fetch, "containers", container, "start", method="POST")).code \
            == 204
        refused = [
            await call(jp_fetch, "containers", container, "stop", method="POST"),
            await call(jp_fetch, "containers", container, "kill", method="POST"),
            await call(jp_fetch, "containers", container, "restart", method="POST"),
            await call(jp_fetch, "containers", container, method="DELETE"),
            await call(jp_fetch, "images", "busybox:latest", method="DELETE"),
            await call(jp_fetch, "images", "prune", method="POST"),
            await call(jp_fetch, "backups", "some-backup", "restore", method="POST"),
        ]
        assert [r.code for r in refused] == [403] * len(refused)
        assert "read-only" in body(refused[0])["message"]
        assert state(client, container) == "running"
        assert (await call(jp_fetch, "containers")).code == 200


# -- WebSockets -----------------------------------------------------------------------------------
def stream_threads() -> int:
    return sum(t.name == "pyjail-jupyter-stream" for t in threading.enumerate())


async def wait_for_no_stream_threads(timeout: float = 5) -> int:
    """A closed socket must stop its reader thread (no thread per visit left behind)."""
    deadline = time.monotonic() + timeout
    while stream_threads() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return stream_threads()


async def next_json(ws: Any, timeout: float = 10) -> Any:
    message = await asyncio.wait_for(ws.read_message(), timeout)
    assert message is not None, "the socket closed"
    return json.loads(message)


async def test_events_socket_delivers_a_container_start(ws_connect: Callable[..., Any],
                                                        client: Client, container: str) -> None:
    # ``since`` replays from before the subscription (made on the reader thread) exists
    ws = await ws_connect(f"events/ws?since={int(time.time()) - 1}")
    try:
        await asyncio.get_running_loop().run_in_executor(None, client.api.start, container)
        deadline = time.monotonic() + 10
        while True:
            event = await next_json(ws, max(0.1, deadline - time.monotonic()))
            if event.get("Action") == "start" and \
                    (event.get("Actor") or {}).get("ID", event.get("id")) == container:
                break
    finally:
        ws.close()
    assert await wait_for_no_stream_threads() == 0


async def test_logs_and_stats_sockets_stream_a_running_container(
        ws_connect: Callable[..., Any], client: Client, container: str) -> None:
    client.api.start(container)
    logs = await ws_connect(f"containers/{container}/logs/ws?tail=5")
    try:
        piece = await next_json(logs)
        assert piece["stream"] == "stdout" and "tick" in piece["text"]
    finally:
        logs.close()
    stats = await ws_connect(f"containers/{container}/stats/ws?interval=0.2")
    try:
        row = await next_json(stats)
        assert "error" not in row, row
        assert "cpu_percent" in row and "mem_usage" in row
    finally:
        stats.close()
    assert await wait_for_no_stream_threads() == 0


async def test_stream_of_an_unknown_container_is_404(ws_connect: Callable[..., Any]) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await ws_connect("containers/nope-nope/logs/ws")
    assert refused.value.code == 404


# -- sidebar routes: build, tag, volumes, backups, schedules, daemon -------------------------------
def lines(resp: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.body.decode().splitlines() if line.strip()]


async def test_build_from_a_dockerfile_in_the_root_then_tag(jp_fetch: Any, jp_root_dir: Path,
                                                            client: Client) -> None:
    app = jp_root_dir / "app"
    app.mkdir()
    (app / "hello.txt").write_text("hello from the build context\n")
    (app / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n")
    resp = await call(jp_fetch, "images", "build", method="POST",
                      body=json.dumps({"path": "app/Dockerfile", "tag": "pj-sidebar-built:1"}))
    assert resp.code == 200, resp.body
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    got = lines(resp)
    assert not [m for m in got if "error" in m], got
    assert "hello from the build context" in "".join(str(m.get("stream", "")) for m in got)
    try:
        resp = await call(jp_fetch, "images", "pj-sidebar-built:1", "tag", method="POST",
                          body=json.dumps({"repo": "pj-sidebar-built", "tag": "2"}))
        assert resp.code == 201, resp.body
        tags = client.api.inspect_image("pj-sidebar-built:1")["RepoTags"]
        assert "pj-sidebar-built:2" in tags
    finally:
        for ref in ("pj-sidebar-built:2", "pj-sidebar-built:1"):
            with contextlib.suppress(Exception):
                client.api.remove_image(ref)
    outside = await call(jp_fetch, "images", "build", method="POST",
                         body=json.dumps({"path": "../../etc/passwd"}))
    assert outside.code == 400 and "outside" in body(outside)["message"]
    missing = await call(jp_fetch, "images", "build", method="POST",
                         body=json.dumps({"path": "nope/Dockerfile"}))
    assert missing.code == 404
    notag = await call(jp_fetch, "images", "busybox:latest", "tag", method="POST",
                       body=json.dumps({}))
    assert notag.code == 400


async def test_volume_create_backup_verify_and_remove(jp_fetch: Any, client: Client) -> None:
    resp = await call(jp_fetch, "volumes", method="POST",
                      body=json.dumps({"Name": "pj-sidebar-vol"}))
    assert resp.code == 201, resp.body
    assert body(resp)["Name"] == "pj-sidebar-vol"
    backup_id = ""
    try:
        resp = await call(jp_fetch, "volumes", "pj-sidebar-vol", "backup", method="POST",
                          params={"name": "pj-sidebar-vol-backup"})
        assert resp.code == 200, resp.body
        backup_id = [m for m in lines(resp) if "aux" in m][-1]["aux"]["ID"]
        assert backup_id in [b["Id"] for b in body(await call(jp_fetch, "backups"))]
        verified = await call(jp_fetch, "backups", backup_id, "verify", method="POST")
        assert verified.code == 200, verified.body
        assert body(verified)["Valid"] is True
        resp = await call(jp_fetch, "backups", backup_id, method="DELETE")
        assert resp.code == 204, resp.body
        assert backup_id not in [b["Id"] for b in body(await call(jp_fetch, "backups"))]
        backup_id = ""
    finally:
        if backup_id:
            await call(jp_fetch, "backups", backup_id, method="DELETE")
        resp = await call(jp_fetch, "volumes", "pj-sidebar-vol", method="DELETE")
    assert resp.code == 204
    assert "pj-sidebar-vol" not in [v["Name"] for v in body(await call(jp_fetch, "volumes"))]


async def test_container_backup_streams_progress(jp_fetch: Any, container: str) -> None:
    resp = await call(jp_fetch, "containers", container, "backup", method="POST")
    assert resp.code == 200, resp.body
    got = lines(resp)
    backup_id = [m for m in got if "aux" in m][-1]["aux"]["ID"]
    assert any("status" in m for m in got)
    assert (await call(jp_fetch, "backups", backup_id, method="DELETE")).code == 204
    missing = await call(jp_fetch, "containers", "nope-nope", "backup", method="POST")
    assert missing.code == 404


async def test_schedules_create_list_and_remove(jp_fetch: Any, container: str) -> None:
    bad = await call(jp_fetch, "schedules", method="POST",
                     body=json.dumps({"Container": container}))
    assert bad.code == 400 and body(bad)["message"]
    resp = await call(jp_fetch, "schedules", method="POST",
                      body=json.dumps({"Container": container, "Interval": 3600, "Keep": 2}))
    assert resp.code == 201, resp.body
    sched = body(resp)
    assert sched["Interval"] == 3600 and sched["Keep"] == 2
    assert sched["Id"] in [s["Id"] for s in body(await call(jp_fetch, "schedules"))]
    assert (await call(jp_fetch, "schedules", sched["Id"], method="DELETE")).code == 204
    assert sched["Id"] not in [s["Id"] for s in body(await call(jp_fetch, "schedules"))]


async def test_daemon_address_can_be_switched(jp_fetch: Any, daemon: DaemonProcess) -> None:
    assert body(await call(jp_fetch, "daemon"))["host"] == daemon.host
    resp = await call(jp_fetch, "daemon", method="PUT",
                      body=json.dumps({"host": "unix:///nonexistent/pyjail.sock"}))
    assert resp.code == 200
    assert (await call(jp_fetch, "info")).code == 503
    resp = await call(jp_fetch, "daemon", method="PUT", body=json.dumps({"host": daemon.host}))
    assert resp.code == 200 and body(resp)["host"] == daemon.host
    assert (await call(jp_fetch, "info")).code == 200


class TestReadOnlySidebarRoutes:
    @pytest.fixture
    def read_only(self) -> bool:
        return True

    async def test_removals_and_daemon_switch_are_refused(self, jp_fetch: Any) -> None:
        refused = [
            await call(jp_fetch, "volumes", "any-volume", method="DELETE"),
            await call(jp_fetch, "backups", "any-backup", method="DELETE"),
            await call(jp_fetch, "schedules", "any-schedule", method="DELETE"),
            await call(jp_fetch, "daemon", method="PUT", body=json.dumps({"host": ""})),
        ]
        assert [r.code for r in refused] == [403] * len(refused)
