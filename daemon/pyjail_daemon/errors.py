"""The daemon's one error path: every failure becomes JSON ``{"message": ...}``.

The status comes from the exception: ``pyjail.errors.PyjailError.status`` for engine
errors (the single mapping the engine defines), ``HTTPError.status_code`` for what
Tornado raises itself (405, malformed requests), 500 for anything unexpected — and
only those unexpected ones are logged with a traceback.
"""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler

from pyjail import errors

log = logging.getLogger("pyjaild.api")

# Statuses that must not carry a body (HTTP forbids it, Tornado asserts it).
_BODYLESS = (204, 304)


def status_and_message(exc: BaseException | None, default_status: int = 500,
                       default_reason: str = "") -> tuple[int, str]:
    """What the client sees for ``exc``: (HTTP status, message)."""
    if isinstance(exc, errors.PyjailError):
        return exc.status, exc.message
    if isinstance(exc, HTTPError):
        return exc.status_code, exc.log_message or exc.reason or default_reason
    if exc is None:
        return default_status, default_reason
    return 500, f"{type(exc).__name__}: {exc}"


def write_error(handler: RequestHandler, status_code: int, **kwargs: Any) -> None:
    """Tornado's ``write_error`` hook for every handler: JSON body, status from the exception."""
    exc_info = kwargs.get("exc_info")
    exc = exc_info[1] if exc_info else None
    status, message = status_and_message(exc, status_code, handler._reason)
    handler.set_status(status)
    if status in _BODYLESS:
        handler.finish()
        return
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps({"message": message}) + "\n")


def log_exception(handler: RequestHandler, typ: type[BaseException] | None,
                  value: BaseException | None, tb: TracebackType | None) -> None:
    """Expected errors (4xx, engine errors) at debug level; real faults with a traceback."""
    request = handler.request
    if isinstance(value, StreamClosedError):
        log.debug("%s %s: the client went away", request.method, request.uri)
        return
    status, message = status_and_message(value)
    if status < 500:
        log.debug("%s %s: %d %s", request.method, request.uri, status, message)
    elif isinstance(value, (errors.PyjailError, HTTPError)):
        log.error("%s %s: %d %s", request.method, request.uri, status, message)
    else:
        log.error("%s %s failed", request.method, request.uri, exc_info=(typ, value, tb))
