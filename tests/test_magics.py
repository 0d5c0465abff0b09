"""``%container`` in a real IPython shell against a real pyjaild (and dockerd where it runs).

DataFrames with the documented columns and dtypes (empty ones too), ``{var}``/``$var``
expansion, one-line errors without tracebacks, and the widgets (constructed directly:
a terminal shell has no kernel to show them; test_notebooks runs them in a kernel).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from daemon_fixtures import ipython_shell
from IPython.core.error import UsageError
from test_client import DaemonProcess, DockerdProcess, require_server, server_has  # noqa: F401

from pyjail.client import views
from pyjail.client.connection import Client
from pyjail.client.errors import ClientError

STR, INT, FLOAT, TIME, OBJ = "string", "int64", "float64", "datetime64[ns, UTC]", "object"
DTYPES = {
    "ps": {"id": STR, "name": STR, "image": STR, "command": STR, "created": TIME, "state": STR,
           "status": STR, "ports": STR, "labels": OBJ, "size_rw": INT},
    "images": {"repository": STR, "tag": STR, "id": STR, "created": TIME, "size": INT},
    "volumes": {"name": STR, "driver": STR, "mountpoint": STR, "scope": STR, "created": TIME,
                "labels": OBJ},
    "stats": {"id": STR, "name": STR, "cpu_percent": FLOAT, "mem_usage": INT,
              "mem_limit": INT, "mem_percent": FLOAT, "net_rx": INT, "net_tx": INT,
              "block_read": INT, "block_write": INT, "pids": INT, "read": TIME},
    "top": {"uid": STR, "pid": INT, "ppid": INT, "c": STR, "stime": STR, "tty": STR,
            "time": STR, "cmd": STR},
    "history": {"id": STR, "created": TIME, "created_by": STR, "size": INT, "comment": STR,
                "tags": OBJ},
    "df": {"type": STR, "total": INT, "active": INT, "size": INT, "reclaimable": INT},
    "events": {"time": TIME, "type": STR, "action": STR, "id": STR, "name": STR,
               "attributes": OBJ},
    "backups": {"id": STR, "name": STR, "container": STR, "image": STR, "created": TIME,
                "size": INT},
    "inspect": {"field": STR, "value": OBJ},
}


def dtypes(frame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess().start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def ip(daemon):
    shell = ipython_shell()
    shell.run_cell("%load_ext pyjail_jupyter")
    shell.run_cell(f"%config ContainerMagics.host = '{daemon.host}'")
    shell.run_cell("%config ContainerMagics.output = 'dataframe'")
    yield shell
    shell.run_cell("%config ContainerMagics.host = None")


@pytest.fixture
def client(daemon):
    c = Client(daemon.host)
    yield c
    with contextlib.suppress(ClientError):
        for entry in c.api.containers(all=True, filters={"label": ["pyjail-test"]}):
            c.api.remove_container(entry["Id"], force=True)
    c.close()


def cell(ip, source: str):
    """Run a cell; re-raise anything but the UsageErrors the tests look at."""
    result = ip.run_cell(source)
    if result.error_in_exec is not None and not isinstance(result.error_in_exec, UsageError):
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result.result


def one_line_error(ip, capsys, source: str) -> str:
    capsys.readouterr()
    result = ip.run_cell(source)
    captured = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    text = (captured.out + captured.err).strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("UsageError: ")
    return text


# -- run, variables, scripts -------------------------------------------------------------------
def test_run_streams_into_the_cell_and_returns_a_result(ip, capsys):
    result = cell(ip, "%container run --rm -l pyjail-test busybox sh -c 'echo hi; exit 4'")
    assert capsys.readouterr().out.startswith("hi\n")
    assert (result.exit_code, result.output) == (4, "hi\n")


def test_python_variables_expand_in_magic_lines(ip, client):
    ip.user_ns.update(word="expanded", cname="pj-vars")
    result = cell(ip, "%container run --rm -l pyjail-test busybox echo {word} $word")
    assert result.stdout == "expanded expanded\n"
    cell(ip, "%container run -d --name $cname -l pyjail-test busybox sleep 30")
    frame = cell(ip, "%container ps --filter name={cname}")
    assert list(frame["name"]) == ["pj-vars"]
    # single-quoted text is left alone; outside quotes $$ is a literal dollar
    assert cell(ip, "%container run --rm busybox sh -c 'echo $0'").stdout == "sh\n"
    assert cell(ip, "%container run --rm busybox echo $$HOME").stdout == "$HOME\n"


def test_cell_magic_runs_the_cell_as_a_script(ip):
    result = cell(ip, "%%container -e WHO=cell busybox\necho script by $WHO\nexit 2")
    assert (result.exit_code, result.stdout) == (2, "script by cell\n")
    assert result.removed


def test_containerfile_builds_with_progress(ip, client):
    require_server(client, "POST", "/build")
    image_id = cell(ip, "%%containerfile cellbuilt:1 -q\nFROM busybox\nRUN echo yes > /y\n")
    assert image_id
    assert cell(ip, "%container run --rm cellbuilt:1 cat /y").stdout == "yes\n"


# -- DataFrames ------------------------------------------------------------------------------
def test_ps_is_a_dataframe_with_documented_dtypes(ip, client):
    cell(ip, "%container run -d --name pj-ps -l pyjail-test busybox sleep 30")
    frame = cell(ip, "%container ps -a --filter name=pj-ps")
    assert dtypes(frame) == DTYPES["ps"]
    assert frame.loc[0, "state"] == "running"
    empty = cell(ip, "%container ps -a --filter name=nothing-matches-this")
    assert len(empty) == 0 and dtypes(empty) == DTYPES["ps"]


def test_stats_top_inspect_frames(ip, client):
    cell(ip, "%container run -d --name pj-stats -l pyjail-test busybox sleep 30")
    stats = cell(ip, "%container stats pj-stats")
    assert dtypes(stats) == DTYPES["stats"] and stats.loc[0, "pids"] >= 1
    top = cell(ip, "%container top pj-stats")
    assert dtypes(top) == DTYPES["top"] and "sleep 30" in list(top["cmd"])
    info = cell(ip, "%container inspect pj-stats")
    assert dtypes(info) == DTYPES["inspect"]
    assert info.set_index("field").loc["State.Status", "value"] == "running"
    assert set(info.index) == {"pj-stats"}


def test_volumes_df_events_frames(ip, client):
    empty = cell(ip, "%container volumes --filter name=nothing-matches")
    assert len(empty) == 0 and dtypes(empty) == DTYPES["volumes"]
    client.api.create_volume("pj-magic-vol")
    try:
        volumes = cell(ip, "%container volumes --filter name=pj-magic-vol")
        assert list(volumes["name"]) == ["pj-magic-vol"]
        assert dtypes(volumes) == DTYPES["volumes"]
    finally:
        client.api.remove_volume("pj-magic-vol")
    df = cell(ip, "%container df")
    assert dtypes(df) == DTYPES["df"] and len(df) == 4
    events = cell(ip, "%container events --since 10m --filter type=volume")
    assert dtypes(events) == DTYPES["events"]
    assert {"create", "destroy"} <= set(events["action"])
    long_ago = cell(ip, "%container events --since 1 --until 2")
    assert len(long_ago) == 0 and dtypes(long_ago) == DTYPES["events"]


def test_images_and_history_frames(ip, client):
    require_server(client, "GET", "/images/json")
    images = cell(ip, "%container images")
    assert dtypes(images) == DTYPES["images"]
    assert ("busybox", "latest") in set(zip(images["repository"], images["tag"], strict=True))
    empty = cell(ip, "%container images nothing-like-this")
    assert len(empty) == 0 and dtypes(empty) == DTYPES["images"]
    require_server(client, "GET", "/images/busybox/history")
    history = cell(ip, "%container history busybox")
    assert dtypes(history) == DTYPES["history"] and len(history) >= 1


def test_backups_frame(ip, client):
    require_server(client, "GET", "/pyjail/v1/backups")
    frame = cell(ip, "%container backups")
    assert dtypes(frame) == DTYPES["backups"]


def test_backup_and_restore(ip, client):
    require_server(client, "GET", "/pyjail/v1/backups")
    cell(ip, "%container run -d --name pj-bk -l pyjail-test busybox sh -c "
             "'echo data > /keep; sleep 30'")
    backup_id = cell(ip, "%container backup -q pj-bk")
    assert backup_id in set(cell(ip, "%container backups")["id"])
    restored = cell(ip, f"%container restore -q --name pj-restored {backup_id}")
    assert restored
    assert cell(ip, "%container exec pj-restored cat /keep").stdout == "data\n"
    cell(ip, "%container rm -f pj-restored")


def test_lifecycle_and_exec_magics(ip, capsys):
    cell(ip, "%container run -d --name pj-life -l pyjail-test busybox sleep 30")
    assert cell(ip, "%container exec pj-life sh -c 'echo inside'").stdout == "inside\n"
    assert cell(ip, "%container stop -t 1 pj-life") == ["pj-life"]
    assert cell(ip, "%container start pj-life") == ["pj-life"]
    assert cell(ip, "%container restart -t 1 pj-life") == ["pj-life"]
    capsys.readouterr()
    cell(ip, "%container logs pj-life")
    assert cell(ip, "%container rm -f pj-life") == ["pj-life"]
    pruned = cell(ip, "%container prune containers")
    assert list(pruned.columns) == ["type", "deleted", "space_reclaimed", "ids"]


def test_logs_prints_the_output(ip, capsys):
    cell(ip, "%container run --name pj-logs -l pyjail-test busybox sh -c 'echo one; echo two'")
    capsys.readouterr()
    cell(ip, "%container logs --tail 1 pj-logs")
    assert capsys.readouterr().out == "two\n"
    cell(ip, "%container rm pj-logs")


def test_follow_and_live_stats_print_text_without_a_kernel(ip, capsys):
    cell(ip, "%container run -d --name pj-follow -l pyjail-test busybox sh -c "
             "'for i in 1 2 3; do echo n$i; sleep 0.3; done'")
    capsys.readouterr()
    assert cell(ip, "%container logs -f pj-follow") is None
    assert capsys.readouterr().out == "n1\nn2\nn3\n"
    cell(ip, "%container run -d --name pj-live -l pyjail-test busybox sleep 30")
    capsys.readouterr()
    history = cell(ip, "%container stats --live --duration 1 --interval 0.2 pj-live")
    out = capsys.readouterr().out
    assert out.startswith("CONTAINER ID") and "pj-live" in out
    assert len(history) >= 2
    cell(ip, "%container rm -f pj-follow pj-live")


def test_text_output_style(ip, capsys):
    cell(ip, "%config ContainerMagics.output = 'text'")
    try:
        capsys.readouterr()
        assert cell(ip, "%container df") is None
        assert capsys.readouterr().out.startswith("TYPE ")
    finally:
        cell(ip, "%config ContainerMagics.output = 'dataframe'")


def test_help_prints_the_shared_grammar(ip, capsys):
    capsys.readouterr()
    cell(ip, "%container run --help")
    out = capsys.readouterr().out
    assert "--health-start-period" in out and "usage: %container run" in out
    from pyjail_jupyter.magics import ContainerMagics
    doc = ContainerMagics.container.__doc__
    assert "%container run [--help]" in doc and "%container stats" in doc


# -- one-line errors -------------------------------------------------------------------------
def test_user_errors_are_one_line_without_traceback(ip, capsys):
    assert "invalid size" in one_line_error(ip, capsys, "%container run -m 12x busybox true")
    assert "invalid choice: 'frobnicate'" in one_line_error(ip, capsys, "%container frobnicate")
    assert "subcommand is required" in one_line_error(ip, capsys, "%container")
    assert "unrecognized arguments" in one_line_error(ip, capsys, "%container ps --bogus")
    assert "No such container" in one_line_error(ip, capsys, "%container logs ghost-ctr")
    assert "nope" in one_line_error(ip, capsys,
                                    "%container run --pull never busybox:nope true")
    assert "cannot parse" in one_line_error(ip, capsys, "%container run 'unbalanced")
    assert "restart policy" in one_line_error(ip, capsys,
                                              "%container run --restart sometimes busybox")


def test_unknown_image_is_one_line(ip, capsys):
    text = one_line_error(ip, capsys, "%container run no-such-image-here:1 true")
    assert "no-such-image-here" in text


def test_daemon_down_is_one_line_with_start_hint(ip, capsys, daemon):
    cell(ip, "%config ContainerMagics.host = 'unix:///var/tmp/no-daemon-here.sock'")
    try:
        text = one_line_error(ip, capsys, "%container ps")
        assert "pyjail daemon start" in text
    finally:
        cell(ip, f"%config ContainerMagics.host = '{daemon.host}'")


def test_missing_server_feature_is_one_line(ip, capsys, client):
    if server_has(client, "GET", "/pyjail/v1/backups"):
        pytest.skip("the daemon serves backups now")
    assert "does not serve" in one_line_error(ip, capsys, "%container backups")


# -- widgets, built directly -------------------------------------------------------------------
def test_log_tail_widget_follows_until_the_container_ends(client):
    from pyjail_jupyter.widgets.logtail import LogTail
    client.api.start(client.api.create_container(
        "busybox", ["sh", "-c", "for i in 1 2 3 4; do echo w$i; sleep 0.2; done"],
        name="pj-tail", labels={"pyjail-test": ""}))
    tail = LogTail(client, "pj-tail")
    assert tail.wait(10)
    assert tail.lines == ["w1", "w2", "w3", "w4"]
    assert "w4" in tail.view.value and "ended" in tail.header.value
    bundle = tail._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "w4" in bundle["text/html"]


def test_log_tail_widget_stops_on_request(client):
    from pyjail_jupyter.widgets.logtail import LogTail
    client.api.start(client.api.create_container(
        "busybox", ["sh", "-c", "while true; do echo t; sleep 0.1; done"],
        name="pj-tail2", labels={"pyjail-test": ""}))
    tail = LogTail(client, "pj-tail2")
    time.sleep(0.3)
    tail.stop_button.click()
    assert tail.wait(5) and "stopped" in tail.header.value


def test_stats_plot_widget_draws_many_containers(client):
    from pyjail_jupyter.widgets.statsplot import StatsPlot
    for name in ("pj-plot-a", "pj-plot-b"):
        client.api.start(client.api.create_container("busybox", ["sleep", "30"], name=name,
                                                     labels={"pyjail-test": ""}))
    plot = StatsPlot(client, ["pj-plot-a", "pj-plot-b"], interval=0.2, duration=1.2)
    assert plot.wait(30)
    frame = plot.frame
    assert set(frame["name"]) == {"pj-plot-a", "pj-plot-b"}
    assert dtypes(frame) == DTYPES["stats"]
    assert plot.png is not None and plot.png.startswith(b"\x89PNG")
    assert plot.image.value == plot.png
    assert "image/png" in plot._repr_mimebundle_()


def test_progress_bar_widget_tracks_a_stream():
    from pyjail_jupyter.widgets.progress import ProgressBar

    from pyjail.client.progress import StreamTracker
    bar = ProgressBar("build t:1")
    events = [{"stream": "Step 1/2 : FROM busybox\n"}, {"stream": "Step 2/2 : RUN true\n"},
              {"aux": {"ID": "sha256:abc"}}, {"stream": "Successfully built abc\n"}]
    assert StreamTracker(bar).run(events, "built") == "sha256:abc"
    assert bar.done and bar.ok and bar.bar.value == bar.bar.max == 2
    assert "built" in bar.summary()
    failing = ProgressBar("pull x")
    with pytest.raises(ClientError, match="manifest unknown"):
        StreamTracker(failing).run([{"status": "Pulling", "id": "l1",
                                     "progressDetail": {"current": 5, "total": 10}},
                                    {"error": "manifest unknown"}])
    assert failing.ok is False and failing.bar.bar_style == "danger"


# -- registry: pull and push -------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry():
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry (Debian package) is not installed")
    root = Path(tempfile.mkdtemp(prefix="pyjail-test-registry-", dir="/var/tmp"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                      f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    shutil.rmtree(root, ignore_errors=True)


def test_push_then_pull_through_a_loopback_registry(ip, client, registry):
    require_server(client, "POST", "/images/busybox/tag?repo=probe-tag&tag=1")
    ref = f"{registry}/pyjail-test/bb:1"
    cell(ip, f"%container tag busybox {ref}")
    require_server(client, "POST", f"/images/{ref}/push")
    cell(ip, f"%container push -q {ref}")
    image_id = cell(ip, f"%container pull -q {ref}")
    assert image_id.startswith("sha256:")


# -- the same magics against dockerd -------------------------------------------------------------
@pytest.fixture(scope="module")
def dockerd():
    d = DockerdProcess().start()
    yield d
    d.stop()


def test_magics_against_dockerd(ip, capsys, dockerd, daemon):
    cell(ip, f"%config ContainerMagics.host = '{dockerd.host}'")
    try:
        result = cell(ip, "%container run --rm --network none -l pyjail-test busybox:local "
                          "echo from-docker")
        assert result.stdout == "from-docker\n"
        cell(ip, "%container run -d --network none --name pj-dkr -l pyjail-test "
                 "busybox:local sleep 30")
        assert dtypes(cell(ip, "%container ps --filter name=pj-dkr")) == DTYPES["ps"]
        assert dtypes(cell(ip, "%container stats pj-dkr")) == DTYPES["stats"]
        assert dtypes(cell(ip, "%container top pj-dkr")) == DTYPES["top"]
        assert dtypes(cell(ip, "%container images busybox")) == DTYPES["images"]
        assert dtypes(cell(ip, "%container history busybox:local")) == DTYPES["history"]
        assert dtypes(cell(ip, "%container df")) == DTYPES["df"]
        events = cell(ip, "%container events --since 60s --filter container=pj-dkr")
        assert "start" in set(events["action"])
        text = one_line_error(ip, capsys, "%container backups")
        assert "need a pyjail daemon" in text
        assert cell(ip, "%container rm -f pj-dkr") == ["pj-dkr"]
    finally:
        cell(ip, f"%config ContainerMagics.host = '{daemon.host}'")


def test_views_schemas_match_the_documented_dtypes():
    from pyjail.client.tables import Table
    for name in ("ps", "images", "volumes", "stats", "history", "df", "events", "backups"):
        schema = getattr(views, name.upper())
        assert dtypes(Table(schema).to_frame()) == DTYPES[name], name
