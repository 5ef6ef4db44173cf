"""Rebase over several commits, transactions that rebase, and forks on real storage."""

from __future__ import annotations

import importlib
import pickle
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk

IMPLEMENTATIONS = ["icechunk", "pyicechunk"]


@pytest.fixture(params=IMPLEMENTATIONS)
def ic(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def _repo(ic: ModuleType, storage: Any = None) -> Any:
    repo = ic.Repository.create(storage if storage is not None else ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(1,), dtype="i4", fill_value=0)
    session.commit("base")
    return repo


def _write(session: Any, index: int, value: int) -> None:
    zarr.open_array(session.store, path="a", mode="r+")[index] = value


def _read(repo: Any) -> list[int]:
    return list(zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[:])


def _land(repo: Any, index: int, value: int) -> str:
    session = repo.writable_session("main")
    _write(session, index, value)
    return str(session.commit(f"set {index}"))


def test_rebase_over_several_commits(ic: ModuleType) -> None:
    repo = _repo(ic)
    ours = repo.writable_session("main")
    landed = [_land(repo, 0, 10), _land(repo, 3, 13)]
    _write(ours, 1, 21)
    ours.rebase(ic.ConflictDetector())
    assert ours.snapshot_id == landed[-1]
    ours.commit("ours")
    assert _read(repo) == [10, 21, 0, 13]


def test_rebase_fails_at_the_conflicting_commit(ic: ModuleType) -> None:
    repo = _repo(ic)
    base = repo.lookup_branch("main")
    ours = repo.writable_session("main")
    landed = [_land(repo, 0, 10), _land(repo, 1, 11), _land(repo, 3, 13)]
    _write(ours, 1, 99)
    _write(ours, 2, 98)
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.rebase(ic.ConflictDetector())
    assert info.value.snapshot == landed[1]
    assert [c.conflicted_chunks for c in info.value.conflicts] == [[[1]]]
    if ic is pyicechunk:
        # API-1.1 §5: a failed rebase leaves the session unchanged. The reference instead keeps
        # the commits it got through (its snapshot_id is then the first landed commit).
        assert ours.snapshot_id == base
    else:
        assert ours.snapshot_id == landed[0]
    solver = ic.BasicConflictSolver(on_chunk_conflict=ic.VersionSelection.UseTheirs)
    ours.commit("ours", rebase_with=solver)
    assert _read(repo) == [10, 11, 98, 13]


def test_transaction_rebases_on_exit(ic: ModuleType) -> None:
    repo = _repo(ic)
    with repo.transaction("main", message="ours", rebase_with=ic.ConflictDetector()) as store:
        zarr.open_array(store, path="a", mode="r+")[1] = 21
        _land(repo, 0, 10)
    assert _read(repo) == [10, 21, 0, 0]
    assert [s.message for s in repo.ancestry(branch="main")][:2] == ["ours", "set 0"]

    with pytest.raises(ic.RebaseFailedError):
        with repo.transaction("main", message="clash", rebase_with=ic.ConflictDetector()) as store:
            zarr.open_array(store, path="a", mode="r+")[1] = 22
            _land(repo, 1, 11)
    assert _read(repo) == [10, 11, 0, 0]

    with pytest.raises(ic.ConflictError):
        with repo.transaction("main", message="no rebase") as store:
            zarr.open_array(store, path="a", mode="r+")[2] = 22
            _land(repo, 3, 13)


def test_rebase_rejects_non_solvers(ic: ModuleType) -> None:
    repo = _repo(ic)
    ours = repo.writable_session("main")
    _land(repo, 0, 1)
    _write(ours, 1, 2)
    with pytest.raises(TypeError):
        ours.rebase(object())


def test_rebase_after_branch_reset_is_refused() -> None:
    repo = _repo(pyicechunk)
    first = repo.lookup_branch("main")
    _land(repo, 0, 10)
    ours = repo.writable_session("main")
    _write(ours, 1, 21)
    repo.reset_branch("main", first)
    _land(repo, 2, 12)
    with pytest.raises(pyicechunk.IcechunkError, match="not in the history of branch `main`"):
        ours.rebase(pyicechunk.ConflictDetector())
    assert str(ours.status()).count("[1]") == 1


def test_forks_write_native_chunks_on_local_storage(ic: ModuleType, tmp_path: Path) -> None:
    repo = _repo(ic, ic.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="big", shape=(2, 1024), chunks=(1, 1024), dtype="f8", fill_value=0
    )
    session.commit("big array")

    session = repo.writable_session("main")
    forks = [pickle.loads(pickle.dumps(session.fork())) for _ in range(2)]
    for row, fork in enumerate(forks):
        zarr.open_array(fork.store, path="big", mode="r+")[row] = np.arange(1024) + row
    # forks share nothing with the parent or with each other
    assert str(session.status()) == ""
    assert "[1, 0]" not in str(forks[0].status())
    session.merge(*(pickle.loads(pickle.dumps(f)) for f in forks))
    session.commit("merged")

    ro = repo.readonly_session("main")
    assert ro.chunk_type("/big", [0, 0]) == ic.ChunkType.NATIVE
    data = zarr.open_array(ro.store, path="big", mode="r")[:]
    np.testing.assert_array_equal(data, np.stack([np.arange(1024), np.arange(1024) + 1]))


def test_merge_into_read_only_session(ic: ModuleType) -> None:
    repo = _repo(ic)
    readonly = repo.readonly_session("main")
    readonly.merge()
    fork = repo.writable_session("main").fork()
    with pytest.raises(ic.IcechunkError):
        readonly.merge(fork)


def test_merge_resets_the_fork_warning(ic: ModuleType, tmp_path: Path) -> None:
    # forks are serialized copies: the reference's in-memory storage does not survive that
    repo = _repo(ic, ic.local_filesystem_storage(str(tmp_path / "repo")))
    session = repo.writable_session("main")
    fork = session.fork()
    _write(fork, 0, 5)
    session.merge(fork)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        session.commit("merged")
    assert not [w for w in record if "forking" in str(w.message)]
    assert _read(repo) == [5, 0, 0, 0]


def test_pickled_fork_state_is_checked() -> None:
    repo = _repo(pyicechunk)
    fork = repo.writable_session("main").fork()
    with pytest.raises(ValueError, match="Invalid state"):
        fork.__setstate__(["not", "a", "dict"])


@pytest.mark.parametrize(
    ("shape", "chunks", "ours_region", "theirs_region"),
    [
        ((4, 4), (2, 2), (slice(0, 4), slice(0, 2)), (slice(2, 4), slice(0, 4))),
        ((), (), (), ()),
    ],
)
def test_chunk_conflicts_in_other_dimensions(
    ic: ModuleType, shape: Any, chunks: Any, ours_region: Any, theirs_region: Any
) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="m", shape=shape, chunks=chunks, dtype="i4")
    session.commit("base")
    ours, theirs = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_array(theirs.store, path="m", mode="r+")[theirs_region] = 1
    theirs.commit("theirs")
    zarr.open_array(ours.store, path="m", mode="r+")[ours_region] = 2
    with pytest.raises(ic.RebaseFailedError) as info:
        ours.rebase(ic.ConflictDetector())
    [conflict] = info.value.conflicts
    expected = [[1, 0]] if shape else [[]]
    assert sorted(conflict.conflicted_chunks) == expected
