"""A repository written by one implementation is read, diffed and extended by the other.

The repository is built by :func:`build_rich_repo` with deterministic data; every comparison is
between what implementation A and implementation B report for the same files on disk, so nothing
here restates expected values by hand except the builder's own inputs.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype


@dataclass
class Built:
    """What the builder did, for the assertions."""

    main_ids: list[str] = field(default_factory=list)
    dev_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    deleted_tag: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # at the tip of main


def build_rich_repo(ic: ModuleType, path: Path) -> Built:
    """Build the reference repository with implementation ``ic`` under ``path``."""
    rs = np.random.RandomState(1234)
    # spec 1 from pyicechunk too: the reader may be icechunk 1.1.21
    spec = {"spec_version": 1} if ic.__name__ == "pyicechunk" else {}
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), **spec)
    built = Built()

    # 1: hierarchy, several dtypes, 0-d, sharded, inline and native chunk sizes.
    session = repo.writable_session("main")
    root = zarr.create_group(session.store, attributes={"title": "interop", "levels": [1, 2, 3]})
    grp = root.create_group("grp", attributes={"kind": "nested", "nested": {"x": 1.5}})
    sub = grp.create_group("sub")
    sub.create_group("leaf", attributes={"empty": None})
    f8 = grp.create_array("f8", shape=(20, 30), chunks=(10, 7), dtype="f8", fill_value=-1.0)
    f8[:] = rs.standard_normal((20, 30))
    i2 = root.create_array("i2", shape=(9,), chunks=(4,), dtype="i2")
    i2[:] = rs.randint(-300, 300, size=9)
    scalar = root.create_array("scalar", shape=(), dtype="f4", fill_value=0.0)
    scalar[()] = np.float32(3.25)
    flags = root.create_array("flags", shape=(7, 3), chunks=(2, 2), dtype="bool")
    flags[:] = rs.rand(7, 3) > 0.5
    # Raw (uncompressed) u1 chunks of 511, 512 and 513 bytes straddle the inline threshold.
    for n in (511, 512, 513):
        arr = sub.create_array(f"u1_{n}", shape=(2 * n,), chunks=(n,), dtype="u1", compressors=None)
        arr[:] = rs.randint(1, 255, size=2 * n).astype("u1")
    sharded = root.create_array(
        "sharded", shape=(16, 16), chunks=(4, 4), shards=(8, 8), dtype="i4", fill_value=0
    )
    sharded[:12, :] = rs.randint(1, 1000, size=(12, 16))
    u8 = grp.create_array("u8", shape=(50,), chunks=(10,), dtype="u8", dimension_names=["t"])
    u8[:] = rs.randint(0, 2**40, size=50).astype("u8")
    built.main_ids.append(session.commit("create hierarchy", metadata={"step": 1, "who": "A"}))

    # 2: overwrite data and delete a chunk by writing the fill value.
    session = repo.writable_session("main")
    f8 = zarr.open_array(session.store, path="grp/f8", mode="r+")
    f8[0:10, 0:7] = -1.0
    f8[10:, 7:14] = rs.standard_normal((10, 7))
    zarr.open_array(session.store, path="i2", mode="r+")[4:8] = rs.randint(-9, 9, size=4)
    built.main_ids.append(session.commit("edit and drop a chunk", metadata={"step": 2}))

    # 3: shrink an array so trailing chunks drop; change root attributes.
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root["grp/f8"].resize((15, 20))
    root["sharded"].resize((8, 16))
    root.attrs["title"] = "interop, resized"
    built.main_ids.append(
        session.commit("resize", metadata={"step": 3, "nested": {"a": [1, None]}})
    )

    # 4: delete nodes.
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    del root["grp/sub/leaf"]
    del root["flags"]
    built.main_ids.append(session.commit("delete nodes", metadata={"step": 4}))

    # 5: a new array and more data.
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    late = root.create_array("late", shape=(3, 4), chunks=(3, 2), dtype="i8")
    late[:] = rs.randint(0, 100, size=(3, 4))
    root["grp/u8"][20:30] = 7
    built.main_ids.append(session.commit("late additions", metadata={"step": 5, "ok": True}))

    # A second branch with its own commit.
    repo.create_branch("dev", built.main_ids[2])
    session = repo.writable_session("dev")
    dev_root = zarr.open_group(session.store, mode="r+")
    dev_root.create_group("dev_only", attributes={"branch": "dev"})
    dev_root["i2"][:] = 1
    built.dev_id = session.commit("dev work", metadata={"branch": "dev"})

    # Tags, one of them deleted.
    built.tags = {"v1": built.main_ids[0], "v3": built.main_ids[2], "dev-tip": built.dev_id}
    for name, sid in built.tags.items():
        repo.create_tag(name, sid)
    repo.create_tag("withdrawn", built.main_ids[1])
    repo.delete_tag("withdrawn")
    built.deleted_tag = "withdrawn"

    tip = repo.readonly_session("main")
    built.arrays = {
        k: np.asarray(v) for k, v in _arrays(zarr.open_group(tip.store, mode="r")).items()
    }
    return built


def _arrays(group: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in group.members():
        path = f"{prefix}{name}"
        if isinstance(member, zarr.Group):
            out.update(_arrays(member, path + "/"))
        else:
            out[path] = member[...]
    return out


def _keys_and_bytes(session: Any) -> dict[str, bytes]:
    """Every key the store lists, with its bytes: metadata documents and every chunk."""
    store = session.store

    async def main() -> dict[str, bytes]:
        keys = [key async for key in store.list()]
        values = await asyncio.gather(*(store.get(k, default_buffer_prototype()) for k in keys))
        assert all(v is not None for v in values), keys
        return {k: v.to_bytes() for k, v in zip(keys, values, strict=True)}

    return asyncio.run(main())


@dataclass
class View:
    """One implementation's reading of one snapshot."""

    raw: dict[str, bytes]
    arrays: dict[str, Any]
    attrs: dict[str, Any]
    chunk_types: dict[tuple[str, tuple[int, ...]], int]


