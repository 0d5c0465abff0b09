"""One exception hierarchy for the engine, the daemon and the clients.

Each class names the HTTP status the daemon answers with, so the mapping from
engine failure to API error lives in exactly one place (``PyjailError.status``).
"""

from __future__ import annotations


class PyjailError(Exception):
    """Root of every error pyjail raises on purpose."""

    status = 500

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(message, *args)
        self.message = message or self.__class__.__name__

    def __str__(self) -> str:
        return self.message


class InvalidArgument(PyjailError, ValueError):
    """Bad input from the user: rejected before anything is created."""

    status = 400


class NotFound(PyjailError, LookupError):
    """A named object (container, image, volume, exec, network) does not exist."""

    status = 404


class ContainerNotFound(NotFound):
    pass


class ImageNotFound(NotFound):
    pass


class VolumeNotFound(NotFound):
    pass


class ExecNotFound(NotFound):
    pass


class Conflict(PyjailError):
    """The request clashes with current state (name in use, container running, ...)."""

    status = 409


class NotModified(PyjailError):
    """Nothing to do (start of a running container, stop of a stopped one)."""

    status = 304


class RuntimeFailure(PyjailError):
    """The container runtime could not set up or execute the process."""

    status = 500


class ExecutableNotFound(RuntimeFailure):
    """The command is missing in the container; Docker maps this to exit status 127."""

    status = 400
    exit_code = 127


class PermissionDenied(RuntimeFailure):
    """The command exists but cannot be executed; Docker maps this to exit status 126."""

    status = 400
    exit_code = 126


class UnsafePath(InvalidArgument):
    """A path in an archive or copy would escape its root (``..``, absolute, symlink)."""


class SupervisorUnavailable(PyjailError):
    """The per-host supervisor that holds the containers cannot be reached."""

    status = 503
