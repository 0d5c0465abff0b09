"""``docker ps``: list entries and the ``filters`` Docker accepts."""

from __future__ import annotations

import time

from ..errors import InvalidArgument
from ..filters import labels_match
from ..supervisor.logfile import parse_rfc3339_nano
from .model import Container

VALID_FILTERS = {"id", "name", "label", "status", "exited", "ancestor", "before", "since",
                 "health", "volume", "network", "is-task", "publish", "expose", "isolation"}
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def human_duration(seconds: float) -> str:
    """The docker CLI's go-units HumanDuration wording."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def status_text(c: Container) -> str:
    st = c.state
    now = time.time()
    if st["Running"]:
        started = parse_rfc3339_nano(st["StartedAt"]) / 1e9
        text = f"Up {human_duration(now - started)}"
        if st["Paused"]:
            text += " (Paused)"
        elif c.health:
            text += f" ({c.health['Status']})" if c.health["Status"] != "starting" else \
                " (health: starting)"
        return text
    if st["Restarting"]:
        finished = parse_rfc3339_nano(st["FinishedAt"]) / 1e9
        return f"Restarting ({st['ExitCode']}) {human_duration(now - finished)} ago"
    if st["removing"]:
        return "Removal In Progress"
    if st["StartedAt"].startswith("0001"):
        return "Created"
    finished = parse_rfc3339_nano(st["FinishedAt"]) / 1e9
    return f"Exited ({st['ExitCode']}) {human_duration(now - finished)} ago"


def list_entry(engine, c: Container, size: bool = False) -> dict:
    cmd = " ".join([c.record.get("Path", "")] + c.record.get("Args", [])).strip()
    entry = {
        "Id": c.id, "Names": [c.name], "Image": c.config.get("Image", ""),
        "ImageID": c.record["Image"], "Command": cmd,
        "Created": parse_rfc3339_nano(c.record["Created"]) // 1_000_000_000,
        "Ports": [], "Labels": c.config.get("Labels") or {}, "State": c.status,
        "Status": status_text(c), "HostConfig": {"NetworkMode": c.host.get("NetworkMode")},
        "NetworkSettings": {"Networks": engine._network_settings(c)["Networks"]},
        "Mounts": [{k: v for k, v in m.items() if k != "Anonymous"}
                   for m in c.record.get("Mounts", [])],
    }
    if size:
        entry["SizeRw"] = _dir_size(c.dir / "diff")
        entry["SizeRootFs"] = entry["SizeRw"]
    return entry


def _dir_size(path) -> int:
    """Exact bytes on disk (symlinks counted, hardlinks once): pyjail.storage.usage."""
    from pyjail.storage.usage import tree_size
    return tree_size(path)


def _values(filters: dict, key: str) -> list[str]:
    raw = filters.get(key)
    if raw is None:
        return []
    if isinstance(raw, dict):  # Docker's legacy {"key": {"value": true}}
        return [k for k, v in raw.items() if v]
    if isinstance(raw, str):
        return [raw]
    return list(raw)


def matches(engine, c: Container, filters: dict, containers: list[Container]) -> bool:
    for key in filters:
        if key not in VALID_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
    for value in _values(filters, "id"):
        if not c.id.startswith(value):
            return False
    names = _values(filters, "name")
    if names and not any(n.lstrip("/") in c.name.lstrip("/") for n in names):
        return False
    if not labels_match(c.config.get("Labels") or {}, {"label": _values(filters, "label")}):
        return False
    statuses = _values(filters, "status")
    for s in statuses:
        if s not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={s}'")
    if statuses and c.status not in statuses:
        return False
    exited = _values(filters, "exited")
    if exited and (c.running or c.status != "exited"
                   or str(c.state["ExitCode"]) not in exited):
        return False
    ancestors = _values(filters, "ancestor")
    if ancestors:
        ok = False
        for a in ancestors:
            try:
                img = engine.images.resolve(a)
            except Exception:  # noqa: BLE001 - an unknown image matches nothing
                continue
            if img.id == c.record["Image"]:
                ok = True
        if not ok:
            return False
    created = c.record["Created"]
    for value in _values(filters, "before"):
        other = engine.containers.get(value)
        if created >= other.record["Created"]:
            return False
    for value in _values(filters, "since"):
        other = engine.containers.get(value)
        if created <= other.record["Created"]:
            return False
    health = _values(filters, "health")
    if health:
        current = c.health["Status"] if c.health else "none"
        if current not in health:
            return False
    volumes = _values(filters, "volume")
    if volumes and not any(m.get("Name") in volumes or m.get("Destination") in volumes
                           for m in c.record.get("Mounts", [])):
        return False
    networks = _values(filters, "network")
    if networks and c.host.get("NetworkMode") not in networks:
        return False
    return True
