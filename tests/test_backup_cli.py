"""``pyjail backup|restore|backups|verify|schedule|prune backups`` in a real shell process
against a real pyjaild, and the same grammar through the ``%container`` magic."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from daemon_fixtures import UnixHTTPConnection, ipython_shell
from test_cli import pyjail
from test_client import DaemonProcess

from pyjail.client.connection import Client


@pytest.fixture(scope="module")
def daemon():
    d = DaemonProcess().start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="pyjail-test-bkcli-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def source(daemon):
    """A running container with a file worth backing up."""
    run = pyjail("run", "-d", "--name", "bk-src", "busybox", "sh", "-c",
                 "echo precious > /data.txt; sleep 300", host=daemon.host)
    assert run.returncode == 0, run.stderr
    client = Client(daemon.host)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:   # the file exists once exec can read it
        probe = pyjail("exec", "bk-src", "cat", "/data.txt", host=daemon.host)
        if probe.stdout == "precious\n":
            break
        time.sleep(0.05)
    yield "bk-src"
    client.api.remove_container("bk-src", force=True)
    client.close()


def catalogue(daemon) -> list[dict]:
    client = Client(daemon.host)
    try:
        return client.api.request("GET", client.api.base_url + "/pyjail/v1/backups").json()
    finally:
        client.close()


def test_backup_prints_the_path_and_downloads_with_o(daemon, source, workdir):
    made = pyjail("backup", "-q", "--mode", "pause", source, host=daemon.host)
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip()
    entries = {e["Path"]: e for e in catalogue(daemon)}
    assert path in entries and os.path.isfile(path)   # the daemon is on this host
    assert entries[path]["Mode"] == "pause"

    local = workdir / "copy.tar"
    got = pyjail("backup", "-q", "-o", str(local), source, host=daemon.host)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == str(local)
    newest = max(catalogue(daemon), key=lambda e: e["Created"])
    assert local.read_bytes() == Path(newest["Path"]).read_bytes()

    table = pyjail("backups", host=daemon.host)
    assert table.returncode == 0 and newest["Id"] in table.stdout


def test_verify_exit_status_intact_flipped_truncated(daemon, source, workdir):
    local = workdir / "v.tar"
    assert pyjail("backup", "-q", "-o", str(local), source, host=daemon.host).returncode == 0
    ok = pyjail("verify", str(local), host=daemon.host)
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout

    original = local.read_bytes()
    damaged = []
    # a flipped byte anywhere: in member data, outer tar headers or padding, the frame's end
    for at in (len(original) // 4, len(original) // 2, 3 * len(original) // 4, len(original) - 2):
        data = bytearray(original)
        data[at] ^= 0x01
        damaged.append(workdir / f"flipped-{at}.tar")
        damaged[-1].write_bytes(bytes(data))
    truncated = workdir / "truncated.tar"
    truncated.write_bytes(original[: len(original) - 100])
    for bad in (*damaged, truncated):
        res = pyjail("verify", str(bad), host=daemon.host)
        assert res.returncode != 0, (bad, res.stdout)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pyjail: "), res.stderr
        assert "Traceback" not in res.stderr

    listed = pyjail("backups", host=daemon.host).stdout.splitlines()
    by_id = listed[-1].split()[0]    # the newest, as the table prints its id
    assert by_id == max(catalogue(daemon), key=lambda e: e["Created"])["Id"]
    assert pyjail("verify", by_id, host=daemon.host).returncode == 0
    assert not list((daemon.root / "backups").glob(".tmp-upload-*"))   # uploads removed


def test_restore_a_local_file_and_a_catalogue_id(daemon, source, workdir):
    local = workdir / "r.tar"
    assert pyjail("backup", "-q", "-o", str(local), source, host=daemon.host).returncode == 0
    res = pyjail("restore", "-q", "--name", "bk-from-file", str(local), host=daemon.host)
    assert res.returncode == 0, res.stderr
    cat = pyjail("exec", "bk-from-file", "cat", "/data.txt", host=daemon.host)
    assert cat.stdout == "precious\n", cat.stderr
    again = pyjail("restore", "-q", "--name", "bk-from-file", str(local), host=daemon.host)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    backup_id = max(catalogue(daemon), key=lambda e: e["Created"])["Id"]
    forced = pyjail("restore", "-q", "--force", "--name", "bk-from-file", backup_id,
                    host=daemon.host)
    assert forced.returncode == 0, forced.stderr
    cat = pyjail("exec", "bk-from-file", "cat", "/data.txt", host=daemon.host)
    assert cat.stdout == "precious\n", cat.stderr
    assert pyjail("rm", "-f", "bk-from-file", host=daemon.host).returncode == 0


def test_schedule_add_ls_rm_with_keep(daemon, source):
    add = pyjail("schedule", "add", source, "--every", "1s", "--keep", "2", host=daemon.host)
    assert add.returncode == 0, add.stderr
    sched_id = add.stdout.strip()
    listed = pyjail("schedule", "ls", host=daemon.host)
    assert sched_id in listed.stdout and "every 1s" in listed.stdout

    def mine() -> list[dict]:
        return [e for e in catalogue(daemon) if e.get("Schedule") == sched_id]

    client = Client(daemon.host)
    try:
        deadline = time.monotonic() + 30
        runs = 0
        while time.monotonic() < deadline:
            scheds = client.api.request(
                "GET", client.api.base_url + "/pyjail/v1/schedules").json()
            runs = next(s["Runs"] for s in scheds if s["Id"] == sched_id)
            if runs >= 3:
                break
            time.sleep(0.1)
        assert runs >= 3
    finally:
        client.close()
    assert pyjail("schedule", "rm", sched_id, host=daemon.host).returncode == 0
    assert len(mine()) == 2   # retention ran after each run
    assert sched_id not in pyjail("schedule", "ls", host=daemon.host).stdout
    cron = pyjail("schedule", "add", source, "--cron", "*/5 * * * *", "--max-age", "7d",
                  host=daemon.host)
    assert cron.returncode == 0, cron.stderr
    client = Client(daemon.host)
    try:
        scheds = client.api.request("GET", client.api.base_url + "/pyjail/v1/schedules").json()
    finally:
        client.close()
    added = next(s for s in scheds if s["Id"] == cron.stdout.strip())
    assert (added["Cron"], added["MaxAge"], added["Interval"]) == ("*/5 * * * *", 7 * 86400, 0)
    assert pyjail("schedule", "rm", added["Id"], host=daemon.host).returncode == 0
    bad = pyjail("schedule", "add", source, "--cron", "61 * * * *", host=daemon.host)
    assert bad.returncode == 1 and "cron" in bad.stderr


def test_prune_backups_keep_reports_exact_bytes(daemon, source):
    for _ in range(2):
        assert pyjail("backup", "-q", source, host=daemon.host).returncode == 0
    mine = sorted((e for e in catalogue(daemon) if e["Container"] == source),
                  key=lambda e: e["Created"])
    assert len(mine) >= 3
    doomed = mine[:-1]

    def on_disk(entry: dict) -> int:
        path = Path(entry["Path"])
        return path.stat().st_size + path.with_name(f".{path.name}.json").stat().st_size

    expected = sum(on_disk(e) for e in doomed)
    res = pyjail("prune", "backups", "--keep", "1", "--container", source, host=daemon.host)
    assert res.returncode == 0, res.stderr
    row = res.stdout.splitlines()[1].split()
    assert row[:3] == ["backups", str(len(doomed)), str(expected)], res.stdout
    left = [e for e in catalogue(daemon) if e["Container"] == source]
    assert [e["Id"] for e in left] == [mine[-1]["Id"]]
    assert not any(Path(e["Path"]).exists() for e in doomed)
    need = pyjail("prune", "backups", host=daemon.host)
    assert need.returncode == 2 and "--keep" in need.stderr


def test_the_magic_has_the_same_subcommands(daemon, source, workdir):
    shell = ipython_shell()
    shell.run_cell("%load_ext pyjail_jupyter")
    shell.run_cell(f"%config ContainerMagics.host = '{daemon.host}'")
    try:
        local = workdir / "magic.tar"
        result = shell.run_cell(f"%container backup -q --mode pause -o {local} {source}")
        assert result.error_in_exec is None, result.error_in_exec
        assert result.result.path == str(local) and local.is_file()
        verified = shell.run_cell(f"%container verify {local}")
        assert verified.error_in_exec is None and "intact" in verified.result
        listed = shell.run_cell("%container schedule ls")
        assert listed.error_in_exec is None
    finally:
        shell.run_cell("%config ContainerMagics.host = None")


def test_prune_endpoint_refuses_bad_numbers_with_a_json_message(daemon):
    for query in ("keep=x", "keep=-1", "max_age=soon", "max_age=-5"):
        conn = UnixHTTPConnection(daemon.host.removeprefix("unix://"))
        try:
            conn.request("POST", f"/pyjail/v1/backups/prune?{query}")
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
        finally:
            conn.close()
        assert status == 400, (query, status, body)
        assert json.loads(body)["message"], (query, body)
