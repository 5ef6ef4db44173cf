"""decode_object's one-call path for single frames with a recorded size, and its fallbacks."""

from __future__ import annotations

import os

import pytest
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import FileType, decode_object, encode_object, open_object

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


def _rle_bomb(total: int, declare: bool) -> bytes:
    """A hand-made zstd frame of ``total`` zero bytes in 128 KiB RLE blocks (4 bytes each)."""
    block = 128 * 1024
    if declare:
        head = bytes([0xE0]) + total.to_bytes(8, "little")  # single segment, 8-byte size
    else:
        head = bytes([0x00, 0x50])  # window descriptor: 2**20 * ... >= 128 KiB
    blocks = bytearray()
    for i in range(total // block):
        last = int(i == total // block - 1)
        blocks += (last | 1 << 1 | block << 3).to_bytes(3, "little") + b"\0"
    return bytes.fromhex("28b52ffd") + head + bytes(blocks)


@pytest.mark.parametrize("declare", [True, False])
def test_bomb_of_raw_and_rle_blocks_is_refused_before_decoding(declare: bool) -> None:
    """3 GiB of zeros in a 96 KiB frame: refused from the block headers alone, instantly."""
    obj = _header() + _rle_bomb(3 << 30, declare)
    assert len(obj) < 100_000
    with pytest.raises(IcechunkError, match=r"decompresses to 3221225472 bytes, more than"):
        decode_object(obj, FileType.MANIFEST, "manifests/X")
    small = _header() + _rle_bomb(8 << 20, declare)
    assert len(decode_object(small, FileType.MANIFEST, "k")) == 8 << 20
    with pytest.raises(IcechunkError, match=r"more than the limit of 1048576 bytes"):
        open_object(small, FileType.MANIFEST, "k", max_size=1 << 20)


@pytest.mark.parametrize("sized", [True, False])
def test_compressed_bomb_is_bounded_by_the_limit(sized: bool) -> None:
    """Compressed blocks can only be bounded while decoding: output stops at the limit."""
    data = bytes(32 << 20)
    if sized:
        frame = zstandard.ZstdCompressor(write_content_size=True).compress(data)
    else:
        stream = zstandard.ZstdCompressor().compressobj()
        frame = stream.compress(data) + stream.flush()
    obj = _header() + frame
    assert len(obj) < 10_000
    with pytest.raises(IcechunkError, match="more than the limit of 1048576 bytes"):
        open_object(obj, FileType.MANIFEST, "k", max_size=1 << 20)
    assert open_object(obj, FileType.MANIFEST, "k", max_size=32 << 20).content == data


def test_size_claims_beyond_what_blocks_hold_are_damage() -> None:
    frame = bytearray(zstandard.ZstdCompressor(write_content_size=True).compress(b"x" * 70_000))
    assert frame[4] == 0xA0  # single segment, 4-byte size; one block of at most 128 KiB
    frame[5:9] = (10_000_000).to_bytes(4, "little")
    with pytest.raises(IcechunkError, match="claims 10000000 bytes but its blocks hold at most"):
        decode_object(_header() + bytes(frame), FileType.MANIFEST, "k")
