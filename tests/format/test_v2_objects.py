"""Spec-2 snapshots, manifests and transaction logs (FORMAT-V2 §7-§9), against 2.3.0's bytes."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import root_table
from pyicechunk.format.header import SPEC_V1, SPEC_V2, FileType, encode_object, open_object
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, decode_id
from pyicechunk.format.manifest import (
    VIRTUAL,
    ArrayManifest,
    LocationCompression,
    NativePayload,
    VirtualPayload,
    decode_manifest,
    encode_manifest,
)
from pyicechunk.format.snapshot import (
    ArrayNodeData,
    DimensionShape,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    initial_snapshot,
)
from pyicechunk.format.transaction_log import (
    MoveOperation,
    TransactionLog,
    decode_transaction_log,
    encode_transaction_log,
    move_sort_key,
)
from pyicechunk.format.zarr_metadata import coords_in_grid, grid_upper

FIXTURES = Path(__file__).parent / "fixtures"


def _open(name: str, kind: FileType) -> tuple[int, bytes]:
    return open_object((FIXTURES / name).read_bytes(), kind, name)


# --- snapshots -------------------------------------------------------------------------------


def test_initial_snapshot_as_2_3_0_writes_it() -> None:
    """FORMAT-V2 §7.3: root slots 0, 2-7; 184 bytes decompressed; FlexBuffer is_root."""
    spec, buf = _open("v2_snapshot_initial", FileType.SNAPSHOT)
    assert spec == SPEC_V2 and len(buf) == 184
    reference = decode_snapshot(buf, spec)
    assert reference == initial_snapshot(reference.flushed_at, SPEC_V2)
    ours = encode_snapshot(reference, SPEC_V2)
    assert decode_snapshot(ours, SPEC_V2) == reference
    root = root_table(ours)
    assert [s for s in range(9) if root.field_pos(s, 1)] == [0, 2, 3, 4, 5, 6, 7]
    assert initial_snapshot(1, SPEC_V1).metadata == {"__root": True}


def test_reference_snapshot() -> None:
    spec, buf = _open("v2_snapshot_79DH8SRVPXJ33KJPK7F0", FileType.SNAPSHOT)
    snap = decode_snapshot(buf, spec)
    assert snap.id == decode_id("79DH8SRVPXJ33KJPK7F0", 12) and snap.parent_id is None
    assert snap.metadata["big"] == 2**63 + 5 and snap.metadata["nested"]["l"][4] == [2.5]
    shapes = {n.path: n.array.shape for n in snap.nodes if n.array is not None}
    assert shapes["/zero"] == (DimensionShape(0, 0, 0),)
    assert shapes["/scalar"] == ()
    assert shapes["/sh"] == (DimensionShape(8, 4, 2),) * 2  # shards counted
    assert shapes["/grp/arr"][0].num_chunks == 3
    assert {m.num_chunk_refs for m in snap.manifest_files} == {9, 1200, 4, 1}
    root = root_table(buf)
    assert not root.field_pos(1, 12)  # no parent_id
    assert len(root.vector(6, 32)) == 0  # type: ignore[arg-type]
    again = encode_snapshot(snap, SPEC_V2)
    assert decode_snapshot(again, SPEC_V2) == snap
    # read as spec 1, the FlexBuffer metadata is not MessagePack
    with pytest.raises(IcechunkError, match="commit metadata"):
        decode_snapshot(buf, SPEC_V1)


def _snapshot() -> Snapshot:
    rect = DimensionShape.from_num_chunks(5, 4)  # e.g. rectilinear [1, 1, 1, 2]
    array = ArrayNodeData(
        (DimensionShape(9, 4), rect, DimensionShape(0, 2)),
        ("x", None, "z"),
        (ManifestRef(b"m" * 12, ((0, 3), (0, 4), (0, 1))),),
    )
    return Snapshot(
        id=b"s" * 12,
        parent_id=INITIAL_SNAPSHOT_ID,
        nodes=(
            NodeSnapshot(b"g" * 8, "/", b'{"node_type":"group"}', None),
            NodeSnapshot(b"a" * 8, "/a", b"{}", array),
        ),
        flushed_at=123,
        message="c",
        metadata={"k": [1, {"x": None}], "f": float("nan")},
        manifest_files=(ManifestFileInfo(b"m" * 12, 500, 7),),
    )


def test_v2_layout_and_field_choice_by_presence() -> None:
    snap = _snapshot()
    v2 = decode_snapshot(encode_snapshot(snap, SPEC_V2), SPEC_V2)
    assert v2.parent_id is None and v2.metadata == {"k": [1, {"x": None}], "f": None}
    array = v2.nodes[1].array
    assert array is not None
    assert [d.num_chunks for d in array.shape] == [3, 4, 0]
    assert array.shape[1] == DimensionShape(5, 2, 4)
    assert v2.manifest_files == snap.manifest_files
    # a spec-1 layout under a spec-2 header is read from its v1 fields (as 2.3.0 does)
    v1_layout = encode_snapshot(snap, SPEC_V1)
    with pytest.raises(IcechunkError, match="metadata deserialization"):
        decode_snapshot(v1_layout, SPEC_V2)
    regular = ArrayNodeData((DimensionShape(9, 4),), None, ())
    plain = Snapshot(
        snap.id,
        snap.parent_id,
        (NodeSnapshot(b"a" * 8, "/a", b"{}", regular),),
        snap.flushed_at,
        "m",
        {},
        snap.manifest_files,
    )
    mixed = decode_snapshot(encode_snapshot(plain, SPEC_V1), SPEC_V2)
    assert mixed.parent_id is None  # history lives in repo
    assert mixed.manifest_files == snap.manifest_files
    assert mixed.nodes[0].array == regular
    # the v1 path is unchanged
    assert decode_snapshot(encode_snapshot(plain), SPEC_V1) == plain


def test_grid_arithmetic_uses_chunk_counts() -> None:
    shape = (DimensionShape(9, 4), DimensionShape.from_num_chunks(5, 4), DimensionShape(0, 2))
    assert grid_upper(shape) == (3, 4, 1)
    assert coords_in_grid((2, 3, 0), shape) and not coords_in_grid((2, 4, 0), shape)
    assert not coords_in_grid((0, 0, 1), shape)


def test_damaged_v2_snapshot_raises_icechunk_error() -> None:
    rng = random.Random(11)
    _, buf = _open("v2_snapshot_79DH8SRVPXJ33KJPK7F0", FileType.SNAPSHOT)
    for _ in range(600):
        damaged = bytearray(buf)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            decode_snapshot(bytes(damaged), SPEC_V2)
        except IcechunkError:
            pass
    for cut in range(0, len(buf), 13):
        with pytest.raises(IcechunkError):
            decode_snapshot(buf[:cut], SPEC_V2)


# --- manifests -------------------------------------------------------------------------------


def test_reference_manifest_with_compressed_locations() -> None:
    _, buf = _open("v2_manifest_AXCT3QXBTQ1TKP1DYJBG", FileType.MANIFEST)
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
    from pyicechunk.format.manifest import _LocationDecompressor

    with pytest.raises(IcechunkError, match=r"decompress|more than 1024"):
        _LocationDecompressor(dictionary.as_bytes()).decompress(long, "a location")


# --- transaction logs ------------------------------------------------------------------------


def test_initial_transaction_log() -> None:
    """FORMAT-V2 §9.3: id = initial id, every list present and empty; 112 bytes."""
    spec, buf = _open("v2_txlog_initial", FileType.TRANSACTION_LOG)
    assert spec == SPEC_V2 and len(buf) == 112
    assert (FIXTURES / "v2_txlog_initial").stat().st_size == 118
    root = root_table(buf)
    assert all(root.field_pos(s, 4) for s in range(9))
    tx = decode_transaction_log(buf)
    assert tx == TransactionLog(INITIAL_SNAPSHOT_ID)
    ours = encode_transaction_log(TransactionLog(INITIAL_SNAPSHOT_ID), SPEC_V2)
    assert all(root_table(ours).field_pos(s, 4) for s in range(9))
    assert decode_transaction_log(ours) == tx


def test_reference_moves() -> None:
    _, buf = _open("v2_txlog_765H9C89N67175SWEJDG", FileType.TRANSACTION_LOG)
    tx = decode_transaction_log(buf)
    assert [(m.from_path, m.to_path, m.is_array) for m in tx.moved_nodes] == [
        ("/grp", "/grp3", False),
        ("/grp/arr", "/grp3/arr", True),
    ]
    assert not tx.new_arrays and not tx.updated_chunks
    again = decode_transaction_log(encode_transaction_log(tx, SPEC_V2))
    assert again.moved_nodes == tx.moved_nodes


def test_moves_are_sorted_by_segments() -> None:
    moves = [
        MoveOperation(f"/x{i}", to, bytes([i]) * 8, i % 2 == 0)
        for i, to in enumerate(["/a-b", "/a/b", "/a", "/ab"])
    ]
    assert sorted(["/a-b", "/a/b", "/a"], key=move_sort_key) == ["/a", "/a/b", "/a-b"]
    tx = TransactionLog(b"t" * 12, new_arrays=[b"n" * 8], moved_nodes=moves)
    tx.updated_chunks[b"u" * 8] = np.array([[2, 1], [0, 5]], dtype=np.uint32)
    back = decode_transaction_log(encode_transaction_log(tx, SPEC_V2))
    assert [m.to_path for m in back.moved_nodes] == ["/a", "/a/b", "/a-b", "/ab"]
    assert back.new_arrays == [b"n" * 8]
    assert back.updated_chunks[b"u" * 8].tolist() == [[0, 5], [2, 1]]
    with pytest.raises(IcechunkError, match="cannot record moved nodes"):
        encode_transaction_log(tx, SPEC_V1)
    # a v1 log is unchanged and has no moves
    plain = TransactionLog(b"t" * 12, new_arrays=[b"n" * 8])
    assert decode_transaction_log(encode_transaction_log(plain)).moved_nodes == []


def test_damaged_transaction_log_raises_icechunk_error() -> None:
    _, buf = _open("v2_txlog_765H9C89N67175SWEJDG", FileType.TRANSACTION_LOG)
    rng = random.Random(5)
    for _ in range(600):
        damaged = bytearray(buf)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            decode_transaction_log(bytes(damaged))
        except IcechunkError:
            pass
    obj = encode_object(FileType.TRANSACTION_LOG, buf, spec_version=SPEC_V2)
    assert open_object(obj, FileType.TRANSACTION_LOG, "t") == (SPEC_V2, buf)
