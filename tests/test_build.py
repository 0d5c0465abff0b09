"""``docker build`` against pyjaild: the legacy builder's protocol, instructions and cache.

Real daemon, real docker CLI 28 (``DOCKER_BUILDKIT=0``) and docker-py; every RUN step runs
in a real container.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from daemon_fixtures import DOCKER, Daemon, docker_cli, running_daemon

NONE = ["--network", "none"]

pytestmark = pytest.mark.skipif(not os.path.exists(DOCKER), reason="docker CLI not installed")

MULTISTAGE = """\
# syntax is ignored: a comment line
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
RUN mkdir -p /out && echo "$GREETING from builder" > /out/greeting
SHELL ["/bin/sh", "-ec"]
RUN echo "shell form uses SHELL: $0" > /out/shell

FROM busybox
ARG VERSION
ENV APP_HOME=/srv/app VERSION=${VERSION}
WORKDIR $APP_HOME
COPY --from=builder /out/ ./
COPY --chown=1000:1000 app.txt dir/ ./files/
COPY *.glob /globbed/
ADD data.tar.gz /unpacked/
ADD plain.txt /plain/
COPY . /ctx/
RUN ["/bin/sh", "-c", "echo exec-form > /srv/app/exec"]
LABEL com.example.vendor=pyjail \\
      version=$VERSION
