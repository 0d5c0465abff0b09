"""``/containers/...``: lifecycle, inspection, logs, attach, stats, prune."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from tornado.iostream import StreamClosedError

from pyjail import errors
from pyjail import stats as stats_mod
from pyjail.containers.model import Container

from ..filters import labels_match
from ..hostinfo import host_facts
from ..streams import MULTIPLEXED_STREAM, RAW_STREAM, encode_log, hijack, iterate_in_thread, splice
from .base import ApiHandler

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
PRUNE_FILTERS = {"until", "label", "label!"}


def stream_content_type(handler: ApiHandler, tty: bool, upgrade: bool = True) -> str:
    """dockerd labels non-TTY streams as multiplexed from API 1.42 on."""
    if not tty and upgrade and handler.api_version >= (1, 42):
        return MULTIPLEXED_STREAM
    return RAW_STREAM


class ContainerListHandler(ApiHandler):
    async def get(self) -> None:
        limit = self.query_int("limit", -1)
        show_all = self.query_bool("all") or (limit is not None and limit > 0)
        entries = await self.call(self.engine.list_containers, all=show_all,
                                  filters=self.query_filters(), limit=limit or -1,
                                  size=self.query_bool("size"))
        self.write_json(entries)


class ContainerCreateHandler(ApiHandler):
    async def post(self) -> None:
        body = self.json_body()
        name = self.query("name") or None
        container = await self.call(self.engine.containers.create, body, name=name)
        self.write_json({"Id": container.id, "Warnings": []}, 201)


class ContainerInspectHandler(ApiHandler):
    async def get(self, ref: str) -> None:
        self.write_json(await self.call(self._inspect, ref, self.query_bool("size")))

    def _inspect(self, ref: str, size: bool) -> dict:
        info = self.engine.inspect_container(ref)
        if size:
            from pyjail.containers.listing import _dir_size
            info["SizeRw"] = _dir_size(self.engine.containers.get(ref).dir / "diff")
            info["SizeRootFs"] = info["SizeRw"]
        return info


class ContainerStartHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        await self.call(self._start, ref, self.query("detachKeys"))
        self.no_content()

    def _start(self, ref: str, detach_keys: str | None) -> None:
        containers = self.engine.containers
        try:
            containers.start(ref, detach_keys)
        except (errors.NotModified, errors.NotFound, errors.Conflict):
            raise
        except errors.PyjailError:
            # dockerd removes an auto-remove container whose start failed; `docker run
            # --rm` waits for that removal (the engine does not do it).
            container = containers.get(ref)
            if container.host.get("AutoRemove") and not container.running:
                try:
                    containers.remove(container.id, force=True, volumes=True)
                except errors.PyjailError:
                    pass
            raise


class ContainerStopHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        timeout = self.query_int("t")
        signal = self.query("signal") or None
        await self.call_blocking(self.engine.containers.stop, ref, timeout, signal)
        self.no_content()


class ContainerRestartHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        timeout = self.query_int("t")
        await self.call_blocking(self.engine.containers.restart, ref, timeout)
        self.no_content()


class ContainerKillHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        await self.call(self.engine.containers.kill, ref, self.query("signal") or None)
        self.no_content()


class ContainerPauseHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        await self.call(self.engine.containers.pause, ref)
        self.no_content()


class ContainerUnpauseHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        await self.call(self.engine.containers.unpause, ref)
        self.no_content()


class ContainerRenameHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        name = self.query("name")
        if not name:
            raise errors.InvalidArgument("name is required")
        await self.call(self.engine.containers.rename, ref, name)
        self.no_content()


class ContainerResizeHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        height = self.query_int("h", 0, minimum=0, maximum=65535)
        width = self.query_int("w", 0, minimum=0, maximum=65535)
        await self.call(self.engine.containers.resize, ref, height, width)
        self.finish()


class ContainerHandler(ApiHandler):
    """``DELETE /containers/{id}``."""

    async def delete(self, ref: str) -> None:
        force, volumes = self.query_bool("force"), self.query_bool("v")
        if self.query_bool("link"):
            raise errors.InvalidArgument("links are not supported")
        await self.call_blocking(self._remove, ref, force, volumes)
        self.no_content()

    def _remove(self, ref: str, force: bool, volumes: bool) -> None:
        container = self.engine.containers.get(ref)
        self.engine.containers.remove(container.id, force=force, volumes=volumes)
        self.engine.execs.forget_container(container.id)


class ContainerWaitHandler(ApiHandler):
    """Headers go out at once: ``docker run`` starts the container only after seeing them."""

    async def post(self, ref: str) -> None:
        condition = self.query("condition") or "not-running"
        if condition not in WAIT_CONDITIONS:
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        container = await self.call(self.engine.containers.get, ref)
        self.set_header("Content-Type", "application/json")
        try:
            await self.flush()
            try:
                result = await self.call_blocking(self.engine.containers.wait, container.id,
                                                  condition)
            except errors.NotFound:
                # Removed between our lookup and the wait (auto-remove): that is the end.
                result = {"StatusCode": container.state["ExitCode"]}
            except errors.PyjailError as exc:
                result = {"StatusCode": -1, "Error": {"Message": exc.message}}
            result.setdefault("Error", None)
            self.write(json.dumps(result) + "\n")
        except StreamClosedError:
            return
        self.end_stream()


class ContainerLogsHandler(ApiHandler):
    _stop: threading.Event

    def on_connection_close(self) -> None:
        if hasattr(self, "_stop"):
            self._stop.set()

    async def get(self, ref: str) -> None:
        engine = self.engine
        stdout, stderr = self.query_bool("stdout"), self.query_bool("stderr")
        if not (stdout or stderr):
            raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
        follow, timestamps = self.query_bool("follow"), self.query_bool("timestamps")
        since_ns = engine.parse_time(self.query("since"))
        until_ns = engine.parse_time(self.query("until"))
        tail_text = (self.query("tail") or "all").strip()
        tail = int(tail_text) if tail_text.lstrip("-").isdigit() else None
        if tail is not None and tail < 0:
            tail = None
        container = await self.call(engine.containers.get, ref)
        tty = bool(container.config.get("Tty"))
        self.set_header("Content-Type", stream_content_type(self, tty))
        self._stop = threading.Event()
        try:
            await self.flush()

            def produce():
                return engine.containers.logs(
                    container.id, follow=follow, since_ns=since_ns, until_ns=until_ns,
                    tail=tail, stdout=stdout, stderr=stderr, stop=self._stop.is_set)

            pending = 0
            async for entry in iterate_in_thread(self.ctx.blocking, produce, self._stop):
                self.write(encode_log(entry, tty, timestamps))
                pending += 1
                if follow or pending >= 256:
                    await self.flush()
                    pending = 0
        except StreamClosedError:
            return
        finally:
            self._stop.set()
        self.end_stream()


class ContainerAttachHandler(ApiHandler):
    """``POST /containers/{id}/attach``: the hijacked stream of a container's stdio."""

    async def post(self, ref: str) -> None:
        engine = self.engine
        stdin, stdout, stderr = (self.query_bool(n) for n in ("stdin", "stdout", "stderr"))
        logs, stream = self.query_bool("logs"), self.query_bool("stream")
        container = await self.call(engine.containers.get, ref)
        if container.state["Paused"] and stream:
            raise errors.Conflict(f"container {container.id} is paused, unpause the container "
                                  "before attach")
        tty = bool(container.config.get("Tty"))
        backend = None
        early = b""
        started = None
        if stream and stdin and not container.running:
            # The supervisor drops input sent to an attach that waits for the start
            # (docker run -i sends it at once): hold it back until the container runs.
            started = asyncio.ensure_future(self._until_started(container))
        try:
            if stream:
                backend, tty, early = await self.call(
                    engine.containers.attach, container.id, stdin=stdin, stdout=stdout,
                    stderr=stderr, wait_for_start=True)
            upgrade = "Upgrade" in self.request.headers
            client = await hijack(self, stream_content_type(self, tty, upgrade), upgrade)
        except BaseException:
            if backend is not None:
                backend.close()
            if started is not None:
                started.cancel()
            raise
        self.ctx.hijacked.add(client)
        try:
            if logs and (stdout or stderr):
                past = await self.call(self._past_logs, container, tty, stdout, stderr)
                if past:
                    await client.write(past)
            if backend is not None:
                await splice(client, backend, early=early, stdin=stdin, stdin_ready=started)
        except (OSError, StreamClosedError):
            pass
        finally:
            if started is not None:
                started.cancel()
            if backend is not None:
                backend.close()
            client.close()
            self.ctx.hijacked.discard(client)

    async def _until_started(self, container: Container) -> None:
        queue = self.ctx.events.listen()
        try:
            while not container.running:
                event = await queue.get()
                if event is None:
                    raise asyncio.CancelledError
                if (event.get("Type") == "container" and event.get("Action") == "start"
                        and event.get("id") == container.id):
                    return
        finally:
            self.ctx.events.unlisten(queue)

    def _past_logs(self, c: Container, tty: bool, stdout: bool, stderr: bool) -> bytes:
        return b"".join(encode_log(e, tty, False) for e in self.engine.containers.logs(
            c.id, stdout=stdout, stderr=stderr))


