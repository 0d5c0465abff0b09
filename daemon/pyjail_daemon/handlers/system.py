"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/system/df``, ``/events``."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from tornado.iostream import StreamClosedError

import pyjail
from pyjail import errors
from pyjail.supervisor.logfile import rfc3339_nano

from ..context import API_VERSION, MIN_API_VERSION
from ..filters import event_matches
from ..hostinfo import engine_id, host_facts
from . import images as images_view
from .base import ApiHandler

EVENT_FILTERS = {"type", "container", "image", "event", "label", "volume", "network", "scope",
                 "daemon", "plugin", "node", "service", "secret", "config"}


class PingHandler(ApiHandler):
    """Trivial on purpose: every docker command starts with it."""

    def prepare(self) -> None:
        pass  # no version check: a ping must answer whatever the prefix

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Builder-Version", "1")
        self.set_header("Cache-Control", "no-cache, no-store, must-revalidate")
        self.set_header("Pragma", "no-cache")

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("OK")

    def head(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Content-Length", "0")
        self.finish()


class VersionHandler(ApiHandler):
    def get(self) -> None:
        facts = host_facts()
        details = {"ApiVersion": API_VERSION, "Arch": facts["arch"], "BuildTime": "",
                   "Experimental": "false", "GitCommit": "", "GoVersion": facts["python"],
                   "KernelVersion": facts["kernel"], "MinAPIVersion": MIN_API_VERSION,
                   "Os": "linux"}
        self.write_json({
            "Platform": {"Name": "pyjail"},
            "Components": [{"Name": "Engine", "Version": pyjail.__version__,
                            "Details": details}],
            "Version": pyjail.__version__, "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION, "GitCommit": "", "GoVersion": facts["python"],
            "Os": "linux", "Arch": facts["arch"], "KernelVersion": facts["kernel"],
            "BuildTime": "",
        })


class InfoHandler(ApiHandler):
    async def get(self) -> None:
        counts = await self.call(self._counts)
        facts = host_facts()
        ctx = self.ctx
        self.write_json({
            "ID": engine_id(ctx.data_root), **counts,
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "overlayfs"]],
            "DockerRootDir": ctx.data_root,
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"],
                        "Authorization": None, "Log": ["json-file"]},
            "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "CPUShares": True, "CPUSet": True, "PidsLimit": True, "OomKillDisable": True,
            "IPv4Forwarding": False, "Debug": ctx.debug, "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0, "SystemTime": rfc3339_nano(), "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": facts["cgroup_version"],
            "NEventsListener": ctx.events.count, "KernelVersion": facts["kernel"],
            "OperatingSystem": facts["os"], "OSVersion": "", "OSType": "linux",
            "Architecture": facts["machine"], "NCPU": facts["ncpu"], "MemTotal": facts["mem"],
            "IndexServerAddress": "", "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": None,
                "AllowNondistributableArtifactsHostnames": None,
                "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                "Mirrors": None},
            "GenericResources": None, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": facts["hostname"], "Labels": [], "ExperimentalBuild": False,
            "ServerVersion": pyjail.__version__,
            "Runtimes": {name: {"path": name} for name in ("builtin", "runc", "crun")},
            "DefaultRuntime": "builtin",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": False, "Error": "", "RemoteManagers": None},
            "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "tini",
            "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""}, "SecurityOptions": ctx.security_options,
            "Warnings": [],
        })

    def _counts(self) -> dict[str, int]:
        containers = self.engine.containers.all()
        running = sum(1 for c in containers if c.running and not c.state["Paused"])
        paused = sum(1 for c in containers if c.state["Paused"])
        return {"Containers": len(containers), "ContainersRunning": running,
                "ContainersPaused": paused,
                "ContainersStopped": len(containers) - running - paused,
                "Images": images_view.count(self.engine)}


class SystemDfHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.call(self._usage))

    def _usage(self) -> dict[str, Any]:
        from pyjail.storage.df import usage
        return usage(self.engine)   # measured on disk, see pyjail.storage.df


class BuildPruneHandler(ApiHandler):
    """``POST /build/prune?all=&keep-storage=&filters=``: step images only the build cache
    keeps, and stale keys (``all``: every key that matches); see buildcache.prune."""

    async def post(self) -> None:
        from pyjail.storage.buildcache import matcher, prune
        every = self.query_bool("all")
        keep = self.query_int("keep-storage", 0, minimum=0)
        filters = self.query_filters()
        match = matcher(self.engine, filters) if filters else None
        self.write_json(await self.call_blocking(
            lambda: prune(self.engine, all_keys=every, match=match, keep_storage=keep)))


class EventsHandler(ApiHandler):
    """``GET /events``: past events since ``since``, then live ones until ``until``."""

    _queue: asyncio.Queue | None = None

    async def get(self) -> None:
        engine = self.engine
        filters = self.query_filters()
        for key in filters:
            if key not in EVENT_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        since = engine.parse_time(self.query("since"))
        until = engine.parse_time(self.query("until"))
        now = time.time_ns()
        live = not until or until > now
        if live:
            self._queue = self.ctx.events.listen()
        try:
            self.set_header("Content-Type", "application/json")
            await self.flush()
            last = 0
            if since:
                for event in engine.events.since(since, until):
                    last = event["timeNano"]
                    if event_matches(event, filters):
                        self.write(json.dumps(event, separators=(",", ":")) + "\n")
                await self.flush()
            while self._queue is not None:
                timeout = None if not until else max(0.0, (until - time.time_ns()) / 1e9)
                try:
                    event = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                if event is None:
                    break
                if event["timeNano"] <= last or not event_matches(event, filters):
                    continue
                if until and event["timeNano"] > until:
                    break
                self.write(json.dumps(event, separators=(",", ":")) + "\n")
                await self.flush()
        except StreamClosedError:
            return
        finally:
            self._stop_listening()
        self.end_stream()

    def _stop_listening(self) -> None:
        if self._queue is not None:
            self.ctx.events.unlisten(self._queue)
            self._queue = None

    def on_connection_close(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(None)
