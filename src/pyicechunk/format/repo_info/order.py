"""The id order of the ``repo`` object's snapshot list, carried over from one encoding to the next.

The snapshot list is written sorted by id, each entry with its parent's position in that order.
A commit adds one snapshot, so the order of the next encoding is the previous one with that
entry inserted and the parent positions after it moved by one (:class:`RecentOrder`), instead
of a sort and a lookup per entry.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info.model import SnapshotInfo

__all__ = ["RecentOrder", "SnapshotOrder"]


# More snapshots added at once than this (a migration, say) are ordered from scratch.
_MAX_INSERTED = 16

_ID = attrgetter("id")
_UNSET = np.full(1, -1, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class SnapshotOrder:
    """The snapshot list of one encoding: ids sorted, their entries, each one's parent position.

    ``parents[j]`` is the position of ``entries[j]``'s parent in the list, -1 for none.
    ``content`` is a copy of the mapping: the caller's could change in place afterwards.
    """

    content: dict[bytes, SnapshotInfo]
    ids: list[bytes]
    entries: tuple[SnapshotInfo, ...]
    parents: I64

    def position(self, snapshot_id: bytes) -> int | None:
        """Where ``snapshot_id`` is in the list; None if it is not listed."""
        ids = self.ids
        i = bisect.bisect_left(ids, snapshot_id)
        return i if i < len(ids) and ids[i] == snapshot_id else None

    def _set_parents(self, positions: Sequence[int]) -> None:
        """Compute ``parents`` at ``positions`` (the entries not carried over).

        Raises
        ------
        ValueError
            If a parent is not listed.
        """
        parents = self.parents
        for j in positions:
            parent_id = self.entries[j].parent_id
            parent = -1 if parent_id is None else self.position(parent_id)
            if parent is None:
                assert parent_id is not None
                raise ValueError(f"a parent points at unlisted snapshot {encode_id(parent_id)}")
            parents[j] = parent
        parents.flags.writeable = False  # kept and shared by later encodings

    @classmethod
    def of(cls, snapshots: Mapping[bytes, SnapshotInfo]) -> SnapshotOrder:
        """The order of ``snapshots``, computed from scratch.

        Raises
        ------
        ValueError
            If an entry is listed under another id, or a parent is not listed.
        """
        content = dict(snapshots)
        ids = sorted(content)
        entries = tuple(map(content.__getitem__, ids))
        if list(map(_ID, entries)) != ids:
            key = next(k for k, e in zip(ids, entries, strict=True) if e.id != k)
            raise ValueError(
                f"snapshot {content[key].id.hex()} is listed under another id, {key.hex()}"
            )
        order = cls(content, ids, entries, np.empty(len(ids), dtype=np.int64))
        order._set_parents(range(len(ids)))
        return order

    def extended(self, snapshots: Mapping[bytes, SnapshotInfo]) -> SnapshotOrder | None:
        """The order of ``snapshots``, which holds this order's entries (unchanged) and more.

        Returns None where computing it from scratch is simpler: many entries were added, or
        one is listed under another id.

        Raises
        ------
        ValueError
            If an added entry's parent is not listed.
        """
        added = sorted(snapshots.keys() - self.content.keys())
        if not added:
            return self
        if len(added) > _MAX_INSERTED:
            return None
        ids, entries, parents = list(self.ids), list(self.entries), self.parents
        for key in added:
            info = snapshots[key]
            if info.id != key:
                return None
            q = bisect.bisect_left(ids, key)
            ids.insert(q, key)
            entries.insert(q, info)
            # Every parent at or after the insertion point moves one place on (the new entry's
            # is set below). Not ``np.insert``: three times as slow on these short arrays.
            moved = parents + (parents >= q)
            parents = np.concatenate((moved[:q], _UNSET, moved[q:]))
        order = SnapshotOrder(dict(snapshots), ids, tuple(entries), parents)
        order._set_parents([bisect.bisect_left(ids, key) for key in added])
        return order


class RecentOrder:
    """The :class:`SnapshotOrder` of the last encoding, to carry over to the next one."""

    def __init__(self) -> None:
        # Replaced, never mutated: encodings in other threads see one consistent order.
        self._last: SnapshotOrder | None = None

    def order(self, snapshots: Mapping[bytes, SnapshotInfo]) -> SnapshotOrder:
        """The order of ``snapshots``: the last one extended where it holds, else from scratch.

        Raises
        ------
        ValueError
            If an entry is listed under another id, or a parent is not listed.
        """
        last = self._last
        order = None
        # Every entry of the last order, under its id, with an equal value (the same object,
        # in the usual case: then the check costs no Python call per entry).
        if last is not None and last.content.items() <= snapshots.items():
            order = last.extended(snapshots)
        if order is None:
            order = SnapshotOrder.of(snapshots)
        self._last = order
        return order
