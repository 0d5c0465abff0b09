"""A container record on disk: its configuration and its state, each written atomically.

``config.json`` changes rarely (create, rename); ``state.json`` on every transition. The
supervisor writes ``run.json`` and ``exit.json`` next to them; those are the truth about
the process and win over ``state.json`` when the daemon restarts after a crash.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..fsutil import atomic_write_json, read_json

ZERO_TIME = "0001-01-01T00:00:00Z"


def empty_state() -> dict:
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
            "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
            # internal, not shown in inspect:
            "start_id": "", "manually_stopped": False, "restart_count": 0, "removing": False}


PUBLIC_STATE_KEYS = ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                     "ExitCode", "Error", "StartedAt", "FinishedAt")


class Container:
    def __init__(self, directory: Path, record: dict, state: dict | None = None) -> None:
        self.dir = directory
        self.record = record
        self.state = state or empty_state()
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.exit_seq = 0          # bumped at every exit, for wait(condition=next-exit)
        self.removed = False
        self.health: dict | None = self.state.get("Health")

    # -- identity ---------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record["Id"]

    @property
    def name(self) -> str:
        return self.record["Name"]

    @property
    def config(self) -> dict:
        return self.record["Config"]

    @property
    def host(self) -> dict:
        return self.record["HostConfig"]

    @property
    def running(self) -> bool:
        return self.state["Running"]

    @property
    def status(self) -> str:
        return self.state["Status"]

    @property
    def log_path(self) -> str:
        return str(self.dir / f"{self.id}-json.log")

    # -- persistence ------------------------------------------------------------------------
    def save_record(self) -> None:
        atomic_write_json(self.dir / "config.json", self.record)

    def save_state(self) -> None:
        atomic_write_json(self.dir / "state.json", self.state)

    @classmethod
    def load(cls, directory: Path) -> Container:
        record = read_json(directory / "config.json")
        try:
            state = {**empty_state(), **read_json(directory / "state.json")}
        except FileNotFoundError:
            state = empty_state()
        return cls(directory, record, state)

    def read_supervisor_file(self, name: str) -> dict | None:
        try:
            return read_json(self.dir / name)
        except (FileNotFoundError, ValueError):
            return None

    def public_state(self) -> dict:
        out = {k: self.state[k] for k in PUBLIC_STATE_KEYS}
        if self.health is not None:
            out["Health"] = self.health
        return out
