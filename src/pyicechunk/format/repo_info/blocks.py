"""Writing the long, mostly unchanged vectors of the ``repo`` object from one block per entry.

Every update of ``repo`` writes the whole ops-log window and snapshot list again, and nearly all
of their entries are the ones the previous version had: the ops log gains an entry at the front
(and the previous newest one its backup path), the snapshot list gains one in id order.

So each entry is written once, on its own, as a *block*: its table, the table's own vtable and
everything the table points to, padded at the front to a multiple of 8 bytes. Every offset
inside a block is relative to a place inside it, and its alignments are counted from its end,
so the block is valid wherever it lands at a multiple of 8 bytes from the end of the buffer.
Writing a vector is then one ``bytes.join`` of its entries' blocks and one numpy expression for
the references to their tables; the cost of an update is the blocks of its new entries.

One value changes while an entry stays the same: a snapshot's parent position, which moves when
a snapshot is inserted before the parent. Its block always holds that field (also when it is 0,
the default a builder would leave out), and each write puts the current position there.

Blocks are found by entry identity (an update carries the objects of the state it edits over,
and hashing an entry would cost more than writing it). The last two encodings of a vector are
kept whole (entries, blocks and their joined bytes), so that two repositories updated in turn by
one process both find theirs. A new list is matched against them as runs: the entries it shares
at the front, and those it shares at the back (allowing for a few entries dropped at the end, as
the ops-log window does); only the entries between are looked at one by one, and the shared
runs are copied as bytes. A list with no run in common is looked up entry by entry.

A block depends on its entry alone: an encoding is the same bytes whatever was encoded before.
The blocks do not share vtables with each other (each entry carries its own, 12 to 20 bytes),
which readers, the reference's included, accept: sharing vtables is a builder's choice.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf import Builder

__all__ = ["Block", "EntryBlocks"]

T = TypeVar("T")
R = TypeVar("R")

# Every block's length and place are multiples of this: the largest alignment of its contents
# (the ``uint64`` timestamps).
_ALIGN = 8


class Block(NamedTuple):
    """One entry written on its own (see the module docstring)."""

    entry: object
    """The entry, held so that its id stays its own while the block is kept."""
    data: bytes
    """The block's bytes, a multiple of 8 long."""
    table: int
    """The entry's table: its distance from the end of ``data``."""
    mark: int
    """The ``int32`` field written anew on each write: its distance from the end, 0 if none."""


def built(write: Callable[[Builder], R]) -> tuple[bytes, R]:
    """Run ``write`` in a builder of its own: the bytes it made, padded to a block's
    alignment, and what it returned (references in it are distances from the end)."""
    b = Builder(256)
    made = write(b)
    b.prep(_ALIGN, 0)
    return b.contents(), made


def place(b: Builder, data: bytes) -> int:
    """Copy the block ``data`` into ``b``, aligned; the position where it starts."""
    b.prep(_ALIGN, 0)
    return b.put_bytes(data, _ALIGN)


def write_block(write: Callable[[Builder], tuple[int, int]]) -> tuple[bytes, int, int]:
    """Run ``write`` in a builder of its own; the bytes, table reference and mark it made.

    ``write`` returns the reference of the table it wrote and that of its ``int32`` field to
    write anew (0 for none); references are distances from the end, as the block's are.
    """
    data, (table, mark) = built(write)
    return data, table, mark


# How many entries dropped at the end of a list are looked for when matching its back (the
# ops-log window drops its oldest entry when an update adds one).
_DROPPED = 8
# New entries (at most) in a match with the latest encoding that makes looking at the one
# before it pointless: an update adds one ops-log entry and rewrites the one before it.
_GOOD_ENOUGH = 2
# Entries between the shared runs, above which they are looked up among the kept blocks
# (fewer are nearly always new: the cost of the lookup table is not worth it).
_LOOKUP = 8


_U32 = struct.Struct("<I")
# 4 * (n - k) for the elements k of a vector of n, as the last n of these (see _Written.vector).
_STEPS_DOWN = 4 * np.arange(4096, 0, -1, dtype=np.int64)
_STEPS_DOWN.flags.writeable = False


