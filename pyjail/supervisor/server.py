"""The supervisor: one small long-lived process that holds every container of a data root.

Why one process and not a shim per container: a shim costs megabytes per container;
here a container costs a few file descriptors and a dict. The supervisor is the
parent (and child subreaper) of every container's PID 1, so it reaps them and learns
their true exit status; it pumps their stdout/stderr into json-file logs; and it keeps
running when the API daemon dies, so containers, logs and exit codes survive a
``kill -9`` of the daemon. Exit records are written atomically before anyone is told.

Protocol: JSON lines over a unix socket. A request gets one JSON reply; ``attach``,
``exec`` and ``subscribe`` then turn the connection into a byte or event stream.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import selectors
import signal
import socket
import struct
import time
import uuid
from collections.abc import Callable

from .. import errors
from ..fsutil import atomic_write_json, read_json
from ..runtime import syscalls as sc
from ..runtime.base import Runtime, Spawned, raise_child_error
from .logfile import JsonFileLog, rfc3339_nano

log = logging.getLogger("pyjail.supervisor")

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
DRAIN_AFTER_EXIT = 2.0
MAX_OUTBUF = 8 * 1024 * 1024


def frame(stream: int, data: bytes) -> bytes:
    """Docker's 8-byte header for multiplexed (non-TTY) attach streams."""
    return struct.pack(">BxxxL", stream, len(data)) + data


