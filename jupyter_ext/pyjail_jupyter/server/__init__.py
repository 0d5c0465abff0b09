"""pyjail's Jupyter server extension: the REST/WebSocket API behind the JupyterLab sidebar.

Enabled by ``jupyter_server_config.d/pyjail_jupyter.json`` (installed with the wheel) or
``jupyter server --ServerApp.jpserver_extensions="{'pyjail_jupyter.server': True}"``.
"""

from __future__ import annotations

from typing import Any

from .app import PyjailExtensionApp
from .config import PyjailJupyterConfig


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "pyjail_jupyter.server", "app": PyjailExtensionApp}]


__all__ = ["PyjailExtensionApp", "PyjailJupyterConfig", "_jupyter_server_extension_points"]
