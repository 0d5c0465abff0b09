"""What every handler needs, made once at startup: the engine, executors, the event bridge."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyjail.engine import Engine

    from .eventbridge import EventBridge
    from .streams import ClientStream

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"


class ThreadPerCallExecutor(Executor):
    """A daemon thread per call, for calls that block until something happens.

    ``wait`` and log/event following can block for hours; in a bounded pool they would
    starve the short calls, and pool threads are joined at interpreter exit, which would
    hang the daemon's shutdown. Daemon threads cost ~50 µs to start and die with us.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, daemon=True, name="pyjaild-blocking").start()
        return future


@dataclass
class DaemonContext:
    """Shared by all handlers (passed through ``initialize``)."""

    engine: Engine
    events: EventBridge
    data_root: str
    pool: Executor = field(default_factory=lambda: ThreadPoolExecutor(
        max_workers=16, thread_name_prefix="pyjaild-engine"))
    blocking: Executor = field(default_factory=ThreadPerCallExecutor)
    hijacked: set[ClientStream] = field(default_factory=set)
    started_at: float = field(default_factory=time.time)
    debug: bool = False
    security_options: list[str] = field(default_factory=list)