class Conn:
    """A client connection: JSON-line requests, or a stream after attach/exec/subscribe."""

    def __init__(self, sup: Supervisor, sock: socket.socket) -> None:
        self.sup = sup
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.mode = "request"
        self.box: Box | None = None
        self.stdin = False
        self.streams: set[int] = set()
        self.closing = False
        self.closed = False
        self.read_open = True
        self.pending_request: dict = {}
        self.held: bytearray | None = None
        self.pending_stdin = bytearray()
        self.pending_eof = False
        self._events = selectors.EVENT_READ
        sock.setblocking(False)
        sup.sel.register(sock, selectors.EVENT_READ, self)

    def _update_interest(self) -> None:
        if self.closed:
            return
        events = (selectors.EVENT_READ if self.read_open else 0) | (
            selectors.EVENT_WRITE if self.outbuf else 0)
        if events == self._events:
            return
        if self._events and events:
            self.sup.sel.modify(self.sock, events, self)
        elif events:
            self.sup.sel.register(self.sock, events, self)
        else:
            self.sup.sel.unregister(self.sock)
        self._events = events

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.held is not None:
            self.held += data  # output that raced ahead of the start reply
            return
        if len(self.outbuf) > MAX_OUTBUF:
            log.warning("dropping a slow attach client")
            self.close()
            return
        self.outbuf += data
        self._flush()

    def send_json(self, obj: dict) -> None:
        self.send(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def release(self, reply: dict) -> None:
        """Send the start reply, then whatever output was held back behind it."""
        held, self.held = self.held, None
        self.send_json(reply)
        if held:
            self.send(bytes(held))

    def _flush(self) -> None:
        while self.outbuf:
            try:
                n = self.sock.send(self.outbuf)
            except BlockingIOError:
                break
            except OSError:
                self.close()
                return
            del self.outbuf[:n]
        self._update_interest()
        if self.closing and not self.outbuf:
            self.close()

    def finish(self) -> None:
        """Close once everything queued has been sent."""
        self.closing = True
        if not self.outbuf:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._events:
            self.sup.sel.unregister(self.sock)
        self._events = 0
        self.sock.close()
        if self.box is not None and self in self.box.attached:
            self.box.attached.remove(self)
        if self in self.sup.subscribers:
            self.sup.subscribers.remove(self)

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if self.mode == "request":
                if not data:
                    self.close()
                    return
                self.inbuf += data
                while b"\n" in self.inbuf and self.mode == "request":
                    line, self.inbuf = self.inbuf.split(b"\n", 1)
                    self.sup.handle_request(self, line)
            elif self.mode == "stream":
                self._stdin_data(data)
            elif not data:
                self.close()

    def _stdin_data(self, data: bytes) -> None:
        box = self.box
        if box is None and self.pending_request:
            # Attached before the start (docker run -i): keep stdin until there is a process.
            if data:
                self.pending_stdin += data
            else:
                self.pending_eof = True
                self.read_open = False
                self._update_interest()  # a half-close: output must still reach it
            return
        if not data:
            # The client half-closed: end the process's stdin if it was attached with it.
            self.read_open = False
            self._update_interest()
            if box is not None and self.stdin and box.stdin_once:
                box.close_stdin()
            return
        if box is not None and self.stdin:
            box.write_stdin(data)


class Box:
    """One supervised process (a container's PID 1 or an exec) and its I/O."""

    def __init__(self, sup: Supervisor, kind: str, box_id: str, tty: bool) -> None:
        self.sup = sup
        self.kind = kind
        self.id = box_id
        self.tty = tty
        self.pid = 0
        self.start_id = uuid.uuid4().hex
        self.outputs: dict[int, int] = {}        # fd -> stream id
        self.stdin_fd: int | None = None
        self.stdin_once = False
        self.stdin_pending = bytearray()
        self.attached: list[Conn] = []
        self.log: JsonFileLog | None = None
        self.status: int | None = None
        self.start_pending = True
        self.finished = False
        self.dir = ""
        self.spec: dict = {}
        self.bundle = ""
        self.runtime: Runtime | None = None
        self.container_id = box_id
        self.on_started: Callable[[Exception | None], None] | None = None
        self.exit_code: int | None = None
        self.started_at = ""
        self.stdin_closing = False
        self.failed_start: Exception | None = None
        self.console: socket.socket | None = None
        self.console_child = -1

    def add_output(self, fd: int, stream: int) -> None:
        os.set_blocking(fd, False)
        self.outputs[fd] = stream
        self.sup.sel.register(fd, selectors.EVENT_READ, self)

    def on_event(self, mask: int, fd: int) -> None:
        stream = self.outputs.get(fd)
        if stream is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's last holder closed it
        if not data:
            self._close_output(fd)
            return
        self._deliver(stream, data)

    def _deliver(self, stream: int, data: bytes) -> None:
        if self.log is not None:
            self.log.write("stdout" if stream == 1 else "stderr", data)
        for conn in list(self.attached):
            if stream in conn.streams:
                conn.send(data if self.tty else frame(stream, data))

    def _close_output(self, fd: int) -> None:
        self.outputs.pop(fd, None)
        try:
            self.sup.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)
        self.maybe_finish()

    def drain_outputs(self) -> None:
        """Read what is left and close: a process that leaked our pipes must not hold us up."""
        for fd in list(self.outputs):
            stream = self.outputs[fd]
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                self._deliver(stream, data)
            self._close_output(fd)

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is None:
            return
        self.stdin_pending += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        while self.stdin_pending and self.stdin_fd is not None:
            try:
                n = os.write(self.stdin_fd, self.stdin_pending)
            except BlockingIOError:
                self.sup.add_timer(0.01, self._flush_stdin)
                return
            except OSError:
                self.stdin_pending.clear()
                return
            del self.stdin_pending[:n]
        if self.stdin_closing and not self.stdin_pending:
            self._really_close_stdin()

    def close_stdin(self) -> None:
        self.stdin_closing = True
        if not self.stdin_pending:
            self._really_close_stdin()

    def _really_close_stdin(self) -> None:
        if self.stdin_fd is not None and not self.tty:
            os.close(self.stdin_fd)
            self.stdin_fd = None

    def reaped(self, status: int) -> None:
        self.status = status
        if self.outputs:
            self.sup.add_timer(DRAIN_AFTER_EXIT, self.drain_outputs)
        self.maybe_finish()

    def maybe_finish(self) -> None:
        if self.finished or self.status is None or self.outputs or self.start_pending:
            return
        self.finished = True
        self.sup.finish_box(self)


