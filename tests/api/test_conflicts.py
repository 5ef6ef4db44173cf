"""Commit conflicts, rebase and conflict solvers (API-1.1 §8, behaviours 10-15)."""

from __future__ import annotations

import pickle
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr
from parity import commit_array, differs, msg


def _two_sessions(repo: Any) -> tuple[str, Any, Any]:
    base = commit_array(repo, values=np.array([1, 2], dtype="i4"))
    return base, repo.writable_session("main"), repo.writable_session("main")


def _write(session: Any, index: int, value: int) -> None:
    zarr.open_array(session.store, path="a", mode="r+")[index] = value


def _read(repo: Any) -> list[int]:
    return list(
        zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:].tolist()
    )


def test_conflict_error(ic: ModuleType, repo: Any) -> None:
    base, ours, theirs = _two_sessions(repo)
    _write(theirs, 0, 10)
    tip = theirs.commit("theirs")
    _write(ours, 0, 20)
    with pytest.raises(ic.ConflictError) as info:
        ours.commit("ours")
    err = info.value
    assert err.expected_parent == base
    assert err.actual_parent == tip
    assert (
        str(err)
        == f'Failed to commit, expected parent: Some("{base}"), actual parent: Some("{tip}")'
    )
    assert isinstance(err, ic.IcechunkError) == differs(ic, "typed_errors")
    assert repo.lookup_branch("main") == tip


def test_conflict_error_type(ic: ModuleType) -> None:
    err = ic.ConflictError("A", "B")
    assert err.args == ("A", "B")
    qualified = "icechunk." if differs(ic, "typed_errors") else ""
    assert repr(err) == f"{qualified}ConflictError(expected_parent=A, actual_parent=B)"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.expected_parent, copy.actual_parent) == ("A", "B")
    in_tree = differs(ic, "typed_errors")
    assert issubclass(ic.ConflictError, ic.IcechunkError) == in_tree
    assert issubclass(ic.RebaseFailedError, ic.IcechunkError) == in_tree


def test_rebase_with_detector_fails_on_same_chunk(ic: ModuleType, repo: Any) -> None:
    base, ours, theirs = _two_sessions(repo)
    _write(theirs, 0, 10)
    tip = theirs.commit("theirs")
    _write(ours, 0, 20)
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.rebase(ic.ConflictDetector())
    err = info.value
    assert err.snapshot == tip
    assert str(err) == f"Rebase failed on snapshot {tip}: 1 conflicts found"
    [conflict] = err.conflicts
    assert isinstance(conflict, ic.Conflict)
    assert conflict.conflict_type == ic.ConflictType.ChunkDoubleUpdate
    assert conflict.path == "/a"
    assert conflict.conflicted_chunks == [[0]]
    assert repr(conflict) == "Conflict(ChunkDoubleUpdate, path=/a)"
    assert str(conflict) == "/a: Chunk double update"
    assert ours.snapshot_id == base
    # Picklable only without Conflict objects: the reference cannot pickle a Conflict.
    copy = pickle.loads(pickle.dumps(ic.RebaseFailedError(tip, [])))
    assert (copy.snapshot, copy.conflicts) == (tip, [])


def test_basic_solver_use_ours_and_theirs(ic: ModuleType, repo: Any) -> None:
    _, ours, theirs = _two_sessions(repo)
    _write(theirs, 0, 10)
    tip = theirs.commit("theirs")
    _write(ours, 0, 20)
    ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseOurs))
    assert ours.snapshot_id == tip
    ours.commit("ours")
    assert _read(repo) == [20, 2]

    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _write(theirs, 0, 30)
    _write(theirs, 1, 31)
    theirs.commit("theirs again")
    _write(ours, 0, 40)
    solver = ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs)
    ours.commit("ours again", rebase_with=solver)
    assert _read(repo) == [30, 31]

    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _write(theirs, 1, 50)
    theirs.commit("theirs third")
    _write(ours, 1, 60)
    _write(ours, 0, 61)
    ours.commit(
        "ours third",
        rebase_with=ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs),
    )
    assert _read(repo) == [61, 50]

    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _write(theirs, 0, 1)
    theirs.commit("theirs fourth")
    _write(ours, 0, 2)
    with pytest.raises(ic.RebaseFailedError):
        ours.rebase(ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.Fail))


def test_non_overlapping_writes_rebase_cleanly(ic: ModuleType, repo: Any) -> None:
    _base, ours, theirs = _two_sessions(repo)
    _write(theirs, 0, 10)
    theirs.commit("theirs")
    _write(ours, 1, 20)
    ours.commit("ours", rebase_with=ic.ConflictDetector())
    assert _read(repo) == [10, 20]
    history = [s.message for s in repo.ancestry(branch="main")]
    assert history[:2] == ["ours", "theirs"]

    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    _write(theirs, 0, 11)
    theirs.commit("theirs 2")
    _write(ours, 1, 21)
    with pytest.raises(ic.ConflictError):
        ours.commit("ours 2", rebase_with=ic.ConflictDetector(), rebase_tries=0)


