"""Reads flatbuffer tables one at a time, checking every offset (snapshots, the repo object).

The reader never trusts the buffer: every offset and length is checked against the buffer size,
and any inconsistency raises :class:`~pyicechunk.exceptions.IcechunkError` instead of
``IndexError`` or ``struct.error``. Objects with millions of entries (manifests, transaction
logs) are read with :mod:`pyicechunk.format.flatbuf.columns` instead.
"""

from __future__ import annotations

import struct
from typing import NoReturn, TypeVar

from pyicechunk.exceptions import IcechunkError

Buffer = bytes | bytearray | memoryview

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

_T = TypeVar("_T")


def malformed(problem: str) -> NoReturn:
    """Raise the error for a damaged flatbuffer.

    Parameters
    ----------
    problem
        What is wrong, e.g. ``"offset out of range"``.

    Raises
    ------
    IcechunkError
        Always.
    """
    raise IcechunkError(
        f"malformed flatbuffer: {problem}; the object is damaged or was not written by a "
        "compatible Icechunk",
        kind="deserialization",
    )


def required(value: _T | None, field: str) -> _T:
    """Return ``value``, or raise if a required field is absent.

    Parameters
    ----------
    value
        The result of a :class:`Table` accessor.
    field
        The field's name for the message, e.g. ``"Snapshot.nodes"``.

    Raises
    ------
    IcechunkError
        If ``value`` is None.
    """
    if value is None:
        malformed(f"required field {field} is missing")
    return value


def _u32_at(buf: Buffer, pos: int) -> int:
    if pos < 0 or pos + 4 > len(buf):
        malformed(f"offset {pos} out of range (buffer of {len(buf)} bytes)")
    value: int = _U32.unpack_from(buf, pos)[0]
    return value


def root_table(buf: Buffer) -> Table:
    """Return the root table of a finished flatbuffer (the u32 offset at byte 0).

    Raises
    ------
    IcechunkError
        If the buffer is too short or the root table is out of range.
    """
    return Table(buf, _u32_at(buf, 0))


class Table:
    """A table inside a flatbuffer, with typed, bounds-checked field accessors.

    Parameters
    ----------
    buf
        The whole flatbuffer.
    pos
        Absolute position of the table (where its signed vtable offset is stored).

    Raises
    ------
    IcechunkError
        If the table or its vtable lie outside the buffer or the vtable is inconsistent.
    """

    __slots__ = ("_size", "_vt", "_vt_len", "buf", "pos")

    def __init__(self, buf: Buffer, pos: int) -> None:
        n = len(buf)
        if pos < 0 or pos + 4 > n:
            malformed(f"table offset {pos} out of range (buffer of {n} bytes)")
        vt = pos - _I32.unpack_from(buf, pos)[0]
        if vt < 0 or vt + 4 > n:
            malformed(f"vtable of the table at {pos} out of range")
        vt_len, size = struct.unpack_from("<HH", buf, vt)
        if vt_len < 4 or vt_len % 2 or vt + vt_len > n or size < 4 or pos + size > n:
            malformed(f"invalid vtable for the table at {pos}")
        self.buf = buf
        self.pos = pos
        self._vt = vt
        self._vt_len = vt_len
        self._size = size

    def field_pos(self, slot: int, size: int) -> int:
        """Return the absolute position of field ``slot`` (``size`` bytes), or 0 if absent.

        Raises
        ------
        IcechunkError
            If the field does not fit inside the table.
        """
        voff = 4 + 2 * slot
        if voff >= self._vt_len:
            return 0
        rel: int = _U16.unpack_from(self.buf, self._vt + voff)[0]
        if not rel:
            return 0
        if rel < 4 or rel + size > self._size:
            malformed(f"field {slot} of the table at {self.pos} lies outside the table")
        return self.pos + rel

    def u8(self, slot: int, default: int = 0) -> int:
        """Read a ``ubyte`` field (or a union type tag)."""
        p = self.field_pos(slot, 1)
        return self.buf[p] if p else default

    def _scalar(self, slot: int, packer: struct.Struct, default: int) -> int:
        p = self.field_pos(slot, packer.size)
        if not p:
            return default
        value: int = packer.unpack_from(self.buf, p)[0]
        return value

    def i32(self, slot: int, default: int = 0) -> int:
        """Read an ``int32`` field."""
        return self._scalar(slot, _I32, default)

    def u16(self, slot: int, default: int = 0) -> int:
        """Read a ``uint16`` field."""
        return self._scalar(slot, _U16, default)

    def u32(self, slot: int, default: int = 0) -> int:
        """Read a ``uint32`` field."""
        return self._scalar(slot, _U32, default)

    def u64(self, slot: int, default: int = 0) -> int:
        """Read a ``uint64`` field."""
        return self._scalar(slot, _U64, default)

    def struct_bytes(self, slot: int, size: int) -> bytes | None:
        """Return the raw bytes of an inline struct field, or None if absent."""
        p = self.field_pos(slot, size)
        return bytes(self.buf[p : p + size]) if p else None

    def _target(self, slot: int) -> int:
        p = self.field_pos(slot, 4)
        return p + _U32.unpack_from(self.buf, p)[0] if p else 0

    def table(self, slot: int) -> Table | None:
        """Follow a field referring to a table (also a union member), or None if absent."""
        target = self._target(slot)
        return Table(self.buf, target) if target else None

    def string(self, slot: int) -> str | None:
        """Read a string field, or None if absent."""
        target = self._target(slot)
        return _string_at(self.buf, target) if target else None

    def vector(self, slot: int, elem_size: int) -> Vector | None:
        """Return a vector field whose elements are ``elem_size`` bytes, or None if absent."""
        target = self._target(slot)
        return Vector(self.buf, target, elem_size) if target else None

    def bytes_vector(self, slot: int) -> bytes | None:
        """Return the content of a ``[ubyte]`` field as bytes, or None if absent."""
        target = self._target(slot)
        return Vector(self.buf, target, 1).raw() if target else None


