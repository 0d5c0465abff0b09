"""What an administrator can set for the sidebar's server side (``c.PyjailJupyterConfig.*``).

Traitlets, so the options live in ``jupyter_server_config.py`` / ``.json`` next to the
server's own and ``--PyjailJupyterConfig.read_only=True`` works on the command line.
"""

from __future__ import annotations

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import Configurable

DESTRUCTIVE_ACTIONS = frozenset({"stop", "restart", "kill", "remove", "prune", "restore"})
CONTAINER_ACTIONS = ("start", "stop", "restart", "pause", "unpause", "kill")


class PyjailJupyterConfig(Configurable):
    """How the Jupyter server reaches the pyjail daemon, and what it lets a browser do."""

    host = Unicode(
        None, allow_none=True, config=True,
        help="Daemon address (unix:///path or tcp://host:port). Unset: the client's "
             "discovery, i.e. $PYJAIL_HOST, then $DOCKER_HOST, then "
             "unix:///run/pyjail/pyjail.sock.",
    )
    read_only = Bool(
        False, config=True,
        help="Refuse (HTTP 403) and advertise as unavailable the destructive actions: "
             "stop, restart, kill, remove, prune and restore. Listing, inspecting, "
             "starting, pausing and streaming stay allowed.",
    )
    timeout = Float(
        60.0, config=True,
        help="Seconds to wait for the daemon on one REST call before giving up.",
    )
    max_workers = Int(
        4, config=True,
        help="Threads that run daemon calls off the server's event loop (REST calls only; "
             "each open log, stats or events WebSocket has a thread of its own).",
    )

    def allows(self, action: str) -> bool:
        """Whether ``action`` may run under the current ``read_only`` setting."""
        return not (self.read_only and action in DESTRUCTIVE_ACTIONS)
