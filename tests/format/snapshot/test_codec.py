"""The snapshot flatbuffer: both ways with icechunk 1.1.21, round trips, damage and semantic
errors."""

from __future__ import annotations

import asyncio
import json
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import FileType, decode_object, encode_object
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, decode_id, encode_id
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

RNG = np.random.default_rng(42)


def _open(path: Path) -> icechunk.Repository:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))


def _build_reference_repo(path: Path) -> dict[str, Any]:
    """Write a repository with the reference and return the arrays it holds at the tip."""
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    s = repo.writable_session("main")
    root = zarr.group(store=s.store, attributes={"title": "hello", "n": {"b": [1, 2.5], "a": None}})
    grp = root.create_group("grp", attributes={"unit": "m"})
    grp.create_group("sub")
    ints = grp.create_array(
        "ints", shape=(10, 7), chunks=(3, 4), dtype="i4", dimension_names=["x", None]
    )
    ints[:] = np.arange(70, dtype="i4").reshape(10, 7)
    floats = root.create_array("floats", shape=(1000,), chunks=(300,), dtype="f8")
    floats[:] = RNG.random(1000)  # random data: chunks above the inline threshold
    scalar = root.create_array("scalar", shape=(), dtype="u2")
    scalar[()] = 7
    sharded = root.create_array(
        "sharded", shape=(8, 8), chunks=(2, 2), shards=(4, 4), dtype="u1", dimension_names=["y", ""]
    )
    sharded[:] = np.arange(64, dtype="u1").reshape(8, 8)
    root.create_array("a-b", shape=(3,), chunks=(3,), dtype="i8")  # no chunks written
    flags = root.create_group("a").create_array("b", shape=(4,), chunks=(2,), dtype="bool")
    flags[:] = [True, False, True, True]
    s.commit(
        "first commit",
        metadata={"author": "me", "nested": {"z": 1, "a": [1.5, -3, None, True]}, "neg": -(2**40)},
    )

    s = repo.writable_session("main")
    root = zarr.open_group(store=s.store)
    root["grp/ints"][0, 0] = 99  # rewrites one manifest, keeps the others
    del root["a"]
    s.commit("second: ünïcode ✓", metadata={"float": 0.1, "big": 2**63})

    s = repo.writable_session("main")
    zarr.open_group(store=s.store).attrs["title"] = "changed"
    s.commit("third")
    return {
        "grp/ints": zarr.open_array(store=repo.readonly_session("main").store, path="grp/ints")[:],
    }


@pytest.fixture(scope="module")
def reference_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "repo"
    _build_reference_repo(path)
    return path


def _read_key(repo: icechunk.Repository, snapshot_id: str, key: str) -> bytes:
    store = repo.readonly_session(snapshot_id=snapshot_id).store
    buf = asyncio.run(store.get(key, prototype=default_buffer_prototype()))
    assert buf is not None, key
    return bytes(buf.to_bytes())


def _decode_file(path: Path) -> Snapshot:
    return decode_snapshot(decode_object(path.read_bytes(), FileType.SNAPSHOT, str(path)))


