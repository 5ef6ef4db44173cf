"""Version information to paste into bug reports."""

from __future__ import annotations

import platform
from importlib import import_module

from pyicechunk._version import __version__

__all__ = ["print_debug_info"]

# Libraries whose versions matter when pyicechunk misbehaves; each is shown only if importable.
_RELATED = ("zarr", "numcodecs", "xarray", "virtualizarr")


def print_debug_info() -> None:
    """Print the platform and the versions of Python, pyicechunk and related libraries.

    One ``name:  version`` line each (two spaces after the colon, as icechunk prints them):
    platform, python and pyicechunk, then zarr, numcodecs, xarray and virtualizarr for those
    that can be imported.
    """
    print(f"platform:  {platform.platform()}")
    print(f"python:  {platform.python_version()}")
    print(f"pyicechunk:  {__version__}")
    for name in _RELATED:
        try:
            module = import_module(name)
        except ImportError:
            continue
        print(f"{name}:  {getattr(module, '__version__', 'unknown')}")
