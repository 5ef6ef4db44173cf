"""Reads many flatbuffer tables at once, as numpy columns (manifests, transaction logs).

A manifest holds millions of chunk refs, so its tables are read in bulk: given the positions of
many tables, :meth:`ColumnReader.tables` resolves their (mostly shared) vtables once and returns
the positions of every field as arrays, and the scalar accessors gather whole columns. Every
position is checked against the buffer size and its alignment, the way the reference's
verifier checks buffers, and any inconsistency raises
:class:`~pyicechunk.exceptions.IcechunkError` naming the object.

The ``*_at`` methods do the same checks for one table at a time: they serve single lookups,
which visit about log2(n) tables and would pay more for numpy calls than they save.
"""

from __future__ import annotations

import struct
from typing import NoReturn

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import I64, U8, U32, U64, Bool
from pyicechunk.format.flatbuf.layout import gather_index

Buffer = bytes | bytearray | memoryview

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")


class TableFields:
    """Positions of the fields of many tables, resolved through their (possibly shared) vtables.

    Parameters
    ----------
    reader
        The reader of the buffer the tables are in.
    tpos
        Absolute positions of the tables.
    entries
        ``(unique vtables, nfields)`` field offsets inside the table, 0 where absent.
    inverse
        Index of each table's vtable in ``entries``; None when every table uses vtable 0.
    """

    def __init__(self, reader: ColumnReader, tpos: I64, entries: I64, inverse: I64 | None) -> None:
        self._reader = reader
        self.tpos = tpos
        self._entries = entries
        self._inverse = inverse

    def present(self, i: int) -> Bool:
        """Mask of the tables that have field ``i``."""
        e = self._entries[:, i] != 0
        if self._inverse is None:
            return np.full(len(self.tpos), bool(e[0]))
        out: Bool = e[self._inverse]
        return out

    def pos(self, i: int) -> I64:
        """Absolute positions of field ``i``, -1 where the field is absent."""
        e = self._entries[:, i]
        if self._inverse is None:
            if e[0] == 0:
                return np.full(len(self.tpos), -1, dtype=np.int64)
            out: I64 = self.tpos + e[0]
            return out
        ei = e[self._inverse]
        return np.where(ei != 0, self.tpos + ei, -1)

    def require(self, i: int, name: str) -> I64:
        """Positions of field ``i``, which every table must have.

        Raises
        ------
        IcechunkError
            If a table lacks it; ``name`` is the field's name for the message.
        """
        p = self.pos(i)
        if len(p) and (p < 0).any():
            self._reader.fail(f"required field {name} is missing")
        return p


