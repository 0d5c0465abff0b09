"""Client errors: each one is a single line a user can act on.

The front ends show ``str(exc)`` and nothing else (no traceback): the magic raises it
as an IPython ``UsageError``, the CLI prints it and exits 1. docker-py's exceptions are
turned into these in one place, ``from_docker``.
"""

from __future__ import annotations


class ClientError(Exception):
    """Root of everything the client reports to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    @property
    def message(self) -> str:
        return str(self)


class DaemonUnavailable(ClientError, ConnectionError):
    """No daemon answers at the address."""


class NotFound(ClientError, LookupError):
    """The daemon has no such container, image, volume or backup."""


class Conflict(ClientError):
    """The request clashes with the object's state (name in use, running, ...)."""


class BadRequest(ClientError, ValueError):
    """The daemon rejected the input."""


class NotSupported(ClientError):
    """A pyjail-only feature asked of a daemon that does not have it."""


class ServerError(ClientError):
    """The daemon failed (HTTP 5xx)."""


def one_line(text: str) -> str:
    """Collapse whitespace so a message never spans lines."""
    return " ".join(str(text).split())


def _status_class(status: int | None) -> type[ClientError]:
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status in (400, 422):
        return BadRequest
    if status == 501:
        return NotSupported
    return ServerError if status and status >= 500 else ClientError


def for_status(status: int | None, message: str) -> ClientError:
    return _status_class(status)(message)


def from_docker(exc: BaseException, host: str = "") -> ClientError:
    """docker-py's exception → ours, with the daemon's own message when there is one."""
    from docker import errors as derr
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, derr.APIError):
        status = exc.status_code
        message = exc.explanation or str(exc)
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        if status in (404, 405, 501) and (status != 404 or message == "page not found"):
            request = getattr(exc.response, "request", None)
            what = f"{request.method} {_path(request.url)}" if request is not None else "this"
            return NotSupported(f"the daemon{' at ' + host if host else ''} does not implement "
                                f"{what} (HTTP {status})")
        return for_status(status, message)
    if isinstance(exc, derr.BuildError):
        return ClientError(f"build failed: {exc.msg}")
    if isinstance(exc, derr.DockerException):
        return ClientError(str(exc))
    return ClientError(f"{type(exc).__name__}: {exc}")


def _path(url: str) -> str:
    """``http+docker://localhost/v1.44/images/json?x=1`` → ``/images/json``."""
    from urllib.parse import urlsplit
    path = urlsplit(url).path
    parts = path.split("/", 2)
    if len(parts) == 3 and parts[1].startswith("v") and parts[1][1:2].isdigit():
        path = "/" + parts[2]
    return path
