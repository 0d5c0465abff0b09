"""Container networking: bridge networks, published ports, embedded DNS, the network API."""

from .manager import NetworkManager
from .store import Forbidden, NetworkNotFound

__all__ = ["Forbidden", "NetworkManager", "NetworkNotFound"]
