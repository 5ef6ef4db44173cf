"""pyicechunk: a pure-Python implementation of Icechunk."""

from pyicechunk.exceptions import ConflictError, IcechunkError, RebaseFailedError

__version__ = "0.1.0"

__all__ = ["ConflictError", "IcechunkError", "RebaseFailedError", "__version__"]