def _micros(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_decodes_every_reference_snapshot(reference_repo: Path) -> None:
    repo = _open(reference_repo)
    infos = list(repo.ancestry(branch="main"))
    files = sorted(p.name for p in (reference_repo / "snapshots").iterdir())
    assert sorted(i.id for i in infos) == files
    assert len(infos) == 4
    for info in infos:
        snap = _decode_file(reference_repo / "snapshots" / info.id)
        assert encode_id(snap.id) == info.id
        assert (None if snap.parent_id is None else encode_id(snap.parent_id)) == info.parent_id
        assert snap.message == info.message
        assert snap.metadata == info.metadata
        assert snap.flushed_at == _micros(info.written_at)

        report = json.loads(repo.inspect_snapshot(info.id, pretty=False))
        assert [n.path for n in snap.nodes] == [n["path"] for n in report["nodes"]]
        for node, expected in zip(snap.nodes, report["nodes"], strict=True):
            assert encode_id(node.id) == expected["id"]
            assert ("array" if node.is_array else "group") == expected["node_type"]
            if node.array is not None:
                refs = [
                    {"id": encode_id(r.object_id), "extents": [list(e) for e in r.extents]}
                    for r in node.array.manifests
                ]
                assert refs == expected["manifest_refs"]
            key = "zarr.json" if node.path == "/" else node.path[1:] + "/zarr.json"
            assert node.user_data == _read_key(repo, info.id, key)
        infos_by_id = {m["id"]: (m["size_bytes"], m["num_chunk_refs"]) for m in report["manifests"]}
        assert {
            encode_id(m.id): (m.size_bytes, m.num_chunk_refs) for m in snap.manifest_files
        } == infos_by_id
        for m in snap.manifest_files:
            assert (reference_repo / "manifests" / encode_id(m.id)).stat().st_size == m.size_bytes


def test_decoded_array_details(reference_repo: Path) -> None:
    tip = next(_open(reference_repo).ancestry(branch="main")).id
    snap = _decode_file(reference_repo / "snapshots" / tip)
    ints = snap.get_node("/grp/ints")
    assert ints is not None and ints.array is not None
    assert ints.array.shape == (DimensionShape(10, 3), DimensionShape(7, 4))
    assert ints.array.dimension_names == ("x", None)
    sharded = snap.get_node("/sharded")
    assert sharded is not None and sharded.array is not None
    assert sharded.array.shape == (DimensionShape(8, 4), DimensionShape(8, 4))
    assert sharded.array.dimension_names == ("y", None)  # "" is stored as an unnamed dimension
    scalar = snap.get_node("/scalar")
    assert scalar is not None and scalar.array is not None
    assert scalar.array.shape == () and scalar.array.dimension_names is None
    assert [r.extents for r in scalar.array.manifests] == [()]
    empty = snap.get_node("/a-b")
    assert empty is not None and empty.array is not None and empty.array.manifests == ()
    assert snap.get_node("/a") is None and snap.get_node("/a/b") is None  # deleted
    assert [n.path for n in snap.iter_descendants("/grp")] == ["/grp/ints", "/grp/sub"]


def test_initial_snapshot_matches_reference(reference_repo: Path) -> None:
    ref = _decode_file(reference_repo / "snapshots" / encode_id(INITIAL_SNAPSHOT_ID))
    assert initial_snapshot(ref.flushed_at) == ref


def test_reference_reads_reencoded_snapshots(reference_repo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(reference_repo, copy)
    for path in (copy / "snapshots").iterdir():
        snap = _decode_file(path)
        buf = encode_snapshot(snap)
        assert decode_snapshot(buf) == snap
        path.write_bytes(encode_object(FileType.SNAPSHOT, buf))
        assert path.read_bytes() != (reference_repo / "snapshots" / path.name).read_bytes()

    original, rewritten = _open(reference_repo), _open(copy)
    infos = list(original.ancestry(branch="main"))
    assert [(i.id, i.parent_id, i.message, i.metadata, i.written_at) for i in infos] == [
        (i.id, i.parent_id, i.message, i.metadata, i.written_at)
        for i in rewritten.ancestry(branch="main")
    ]
    for info in infos:
        assert json.loads(original.inspect_snapshot(info.id, pretty=False)) == json.loads(
            rewritten.inspect_snapshot(info.id, pretty=False)
        )
        if info.parent_id is None:
            continue  # the initial snapshot holds no nodes
        a = zarr.open_group(store=original.readonly_session(snapshot_id=info.id).store, mode="r")
        b = zarr.open_group(store=rewritten.readonly_session(snapshot_id=info.id).store, mode="r")
        arrays = dict(a.arrays())
        assert len(arrays) >= 4
        for name, arr in arrays.items():
            np.testing.assert_array_equal(arr[...], b[name][...])
        assert dict(a.attrs) == dict(b.attrs)

    # The reference can also commit on top of a snapshot we wrote.
    s = rewritten.writable_session("main")
    zarr.open_array(store=s.store, path="scalar")[()] = 11
    s.commit("on top")
    tip = zarr.open_array(store=rewritten.readonly_session("main").store, path="scalar")
    assert tip[()] == 11


def test_reference_reads_snapshot_built_from_scratch(tmp_path: Path) -> None:
    """A repository whose only snapshot file was written by us, with unsorted input."""
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "r")))
    s = repo.writable_session("main")
    zarr.group(store=s.store)
    s.commit("reference group")
    tip = next(repo.ancestry(branch="main"))
    base = _decode_file(tmp_path / "r" / "snapshots" / tip.id)
    group_json = base.nodes[0].user_data
    nodes = tuple(
        NodeSnapshot(bytes([i]) * 8, p, group_json, None)
        for i, p in enumerate(["/z", "/a/b", "/", "/a-b", "/a", "/é"])
    )
    ours = Snapshot(
        id=base.id,
        parent_id=base.parent_id,
        nodes=nodes,
        flushed_at=base.flushed_at,
        message="",
        metadata={"k": {"b": [1, {"y": 2, "x": None}], "a": 2**64 - 1}, "": -1.25},
        manifest_files=(),
    )
    (tmp_path / "r" / "snapshots" / tip.id).write_bytes(
        encode_object(FileType.SNAPSHOT, encode_snapshot(ours))
    )
    repo = _open(tmp_path / "r")
    info = next(repo.ancestry(branch="main"))
    assert info.metadata == ours.metadata and info.message == ""
    group = zarr.open_group(store=repo.readonly_session("main").store, mode="r")
    assert sorted(name for name, _ in group.members(max_depth=None)) == [
        "a",
        "a-b",
        "a/b",
        "z",
        "é",
    ]


