"""Damaged objects inside a repository are reported as damage, never read as other data.

Covered: a manifest that lacks the array its snapshot says it covers, or holds refs of another
dimensionality; transaction logs swapped between snapshots; a node's zarr.json that zarr cannot
read or that contradicts the snapshot. Every case is an IcechunkError that names the objects
involved, on reads and on commits, and a failed commit leaves the branch where it was.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from reliability_helpers import assets, open_repo, read_snapshot, rewrite_snapshot
from zarr.core.buffer import default_buffer_prototype

import pyicechunk as icechunk
from pyicechunk._sync import sync
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.manifest import ArrayManifest, InlinePayload
from pyicechunk.format.snapshot import ManifestFileInfo, Snapshot

PROTO = default_buffer_prototype()


@pytest.fixture
def two_arrays(tmp_path: Path) -> tuple[Path, str]:
    """main's tip has 1-d arrays /a and /b, each with its own manifest (inline chunks)."""
    path = tmp_path / "repo"
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = [1, 2, 3, 4]
    root.create_array("b", shape=(4,), chunks=(2,), dtype="i4")[:] = [5, 6, 7, 8]
    return path, session.commit("two arrays")


def node(snapshot: Snapshot, path: str) -> object:
    found = snapshot.get_node(path)
    assert found is not None and found.array is not None
    return found


def replace_manifest(path: Path, snapshot_id: str, array_path: str, arrays: list) -> str:
    """Give the manifest of ``array_path`` new content under its own id; return that id."""
    snapshot = read_snapshot(path, snapshot_id)
    target = node(snapshot, array_path)
    manifest_id = target.array.manifests[0].object_id  # type: ignore[attr-defined]
    (size,) = sync(assets(path).write_manifests([(manifest_id, arrays)]))
    files = tuple(
        ManifestFileInfo(m.id, size, sum(len(a) for a in arrays)) if m.id == manifest_id else m
        for m in snapshot.manifest_files
    )
    rewrite_snapshot(path, snapshot_id, manifest_files=files)
    return encode_id(manifest_id)


def manifest_of(path: Path, snapshot_id: str, array_path: str) -> ArrayManifest:
    snapshot = read_snapshot(path, snapshot_id)
    ref = node(snapshot, array_path).array.manifests[0]  # type: ignore[attr-defined]
    info = snapshot.manifest_info(ref.object_id)
    manifest = sync(assets(path).fetch_manifest(ref.object_id, info.size_bytes))
    return manifest.arrays[0]


def expect_damage(path: Path, snapshot_id: str, manifest_id: str) -> None:
    """Reading /a fails naming the manifest and the node; /b still reads; commits refuse."""
    repo = open_repo(path)
    session = repo.readonly_session(snapshot_id=snapshot_id)
    array = zarr.open_array(session.store, path="a", mode="r")
    with pytest.raises(IcechunkError) as info:
        array[:]
    assert manifest_id in info.value.message and "/a" in info.value.message
    np.testing.assert_array_equal(
        zarr.open_array(session.store, path="b", mode="r")[:], [5, 6, 7, 8]
    )
    tip = repo.lookup_branch("main")
    # A commit that rewrites /a's manifest must not drop the refs it cannot read.
    writer = repo.writable_session("main")
    zarr.open_array(writer.store, path="a", mode="r+")[0:2] = [10, 11]  # a whole chunk
    with pytest.raises(IcechunkError) as info:
        writer.commit("would lose chunks")
    assert manifest_id in info.value.message
    assert open_repo(path).lookup_branch("main") == tip


def test_manifest_without_the_array(two_arrays: tuple[Path, str]) -> None:
    path, snapshot_id = two_arrays
    b_refs = manifest_of(path, snapshot_id, "/b")
    manifest_id = replace_manifest(path, snapshot_id, "/a", [b_refs])
    expect_damage(path, snapshot_id, manifest_id)


def test_manifest_with_other_dimensions(two_arrays: tuple[Path, str]) -> None:
    path, snapshot_id = two_arrays
    a_node = node(read_snapshot(path, snapshot_id), "/a")
    flat = ArrayManifest.from_payloads(
        a_node.id,  # type: ignore[attr-defined]
        2,
        np.array([[0, 0], [1, 0]], dtype=np.uint32),
        [InlinePayload(b"\x01\x00\x00\x00\x02\x00\x00\x00")] * 2,
    )
    manifest_id = replace_manifest(path, snapshot_id, "/a", [flat])
    expect_damage(path, snapshot_id, manifest_id)


def test_chunk_coordinates_and_listing_report_the_damage(two_arrays: tuple[Path, str]) -> None:
    path, snapshot_id = two_arrays
    manifest_id = replace_manifest(path, snapshot_id, "/a", [manifest_of(path, snapshot_id, "/b")])
    store = open_repo(path).readonly_session(snapshot_id=snapshot_id).store

    async def keys() -> list[str]:
        return [k async for k in store.list()]

    with pytest.raises(IcechunkError, match=manifest_id):
        sync(keys())


