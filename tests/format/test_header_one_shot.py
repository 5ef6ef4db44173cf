"""decode_object's one-call path for single frames with a recorded size, and its fallbacks."""

from __future__ import annotations

import os

import pytest
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import FileType, decode_object, encode_object

PAYLOAD = os.urandom(3000) + bytes(100_000)


def _header() -> bytes:
    return encode_object(FileType.MANIFEST, b"x")[:39]


def test_sized_single_frame_round_trips() -> None:
    obj = encode_object(FileType.MANIFEST, PAYLOAD)
    assert zstandard.frame_content_size(obj[39:]) == len(PAYLOAD)
    assert decode_object(obj, FileType.MANIFEST, "k") == PAYLOAD


def test_sized_frame_followed_by_more_frames_reads_them_all() -> None:
    c = zstandard.ZstdCompressor(level=3)
    streamed = c.compressobj()
    tail = streamed.compress(b"tail") + streamed.flush()
    obj = _header() + c.compress(PAYLOAD) + c.compress(b"second") + tail
    assert decode_object(obj, FileType.MANIFEST, "k") == PAYLOAD + b"second" + b"tail"


def test_sized_frame_damage_is_an_icechunk_error() -> None:
    obj = encode_object(FileType.MANIFEST, PAYLOAD)
    with pytest.raises(IcechunkError, match=r"truncated|corrupt"):
        decode_object(obj[:-5], FileType.MANIFEST, "k")
    flipped = bytearray(obj)
    flipped[39] ^= 0xFF  # the frame's magic number
    with pytest.raises(IcechunkError, match=r"corrupt|truncated"):
        decode_object(bytes(flipped), FileType.MANIFEST, "k")
    # trailing bytes that are no zstd frame
    with pytest.raises(IcechunkError, match=r"corrupt|truncated"):
        decode_object(obj + b"\x01\x02\x03\x04\x05", FileType.MANIFEST, "k")


def test_huge_recorded_size_is_not_trusted() -> None:
    """A frame header claiming far more than a flatbuffer can hold is not preallocated."""
    obj = bytearray(encode_object(FileType.MANIFEST, PAYLOAD))
    frame = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(PAYLOAD)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == len(PAYLOAD)
    # over 65791 bytes the size takes 4 bytes, after the magic and the descriptor byte (no
    # window byte in a single-segment frame); 4 GiB - 1 is more than a flatbuffer can hold
    desc = frame[4]
    assert desc >> 6 == 2 and desc & 0x20
    obj[39 + 5 : 39 + 9] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(IcechunkError, match=r"corrupt|truncated"):
        decode_object(bytes(obj), FileType.MANIFEST, "k")
