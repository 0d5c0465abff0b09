"""The engine: one object that owns a data root — images, containers, volumes, events.

The daemon wraps it in HTTP; a script can use it directly (``Engine().run("busybox",
["echo", "hi"])``). Containers live in the supervisor process, so an Engine (or the
daemon holding it) can exit or crash and the containers keep running.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
import threading
import time
from pathlib import Path

from . import errors
from . import stats as stats_mod
from .containers.execs import ExecManager
from .containers.manager import ContainerManager
from .containers.model import Container
from .events import EventBus
from .images import ImageStore
from .network import NetworkManager
from .supervisor.client import SupervisorClient
from .supervisor.logfile import parse_rfc3339_nano
from .volumes import VolumeStore

log = logging.getLogger("pyjail.engine")

DEFAULT_DATA_ROOT = "/var/lib/pyjail"


def run_dir_for(data_root: str) -> str:
    """Where the supervisor socket lives: short (sun_path is 108 bytes), unique per data root."""
    digest = hashlib.sha1(os.path.realpath(data_root).encode()).hexdigest()[:12]
    return f"/run/pyjail/sup-{digest}"


def lock_data_root(root: Path) -> int:
    """One owner per data root: two daemons would both apply restart policies and health
    checks, and a storage migration must not move a root a daemon is using."""
    import fcntl
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise errors.Conflict(f"a pyjail daemon is running on the data root {root} "
                              "(stop it first: pyjail daemon stop)") from None
    return fd


def _remove_empty_cgroup_parents() -> None:
    """Drop the shared ``/pyjail`` cgroup parents once no container uses them (rmdir of a
    cgroup that still has children fails, so another data root's containers are safe)."""
    base = Path("/sys/fs/cgroup")
    for parent in [base / "pyjail", *base.glob("*/pyjail")]:
        try:
            parent.rmdir()
        except OSError:
            pass


_DURATION_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_GO_DURATION = re.compile(r"(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+")

class Engine:
    def __init__(self, data_root: str | os.PathLike[str] = DEFAULT_DATA_ROOT, *,
                 runtime: str = "builtin", start_supervisor: bool = True,
                 autoheal_all: bool = False, restart_policies: bool = True,
                 exclusive: bool = False, insecure_registries: list[str] | None = None) -> None:
        self.data_root = Path(data_root)
        # pyjail.images.registry: plain-HTTP registries beyond loopback; CAs in certs.d
        self.insecure_registries = list(insecure_registries or [])
        self.registry_certs_dirs = [self.data_root / "certs.d", Path("/etc/pyjail/certs.d")]
        self.data_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        self._lock_fd = None
        if exclusive:
            self._lock_fd = lock_data_root(self.data_root)
        self.events = EventBus()
        self.images = ImageStore(self.data_root / "images")
        self.volumes = VolumeStore(self.data_root / "volumes")
        self.supervisor = SupervisorClient(run_dir_for(str(self.data_root)),
                                           log_file=str(self.data_root / "supervisor.log"))
        if start_supervisor:
            self.supervisor.ensure_running()
        self.containers = ContainerManager(self.data_root / "containers", self.images,
                                           self.volumes, self.supervisor, self._emit,
                                           default_runtime=runtime)
        self.execs = ExecManager(self.containers)
        self._stats_prev: dict[str, dict] = {}
        self.networks = NetworkManager(self.data_root, self.events.publish)  # pyjail.network
        self.networks.bind(self.containers)
        self.containers.networks = self.networks
        self._closed = False
        self._events_sock = None
        self._subscribed = threading.Event()
        self._listener = threading.Thread(target=self._listen_supervisor, daemon=True,
                                          name="pyjail-supervisor-events")
        self._listener.start()
        self._subscribed.wait(10)
        with self.containers.lock:
            self.containers.load()
        self.networks.reconcile(self.containers.all())  # pyjail.network: after a restart
        from .health import HealthMonitor
        self.health = HealthMonitor(self, autoheal_all=autoheal_all)
        self.containers.on_start_hooks.append(self.health.container_started)
        for c in self.containers.all():
            if c.running:
                self.health.container_started(c, resume=True)
        if restart_policies:
            self.containers.restart_after_daemon_start()
        from .backup import BackupService  # schedules run only in a daemon-like engine
        self.backups = BackupService(self, run_schedules=restart_policies)

    # -- registries (pyjail.images.registry) ------------------------------------------------
    def pull_image(self, reference: str, *, credentials=None, platform: str | None = None,
                   progress=None):
        """``docker pull``: verified download, then one store registration."""
        from .images.registry import pull
        image = pull(self.images, reference, credentials=credentials, platform=platform,
                     insecure_registries=self.insecure_registries,
                     certs_dirs=self.registry_certs_dirs, progress=progress or (lambda m: None))
        self._emit("image", "pull", reference)
        return image

    def push_image(self, reference: str, *, credentials=None, all_tags: bool = False,
                   progress=None) -> list[str]:
        """``docker push``: returns the manifest digests pushed."""
        from .images.registry import push
        digests = push(self.images, reference, credentials=credentials, all_tags=all_tags,
                       insecure_registries=self.insecure_registries,
                       certs_dirs=self.registry_certs_dirs, progress=progress or (lambda m: None))
        self._emit("image", "push", reference)
        return digests

    # -- events -----------------------------------------------------------------------------
    def _emit(self, kind: str, action: str, obj: object, **extra: str) -> None:
        if isinstance(obj, Container):
            attrs = {"image": obj.config.get("Image", ""), "name": obj.name.lstrip("/")}
            attrs.update(obj.config.get("Labels") or {})
            attrs.update({k: str(v) for k, v in extra.items()})
            self.events.publish(kind, action, obj.id, attrs)
        elif isinstance(obj, dict):
            self.events.publish(kind, action, obj.get("Name") or obj.get("Id", ""),
                                {k: str(v) for k, v in extra.items()})
        else:
            self.events.publish(kind, action, str(obj), {k: str(v) for k, v in extra.items()})

    def _listen_supervisor(self) -> None:
        """Follow the supervisor's exit events; reconnect (and reconcile) if it restarts."""
        import json
        while not self._closed:
            try:
                sock, _reply, early = self.supervisor.open_stream("subscribe")
            except errors.PyjailError:
                self._subscribed.set()
                time.sleep(0.2)
                continue
            self._events_sock = sock
            self._subscribed.set()
            buf = early
            try:
                while not self._closed:
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._dispatch(json.loads(line))
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            except OSError:
                pass
            finally:
                sock.close()

    def _dispatch(self, event: dict) -> None:
        try:
            if event.get("type") == "exit":
                with self.containers.lock:
                    pass  # wait until load() has finished
                self.containers.on_exit(event)
            elif event.get("type") == "exec_exit":
                self.execs.on_exit(event)
        except Exception:  # noqa: BLE001 - the listener must survive anything
            log.exception("handling supervisor event %s failed", event)

    def close(self) -> None:
        """Stop listening; containers keep running in the supervisor."""
        self._closed = True
        if hasattr(self, "health"):
            self.health.close()
        if hasattr(self, "networks"):  # pyjail.network: DNS thread, port reservations
            self.networks.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._events_sock is not None:
            try:
                self._events_sock.shutdown(2)
            except OSError:
                pass

    def shutdown_supervisor(self) -> None:
        """Kill every container of this data root and stop its supervisor (tests, uninstall)."""
        for c in self.containers.all():
            if c.running:
                try:
                    self.containers.kill(c.id)
                except errors.PyjailError:
                    pass
        for c in self.containers.all():
            try:
                self.containers.wait(c.id, timeout=10)
            except (errors.PyjailError, TimeoutError):
                pass
        self.networks.shutdown()  # pyjail.network: bridges, nft table, netns of this root
        self.close()
        try:
            pid = self.supervisor.request("ping")["pid"]
            self.supervisor.request("shutdown", force=True)
        except errors.PyjailError:
            pid = None
        deadline = time.monotonic() + 10
        while pid and time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.01)
        _remove_empty_cgroup_parents()

    # -- convenience ------------------------------------------------------------------------
    def run(self, image: str, cmd: list[str] | None = None, *, name: str | None = None,
            remove: bool = True, timeout: float | None = None, **config: object) -> dict:
        """Create, start and wait; returns exit code and output (the engine-level `docker run`)."""
        body = {"Image": image, **config}
        if cmd is not None:
            body["Cmd"] = cmd
        host = dict(body.pop("HostConfig", {}) or {})
        body["HostConfig"] = host
        c = self.containers.create(body, name=name)
        try:
            self.containers.start(c.id)
            result = self.containers.wait(c.id, timeout=timeout)
            out = b"".join(e.data for e in self.containers.logs(c.id) if e.stream == "stdout")
            err = b"".join(e.data for e in self.containers.logs(c.id) if e.stream == "stderr")
            return {"Id": c.id, "StatusCode": result["StatusCode"], "stdout": out, "stderr": err,
                    "OOMKilled": c.state["OOMKilled"]}
        finally:
            if remove:
                self.containers.remove(c.id, force=True)

    # -- inspect / list ---------------------------------------------------------------------
    def inspect_container(self, ref: str) -> dict:
        c = self.containers.get(ref)
        with c.lock:
            record = c.record
            image_id = record["Image"]
            upper = str(c.dir / "diff")
            try:
                lower = ":".join(str(p) for p in self.images.layer_dirs(
                    self.images.resolve(image_id)))
            except errors.NotFound:
                lower = ""
            return {
                "Id": c.id, "Created": record["Created"], "Path": record["Path"],
                "Args": record["Args"], "State": c.public_state(), "Image": image_id,
                "ResolvConfPath": str(c.dir / "resolv.conf"),
                "HostnamePath": str(c.dir / "hostname"), "HostsPath": str(c.dir / "hosts"),
                "LogPath": c.log_path, "Name": c.name, "RestartCount": c.state["restart_count"],
                "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
                "AppArmorProfile": "",
                "ExecIDs": [e for e, r in self.execs.execs.items()
                            if r["ContainerID"] == c.id] or None,
                "HostConfig": record["HostConfig"],
                "GraphDriver": {"Name": "overlay2", "Data": {
                    "LowerDir": lower, "MergedDir": str(c.dir / "rootfs"), "UpperDir": upper,
                    "WorkDir": str(c.dir / "work")}},
                "Mounts": [{k: v for k, v in m.items() if k != "Anonymous"}
                           for m in record.get("Mounts", [])],
                "Config": {**record["Config"], **self._image_defaults(c)},
                "NetworkSettings": self._network_settings(c),
            }

    @staticmethod
    def _image_defaults(c: Container) -> dict:
        """Docker's inspect shows the effective Config (image values merged in)."""
        img = c.record.get("ImageConfig") or {}
        cfg = c.config
        out = {}
        from .containers.spec import merged_env
        out["Env"] = merged_env(img.get("Env") or [], cfg.get("Env") or [])
        if cfg.get("Cmd") is None and cfg.get("Entrypoint") is None:
            out["Cmd"] = img.get("Cmd")
        if cfg.get("Entrypoint") is None:
            out["Entrypoint"] = img.get("Entrypoint")
        for key in ("WorkingDir", "User", "StopSignal"):
            if not cfg.get(key) and img.get(key):
                out[key] = img[key]
        labels = dict(img.get("Labels") or {})
        labels.update(cfg.get("Labels") or {})
        out["Labels"] = labels
        if img.get("Healthcheck") and not cfg.get("Healthcheck"):
            out["Healthcheck"] = img["Healthcheck"]
        out["Hostname"] = cfg.get("Hostname") or c.id[:12]
        return out

    def _network_settings(self, c: Container) -> dict:
        return self.networks.settings(c)  # pyjail.network

    def list_containers(self, all: bool = False, filters: dict | None = None,
                        limit: int = -1, size: bool = False) -> list[dict]:
        from .containers.listing import list_entry, matches
        out = []
        containers = self.containers.all()
        for c in containers:
            if not all and not c.running and not filters:
                continue
            if filters and not matches(self, c, filters, containers):
                continue
            if not all and not c.running and not (filters and "status" in filters):
                continue
            entry = list_entry(self, c, size)
            entry["Ports"] = self.networks.port_list(c)  # pyjail.network
            out.append(entry)
            if 0 < limit <= len(out):
                break
        return out

    # -- observation ------------------------------------------------------------------------
    def stats(self, ref: str) -> dict:
        """One Docker-shaped stats sample, with the previous call's sample as precpu."""
        c = self.containers.get(ref)
        current = stats_mod.sample(c.id, c.name, c.state["Pid"], c.running)
        previous = self._stats_prev.get(c.id)
        self._stats_prev[c.id] = current
        return stats_mod.with_previous(dict(current), previous)

    def top(self, ref: str, ps_args: str = "-ef") -> dict:
        c = self.containers.get(ref)
        if not c.running:
            raise errors.Conflict(f"Container {c.id} is not running")
        from .runtime.cgroups import manager_for
        pids = set(manager_for(f"/pyjail/{c.id}").pids())
        args = ps_args.split() if ps_args else ["-ef"]
        proc = subprocess.run(["ps", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise errors.InvalidArgument(f"ps: {proc.stderr.strip()}")
        lines = proc.stdout.splitlines()
        titles = lines[0].split()
        try:
            pid_col = titles.index("PID")
        except ValueError:
            raise errors.InvalidArgument("Couldn't find PID field in ps output") from None
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
                rows.append(fields)
        return {"Titles": titles, "Processes": rows}

    def changes(self, ref: str) -> list[dict]:
        """Kind 0 modified, 1 added, 2 deleted — read from the overlay upper dir."""
        c = self.containers.get(ref)
        upper = c.dir / "diff"
        lower_dirs = [Path(p) for p in self.images.layer_dirs(self.images.resolve(c.record["Image"]))]
        out = []
        # Mount targets of the bind-mounted /etc files, not changes the process made.
        mount_targets = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
        for dirpath, dirnames, filenames in os.walk(upper):
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                rel = "/" + str(full.relative_to(upper))
                st = os.lstat(full)
                if rel in mount_targets and st.st_size == 0:
                    continue
                import stat as stat_mod
                in_lower = any(os.path.lexists(str(d) + rel) for d in lower_dirs)
                if stat_mod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out.append({"Path": rel, "Kind": 2})
                elif in_lower:
                    out.append({"Path": rel, "Kind": 0})
                else:
                    out.append({"Path": rel, "Kind": 1})
        return out

    @staticmethod
    def parse_time(value: str | int | float | None) -> int:
        """Docker accepts unix seconds (with fractions), RFC 3339, or a Go duration meaning
        that long ago (``until=24h`` in prune filters) for since/until; nanoseconds."""
        if value in (None, "", 0, "0"):
            return 0
        text = str(value)
        try:
            return int(float(text) * 1_000_000_000)
        except ValueError:
            pass
        if _GO_DURATION.fullmatch(text):
            ago = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
            return time.time_ns() - int(ago)
        try:
            return parse_rfc3339_nano(text)
        except ValueError:
            raise errors.InvalidArgument(f"invalid time value: {value}") from None
