"""Named network namespaces and the one thread that talks netlink.

Why a dedicated thread: a network namespace is a property of a *thread* on Linux, so
one thread can ``unshare(CLONE_NEWNET)``, bind-mount ``/proc/thread-self/ns/net`` to a
path (the named netns the container joins), configure the inside, and ``setns`` back —
no forked helper, which costs far more in a large Python process (pyroute2's own netns
helpers fork). The same thread owns the host-side pyroute2 ``IPRoute`` (pyroute2 0.9
keeps its socket per thread, so sharing one across the daemon's thread pool would open
a socket per thread). Every request runs serialised on this thread.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..runtime import syscalls as sc

log = logging.getLogger("pyjail.network")

NETNS_DIR = "/run/pyjail/netns"
T = TypeVar("T")


class NetlinkWorker:
    """Runs callables on one long-lived thread that holds the host ``IPRoute``."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.ipr: Any = None
        self._host_fd = -1
        self._host_ns = ""
        self._thread = threading.Thread(target=self._main, daemon=True, name="pyjail-netlink")
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            from pyroute2 import IPRoute
            self._host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            self._host_ns = os.readlink("/proc/thread-self/ns/net")
            self.ipr = IPRoute()
        except BaseException as exc:  # noqa: BLE001 - reported to the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            item = self._queue.get()
            if item is None:
                break
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(self))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)
            finally:
                self._check_home()
        try:
            self.ipr.close()
        finally:
            os.close(self._host_fd)

    def _check_home(self) -> None:
        """Never leave the worker in a container's namespace, whatever happened."""
        if os.readlink("/proc/thread-self/ns/net") != self._host_ns:
            sc.setns(self._host_fd, sc.CLONE_NEWNET)

    def call(self, fn: Callable[[NetlinkWorker], T], timeout: float = 30.0) -> T:
        """Run ``fn(worker)`` on the worker thread and return its result (or raise)."""
        if threading.current_thread() is self._thread:
            return fn(self)
        if not self._thread.is_alive():
            raise RuntimeError("the netlink worker has stopped (engine closed)")
        future: Future = Future()
        self._queue.put((fn, future))
        return future.result(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(10)

    # -- inside the worker thread ---------------------------------------------------------
    def enter(self, path: str) -> None:
        """setns this thread into the named netns at ``path`` (leave with :meth:`leave`)."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNET)
        finally:
            os.close(fd)

    def leave(self) -> None:
        sc.setns(self._host_fd, sc.CLONE_NEWNET)

    def create_netns(self, path: str) -> None:
        """A fresh netns bind-mounted at ``path``; the thread stays inside it."""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
        os.close(fd)
        try:
            sc.unshare(sc.CLONE_NEWNET)
            sc.mount("/proc/thread-self/ns/net", path, None, sc.MS_BIND)
        except BaseException:
            self.leave()
            _unlink(path)
            raise

    def ns_ipr(self) -> Any:
        """An IPRoute bound to the namespace the thread is in now (close it before leaving)."""
        from pyroute2 import IPRoute
        return IPRoute()

    @staticmethod
    def ns_udp_socket(address: tuple[str, int]) -> socket.socket:
        """A UDP socket bound inside the namespace the thread is in now."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock


def netns_path(container_id: str) -> str:
    return f"{NETNS_DIR}/{container_id}"


def remove_netns(path: str) -> None:
    """Detach and delete a named netns (the kernel frees it with its last user)."""
    try:
        sc.umount(path, sc.MNT_DETACH)
    except OSError:
        pass
    _unlink(path)


def is_mounted_netns(path: str) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
