"""pyjail: a container engine for Linux written in Python."""

from .errors import (
                     Conflict,
                     ContainerNotFound,
                     ImageNotFound,
                     InvalidArgument,
                     NotFound,
                     PyjailError,
)

__all__ = ["Conflict", "ContainerNotFound", "ImageNotFound", "InvalidArgument", "NotFound",
           "PyjailError", "__version__"]
__version__ = "0.1.0"