EXPOSE 8080/tcp 53/udp
VOLUME /data
USER 1000:1000
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD true
STOPSIGNAL SIGUSR1
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting; id -u; pwd; echo v=$VERSION"]
"""

FIVE = """\
FROM busybox
RUN echo a > /a
COPY file.txt /file.txt
ENV FOO=bar
WORKDIR /app
CMD ["sleep", "1"]
"""


@pytest.fixture(scope="module")
def daemon():
    yield from running_daemon()


@pytest.fixture(scope="module")
def docker(daemon: Daemon):
    return docker_cli(daemon, DOCKER_BUILDKIT="0")


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _multistage_context(root: Path) -> Path:
    ctx = root / "ctx-multi"
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(MULTISTAGE)
    (ctx / "app.txt").write_text("app\n")
    (ctx / "dir" / "sub" / "x").write_text("x\n")
    os.symlink("/etc/shadow", ctx / "dir" / "inner-link")
    (ctx / "one.glob").write_text("1\n")
    (ctx / "two.glob").write_text("2\n")
    (ctx / "plain.txt").write_text("not an archive\n")
    (ctx / "data.tar.gz").write_bytes(_tar({"inside/a.txt": b"from the archive\n"}))
    (ctx / "skip.ignored").write_text("no\n")
    (ctx / ".dockerignore").write_text("*.ignored\n")
    return ctx


def _events(daemon: Daemon, since: float, until: float, kind: str) -> list[dict]:
    resp = daemon.request("GET", f"/events?since={since:.6f}&until={until:.6f}"
                          f"&filters={quote(json.dumps({'type': [kind]}))}")
    return [json.loads(line) for line in resp.body.splitlines() if line.strip()]


def test_multistage_build_with_every_instruction(docker, daemon: Daemon, tmp_path: Path) -> None:
    ctx = _multistage_context(tmp_path)
    out = docker("build", "--build-arg", "VERSION=1.2", "--label", "built.by=test",
                 "-t", "multi:1", "-t", "multi:latest", str(ctx)).stdout
    assert "Step 1/25 : FROM ${BASE} AS builder" in out
    assert " ---> Running in " in out
    assert "Successfully tagged multi:1" in out and "Successfully tagged multi:latest" in out
    info = json.loads(docker("image", "inspect", "multi:1").stdout)[0]
    cfg = info["Config"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["Cmd"] == ["cat greeting; id -u; pwd; echo v=$VERSION"]
    assert cfg["User"] == "1000:1000"
    assert cfg["WorkingDir"] == "/srv/app"
    assert "APP_HOME=/srv/app" in cfg["Env"] and "VERSION=1.2" in cfg["Env"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                  "Timeout": 2_000_000_000, "StartPeriod": 1_000_000_000,
                                  "Retries": 4}
    assert cfg["Labels"] == {"com.example.vendor": "pyjail", "version": "1.2",
                             "built.by": "test"}
    assert set(cfg["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert set(cfg["Volumes"]) == {"/data"}
    assert cfg["StopSignal"] == "SIGUSR1"
    assert cfg["OnBuild"] == ["RUN echo child"]
    assert docker("image", "inspect", "multi:latest", "-f", "{{.Id}}").stdout.strip() == info["Id"]

    run = docker("run", "--rm", *NONE, "multi:1").stdout
    assert run.splitlines() == ["hello from builder", "1000", "/srv/app", "v=1.2"]
    script = ("cat /srv/app/shell /srv/app/exec /srv/app/files/app.txt /srv/app/files/sub/x "
              "/globbed/one.glob /globbed/two.glob /unpacked/inside/a.txt /plain/plain.txt; "
              "stat -c '%u:%g %n' /srv/app/files/app.txt; readlink /srv/app/files/inner-link; "
              "ls /ctx; ls -d /srv/app/files/sub")
    out = docker("run", "--rm", *NONE, "--entrypoint", "sh", "multi:1", "-c", script).stdout
    lines = out.splitlines()
    assert lines[:8] == ["shell form uses SHELL: /bin/sh", "exec-form", "app", "x", "1", "2",
                         "from the archive", "not an archive"]
    assert lines[8] == "1000:1000 /srv/app/files/app.txt"
    assert lines[9] == "/etc/shadow"   # a symlink is copied as a symlink, never followed
    assert "skip.ignored" not in out and "Dockerfile" in out and "data.tar.gz" in out
    history = json.loads(daemon.request("GET", "/images/multi:1/history").body)
    assert history[0]["Id"] == info["Id"]
    assert any("#(nop) ENV" in h["CreatedBy"] for h in history)
    # intermediate images are hidden from the listing, shown with -a
    listed = docker("images", "-q").stdout.split()
    assert len(docker("images", "-aq").stdout.split()) > len(listed)


def test_docker_py_build_returns_image_and_log(daemon: Daemon, tmp_path: Path) -> None:
    docker_py = pytest.importorskip("docker")
    ctx = tmp_path / "ctx-py"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo built-by-docker-py\n"
                                    "LABEL py=yes\n")
    client = docker_py.DockerClient(base_url=daemon.host, version="1.44")
    try:
        image, logs = client.images.build(path=str(ctx), tag="pybuild:1", rm=True)
        text = "".join(chunk.get("stream", "") for chunk in logs)
        assert "built-by-docker-py" in text
        assert "Successfully built" in text
        assert "pybuild:1" in image.tags
        assert image.labels == {"py": "yes"}
    finally:
        client.close()


def test_cached_rebuild_runs_nothing_and_one_changed_file(docker, daemon: Daemon,
                                                         tmp_path: Path) -> None:
    ctx = tmp_path / "ctx-five"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(FIVE)
    (ctx / "file.txt").write_text("one\n")
    first = docker("build", "-t", "five:1", str(ctx)).stdout
    assert first.count("Using cache") == 0
    image_id = docker("image", "inspect", "-f", "{{.Id}}", "five:1").stdout.strip()

    since = time.time()
    again = docker("build", "-t", "five:1", str(ctx)).stdout
    until = time.time() + 0.05
    assert again.count(" ---> Using cache") == 5
    assert "Running in" not in again
    assert docker("image", "inspect", "-f", "{{.Id}}", "five:1").stdout.strip() == image_id
    assert _events(daemon, since, until, "container") == []
    tagged = _events(daemon, since, until, "image")
    assert [(e["Action"], e["id"], e["Actor"]["Attributes"]["name"]) for e in tagged] == [
        ("tag", image_id, "five:1")], tagged

    (ctx / "file.txt").write_text("two\n")
    changed = docker("build", "-t", "five:1", str(ctx)).stdout
    steps = changed.split("Step ")[1:]
    assert "Using cache" in steps[1]                     # RUN: before the change
    assert all("Using cache" not in s for s in steps[2:])  # COPY and everything after
    assert "Running in" not in changed
    assert docker("run", "--rm", *NONE, "five:1", "cat", "/file.txt").stdout == "two\n"


def test_failing_run_names_line_and_leaves_no_container(docker, daemon: Daemon,
                                                       tmp_path: Path) -> None:
    ctx = tmp_path / "ctx-fail"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nRUN exit 3\nCMD true\n")
    before = docker("ps", "-aq").stdout.split()
    proc = docker("build", str(ctx), check=False)
    assert proc.returncode != 0
    assert ("Dockerfile:3: RUN exit 3: The command '/bin/sh -c exit 3' returned a non-zero "
            "code: 3") in proc.stdout + proc.stderr
    assert docker("ps", "-aq").stdout.split() == before


def test_raw_api_gzip_containerfile_target_buildargs_and_ignore(daemon: Daemon) -> None:
    dockerfile = (b"FROM busybox AS first\nARG WHO\nRUN echo \"hi $WHO\" > /who\n"
                  b"COPY . /ctx/\n"
                  b"FROM first AS second\nRUN exit 1\n")
    ctx = _tar({"Containerfile": dockerfile, "keep/a": b"a", "keep/secret.key": b"k",
                "keep/public.key": b"p", ".dockerignore": b"**/*.key\n!keep/public.key\n"})
    params = (f"dockerfile=Containerfile&t=raw:1&target=first"
              f"&buildargs={quote(json.dumps({'WHO': 'there'}))}"
              f"&labels={quote(json.dumps({'l': 'v'}))}")
    resp = daemon.request("POST", f"/build?{params}", raw=gzip.compress(ctx),
                          headers={"Content-Type": "application/x-tar"})
    assert resp.status == 200
    messages = [json.loads(line) for line in resp.body.splitlines() if line.strip()]
    assert not any("error" in m for m in messages), messages
    aux = [m["aux"]["ID"] for m in messages if "aux" in m]
    assert len(aux) == 1
    inspect = json.loads(daemon.request("GET", "/images/raw:1/json").body)
    assert inspect["Id"] == aux[0]
    assert inspect["Config"]["Labels"] == {"l": "v"}
    cid = daemon.create(["sh", "-c", "cat /who; ls /ctx/keep"], Image="raw:1")
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    daemon.request("POST", f"/containers/{cid}/wait")
    logs = daemon.request("GET", f"/containers/{cid}/logs?stdout=1").body
    assert b"hi there" in logs and b"public.key" in logs and b"secret.key" not in logs
    daemon.request("DELETE", f"/containers/{cid}?force=1")

    # a symlink cannot lead COPY out of the context
    escape = _tar({"Dockerfile": b"FROM busybox\nCOPY esc/passwd /stolen\n"})
    buf = io.BytesIO(gzip.decompress(escape))
    with tarfile.open(fileobj=buf, mode="a") as tf:
        info = tarfile.TarInfo("esc")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../../../etc"
        tf.addfile(info)
    resp = daemon.request("POST", "/build?q=1", raw=buf.getvalue(),
                          headers={"Content-Type": "application/x-tar"})
    text = resp.body.decode()
    assert "file not found" in text and "/stolen" not in text.split("message")[0]


def test_quiet_and_nocache(docker, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx-q"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN date +%N > /stamp\n")
    first = docker("build", "-q", str(ctx)).stdout.strip()
    assert first.startswith("sha256:")
    assert docker("build", "-q", str(ctx)).stdout.strip() == first
    assert docker("build", "-q", "--no-cache", str(ctx)).stdout.strip() != first


def test_parser_continuations_flags_and_dockerignore_rules() -> None:
    from pyjail.images.builder.context import ignored, parse_dockerignore
    from pyjail.images.builder.parser import parse, stages
    text = ("# escape=\\\nARG V=1\nFROM busybox AS b\nRUN echo a \\\n  # inner comment\n  b\n\n"
            "COPY --from=b --chown=1:1 a b\nHEALTHCHECK --interval=1s CMD true\n"
            "FROM b\nCMD [\"sh\"]\n")
    ins = parse(text)
    assert [(i.cmd, i.line) for i in ins] == [("ARG", 2), ("FROM", 3), ("RUN", 4), ("COPY", 8),
                                              ("HEALTHCHECK", 9), ("FROM", 10), ("CMD", 11)]
    assert ins[3].flags == {"from": "b", "chown": "1:1"} and ins[3].rest == "a b"
    assert ins[4].rest == "--interval=1s CMD true"
    assert ins[6].json_args() == ["sh"]
    meta, st = stages(ins)
    assert [m.cmd for m in meta] == ["ARG"] and [(s.base, s.name) for s in st] == [
        ("busybox", "b"), ("b", "")]
    rules = parse_dockerignore("**/*.key\n!keep/public.key\nnode_modules\ndir/*\n!dir/keep\n")
    assert ignored("a.key", rules) and ignored("keep/secret.key", rules)
    assert not ignored("keep/public.key", rules)
    assert ignored("node_modules/a/b", rules) and ignored("dir/a", rules)
    assert not ignored("dir/keep", rules) and not ignored("other", rules)


def test_merged_tree_applies_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    from pyjail.images.export import merged
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "keep", lower / "gone", lower / "opq", upper / "opq"):
        d.mkdir(parents=True)
    (lower / "keep" / "f").write_text("lower")
    (lower / "gone" / "f").write_text("x")
    (lower / "opq" / "old").write_text("x")
    (lower / "file").write_text("x")
    (upper / "opq" / "new").write_text("y")
    os.setxattr(upper / "opq", "trusted.overlay.opaque", b"y")
    os.mknod(upper / "gone", 0o600 | 0o020000, 0)   # overlay whiteout: char 0/0
    (upper / "file").mkdir()                           # a dir replaces a file
    tree = merged([upper, lower])
    assert set(tree) == {"", "keep", "keep/f", "opq", "opq/new", "file"}
    assert tree["opq"] == str(upper / "opq") and tree["keep/f"] == str(lower / "keep" / "f")


def test_dockerfile_on_stdin_without_context(docker, tmp_path: Path) -> None:
    proc = subprocess.run([DOCKER, "build", "-q", "-t", "stdin:1", "-"],
                          input="FROM busybox\nRUN echo from-stdin > /s\nCMD [\"cat\", \"/s\"]\n",
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DOCKER_HOST": docker.host, "DOCKER_BUILDKIT": "0"})
    assert proc.returncode == 0, proc.stderr
    assert docker("run", "--rm", *NONE, "stdin:1").stdout == "from-stdin\n"


def test_onbuild_triggers_run_in_the_child_build(docker, tmp_path: Path) -> None:
    base = tmp_path / "ctx-onbuild-base"
    base.mkdir()
    (base / "Dockerfile").write_text(
        "FROM busybox\nONBUILD COPY greeting.txt /greeting.txt\n"
        "ONBUILD RUN cat /greeting.txt > /triggered\nCMD [\"true\"]\n")
    docker("build", "-t", "onbuild-base:1", str(base))
    triggers = json.loads(docker("image", "inspect", "-f", "{{json .Config.OnBuild}}",
                                 "onbuild-base:1").stdout)
    assert triggers == ["COPY greeting.txt /greeting.txt", "RUN cat /greeting.txt > /triggered"]

    child = tmp_path / "ctx-onbuild-child"
    child.mkdir()
    (child / "greeting.txt").write_text("from the child's context\n")
    (child / "Dockerfile").write_text("FROM onbuild-base:1\nRUN cp /triggered /copied\n")
    out = docker("build", "-t", "onbuild-child:1", str(child)).stdout
    assert "# Executing 2 build triggers" in out
    assert out.index("# Executing 2 build triggers") < out.index("Step 2/2")
    assert docker("run", "--rm", *NONE, "onbuild-child:1", "cat", "/copied").stdout == \
        "from the child's context\n"
    # triggers are not inherited: the child's config has none, a grandchild runs nothing
    assert docker("image", "inspect", "-f", "{{json .Config.OnBuild}}",
                  "onbuild-child:1").stdout.strip() in ("null", "[]")
    (child / "Dockerfile").write_text("FROM onbuild-child:1\nCMD [\"true\"]\n")
    assert "build trigger" not in docker("build", str(child)).stdout
    # a cached rebuild of the child uses the cache for the triggers too
    (child / "Dockerfile").write_text("FROM onbuild-base:1\nRUN cp /triggered /copied\n")
    again = docker("build", "-t", "onbuild-child:1", str(child)).stdout
    assert again.count(" ---> Using cache") == 3 and "Running in" not in again

    for bad, message in (("ONBUILD ONBUILD RUN true", "Chaining ONBUILD via `ONBUILD ONBUILD`"
                                                      " isn't allowed"),
                         ("ONBUILD FROM busybox", "FROM isn't allowed as an ONBUILD trigger")):
        (child / "Dockerfile").write_text(f"FROM busybox\n{bad}\n")
        proc = docker("build", str(child), check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    docker("rmi", "onbuild-child:1", "onbuild-base:1")


def test_history_ids_and_parent_follow_local_build_steps(docker, daemon: Daemon,
                                                         tmp_path: Path) -> None:
    ctx = tmp_path / "ctx-history"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo a > /a\nENV STEP=2\n"
                                    "LABEL step=3\n")
    docker("build", "-t", "hist:1", str(ctx))

    def inspect(ref: str, fmt: str) -> str:
        return docker("image", "inspect", "-f", fmt, ref).stdout.strip()

    top = inspect("hist:1", "{{.Id}}")
    env_step = inspect("hist:1", "{{.Parent}}")
    run_step = inspect(env_step, "{{.Parent}}")
    base = inspect("busybox", "{{.Id}}")
    assert env_step.startswith("sha256:") and run_step.startswith("sha256:")
    assert inspect(run_step, "{{.Parent}}") == base
    assert inspect("busybox", "{{.Parent}}") == ""   # not built here: no parent

    rows = docker("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}",
                  "hist:1").stdout.splitlines()
    base_rows = docker("history", "-q", "--no-trunc", "busybox").stdout.split()
    ids = [r.split("|")[0] for r in rows]
    assert ids[:4] == [top, env_step, run_step, base]
    assert ids[4:] == base_rows[1:]                  # the base's own steps: as its history
    assert all(i == "<missing>" for i in base_rows[1:])
    assert "LABEL step=3" in rows[0] and "RUN" not in rows[1] and "echo a > /a" in rows[2]
    api = json.loads(daemon.request("GET", "/images/hist:1/history").body)
    assert [r["Id"] for r in api[:4]] == ids[:4]
    assert api[0]["Tags"] == ["hist:1"] and api[3]["Tags"] == ["busybox:latest"]
    assert api[1]["Tags"] is None

    # docker commit: the container's image is the parent
    cid = docker("create", *NONE, "hist:1", "true").stdout.strip()
    committed = docker("commit", cid, "hist:committed").stdout.strip()
    assert inspect(committed, "{{.Parent}}") == top
    docker("rm", cid)

    # loaded elsewhere (after save / rmi / load): no parent, older steps <missing>
    archive = tmp_path / "hist.tar"
    docker("save", "-o", str(archive), "hist:1")
    docker("rmi", "hist:committed", "hist:1")
    docker("load", "-i", str(archive))
    assert inspect("hist:1", "{{.Parent}}") == ""
    ids = docker("history", "-q", "--no-trunc", "hist:1").stdout.split()
    assert ids[0] == top and set(ids[1:]) == {"<missing>"}
    docker("rmi", "hist:1")
