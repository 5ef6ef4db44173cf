"""The layout arithmetic of the precomputed encoders."""

from __future__ import annotations

import struct

import numpy as np

from pyicechunk.format.flatbuf import (
    FILE_IDENTIFIER,
    ColumnReader,
    align,
    align_all,
    gather_index,
    new_buffer,
    vtable_block,
)


def test_align() -> None:
    assert [align(x, 8) for x in (0, 1, 7, 8, 9)] == [0, 8, 8, 8, 16]
    assert align_all(np.array([0, 3, 4, 5]), 4).tolist() == [0, 4, 4, 8]


def test_gather_index() -> None:
    starts = np.array([5, 0, 9], dtype=np.int64)
    lens = np.array([2, 0, 3], dtype=np.int64)
    assert gather_index(starts, lens).tolist() == [5, 6, 9, 10, 11]
    assert gather_index(starts[:0], lens[:0]).tolist() == []


def test_vtables_and_buffer_start() -> None:
    vtables = [(8, 12, 4, 8), (6, 8, 4)]
    block, positions = vtable_block(vtables)
    # each vtable padded to 4 bytes, the first at byte 8
    assert positions == [8, 16]
    assert block == struct.pack("<4H", *vtables[0]) + struct.pack("<3H", *vtables[1]) + b"\0\0"
    root = 8 + len(block)
    buf = new_buffer(root + 12, block, root, positions[0])
    buf.view("<u4")[(root + 4) // 4] = 7  # the table's one field, as an encoder writes it
    data = buf.tobytes()
    assert data[4:8] == FILE_IDENTIFIER
    r = ColumnReader(data, "sample")
    assert r.root().tolist() == [root]
    fields = r.table_at(root, 2, "Root")
    assert fields == [root + 4, root + 8]
