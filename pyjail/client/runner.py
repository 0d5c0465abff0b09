"""``run`` and ``exec``: docker-run's flags → API bodies, and output streamed as it comes.

The foreground ``run`` does what the docker CLI does, in its order, so no output and no
exit code is lost: create → attach (hijacked stream) → wait (its headers arrive before
the container starts) → start → pump the stream → read the wait answer.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .grammar import GrammarError, split_pairs
from .live import demux_frames
from .ui import Frontend, OutputSink

if TYPE_CHECKING:
    from .connection import Client


@dataclass
class RunResult:
    """What ``run`` and ``exec`` return: exit code, output, and the container."""

    exit_code: int | None
    output: str = ""
    stdout: str = ""
    stderr: str = ""
    container_id: str = ""
    name: str = ""
    removed: bool = False
    _client: Client | None = field(default=None, repr=False, compare=False)

    @property
    def container(self) -> Any:
        """The docker-py ``Container`` (None once it was removed)."""
        if self.removed or self._client is None or not self.container_id:
            return None
        with self._client.translated():
            return self._client.docker.containers.get(self.container_id)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __repr__(self) -> str:
        out = self.output if len(self.output) <= 60 else self.output[:57] + "..."
        status = "running" if self.exit_code is None else f"exit_code={self.exit_code}"
        return (f"RunResult({status}, container={self.container_id[:12]!r}, "
                f"name={self.name!r}, output={out!r})")


# -- flags → API ---------------------------------------------------------------------------
def env_list(items: list[str]) -> list[str]:
    """``-e K=V`` as is; a bare ``-e K`` takes K's value here, as docker does."""
    out = []
    for item in items:
        if "=" in item:
            out.append(item)
        elif item in os.environ:
            out.append(f"{item}={os.environ[item]}")
    return out


def port_bindings(items: list[str]) -> tuple[list[Any], dict[str, Any]]:
    """``-p [ip:]host:container[/proto]`` → docker-py's ``ports`` and ``port_bindings``."""
    ports: list[Any] = []
    bindings: dict[str, Any] = {}
    for item in items:
        spec, _, proto = item.partition("/")
        proto = proto or "tcp"
        parts = spec.rsplit(":", 2)
        if not parts[-1].isdigit() or any(p and not p.replace(".", "").isalnum()
                                          for p in parts):
            raise GrammarError(f"invalid port mapping {item!r}: use [IP:]HOST:CONTAINER[/tcp]")
        key = f"{parts[-1]}/{proto}"
        ports.append((int(parts[-1]), proto))
        if len(parts) == 1:
            continue
        host_port = parts[-2]
        binding: Any = (parts[0], host_port) if len(parts) == 3 else host_port
        bindings.setdefault(key, []).append(binding)
    return ports, bindings


