"""Docker API answers → table rows. Pure functions: no I/O, no pandas.

The schemas here are the documented columns of every listing (README of the client:
``pyjail/client/__init__.py``). Column names are snake_case; times are UTC datetimes,
sizes and counts int64, percentages float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .tables import Column, Table, to_utc

PS = (Column("id", short_id=True, title="CONTAINER ID"), Column("name", title="NAMES"),
      Column("image"), Column("command"), Column("created", "time"), Column("state"),
      Column("status"), Column("ports"), Column("labels", "obj"), Column("size_rw", "int"))
IMAGES = (Column("repository"), Column("tag"), Column("id", short_id=True, title="IMAGE ID"),
          Column("created", "time"), Column("size", "int"))
VOLUMES = (Column("name", title="VOLUME NAME"), Column("driver"), Column("mountpoint"),
           Column("scope"), Column("created", "time"), Column("labels", "obj"))
STATS = (Column("id", short_id=True, title="CONTAINER ID"), Column("name"),
         Column("cpu_percent", "float", "CPU %"), Column("mem_usage", "int", "MEM USAGE"),
         Column("mem_limit", "int", "LIMIT"), Column("mem_percent", "float", "MEM %"),
         Column("net_rx", "int", "NET RX"), Column("net_tx", "int", "NET TX"),
         Column("block_read", "int", "BLOCK READ"), Column("block_write", "int", "BLOCK WRITE"),
         Column("pids", "int"), Column("read", "time", "TIME"))
TOP_DEFAULT = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")
TOP_INT = {"pid", "ppid"}
HISTORY = (Column("id", short_id=True, title="IMAGE"), Column("created", "time"),
           Column("created_by"), Column("size", "int"), Column("comment"),
           Column("tags", "obj"))
DF = (Column("type"), Column("total", "int"), Column("active", "int"), Column("size", "int"),
      Column("reclaimable", "int"))
EVENTS = (Column("time", "time"), Column("type"), Column("action"),
          Column("id", short_id=True, title="ID"), Column("name"), Column("attributes", "obj"))
# a backup id is its file name: 12 characters of it would not name it, so never truncated
BACKUPS = (Column("id", title="BACKUP ID"), Column("name"),
           Column("container"), Column("image"), Column("created", "time"),
           Column("size", "int"))
INSPECT = (Column("object"), Column("field"), Column("value", "obj"))


def ps_rows(entries: Iterable[dict[str, Any]]) -> Table:
    rows = []
    for e in entries:
        names = e.get("Names") or []
        rows.append({
            "id": e.get("Id", ""), "name": (names[0] if names else "").lstrip("/"),
            "image": e.get("Image", ""), "command": e.get("Command", ""),
            "created": to_utc(e.get("Created")), "state": e.get("State", ""),
            "status": e.get("Status", ""), "ports": format_ports(e.get("Ports") or []),
            "labels": dict(e.get("Labels") or {}), "size_rw": e.get("SizeRw") or 0})
    return Table(PS, rows)


def format_ports(ports: list[dict[str, Any]]) -> str:
    """``0.0.0.0:8080->80/tcp, 53/udp`` as docker ps prints them."""
    out = []
    for p in sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("PublicPort", 0))):
        private = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        if p.get("PublicPort"):
            out.append(f"{p.get('IP') or '0.0.0.0'}:{p['PublicPort']}->{private}")
        else:
            out.append(private)
    return ", ".join(dict.fromkeys(out))


def images_rows(entries: Iterable[dict[str, Any]]) -> Table:
    rows = []
    for e in entries:
        tags = [t for t in e.get("RepoTags") or [] if t != "<none>:<none>"] or ["<none>:<none>"]
        for ref in tags:
            repo, _, tag = ref.rpartition(":")
            if "/" in tag:  # a registry port, not a tag
                repo, tag = ref, "<none>"
            rows.append({"repository": repo, "tag": tag, "id": e.get("Id", ""),
                         "created": to_utc(e.get("Created")), "size": e.get("Size") or 0})
    return Table(IMAGES, rows)


def volumes_rows(entries: Iterable[dict[str, Any]]) -> Table:
    rows = [{"name": v.get("Name", ""), "driver": v.get("Driver", ""),
             "mountpoint": v.get("Mountpoint", ""), "scope": v.get("Scope", ""),
             "created": to_utc(v.get("CreatedAt")), "labels": dict(v.get("Labels") or {})}
            for v in entries]
    return Table(VOLUMES, rows)


def stats_row(sample: dict[str, Any], container_id: str = "", name: str = "") -> dict[str, Any]:
    """One stats sample → docker stats' figures (CPU % from the precpu delta)."""
    cpu = sample.get("cpu_stats") or {}
    pre = sample.get("precpu_stats") or {}
    cpu_delta = ((cpu.get("cpu_usage") or {}).get("total_usage", 0)
                 - (pre.get("cpu_usage") or {}).get("total_usage", 0))
    sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage")
                                         or []) or 1
    cpu_percent = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = sample.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    # docker stats subtracts the page cache: total_inactive_file (v1) or inactive_file (v2)
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
    usage = max(0, (mem.get("usage") or 0) - cache)
    limit = mem.get("limit") or 0
    rx = tx = 0
    for net in (sample.get("networks") or {}).values():
        rx += net.get("rx_bytes", 0)
        tx += net.get("tx_bytes", 0)
    read = write = 0
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return {"id": sample.get("id") or container_id,
            "name": (sample.get("name") or name).lstrip("/"),
            "cpu_percent": round(cpu_percent, 3), "mem_usage": usage, "mem_limit": limit,
            "mem_percent": round(usage / limit * 100.0, 3) if limit else 0.0,
            "net_rx": rx, "net_tx": tx, "block_read": read, "block_write": write,
            "pids": (sample.get("pids_stats") or {}).get("current", 0) or 0,
            "read": to_utc(sample.get("read"))}


