"""Finding the conflicts between a session's change set and one commit that landed before it.

As in icechunk 1.1, node paths of new-node and deletion checks are looked up in the branch tip,
and paths of conflicting node ids in the snapshot the change set is currently based on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id

if TYPE_CHECKING:
    from pyicechunk.change_set import ChangeSet
    from pyicechunk.format.snapshot import Snapshot
    from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.conflicts.conflict import Conflict, ConflictType, Coords

__all__ = ["detect_conflicts"]


def detect_conflicts(
    previous_change: TransactionLog,
    tip: Snapshot,
    changes: ChangeSet,
    current: Snapshot,
) -> list[Conflict]:
    """Every conflict between ``changes`` and one landed commit, in the reference's order.

    Parameters
    ----------
    previous_change
        The landed commit's transaction log.
    tip
        The branch tip (where new nodes and deleted paths are looked up).
    changes
        The session's change set.
    current
        The snapshot ``changes`` is based on (where conflicting node ids get their paths).

    Returns
    -------
    list of Conflict
        Empty when the change set applies cleanly over the commit.

    Raises
    ------
    IcechunkError
        If a conflicting node id has no path in ``current`` (a damaged change set).
    """
    out: list[Conflict] = []
    deleted_paths = set(changes.deleted_groups) | set(changes.deleted_arrays)
    new_paths = sorted([*changes.new_groups, *changes.new_arrays])

    for path in new_paths:
        if path not in deleted_paths and tip.get_node(path) is not None:
            out.append(Conflict._make(ConflictType.NewNodeConflictsWithExistingNode, path))
    for path in new_paths:
        parent = _closest_array_ancestor(tip, path)
        if parent is not None:
            out.append(Conflict._make(ConflictType.NewNodeInInvalidGroup, parent))

    paths = {node.id: node.path for node in current.nodes}

    def path_of(node_id: bytes) -> str:
        path = paths.get(node_id)
        if path is None:
            raise IcechunkError(
                f"rebase failed: node {node_id.hex()} changed by this session has "
                f"no path in snapshot {encode_id(current.id)}; the session's changes are damaged",
                kind="conflicting-path-not-found",
            )
        return path

    def by_id(kind: ConflictType, ours: Iterable[bytes], theirs: Iterable[bytes]) -> None:
        landed = set(theirs)
        hits = [(path_of(nid), nid) for nid in ours if nid in landed]
        for path, nid in sorted(hits):
            out.append(Conflict._make(kind, path, nid))

    tx = previous_change
    by_id(ConflictType.ZarrMetadataDoubleUpdate, changes.updated_arrays, tx.updated_arrays)
    by_id(ConflictType.ZarrMetadataDoubleUpdate, changes.updated_groups, tx.updated_groups)
    by_id(ConflictType.ZarrMetadataUpdateOfDeletedArray, changes.updated_arrays, tx.deleted_arrays)
    by_id(ConflictType.ZarrMetadataUpdateOfDeletedGroup, changes.updated_groups, tx.deleted_groups)
    by_id(ConflictType.ChunksUpdatedInDeletedArray, changes.chunks, tx.deleted_arrays)
    by_id(ConflictType.ChunksUpdatedInUpdatedArray, changes.chunks, tx.updated_arrays)

    double: list[Conflict] = []
    for nid, ours in changes.chunks.items():
        theirs = tx.updated_chunks.get(nid)
        if theirs is None or not len(theirs):
            continue
        both = _common_coords(list(ours), theirs)
        if both:
            double.append(Conflict._make(ConflictType.ChunkDoubleUpdate, path_of(nid), nid, both))
    out.extend(sorted(double, key=lambda c: c.path))

    updated_arrays = set(tx.updated_arrays)
    for path in sorted(changes.deleted_arrays):
        node = tip.get_node(path)
        if node is not None and (node.id in updated_arrays or node.id in tx.updated_chunks):
            out.append(Conflict._make(ConflictType.DeleteOfUpdatedArray, path, node.id))
    updated_groups = set(tx.updated_groups)
    for path in sorted(changes.deleted_groups):
        node = tip.get_node(path)
        if node is not None and node.id in updated_groups:
            out.append(Conflict._make(ConflictType.DeleteOfUpdatedGroup, path, node.id))
    return out


def _common_coords(ours: list[Coords], theirs: np.ndarray) -> list[Coords]:
    """The coordinates in both ``ours`` and the ``(n, ndim)`` array ``theirs``, sorted.

    Rows are compared as opaque byte strings so that large logs are matched without a Python
    loop over every committed chunk.
    """
    ndim = theirs.shape[1]
    if ndim == 0:
        return [c for c in ours if c == ()]
    mine = np.array(ours, dtype=np.uint32).reshape(len(ours), ndim)
    row = np.dtype((np.void, 4 * ndim))
    landed = np.ascontiguousarray(theirs, dtype=np.uint32).view(row).ravel()
    hit = np.isin(np.ascontiguousarray(mine).view(row).ravel(), landed)
    return sorted(c for c, h in zip(ours, hit.tolist(), strict=True) if h)


def _closest_array_ancestor(snapshot: Snapshot, path: str) -> str | None:
    """The nearest strict ancestor of ``path`` that is an array in ``snapshot``, if any."""
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        node = snapshot.get_node(path)
        if node is not None and node.array is not None:
            return path
    return None
