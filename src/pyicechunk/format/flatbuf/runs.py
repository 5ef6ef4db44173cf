"""Copying a run of unchanged objects from one built flatbuffer into the next one.

An object that is rewritten over and over with small changes (the ``repo`` object of spec-2
repositories: each version repeats the previous version's ops log and snapshot list) would be
built again item by item every time. Instead, an :class:`ItemRecorder` notes where each item (an
element of a vector, with the strings and tables it owns) lies in the buffer being built, and
the :class:`Items` it makes of the finished buffer let the next buffer copy any run of those
items with one bytes copy.

The copied bytes are exactly the bytes building the items again would write, provided that

* the run starts at the same position modulo the items' largest alignment (padding and the
  layout of every table are then the same);
* no item of the run wrote a vtable of its own (the first table of a layout does), and every
  vtable the run's tables use is already in the new buffer: only each table's offset to its
  vtable differs then, and it is rewritten.

:meth:`ItemRecorder.copy` checks these and copies the longest run that satisfies them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf.builder import Builder

__all__ = ["ItemRecorder", "Items"]


@dataclass(frozen=True, slots=True)
class Items:
    """The items one :class:`ItemRecorder` noted, in the finished buffer they were written to.

    References are distances from the end of ``buffer``, as the builder's.
    """

    buffer: bytes
    """The finished buffer."""
    bounds: I64
    """Where each item starts, then where the last one ends (``n + 1`` references)."""
    results: I64
    """The reference each item stands for (say, its table)."""
    marks: I64
    """A field of each item to write another ``int32`` value into on copy (0: none)."""
    aligns: I64
    """Each item's largest alignment."""
    modulus: int
    """The largest alignment of all items: a copy starts at its item's position modulo this."""
    table_starts: I64
    """Index of each item's first table in ``table_refs`` (``n + 1`` entries)."""
    table_refs: I64
    """Every table of the items, item after item."""
    table_keys: I64
    """The vtable of each table, as an index into ``keys``."""
    keys: tuple[tuple[int, ...], ...]
    """The vtable keys the tables use (see :meth:`Builder.vtable_ref`)."""
    own_vtables: tuple[int, ...]
    """The items, in order, that wrote a vtable (they are never copied)."""

    def __len__(self) -> int:
        return len(self.results)


