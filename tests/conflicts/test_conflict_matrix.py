"""Every ConflictType, produced by two sessions, against every solver setting (API-1.1 §8).

Each scenario starts from the same committed hierarchy, lets "theirs" commit one change and
"ours" make a clashing change on the old base, then rebases "ours". The same table of expected
outcomes runs against the reference (icechunk 1.1.21) and pyicechunk, so the expectations are
checked against the reference rather than restated from our code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr

IMPLEMENTATIONS = ["icechunk", "pyicechunk"]

Action = Callable[[zarr.Group], None]
Check = Callable[[zarr.Group], None]


def _setup(ic: ModuleType) -> Any:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_group("g")
    a = root.create_array("a", shape=(4,), chunks=(1,), dtype="i4", fill_value=0)
    a[:] = np.array([1, 2, 3, 4], dtype="i4")
    session.commit("base")
    return repo


def _set_attr(path: str, value: str) -> Action:
    def act(root: zarr.Group) -> None:
        root[path].attrs["who"] = value

    return act


def _write(index: int, value: int) -> Action:
    def act(root: zarr.Group) -> None:
        root["a"][index] = value  # type: ignore[index]

    return act


def _delete(path: str) -> Action:
    def act(root: zarr.Group) -> None:
        del root[path]

    return act


def _both(*actions: Action) -> Action:
    def act(root: zarr.Group) -> None:
        for action in actions:
            action(root)

    return act


def _new_group(path: str) -> Action:
    def act(root: zarr.Group) -> None:
        root.create_group(path)

    return act


def _replace_group_by_array(root: zarr.Group) -> None:
    del root["g"]
    root.create_array("g", shape=(2,), chunks=(2,), dtype="i4", fill_value=0)


def _values(expected: list[int]) -> Check:
    def check(root: zarr.Group) -> None:
        assert root["a"][:].tolist() == expected  # type: ignore[union-attr]

    return check


def _gone(name: str) -> Check:
    def check(root: zarr.Group) -> None:
        assert name not in root

    return check


@dataclass(frozen=True)
class Scenario:
    theirs: Action
    ours: Action
    path: str
    chunks: list[list[int]] | None = None
    solved_by: frozenset[str] = frozenset()
    """Solver settings that resolve the conflict; every other one must fail."""
    after: dict[str, Check] | None = None
    """What the branch holds after ours is rebased with a resolving solver and committed."""


SOLVERS: dict[str, Callable[[ModuleType], Any]] = {
    "detector": lambda ic: ic.ConflictDetector(),
    "basic": lambda ic: ic.BasicConflictSolver(),
    "use_theirs": lambda ic: ic.BasicConflictSolver(
        on_chunk_conflict=ic.VersionSelection.UseTheirs
    ),
    "chunk_fail": lambda ic: ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.Fail),
    "strict_array": lambda ic: ic.BasicConflictSolver(fail_on_delete_of_updated_array=True),
    "strict_group": lambda ic: ic.BasicConflictSolver(fail_on_delete_of_updated_group=True),
}

_DELETE_ARRAY_SOLVERS = frozenset({"basic", "use_theirs", "chunk_fail", "strict_group"})
_DELETE_GROUP_SOLVERS = frozenset({"basic", "use_theirs", "chunk_fail", "strict_array"})

SCENARIOS: dict[str, Scenario] = {
    "NewNodeConflictsWithExistingNode": Scenario(
        theirs=_new_group("n"), ours=_new_group("n"), path="/n"
    ),
    "NewNodeInInvalidGroup": Scenario(
        theirs=_replace_group_by_array, ours=_new_group("g/child"), path="/g"
    ),
    "ZarrMetadataDoubleUpdate": Scenario(
        theirs=_set_attr("g", "theirs"), ours=_set_attr("g", "ours"), path="/g"
    ),
    "ZarrMetadataUpdateOfDeletedArray": Scenario(
        theirs=_delete("a"), ours=_set_attr("a", "ours"), path="/a"
    ),
    "ZarrMetadataUpdateOfDeletedGroup": Scenario(
        theirs=_delete("g"), ours=_set_attr("g", "ours"), path="/g"
    ),
    "ChunkDoubleUpdate": Scenario(
        theirs=_write(1, 10),
        ours=_both(_write(1, 20), _write(2, 21)),
        path="/a",
        chunks=[[1]],
        solved_by=frozenset({"basic", "use_theirs", "strict_array", "strict_group"}),
        after={
            "basic": _values([1, 20, 21, 4]),
            "use_theirs": _values([1, 10, 21, 4]),
            "strict_array": _values([1, 20, 21, 4]),
            "strict_group": _values([1, 20, 21, 4]),
        },
    ),
    "ChunksUpdatedInDeletedArray": Scenario(theirs=_delete("a"), ours=_write(0, 5), path="/a"),
    "ChunksUpdatedInUpdatedArray": Scenario(
        theirs=_set_attr("a", "theirs"), ours=_write(0, 5), path="/a"
    ),
    "DeleteOfUpdatedArray": Scenario(
        theirs=_write(0, 10),
        ours=_delete("a"),
        path="/a",
        solved_by=_DELETE_ARRAY_SOLVERS,
        after=dict.fromkeys(_DELETE_ARRAY_SOLVERS, _gone("a")),
    ),
    "DeleteOfUpdatedGroup": Scenario(
        theirs=_set_attr("g", "theirs"),
        ours=_delete("g"),
        path="/g",
        solved_by=_DELETE_GROUP_SOLVERS,
        after=dict.fromkeys(_DELETE_GROUP_SOLVERS, _gone("g")),
    ),
}


def _sessions(ic: ModuleType, scenario: Scenario) -> tuple[Any, str, str, Any]:
    repo = _setup(ic)
    base = repo.lookup_branch("main")
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    scenario.theirs(zarr.open_group(theirs.store, mode="r+"))
    tip = theirs.commit("theirs")
    scenario.ours(zarr.open_group(ours.store, mode="r+"))
    return repo, base, tip, ours


def test_every_conflict_type_has_a_scenario() -> None:
    import pyicechunk

    names = [name for name in dir(pyicechunk.ConflictType) if name[0].isupper()]
    # icechunk 1.1 has no moves; 2.x's conflict for them is checked beside icechunk 2.3.0 in
    # tests/api2/test_rearrange.py.
    names.remove("MoveOperationCannotBeRebased")
    assert sorted(names) == sorted(SCENARIOS)


@pytest.mark.parametrize("solver_name", list(SOLVERS))
@pytest.mark.parametrize("kind", list(SCENARIOS))
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_conflict_matrix(impl: str, kind: str, solver_name: str) -> None:
    ic = importlib.import_module(impl)
    scenario = SCENARIOS[kind]
    repo, base, tip, ours = _sessions(ic, scenario)
    status_before = str(ours.status())
    solver = SOLVERS[solver_name](ic)

    if solver_name not in scenario.solved_by:
        with pytest.raises(ic.RebaseFailedError) as info:
            ours.rebase(solver)
        err = info.value
        assert err.snapshot == tip
        [conflict] = err.conflicts
        assert conflict.conflict_type == getattr(ic.ConflictType, kind)
        assert conflict.path == scenario.path
        assert conflict.conflicted_chunks == scenario.chunks
        assert str(conflict) == f"{scenario.path}: {getattr(ic.ConflictType, kind)}"
        assert ours.snapshot_id == base
        assert str(ours.status()) == status_before
        with pytest.raises(ic.RebaseFailedError):
            ours.commit("ours", rebase_with=solver)
        assert repo.lookup_branch("main") == tip
        return

    ours.rebase(solver)
    assert ours.snapshot_id == tip
    sid = ours.commit("ours")
    assert repo.lookup_branch("main") == sid
    assert scenario.after is not None
    scenario.after[solver_name](zarr.open_group(repo.readonly_session("main").store, mode="r"))
