"""Spec-2 manifests and their compressed virtual locations (FORMAT-V2 §8), against 2.3.0's bytes."""

from __future__ import annotations

import random

import pytest
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import root_table
from pyicechunk.format.header import SPEC_V1, SPEC_V2, FileType
from pyicechunk.format.manifest import (
    VIRTUAL,
    ArrayManifest,
    LocationCompression,
    NativePayload,
    VirtualPayload,
    decode_manifest,
    encode_manifest,
)

from .._fixtures import open_fixture


def test_reference_manifest_with_compressed_locations() -> None:
    _, buf = open_fixture("v2_manifest_AXCT3QXBTQ1TKP1DYJBG", FileType.MANIFEST)
    root = root_table(buf)
    assert not root.field_pos(3, 1)  # compression_algorithm omitted = 1 (zstd)
    dictionary = root.bytes_vector(2)
    assert dictionary is not None and dictionary[:4] == bytes.fromhex("37a430ec")
    (single,) = decode_manifest(buf).arrays  # one lookup through the raw buffer
    i = single.find((7,))
    assert single.payload(i) == VirtualPayload("s3://bucket/some/long/prefix/data-00007.nc", 7, 1)
    (bulk,) = decode_manifest(buf).arrays
    assert len(bulk) == 1200 and (bulk.kind == VIRTUAL).all()  # columns: decoded in bulk
    locations = [bulk.payload(j).location for j in range(1200)]  # type: ignore[union-attr]
    assert locations == [f"s3://bucket/some/long/prefix/data-{j:05d}.nc" for j in range(1200)]
    # re-encoded without compression, and with our own dictionary
    plain = encode_manifest(b"m" * 12, [bulk], SPEC_V2)
    assert root_table(plain).field_pos(3, 1) and root_table(plain).u8(3, 1) == 0
    ours = encode_manifest(b"m" * 12, [bulk], SPEC_V2, LocationCompression(), random.Random(1))
    assert len(ours) < len(plain)
    (back,) = decode_manifest(ours).arrays
    assert [back.payload(j) for j in range(1200)] == [bulk.payload(j) for j in range(1200)]
    (lazy,) = decode_manifest(ours).arrays
    assert lazy.payload(lazy.find((1199,))) == bulk.payload(1199)


def _virtual_array(n: int, location: str = "s3://b/prefix/file-{}.nc") -> ArrayManifest:
    payloads = [
        VirtualPayload(location.format(i), i, 8, "etag" if i % 2 else None) for i in range(n)
    ]
    return ArrayManifest.from_payloads(b"v" * 8, 1, [(i,) for i in range(n)], payloads)


def test_compression_thresholds_follow_the_reference() -> None:
    settings = LocationCompression()
    rng = random.Random(2)
    below = encode_manifest(b"m" * 12, [_virtual_array(999)], SPEC_V2, settings, rng)
    assert root_table(below).u8(3, 1) == 0 and root_table(below).bytes_vector(2) is None
    at = encode_manifest(b"m" * 12, [_virtual_array(1000)], SPEC_V2, settings, rng)
    assert root_table(at).bytes_vector(2) is not None
    # 1000 refs in total but fewer virtual ones: no compression
    native = ArrayManifest.from_payloads(
        b"n" * 8, 1, [(i,) for i in range(500)], [NativePayload(b"c" * 12, 0, 4)] * 500
    )
    mixed = encode_manifest(b"m" * 12, [native, _virtual_array(600)], SPEC_V2, settings, rng)
    assert root_table(mixed).bytes_vector(2) is None
    # mostly tiny locations: skipped
    tiny = encode_manifest(b"m" * 12, [_virtual_array(1000, "{}")], SPEC_V2, settings, rng)
    assert root_table(tiny).bytes_vector(2) is None
    # never in spec 1
    v1 = encode_manifest(b"m" * 12, [_virtual_array(1000)], SPEC_V1, settings, rng)
    assert v1 == encode_manifest(b"m" * 12, [_virtual_array(1000)])
    for data in (below, at, mixed, tiny, v1):
        arrays = decode_manifest(data).arrays
        assert (
            arrays[-1]
            .payload(999 if len(arrays[-1]) > 999 else 0)
            .location.startswith(  # type: ignore[union-attr]
                ("s3://", "9", "0")
            )
        )


def test_compressed_location_without_dictionary_is_refused() -> None:
    data = bytearray(
        encode_manifest(b"m" * 12, [_virtual_array(1000)], SPEC_V2, LocationCompression())
    )
    root = root_table(bytes(data))
    # turn the dictionary slot off in the manifest's vtable
    vt = root.pos - int.from_bytes(data[root.pos : root.pos + 4], "little", signed=True)
    data[vt + 8 : vt + 10] = b"\0\0"
    (a,) = decode_manifest(bytes(data)).arrays
    with pytest.raises(IcechunkError, match="no decompression dictionary"):
        a.payload(0)
    (a,) = decode_manifest(bytes(data)).arrays
    with pytest.raises(IcechunkError, match="no decompression dictionary"):
        _ = a.kind


def test_oversized_compressed_location_is_refused() -> None:
    dictionary = zstandard.train_dictionary(1024, [f"s3://b/{i}".encode() * 9 for i in range(300)])
    long = zstandard.ZstdCompressor(dict_data=dictionary).compress(b"x" * 2000)
    from pyicechunk.format.manifest.v2 import LocationDecompressor as _LocationDecompressor

    with pytest.raises(IcechunkError, match=r"decompress|more than 1024"):
        _LocationDecompressor(dictionary.as_bytes()).decompress(long, "a location")