def _string_at(buf: Buffer, pos: int) -> str:
    length = _u32_at(buf, pos)
    start = pos + 4
    if start + length > len(buf):
        malformed(f"string at {pos} runs past the end of the buffer")
    try:
        return str(buf[start : start + length], "utf-8")
    except UnicodeDecodeError:
        malformed(f"string at {pos} is not valid UTF-8")


class Vector:
    """A vector inside a flatbuffer.

    Parameters
    ----------
    buf
        The whole flatbuffer.
    pos
        Absolute position of the vector's u32 length.
    elem_size
        Size of one element (4 for vectors of tables or strings).

    Attributes
    ----------
    start
        Absolute position of the first element.

    Raises
    ------
    IcechunkError
        If the vector runs past the end of the buffer.
    """

    __slots__ = ("buf", "elem_size", "length", "start")

    def __init__(self, buf: Buffer, pos: int, elem_size: int) -> None:
        self.length = _u32_at(buf, pos)
        self.start = pos + 4
        self.elem_size = elem_size
        if self.start + self.length * elem_size > len(buf):
            malformed(f"vector at {pos} runs past the end of the buffer")
        self.buf = buf

    def __len__(self) -> int:
        return self.length

    def _elem(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.start + index * self.elem_size

    def raw(self) -> bytes:
        """Return all elements' bytes (for ``[ubyte]`` vectors, the content)."""
        return bytes(self.buf[self.start : self.start + self.length * self.elem_size])

    def struct_bytes(self, index: int) -> bytes:
        """Return the bytes of element ``index`` of a vector of structs."""
        p = self._elem(index)
        return bytes(self.buf[p : p + self.elem_size])

    def table(self, index: int) -> Table:
        """Follow element ``index`` of a vector of tables."""
        p = self._elem(index)
        return Table(self.buf, p + _U32.unpack_from(self.buf, p)[0])

    def string(self, index: int) -> str:
        """Follow element ``index`` of a vector of strings."""
        p = self._elem(index)
        return _string_at(self.buf, p + _U32.unpack_from(self.buf, p)[0])