class ContainerTopHandler(ApiHandler):
    async def get(self, ref: str) -> None:
        self.write_json(await self.call(self.engine.top, ref, self.query("ps_args") or "-ef"))


class ContainerChangesHandler(ApiHandler):
    async def get(self, ref: str) -> None:
        self.write_json(await self.call(self.engine.changes, ref) or None)


# container id -> (monotonic time, sample): the previous sample for one-shot requests.
_LAST_SAMPLES: dict[str, tuple[float, dict[str, Any]]] = {}


class ContainerStatsHandler(ApiHandler):
    """One JSON object per second (each with the previous sample as precpu_stats).

    ``stream=false`` answers one object; for a useful CPU figure it uses a sample from the
    last seconds, or takes two 50 ms apart instead of dockerd's full second.
    ``one-shot=true`` skips the first sample.
    """

    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    async def get(self, ref: str) -> None:
        stream = self.query_bool("stream", True)
        one_shot = self.query_bool("one-shot")
        if one_shot and stream:
            raise errors.InvalidArgument("cannot have stream=true and one-shot=true")
        container = await self.call(self.engine.containers.get, ref)
        if not stream:
            previous = None
            if not one_shot:
                previous = self._recent(container.id)
                if previous is None:
                    previous = await self.call(self._sample, container)
                    await asyncio.sleep(0.05)
            current = await self.call(self._sample, container)
            if len(_LAST_SAMPLES) > 4096:
                _LAST_SAMPLES.clear()
            _LAST_SAMPLES[container.id] = (time.monotonic(), current)
            self.write_json(stats_mod.with_previous(dict(current), previous))
            return
        self.set_header("Content-Type", "application/json")
        previous = None
        try:
            while not self._closed and not container.removed:
                started = time.monotonic()
                current = await self.call(self._sample, container)
                self.write(json.dumps(stats_mod.with_previous(dict(current), previous)) + "\n")
                await self.flush()
                previous = current
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        except StreamClosedError:
            return
        self.end_stream()

    @staticmethod
    def _recent(container_id: str) -> dict[str, Any] | None:
        """A sample from the last few seconds serves as precpu: no wait at all."""
        entry = _LAST_SAMPLES.get(container_id)
        if entry and 0.01 < time.monotonic() - entry[0] < 5.0:
            return entry[1]
        return None

    @staticmethod
    def _sample(c: Container) -> dict[str, Any]:
        sample = stats_mod.sample(c.id, c.name, c.state["Pid"], c.running)
        memory = sample.get("memory_stats") or {}
        host_memory = host_facts()["mem"]
        # An unlimited cgroup reports ~8 EiB; dockerd shows the host's memory instead.
        if host_memory and memory.get("limit", 0) > host_memory:
            memory["limit"] = host_memory
        return sample


