"""The base of every API handler: context, version check, query/body parsing, JSON out.

Handlers are Tornado hooks only (``initialize``, ``prepare``, ``write_error``); engine
calls go through ``call`` (a bounded pool, for quick calls) or ``call_blocking`` (a
thread per call, for calls that wait on containers), never on the IOLoop itself.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

from pyjail import errors

from .. import errors as api_errors
from ..context import API_VERSION, MIN_API_VERSION, DaemonContext
from ..streams import iterate_in_thread

T = TypeVar("T")

VERSION_RE = re.compile(r"^/v(\d+)\.(\d+)/")
_MAX_VERSION = tuple(int(x) for x in API_VERSION.split("."))
_MIN_VERSION = tuple(int(x) for x in MIN_API_VERSION.split("."))
_FALSE = ("", "0", "no", "false", "none")
# Every route may carry a version prefix: /v1.44/containers/json or /containers/json.
PREFIX = r"(?:/v[0-9]+\.[0-9]+)?"
SERVER_HEADER = "Docker/pyjail (linux)"


class ApiHandler(RequestHandler):
    """Base for Docker API handlers."""

    ctx: DaemonContext
    api_version: tuple[int, int]

    def initialize(self, ctx: DaemonContext) -> None:
        self.ctx = ctx
        self.engine = ctx.engine

    def set_default_headers(self) -> None:
        self.set_header("Api-Version", API_VERSION)
        self.set_header("Docker-Experimental", "false")
        self.set_header("Ostype", "linux")
        self.set_header("Server", SERVER_HEADER)

    def prepare(self) -> None:
        """Reject API versions outside [1.24, 1.44] as dockerd does."""
        match = VERSION_RE.match(self.request.path)
        if match is None:
            self.api_version = _MAX_VERSION  # unversioned requests get the newest API
            return
        version = (int(match.group(1)), int(match.group(2)))
        if version > _MAX_VERSION:
            raise errors.InvalidArgument(
                f"client version {version[0]}.{version[1]} is too new. Maximum supported API "
                f"version is {API_VERSION}")
        if version < _MIN_VERSION:
            raise errors.InvalidArgument(
                f"client version {version[0]}.{version[1]} is too old. Minimum supported API "
                f"version is {MIN_API_VERSION}, please upgrade your client to a newer version")
        self.api_version = version

    def compute_etag(self) -> None:
        """No ETags: hashing every JSON answer costs time and no Docker client uses them."""
        return None

    # -- errors -----------------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        api_errors.write_error(self, status_code, **kwargs)

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        api_errors.log_exception(self, typ, value, tb)

    # -- engine calls -----------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A short engine call on the worker pool."""
        return await IOLoop.current().run_in_executor(
            self.ctx.pool, functools.partial(fn, *args, **kwargs))

    async def call_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An engine call that may block for long (wait, follow) on its own thread."""
        return await IOLoop.current().run_in_executor(
            self.ctx.blocking, functools.partial(fn, *args, **kwargs))

    # -- input ------------------------------------------------------------------------------
    def query(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    def query_bool(self, name: str, default: bool = False) -> bool:
        """Docker's BoolValue: "", 0, no, false, none are false; present otherwise true."""
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE

    def query_int(self, name: str, default: int | None = None, *, minimum: int | None = None,
                  maximum: int | None = None) -> int | None:
        return self._query_number(name, int, default, minimum, maximum)

    def query_float(self, name: str, default: float | None = None, *,
                    minimum: float | None = None) -> float | None:
        return self._query_number(name, float, default, minimum, None)

    def _query_number(self, name: str, kind: type, default: Any, minimum: Any,
                      maximum: Any) -> Any:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        try:
            number = kind(value)
        except ValueError:
            raise errors.InvalidArgument(f"invalid value for {name}: {value!r}") from None
        if minimum is not None and number < minimum or maximum is not None and number > maximum:
            raise errors.InvalidArgument(f"value out of range for {name}: {number}")
        return number

    def query_filters(self) -> dict[str, Any]:
        """The ``filters`` parameter: a JSON object of lists (or Docker's legacy maps)."""
        raw = self.get_query_argument("filters", None)
        if not raw:
            return {}
        try:
            filters = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise errors.InvalidArgument(f"invalid filter: {exc}") from None
        if not isinstance(filters, dict):
            raise errors.InvalidArgument("invalid filter: expected a JSON object")
        for key, value in filters.items():
            if isinstance(value, str):
                filters[key] = [value]
            elif isinstance(value, dict):
                filters[key] = [k for k, on in value.items() if on]
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        return filters

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object (empty body: ``{}``); 400 otherwise."""
        body = self.request.body
        if not body or not body.strip():
            return {}
        try:
            value = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise errors.InvalidArgument(f"invalid JSON: {exc}") from None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise errors.InvalidArgument("invalid JSON: the body must be an object")
        return value

    # -- output -----------------------------------------------------------------------------
    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(obj, separators=(",", ":")) + "\n")

    async def stream_chunks(self, produce: Callable[[], Iterator[bytes]],
                            content_type: str = "application/x-tar") -> None:
        """Write a blocking generator's chunks as they come, from a worker thread; the
        thread stops when the client goes away (iterate_in_thread sets its stop event)."""
        self.set_header("Content-Type", content_type)
        try:
            async for chunk in iterate_in_thread(self.ctx.blocking, produce, threading.Event()):
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return
        self.end_stream()

    def end_stream(self) -> None:
        """Finish a streamed response, unless the client has already gone."""
        try:
            self.finish()
        except StreamClosedError:
            pass

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()


class NotFoundHandler(ApiHandler):
    """Unknown routes: JSON 404, as dockerd answers."""

    def prepare(self) -> None:
        raise errors.NotFound("page not found")