def _sample_snapshot() -> Snapshot:
    array = ArrayNodeData(
        shape=(DimensionShape(10, 3), DimensionShape(2**40, 2**33)),
        dimension_names=("t", None),
        manifests=(
            ManifestRef(b"M" * 12, ((0, 2), (0, 1))),
            ManifestRef(b"N" * 12, ((2, 4), (0, 1))),
        ),
    )
    return Snapshot(
        id=b"S" * 12,
        parent_id=b"P" * 12,
        nodes=(
            NodeSnapshot(b"1" * 8, "/", b'{"node_type":"group"}', None),
            NodeSnapshot(b"2" * 8, "/arr", b"{}", array),
            NodeSnapshot(b"3" * 8, "/arr0", b"", None),
        ),
        flushed_at=1_700_000_000_000_000,
        message="msg",
        metadata={"x": [1, 2], "a": "b"},
        manifest_files=(ManifestFileInfo(b"N" * 12, 300, 2), ManifestFileInfo(b"M" * 12, 2**40, 5)),
    )


def test_round_trip_and_sorting() -> None:
    snap = _sample_snapshot()
    decoded = decode_snapshot(encode_snapshot(snap))
    assert decoded == snap
    assert [m.id for m in decoded.manifest_files] == [b"M" * 12, b"N" * 12]
    assert decoded.manifest_info(b"N" * 12) == ManifestFileInfo(b"N" * 12, 300, 2)
    assert decoded.manifest_info(b"X" * 12) is None
    unsorted = Snapshot(snap.id, None, tuple(reversed(snap.nodes)), 0, "", {}, snap.manifest_files)
    assert [n.path for n in unsorted.nodes] == ["/", "/arr", "/arr0"]
    assert decode_snapshot(encode_snapshot(unsorted)).parent_id is None