def _view(repo: Any, snapshot_id: str) -> View:
    session = repo.readonly_session(snapshot_id=snapshot_id)
    raw = _keys_and_bytes(session)
    if "zarr.json" not in raw:  # the initial snapshot has no root group
        return View(raw, {}, {}, {})
    root = zarr.open_group(session.store, mode="r")
    attrs: dict[str, Any] = {"": dict(root.attrs)}
    for path, member in root.members(max_depth=None):
        attrs[path] = dict(member.attrs)
    chunks = []
    for key in raw:
        if "/c/" in key:
            path, coords = key.split("/c/")
            chunks.append((path, tuple(int(c) for c in coords.split("/"))))

    async def types() -> list[Any]:
        calls = (session.chunk_type_async("/" + p, list(i)) for p, i in chunks)
        return list(await asyncio.gather(*calls))

    kinds = asyncio.run(types())
    return View(raw, _arrays(root), attrs, {c: int(k) for c, k in zip(chunks, kinds, strict=True)})


def _history(repo: Any, **ref: str) -> list[tuple[Any, ...]]:
    return [
        (
            s.id,
            s.parent_id,
            s.message,
            s.metadata,
            s.written_at,
            sorted((m.id, m.size_bytes, m.num_chunk_refs) for m in s.manifests),
        )
        for s in repo.ancestry(**ref)
    ]


def _diff_fields(diff: Any) -> dict[str, Any]:
    return {
        "new_groups": set(diff.new_groups),
        "new_arrays": set(diff.new_arrays),
        "deleted_groups": set(diff.deleted_groups),
        "deleted_arrays": set(diff.deleted_arrays),
        "updated_groups": set(diff.updated_groups),
        "updated_arrays": set(diff.updated_arrays),
        "updated_chunks": {k: sorted(map(tuple, v)) for k, v in diff.updated_chunks.items()},
        "text": str(diff),
    }


def _all_snapshots(repo: Any) -> list[str]:
    ids: list[str] = []
    for branch in sorted(repo.list_branches()):
        ids.extend(s.id for s in repo.ancestry(branch=branch))
    return sorted(set(ids))


def _assert_same_repository(a: Any, b: Any, checked: set[str]) -> None:
    """Implementations behind ``a`` and ``b`` report the same refs, history, data and diffs.

    Snapshots are immutable, so those in ``checked`` are not compared again; the newly compared
    ones are added to it.
    """
    assert a.list_branches() == b.list_branches()
    assert a.list_tags() == b.list_tags()
    for branch in a.list_branches():
        assert a.lookup_branch(branch) == b.lookup_branch(branch)
        assert _history(a, branch=branch) == _history(b, branch=branch)
    for tag in a.list_tags():
        assert a.lookup_tag(tag) == b.lookup_tag(tag)
        assert _history(a, tag=tag) == _history(b, tag=tag)
    for sid in sorted(set(_all_snapshots(a)) - checked):
        view_a, view_b = _view(a, sid), _view(b, sid)
        assert view_a.raw == view_b.raw, sid
        assert view_a.arrays.keys() == view_b.arrays.keys()
        for path, data in view_a.arrays.items():
            np.testing.assert_array_equal(data, view_b.arrays[path], err_msg=f"{sid} {path}")
            assert data.dtype == view_b.arrays[path].dtype
        assert view_a.attrs == view_b.attrs
        assert view_a.chunk_types == view_b.chunk_types
        checked.add(sid)
    for branch in a.list_branches():
        chain = [s.id for s in a.ancestry(branch=branch)]
        for newer, older in itertools.pairwise(chain):
            diff_a = a.diff(from_snapshot_id=older, to_snapshot_id=newer)
            diff_b = b.diff(from_snapshot_id=older, to_snapshot_id=newer)
            assert _diff_fields(diff_a) == _diff_fields(diff_b), (older, newer)
        if len(chain) > 2:
            whole_a = a.diff(from_snapshot_id=chain[-1], to_branch=branch)
            assert _diff_fields(whole_a) == _diff_fields(
                b.diff(from_snapshot_id=chain[-1], to_branch=branch)
            )


