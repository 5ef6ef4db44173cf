"""Everything a writable session changed and has not committed.

The change set is plain data (nodes by path, updates and chunk writes by node id), applied over
the session's base snapshot by :mod:`pyicechunk.session`. It also knows how to describe itself
as a transaction log, which is what diff, status and rebase are built from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from pyicechunk.format.manifest import ChunkPayload
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.format.zarr_metadata import ArrayMeta

__all__ = ["ChangeSet"]

Coords = tuple[int, ...]


@dataclass
class ChangeSet:
    """Uncommitted changes of one session."""

    new_groups: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    """path -> (node id, zarr.json bytes)"""
    new_arrays: dict[str, tuple[bytes, ArrayMeta]] = field(default_factory=dict)
    """path -> (node id, metadata)"""
    updated_groups: dict[bytes, bytes] = field(default_factory=dict)
    """node id -> new zarr.json bytes, for groups of the base snapshot"""
    updated_arrays: dict[bytes, ArrayMeta] = field(default_factory=dict)
    """node id -> new metadata, for arrays of the base snapshot"""
    chunks: dict[bytes, dict[Coords, ChunkPayload | None]] = field(default_factory=dict)
    """node id -> coordinates -> payload, or None for a deleted chunk"""
    deleted_groups: dict[str, bytes] = field(default_factory=dict)
    """path -> node id, for groups of the base snapshot"""
    deleted_arrays: dict[str, bytes] = field(default_factory=dict)
    """path -> node id, for arrays of the base snapshot"""
    touched: bool = False
    """Set by any write, even one later undone (the reference's has_uncommitted_changes)."""

    def is_empty(self) -> bool:
        return not (
            self.new_groups
            or self.new_arrays
            or self.updated_groups
            or self.updated_arrays
            or self.chunks
            or self.deleted_groups
            or self.deleted_arrays
        )

    def new_node(self, path: str) -> tuple[bytes, bytes | ArrayMeta] | None:
        hit = self.new_arrays.get(path)
        if hit is not None:
            return hit
        return self.new_groups.get(path)

    def is_deleted(self, path: str, node_id: bytes) -> bool:
        return self.deleted_arrays.get(path) == node_id or self.deleted_groups.get(path) == node_id

    def set_chunk(self, node_id: bytes, coords: Coords, payload: ChunkPayload | None) -> None:
        self.touched = True
        per_node = self.chunks.get(node_id)
        if per_node is None:
            per_node = self.chunks[node_id] = {}
        per_node[coords] = payload

    def forget_node(self, node_id: bytes) -> None:
        self.chunks.pop(node_id, None)
        self.updated_arrays.pop(node_id, None)
        self.updated_groups.pop(node_id, None)

    def coords_array(self, node_id: bytes) -> np.ndarray:
        """The coordinates of every chunk written or deleted in an array, as (n, ndim) u32."""
        return _coords_array(self.chunks.get(node_id, {}))

    def to_transaction_log(
        self, snapshot_id: bytes, coords: Mapping[bytes, np.ndarray] | None = None
    ) -> TransactionLog:
        """These changes as a transaction log (``coords``: precomputed :meth:`coords_array`)."""
        known = coords or {}
        return TransactionLog(
            id=snapshot_id,
            new_groups=[nid for nid, _ in self.new_groups.values()],
            new_arrays=[nid for nid, _ in self.new_arrays.values()],
            deleted_groups=list(self.deleted_groups.values()),
            deleted_arrays=list(self.deleted_arrays.values()),
            updated_arrays=list(self.updated_arrays),
            updated_groups=list(self.updated_groups),
            updated_chunks={
                nid: known[nid] if nid in known else _coords_array(c)
                for nid, c in self.chunks.items()
            },
        )

    def copy(self) -> ChangeSet:
        """An independent copy (the payloads, which are immutable, are shared)."""
        return ChangeSet(
            new_groups=dict(self.new_groups),
            new_arrays=dict(self.new_arrays),
            updated_groups=dict(self.updated_groups),
            updated_arrays=dict(self.updated_arrays),
            chunks={nid: dict(c) for nid, c in self.chunks.items()},
            deleted_groups=dict(self.deleted_groups),
            deleted_arrays=dict(self.deleted_arrays),
            touched=self.touched,
        )

    def merge(self, other: ChangeSet) -> None:
        """Apply ``other``'s changes on top of these (``other`` wins where both wrote)."""
        self.touched = self.touched or other.touched
        for path, nid in other.deleted_groups.items():
            self.deleted_groups[path] = nid
        for path, nid in other.deleted_arrays.items():
            self.deleted_arrays[path] = nid
        self.new_groups.update(other.new_groups)
        self.new_arrays.update(other.new_arrays)
        self.updated_groups.update(other.updated_groups)
        self.updated_arrays.update(other.updated_arrays)
        for nid, chunks in other.chunks.items():
            self.chunks.setdefault(nid, {}).update(chunks)


def _coords_array(coords: Iterable[Coords]) -> np.ndarray:
    rows = list(coords)
    if not rows:
        return np.zeros((0, 0), dtype=np.uint32)
    ndim = len(rows[0])
    if ndim == 0:
        return np.zeros((len(rows), 0), dtype=np.uint32)
    return np.array(rows, dtype=np.uint32).reshape(len(rows), ndim)
