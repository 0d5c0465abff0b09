"""pyjail in IPython and Jupyter: ``%load_ext pyjail_jupyter`` adds ``%container``,
``%%container`` and ``%%containerfile``."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from .magics import ContainerMagics
    ipython.register_magics(ContainerMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond what IPython does; kept so %reload_ext works."""


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