def test_roundtrip(pair: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    mod_a, mod_b = pair
    path = tmp_path / "repo"
    built = build_rich_repo(mod_a, path)
    repo_a = mod_a.Repository.open(mod_a.local_filesystem_storage(str(path)))
    repo_b = mod_b.Repository.open(mod_b.local_filesystem_storage(str(path)))

    # The builder really produced what the assertions rely on.
    assert [s.id for s in repo_a.ancestry(branch="main")][:-1] == built.main_ids[::-1]
    assert repo_b.list_tags() == set(built.tags)
    assert repo_b.list_branches() == {"main", "dev"}
    tip_view = _view(repo_b, built.main_ids[-1])
    assert {int(mod_b.ChunkType.INLINE), int(mod_b.ChunkType.NATIVE)} <= set(
        tip_view.chunk_types.values()
    )
    # The 512-byte chunk is the largest inline one; 513 bytes goes to its own object.
    assert tip_view.chunk_types[("grp/sub/u1_512", (0,))] == int(mod_b.ChunkType.INLINE)
    assert tip_view.chunk_types[("grp/sub/u1_513", (0,))] == int(mod_b.ChunkType.NATIVE)
    tip_b = tip_view.arrays
    assert tip_b.keys() == built.arrays.keys()
    for name, data in built.arrays.items():
        np.testing.assert_array_equal(tip_b[name], data)
    assert tip_b["grp/f8"].shape == (15, 20)
    assert "flags" not in tip_b

    checked: set[str] = set()
    _assert_same_repository(repo_a, repo_b, checked)

    # B writes on top of A's history; A reads it back.
    session = repo_b.writable_session("main")
    root = zarr.open_group(session.store, mode="r+")
    root["i2"][:] = np.arange(9, dtype="i2")
    root["grp/f8"][5:15, 0:7] = 2.5
    added = root.create_array("from_b", shape=(6,), chunks=(4,), dtype="f4", attributes={"by": "B"})
    added[:] = np.linspace(0, 1, 6, dtype="f4")
    del root["grp/sub/u1_511"]
    b_sid = session.commit("written by B", metadata={"by": mod_b.__name__})
    repo_b.create_tag("from-b", b_sid)
    dev_session = repo_b.writable_session("dev")
    zarr.open_group(dev_session.store, mode="r+").attrs["dev_by_b"] = True
    dev_sid = dev_session.commit("dev by B")

    repo_a = mod_a.Repository.open(mod_a.local_filesystem_storage(str(path)))
    assert repo_a.lookup_branch("main") == b_sid
    assert repo_a.lookup_tag("from-b") == b_sid
    assert repo_a.lookup_branch("dev") == dev_sid
    info = repo_a.lookup_snapshot(b_sid)
    assert (info.parent_id, info.message, info.metadata) == (
        built.main_ids[-1],
        "written by B",
        {"by": mod_b.__name__},
    )
    back = _view(repo_a, b_sid).arrays
    np.testing.assert_array_equal(back["i2"], np.arange(9, dtype="i2"))
    np.testing.assert_array_equal(back["from_b"], np.linspace(0, 1, 6, dtype="f4"))
    assert (back["grp/f8"][5:15, 0:7] == 2.5).all()
    assert "grp/sub/u1_511" not in back
    diff = repo_a.diff(from_snapshot_id=built.main_ids[-1], to_branch="main")
    assert diff.new_arrays == {"/from_b"}
    assert diff.deleted_arrays == {"/grp/sub/u1_511"}
    assert set(diff.updated_chunks) == {"/i2", "/grp/f8", "/from_b"}

    _assert_same_repository(repo_a, repo_b, checked)

    # And A can keep committing on top of B.
    session = repo_a.writable_session("main")
    zarr.open_array(session.store, path="from_b", mode="r+")[0] = -1
    a_sid = session.commit("A after B")
    assert repo_b.lookup_snapshot(a_sid).parent_id == b_sid
    view = _view(repo_b, a_sid).arrays
    assert view["from_b"][0] == -1
