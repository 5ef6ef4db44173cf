"""Maintenance and inspection operations over a whole repository (PyIceberg-style facades)."""

# icechunk 2.x's names under this module name (``icechunk.ops``).
from pyicechunk.ops_log import Update, UpdateType
from pyicechunk.types import GCSummary

__all__ = ["GCSummary", "Update", "UpdateType"]