class ContainerExportHandler(ApiHandler):
    """``GET /containers/{id}/export``: the merged filesystem as a tar, built without mounting."""

    async def get(self, ref: str) -> None:
        from pyjail.images.export import container_tree, tar_chunks
        engine = self.engine

        def tree() -> dict[str, str]:
            c = engine.containers.get(ref)
            image = engine.images.resolve(c.record["Image"])
            return container_tree(c.dir / "diff", engine.images.layer_dirs(image))

        files = await self.call(tree)
        await self.stream_chunks(lambda: tar_chunks(files))


class ContainerPruneHandler(ApiHandler):
    async def post(self) -> None:
        filters = self.query_filters()
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        until_ns = max((self.engine.parse_time(v) for v in filters.get("until", [])), default=0)
        self.write_json(await self.call_blocking(self._prune, filters, until_ns))

    def _prune(self, filters: dict[str, list[str]], until_ns: int) -> dict[str, Any]:
        from pyjail.containers.listing import _dir_size
        from pyjail.supervisor.logfile import parse_rfc3339_nano
        deleted, reclaimed = [], 0
        for c in self.engine.containers.all():
            if c.running or c.state["Restarting"]:
                continue
            if until_ns and parse_rfc3339_nano(c.record["Created"]) >= until_ns:
                continue
            if not labels_match(c.config.get("Labels") or {}, filters):
                continue
            size = _dir_size(c.dir / "diff")
            try:
                self.engine.containers.remove(c.id)
            except errors.PyjailError:
                continue
            self.engine.execs.forget_container(c.id)
            deleted.append(c.id)
            reclaimed += size
        return {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}
