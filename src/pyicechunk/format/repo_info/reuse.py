"""Writing the long, mostly unchanged vectors of the ``repo`` object by copying recent bytes.

Every update of ``repo`` writes the whole ops-log window and snapshot list again, and nearly all
of their entries are the ones the previous version had: the ops log gains an entry at the front
(and the previous newest one its backup path), the snapshot list gains one in id order. So the
encoder keeps the last few encodings (:class:`RecentRuns`), and writes each run of entries that
one of them holds, consecutive there too, as one copy of its bytes
(:mod:`pyicechunk.format.flatbuf.runs` checks that the copy is exactly what writing the entries
again would give); only the entries no encoding holds at the right position are written one by
one. An update then costs a few copies instead of one build per entry of the window.

Entries are found by identity: an update carries the objects of the state it edits over, and
hashing an entry (all its fields, every time) would cost more than the copy saves. A recording
holds its entries, so their ids are not reused meanwhile. A few recordings are kept, not one:
whether a run can be copied depends on its position modulo 8, and a recording of each position
is soon at hand.

The snapshot list's id order and each entry's parent position (:class:`RecentOrder`) are
likewise carried over from the previous encoding: a commit adds one snapshot, so the order is
the previous one with that entry inserted and the parent positions after it moved by one.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Generic, TypeVar

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.flatbuf.runs import ItemRecorder, Items
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info.model import SnapshotInfo

__all__ = ["RecentOrder", "RecentRuns", "SnapshotOrder"]

T = TypeVar("T")


class _Recording(Generic[T]):
    """The entries of one vector as one encoding wrote them."""

    __slots__ = ("entries", "index", "items", "values")

    def __init__(self, entries: tuple[T, ...], items: Items, values: I64 | None) -> None:
        self.entries = entries
        self.items = items
        self.values = values
        # Where each entry (this very object) is in the vector (built without a Python loop).
        self.index = dict(zip(map(id, entries), range(len(entries)), strict=True))


class RecentRuns(Generic[T]):
    """The last few encodings of one kind of vector, to copy runs of entries from.

    Parameters
    ----------
    keep
        How many encodings to keep (they hold their whole buffer).
    """

    def __init__(self, keep: int = 6) -> None:
        self._keep = keep
        # Replaced, never mutated: encodings in other threads see one consistent tuple.
        self._recordings: tuple[_Recording[T], ...] = ()

    def clear(self) -> None:
        """Forget every encoding kept."""
        self._recordings = ()

    def write(
        self,
        b: Builder,
        entries: tuple[T, ...],
        write_one: Callable[[int], tuple[int, int]],
        values: I64 | None = None,
    ) -> tuple[I64, ItemRecorder]:
        """Write ``entries`` one after another; their references and the recorder to keep.

        Parameters
        ----------
        b
            The buffer being built.
        entries
            The vector's entries, in the order they are written.
        write_one
            Writes entry ``j`` with its strings and tables; returns its reference and the
            reference of its ``int32`` field holding ``values[j]`` (0: none, or left out).
        values
            Per entry, an ``int32`` field whose value differs from one encoding to the next
            (left out of the entry when 0, the default); copies get it written in place.
        """
        rec = ItemRecorder(b)
        # Copied runs as arrays, written entries as lists: one array at the end.
        chunks: list[I64 | list[int]] = []
        written: list[int] = []
        recordings = self._recordings
        j, n = 0, len(entries)
        while j < n:
            got = _copy(rec, recordings, entries, j, values) if recordings else None
            if got is not None:
                if written:
                    chunks.append(written)
                    written = []
                chunks.append(got)
                j += len(got)
                continue
            rec.begin()
            ref, mark = write_one(j)
            rec.end(ref, mark)
            written.append(ref)
            j += 1
        if written or not chunks:
            chunks.append(written)
        refs: I64 = np.concatenate(chunks) if len(chunks) > 1 else np.asarray(chunks[0])
        return refs.astype(np.int64, copy=False), rec

    def keep(
        self, rec: ItemRecorder, buffer: bytes, entries: tuple[T, ...], values: I64 | None = None
    ) -> None:
        """Keep what :meth:`write` wrote, once ``buffer`` is finished."""
        recording = _Recording(entries, rec.items(buffer), values)
        self._recordings = (recording, *self._recordings[: self._keep - 1])


def _common_run(entries: tuple[T, ...], j: int, held: tuple[T, ...], i: int) -> int:
    """How many entries from ``entries[j]`` on equal those from ``held[i]`` on (the first do).

    Equal entries write equal bytes. A binary search over slice comparisons (done in C, each
    entry compared by identity first) instead of one Python step per entry: a run ends where a
    snapshot was inserted, which is anywhere in a long list.
    """
    m = min(len(entries) - j, len(held) - i)
    if entries[j : j + m] == held[i : i + m]:
        return m
    equal, unequal = 1, m  # prefix lengths known to be equal and not
    while unequal - equal > 1:
        mid = (equal + unequal) // 2
        if entries[j : j + mid] == held[i : i + mid]:
            equal = mid
        else:
            unequal = mid
    return equal


def _copy(
    rec: ItemRecorder,
    recordings: Sequence[_Recording[T]],
    entries: tuple[T, ...],
    j: int,
    values: I64 | None,
) -> I64 | None:
    """Copy the run of ``entries`` starting at ``j`` from the first recording that can.

    Returns the references copied, None if no recording could copy any.
    """
    key = id(entries[j])
    for recording in recordings:
        i = recording.index.get(key)
        if i is None:
            continue
        copyable = rec.can_copy(recording.items, i)
        if copyable is None:
            break
        if not copyable:
            continue
        held = recording.entries
        m = _common_run(entries, j, held, i)
        patch = None
        if values is not None:
            assert recording.values is not None
            patch = values[j : j + m]
            # An entry whose field is 0 leaves it out: another layout, not copied over.
            other = np.flatnonzero((patch == 0) != (recording.values[i : i + m] == 0))
            if len(other):
                m = int(other[0])
                patch = patch[:m]
        if m:
            return rec.copy_array(recording.items, i, i + m, patch)
    return None


# More snapshots added at once than this (a migration, say) are ordered from scratch.
_MAX_INSERTED = 16

_ID = attrgetter("id")


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
            # Every parent at or after the insertion point moves one place on.
            parents = np.insert(parents + (parents >= q), q, -1)
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
