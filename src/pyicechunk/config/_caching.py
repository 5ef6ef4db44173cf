"""Sizes of the in-memory caches of a repository."""

from __future__ import annotations

from ._checks import _opt_uint
from ._record import _DefaultConstructor, _field, _Record


class CachingConfig(_DefaultConstructor, _Record):
    """Sizes of the in-memory caches.

    Parameters
    ----------
    num_snapshot_nodes
        Snapshot nodes to cache; effective default 500_000.
    num_chunk_refs
        Chunk references to cache; effective default 15_000_000.
    num_transaction_changes
        Transaction-log changes to cache; effective default 0.
    num_bytes_attributes
        Attribute bytes to cache; effective default 0.
    num_bytes_chunks
        Chunk bytes to cache; effective default 0.
    """

    num_snapshot_nodes: int | None = _field(_opt_uint(64), default=None, effective=500_000)
    num_chunk_refs: int | None = _field(_opt_uint(64), default=None, effective=15_000_000)
    num_transaction_changes: int | None = _field(_opt_uint(64), default=None, effective=0)
    num_bytes_attributes: int | None = _field(_opt_uint(64), default=None, effective=0)
    num_bytes_chunks: int | None = _field(_opt_uint(64), default=None, effective=0)
