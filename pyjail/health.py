"""Health checks (Docker's HEALTHCHECK semantics) and auto-heal, which Docker lacks.

One scheduler thread keeps a heap of due probes; each probe is an exec in the container,
run on a small pool so a slow probe never delays another container's. A container
labelled ``pyjail.autoheal=true`` (or every container, by engine option) that turns
unhealthy is restarted, at most ``budget`` times per ``window`` seconds, with an event
that says why.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import errors
from .containers.model import Container
from .supervisor.logfile import rfc3339_nano

log = logging.getLogger("pyjail.health")

NS = 1_000_000_000
DEFAULT_INTERVAL = 30 * NS
DEFAULT_TIMEOUT = 30 * NS
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
AUTOHEAL_LABEL = "pyjail.autoheal"


def effective_healthcheck(c: Container) -> dict | None:
    hc = c.config.get("Healthcheck") or (c.record.get("ImageConfig") or {}).get("Healthcheck")
    if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
        return None
    image_hc = (c.record.get("ImageConfig") or {}).get("Healthcheck") or {}
    merged = {**image_hc, **{k: v for k, v in hc.items() if v}}
    return merged


def probe_command(test: list[str]) -> list[str]:
    kind = test[0]
    if kind == "CMD":
        return list(test[1:])
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return list(test)  # a bare command list, as some clients send


class HealthMonitor:
    def __init__(self, engine, autoheal_all: bool = False, budget: int = 3,
                 window: float = 300.0) -> None:
        self.engine = engine
        self.autoheal_all = autoheal_all
        self.budget = budget
        self.window = window
        self.heap: list[tuple[float, int, str, str]] = []
        self.seq = 0
        self.cond = threading.Condition()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pyjail-health")
        self.heal_history: dict[str, list[float]] = {}
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name="pyjail-health")
        self.thread.start()

    # -- hooks from the container manager -----------------------------------------------------
    def container_started(self, c: Container, resume: bool = False) -> None:
        """Begin probing a started container; ``resume`` keeps the status a restarted
        daemon read back from disk instead of going back to "starting"."""
        hc = effective_healthcheck(c)
        if hc is None:
            c.health = None
            return
        if resume and c.health:
            self._schedule(c, (hc.get("Interval") or DEFAULT_INTERVAL) / NS)
            return
        c.health = {"Status": "starting", "FailingStreak": 0, "Log": []}
        start_interval = hc.get("StartInterval") or hc.get("Interval") or DEFAULT_INTERVAL
        first = start_interval if hc.get("StartPeriod") else (hc.get("Interval") or DEFAULT_INTERVAL)
        self._schedule(c, first / NS)

    def _schedule(self, c: Container, delay: float) -> None:
        with self.cond:
            self.seq += 1
            heapq.heappush(self.heap, (time.monotonic() + delay, self.seq, c.id,
                                       c.state["start_id"]))
            self.cond.notify()

    def _loop(self) -> None:
        while not self.closed:
            with self.cond:
                while not self.closed and (not self.heap or self.heap[0][0] > time.monotonic()):
                    timeout = self.heap[0][0] - time.monotonic() if self.heap else None
                    self.cond.wait(timeout)
                if self.closed:
                    return
                _, _, cid, start_id = heapq.heappop(self.heap)
            self.pool.submit(self._probe, cid, start_id)

    def close(self) -> None:
        self.closed = True
        with self.cond:
            self.cond.notify_all()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- one probe ----------------------------------------------------------------------------
    def _probe(self, cid: str, start_id: str) -> None:
        try:
            c = self.engine.containers.get(cid)
        except errors.NotFound:
            return
        if not c.running or c.state["start_id"] != start_id:
            return
        hc = effective_healthcheck(c)
        if hc is None:
            return
        if c.state["Paused"]:
            self._schedule(c, (hc.get("Interval") or DEFAULT_INTERVAL) / NS)
            return
        timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / NS
        started = rfc3339_nano()
        code, output = self._run_probe(c, probe_command(hc["Test"]), timeout)
        if not c.running or c.state["start_id"] != start_id:
            return
        self._record(c, hc, started, code, output)
        interval = hc.get("Interval") or DEFAULT_INTERVAL
        if c.health and c.health["Status"] == "starting" and hc.get("StartInterval"):
            interval = hc["StartInterval"]
        self._schedule(c, interval / NS)

    def _run_probe(self, c: Container, cmd: list[str], timeout: float) -> tuple[int, str]:
        try:
            exec_id = self.engine.execs.create(c.id, {"Cmd": cmd, "AttachStdout": True,
                                                      "AttachStderr": True})
            result = self.engine.execs.start(exec_id)
        except errors.PyjailError as exc:
            return -1, str(exc)
        assert result is not None
        sock, _tty, early = result
        sock.settimeout(timeout)
        data = bytearray(early)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        finally:
            sock.close()
        code = self.engine.execs.wait(exec_id, max(0.0, deadline - time.monotonic()) + 0.5)
        if code is None:
            try:
                self.engine.supervisor.request("kill", id=exec_id, signal=9)
            except errors.PyjailError:
                pass
            return -1, f"Health check exceeded timeout ({timeout:g}s)"
        return code, _demux_text(bytes(data))[:MAX_OUTPUT]

    def _record(self, c: Container, hc: dict, started: str, code: int, output: str) -> None:
        retries = hc.get("Retries") or DEFAULT_RETRIES
        in_start_period = False
        if hc.get("StartPeriod"):
            from .supervisor.logfile import parse_rfc3339_nano
            age = time.time_ns() - parse_rfc3339_nano(c.state["StartedAt"])
            in_start_period = age < hc["StartPeriod"]
        with c.lock:
            health = dict(c.health or {"Status": "starting", "FailingStreak": 0, "Log": []})
            old_status = health["Status"]
            entry = {"Start": started, "End": rfc3339_nano(), "ExitCode": code, "Output": output}
            health["Log"] = (health["Log"] + [entry])[-MAX_LOG_ENTRIES:]
            if code == 0:
                health.update(Status="healthy", FailingStreak=0)
            elif not (in_start_period and old_status == "starting"):
                health["FailingStreak"] += 1
                if health["FailingStreak"] >= retries:
                    health["Status"] = "unhealthy"
            c.health = health
            c.state["Health"] = health
            c.save_state()
        if health["Status"] != old_status:
            self.engine._emit("container", f"health_status: {health['Status']}", c)
            if health["Status"] == "unhealthy" and self._autoheal_wanted(c):
                self._heal(c)

    # -- auto-heal ----------------------------------------------------------------------------
    def _autoheal_wanted(self, c: Container) -> bool:
        labels = dict((c.record.get("ImageConfig") or {}).get("Labels") or {})
        labels.update(c.config.get("Labels") or {})
        value = str(labels.get(AUTOHEAL_LABEL, "")).lower()
        return value in ("true", "1", "yes") or (self.autoheal_all and value != "false")

    def _heal(self, c: Container) -> None:
        now = time.monotonic()
        history = [t for t in self.heal_history.get(c.id, []) if now - t < self.window]
        if len(history) >= self.budget:
            self.engine._emit("container", "autoheal_exhausted", c,
                              reason=f"unhealthy; restart budget of {self.budget} per "
                                     f"{self.window:g}s used up")
            self.heal_history[c.id] = history
            return
        history.append(now)
        self.heal_history[c.id] = history
        last = (c.health or {}).get("Log") or [{}]
        reason = (f"unhealthy after {c.health['FailingStreak']} failed checks; last exit code "
                  f"{last[-1].get('ExitCode')}")
        self.engine._emit("container", "autoheal", c, reason=reason,
                          attempt=str(len(history)))
        self.pool.submit(self._restart, c.id)

    def _restart(self, cid: str) -> None:
        try:
            self.engine.containers.restart(cid, timeout=10)
        except errors.PyjailError as exc:
            log.warning("auto-heal restart of %s failed: %s", cid[:12], exc)


def _demux_text(data: bytes) -> str:
    out = bytearray()
    while len(data) >= 8 and data[0] in (1, 2) and data[1:4] == b"\0\0\0":
        size = int.from_bytes(data[4:8], "big")
        out += data[8:8 + size]
        data = data[8 + size:]
    out += data
    return out.decode("utf-8", errors="replace")
