"""Builds a flatbuffer one object at a time, back to front (snapshots, the repo object).

Only what Icechunk's schemas need, written for speed in pure Python. The builder works back to
front like the official builders: children are written before their parents, so every unsigned
offset points forward (to a higher address) as the format requires, and alignment is tracked as
the distance from the end of the buffer, which :meth:`Builder.finish` pads to the largest
alignment used. That makes every scalar, struct and vector aligned relative to the buffer start,
which the reference's verifier checks.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

import numpy as np

from pyicechunk.format.arrays import I64
from pyicechunk.format.flatbuf.layout import FILE_IDENTIFIER

Buffer = bytes | bytearray | memoryview

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# 4 * k for the elements k of an offset vector given as an array (see create_offset_vector).
_STEPS = np.arange(0, 4 * 4096, 4, dtype=np.int64)


@functools.cache
def _vtable_struct(count: int) -> struct.Struct:
    """The packer of a vtable with ``count`` field entries (size, table size, the entries)."""
    return struct.Struct(f"<{count + 2}H")


class Builder:
    """Builds one flatbuffer, back to front.

    Objects (strings, vectors, tables) are created one at a time, children before parents; each
    ``create_*``/``end_table`` call returns a reference (the object's distance from the end of
    the buffer) to pass to ``add_offset``, ``create_offset_vector`` or ``finish``. Identical
    vtables are written once.

    Parameters
    ----------
    initial_size
        Initial capacity in bytes; the buffer doubles as needed.
    """

    __slots__ = ("_buf", "_fields", "_head", "_minalign", "_object_end", "_vtables")

    def __init__(self, initial_size: int = 1024) -> None:
        # A multiple of 8 (and doubled when it grows).
        self._buf = bytearray(max(-(-initial_size // 8) * 8, 64))
        self._head = len(self._buf)
        self._minalign = 1
        self._fields: list[int] | None = None
        self._object_end = 0
        # Vtables written so far, keyed by their content after the (implied) vtable size.
        self._vtables: dict[tuple[int, ...], int] = {}

    def offset(self) -> int:
        """Return the number of bytes written so far (the reference of the last object)."""
        return len(self._buf) - self._head

    def contents(self) -> bytes:
        """The bytes written so far, unfinished (no root offset): a part of another buffer."""
        self._not_nested()
        return bytes(memoryview(self._buf)[self._head :])  # one copy, not two

    def _grow(self, needed: int) -> None:
        old = self._buf
        used = len(old) - self._head
        size = len(old)
        while size - used < needed:
            size *= 2
        new = bytearray(size)
        new[size - used :] = old[self._head :]
        self._buf = new
        self._head = size - used

    def prep(self, alignment: int, additional: int) -> None:
        """Pad so that an item aligned to ``alignment`` can follow ``additional`` more bytes.

        After the call, writing ``additional`` bytes leaves the write position aligned to
        ``alignment`` (a power of two) relative to the end of the finished buffer, and there is
        room for ``alignment + additional`` bytes.
        """
        if alignment > self._minalign:
            self._minalign = alignment
        pad = -(len(self._buf) - self._head + additional) % alignment
        if self._head < pad + alignment + additional:
            self._grow(pad + alignment + additional)
        # The buffer is zero-filled and never written twice, so padding is already zeros.
        self._head -= pad

    def _not_nested(self) -> None:
        if self._fields is not None:
            raise RuntimeError("flatbuffers objects cannot be created while a table is open")

    def _put(self, data: Buffer) -> None:
        self._head -= len(data)
        self._buf[self._head : self._head + len(data)] = data

    def create_string(self, value: str) -> int:
        """Write a NUL-terminated UTF-8 string and return its reference."""
        # The hottest call of the encoders: prep and the writes are inlined.
        if self._fields is not None:
            self._not_nested()
        data = value.encode("utf-8")
        n = len(data)
        if self._minalign < 4:
            self._minalign = 4
        head = self._head
        used = len(self._buf) - head
        pad = -(used + n + 1) % 4
        if head < pad + n + 5:
            self._grow(pad + n + 5)
            head = self._head
        head -= pad + n + 5
        buf = self._buf
        _U32.pack_into(buf, head, n)
        buf[head + 4 : head + 4 + n] = data
        self._head = head
        return used + pad + n + 5

    def create_vector(self, data: Buffer, elem_size: int, alignment: int) -> int:
        """Write a vector whose elements are already packed little-endian in ``data``.

        Parameters
        ----------
        data
            The packed elements (scalars or structs, ``len(data) == elem_size * count``).
        elem_size
            Size of one element in bytes.
        alignment
            Alignment of one element (e.g. 8 for a struct holding a u64).

        Returns
        -------
        int
            The vector's reference.
        """
        self._not_nested()
        view = memoryview(data).cast("B")
        nbytes = len(view)
        if nbytes % elem_size:
            raise ValueError(f"vector data of {nbytes} bytes is not a multiple of {elem_size}")
        self.prep(4, nbytes)
        self.prep(alignment, nbytes)
        self._put(view)
        self._head -= 4
        _U32.pack_into(self._buf, self._head, nbytes // elem_size)
        return self.offset()

    def create_bytes_vector(self, data: Buffer) -> int:
        """Write a ``[ubyte]`` vector and return its reference."""
        return self.create_vector(data, 1, 1)

    def create_scalar_vector(self, fmt: str, values: Sequence[int]) -> int:
        """Write a vector of scalars given a :mod:`struct` format letter (``"I"``, ``"Q"``...)."""
        size = struct.calcsize(fmt)
        return self.create_vector(struct.pack(f"<{len(values)}{fmt}", *values), size, size)

    def create_offset_vector(self, refs: Sequence[int] | I64) -> int:
        """Write a vector of references to objects (tables or strings) created earlier.

        ``refs`` may be a numpy ``int64`` array: long vectors are then computed without a
        Python step per element.
        """
        self._not_nested()
        n = len(refs)
        self.prep(4, 4 * n)
        # Element k lands at reference ``top - 4 * k`` and holds its distance to its target.
        top = self.offset() + 4 * n
        if isinstance(refs, np.ndarray):
            steps = _STEPS[:n] if n <= len(_STEPS) else 4 * np.arange(n, dtype=np.int64)
            self._put((top - steps - refs).astype("<u4").tobytes())
            self._head -= 4
            _U32.pack_into(self._buf, self._head, n)
        else:
            self._put(
                struct.pack(f"<{n + 1}I", n, *[top - 4 * k - ref for k, ref in enumerate(refs)])
            )
        return self.offset()

    def start_table(self, num_fields: int) -> None:
        """Open a table with ``num_fields`` field slots; add fields, then call ``end_table``."""
        self._not_nested()
        self._fields = [0] * num_fields
        # Set by the first field added: the table ends where that field ends. Padding written
        # before it stays outside the table, so equal layouts give equal vtables wherever
        # they start. Every add_* method stores each field's end in ``_fields``.
        self._object_end = -1

    def _add_scalar(
        self, slot: int, packer: struct.Struct, value: int, default: int | None
    ) -> None:
        # prep(size, 0), the write and the field's bookkeeping, inlined: encoders call this
        # for every scalar of every table.
        if value == default:
            return
        size = packer.size
        fields = self._fields
        assert fields is not None, "add a field only between start_table and end_table"
        if size > self._minalign:
            self._minalign = size
        head = self._head
        used = len(self._buf) - head
        pad = -used % size
        if head < pad + size:
            self._grow(pad + size)
            head = self._head
        head -= pad + size
        packer.pack_into(self._buf, head, value)
        self._head = head
        end = used + pad + size
        fields[slot] = end
        if self._object_end < 0:
            self._object_end = end - size

    def add_u8(self, slot: int, value: int, default: int = 0) -> None:
        """Add a ``ubyte`` field (also union type tags); omitted when equal to ``default``."""
        if value != default:
            fields = self._fields
            assert fields is not None, "add a field only between start_table and end_table"
            if self._head < 1:
                self._grow(1)
            self._head -= 1
            # Item assignment (not struct) so that a value outside 0..255 is a ValueError.
            self._buf[self._head] = value
            end = len(self._buf) - self._head
            fields[slot] = end
            if self._object_end < 0:
                self._object_end = end - 1

    def add_u16(self, slot: int, value: int, default: int = 0) -> None:
        """Add a ``uint16`` field; omitted when equal to ``default``."""
        self._add_scalar(slot, _U16, value, default)

    def add_i32(self, slot: int, value: int, default: int | None = 0) -> None:
        """Add an ``int32`` field; omitted when equal to ``default`` (never when it is None)."""
        self._add_scalar(slot, _I32, value, default)

    def add_u32(self, slot: int, value: int, default: int = 0) -> None:
        """Add a ``uint32`` field; omitted when equal to ``default``."""
        self._add_scalar(slot, _U32, value, default)

    def add_u64(self, slot: int, value: int, default: int = 0) -> None:
        """Add a ``uint64`` field; omitted when equal to ``default``."""
        self._add_scalar(slot, _U64, value, default)

    def add_struct(self, slot: int, data: bytes, alignment: int) -> None:
        """Add an inline struct field, given its packed bytes and its alignment."""
        fields = self._fields
        assert fields is not None, "add a field only between start_table and end_table"
        if alignment > self._minalign:
            self._minalign = alignment
        n = len(data)
        head = self._head
        used = len(self._buf) - head
        pad = -(used + n) % alignment
        if head < pad + alignment + n:
            self._grow(pad + alignment + n)
            head = self._head
        head -= pad + n
        self._buf[head : head + n] = data
        self._head = head
        end = used + pad + n
        fields[slot] = end
        if self._object_end < 0:
            self._object_end = end - n

    def add_offset(self, slot: int, ref: int) -> None:
        """Add a field referring to a table, string, vector or union member created earlier."""
        fields = self._fields
        assert fields is not None, "add a field only between start_table and end_table"
        end = self._reserve_u32()
        _U32.pack_into(self._buf, self._head, end - ref)
        fields[slot] = end
        if self._object_end < 0:
            self._object_end = end - 4

    def _reserve_u32(self) -> int:
        """Pad to 4 bytes and reserve the next 4 (the head moves to them); their reference.

        ``prep(4, 0)`` and the reservation, written out for speed: every offset field and
        every table needs them.
        """
        if self._minalign < 4:
            self._minalign = 4
        head = self._head
        used = len(self._buf) - head
        pad = -used % 4
        if head < pad + 4:
            self._grow(pad + 4)
            head = self._head
        self._head = head - pad - 4
        return used + pad + 4

    def field_ref(self, slot: int) -> int:
        """The reference of the open table's field ``slot`` (0 if it was not added).

        The field's bytes start there: a copy of the table can get another value written in
        place (as the repo object's kept blocks do).
        """
        assert self._fields is not None, "field_ref only between start_table and end_table"
        return self._fields[slot]

    def end_table(self, required: Sequence[int] = ()) -> int:
        """Close the open table, write (or reuse) its vtable and return the table's reference.

        Parameters
        ----------
        required
            Slots that must have been set (the schema's ``(required)`` fields).

        Raises
        ------
        ValueError
            If a required slot was not set: the reference would reject the buffer.
        """
        fields = self._fields
        assert fields is not None, "end_table without start_table"
        for slot in required:
            if not fields[slot]:
                raise ValueError(f"required flatbuffers field in slot {slot} was not set")
        table = self._reserve_u32()  # the table's offset to its vtable, written below
        end = self._object_end if self._object_end >= 0 else table - 4
        count = len(fields)
        while count and not fields[count - 1]:
            count -= 1
        key = (table - end, *[table - f if f else 0 for f in fields[:count]])
        existing = self._vtables.get(key)
        if existing is None:
            vtable = _vtable_struct(count).pack(4 + 2 * count, *key)
            self.prep(2, len(vtable))
            self._put(vtable)
            existing = self._vtables[key] = self.offset()
        # The table starts with a signed offset back to its vtable (vtable = table - soffset).
        _I32.pack_into(self._buf, len(self._buf) - table, existing - table)
        self._fields = None
        return table

    def put_bytes(self, data: Buffer, alignment: int) -> int:
        """Write bytes another builder made (objects, padding included); their start.

        The objects must refer only to each other, and the position must be the one they were
        made at modulo ``alignment``, their largest alignment (see
        :mod:`pyicechunk.format.repo_info.blocks`).
        """
        self._not_nested()
        start = self.offset()
        if alignment > self._minalign:
            self._minalign = alignment
        if self._head < len(data):
            self._grow(len(data))
        self._put(data)
        return start

    def finish(self, root: int, file_identifier: bytes = FILE_IDENTIFIER) -> bytes:
        """Write the root offset and the 4-byte file identifier and return the buffer."""
        self._not_nested()
        self.prep(max(self._minalign, 4), 8)
        self._put(file_identifier)
        self._head -= 4
        _U32.pack_into(self._buf, self._head, len(self._buf) - self._head - root)
        return bytes(memoryview(self._buf)[self._head :])  # one copy, not two
