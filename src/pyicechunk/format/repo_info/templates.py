"""Blocks of ops-log entries made from a template of their shape instead of a builder.

Every update of ``repo`` writes one or two new ops-log blocks (see :mod:`.blocks`): the new
entry, and the previous newest one again with its backup path. For most kinds of entry the
builder's work depends only on the kind and the lengths of the entry's variable bytes (names,
snapshot ids, the timestamp, the backup path): the same calls with the same sizes, so the same
padding, offsets and vtables. Only those bytes differ. So the first block of each shape is
written by the builder and kept, with where each variable part landed; the next block of that
shape is a copy of it with the parts written over. The bytes are the builder's, exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pyicechunk.format.flatbuf import Builder
from pyicechunk.format.repo_info.blocks import built

__all__ = ["BlockTemplates", "Marks"]

T = TypeVar("T")

# Shapes kept at most (names of many lengths would otherwise grow the table without end).
_MAX_SHAPES = 512

Marks = list[tuple[int, bool]]
"""Where a writer put each variable part: its reference, and whether it is a string (whose
bytes follow a 4-byte length)."""


class BlockTemplates(Generic[T]):
    """Makes entry blocks from kept templates, falling back to a builder.

    Parameters
    ----------
    write
        Writes one entry into the builder given; returns its table's reference and the marks
        of its variable parts, in the order ``parts`` lists them.
    parts
        The entry's shape (anything hashable, for the entry's kind) and its variable parts as
        bytes; None for an entry whose layout depends on more than their lengths (it is always
        written by the builder).
    """

    def __init__(
        self,
        write: Callable[[Builder, T], tuple[int, Marks]],
        parts: Callable[[T], tuple[object, Sequence[bytes]] | None],
    ) -> None:
        self._write = write
        self._parts = parts
        self._shapes: dict[tuple[object, ...], tuple[bytes, int, tuple[int, ...]]] = {}

    def clear(self) -> None:
        """Forget every template."""
        self._shapes = {}

    def block(self, entry: T) -> tuple[bytes, int, int]:
        """The block of ``entry``: its bytes, its table's reference and its mark (always 0)."""
        found = self._parts(entry)
        key: tuple[object, ...] | None = None
        if found is not None:
            kind, parts = found
            key = (kind, *map(len, parts))
            template = self._shapes.get(key)
            if template is not None:
                data, table, positions = template
                buf = bytearray(data)
                for pos, part in zip(positions, parts, strict=True):
                    buf[pos : pos + len(part)] = part
                return bytes(buf), table, 0
        data, (table, marks) = built(lambda b: self._write(b, entry))
        if key is not None and found is not None:
            self._learn(key, data, table, marks, found[1])
        return data, table, 0

    def _learn(
        self, key: tuple[object, ...], data: bytes, table: int, marks: Marks, parts: Sequence[bytes]
    ) -> None:
        """Keep ``data`` as the template of its shape, if every part is where its mark says."""
        if len(marks) != len(parts):
            return
        positions = tuple(len(data) - ref + (4 if string else 0) for ref, string in marks)
        for (ref, _), pos, part in zip(marks, positions, parts, strict=True):
            if not ref or data[pos : pos + len(part)] != part:
                return
        shapes = self._shapes
        if len(shapes) >= _MAX_SHAPES:
            shapes = self._shapes = {}
        shapes[key] = (data, table, positions)
