"""Container lifecycle: create, start, stop, kill, restart, pause, wait, remove, rename, exec.

Processes live in the supervisor; this class keeps records, turns requests into
supervisor calls, and reacts to exit events (restart policies, auto-remove, waiters).
Thread-safe: the daemon calls it from a thread pool.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal as signals
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import errors
from ..runtime.cgroups import manager_for
from ..supervisor.client import SupervisorClient
from ..supervisor.logfile import rfc3339_nano
from ..volumes import VolumeStore
from . import create as create_mod
from .logs import LogEntry, read_logs
from .model import ZERO_TIME, Container
from .spec import build_spec

RESTART_MAX_DELAY = 60.0
SIGNALS = {name[3:]: int(getattr(signals, name)) for name in dir(signals)
           if name.startswith("SIG") and not name.startswith("SIG_")}


def parse_signal(value: str | int | None, default: int = signals.SIGKILL) -> int:
    if value in (None, ""):
        return default
    if isinstance(value, int) or str(value).isdigit():
        number = int(value)
        if not 0 < number < 65:
            raise errors.InvalidArgument(f"Invalid signal: {value}")
        return number
    name = str(value).upper()
    name = name[3:] if name.startswith("SIG") else name
    if name not in SIGNALS:
        raise errors.InvalidArgument(f"Invalid signal: {value}")
    return SIGNALS[name]


class ContainerManager:
    def __init__(self, root: Path, images, volumes: VolumeStore, supervisor: SupervisorClient,
                 emit: Callable[..., None], default_runtime: str = "builtin") -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.images = images
        self.volumes = volumes
        self.supervisor = supervisor
        self.emit = emit
        self.default_runtime = default_runtime
        self.containers: dict[str, Container] = {}
        self.names: dict[str, str] = {}
        self.lock = threading.RLock()
        self.exec_manager = None  # set by the engine
        self.on_exit_hooks: list[Callable[[Container, dict], None]] = []
        self.on_start_hooks: list[Callable[[Container], None]] = []
        self.networks = None  # pyjail.network.NetworkManager, set by the engine

    # -- lookup -----------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        with self.lock:
            if ref in self.containers:
                return self.containers[ref]
            cid = self.names.get("/" + ref.lstrip("/"))
            if cid:
                return self.containers[cid]
            if ref:
                matches = [c for cid, c in self.containers.items() if cid.startswith(ref)]
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise errors.ContainerNotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        with self.lock:
            return sorted(self.containers.values(), key=lambda c: c.record["Created"],
                          reverse=True)

    # -- load / reconcile -------------------------------------------------------------------
    def load(self) -> None:
        """Read every record and settle its state from what the supervisor knows."""
        try:
            live = self.supervisor.request("list")["containers"]
        except errors.SupervisorUnavailable:
            live = {}
        for entry in self.root.iterdir():
            if not (entry / "config.json").exists():
                continue
            try:
                container = Container.load(entry)
            except (ValueError, OSError):
                continue
            self.containers[container.id] = container
            self.names[container.name] = container.id
            self._reconcile(container, live.get(container.id))

    def _reconcile(self, c: Container, live: dict | None) -> None:
        run = c.read_supervisor_file("run.json")
        ended = c.read_supervisor_file("exit.json")
        if live is not None:
            c.state.update(Running=True, Status="running", Pid=live["pid"],
                           start_id=live["start_id"], Restarting=False)
            if run and run.get("start_id") == live["start_id"]:
                c.state["StartedAt"] = run["started_at"]
            c.state["Paused"] = self._is_frozen(c)
            if c.state["Paused"]:
                c.state["Status"] = "paused"
            c.save_state()
            return
        if c.state["Running"] or c.state["Restarting"] or (
                run and run.get("start_id") and run.get("start_id") != c.state.get("exit_start_id")):
            if ended and run and ended.get("start_id") == run.get("start_id"):
                self._apply_exit(c, ended)
            elif run or c.state["Running"]:
                c.state.update(Running=False, Paused=False, Restarting=False, Status="exited",
                               Pid=0, ExitCode=255, FinishedAt=rfc3339_nano(),
                               Error="the supervisor lost this container")
            c.save_state()

    def _is_frozen(self, c: Container) -> bool:
        try:
            return manager_for(f"/pyjail/{c.id}").is_frozen()
        except OSError:
            return False

    # -- create -----------------------------------------------------------------------------
    def create(self, body: dict, name: str | None = None) -> Container:
        config, host = create_mod.normalize(body)
        image = self.images.resolve(config["Image"])
        if name:
            name = create_mod.validate_name(name)
        runtime = host.get("Runtime") or self.default_runtime
        if runtime not in ("builtin", "runc", "crun", "pyjail"):
            raise errors.InvalidArgument(f"unknown or invalid runtime name: {runtime}")
        with self.lock:
            cid = secrets.token_hex(32)
            if name is None:
                name = "/" + _random_name(set(self.names))
            if name in self.names:
                other = self.names[name]
                raise errors.Conflict(
                    f'Conflict. The container name "{name}" is already in use by container '
                    f'"{other}". You have to remove (or rename) that container to be able to '
                    "reuse that name.")
            self.names[name] = cid
        try:
            directory = self.root / cid
            for sub in ("diff", "work", "rootfs"):
                (directory / sub).mkdir(parents=True)
            image_config = image.config.get("config") or {}
            host["Runtime"] = runtime
            record = {
                "Id": cid, "Name": name, "Created": rfc3339_nano(),
                "Path": "", "Args": [], "Config": {**config, "Image": config["Image"]},
                "HostConfig": host, "Image": image.id, "ImageConfig": image_config,
                "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
                "AppArmorProfile": "", "RestartCount": 0,
            }
            from .spec import command_line
            args = command_line(config, image_config)
            if args:
                record["Path"], record["Args"] = args[0], args[1:]
            if self.networks is not None:  # pyjail.network: validate, keep endpoint configs
                self.networks.container_created(record, body)
            record["Mounts"] = self._prepare_mounts(cid, config, host, image_config)
            self._write_etc_files(directory, cid, config, host)
            container = Container(directory, record)
            container.save_record()
            container.save_state()
        except BaseException:
            with self.lock:
                self.names.pop(name, None)
            shutil.rmtree(self.root / cid, ignore_errors=True)
            raise
        with self.lock:
            self.containers[cid] = container
        self.emit("container", "create", container)
        return container

    def _prepare_mounts(self, cid: str, config: dict, host: dict, image_config: dict) -> list[dict]:
        mounts = []
        taken = set()
        for bind in host.get("Binds") or []:
            src, dst, ro = create_mod.parse_bind(bind)
            if src.startswith("/"):
                if not os.path.exists(src):
                    os.makedirs(src, exist_ok=True)  # Docker creates missing bind sources
                mounts.append({"Type": "bind", "Source": src, "Destination": dst, "Mode": "",
                               "RW": not ro, "Propagation": "rprivate"})
            else:
                created = not self.volumes.exists(src)
                vol = self.volumes.create(src)
                if created:
                    self.emit("volume", "create", vol)
                mounts.append({"Type": "volume", "Name": src, "Source": vol["Mountpoint"],
                               "Destination": dst, "Driver": "local", "Mode": "z", "RW": not ro,
                               "Propagation": ""})
            taken.add(dst)
        anon = dict(config.get("Volumes") or {})
        anon.update(image_config.get("Volumes") or {})
        for dst in anon:
            dst = os.path.normpath(dst)
            if dst in taken:
                continue
            vol = self.volumes.create(anonymous=True)
            mounts.append({"Type": "volume", "Name": vol["Name"], "Source": vol["Mountpoint"],
                           "Destination": dst, "Driver": "local", "Mode": "", "RW": True,
                           "Propagation": "", "Anonymous": True})
        return mounts

    @staticmethod
    def _write_etc_files(directory: Path, cid: str, config: dict, host: dict) -> None:
        hostname = config.get("Hostname") or cid[:12]
        if host.get("NetworkMode") == "host":
            hostname = socket.gethostname()
            shutil.copyfile("/etc/hosts", directory / "hosts")
        else:
            (directory / "hosts").write_text(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                "ff02::2\tip6-allrouters\n")
        (directory / "hostname").write_text(hostname + "\n")
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        (directory / "resolv.conf").write_text(resolv)

    # -- start ------------------------------------------------------------------------------
    def start(self, ref: str, detach_keys: str | None = None) -> Container:
        c = self.get(ref)
        with c.lock:
            if c.state["Running"]:
                if c.state["Paused"]:
                    raise errors.Conflict(
                        "cannot start a paused container, try unpause instead")
                raise errors.NotModified("container already started")
            if c.state["removing"]:
                raise errors.Conflict("container is marked for removal and cannot be started")
            try:
                self._start_locked(c)
            except errors.PyjailError as exc:
                failure: errors.PyjailError | None = exc
            else:
                failure = None
        if failure is not None:
            if c.host.get("AutoRemove"):
                # docker run --rm waits for removal: a start that failed must still remove.
                self.remove(c.id, force=True)
            raise failure
        return c

    def _spec_for(self, c: Container) -> dict:
        image = self.images.resolve(c.record["Image"])
        lower = [str(p) for p in self.images.layer_dirs(image)]
        if not lower:
            empty = self.root.parent / "empty-layer"
            empty.mkdir(exist_ok=True)
            lower = [str(empty)]
        mounts = []
        for m in c.record.get("Mounts", []):
            mounts.append({"destination": m["Destination"], "type": "bind", "source": m["Source"],
                           "options": ["rbind", "rprivate"] + ([] if m["RW"] else ["ro"])})
        net = c.host.get("NetworkMode") or "none"
        ns_paths = {}
        if net.startswith("container:"):
            other = self.get(net.split(":", 1)[1])
            if not other.running:
                raise errors.Conflict(f"cannot join network of a non running container: {other.id}")
            ns_paths["network"] = f"/proc/{other.state['Pid']}/ns/net"
        etc = {"/etc/hostname": str(c.dir / "hostname"), "/etc/hosts": str(c.dir / "hosts"),
               "/etc/resolv.conf": str(c.dir / "resolv.conf")}
        return build_spec(container_id=c.id, config=c.config, host=c.host,
                          image_config=c.record.get("ImageConfig") or {}, lower_dirs=lower,
                          upper=str(c.dir / "diff"), work=str(c.dir / "work"),
                          rootfs=str(c.dir / "rootfs"), etc_files=etc, mounts=mounts,
                          namespace_paths=ns_paths)

    def _start_locked(self, c: Container) -> None:
        spec = self._spec_for(c)
        if self.networks is not None:  # pyjail.network: netns, veth, IP, ports (undone below)
            self.networks.prepare_start(c, spec)
        runtime = c.host.get("Runtime") or self.default_runtime
        if runtime == "pyjail":
            runtime = "builtin"
        try:
            reply = self.supervisor.request(
                "start", id=c.id, spec=spec, dir=str(c.dir), bundle=str(c.dir),
                log=c.log_path, tty=bool(c.config.get("Tty")),
                open_stdin=bool(c.config.get("OpenStdin")),
                stdin_once=bool(c.config.get("StdinOnce")), runtime=runtime)
        except errors.PyjailError as exc:
            if self.networks is not None:  # pyjail.network
                self.networks.container_stopped(c)
            code = getattr(exc, "exit_code", 128)
            c.state.update(Status="exited" if c.state["StartedAt"] != ZERO_TIME else "created",
                           ExitCode=code, Error=str(exc), Running=False, Restarting=False)
            if isinstance(exc, (errors.ExecutableNotFound, errors.PermissionDenied)):
                c.state["Status"] = "exited" if c.state["StartedAt"] != ZERO_TIME else "created"
            c.save_state()
            raise
        c.state.update(Status="running", Running=True, Paused=False, Restarting=False,
                       OOMKilled=False, Dead=False, Pid=reply["pid"], ExitCode=0, Error="",
                       StartedAt=reply["started_at"], FinishedAt=ZERO_TIME,
                       start_id=reply["start_id"], manually_stopped=False)
        c.save_state()
        c.changed.notify_all()
        self.emit("container", "start", c)
        for hook in self.on_start_hooks:
            hook(c)

    # -- exit handling (called from the engine's event thread) ------------------------------
    def on_exit(self, event: dict) -> None:
        try:
            c = self.get(event["id"])
        except errors.NotFound:
            return
        with c.lock:
            if event.get("start_id") != c.state.get("start_id"):
                return
            self._apply_exit(c, event)
            if self.networks is not None:  # pyjail.network: free it before waiters wake
                self.networks.container_stopped(c)
            c.save_state()
            c.exit_seq += 1
            c.changed.notify_all()
        self.emit("container", "die", c, exitCode=str(event["exit_code"]))
        if event.get("oom_killed"):
            self.emit("container", "oom", c)
        for hook in self.on_exit_hooks:
            hook(c, event)
        self._after_exit(c)

    def _apply_exit(self, c: Container, ended: dict) -> None:
        c.state.update(Running=False, Paused=False, Restarting=False, Pid=0, Status="exited",
                       ExitCode=ended["exit_code"], OOMKilled=bool(ended.get("oom_killed")),
                       FinishedAt=ended["finished_at"], Error=ended.get("error", ""),
                       exit_start_id=ended.get("start_id", ""))

    def _after_exit(self, c: Container) -> None:
        if c.host.get("AutoRemove") and not c.state["removing"]:
            threading.Thread(target=self._auto_remove, args=(c,), daemon=True).start()
            return
        delay = self._restart_delay(c)
        if delay is not None:
            with c.lock:
                c.state.update(Restarting=True, Status="restarting")
                c.save_state()
            timer = threading.Timer(delay, self._policy_restart, args=(c,))
            timer.daemon = True
            timer.start()

    def restart_after_daemon_start(self) -> None:
        """Apply restart policies to containers that ended while no daemon was watching
        (Docker restarts ``always``, ``unless-stopped`` and failed ``on-failure`` ones)."""
        for c in self.all():
            if c.running or c.state["Restarting"] or c.state["StartedAt"] == ZERO_TIME:
                continue
            if self._restart_delay(c) is None:
                continue
            with c.lock:
                try:
                    self._start_locked(c)
                except errors.PyjailError:
                    continue
            self.emit("container", "restart", c)

    def _auto_remove(self, c: Container) -> None:
        try:
            self.remove(c.id, force=True, volumes=True)
        except errors.PyjailError:
            pass

    def _restart_delay(self, c: Container) -> float | None:
        """Docker's policy decision and back-off: 100 ms doubling to a minute, reset after 10 s."""
        policy = c.host.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if name == "no" or c.state["manually_stopped"] or c.state["removing"]:
            return None
        code = c.state["ExitCode"]
        count = c.state["restart_count"]
        if name == "on-failure":
            if code == 0:
                return None
            limit = policy.get("MaximumRetryCount") or 0
            if limit and count >= limit:
                return None
        ran_for = _seconds_between(c.state["StartedAt"], c.state["FinishedAt"])
        if ran_for >= 10:
            c.state["backoff"] = 0.1
        else:
            c.state["backoff"] = min(RESTART_MAX_DELAY, c.state.get("backoff", 0.05) * 2)
        return c.state["backoff"]

    def _policy_restart(self, c: Container) -> None:
        with c.lock:
            if c.removed or c.state["manually_stopped"] or not c.state["Restarting"]:
                return
            c.state["restart_count"] += 1
            c.record["RestartCount"] = c.state["restart_count"]
            try:
                self._start_locked(c)
            except errors.PyjailError:
                c.state["Restarting"] = False
                c.save_state()
                c.changed.notify_all()
                return
        self.emit("container", "restart", c)

    # -- stop / kill / restart --------------------------------------------------------------
    def stop_signal(self, c: Container) -> int:
        name = c.config.get("StopSignal") or (c.record.get("ImageConfig") or {}).get("StopSignal")
        return parse_signal(name, signals.SIGTERM)

    def stop(self, ref: str, timeout: int | None = None, signal: str | int | None = None) -> None:
        c = self.get(ref)
        with c.lock:
            if c.state["Restarting"]:
                c.state.update(Restarting=False, manually_stopped=True, Status="exited")
                c.save_state()
                c.changed.notify_all()
                return
            if not c.state["Running"]:
                raise errors.NotModified("container already stopped")
            c.state["manually_stopped"] = True
            c.save_state()
            seq = c.exit_seq
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            timeout = 10 if timeout is None else timeout
        sig = parse_signal(signal, self.stop_signal(c)) if signal else self.stop_signal(c)
        if c.state["Paused"]:
            self._thaw(c)
        self.emit("container", "kill", c, signal=str(sig))
        try:
            self.supervisor.request("kill", id=c.id, signal=sig)
        except errors.Conflict:
            pass
        if timeout < 0 or not self._wait_exit(c, seq, timeout):
            self.emit("container", "kill", c, signal="9")
            try:
                self.supervisor.request("kill", id=c.id, signal=9, all=True)
            except errors.Conflict:
                pass
            self._wait_exit(c, seq, 30)
        self.emit("container", "stop", c)

    def _wait_exit(self, c: Container, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with c.lock:
            while c.exit_seq == seq and c.state["Running"]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                c.changed.wait(left)
        return True

    def kill(self, ref: str, signal: str | int | None = None) -> None:
        c = self.get(ref)
        sig = parse_signal(signal, signals.SIGKILL)
        with c.lock:
            if not c.state["Running"]:
                raise errors.Conflict(f"Container {c.id} is not running")
            if c.state["Paused"] and sig == signals.SIGKILL:
                self._thaw(c)
            if sig == signals.SIGKILL:
                c.state["manually_stopped"] = True
                c.save_state()
        self.emit("container", "kill", c, signal=str(sig))
        self.supervisor.request("kill", id=c.id, signal=sig, all=sig == signals.SIGKILL)

    def restart(self, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        if c.state["Running"]:
            self.stop(c.id, timeout)
        with c.lock:
            self._start_locked(c)
        self.emit("container", "restart", c)

    def pause(self, ref: str) -> None:
        c = self.get(ref)
        with c.lock:
            if not c.state["Running"]:
                raise errors.Conflict(f"Container {c.id} is not running")
            if c.state["Paused"]:
                raise errors.Conflict(f"Container {c.id} is already paused")
            manager_for(f"/pyjail/{c.id}").freeze()
            c.state.update(Paused=True, Status="paused")
            c.save_state()
        self.emit("container", "pause", c)

    def unpause(self, ref: str) -> None:
        c = self.get(ref)
        with c.lock:
            if not c.state["Paused"]:
                raise errors.Conflict(f"Container {c.id} is not paused")
            self._thaw(c)
        self.emit("container", "unpause", c)

    def _thaw(self, c: Container) -> None:
        manager_for(f"/pyjail/{c.id}").thaw()
        c.state.update(Paused=False, Status="running" if c.state["Running"] else c.state["Status"])
        c.save_state()

    # -- wait -------------------------------------------------------------------------------
    def wait(self, ref: str, condition: str = "not-running",
             timeout: float | None = None) -> dict:
        c = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise errors.InvalidArgument(f"invalid condition: {condition}")
        deadline = None if timeout is None else time.monotonic() + timeout
        with c.lock:
            seq = c.exit_seq

            def done() -> bool:
                if condition == "removed":
                    return c.removed
                if condition == "next-exit":
                    return c.exit_seq != seq and not c.state["Restarting"] or c.removed
                return (not c.state["Running"] and not c.state["Restarting"]) or c.removed

            while not done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("timed out waiting for the container")
                c.changed.wait(left)
            result = {"StatusCode": c.state["ExitCode"]}
            if c.state["Error"]:
                result["Error"] = {"Message": c.state["Error"]}
            return result

    # -- remove / rename --------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        with c.lock:
            if c.state["removing"] and not force:
                raise errors.Conflict(f"removal of container {c.id} is already in progress")
            if c.state["Running"] and not force:
                state = "paused" if c.state["Paused"] else "running"
                raise errors.Conflict(
                    f"You cannot remove a {state} container {c.id}. Stop the container before "
                    "attempting removal or force remove")
            c.state["removing"] = True
            c.state["manually_stopped"] = True
            running = c.state["Running"]
            seq = c.exit_seq
        if running:
            if c.state["Paused"]:
                self._thaw(c)
            try:
                self.supervisor.request("kill", id=c.id, signal=9, all=True)
            except errors.Conflict:
                pass
            self._wait_exit(c, seq, 30)
        with self.lock:
            self.containers.pop(c.id, None)
            if self.names.get(c.name) == c.id:
                del self.names[c.name]
        for m in c.record.get("Mounts", []):
            if m.get("Type") == "volume" and (volumes and m.get("Anonymous")):
                try:
                    self.volumes.remove(m["Name"], in_use_by=self.volume_users(m["Name"]))
                except errors.PyjailError:
                    pass
        if self.networks is not None:  # pyjail.network
            self.networks.container_removed(c)
        shutil.rmtree(c.dir, ignore_errors=True)
        try:
            manager_for(f"/pyjail/{c.id}").destroy()
        except OSError:
            pass
        with c.lock:
            c.removed = True
            c.changed.notify_all()
        self.emit("container", "destroy", c)

    def volume_users(self, name: str) -> list[str]:
        with self.lock:
            return [c.id for c in self.containers.values()
                    if any(m.get("Name") == name for m in c.record.get("Mounts", []))]

    def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        new = create_mod.validate_name(new_name)
        with self.lock:
            if new == c.name:
                raise errors.InvalidArgument("Renaming a container with the same name as its "
                                             "current name")
            if new in self.names:
                raise errors.Conflict(f'Conflict. The container name "{new}" is already in use '
                                      f'by container "{self.names[new]}". You have to remove (or '
                                      "rename) that container to be able to reuse that name.")
            old = c.name
            del self.names[old]
            self.names[new] = c.id
            with c.lock:
                c.record["Name"] = new
                c.save_record()
        self.emit("container", "rename", c, oldName=old)

    # -- logs -------------------------------------------------------------------------------
    def logs(self, ref: str, *, follow: bool = False, since_ns: int = 0, until_ns: int = 0,
             tail: int | None = None, stdout: bool = True, stderr: bool = True,
             stop: Callable[[], bool] | None = None) -> Iterator[LogEntry]:
        c = self.get(ref)
        return read_logs(c.log_path, since_ns=since_ns, until_ns=until_ns, tail=tail,
                         stdout=stdout, stderr=stderr, follow=follow,
                         is_running=lambda: c.state["Running"] or c.state["Restarting"],
                         stop=stop)

    # -- attach -----------------------------------------------------------------------------
    def attach(self, ref: str, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
               wait_for_start: bool = True) -> tuple[socket.socket, bool, bytes]:
        """A socket carrying the container's live output (framed unless TTY) and taking stdin."""
        c = self.get(ref)
        sock, reply, early = self.supervisor.open_stream(
            "attach", id=c.id, stdin=stdin, stdout=stdout, stderr=stderr,
            wait=wait_for_start and not c.state["Running"])
        self.emit("container", "attach", c)
        return sock, bool(c.config.get("Tty")), early

    def resize(self, ref: str, height: int, width: int) -> None:
        c = self.get(ref)
        if not c.state["Running"]:
            raise errors.Conflict(f"Container {c.id} is not running")
        self.supervisor.request("resize", id=c.id, h=height, w=width)


def _seconds_between(start: str, end: str) -> float:
    from ..supervisor.logfile import parse_rfc3339_nano
    try:
        return (parse_rfc3339_nano(end) - parse_rfc3339_nano(start)) / 1e9
    except (ValueError, TypeError):
        return 0.0


_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nifty", "proud", "quirky", "serene", "tender", "vivid", "witty", "zen")
_NAMES = ("curie", "darwin", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace", "noether",
          "pascal", "ritchie", "shannon", "turing", "wozniak", "lamarr", "hypatia", "tesla")


def _random_name(taken: set[str]) -> str:
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"
        if "/" + name not in taken:
            return name
        name += str(secrets.randbelow(100))
        if "/" + name not in taken:
            return name
