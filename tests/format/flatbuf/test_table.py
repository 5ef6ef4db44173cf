"""The table reader's bounds checks."""

from __future__ import annotations

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Table, Vector, required, root_table


def test_reader_bounds_checks() -> None:
    b = Builder()
    s = b.create_string("hello")
    v = b.create_scalar_vector("Q", [1, 2, 3])
    b.start_table(2)
    b.add_offset(0, s)
    b.add_offset(1, v)
    buf = b.finish(b.end_table())
    for cut in range(len(buf)):
        try:
            t = root_table(buf[:cut])
            t.string(0)
            vec = t.vector(1, 8)
            assert vec is not None
            vec.raw()
        except IcechunkError as exc:
            assert "malformed flatbuffer" in str(exc)
    with pytest.raises(IcechunkError, match="out of range"):
        Table(buf, len(buf))
    with pytest.raises(IcechunkError, match="out of range"):
        Table(buf, -4)
    with pytest.raises(IcechunkError, match="past the end"):
        Vector(b"\xff\xff\xff\x00", 0, 4)
    bad_utf8 = bytearray(buf)
    bad_utf8[bad_utf8.index(b"hello")] = 0xFF
    with pytest.raises(IcechunkError, match="UTF-8"):
        root_table(bytes(bad_utf8)).string(0)
    with pytest.raises(IcechunkError, match=r"required field T\.x is missing"):
        required(None, "T.x")
    assert required(0, "T.x") == 0