class ColumnReader:
    """Bounds- and alignment-checked vectorised access to one flatbuffer.

    Parameters
    ----------
    buf
        The whole flatbuffer; it is viewed, not copied.
    what
        The object's kind for messages, e.g. ``"manifest"``.

    Attributes
    ----------
    u8
        The buffer as a uint8 array.
    size
        Its length in bytes.

    Raises
    ------
    IcechunkError
        If the buffer is too short to hold a root offset and file identifier.
    """

    def __init__(self, buf: Buffer, what: str) -> None:
        self.what = what
        self.buf = buf
        self.u8: U8 = np.frombuffer(buf, dtype=np.uint8)
        self.size = size = len(self.u8)
        self._u16 = self.u8[: size // 2 * 2].view("<u2")
        self._u32 = self.u8[: size // 4 * 4].view("<u4")
        self._i32 = self.u8[: size // 4 * 4].view("<i4")
        self._u64 = self.u8[: size // 8 * 8].view("<u8")
        if size < 8:
            self.fail(f"buffer of {size} bytes is too short")

    def fail(self, msg: str) -> NoReturn:
        """Raise the error for a damaged buffer, with ``msg`` saying what is wrong."""
        raise IcechunkError(
            f"invalid {self.what} flatbuffer ({self.size} bytes): {msg}; "
            "the file is damaged or was not written by Icechunk",
            kind="deserialization",
        )

    # ---- columns ----------------------------------------------------------------------------

    def _check(self, pos: I64, width: int, what: str) -> None:
        if len(pos) == 0:
            return
        bad = (pos < 0) | (pos + width > self.size) | (pos % width != 0)
        if bad.any():
            p = int(pos[bad.argmax()])
            self.fail(f"{what} at byte {p} is out of range or not {width}-byte aligned")

    def u16(self, pos: I64, what: str) -> I64:
        """The ``uint16`` values at ``pos``."""
        self._check(pos, 2, what)
        return self._u16[pos // 2].astype(np.int64)

    def u32(self, pos: I64, what: str) -> I64:
        """The ``uint32`` values at ``pos``."""
        self._check(pos, 4, what)
        return self._u32[pos // 4].astype(np.int64)

    def i32(self, pos: I64, what: str) -> I64:
        """The ``int32`` values at ``pos``."""
        self._check(pos, 4, what)
        return self._i32[pos // 4].astype(np.int64)

    def u64(self, pos: I64, what: str) -> U64:
        """The ``uint64`` values at ``pos``."""
        self._check(pos, 8, what)
        return self._u64[pos // 8]

    def structs(self, pos: I64, width: int, what: str) -> U8:
        """``(n, width)`` bytes of the inline structs at ``pos`` (byte-aligned ids)."""
        if len(pos) == 0:
            return np.zeros((0, width), dtype=np.uint8)
        if ((pos < 0) | (pos + width > self.size)).any():
            self.fail(f"{what} is out of range")
        if width % 4 == 0 and not (pos % 4).any():
            words = (pos // 4)[:, None] + np.arange(width // 4)
            out: U8 = self._u32[words].view(np.uint8).reshape(len(pos), width)
            return out
        rows: U8 = self.u8[pos[:, None] + np.arange(width)]
        return rows

    def deref(self, pos: I64, what: str) -> I64:
        """Follow the unsigned forward offsets stored at ``pos``."""
        target = pos + self.u32(pos, what)
        if len(target) and ((target >= self.size) | (target == pos)).any():
            self.fail(f"offset of {what} points outside the buffer")
        return target

    def vector(self, pos: I64, elem: int, what: str) -> tuple[I64, I64]:
        """Start of the elements and element count of the vectors referenced at ``pos``."""
        vpos = self.deref(pos, what)
        n = self.u32(vpos, f"length of {what}")
        start = vpos + 4
        if len(start) and (start + n * elem > self.size).any():
            self.fail(f"vector {what} runs past the end of the buffer")
        return start, n

    def u32_elements(self, start: I64, n: I64) -> U32:
        """The elements of the ``[uint]`` vectors ``(start, n)`` returned by :meth:`vector`,
        concatenated (their bounds and alignment are already checked)."""
        out: U32 = self._u32[gather_index(start // 4, n)]
        return out

    def offsets(self, start: I64, n: I64, what: str) -> I64:
        """Targets of every element of the offset vectors ``(start, n)``, concatenated."""
        words = gather_index(start // 4, n)
        return self.deref(words * 4, what)

    def tables(self, tpos: I64, nfields: int, what: str) -> TableFields:
        """Resolve the vtables of the tables at ``tpos``, each read with ``nfields`` slots."""
        soff = self.i32(tpos, f"{what} table")
        vt = tpos - soff
        if len(vt) == 0:
            return TableFields(self, tpos, np.zeros((1, nfields), dtype=np.int64), None)
        if vt.min() == vt.max():
            uniq, inverse = vt[:1], None
        else:
            uniq, inv = np.unique(vt, return_inverse=True)
            inverse = inv.reshape(-1).astype(np.int64)
        vt_len = self.u16(uniq, f"{what} vtable")
        tbl_size = self.u16(uniq + 2, f"{what} vtable")
        if ((vt_len < 4) | (vt_len % 2 != 0) | (uniq + vt_len > self.size)).any():
            self.fail(f"{what} vtable is malformed")
        entries = np.zeros((len(uniq), nfields), dtype=np.int64)
        for i in range(nfields):
            has = vt_len > 4 + 2 * i
            if has.any():
                entries[has, i] = self.u16(uniq[has] + 4 + 2 * i, f"{what} vtable")
        if (entries >= tbl_size[:, None]).any():
            self.fail(f"{what} field lies outside its table")
        tmax = tbl_size if inverse is None else tbl_size[inverse]
        if (tpos + tmax > self.size).any() or (tmax < 4).any():
            self.fail(f"{what} table runs past the end of the buffer")
        return TableFields(self, tpos, entries, inverse)

    def root(self) -> I64:
        """Position of the root table, as a one-element array."""
        return self.deref(np.zeros(1, dtype=np.int64), "root table")

    # ---- one table at a time ----------------------------------------------------------------

    def scalar_at(self, fmt: struct.Struct, pos: int, what: str) -> int:
        """The scalar of format ``fmt`` at ``pos``, with the checks of the column accessors."""
        w = fmt.size
        if pos < 0 or pos + w > self.size or pos % w:
            self.fail(f"{what} at byte {pos} is out of range or not {w}-byte aligned")
        value: int = fmt.unpack_from(self.buf, pos)[0]
        return value

    def deref_at(self, pos: int, what: str) -> int:
        """Follow the unsigned forward offset stored at ``pos``."""
        target = pos + self.scalar_at(_U32, pos, what)
        if target >= self.size or target == pos:
            self.fail(f"offset of {what} points outside the buffer")
        return target

    def vector_at(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """Start of the elements and element count of the vector referenced at ``pos``."""
        vpos = self.deref_at(pos, what)
        n = self.scalar_at(_U32, vpos, f"length of {what}")
        if vpos + 4 + n * elem > self.size:
            self.fail(f"vector {what} runs past the end of the buffer")
        return vpos + 4, n

    def table_at(self, tpos: int, nfields: int, what: str) -> list[int]:
        """Absolute positions of the ``nfields`` fields of the table at ``tpos``, -1 if absent."""
        vt = tpos - self.scalar_at(_I32, tpos, f"{what} table")
        vt_len = self.scalar_at(_U16, vt, f"{what} vtable")
        tbl_size = self.scalar_at(_U16, vt + 2, f"{what} vtable")
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.size:
            self.fail(f"{what} vtable is malformed")
        entries = [
            self.scalar_at(_U16, vt + 4 + 2 * f, f"{what} vtable") if vt_len > 4 + 2 * f else 0
            for f in range(nfields)
        ]
        if max(entries) >= tbl_size:
            self.fail(f"{what} field lies outside its table")
        if tpos + tbl_size > self.size or tbl_size < 4:
            self.fail(f"{what} table runs past the end of the buffer")
        return [tpos + e if e else -1 for e in entries]