def restart(policy: str | None) -> dict[str, Any] | None:
    if not policy:
        return None
    name, _, count = policy.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def healthcheck(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.no_healthcheck:
        return {"test": ["NONE"]}
    given = {"interval": args.health_interval, "timeout": args.health_timeout,
             "retries": args.health_retries, "start_period": args.health_start_period}
    if not args.health_cmd and all(v is None for v in given.values()):
        return None
    check: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if args.health_cmd:
        check["test"] = ["CMD-SHELL", args.health_cmd]
    return check


def create_body(client: Client, args: argparse.Namespace, cmd: list[str] | None) -> dict:
    """The ``POST /containers/create`` body for docker run's flags."""
    api = client.api
    ports, bindings = port_bindings(args.publish)
    host = api.create_host_config(
        auto_remove=bool(args.rm), binds=list(args.volume) or None,
        port_bindings=bindings or None, mem_limit=args.memory,
        nano_cpus=int(args.cpus * 1e9) if args.cpus else None,
        restart_policy=restart(args.restart), init=True if args.init else None,
        cap_add=args.cap_add or None, cap_drop=args.cap_drop or None,
        privileged=bool(args.privileged), network_mode=args.network)
    entrypoint = [args.entrypoint] if args.entrypoint is not None else None
    return api.create_container_config(
        args.image, cmd or None, hostname=args.hostname, user=args.user,
        detach=bool(args.detach), tty=bool(args.tty), ports=ports or None,
        environment=env_list(args.env) or None, working_dir=args.workdir,
        labels=split_pairs(args.label, "--label") or None, entrypoint=entrypoint,
        healthcheck=healthcheck(args), host_config=host)


def create(client: Client, args: argparse.Namespace, cmd: list[str] | None,
           frontend: Frontend) -> str:
    """Create the container, pulling the image first where ``--pull`` says so."""
    api = client.api
    with client.translated():
        body = create_body(client, args, cmd)
    if args.pull == "always":
        pull_image(client, args.image, frontend)
    try:
        with client.translated():
            return api.create_container_from_config(body, name=args.name)["Id"]
    except errors.NotFound as exc:
        if args.pull == "never" or "image" not in str(exc).lower():
            raise
        try:
            pull_image(client, args.image, frontend)
        except errors.ClientError as pull_exc:
            raise errors.NotFound(f"{exc} (and pulling it failed: {pull_exc})") from None
    with client.translated():
        return api.create_container_from_config(body, name=args.name)["Id"]


def pull_image(client: Client, image: str, frontend: Frontend, quiet: bool = False,
               platform: str | None = None) -> str | None:
    from .progress import StreamTracker
    repo, tag = split_tag(image)
    tracker = StreamTracker(frontend.progress(f"pull {image}", quiet))
    with client.translated():
        stream = client.api.pull(repo, tag=tag, stream=True, decode=True, platform=platform)
        tracker.run(stream, "pulled")
    return image if not tag else f"{repo}:{tag}"


def split_tag(image: str) -> tuple[str, str | None]:
    """``reg:5000/a/b:tag`` → (``reg:5000/a/b``, ``tag``); digests stay in the repo."""
    if "@" in image:
        return image, None
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return repo, tag


def run(client: Client, args: argparse.Namespace, cmd: list[str] | None,
        frontend: Frontend) -> RunResult:
    api = client.api
    cid = create(client, args, cmd, frontend)
    name = args.name or ""
    if args.detach:
        with client.translated():
            api.start(cid)
        return RunResult(None, container_id=cid, name=name, _client=client)
    sink = OutputSink(frontend)
    with client.translated():
        attach = api._post(api._url("/containers/{0}/attach", cid),
                           headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                           params={"stdout": 1, "stderr": 1, "stream": 1}, stream=True)
        api._raise_for_status(attach)
        sock = api._get_raw_response_socket(attach)
        condition = "removed" if args.rm else "next-exit"
        waiting = api._post(api._url("/containers/{0}/wait", cid),
                            params={"condition": condition}, stream=True, timeout=None)
        api._raise_for_status(waiting)
        try:
            api.start(cid)
            for stream, data in demux_frames(_socket_chunks(sock), bool(args.tty)):
                sink.feed(stream, data)
        except KeyboardInterrupt:
            api.kill(cid)
            raise
        finally:
            sink.finish()
            attach.close()
        answer = waiting.json()
    error = (answer.get("Error") or {}).get("Message") if answer.get("Error") else None
    if error:
        raise errors.ClientError(f"waiting for {cid[:12]} failed: {error}")
    return RunResult(answer.get("StatusCode", -1), sink.text(), sink.text("stdout"),
                     sink.text("stderr"), container_id=cid, name=name, removed=bool(args.rm),
                     _client=client)


def _socket_chunks(sock: Any) -> Any:
    """Read a hijacked socket (plain or TLS) until EOF."""
    recv = getattr(sock, "recv", None) or sock.read
    while True:
        try:
            data = recv(65536)
        except OSError:
            return
        if not data:
            return
        yield data


def run_script(client: Client, args: argparse.Namespace, script: str,
               frontend: Frontend) -> RunResult:
    """``%%container``: the cell's text as a script for ``args.shell`` in a new container."""
    args.cmd = [*shlex.split(args.shell), "-c", script]
    if not args.detach:
        args.rm = True
    return run(client, args, args.cmd, frontend)


def exec_(client: Client, args: argparse.Namespace, frontend: Frontend) -> RunResult:
    if not args.cmd:
        raise GrammarError("exec: a command is required")
    api = client.api
    with client.translated():
        created = api.exec_create(args.container, args.cmd, tty=bool(args.tty),
                                  privileged=bool(args.privileged), user=args.user or "",
                                  environment=env_list(args.env) or None,
                                  workdir=args.workdir)
        exec_id = created["Id"]
        if args.detach:
            api.exec_start(exec_id, detach=True)
            return RunResult(None, container_id=args.container, name=args.container,
                             _client=client)
        sink = OutputSink(frontend)
        try:
            for out, err in api.exec_start(exec_id, stream=True, demux=True, tty=bool(args.tty)):
                if out:
                    sink.feed("stdout", out)
                if err:
                    sink.feed("stderr", err)
        finally:
            sink.finish()
        code = api.exec_inspect(exec_id).get("ExitCode")
    return RunResult(code, sink.text(), sink.text("stdout"), sink.text("stderr"),
                     container_id=args.container, name=args.container, _client=client)