class ItemRecorder:
    """Notes the items written one after another into a :class:`Builder`.

    Each item is either written by the caller between :meth:`begin` and :meth:`end`, or copied
    from an earlier buffer's :class:`Items` by :meth:`copy`. Items follow each other with
    nothing in between; other objects may be written before the first and after the last.
    """

    def __init__(self, builder: Builder) -> None:
        self._b = builder
        self._log = builder.log_tables()
        self._keys: dict[tuple[int, ...], int] = {}
        self._saved_align = 1
        self._start = 0
        self._end = -1
        # Written items accumulate in lists, copied runs as arrays: both become chunks.
        self._pending: tuple[list[int], ...] = ([], [], [], [], [], [], [])
        self._own: list[int] = []
        self._count = 0
        self._chunks: list[tuple[I64, ...]] = []

    def begin(self) -> None:
        """Start an item: the caller writes its objects next."""
        self._log.clear()
        self._start = self._b.offset()
        self._saved_align = self._b.swap_minalign(1)

    def end(self, result: int, mark: int = 0) -> None:
        """End the item begun last: ``result`` is what it stands for, ``mark`` a field to patch."""
        b = self._b
        align = b.swap_minalign(self._saved_align)
        b.swap_minalign(max(align, self._saved_align))
        starts, results, marks, aligns, counts, refs, keys = self._pending
        starts.append(self._start)
        results.append(result)
        marks.append(mark)
        aligns.append(align)
        counts.append(len(self._log))
        for table, key, wrote in self._log:
            refs.append(table)
            keys.append(self._keys.setdefault(key, len(self._keys)))
            if wrote and (not self._own or self._own[-1] != self._count):
                self._own.append(self._count)
        self._count += 1
        self._end = b.offset()

    def _flush(self) -> None:
        if self._pending[0]:
            self._chunks.append(tuple(np.array(x, dtype=np.int64) for x in self._pending))
            self._pending = ([], [], [], [], [], [], [])

    def can_copy(self, items: Items, first: int) -> bool | None:
        """Whether ``items[first]`` can be copied to where the next item goes.

        Returns
        -------
        bool or None
            True if it can; False if not from ``items`` (it starts at another position modulo
            the alignment, or it wrote a vtable there); None if it needs a vtable this buffer
            does not have yet: then no recording can give it (at the same position it has the
            same layout), and writing it writes that vtable.
        """
        if self._b.offset() % items.modulus != int(items.bounds[first]) % items.modulus:
            return False
        own = items.own_vtables
        k = bisect.bisect_left(own, first)
        if k < len(own) and own[k] == first:
            return False
        keys, table_keys, vtable_ref = items.keys, items.table_keys, self._b.vtable_ref
        for t in range(int(items.table_starts[first]), int(items.table_starts[first + 1])):
            if not vtable_ref(keys[table_keys[t]]):
                return None
        return True

    def copy(self, items: Items, first: int, stop: int, values: I64 | None = None) -> list[int]:
        """Copy the longest possible run of ``items[first:stop]``; the references copied.

        As :meth:`copy_array`, with the references as a list.
        """
        out: list[int] = self.copy_array(items, first, stop, values).tolist()
        return out

    def copy_array(self, items: Items, first: int, stop: int, values: I64 | None = None) -> I64:
        """Copy the longest possible run of ``items[first:stop]``; the references copied.

        Parameters
        ----------
        items
            What an earlier buffer recorded.
        first, stop
            The run wanted: the caller knows these items are the ones to write next, and
            :meth:`can_copy` accepted the first.
        values
            ``stop - first`` values for the items' marked fields (ignored where unmarked);
            None if the marked fields keep their values. An item's layout must not depend on
            its value (a field equal to its default is left out).

        Returns
        -------
        numpy.ndarray
            The reference each copied item stands for (at least the first; the rest of the
            run is the caller's to write), as ``int64``.
        """
        b = self._b
        start = b.offset()
        bounds = items.bounds
        own = items.own_vtables
        k = bisect.bisect_left(own, first)
        if k < len(own):
            stop = min(stop, own[k])
        t0, t1 = int(items.table_starts[first]), int(items.table_starts[stop])
        keys, table_keys = items.keys, items.table_keys
        present = [b.vtable_ref(key) for key in keys]
        vtables = np.array(present, dtype=np.int64)[table_keys[t0:t1]]
        if 0 in present:
            missing = np.flatnonzero(vtables == 0)
            if len(missing):
                # The item holding the first such table and the ones after it are not copied.
                at = int(missing[0]) + t0
                stop = int(np.searchsorted(items.table_starts, at, "right")) - 1
                t1 = int(items.table_starts[stop])
                vtables = vtables[: t1 - t0]
        size = len(items.buffer)
        data = memoryview(items.buffer)[size - int(bounds[stop]) : size - int(bounds[first])]
        b.put_bytes(data, int(items.aligns[first:stop].max()))
        delta = start - int(bounds[first])
        tables = items.table_refs[t0:t1] + delta
        # A table starts with its signed offset back to its vtable: vtable = table - offset.
        b.patch_i32(tables, vtables - tables)
        marks = items.marks[first:stop]
        if values is not None:
            marked = marks != 0
            b.patch_i32(marks[marked] + delta, values[: stop - first][marked])
        self._flush()
        key_map = np.array(
            [self._keys.setdefault(key, len(self._keys)) for key in items.keys], dtype=np.int64
        )
        results = items.results[first:stop] + delta
        self._chunks.append(
            (
                bounds[first:stop] + delta,
                results,
                np.where(marks != 0, marks + delta, 0),
                items.aligns[first:stop],
                np.diff(items.table_starts[first : stop + 1]),
                tables,
                key_map[items.table_keys[t0:t1]],
            )
        )
        self._count += stop - first
        self._end = b.offset()
        return results

    def items(self, buffer: bytes) -> Items:
        """The items noted, once ``buffer`` (what :meth:`Builder.finish` returned) is done."""
        self._flush()
        if self._chunks:
            cols = [np.concatenate(parts) for parts in zip(*self._chunks, strict=True)]
        else:
            cols = [np.zeros(0, dtype=np.int64) for _ in range(7)]
        starts, results, marks, aligns, counts, refs, keys = cols
        table_starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=table_starts[1:])
        return Items(
            buffer=buffer,
            bounds=np.append(starts, self._end if len(starts) else 0),
            results=results,
            marks=marks,
            aligns=aligns,
            modulus=int(aligns.max()) if len(aligns) else 1,
            table_starts=table_starts,
            table_refs=refs,
            table_keys=keys,
            keys=tuple(self._keys),
            own_vtables=tuple(self._own),
        )
