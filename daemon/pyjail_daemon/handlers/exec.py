"""``docker exec``: create, start (hijacked like attach), inspect, resize."""

from __future__ import annotations

from tornado.iostream import StreamClosedError

from pyjail import errors

from .. import errors as api_errors
from ..streams import frame, hijack, splice
from .base import ApiHandler
from .containers import stream_content_type

# How long the end of an exec's output may precede its exit record: the supervisor
# closes the stream first and publishes the exit code right after.
EXIT_CODE_GRACE = 5.0


class ExecCreateHandler(ApiHandler):
    async def post(self, ref: str) -> None:
        body = self.json_body()
        for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "Privileged"):
            if body.get(key) is not None and not isinstance(body[key], bool):
                raise errors.InvalidArgument(f"invalid type for {key}: expected boolean")
        for key in ("User", "WorkingDir", "DetachKeys"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise errors.InvalidArgument(f"invalid type for {key}: expected string")
        exec_id = await self.call(self.engine.execs.create, ref, body)
        self.write_json({"Id": exec_id}, 201)


class ExecStartHandler(ApiHandler):
    async def post(self, exec_id: str) -> None:
        execs = self.engine.execs
        body = self.json_body()
        detach = body.get("Detach", False)
        tty = body.get("Tty")
        if not isinstance(detach, bool) or tty is not None and not isinstance(tty, bool):
            raise errors.InvalidArgument("invalid type for Detach/Tty: expected boolean")
        size = body.get("ConsoleSize")
        record = await self.call(self._startable, exec_id)
        if detach:
            await self.call(execs.start, exec_id, True, tty)
            self.set_header("Content-Type", "application/json")
            self.finish()
            return
        use_tty = record["ProcessConfig"]["tty"] if tty is None else tty
        upgrade = "Upgrade" in self.request.headers
        client = await hijack(self, stream_content_type(self, use_tty, upgrade), upgrade)
        self.ctx.hijacked.add(client)
        try:
            try:
                backend, use_tty, early = await self.call(execs.start, exec_id, False, tty)
            except Exception as exc:  # noqa: BLE001 - the HTTP answer is already out
                # dockerd reports a failed exec inside the stream; the exit code (126/127)
                # comes with the exec's inspect.
                status, text = api_errors.status_and_message(exc)
                if status >= 500:
                    api_errors.log.error("exec %s failed to start", exec_id, exc_info=exc)
                message = (text + "\r\n").encode()
                await client.write(message if use_tty else frame(1, message))
            else:
                try:
                    if use_tty and isinstance(size, list) and len(size) == 2 and all(
                            isinstance(v, int) and v > 0 for v in size):
                        await self.call(self._resize_quietly, exec_id, size[0], size[1])
                    await splice(client, backend, early=early,
                                 stdin=record["OpenStdin"])
                finally:
                    backend.close()
            # Clients inspect the exec as soon as the stream ends: have its code first.
            await self.call_blocking(execs.wait, exec_id, EXIT_CODE_GRACE)
        except (OSError, StreamClosedError):
            pass
        finally:
            client.close()
            self.ctx.hijacked.discard(client)

    def _startable(self, exec_id: str) -> dict:
        """Refuse before the hijack what can be refused with a proper HTTP status."""
        execs = self.engine.execs
        record = execs.inspect(exec_id)
        if execs.get(exec_id).get("_started"):
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        container = self.engine.containers.get(record["ContainerID"])
        if not container.running:
            raise errors.Conflict(f"Container {container.id} is not running")
        return record

    def _resize_quietly(self, exec_id: str, height: int, width: int) -> None:
        try:
            self.engine.execs.resize(exec_id, height, width)
        except errors.PyjailError:
            pass


class ExecInspectHandler(ApiHandler):
    async def get(self, exec_id: str) -> None:
        record = await self.call(self.engine.execs.inspect, exec_id)
        if record.get("ExitCode") is not None:
            # The engine can mark a quick exec running after its exit was recorded.
            record["Running"] = False
        self.write_json(record)


class ExecResizeHandler(ApiHandler):
    async def post(self, exec_id: str) -> None:
        height = self.query_int("h", 0, minimum=0, maximum=65535)
        width = self.query_int("w", 0, minimum=0, maximum=65535)
        await self.call(self.engine.execs.resize, exec_id, height, width)
        self.finish()
