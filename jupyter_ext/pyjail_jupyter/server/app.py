"""``PyjailExtensionApp``: mounts the sidebar's REST/WebSocket API on a Jupyter server.

An ``ExtensionApp`` (not the bare load function) so the server calls ``stop_extension``
on shutdown and the daemon connection and its threads are released.
"""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from .config import PyjailJupyterConfig
from .gateway import DaemonGateway
from .handlers import HANDLERS, SETTINGS_KEY
from .storage import STORAGE_HANDLERS


class PyjailExtensionApp(ExtensionApp):
    """The ``pyjail_jupyter.server`` extension; options are on ``PyjailJupyterConfig``."""

    name = "pyjail_jupyter"
    load_other_extensions = True
    classes = [PyjailJupyterConfig]

    gateway: DaemonGateway | None = None

    def initialize_settings(self) -> None:
        config = PyjailJupyterConfig(parent=self.serverapp, config=self.serverapp.config)
        self.gateway = DaemonGateway(config)
        self.settings[SETTINGS_KEY] = self.gateway
        self.log.info("pyjail: daemon %s%s", self.gateway.host,
                      " (read-only)" if config.read_only else "")

    def initialize_handlers(self) -> None:
        self.handlers.extend(STORAGE_HANDLERS + HANDLERS)

    async def stop_extension(self) -> None:
        if self.gateway is not None:
            self.gateway.close()
