"""``/system/df`` and every prune report exact bytes: checked against ``du`` of the real
directories (``du -sb`` counts directories too, Docker's sizes do not: they are taken
out), and against what actually vanished from disk. The real docker CLI reads them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from daemon_fixtures import Daemon, docker_cli, running_daemon
from test_cli import pyjail


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


@pytest.fixture(scope="module")
def docker(daemon: Daemon):
    return docker_cli(daemon)


def du(path: str | Path) -> int:
    """``du -sb`` minus the directories' own sizes: Docker's rule, measured by du."""
    total = int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                               check=True).stdout.split()[0])
    dirs = subprocess.run(["find", str(path), "-type", "d", "-printf", "%s\\n"],
                          capture_output=True, text=True, check=True).stdout.split()
    return total - sum(int(x) for x in dirs)


def build(daemon: Daemon, dockerfile: str, tag: str | None = None) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tf.addfile(info, io.BytesIO(dockerfile.encode()))
    path = "/build?rm=1" + (f"&t={tag}" if tag else "")
    resp = daemon.request("POST", path, raw=buf.getvalue(),
                          headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert resp.status == 200, resp.body
    lines = [json.loads(x) for x in resp.body.splitlines() if x.strip()]
    assert not any("error" in x for x in lines), lines
    return next(x["aux"]["ID"] for x in lines if "aux" in x)


def layer_dirs(daemon: Daemon, image: str) -> list[str]:
    data = daemon.request("GET", f"/images/{image}/json").json()["GraphDriver"]["Data"]
    return [data["UpperDir"], *filter(None, data.get("LowerDir", "").split(":"))]


def run_to_end(daemon: Daemon, cmd: list[str], **config) -> str:
    cid = daemon.create(cmd, **config)
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    assert daemon.request("POST", f"/containers/{cid}/wait", timeout=60).json()[
        "StatusCode"] == 0
    return cid


WRITE = ("head -c 40000 /dev/urandom > /w/a; ln /w/a /w/hard; ln -s /w/a /w/sym; "
         "mkdir -p /w/d/e; echo x > /w/d/e/f")


def test_system_df_matches_du(daemon, docker):
    build(daemon, "FROM busybox\nRUN head -c 30000 /dev/urandom > /blob\n", "df:1")
    assert daemon.request("POST", "/volumes/create", {"Name": "df-vol"}).status == 201
    cid = run_to_end(daemon, ["sh", "-c", WRITE.replace("/w/", "/v/") + "; " +
                              WRITE.replace("/w/", "/")],
                     HostConfig={"NetworkMode": "none", "Binds": ["df-vol:/v"]})
    df = daemon.request("GET", "/system/df").json()
    vol = next(v for v in df["Volumes"] if v["Name"] == "df-vol")
    assert vol["UsageData"]["Size"] == du(vol["Mountpoint"]) > 40000
    assert vol["UsageData"]["RefCount"] == 1
    upper = daemon.request("GET", f"/containers/{cid}/json").json()["GraphDriver"]["Data"][
        "UpperDir"]
    entry = next(c for c in df["Containers"] if c["Id"] == cid)
    assert entry["SizeRw"] == du(upper) > 40000
    seen = set()
    listed = {im["Id"]: im["Size"] for im in daemon.request("GET", "/images/json").json()}
    for image in df["Images"]:
        dirs = layer_dirs(daemon, image["Id"])
        assert image["Size"] == sum(du(d) for d in dirs), image["RepoTags"]
        assert listed[image["Id"]] == image["Size"], image["RepoTags"]   # `docker images` too
        seen.update(dirs)
    assert df["LayersSize"] == sum(du(d) for d in seen)
    out = docker("system", "df").stdout
    assert "Images" in out and "Local Volumes" in out and "Build Cache" in out
    daemon.request("DELETE", f"/containers/{cid}")
    daemon.request("DELETE", "/volumes/df-vol")


def test_container_volume_image_prune_report_what_left_the_disk(daemon):
    cid = run_to_end(daemon, ["sh", "-c", "mkdir /w; " + WRITE],
                     HostConfig={"NetworkMode": "none"})
    upper = daemon.request("GET", f"/containers/{cid}/json").json()["GraphDriver"]["Data"][
        "UpperDir"]
    expected = du(upper)
    answer = daemon.request("POST", "/containers/prune").json()
    assert cid in answer["ContainersDeleted"] and not os.path.exists(upper)
    assert answer["SpaceReclaimed"] == expected > 40000

    assert daemon.request("POST", "/volumes/create", {"Name": "pr-vol"}).status == 201
    cid = run_to_end(daemon, ["sh", "-c", WRITE.replace("/w/", "/v/")],
                     HostConfig={"NetworkMode": "none", "Binds": ["pr-vol:/v"]})
    assert daemon.request("DELETE", f"/containers/{cid}").status == 204
    mount = daemon.request("GET", "/volumes/pr-vol").json()["Mountpoint"]
    expected = du(mount)
    answer = daemon.request("POST", '/volumes/prune?filters={"all":["true"]}').json()
    assert answer["VolumesDeleted"] == ["pr-vol"]
    assert answer["SpaceReclaimed"] == expected > 40000

    old = build(daemon, "FROM busybox\nRUN head -c 50000 /dev/urandom > /old\n", "pr:1")
    dirs = layer_dirs(daemon, old)
    sizes = {d: du(d) for d in dirs}
    build(daemon, "FROM busybox\nRUN head -c 20000 /dev/urandom > /new\n", "pr:1")
    answer = daemon.request("POST", "/images/prune").json()
    assert any(r.get("Deleted") == old for r in answer["ImagesDeleted"])
    gone = [d for d in dirs if not os.path.exists(d)]
    assert gone and answer["SpaceReclaimed"] == sum(sizes[d] for d in gone) >= 50000


def test_builder_prune_removes_cache_only_steps(daemon, docker):
    first = build(daemon, "FROM busybox\nRUN head -c 60000 /dev/urandom > /one\n"
                          "RUN echo two > /two\n", "bc:1")
    dirs = layer_dirs(daemon, first)
    sizes = {d: du(d) for d in dirs}
    build(daemon, "FROM busybox\nRUN echo other > /one\nRUN echo two > /two\n", "bc:1")
    records = daemon.request("GET", "/system/df").json()["BuildCache"]
    assert records and all({"ID", "Size", "InUse", "Shared"} <= set(r) for r in records)
    answer = daemon.request("POST", "/build/prune").json()
    gone = [d for d in dirs if not os.path.exists(d)]
    assert len(gone) == 2 and answer["CachesDeleted"]
    assert answer["SpaceReclaimed"] == sum(sizes[d] for d in gone) >= 60000
    assert daemon.request("GET", f"/images/{first}/json").status == 404
    assert daemon.request("GET", "/images/bc:1/json").status == 200   # named: kept
    again = daemon.request("POST", "/build/prune").json()
    assert again == {"CachesDeleted": [], "SpaceReclaimed": 0}
    build(daemon, "FROM busybox\nRUN echo third > /one\n", "bc:1")
    cli = pyjail("prune", "build-cache", host=daemon.host)
    assert cli.returncode == 0, cli.stderr
    row = cli.stdout.splitlines()[1].split()
    assert row[0] == "build-cache" and int(row[1]) >= 1 and int(row[2]) > 0, cli.stdout
    assert "Build Cache" in pyjail("df", host=daemon.host).stdout
    out = docker("builder", "prune", "-f").stdout
    assert "Total reclaimed space" in out or "Total:" in out
    assert docker("system", "prune", "-f").returncode == 0
    assert daemon.request("GET", "/images/bc:1/json").status == 200


def test_builder_prune_filters_and_keep_storage(daemon, docker):
    """until (a duration ago, or a time), id, keep-storage: each prunes what it says only;
    an unknown filter is a 400 with a JSON message."""
    from urllib.parse import quote

    def cache_only_step(text: str) -> tuple[str, dict]:
        """A build whose RUN step is kept by the cache alone (its tag moves on)."""
        step = build(daemon, f"FROM busybox\nRUN head -c 40000 /dev/urandom > /{text}\n",
                     "bf:1")
        build(daemon, f"FROM busybox\nRUN echo {text} > /other\n", "bf:1")
        record = next(r for r in daemon.request("GET", "/system/df").json()["BuildCache"]
                      if step[7:19] in r["Description"])
        return step, record

    def prune(query: str) -> dict:
        resp = daemon.request("POST", "/build/prune?" + query)
        assert resp.status == 200, resp.body
        return resp.json()

    def exists(image: str) -> bool:
        return daemon.request("GET", f"/images/{image}/json").status == 200

    prune("")   # start from a cache holding only what this test builds
    first, first_rec = cache_only_step("first")
    second, second_rec = cache_only_step("second")
    assert exists(first) and exists(second)
    # nothing was made more than an hour ago: "until=1h" (a Go duration) prunes nothing
    assert prune("filters=" + quote('{"until":["1h"]}'))["SpaceReclaimed"] == 0
    assert docker("builder", "prune", "-f", "--filter", "until=1h").returncode == 0
    assert exists(first) and exists(second)
    # id: only that record
    answer = prune("filters=" + quote(json.dumps({"id": [second_rec["ID"][:12]]})))
    assert not exists(second) and exists(first)
    assert answer["SpaceReclaimed"] >= 40000
    # keep-storage: oldest first, and only until the cache fits
    third, _ = cache_only_step("third")
    cached = sum(r["Size"] for r in daemon.request("GET", "/system/df").json()["BuildCache"])
    answer = prune(f"keep-storage={cached - 1}")
    assert not exists(first) and exists(third), answer
    # until a time in the future: everything left that only the cache keeps
    assert prune("filters=" + quote(json.dumps({"until": [str(2**33)]})))["SpaceReclaimed"] \
        >= 40000
    assert not exists(third)
    bad = daemon.request("POST", "/build/prune?filters=" + quote('{"colour":["red"]}'))
    assert bad.status == 400 and "invalid filter 'colour'" in bad.json()["message"]