def test_damaged_buffers_raise_only_icechunk_error() -> None:
    buf = encode_snapshot(_sample_snapshot())
    for cut in range(0, len(buf), 7):
        with pytest.raises(IcechunkError):
            decode_snapshot(buf[:cut])
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    for i in range(len(buf)):
        for value in (0x00, 0xFF, int(rng.integers(256))):
            damaged = bytearray(buf)
            damaged[i] = value
            try:
                decode_snapshot(bytes(damaged))
                outcomes["ok"] += 1
            except IcechunkError as exc:
                assert "malformed" in str(exc)
                outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0


def _tamper(snap: Snapshot, **changes: Any) -> bytes:
    """Encode, then damage the buffer the way a foreign writer might."""
    fields = {
        "id": snap.id,
        "parent_id": snap.parent_id,
        "nodes": snap.nodes,
        "flushed_at": snap.flushed_at,
        "message": snap.message,
        "metadata": snap.metadata,
        "manifest_files": snap.manifest_files,
    }
    fields.update(changes)
    return encode_snapshot(Snapshot(**fields))


def test_semantic_errors_are_reported() -> None:
    snap = _sample_snapshot()
    # A non-canonical path written by someone else: patch the encoded string in place.
    buf = encode_snapshot(snap).replace(b"\x04\x00\x00\x00/arr\x00", b"\x04\x00\x00\x00/ar/\x00")
    with pytest.raises(IcechunkError, match=r"Snapshot\.nodes.*path"):
        decode_snapshot(buf)
    two = (NodeSnapshot(b"1" * 8, "/x", b"", None), NodeSnapshot(b"2" * 8, "/y", b"", None))
    twice = _tamper(snap, nodes=two).replace(b"/y\x00", b"/x\x00")
    with pytest.raises(IcechunkError, match="two nodes at path '/x'"):
        decode_snapshot(twice)
    with pytest.raises(IcechunkError, match="invalid node path"):
        encode_snapshot(
            Snapshot(snap.id, None, (NodeSnapshot(bytes(8), "a", b"", None),), 0, "", {}, ())
        )
    with pytest.raises(ValueError, match="8 bytes"):
        encode_snapshot(
            Snapshot(snap.id, None, (NodeSnapshot(bytes(7), "/", b"", None),), 0, "", {}, ())
        )


def test_missing_required_field_names_the_field() -> None:
    from pyicechunk.format.flatbuf import Builder

    b = Builder()
    message = b.create_string("m")
    nodes = b.create_offset_vector([])
    b.start_table(7)
    b.add_struct(0, b"S" * 12, 1)
    b.add_offset(2, nodes)
    b.add_offset(4, message)
    buf = b.finish(b.end_table())
    with pytest.raises(IcechunkError, match=r"required field Snapshot\.metadata is missing"):
        decode_snapshot(buf)


def test_union_tag_zero_is_rejected() -> None:
    from pyicechunk.format.flatbuf import Builder

    b = Builder()
    path = b.create_string("/")
    user_data = b.create_bytes_vector(b"")
    b.start_table(0)
    group = b.end_table()
    b.start_table(5)
    b.add_struct(0, bytes(8), 1)
    b.add_offset(1, path)
    b.add_offset(2, user_data)
    b.add_offset(4, group)  # tag left at its default, NONE
    node = b.end_table()
    nodes = b.create_offset_vector([node])
    message = b.create_string("")
    empty = b.create_offset_vector([])
    files = b.create_vector(b"", 32, 8)
    b.start_table(7)
    b.add_struct(0, b"S" * 12, 1)
    for slot, ref in ((2, nodes), (4, message), (5, empty), (6, files)):
        b.add_offset(slot, ref)
    with pytest.raises(IcechunkError, match="invalid union type 0"):
        decode_snapshot(b.finish(b.end_table()))


def test_decode_id_used_by_snapshot_files(reference_repo: Path) -> None:
    for path in (reference_repo / "snapshots").iterdir():
        assert _decode_file(path).id == decode_id(path.name, 12)
