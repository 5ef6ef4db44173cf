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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.flatbuf.runs import ItemRecorder, Items

__all__ = ["RecentRuns"]

T = TypeVar("T")


class _Recording(Generic[T]):
    """The entries of one vector as one encoding wrote them."""

    __slots__ = ("entries", "index", "items", "values")

    def __init__(self, entries: tuple[T, ...], items: Items, values: I64 | None) -> None:
        self.entries = entries
        self.items = items
        self.values = values
        # Where each entry (this very object) is in the vector.
        self.index = {id(e): i for i, e in enumerate(entries)}


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
    ) -> tuple[list[int], ItemRecorder]:
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
        refs: list[int] = []
        recordings = self._recordings
        j, n = 0, len(entries)
        while j < n:
            got = _copy(rec, recordings, entries, j, values) if recordings else []
            if got:
                refs += got
                j += len(got)
                continue
            rec.begin()
            ref, mark = write_one(j)
            rec.end(ref, mark)
            refs.append(ref)
            j += 1
        return refs, rec

    def keep(
        self, rec: ItemRecorder, buffer: bytes, entries: tuple[T, ...], values: I64 | None = None
    ) -> None:
        """Keep what :meth:`write` wrote, once ``buffer`` is finished."""
        recording = _Recording(entries, rec.items(buffer), values)
        self._recordings = (recording, *self._recordings[: self._keep - 1])


def _copy(
    rec: ItemRecorder,
    recordings: Sequence[_Recording[T]],
    entries: tuple[T, ...],
    j: int,
    values: I64 | None,
) -> list[int]:
    """Copy the run of ``entries`` starting at ``j`` from the first recording that can."""
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
        m = min(len(entries) - j, len(held) - i)
        if entries[j : j + m] != held[i : i + m]:
            k = 1
            while k < m and entries[j + k] is held[i + k]:
                k += 1
            m = k
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
            return rec.copy(recording.items, i, i + m, patch)
    return []