def stats_rows(samples: Iterable[dict[str, Any]]) -> Table:
    return Table(STATS, [stats_row(s) for s in samples])


def top_rows(answer: dict[str, Any] | None) -> Table:
    titles = list((answer or {}).get("Titles") or TOP_DEFAULT)
    names = [t.lower().replace(" ", "_").replace("%", "pct") for t in titles]
    cols = [Column(n, "int" if n in TOP_INT else "str", title=t)
            for n, t in zip(names, titles, strict=True)]
    rows = [dict(zip(names, proc, strict=False)) for proc in (answer or {}).get("Processes") or []]
    return Table(cols, rows)


def history_rows(entries: Iterable[dict[str, Any]]) -> Table:
    rows = [{"id": h.get("Id", ""), "created": to_utc(h.get("Created")),
             "created_by": h.get("CreatedBy", ""), "size": h.get("Size") or 0,
             "comment": h.get("Comment", ""), "tags": list(h.get("Tags") or [])}
            for h in entries]
    return Table(HISTORY, rows)


def df_rows(usage: dict[str, Any]) -> Table:
    """``docker system df``'s four lines."""
    images = usage.get("Images") or []
    containers = usage.get("Containers") or []
    volumes = usage.get("Volumes") or []
    cache = usage.get("BuildCache") or []
    image_size = usage.get("LayersSize") or sum(i.get("Size", 0) for i in images)
    used_images = sum(i.get("Size", 0) for i in images if (i.get("Containers") or 0) > 0)
    running = [c for c in containers if c.get("State") == "running"]
    c_size = sum(c.get("SizeRw") or 0 for c in containers)
    vol_sizes = [((v.get("UsageData") or {}).get("Size") or 0,
                  (v.get("UsageData") or {}).get("RefCount") or 0) for v in volumes]
    rows = [
        {"type": "Images", "total": len(images),
         "active": sum(1 for i in images if (i.get("Containers") or 0) > 0),
         "size": image_size, "reclaimable": max(0, image_size - used_images)},
        {"type": "Containers", "total": len(containers), "active": len(running),
         "size": c_size, "reclaimable": c_size - sum(c.get("SizeRw") or 0 for c in running)},
        {"type": "Local Volumes", "total": len(volumes),
         "active": sum(1 for _, refs in vol_sizes if refs > 0),
         "size": sum(max(s, 0) for s, _ in vol_sizes),
         "reclaimable": sum(max(s, 0) for s, refs in vol_sizes if refs == 0)},
        {"type": "Build Cache", "total": len(cache),
         "active": sum(1 for b in cache if b.get("InUse")),
         "size": sum(b.get("Size", 0) for b in cache),
         "reclaimable": sum(b.get("Size", 0) for b in cache if not b.get("InUse"))},
    ]
    return Table(DF, rows)


def event_row(e: dict[str, Any]) -> dict[str, Any]:
    actor = e.get("Actor") or {}
    attrs = dict(actor.get("Attributes") or {})
    when = e.get("timeNano") or e.get("time")
    return {"time": to_utc(when), "type": e.get("Type", ""), "action": e.get("Action", ""),
            "id": actor.get("ID", ""), "name": attrs.get("name", ""), "attributes": attrs}


def events_rows(events: Iterable[dict[str, Any]]) -> Table:
    return Table(EVENTS, [event_row(e) for e in events])


def backups_rows(entries: Iterable[dict[str, Any]]) -> Table:
    rows = [{"id": b.get("Id", ""), "name": b.get("Name", ""),
             "container": b.get("Container", ""), "image": b.get("Image", ""),
             "created": to_utc(b.get("Created")), "size": b.get("Size") or 0}
            for b in entries]
    return Table(BACKUPS, rows)


def flatten(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested JSON → (``State.Health.Status``, value) pairs; list items get their index."""
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list) and obj and any(isinstance(v, dict | list) for v in obj):
        for i, value in enumerate(obj):
            yield from flatten(value, f"{prefix}.{i}")
    else:
        yield prefix, obj


def inspect_rows(objects: Iterable[tuple[str, dict[str, Any]]]) -> Table:
    rows = [{"object": name, "field": key, "value": value}
            for name, info in objects for key, value in flatten(info)]
    table = Table(INSPECT, rows)
    table.index = "object"
    return table