def _same(a: I64, b: I64) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def _arrays(blocks: Sequence[Block]) -> tuple[I64, I64, I64]:
    """The blocks' lengths, table references and marks."""
    n = len(blocks)
    return (
        np.fromiter(map(len, (block.data for block in blocks)), np.int64, n),
        np.fromiter((block.table for block in blocks), np.int64, n),
        np.fromiter((block.mark for block in blocks), np.int64, n),
    )


class _Written:
    """One vector as last written: its entries, their blocks and those blocks joined."""

    __slots__ = (
        "_index",
        "_sizes",
        "_vector",
        "blocks",
        "bounds",
        "data",
        "entries",
        "marks",
        "tables",
    )

    def __init__(
        self,
        entries: tuple[object, ...],
        blocks: list[Block],
        data: bytes,
        arrays: tuple[I64, I64, I64] | None = None,
    ) -> None:
        self.entries = entries
        self.blocks = blocks
        self.data = data
        sizes, self.tables, self.marks = _arrays(blocks) if arrays is None else arrays
        self._sizes = sizes
        # Block k is data[bounds[k]:bounds[k + 1]].
        self.bounds: I64 = np.concatenate((np.zeros(1, np.int64), np.cumsum(sizes)))
        self._index: dict[int, Block] | None = None
        self._vector: tuple[I64 | None, bytes] | None = None

    def vector(self, values: I64 | None) -> bytes:
        """The vector's length and references followed by the blocks, with ``values`` marked.

        These bytes do not depend on where they land in a buffer, as long as the blocks start
        at a multiple of 8 from its end (the references are distances to the tables after
        them). Made once per list of values.
        """
        kept = self._vector
        if kept is not None and (
            values is kept[0]
            or (kept[0] is not None and values is not None and _same(kept[0], values))
        ):
            return kept[1]
        data = self.data
        if values is not None:
            patched = bytearray(data)
            # A mark's position from the front of the data, in int32 units.
            np.frombuffer(patched, dtype="<i4")[(self.bounds[1:] - self.marks) >> 2] = values
            data = bytes(patched)
        n = len(self.blocks)
        # Element k sits 4 * (n - k) bytes before the blocks; its table, bounds[k + 1] -
        # tables[k] bytes into them.
        top = len(_STEPS_DOWN)
        steps = _STEPS_DOWN[top - n :] if n <= top else 4 * np.arange(n, 0, -1, dtype=np.int64)
        refs = (steps + self.bounds[1:] - self.tables).astype("<u4")
        vector = _U32.pack(n) + refs.tobytes() + data
        # Values that cannot change (the snapshot order's parents) are kept as they are, so
        # the next write of the same ones finds them by identity.
        frozen = values is None or (not values.flags.writeable and values.base is None)
        held = values if frozen or values is None else values.copy()
        self._vector = (held, vector)
        return vector

    def sizes(self) -> I64:
        """Each block's length."""
        return self._sizes

    def index(self) -> dict[int, Block]:
        """The blocks by their entry's id (made on first use; entries are held, ids unique)."""
        if self._index is None:
            self._index = {id(block.entry): block for block in self.blocks}
        return self._index

    def match(self, entries: tuple[object, ...]) -> tuple[int, int, int]:
        """The runs ``entries`` shares with this one: ``(p, end, s)``.

        ``entries[:p]`` are the first ``p`` written, and the last ``s`` are those written
        before position ``end`` (``s`` is 0 where none are shared).
        """
        old = self.entries
        same = list(map(operator.is_, old, entries))
        try:
            p = same.index(False)
        except ValueError:
            p = len(same)
        if p == len(entries) == len(old):
            return p, p, 0
        last = entries[-1] if len(entries) > p else None
        for end in range(len(old), max(p, len(old) - _DROPPED), -1):
            if old[end - 1] is last:
                break
        else:
            return p, p, 0
        back = list(map(operator.is_, reversed(old[p:end]), reversed(entries[p:])))
        try:
            s = back.index(False)
        except ValueError:
            s = len(back)
        return p, end, s


