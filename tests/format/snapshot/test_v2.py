"""Spec-2 snapshots (FORMAT-V2 §7), against 2.3.0's bytes."""

from __future__ import annotations

import random

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import root_table
from pyicechunk.format.header import SPEC_V1, SPEC_V2, FileType
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, decode_id
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
from pyicechunk.format.zarr_metadata import coords_in_grid, grid_upper

from .._fixtures import open_fixture


def test_initial_snapshot_as_2_3_0_writes_it() -> None:
    """FORMAT-V2 §7.3: root slots 0, 2-7; 184 bytes decompressed; FlexBuffer is_root."""
    spec, buf = open_fixture("v2_snapshot_initial", FileType.SNAPSHOT)
    assert spec == SPEC_V2 and len(buf) == 184
    reference = decode_snapshot(buf, spec)
    assert reference == initial_snapshot(reference.flushed_at, SPEC_V2)
    ours = encode_snapshot(reference, SPEC_V2)
    assert decode_snapshot(ours, SPEC_V2) == reference
    root = root_table(ours)
    assert [s for s in range(9) if root.field_pos(s, 1)] == [0, 2, 3, 4, 5, 6, 7]
    assert initial_snapshot(1, SPEC_V1).metadata == {"__root": True}


def test_reference_snapshot() -> None:
    spec, buf = open_fixture("v2_snapshot_79DH8SRVPXJ33KJPK7F0", FileType.SNAPSHOT)
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
    _, buf = open_fixture("v2_snapshot_79DH8SRVPXJ33KJPK7F0", FileType.SNAPSHOT)
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
