"""``docker exec``: processes started inside a running container by the supervisor."""

from __future__ import annotations

import secrets
import socket
import threading

from .. import errors
from ..runtime import capabilities
from .manager import ContainerManager
from .spec import merged_env


class ExecManager:
    def __init__(self, containers: ContainerManager) -> None:
        self.containers = containers
        self.execs: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)

    def create(self, ref: str, body: dict) -> str:
        c = self.containers.get(ref)
        if not c.state["Running"]:
            raise errors.Conflict(f"Container {c.id} is not running")
        if c.state["Paused"]:
            raise errors.Conflict(f"Container {c.id} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise errors.InvalidArgument("No exec command specified")
        env = body.get("Env") or []
        if not isinstance(env, list):
            raise errors.InvalidArgument("invalid type for Env: expected a list of strings")
        exec_id = secrets.token_hex(32)
        record = {
            "ID": exec_id, "Running": False, "ExitCode": None,
            "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0],
                              "arguments": cmd[1:], "privileged": bool(body.get("Privileged")),
                              "user": body.get("User") or ""},
            "OpenStdin": bool(body.get("AttachStdin")), "OpenStderr": bool(body.get("AttachStderr")),
            "OpenStdout": bool(body.get("AttachStdout")), "CanRemove": False,
            "ContainerID": c.id, "DetachKeys": body.get("DetachKeys") or "", "Pid": 0,
            "_env": env, "_cwd": body.get("WorkingDir") or "", "_started": False,
        }
        with self.lock:
            self.execs[exec_id] = record
        self.containers.emit("container", "exec_create", c,
                             execID=exec_id, **{"exec": " ".join(cmd)})
        return exec_id

    def get(self, exec_id: str) -> dict:
        with self.lock:
            record = self.execs.get(exec_id)
        if record is None:
            raise errors.ExecNotFound(f"No such exec instance: {exec_id}")
        return record

    def inspect(self, exec_id: str) -> dict:
        record = self.get(exec_id)
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def start(self, exec_id: str, detach: bool = False,
              tty: bool | None = None) -> tuple[socket.socket, bool, bytes] | None:
        record = self.get(exec_id)
        with self.lock:
            if record["_started"]:
                raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
            record["_started"] = True
        c = self.containers.get(record["ContainerID"])
        if not c.state["Running"]:
            raise errors.Conflict(f"Container {c.id} is not running")
        pc = record["ProcessConfig"]
        use_tty = pc["tty"] if tty is None else tty
        image_env = (c.record.get("ImageConfig") or {}).get("Env") or []
        process = {
            "args": [pc["entrypoint"], *pc["arguments"]],
            "env": merged_env(merged_env(image_env, c.config.get("Env") or []), record["_env"]),
            "cwd": record["_cwd"] or c.config.get("WorkingDir")
            or (c.record.get("ImageConfig") or {}).get("WorkingDir") or "/",
            "terminal": use_tty,
        }
        if pc["privileged"]:
            process["capabilities"] = {k: capabilities.ALL_CAPS
                                       for k in ("bounding", "effective", "permitted")}
        fields = {"id": exec_id, "container": c.id, "process": process,
                  "stdin": record["OpenStdin"], "detach": detach}
        if pc["user"]:
            fields["user"] = pc["user"]
        sock, reply, early = self.containers.supervisor.open_stream("exec", **fields)
        with self.lock:
            # A quick exec may already have exited (on_exit ran first): keep its result.
            record["Running"] = record["ExitCode"] is None
            record["Pid"] = reply.get("pid", 0)
        self.containers.emit("container", "exec_start", c, execID=exec_id,
                             **{"exec": " ".join(process["args"])})
        if detach:
            sock.close()
            return None
        return sock, use_tty, early

    def on_exit(self, event: dict) -> None:
        with self.lock:
            record = self.execs.get(event["id"])
            if record is None:
                return
            record.update(Running=False, ExitCode=event["exit_code"])
            self.done.notify_all()
        try:
            c = self.containers.get(record["ContainerID"])
            self.containers.emit("container", "exec_die", c, execID=event["id"],
                                 exitCode=str(event["exit_code"]))
        except errors.NotFound:
            pass

    def wait(self, exec_id: str, timeout: float = 30.0) -> int | None:
        record = self.get(exec_id)
        with self.lock:
            self.done.wait_for(lambda: record["ExitCode"] is not None, timeout)
            return record["ExitCode"]

    def resize(self, exec_id: str, height: int, width: int) -> None:
        record = self.get(exec_id)
        if not record["Running"]:
            raise errors.Conflict(f"exec {exec_id} is not running")
        self.containers.supervisor.request("resize", id=exec_id, h=height, w=width)

    def forget_container(self, container_id: str) -> None:
        with self.lock:
            for key in [k for k, r in self.execs.items() if r["ContainerID"] == container_id]:
                del self.execs[key]
