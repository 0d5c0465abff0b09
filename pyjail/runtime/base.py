"""What every runtime (built-in, runc, crun) offers the supervisor."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .. import errors


@dataclass
class Spawned:
    """A process that has been forked; ``errfd`` reaches EOF once it has exec'd."""

    pid: int
    errfd: int | None = None


def raise_child_error(raw: bytes) -> None:
    """Turn the child's one-line report into the matching pyjail error."""
    try:
        report = json.loads(raw.decode(errors="replace"))
        kind, message = report.get("kind", "RuntimeFailure"), report.get("message", "")
    except ValueError:
        kind, message = "RuntimeFailure", raw.decode(errors="replace").strip()
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.PyjailError)):
        cls = errors.RuntimeFailure
    raise cls(message)


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class Runtime(ABC):
    name: str

    @abstractmethod
    def spawn(self, container_id: str, spec: dict, bundle: str,
              stdio: tuple[int, int, int]) -> Spawned:
        """Fork the container's first process; it is a child (or adopted orphan) of the caller."""

    @abstractmethod
    def spawn_exec(self, container_id: str, spec: dict, init_pid: int,
                   stdio: tuple[int, int, int]) -> Spawned:
        """Start one more process inside a running container with its confinement."""

    def finish_spawn(self, spawned: Spawned) -> None:
        """Block until the process has exec'd; raise the child's error if it failed."""
        if spawned.errfd is None:
            return
        try:
            raw = read_all(spawned.errfd)
        finally:
            os.close(spawned.errfd)
            spawned.errfd = None
        if raw:
            raise_child_error(raw)

    def after_exit(self, container_id: str, bundle: str) -> None:  # noqa: B027 - optional hook
        """Release what the runtime holds for a container once its PID 1 is gone."""

    def pause(self, container_id: str) -> None:
        raise NotImplementedError

    def resume(self, container_id: str) -> None:
        raise NotImplementedError
