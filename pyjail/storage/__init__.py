"""Where a data root lives: moving it (``migrate``) and the checks around that."""

from .migrate import migrate

__all__ = ["migrate"]