class Supervisor:
    def __init__(self, run_dir: str, runtimes: dict[str, Callable[[], Runtime]]) -> None:
        self.run_dir = run_dir
        os.makedirs(run_dir, 0o700, exist_ok=True)
        self.sock_path = os.path.join(run_dir, "supervisor.sock")
        self.sel = selectors.DefaultSelector()
        self.boxes: dict[str, Box] = {}          # container id or exec id -> box
        self.by_pid: dict[int, Box] = {}
        self.subscribers: list[Conn] = []
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._runtime_factories = runtimes
        self._runtimes: dict[str, Runtime] = {}
        self.exec_results: dict[str, dict] = {}
        self.pending_attach: dict[str, list[Conn]] = {}
        self.running = True

    # -- plumbing ---------------------------------------------------------------------------
    def runtime(self, name: str) -> Runtime:
        if name not in self._runtimes:
            factory = self._runtime_factories.get(name)
            if factory is None:
                raise errors.InvalidArgument(f"unknown runtime: {name}")
            self._runtimes[name] = factory()
        return self._runtimes[name]

    def add_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self._timer_seq, callback))

    def listen(self) -> None:
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self.listener.bind(self.sock_path)
        finally:
            os.umask(old)
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listener")
        self.sig_r, self.sig_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.set_wakeup_fd(self.sig_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.sel.register(self.sig_r, selectors.EVENT_READ, "signal")
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)

    def serve_forever(self) -> None:
        while self.running or self.by_pid:
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            for key, mask in self.sel.select(timeout):
                data = key.data
                if data == "listener":
                    self._accept()
                elif data == "signal":
                    try:
                        while os.read(self.sig_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()
                elif isinstance(data, Conn):
                    data.on_event(mask)
                elif isinstance(data, Box):
                    data.on_event(mask, key.fd)
                elif callable(data):
                    data(key.fd)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, callback = heapq.heappop(self.timers)
                callback()
            if not self.running and not self.by_pid:
                break
        try:
            os.unlink(self.sock_path)
            os.rmdir(self.run_dir)   # ours, and empty now: nothing of this root stays in /run
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            Conn(self, sock)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            box = self.by_pid.pop(pid, None)
            if box is not None:
                box.reaped(status)

    # -- requests ---------------------------------------------------------------------------
    def handle_request(self, conn: Conn, line: bytes) -> None:
        try:
            req = json.loads(line)
            op = req.get("op")
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise errors.InvalidArgument(f"unknown supervisor op: {op!r}")
            result = handler(conn, req)
            if result is not None:
                conn.send_json({"ok": True, **result})
        except Exception as exc:  # noqa: BLE001 - every failure is reported, the loop goes on
            conn.send_json(_error_reply(exc))

    def op_ping(self, conn: Conn, req: dict) -> dict:
        return {"pid": os.getpid(), "containers": len([b for b in self.boxes.values()
                                                        if b.kind == "container"])}

    def op_list(self, conn: Conn, req: dict) -> dict:
        return {"containers": {b.id: {"pid": b.pid, "start_id": b.start_id}
                               for b in self.boxes.values() if b.kind == "container"}}

    def op_shutdown(self, conn: Conn, req: dict) -> dict:
        if any(b.kind == "container" for b in self.boxes.values()) and not req.get("force"):
            raise errors.Conflict("containers are still running")
        self.running = False
        return {}

    def op_subscribe(self, conn: Conn, req: dict) -> None:
        conn.mode = "events"
        self.subscribers.append(conn)
        conn.send_json({"ok": True})

    def op_start(self, conn: Conn, req: dict) -> None:
        cid = req["id"]
        if cid in self.boxes:
            raise errors.Conflict(f"container {cid} is already running")
        spec = req.get("spec") or read_json(os.path.join(req["bundle"], "config.json"))
        runtime = self.runtime(req.get("runtime") or "builtin")
        box = Box(self, "container", cid, bool(req.get("tty")))
        box.dir = req["dir"]
        box.spec = spec
        box.bundle = req.get("bundle", "")
        box.runtime = runtime
        box.stdin_once = bool(req.get("stdin_once"))
        child_fds, box_fds = self._make_stdio(box, bool(req.get("open_stdin")))
        waiting_conns = [w for w in self.pending_attach.pop(cid, []) if not w.closed]
        for waiting in waiting_conns:
            self._attach(waiting, box, waiting.pending_request)
        box.log = JsonFileLog(req["log"]) if req.get("log") else None
        try:
            spawned = runtime.spawn(cid, spec, box.bundle, child_fds,
                                    **self._console_kwargs(box))
        except Exception:
            for fd in set(child_fds) | set(box_fds):
                _close_quietly(fd)
            if box.log:
                box.log.close()
            for waiting in waiting_conns:
                waiting.finish()
            raise
        finally:
            for fd in set(child_fds):
                _close_quietly(fd)
        box.pid = spawned.pid
        self.boxes[cid] = box
        self.by_pid[spawned.pid] = box
        box_fds.update(self._receive_console(box))
        for fd, stream in box_fds.items():
            box.add_output(fd, stream)
        for waiting in waiting_conns:
            if waiting.pending_stdin:
                box.write_stdin(bytes(waiting.pending_stdin))
                waiting.pending_stdin.clear()
            if waiting.pending_eof and waiting.stdin and box.stdin_once:
                box.close_stdin()
        self._await_exec(box, spawned, lambda exc: self._started(conn, box, exc))

    def _make_stdio(self, box: Box, open_stdin: bool) -> tuple[tuple[int, int, int], dict[int, int]]:
        """Pipes (or a pty) for the process; returns (child's stdin/out/err, our readable fds)."""
        if box.tty and getattr(box.runtime, "supports_console", False):
            # The child makes the pty in the container's devpts and sends us the master.
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            box.console = ours
            box.console_child = theirs.detach()
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            return (null, null, null), {}
        if box.tty:
            master, slave = os.openpty()
            os.set_inheritable(master, False)
            box.stdin_fd = os.dup(master)
            os.set_blocking(box.stdin_fd, False)
            return (slave, slave, slave), {master: 1}
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        if open_stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(in_w, False)
            box.stdin_fd = in_w
        else:
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        return (in_r, out_w, err_w), {out_r: 1, err_r: 2}

    @staticmethod
    def _console_kwargs(box: Box) -> dict:
        return {"console": box.console_child} if box.console is not None else {}

    def _receive_console(self, box: Box) -> dict[int, int]:
        """The pty master from the child (a short blocking wait: it comes before execve)."""
        if box.console is None:
            return {}
        _close_quietly(box.console_child)
        sock, box.console = box.console, None
        sock.settimeout(10)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(sock, 16, 1)
        except OSError:
            fds = []
        finally:
            sock.close()
        if not fds:
            return {}  # the child failed before it got there; its error pipe says why
        master = fds[0]
        os.set_inheritable(master, False)
        box.stdin_fd = os.dup(master)
        os.set_blocking(box.stdin_fd, False)
        return {master: 1}

    def _await_exec(self, box: Box, spawned: Spawned, done: Callable[[Exception | None], None]) -> None:
        """Wait, without blocking the loop, until the child exec'd (EOF) or reported an error."""
        if spawned.errfd is None:
            box.start_pending = False
            done(None)
            return
        chunks: list[bytes] = []

        def readable(fd: int) -> None:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if data:
                chunks.append(data)
                return
            self.sel.unregister(fd)
            os.close(fd)
            error: Exception | None = None
            if chunks:
                try:
                    raise_child_error(b"".join(chunks))
                except Exception as exc:  # noqa: BLE001
                    error = exc
            box.start_pending = False
            done(error)
            box.maybe_finish()

        os.set_blocking(spawned.errfd, False)
        self.sel.register(spawned.errfd, selectors.EVENT_READ, readable)

    def _started(self, conn: Conn, box: Box, error: Exception | None) -> None:
        if error is not None:
            box.failed_start = error
            conn.send_json(_error_reply(error))
            return
        box.started_at = rfc3339_nano()
        atomic_write_json(os.path.join(box.dir, "run.json"), {
            "start_id": box.start_id, "pid": box.pid, "started_at": box.started_at,
            "runtime": box.runtime.name if box.runtime else "builtin",
            "supervisor_pid": os.getpid(),
        })
        conn.send_json({"ok": True, "pid": box.pid, "start_id": box.start_id,
                        "started_at": box.started_at})

    def finish_box(self, box: Box) -> None:
        status = box.status or 0
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code
        failed = box.failed_start
        if failed is not None:
            code = getattr(failed, "exit_code", 127 if isinstance(failed, errors.ExecutableNotFound)
                           else 128)
        box.exit_code = code
        if box.stdin_fd is not None:
            _close_quietly(box.stdin_fd)
            box.stdin_fd = None
        self.boxes.pop(box.id, None)
        if box.kind == "container":
            oom = False
            if box.log is not None:
                box.log.close()
            try:
                oom = self._cleanup_container(box)
            except Exception:  # noqa: BLE001
                log.exception("cleanup of %s failed", box.id)
            record = {"start_id": box.start_id, "pid": box.pid, "exit_code": code,
                      "oom_killed": oom, "finished_at": rfc3339_nano(),
                      "started_at": box.started_at,
                      "error": str(failed) if failed is not None else ""}
            if failed is None:
                atomic_write_json(os.path.join(box.dir, "exit.json"), record)
            event = {"type": "exit", "id": box.id, **record}
        else:
            record = {"exit_code": code, "container": box.container_id}
            self.exec_results[box.id] = record
            event = {"type": "exec_exit", "id": box.id, **record}
        # Subscribers first: a client that inspects right after its stream ends must
        # already find the exit code.
        for sub in list(self.subscribers):
            sub.send_json(event)
        for conn in list(box.attached):
            conn.finish()

    def _cleanup_container(self, box: Box) -> bool:
        from ..runtime.cgroups import manager_for
        oom = False
        cg_path = box.spec.get("linux", {}).get("cgroupsPath")
        if cg_path:
            manager = manager_for(cg_path)
            try:
                oom = manager.oom_kill_count() > 0
            except OSError:
                pass
            manager.destroy()
        if box.runtime is not None:
            box.runtime.after_exit(box.id, box.bundle)
        return oom

    def op_kill(self, conn: Conn, req: dict) -> dict:
        box = self.boxes.get(req["id"])
        if box is None or box.status is not None:
            raise errors.Conflict(f"container {req['id']} is not running")
        sig = int(req.get("signal", signal.SIGKILL))
        if req.get("all"):
            from ..runtime.cgroups import manager_for
            cg_path = box.spec.get("linux", {}).get("cgroupsPath")
            if cg_path:
                manager_for(cg_path).kill_all(sig)
                return {}
        os.kill(box.pid, sig)
        return {}

    def op_attach(self, conn: Conn, req: dict) -> None:
        box = self.boxes.get(req["id"])
        if box is None and req.get("wait"):
            # docker run attaches before it starts the container: hold the client until
            # the start, so not a byte of early output is missed.
            conn.mode = "stream"
            conn.pending_request = req
            self.pending_attach.setdefault(req["id"], []).append(conn)
            conn.send_json({"ok": True, "pending": True})
            return
        if box is None:
            raise errors.Conflict(f"container {req['id']} is not running")
        self._attach(conn, box, req)
        conn.send_json({"ok": True, "tty": box.tty})

    def _attach(self, conn: Conn, box: Box, req: dict) -> None:
        conn.mode = "stream"
        conn.box = box
        conn.stdin = bool(req.get("stdin"))
        conn.streams = {s for s, flag in ((1, req.get("stdout", True)), (2, req.get("stderr", True)))
                        if flag}
        box.attached.append(conn)

    def op_resize(self, conn: Conn, req: dict) -> dict:
        box = self.boxes.get(req["id"])
        if box is None or not box.tty or box.stdin_fd is None:
            raise errors.Conflict(f"{req['id']} has no terminal to resize")
        import fcntl
        import termios
        fcntl.ioctl(box.stdin_fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", int(req.get("h", 24)), int(req.get("w", 80)), 0, 0))
        return {}

    def op_exec(self, conn: Conn, req: dict) -> None:
        container = self.boxes.get(req["container"])
        if container is None or container.kind != "container" or container.status is not None:
            raise errors.Conflict(f"container {req['container']} is not running")
        spec = dict(container.spec)
        # An exec inherits its container's confinement; the request overrides only what
        # docker exec can change (args, env, cwd, tty, user, privileged capabilities).
        spec["process"] = {**container.spec["process"], **req["process"]}
        if req.get("user") is not None:
            from ..runtime.process import ANNOTATION_USER
            spec["annotations"] = {**(spec.get("annotations") or {}), ANNOTATION_USER: req["user"]}
        box = Box(self, "exec", req["id"], bool(spec["process"].get("terminal")))
        box.container_id = container.id
        box.runtime = container.runtime
        box.stdin_once = True
        child_fds, box_fds = self._make_stdio(box, bool(req.get("stdin")))
        try:
            spawned = container.runtime.spawn_exec(container.id, spec, container.pid, child_fds,
                                                   **self._console_kwargs(box))
        except Exception:
            for fd in set(box_fds) | ({box.stdin_fd} if box.stdin_fd is not None else set()):
                _close_quietly(fd)
            raise
        finally:
            for fd in set(child_fds):
                _close_quietly(fd)
        box.pid = spawned.pid
        self.boxes[box.id] = box
        self.by_pid[spawned.pid] = box
        box_fds.update(self._receive_console(box))
        if not req.get("detach"):
            conn.held = bytearray()
            self._attach(conn, box, {"stdin": req.get("stdin"), "stdout": True, "stderr": True})
        for fd, stream in box_fds.items():
            box.add_output(fd, stream)

        def started(error: Exception | None) -> None:
            if error is not None:
                box.failed_start = error
                conn.held = None
                conn.send_json(_error_reply(error))
                if not req.get("detach"):
                    conn.mode = "request"
                    if conn in box.attached:
                        box.attached.remove(conn)
                return
            conn.release({"ok": True, "pid": box.pid, "tty": box.tty})

        self._await_exec(box, spawned, started)

    def op_exec_result(self, conn: Conn, req: dict) -> dict:
        box = self.boxes.get(req["id"])
        if box is not None:
            return {"running": True, "pid": box.pid}
        result = self.exec_results.get(req["id"])
        if result is None:
            raise errors.ExecNotFound(f"no such exec: {req['id']}")
        return {"running": False, **result}


def _error_reply(exc: Exception) -> dict:
    if isinstance(exc, errors.PyjailError):
        return {"ok": False, "kind": type(exc).__name__, "message": exc.message}
    log.exception("supervisor request failed")
    return {"ok": False, "kind": "RuntimeFailure", "message": f"{type(exc).__name__}: {exc}"}


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
