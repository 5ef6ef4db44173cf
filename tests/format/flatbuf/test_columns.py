"""The vectorised reader: columns of many tables, and the same checks one table at a time."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pyicechunk._error_context import without_context
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, ColumnReader

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def _buffer(n: int) -> bytes:
    """A root table with a vector of ``n`` tables {0: u64 i, 1: [uint] of i values, 2: u32}."""
    b = Builder()
    refs = []
    for i in range(n):
        values = b.create_scalar_vector("I", list(range(i)))
        b.start_table(3)
        b.add_u64(0, 10 * i + 1)
        b.add_offset(1, values)
        if i % 2:
            b.add_u32(2, i)
        refs.append(b.end_table())
    vec = b.create_offset_vector(refs)
    b.start_table(1)
    b.add_offset(0, vec)
    return b.finish(b.end_table())


def test_columns_and_single_tables_agree() -> None:
    n = 9
    r = ColumnReader(_buffer(n), "sample")
    root = r.tables(r.root(), 1, "Root")
    start, count = r.vector(root.require(0, "Root.items"), 4, "Root.items")
    tpos = r.offsets(start, count, "Item")
    f = r.tables(tpos, 3, "Item")
    assert r.u64(f.require(0, "Item.a"), "Item.a").tolist() == [10 * i + 1 for i in range(n)]
    assert f.present(2).tolist() == [bool(i % 2) for i in range(n)]
    vstart, vlen = r.vector(f.require(1, "Item.values"), 4, "Item.values")
    flat = r.u32_elements(vstart, vlen)
    assert flat.dtype == np.uint32
    assert flat.tolist() == [v for i in range(n) for v in range(i)]
    # one table at a time: the same positions and values
    for i, pos in enumerate(tpos.tolist()):
        assert r.deref_at(int(start[0]) + 4 * i, "Item") == pos
        fields = r.table_at(pos, 3, "Item")
        assert fields == [int(f.pos(k)[i]) for k in range(3)]
        assert r.scalar_at(_U64, fields[0], "Item.a") == 10 * i + 1
        s, m = r.vector_at(fields[1], 4, "Item.values")
        assert (s, m) == (int(vstart[i]), int(vlen[i]))


@pytest.mark.parametrize(
    ("pos", "match"),
    [(-4, "at byte -4 is out of range"), (2, "at byte 2 is out of range or not 4-byte aligned")],
)
def test_one_table_reads_fail_like_columns(pos: int, match: str) -> None:
    r = ColumnReader(_buffer(2), "sample")
    with pytest.raises(IcechunkError, match=match) as single:
        r.scalar_at(_U32, pos, "Item.x")
    with pytest.raises(IcechunkError) as bulk:
        r.u32(np.array([pos], dtype=np.int64), "Item.x")
    # the same text; the context lines name the two readers
    assert without_context(str(single.value)) == without_context(str(bulk.value))
    assert str(single.value).startswith("invalid sample flatbuffer (")


def test_damaged_vtable_is_refused_both_ways() -> None:
    buf = bytearray(_buffer(2))
    r = ColumnReader(bytes(buf), "sample")
    tpos = int(r.root()[0])
    vt = tpos - struct.unpack_from("<i", buf, tpos)[0]
    struct.pack_into("<H", buf, vt, 3)  # an odd vtable size
    r = ColumnReader(bytes(buf), "sample")
    with pytest.raises(IcechunkError, match="Root vtable is malformed"):
        r.table_at(tpos, 1, "Root")
    with pytest.raises(IcechunkError, match="Root vtable is malformed"):
        r.tables(np.array([tpos], dtype=np.int64), 1, "Root")


def test_short_buffers_and_missing_fields() -> None:
    with pytest.raises(IcechunkError, match="too short"):
        ColumnReader(b"\0" * 7, "sample")
    r = ColumnReader(_buffer(3), "sample")
    root = r.tables(r.root(), 1, "Root")
    start, count = r.vector(root.require(0, "Root.items"), 4, "Root.items")
    f = r.tables(r.offsets(start, count, "Item"), 3, "Item")
    with pytest.raises(IcechunkError, match=r"required field Item\.c is missing"):
        f.require(2, "Item.c")
