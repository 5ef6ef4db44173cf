"""A history built from rebased commits and merged forks, read back by icechunk 1.1.21."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import zarr
import zarr.errors
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import pyicechunk
from pyicechunk import BasicConflictSolver, ConflictDetector

MERGE = BasicConflictSolver(merge_metadata=True)


def _array(session: pyicechunk.Session, path: str) -> zarr.Array[Any]:
    return zarr.open_array(session.store, path=path, mode="r+")


def _build(path: str) -> pyicechunk.Repository:
    # spec 1: icechunk 1.1.21 reads it
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(path), spec_version=1)
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "history"})
    root.create_array("grid", shape=(8,), chunks=(2,), dtype="i4", fill_value=-1)
    root.create_array("table", shape=(4, 2), chunks=(1, 2), dtype="f8", fill_value=np.nan)
    root.create_group("extra").create_array("gone", shape=(2,), chunks=(1,), dtype="u1")
    session.commit("setup")

    # a rebase over a disjoint chunk write, with the plain solver
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _array(theirs, "grid")[0:2] = [1, 2]
    theirs.commit("theirs: grid[0:2]")
    _array(ours, "grid")[4:6] = [5, 6]
    ours.commit("ours: grid[4:6]", rebase_with=BasicConflictSolver())

    # a rebase over a chunk both wrote (ours wins) and a deletion of the other side's node
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _array(theirs, "grid")[2:4] = [30, 40]
    _array(theirs, "extra/gone")[:] = [1, 1]
    theirs.commit("theirs: grid[2:4], gone")
    _array(ours, "grid")[2:4] = [3, 4]
    zarr.open_group(ours.store, mode="r+").__delitem__("extra/gone")
    ours.commit("ours: grid[2:4], delete gone", rebase_with=BasicConflictSolver())

    # both sides resize grid and change attributes of grid and the root: merge_metadata
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    grid = _array(theirs, "grid")
    grid.resize((10,))
    grid.attrs["theirs"] = 1
    grid[6:8] = [7, 8]
    zarr.open_group(theirs.store, mode="r+").attrs["theirs"] = True
    theirs.commit("theirs: grow grid to 10")
    grid = _array(ours, "grid")
    grid.resize((12,))
    grid.attrs["ours"] = 2
    grid[10:12] = [11, 12]
    zarr.open_group(ours.store, mode="r+").attrs["ours"] = [1, 2]
    ours.commit("ours: grow grid to 12", rebase_with=MERGE)

    # chunk writes into an array whose attributes the other side changed
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _array(theirs, "table").attrs["units"] = "K"
    theirs.commit("theirs: table units")
    _array(ours, "table")[0] = [0.5, 1.5]
    ours.commit("ours: table[0]", rebase_with=MERGE)

    # forks that write disjoint parts, merged and committed
    session = repo.writable_session("main")
    forks = [session.fork() for _ in range(3)]
    for i, fork in enumerate(forks[:2]):
        _array(fork, "table")[i + 1] = [10.0 * i, 10.0 * i + 1]
    zarr.open_group(forks[2].store, mode="r+").create_group("extra/new")
    session.merge(*forks)
    session.commit("merged forks")

    # a session that rebases over the merged forks' commit
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    theirs_forks = [theirs.fork()]
    _array(theirs_forks[0], "table")[3] = [3.0, 3.5]
    theirs.merge(*theirs_forks)
    theirs.commit("theirs: merged fork table[3]")
    _array(ours, "grid")[8:10] = [9, 10]
    ours.commit("ours: grid[8:10]", rebase_with=ConflictDetector())
    return repo


def _walk(group: zarr.Group, prefix: str = "") -> dict[str, Any]:
    """Every node below ``group``: arrays as (shape, attributes, data), groups as attributes."""
    out: dict[str, Any] = {}
    for name, member in sorted(group.members()):
        path = f"{prefix}/{name}"
        if isinstance(member, zarr.Array):
            out[path] = (member.shape, dict(member.attrs), member[...])
        else:
            out[path] = dict(member.attrs)
            out.update(_walk(member, path))
    return out


def _tree(store: Any) -> dict[str, Any]:
    """``_walk`` of the root group, or nothing for a snapshot without one (the initial one)."""
    try:
        return {"/": "root", **_walk(zarr.open_group(store, mode="r"))}
    except zarr.errors.GroupNotFoundError:
        return {}


def _raw_metadata(store: Any, paths: list[str]) -> dict[str, bytes | None]:
    proto = default_buffer_prototype()
    out = {}
    for path in ["", *(p.lstrip("/") + "/" for p in paths)]:
        buf = sync(store.get(f"{path}zarr.json", proto))
        out[path] = None if buf is None else bytes(buf.to_bytes())
    return out


def _same_tree(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for path, mine in a.items():
        theirs = b[path]
        if isinstance(mine, tuple):
            assert mine[:2] == theirs[:2], path
            np.testing.assert_array_equal(mine[2], theirs[2], err_msg=path)
        else:
            assert mine == theirs, path


def _diff_fields(diff: Any) -> dict[str, Any]:
    return {
        "new_groups": set(diff.new_groups),
        "new_arrays": set(diff.new_arrays),
        "deleted_groups": set(diff.deleted_groups),
        "deleted_arrays": set(diff.deleted_arrays),
        "updated_groups": set(diff.updated_groups),
        "updated_arrays": set(diff.updated_arrays),
        "updated_chunks": {
            path: sorted(list(c) for c in coords) for path, coords in diff.updated_chunks.items()
        },
    }


def test_reference_reads_rebased_and_merged_history(tmp_path: Path) -> None:
    path = str(tmp_path / "repo")
    ours = _build(path)
    ref = icechunk.Repository.open(icechunk.local_filesystem_storage(path))

    history = [(s.id, s.message) for s in ours.ancestry(branch="main")]
    assert [(s.id, s.message) for s in ref.ancestry(branch="main")] == history
    assert len(history) == 13

    for snapshot_id, message in history:
        mine = ours.readonly_session(snapshot_id=snapshot_id).store
        theirs = ref.readonly_session(snapshot_id=snapshot_id).store
        tree, reference_tree = _tree(mine), _tree(theirs)
        _same_tree(tree, reference_tree)
        arrays = [p for p, v in tree.items() if isinstance(v, tuple)]
        assert _raw_metadata(mine, arrays) == _raw_metadata(theirs, arrays), message

    for (newer, message), (older, _) in itertools.pairwise(history):
        expected = _diff_fields(ref.diff(from_snapshot_id=older, to_snapshot_id=newer))
        assert _diff_fields(ours.diff(from_snapshot_id=older, to_snapshot_id=newer)) == expected, (
            message
        )

    # the end state is what the sessions meant to write
    final = _walk(zarr.open_group(ref.readonly_session("main").store, mode="r"))
    shape, attrs, grid = final["/grid"]
    assert shape == (12,)
    assert attrs == {"theirs": 1, "ours": 2}
    np.testing.assert_array_equal(grid, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(
        final["/table"][2], [[0.5, 1.5], [0.0, 1.0], [10.0, 11.0], [3.0, 3.5]]
    )
    assert final["/table"][1] == {"units": "K"}
    root = zarr.open_group(ref.readonly_session("main").store, mode="r")
    assert dict(root.attrs) == {"title": "history", "theirs": True, "ours": [1, 2]}
    assert "/extra/gone" not in final and "/extra/new" in final
