"""pyjail's client side: talks to a daemon (pyjaild, dockerd or podman), never to the engine.

The names below load on first use, so ``pyjail --help`` (which needs only the grammar)
does not pay for the rest. Listings come back as ``Table``s with fixed columns:

========  ====================================================================================
ps        id, name, image, command, created (UTC), state, status, ports, labels, size_rw
images    repository, tag, id, created (UTC), size
volumes   name, driver, mountpoint, scope, created (UTC), labels
stats     id, name, cpu_percent, mem_usage, mem_limit, mem_percent, net_rx, net_tx,
          block_read, block_write, pids, read (UTC)
top       the ``ps`` titles in lower case (uid, pid, ppid, c, stime, tty, time, cmd)
history   id, created (UTC), created_by, size, comment, tags
df        type, total, active, size, reclaimable
events    time (UTC), type, action, id, name, attributes
backups   id, name, container, image, created (UTC), size
schedule  id, target, when, keep, max_age (seconds), mode, runs, next_run (UTC), last_error
inspect   field, value; indexed by the inspected object's name
prune     type, deleted, space_reclaimed, ids
========  ====================================================================================
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "Client": "connection", "Session": "commands", "execute": "commands",
    "RunResult": "runner", "Table": "tables", "Frontend": "ui",
    "build_parser": "grammar", "GrammarError": "grammar", "resolve_host": "hosts",
    "ping": "hosts", "DEFAULT_HOST": "hosts", "ClientError": "errors",
    "DaemonUnavailable": "errors", "NotFound": "errors", "NotSupported": "errors",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'pyjail.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
