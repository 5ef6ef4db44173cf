"""Byte requests read against an object (strict) and inside a stored extent (clamped)."""

from __future__ import annotations

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage.byte_range import (
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
    narrow,
    resolve,
    slice_bytes,
)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (None, (0, 10)),
        (RangeByteRequest(2, 5), (2, 5)),
        (RangeByteRequest(2, 50), (2, 10)),
        (RangeByteRequest(10, 10), (10, 10)),
        (OffsetByteRequest(3), (3, 10)),
        (SuffixByteRequest(4), (6, 10)),
        (SuffixByteRequest(40), (0, 10)),
    ],
)
def test_resolve_against_the_object_size(request_: object, expected: tuple[int, int]) -> None:
    assert resolve(request_, 10, "k") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RangeByteRequest(11, 12), "starts at byte 11 but the object has only 10 bytes"),
        (RangeByteRequest(5, 2), "start=5, end=2"),
        (OffsetByteRequest(-1), "offset=-1 is negative"),
        (SuffixByteRequest(-1), "suffix=-1 is negative"),
    ],
)
def test_resolve_refuses_bad_requests(request_: object, message: str) -> None:
    with pytest.raises(IcechunkError, match=message):
        resolve(request_, 10, "chunks/X")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        resolve((1, 2), 10, "k")  # type: ignore[arg-type]


def test_narrow_stays_inside_the_extent() -> None:
    assert narrow(100, 10, None) == (100, 110)
    assert narrow(100, 10, RangeByteRequest(2, 5)) == (102, 105)
    assert narrow(100, 10, RangeByteRequest(8, 50)) == (108, 110)
    assert narrow(100, 10, RangeByteRequest(20, 30)) == (110, 110)
    assert narrow(100, 10, OffsetByteRequest(4)) == (104, 110)
    assert narrow(100, 10, SuffixByteRequest(3)) == (107, 110)
    assert narrow(100, 10, SuffixByteRequest(30)) == (100, 110)


def test_slice_bytes() -> None:
    data = bytes(range(10))
    assert slice_bytes(data, None) is data
    assert slice_bytes(data, RangeByteRequest(2, 4)) == b"\x02\x03"
    assert slice_bytes(data, OffsetByteRequest(8)) == b"\x08\x09"
    assert slice_bytes(data, SuffixByteRequest(1)) == b"\x09"