def test_rebase_up_to_date_and_read_only(ic: ModuleType, repo: Any) -> None:
    base, ours, _ = _two_sessions(repo)
    _write(ours, 0, 5)
    ours.rebase(ic.ConflictDetector())
    assert ours.snapshot_id == base
    with pytest.raises(
        ic.IcechunkError,
        match=msg("session error: Read only sessions cannot modify the repository"),
    ):
        repo.readonly_session("main").rebase(ic.ConflictDetector())


@pytest.mark.parametrize("solver_name", ["detector", "basic"])
def test_metadata_double_update_always_conflicts(
    ic: ModuleType, repo: Any, solver_name: str
) -> None:
    _, ours, theirs = _two_sessions(repo)
    zarr.open_group(theirs.store, mode="r+").attrs["who"] = "theirs"
    theirs.commit("theirs")
    zarr.open_group(ours.store, mode="r+").attrs["who"] = "ours"
    solver = ic.ConflictDetector() if solver_name == "detector" else ic.BasicConflictSolver()
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.rebase(solver)
    [conflict] = info.value.conflicts
    assert conflict.conflict_type == ic.ConflictType.ZarrMetadataDoubleUpdate
    assert conflict.path == "/"
    assert conflict.conflicted_chunks is None


def test_new_node_collision(ic: ModuleType, repo: Any) -> None:
    _, ours, theirs = _two_sessions(repo)
    zarr.open_group(theirs.store, mode="r+").create_group("n")
    theirs.commit("theirs")
    zarr.open_group(ours.store, mode="r+").create_group("n")
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.rebase(ic.BasicConflictSolver())
    types = [c.conflict_type for c in info.value.conflicts]
    assert types == [ic.ConflictType.NewNodeConflictsWithExistingNode]
    assert info.value.conflicts[0].path == "/n"


def test_delete_of_updated_array(ic: ModuleType, repo: Any) -> None:
    _, ours, theirs = _two_sessions(repo)
    _write(theirs, 0, 10)
    theirs.commit("theirs")
    del zarr.open_group(ours.store, mode="r+")["a"]
    for solver in (
        ic.ConflictDetector(),
        ic.BasicConflictSolver(fail_on_delete_of_updated_array=True),
    ):
        with pytest.raises(ic.RebaseFailedError) as info:
            ours.rebase(solver)
        assert [c.conflict_type for c in info.value.conflicts] == [
            ic.ConflictType.DeleteOfUpdatedArray
        ]
    ours.commit("delete", rebase_with=ic.BasicConflictSolver())
    assert "a" not in zarr.open_group(repo.readonly_session("main").store, mode="r")


def test_solver_types(ic: ModuleType) -> None:
    with pytest.raises(TypeError):
        ic.ConflictSolver()
    with pytest.raises(TypeError):
        ic.BasicConflictSolver(ic.VersionSelection.UseOurs)
    selections = [
        ic.VersionSelection.Fail,
        ic.VersionSelection.UseOurs,
        ic.VersionSelection.UseTheirs,
    ]
    assert [int(v) for v in selections] == [0, 1, 2]
    assert repr(ic.VersionSelection.UseOurs) == "VersionSelection.UseOurs"
    assert str(ic.ConflictType.ChunkDoubleUpdate) == "Chunk double update"
    assert repr(ic.ConflictType.ChunkDoubleUpdate) == "ChunkDoubleUpdate"
    names = {
        "NewNodeConflictsWithExistingNode": "New node conflicts with existing node",
        "NewNodeInInvalidGroup": "New node in invalid group",
        "ZarrMetadataDoubleUpdate": "Zarr metadata double update",
        "ZarrMetadataUpdateOfDeletedArray": "Zarr metadata update of deleted array",
        "ZarrMetadataUpdateOfDeletedGroup": "Zarr metadata update of deleted group",
        "ChunkDoubleUpdate": "Chunk double update",
        "ChunksUpdatedInDeletedArray": "Chunks updated in deleted array",
        "ChunksUpdatedInUpdatedArray": "Chunks updated in updated array",
        "DeleteOfUpdatedArray": "Delete of updated array",
        "DeleteOfUpdatedGroup": "Delete of updated group",
    }
    for name, text in names.items():
        assert str(getattr(ic.ConflictType, name)) == text


def test_enum_numbering(ic: ModuleType) -> None:
    # Conflict types count from 1 in the reference, version selections from 0.
    names = [
        "NewNodeConflictsWithExistingNode", "NewNodeInInvalidGroup", "ZarrMetadataDoubleUpdate",
        "ZarrMetadataUpdateOfDeletedArray", "ZarrMetadataUpdateOfDeletedGroup",
        "ChunkDoubleUpdate", "ChunksUpdatedInDeletedArray", "ChunksUpdatedInUpdatedArray",
        "DeleteOfUpdatedArray", "DeleteOfUpdatedGroup",
    ]
    assert [int(getattr(ic.ConflictType, n)) for n in names] == list(range(1, 11))
    selection = ic.VersionSelection
    assert [int(v) for v in (selection.Fail, selection.UseOurs, selection.UseTheirs)] == [0, 1, 2]