class EntryBlocks(Generic[T]):
    """The blocks of one kind of vector entry, kept from the last two encodings.

    Parameters
    ----------
    write
        Writes one entry with its strings and vectors into the builder given; returns its
        table's reference and that of the ``int32`` field each write sets (0 for none: that
        field must then be written even when it holds the default).
    block
        Makes an entry's block (bytes, table, mark) the way :func:`write_block` makes it with
        ``write``, only faster (see :mod:`.templates`); None to use ``write``.
    """

    def __init__(
        self,
        write: Callable[[Builder, T], tuple[int, int]],
        *,
        block: Callable[[T], tuple[bytes, int, int]] | None = None,
    ) -> None:
        self._write = write
        self._make = block
        # Replaced, never mutated: encodings in other threads see consistent records.
        self._kept: tuple[_Written | None, _Written | None] = (None, None)

    def clear(self) -> None:
        """Forget every block kept."""
        self._kept = (None, None)

    def fresh(self) -> EntryBlocks[T]:
        """Another instance that writes entries the same way, with no block kept."""
        return EntryBlocks(self._write, block=self._make)

    def _block(self, entry: T) -> Block:
        if self._make is not None:
            data, table, mark = self._make(entry)
        else:
            data, table, mark = write_block(lambda b: self._write(b, entry))
        return Block(entry, data, table, mark)

    def _written(self, entries: tuple[T, ...]) -> _Written:
        """``entries`` as blocks and bytes, reusing the runs of a kept encoding."""
        best: tuple[int, int, int, _Written] | None = None
        latest = self._kept[0]
        if latest is not None and latest.entries is entries:
            return latest  # the same list again (no other is a better match)
        for kept in self._kept:
            if kept is not None:
                p, end, s = kept.match(entries)
                if best is None or p + s > best[0] + best[2]:
                    best = (p, end, s, kept)
                if p + s + _GOOD_ENOUGH >= len(entries):
                    break  # the usual update: no other encoding can save more than this
        if best is None:
            blocks = [self._block(e) for e in entries]
            return _Written(entries, blocks, b"".join([block.data for block in blocks]))
        p, end, s, old = best
        middle = entries[p : len(entries) - s]
        if len(middle) > _LOOKUP:
            found = [kept.index() for kept in self._kept if kept is not None]
            blocks = []
            for entry in middle:
                block = next((f[id(entry)] for f in found if id(entry) in f), None)
                blocks.append(
                    block if block is not None and block.entry is entry else self._block(entry)
                )
        else:
            blocks = [self._block(e) for e in middle]
        if not blocks and s == 0 and p == len(old.entries):
            return old  # the same list
        bounds = old.bounds
        data = memoryview(old.data)
        joined = b"".join(
            [
                data[: bounds[p]],
                *[block.data for block in blocks],
                data[bounds[end - s] : bounds[end]],
            ]
        )
        new = _arrays(blocks)
        sizes = old.sizes()
        arrays = tuple(
            np.concatenate((kept[:p], fresh_values, kept[end - s : end]))
            for kept, fresh_values in zip((sizes, old.tables, old.marks), new, strict=True)
        )
        return _Written(
            entries,
            [*old.blocks[:p], *blocks, *old.blocks[end - s : end]],
            joined,
            (arrays[0], arrays[1], arrays[2]),
        )

    def _kept_as(self, entries: tuple[T, ...]) -> _Written:
        """``entries`` written (see :meth:`_written`), and kept as the latest encoding."""
        written = self._written(entries)
        latest = self._kept[0]
        if written is not latest:
            self._kept = (written, latest)
        return written

    def write(self, b: Builder, entries: Sequence[T], values: I64 | None = None) -> int:
        """Write the vector of ``entries`` (their blocks, then the vector); its reference.

        Parameters
        ----------
        b
            The buffer being built (no table open).
        entries
            The vector's entries, in order.
        values
            Per entry, the value of the field the blocks mark; None if they mark none.
        """
        if not entries:
            return b.create_offset_vector([])
        vector = self._kept_as(tuple(entries)).vector(values)
        return place(b, vector) + len(vector)
