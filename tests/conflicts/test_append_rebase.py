"""BasicConflictSolver(append_dim=...): appends from the same base are stacked on rebase."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import pyicechunk as ic
from pyicechunk import BasicConflictSolver, RebaseFailedError, VersionSelection

FAIL = VersionSelection.Fail


def _solver(append_dim: str | int = "time", **kwargs: Any) -> BasicConflictSolver:
    kwargs.setdefault("on_chunk_conflict", FAIL)
    return BasicConflictSolver(append_dim=append_dim, **kwargs)


def _repo(
    shape: Sequence[int],
    chunks: Sequence[int],
    *,
    dims: Sequence[str] | None = ("time",),
    shards: Sequence[int] | None = None,
    path: Path | None = None,
    spec_version: int | None = None,
) -> ic.Repository:
    storage = ic.in_memory_storage() if path is None else ic.local_filesystem_storage(str(path))
    repo = ic.Repository.create(storage, spec_version=spec_version)
    session = repo.writable_session("main")
    array = zarr.create_array(
        session.store,
        name="a",
        shape=tuple(shape),
        chunks=tuple(chunks),
        shards=None if shards is None else tuple(shards),
        dtype="i4",
        fill_value=-1,
        dimension_names=None if dims is None else list(dims),
    )
    array[...] = _rows(0, shape)
    array.attrs["units"] = "m"
    session.commit("base")
    return repo


def _rows(tag: int, shape: Sequence[int]) -> np.ndarray:
    """Distinct values that say who wrote them (tag) and where in the block they were."""
    n = int(np.prod(shape))
    return (tag * 1000 + np.arange(n, dtype="i4")).reshape(tuple(shape))


def _array(session: ic.Session) -> zarr.Array[Any]:
    return zarr.open_array(session.store, path="a", mode="r+")


def _append(tag: int, shape: Sequence[int], axis: int = 0) -> Callable[[ic.Session], np.ndarray]:
    def run(session: ic.Session) -> np.ndarray:
        block = _rows(tag, shape)
        _array(session).append(block, axis=axis)
        return block

    return run


def _committed(repo: ic.Repository) -> np.ndarray:
    return np.asarray(zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")[...])


def _kinds(error: pytest.ExceptionInfo[RebaseFailedError]) -> list[str]:
    return sorted(repr(c.conflict_type) for c in error.value.conflicts)


def _race(
    repo: ic.Repository,
    ours: Callable[[ic.Session], Any],
    theirs: Callable[[ic.Session], Any],
    solver: ic.ConflictSolver,
) -> ic.Session:
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs(other)
    other.commit("theirs")
    ours(mine)
    mine.rebase(solver)
    return mine


# -- stacking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("append_dim", ["time", 0, -1])
def test_one_dimensional_appends_are_stacked(append_dim: str | int) -> None:
    repo = _repo((4,), (2,))
    base = _committed(repo)
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, (4,))(other)
    other.commit("theirs")
    ours = _append(2, (3,))(mine)  # a partly filled last chunk is fine on our side
    mine.commit("ours", rebase_with=_solver(append_dim))
    np.testing.assert_array_equal(_committed(repo), np.concatenate([base, theirs, ours]))


@pytest.mark.parametrize("spec_version", [1, 2])
def test_appends_to_an_empty_array_are_stacked(spec_version: int) -> None:
    # Spec 2 stores a number of chunks per dimension, not a chunk length: an empty dimension
    # still has one chunk position, so the chunk length must come from the zarr metadata.
    repo = _repo((0,), (2,), spec_version=spec_version)
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, (4,))(other)
    other.commit("theirs")
    ours = _append(2, (2,))(mine)
    mine.commit("ours", rebase_with=_solver())
    np.testing.assert_array_equal(_committed(repo), np.concatenate([theirs, ours]))


@pytest.mark.parametrize(("append_dim", "axis"), [("time", 0), ("x", 1), (0, 0), (1, 1), (-2, 0)])
def test_two_dimensional_multi_chunk_appends_are_stacked(append_dim: str | int, axis: int) -> None:
    repo = _repo((4, 4), (2, 2), dims=("time", "x"))
    base = _committed(repo)
    grow = (6, 4) if axis == 0 else (4, 6)
    more = (5, 4) if axis == 0 else (4, 5)
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, grow, axis)(other)
    other.commit("theirs")
    ours = _append(2, more, axis)(mine)
    mine.commit("ours", rebase_with=_solver(append_dim))
    expected = np.concatenate([base, theirs, ours], axis=axis)
    np.testing.assert_array_equal(_committed(repo), expected)


def test_sharded_appends_move_by_whole_shards() -> None:
    repo = _repo((8,), (2,), shards=(4,))
    base = _committed(repo)
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, (4,))(other)
    other.commit("theirs")
    ours = _append(2, (6,))(mine)
    mine.commit("ours", rebase_with=_solver())
    np.testing.assert_array_equal(_committed(repo), np.concatenate([base, theirs, ours]))
    # chunk coordinates in the repository are shard positions: 2 base, 1 theirs, 2 ours
    coords = sorted(
        tuple(c) for c in sync(_collect(repo.readonly_session("main").chunk_coordinates("/a")))
    )
    assert coords == [(0,), (1,), (2,), (3,), (4,)]


async def _collect(gen: Any) -> list[tuple[int, ...]]:
    return [c async for c in gen]


def test_sharded_append_not_on_a_shard_boundary_stays_a_conflict() -> None:
    # 6 rows fill whole chunks (2) but not whole shards (4): the shard grid decides
    repo = _repo((6,), (2,), shards=(4,))
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _append(2, (4,)), _append(1, (2,)), _solver())
    assert "ZarrMetadataDoubleUpdate" in _kinds(error)


def test_three_landed_appends_then_ours() -> None:
    repo = _repo((2,), (2,))
    base = _committed(repo)
    mine = repo.writable_session("main")
    landed = []
    for tag, length in [(1, 2), (2, 6), (3, 4)]:
        other = repo.writable_session("main")
        landed.append(_append(tag, (length,))(other))
        other.commit(f"theirs {tag}")
    ours = [_append(8, (3,))(mine), _append(9, (2,))(mine)]
    mine.commit("ours", rebase_with=_solver())
    np.testing.assert_array_equal(_committed(repo), np.concatenate([base, *landed, *ours]))
    assert len(list(repo.ancestry(branch="main"))) == 2 + 3 + 1


def test_arrays_without_dimension_names_use_the_axis() -> None:
    repo = _repo((4, 2), (2, 2), dims=None)
    base = _committed(repo)
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, (2, 2))(other)
    other.commit("theirs")
    ours = _append(2, (4, 2))(mine)
    mine.rebase(_solver(0))
    mine.commit("ours")
    np.testing.assert_array_equal(_committed(repo), np.concatenate([base, theirs, ours]))


def test_a_name_does_not_apply_to_arrays_without_dimension_names() -> None:
    repo = _repo((4,), (2,), dims=None)
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _append(2, (2,)), _append(1, (2,)), _solver("time"))
    # the rule does not cover the array, so nothing is merged (merge_metadata is off)
    assert _kinds(error) == [
        "ChunkDoubleUpdate",
        "ChunksUpdatedInUpdatedArray",
        "ZarrMetadataDoubleUpdate",
    ]


def test_attributes_merge_and_the_document_is_rewritten() -> None:
    repo = _repo((2,), (2,))

    def ours(session: ic.Session) -> None:
        _append(2, (2,))(session)
        _array(session).attrs["ours"] = 1

    def theirs(session: ic.Session) -> None:
        _append(1, (4,))(session)
        _array(session).attrs["theirs"] = 2

    _race(repo, ours, theirs, _solver()).commit("ours")
    array = zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")
    assert array.shape == (8,)
    assert dict(array.attrs) == {"units": "m", "ours": 1, "theirs": 2}
    raw = sync(repo.readonly_session("main").store.get("a/zarr.json", default_buffer_prototype()))
    assert raw is not None
    doc = json.loads(raw.to_bytes())
    assert doc["shape"] == [8]
    assert doc["dimension_names"] == ["time"]


def test_deleted_chunks_move_too() -> None:
    """A chunk we appended and then cleared must not delete the chunk they wrote there."""
    repo = _repo((2,), (2,))
    base = _committed(repo)

    def ours(session: ic.Session) -> None:
        _append(2, (4,))(session)
        _array(session)[2:4] = -1  # back to the fill value: zarr deletes the chunk

    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs = _append(1, (2,))(other)
    other.commit("theirs")
    ours(mine)
    assert None in mine._core.changes.chunks[next(iter(mine._core.changes.chunks))].values()
    mine.commit("ours", rebase_with=_solver())
    expected = np.concatenate([base, theirs, [-1, -1], _rows(2, (4,))[2:]])
    np.testing.assert_array_equal(_committed(repo), expected)


def test_only_we_grew_and_only_they_grew() -> None:
    repo = _repo((4,), (2,))
    base = _committed(repo)

    def tag(session: ic.Session) -> None:
        _array(session).attrs["tag"] = "set"

    # they only changed attributes: our append stays where it is
    _race(repo, _append(2, (3,)), tag, _solver()).commit("ours")
    np.testing.assert_array_equal(_committed(repo), np.concatenate([base, _rows(2, (3,))]))
    # they appended, we only changed attributes

    def retag(session: ic.Session) -> None:
        _array(session).attrs["tag"] = "again"

    _race(repo, retag, _append(1, (2,)), _solver()).commit("ours again")
    expected = np.concatenate([base, _rows(2, (3,)), _rows(1, (2,))])
    np.testing.assert_array_equal(_committed(repo), expected)


def test_xarray_appends_of_data_and_time_coordinate() -> None:
    times = pd.date_range("2000-01-01", periods=12, freq="D")

    def dataset(tag: int, start: int, n: int) -> xr.Dataset:
        values = np.stack([np.full(n, tag, "i4"), np.arange(start, start + n, dtype="i4")], 1)
        return xr.Dataset(
            {"v": (("time", "field"), values)}, coords={"time": times[start : start + n]}
        )

    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    dataset(0, 0, 4).to_zarr(
        session.store,
        consolidated=False,
        encoding={"v": {"chunks": (2, 2)}, "time": {"chunks": (2,)}},
    )
    session.commit("base")
    mine, other = repo.writable_session("main"), repo.writable_session("main")
    dataset(1, 4, 4).to_zarr(other.store, append_dim="time", consolidated=False)
    other.commit("theirs")
    dataset(2, 8, 4).to_zarr(mine.store, append_dim="time", consolidated=False)
    mine.commit("ours", rebase_with=_solver())

    result = xr.open_zarr(repo.readonly_session("main").store, consolidated=False).load()
    assert result.sizes["time"] == 12
    np.testing.assert_array_equal(result["v"].values[:, 0], [0] * 4 + [1] * 4 + [2] * 4)
    # the time stamps written with each block stay with its rows
    np.testing.assert_array_equal(result["time"].values, times.values)
    np.testing.assert_array_equal(result["v"].values[:, 1], np.arange(12))


# -- preconditions ------------------------------------------------------------------------------


def _write_old_rows(session: ic.Session) -> None:
    _append(2, (2,))(session)
    _array(session)[0:2] = [7, 7]


def _grow_other_dim(session: ic.Session) -> None:
    array = _array(session)
    array.resize((6, 6))
    array[4:6, :] = _rows(1, (2, 6))


@pytest.mark.parametrize(
    ("shape", "chunks", "ours", "theirs", "kinds"),
    [
        # the base ends inside a chunk: both sides wrote that chunk
        (
            (3,),
            (2,),
            _append(2, (3,)),
            _append(1, (3,)),
            ["ChunkDoubleUpdate", "ChunksUpdatedInUpdatedArray", "ZarrMetadataDoubleUpdate"],
        ),
        # their append ends inside a chunk: our rows cannot start there
        (
            (2,),
            (2,),
            _append(2, (2,)),
            _append(1, (3,)),
            ["ChunkDoubleUpdate", "ChunksUpdatedInUpdatedArray", "ZarrMetadataDoubleUpdate"],
        ),
        # we also rewrote rows of the base: not an append
        (
            (2,),
            (2,),
            _write_old_rows,
            _append(1, (2,)),
            ["ChunkDoubleUpdate", "ChunksUpdatedInUpdatedArray", "ZarrMetadataDoubleUpdate"],
        ),
        # they also grew another dimension
        (
            (4, 4),
            (2, 2),
            _append(2, (2, 4)),
            _grow_other_dim,
            ["ChunkDoubleUpdate", "ChunksUpdatedInUpdatedArray", "ZarrMetadataDoubleUpdate"],
        ),
    ],
    ids=["base-partial-chunk", "their-partial-chunk", "wrote-old-rows", "other-dimension"],
)
@pytest.mark.parametrize("selection", [VersionSelection.Fail, VersionSelection.UseOurs])
def test_unmet_preconditions_stay_conflicts(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    ours: Callable[[ic.Session], Any],
    theirs: Callable[[ic.Session], Any],
    kinds: list[str],
    selection: VersionSelection,
) -> None:
    dims = ("time", "x")[: len(shape)]
    repo = _repo(shape, chunks, dims=dims)
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, ours, theirs, _solver(on_chunk_conflict=selection))
    # even UseOurs must not keep one side's rows by taking the larger shape
    assert _kinds(error) == kinds
    assert all(c.path == "/a" for c in error.value.conflicts)


def test_colliding_attributes_with_fail_stay_a_conflict() -> None:
    repo = _repo((2,), (2,))

    def attrs(value: str, tag: int) -> Callable[[ic.Session], None]:
        def run(session: ic.Session) -> None:
            _append(tag, (2,))(session)
            _array(session).attrs["units"] = value

        return run

    with pytest.raises(RebaseFailedError) as error:
        _race(repo, attrs("km", 2), attrs("cm", 1), _solver())
    assert _kinds(error) == ["ChunksUpdatedInUpdatedArray", "ZarrMetadataDoubleUpdate"]


def test_without_append_dim_the_appends_clash() -> None:
    repo = _repo((2,), (2,))
    solver = BasicConflictSolver(on_chunk_conflict=FAIL, merge_metadata=True)
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _append(2, (2,)), _append(1, (2,)), solver)
    assert _kinds(error) == ["ChunkDoubleUpdate"]


@pytest.mark.parametrize("bad", [True, 1.5, ["time"]])
def test_append_dim_type_is_checked(bad: Any) -> None:
    with pytest.raises(TypeError, match="append_dim"):
        BasicConflictSolver(append_dim=bad)


# -- interop ------------------------------------------------------------------------------------


def test_icechunk_reads_the_stacked_appends(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    # spec 1: icechunk 1.1.21 reads it
    repo = _repo((4, 2), (2, 2), dims=("time", "x"), shards=(4, 2), path=path, spec_version=1)
    # the second round starts from a whole number of shards only because ours appended 8
    for ours_rows in (8, 5):
        mine = repo.writable_session("main")
        for tag in (1, 2):
            other = repo.writable_session("main")
            _append(tag, (4, 2))(other)
            other.commit(f"theirs {tag}")
        _append(9, (ours_rows, 2))(mine)
        mine.commit("ours", rebase_with=_solver())
    ours_data = _committed(repo)
    expected = [_rows(0, (4, 2))]
    for ours_rows in (8, 5):
        expected += [_rows(1, (4, 2)), _rows(2, (4, 2)), _rows(9, (ours_rows, 2))]
    np.testing.assert_array_equal(ours_data, np.concatenate(expected))

    reference = icechunk.Repository.open(icechunk.local_filesystem_storage(str(path)))
    session = reference.readonly_session("main")
    theirs_data = zarr.open_array(session.store, path="a", mode="r")[...]
    np.testing.assert_array_equal(theirs_data, ours_data)
    assert len(list(reference.ancestry(branch="main"))) == 2 + 2 * 3


@pytest.mark.parametrize("spec_version", [1, 2])
@pytest.mark.parametrize(
    ("start", "chunk", "step"),
    [(0, 1, 1), (0, 2, 2), (4, 4, 4), (0, 4, 4)],
    ids=["empty-chunks-of-1", "empty-chunks-of-2", "full-chunk", "empty-chunks-of-4"],
)
def test_appends_stack_when_each_writer_reads_the_history_from_storage(
    tmp_path: Path, spec_version: int, start: int, chunk: int, step: int
) -> None:
    """Writers in other processes know the landed commits only from storage: a spec-2
    snapshot records lengths and chunk counts, not the chunk grid, so the append rule must read
    the grid from the Zarr metadata (an empty array's recorded chunk length is 0)."""
    path = tmp_path / "repo"
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), spec_version=spec_version)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="log", shape=(start,), chunks=(chunk,), dtype="i4")
    if start:
        zarr.open_array(session.store, path="log", mode="r+")[:] = -1
    session.commit("base")

    def append(tag: int) -> ic.Session:
        # a Repository of its own: nothing cached from the other writers' commits
        own = ic.Repository.open(ic.local_filesystem_storage(str(path)))
        writer = own.writable_session("main")
        log = zarr.open_array(writer.store, path="log", mode="r+")
        log.resize((log.shape[0] + step,))
        log[-step:] = tag
        return writer

    writers = [append(tag) for tag in range(3)]
    for writer in writers:
        writer.commit("append", rebase_with=_solver(append_dim=0))
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    log = zarr.open_array(fresh.readonly_session("main").store, path="log", mode="r")
    expected = [-1] * start + [tag for tag in range(3) for _ in range(step)]
    assert log.shape == (start + 3 * step,)
    assert log[:].tolist() == expected
