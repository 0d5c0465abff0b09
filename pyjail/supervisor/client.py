"""Talking to the supervisor: one short connection per request, streams for attach/exec."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from .. import errors


def _raise_reply(reply: dict) -> None:
    cls = getattr(errors, reply.get("kind", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.PyjailError)):
        cls = errors.RuntimeFailure
    raise cls(reply.get("message", "supervisor error"))


class SupervisorClient:
    def __init__(self, run_dir: str, log_file: str | None = None) -> None:
        self.run_dir = run_dir
        self.sock_path = os.path.join(run_dir, "supervisor.sock")
        self.log_file = log_file

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.sock_path)
        except OSError as exc:
            sock.close()
            raise errors.SupervisorUnavailable(
                f"cannot reach the pyjail supervisor at {self.sock_path}: {exc.strerror}") from None
        return sock

    @staticmethod
    def _read_reply(sock: socket.socket, buf: bytearray) -> dict:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise errors.SupervisorUnavailable("the supervisor closed the connection")
            buf += chunk
        line, _, rest = bytes(buf).partition(b"\n")
        buf[:] = rest
        reply = json.loads(line)
        if not reply.get("ok"):
            _raise_reply(reply)
        return reply

    def request(self, op: str, **fields: object) -> dict:
        sock = self._connect()
        try:
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            return self._read_reply(sock, bytearray())
        finally:
            sock.close()

    def open_stream(self, op: str, **fields: object) -> tuple[socket.socket, dict, bytes]:
        """Send a request whose connection becomes a stream; returns (socket, reply, early bytes).

        For ``exec`` the supervisor sends its start reply after the process exec'd; output
        may already be queued behind it, hence the early bytes.
        """
        sock = self._connect()
        try:
            sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            buf = bytearray()
            reply = self._read_reply(sock, buf)
            return sock, reply, bytes(buf)
        except BaseException:
            sock.close()
            raise

    def alive(self) -> bool:
        try:
            self.request("ping")
            return True
        except (errors.SupervisorUnavailable, OSError):
            return False

    def ensure_running(self, timeout: float = 10.0) -> None:
        if self.alive():
            return
        os.makedirs(self.run_dir, 0o700, exist_ok=True)
        cmd = [sys.executable, "-m", "pyjail.supervisor", "--run-dir", self.run_dir]
        if self.log_file:
            cmd += ["--log-file", self.log_file]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive():
                return
            time.sleep(0.01)
        raise errors.SupervisorUnavailable(f"the supervisor did not come up in {self.run_dir}")
