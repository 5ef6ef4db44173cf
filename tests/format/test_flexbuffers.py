"""FlexBuffers (FORMAT-V2 §6): the reference's bytes, round trips, foreign encodings, damage."""

from __future__ import annotations

import random
import struct
import time
from typing import Any

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flexbuffers import MAX_DEPTH, decode_flexbuffer, encode_flexbuffer

# FORMAT-V2 §6.1: what icechunk 2.3.0 writes for each value.
REFERENCE = [
    (True, "01 68 01"),
    (None, "00 00 01"),
    (-3, "fd 04 01"),
    (5, "05 08 01"),
    (300, "2c 01 09 02"),
    (2**40, "00 00 00 00 00 01 00 00 0b 08"),
    (2**63 + 5, "05 00 00 00 00 00 00 80 0b 08"),
    (1.5, "00 00 c0 3f 0e 04"),
    (0.1, "9a 99 99 99 99 99 b9 3f 0f 08"),
    ("me", "02 6d 65 00 03 14 01"),
    ({}, "00 00 01 00 00 24 01"),
    ([], "00 00 28 01"),
    ({"is_root": True}, "69 73 5f 72 6f 6f 74 00 01 09 01 01 01 01 68 02 24 01"),
]


@pytest.mark.parametrize(("value", "hex_bytes"), REFERENCE)
def test_reference_bytes(value: Any, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert encode_flexbuffer(value) == data
    decoded = decode_flexbuffer(data)
    assert decoded == value and type(decoded) is type(value)


VALUES: list[Any] = [
    {"author": "me", "n": 5, "neg": -3, "big": 2**63 + 5, "f": 1.5, "g": 0.1},
    {"nested": {"l": [1, None, True, "x", [2.5]], "e": {}}, "empty": []},
    [2**64 - 1, -(2**63), 0, -1, 255, 256, 65535, 65536, 2**32, -129, 1e300, -0.0, 2.0],
    ["é€𝄞", "", "a" * 300, "b" * 70_000],
    {"z": 1, "a": 2, "m": {"y": [True, False], "b": None}},
    {f"k{i:04d}": list(range(i % 7)) for i in range(300)},
    [[[[[]]]]],
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip(value: Any) -> None:
    assert decode_flexbuffer(encode_flexbuffer(value)) == value


def test_keys_are_written_sorted_whatever_the_dict_order() -> None:
    assert encode_flexbuffer({"b": 1, "a": 2}) == encode_flexbuffer({"a": 2, "b": 1})
    data = encode_flexbuffer({"b": 1, "a": 2})
    assert data.index(b"a\0") < data.index(b"b\0")


def test_refuses_what_is_not_json() -> None:
    for value, error in [
        ({1: 2}, TypeError),
        (b"bytes", TypeError),
        ({1.5}, TypeError),
        (2**64, ValueError),
        (-(2**63) - 1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ({"a\0b": 1}, ValueError),
    ]:
        with pytest.raises(error):
            encode_flexbuffer(value)
    deep: list[Any] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        encode_flexbuffer(deep)


# Encodings other writers produce (the Python flatbuffers package, C++): typed and fixed
# vectors, indirect scalars, wide widths, blobs. Built by hand from the FlexBuffers layout.


def _root(body: bytes, offset_back: int, packed: int, width: int) -> bytes:
    return body + offset_back.to_bytes(width, "little") + bytes([packed, width])


def test_foreign_encodings() -> None:
    # typed vector of three u16 ints (VECTOR_UINT = 12, width 16 bits)
    body = struct.pack("<HHHH", 3, 1, 2, 70)
    assert decode_flexbuffer(_root(body, 6, 12 << 2 | 1, 1)) == [1, 2, 70]
    # fixed typed vector of two floats (VECTOR_FLOAT2 = 18, width 64 bits), no length
    body = struct.pack("<dd", 0.5, -2.0)
    assert decode_flexbuffer(_root(body, 16, 18 << 2 | 3, 1)) == [0.5, -2.0]
    # indirect int (INDIRECT_INT = 6, 64-bit value)
    body = struct.pack("<q", -(2**40))
    assert decode_flexbuffer(_root(body, 8, 6 << 2 | 3, 1)) == -(2**40)
    # blob (BLOB = 25)
    assert decode_flexbuffer(_root(b"\x03abc", 3, 25 << 2, 1)) == b"abc"
    # typed bool vector (VECTOR_BOOL = 36)
    assert decode_flexbuffer(_root(b"\x02\x01\x00", 2, 36 << 2, 1)) == [True, False]
    # an Int where the reference writes UInt, at 32 bits
    assert decode_flexbuffer(struct.pack("<i", 5) + bytes([1 << 2 | 2, 4])) == 5
    # root width 8
    assert decode_flexbuffer(struct.pack("<Q", 7) + bytes([2 << 2 | 3, 8])) == 7


def _assert_refused_quickly(data: bytes) -> None:
    start = time.perf_counter()
    try:
        decode_flexbuffer(data)
    except IcechunkError:
        pass
    assert time.perf_counter() - start < 1.0


def test_truncation_and_bit_flips_raise_only_icechunk_error() -> None:
    rng = random.Random(7)
    sample = encode_flexbuffer(VALUES[0] | VALUES[1] | {"list": VALUES[2], "s": VALUES[3][:3]})
    for cut in range(len(sample)):
        _assert_refused_quickly(sample[:cut])
    for _ in range(3000):
        damaged = bytearray(sample)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        _assert_refused_quickly(bytes(damaged))
    for _ in range(500):
        _assert_refused_quickly(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))


def test_hostile_structures() -> None:
    with pytest.raises(IcechunkError, match="too short"):
        decode_flexbuffer(b"\x01")
    with pytest.raises(IcechunkError, match="root width"):
        decode_flexbuffer(b"\x00\x00\x03")
    # a vector that claims 2**31 elements
    with pytest.raises(IcechunkError):
        decode_flexbuffer(_root(b"\xff\xff\xff\x7f", 0, 10 << 2 | 2, 4))
    # a vector whose only element is the vector itself: depth is bounded
    loop = b"\x01" + b"\x00" + bytes([10 << 2])
    with pytest.raises(IcechunkError):
        decode_flexbuffer(_root(loop, 2, 10 << 2, 1))
    # 40 levels of 2-element vectors, each pointing twice at the level below: 2**40 visits
    # unless shared data is bounded
    body = bytearray(b"\x00\x00\x28")  # innermost: empty vector
    inner = 1
    for _ in range(40):
        here = len(body) + 1
        body += bytes([2, here - inner, here + 1 - inner, 10 << 2, 10 << 2])
        inner = here
    start = time.perf_counter()
    with pytest.raises(IcechunkError, match="same data too many times"):
        decode_flexbuffer(_root(bytes(body), len(body) - inner, 10 << 2, 1))
    assert time.perf_counter() - start < 1.0
    # invalid UTF-8 in a string, an unknown type, a map with a duplicate key
    with pytest.raises(IcechunkError, match="UTF-8"):
        decode_flexbuffer(b"\x01\xff\x00\x02\x14\x01")
    with pytest.raises(IcechunkError, match="unknown value type 50"):
        decode_flexbuffer(_root(b"\x00", 0, 50 << 2, 1))
    dup = bytearray(encode_flexbuffer({"ab": 1, "ac": 2}))
    dup[dup.index(b"ac\0") + 1] = ord("b")
    with pytest.raises(IcechunkError, match="twice"):
        decode_flexbuffer(bytes(dup))