def test_untouched_arrays_commit_without_reading_their_manifests(
    two_arrays: tuple[Path, str],
) -> None:
    """A commit carries an untouched array by reference; reads still report its damage."""
    path, snapshot_id = two_arrays
    manifest_id = replace_manifest(path, snapshot_id, "/a", [manifest_of(path, snapshot_id, "/b")])
    repo = open_repo(path)
    writer = repo.writable_session("main")
    zarr.open_array(writer.store, path="b", mode="r+")[0] = 50
    new = writer.commit("touches b only")
    session = repo.readonly_session(snapshot_id=new)
    np.testing.assert_array_equal(
        zarr.open_array(session.store, path="b", mode="r")[:], [50, 6, 7, 8]
    )
    with pytest.raises(IcechunkError, match=manifest_id):
        zarr.open_array(session.store, path="a", mode="r")[:]


def test_swapped_transaction_logs(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    base = repo.lookup_branch("main")
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("x", shape=(2,), chunks=(1,), dtype="i4")
    first = session.commit("creates /x")
    session = repo.writable_session("main")
    zarr.group(session.store).create_group("g")
    second = session.commit("creates /g")
    tx = path / "transactions"
    shutil.copyfile(tx / first, tmp_path / "first")
    shutil.copyfile(tx / second, tx / first)
    shutil.copyfile(tmp_path / "first", tx / second)
    repo = open_repo(path)
    for start, end in ((base, first), (first, second)):
        with pytest.raises(IcechunkError) as info:
            repo.diff(from_snapshot_id=start, to_snapshot_id=end)
        assert f"transactions/{end}" in info.value.message
        assert "renamed or damaged" in info.value.message


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (b"\xff\xfe{not json", "not valid JSON"),
        (b'{"zarr_format": 3, "node_type": "array"', "not valid JSON"),
        (b'["not", "an", "object"]', "must be a JSON object"),
        (b'{"zarr_format": 3, "node_type": "group"}', "describes a group"),
        (None, "differ from those the snapshot records"),
        (b"zarr-cannot-read", "zarr cannot read it"),
    ],
)
def test_damaged_zarr_json(two_arrays: tuple[Path, str], document: bytes | None, why: str) -> None:
    path, snapshot_id = two_arrays
    snapshot = read_snapshot(path, snapshot_id)
    a = snapshot.get_node("/a")
    assert a is not None
    original = a.user_data
    if document is None:  # valid, but not the array the snapshot describes
        document = json.dumps({**json.loads(original), "shape": [6]}).encode()
    elif document == b"zarr-cannot-read":  # the snapshot's checks pass, zarr's do not
        document = json.dumps({**json.loads(original), "data_type": "int33"}).encode()
    nodes = tuple(
        dataclasses.replace(n, user_data=document) if n.path == "/a" else n for n in snapshot.nodes
    )
    rewrite_snapshot(path, snapshot_id, nodes=nodes)
    store = open_repo(path).readonly_session(snapshot_id=snapshot_id).store
    with pytest.raises(IcechunkError) as info:
        sync(store.get("a/zarr.json", PROTO))
    message = info.value.message
    assert snapshot_id in message and "/a" in message and why in message, message
    with pytest.raises(IcechunkError):
        zarr.open_array(store, path="a", mode="r")
    with pytest.raises(IcechunkError):
        sync(store.get_partial_values(PROTO, [("a/zarr.json", None)]))
    # The other nodes are unharmed.
    np.testing.assert_array_equal(zarr.open_array(store, path="b", mode="r")[:], [5, 6, 7, 8])


@pytest.mark.parametrize("spec_version", [1, 2])
@pytest.mark.parametrize("field", ["new_arrays", "deleted_arrays", "updated_chunks"])
def test_transaction_log_naming_unknown_nodes(
    tmp_path: Path, field: str, spec_version: int
) -> None:
    """A damaged node id in a log would silently drop that change from the diff."""
    path = tmp_path / "repo"
    repo = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(path)), spec_version=spec_version
    )
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array("x", shape=(2,), chunks=(1,), dtype="i4")[:] = [1, 2]
    root.create_array("y", shape=(2,), chunks=(1,), dtype="i4")
    first = session.commit("creates /x and /y")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="x", mode="r+")[0] = 5
    del zarr.open_group(session.store, mode="r+")["y"]
    second = session.commit("writes /x, deletes /y")
    target = first if field == "new_arrays" else second
    snapshot = read_snapshot(path, target)
    parent_id = repo.lookup_snapshot(target).parent_id  # spec 2 snapshots do not name it
    assert parent_id is not None
    log = sync(assets(path).fetch_transaction_log(snapshot, read_snapshot(path, parent_id)))
    ghost = b"\x01" * 8
    if field == "updated_chunks":
        (_, coords), *rest = log.updated_chunks.items()
        damaged = dataclasses.replace(log, updated_chunks={ghost: coords, **dict(rest)})
    else:
        damaged = dataclasses.replace(log, **{field: [ghost, *getattr(log, field)[1:]]})
    sync(assets(path).write_transaction_log(damaged))
    with pytest.raises(IcechunkError) as info:
        open_repo(path).diff(from_snapshot_id=parent_id, to_snapshot_id=target)
    assert f"transactions/{target}" in info.value.message
    assert encode_id(ghost) in info.value.message
