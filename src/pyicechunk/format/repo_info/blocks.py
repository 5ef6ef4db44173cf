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
and hashing an entry would cost more than writing it). A block is kept with its entry, so the
entry's id is not reused while the block is kept; the blocks of the last two encodings are kept,
so that two repositories updated in turn by one process both find theirs.

A block depends on its entry alone: an encoding is the same bytes whatever was encoded before.
The blocks do not share vtables with each other (each entry carries its own, 12 to 20 bytes),
which readers, the reference's included, accept: sharing vtables is a builder's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf import Builder

__all__ = ["Block", "EntryBlocks"]

T = TypeVar("T")

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


def write_block(write: Callable[[Builder], tuple[int, int]]) -> tuple[bytes, int, int]:
    """Run ``write`` in a builder of its own; the bytes, table reference and mark it made.

    ``write`` returns the reference of the table it wrote and that of its ``int32`` field to
    write anew (0 for none); references are distances from the end, as the block's are.
    """
    b = Builder(256)
    table, mark = write(b)
    b.prep(_ALIGN, 0)
    return b.contents(), table, mark


class EntryBlocks(Generic[T]):
    """The blocks of one kind of vector entry, kept from the last two encodings.

    Parameters
    ----------
    write
        Writes one entry with its strings and vectors into the builder given; returns its
        table's reference and that of the ``int32`` field each write sets (0 for none: that
        field must then be written even when it holds the default).
    """

    def __init__(self, write: Callable[[Builder, T], tuple[int, int]]) -> None:
        self._write = write
        # Replaced, never mutated: encodings in other threads see consistent dictionaries.
        self._kept: tuple[dict[int, Block], dict[int, Block]] = ({}, {})

    def clear(self) -> None:
        """Forget every block kept."""
        self._kept = ({}, {})

    def fresh(self) -> EntryBlocks[T]:
        """Another instance that writes entries the same way, with no block kept."""
        return EntryBlocks(self._write)

    def _block(self, entry: T) -> Block:
        data, table, mark = write_block(lambda b: self._write(b, entry))
        return Block(entry, data, table, mark)

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
        latest, previous = self._kept
        blocks: list[Block] = []
        kept: dict[int, Block] = {}
        for entry in entries:
            key = id(entry)
            block = latest.get(key) or previous.get(key)
            if block is None or block.entry is not entry:
                block = self._block(entry)
            kept[key] = block
            blocks.append(block)
        self._kept = (kept, latest)
        if not blocks:
            return b.create_offset_vector([])
        n = len(blocks)
        b.prep(_ALIGN, 0)
        start = b.put_bytes(b"".join([block.data for block in blocks]), _ALIGN)
        ends = np.cumsum(np.fromiter(map(len, (block.data for block in blocks)), np.int64, n))
        # Each block's end, as a reference: blocks[0] is the first after the vector.
        block_ends = start + int(ends[-1]) - ends
        if values is not None:
            marks = np.fromiter((block.mark for block in blocks), np.int64, n)
            b.patch_i32(block_ends + marks, values)
        tables = np.fromiter((block.table for block in blocks), np.int64, n)
        return b.create_offset_vector(block_ends + tables)
