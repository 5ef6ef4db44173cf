"""BasicConflictSolver(merge_metadata=True): zarr.json changed on both sides of a rebase."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import pyicechunk as ic
from pyicechunk import BasicConflictSolver, RebaseFailedError, VersionSelection

MERGE = BasicConflictSolver(merge_metadata=True)


def _repo(shape: tuple[int, ...] = (10,), chunks: tuple[int, ...] = (5,)) -> ic.Repository:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    root = zarr.group(session.store, attributes={"title": "base"})
    array = root.create_array(
        "a",
        shape=shape,
        chunks=chunks,
        dtype="i4",
        fill_value=-1,
        dimension_names=[f"d{i}" for i in range(len(shape))],
    )
    array.attrs.update({"units": "m", "keep": 1})
    array[...] = np.arange(int(np.prod(shape)), dtype="i4").reshape(shape)
    session.commit("base")
    return repo


def _array(session: ic.Session) -> zarr.Array[Any]:
    return zarr.open_array(session.store, path="a", mode="r+")


def _race(
    repo: ic.Repository,
    ours: Callable[[ic.Session], None],
    theirs: Callable[[ic.Session], None],
    solver: ic.ConflictSolver = MERGE,
) -> ic.Session:
    """Open our session, land their change, make ours and rebase it; returns our session."""
    mine = repo.writable_session("main")
    other = repo.writable_session("main")
    theirs(other)
    other.commit("theirs")
    ours(mine)
    mine.rebase(solver)
    return mine


def _committed(repo: ic.Repository) -> zarr.Array[Any]:
    return zarr.open_array(repo.readonly_session("main").store, path="a", mode="r")


def _kinds(error: pytest.ExceptionInfo[RebaseFailedError]) -> list[str]:
    return sorted(repr(c.conflict_type) for c in error.value.conflicts)


def _raw(session: ic.Session, key: str) -> bytes:
    buf = sync(session.store.get(key, default_buffer_prototype()))
    assert buf is not None
    return bytes(buf.to_bytes())


def _patch(key: str, change: Callable[[dict[str, Any]], None]) -> Callable[[ic.Session], None]:
    """An edit of zarr.json that zarr's API cannot make on an existing array."""

    def run(session: ic.Session) -> None:
        doc = json.loads(_raw(session, key))
        change(doc)
        data = json.dumps(doc, indent=2).encode()
        sync(session.store.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    return run


def _attrs(**values: Any) -> Callable[[ic.Session], None]:
    def run(session: ic.Session) -> None:
        _array(session).attrs.update(values)

    return run


# -- attributes ---------------------------------------------------------------------------------


def test_disjoint_attribute_keys_are_merged() -> None:
    repo = _repo()
    session = _race(repo, _attrs(ours=1), _attrs(theirs=2))
    session.commit("ours")
    attrs = dict(_committed(repo).attrs)
    assert attrs == {"units": "m", "keep": 1, "ours": 1, "theirs": 2}


def test_attribute_removed_on_one_side_stays_removed() -> None:
    repo = _repo()

    def drop_units(session: ic.Session) -> None:
        del _array(session).attrs["units"]

    session = _race(repo, _attrs(ours=1), drop_units)
    session.commit("ours")
    assert dict(_committed(repo).attrs) == {"keep": 1, "ours": 1}


@pytest.mark.parametrize(
    ("selection", "expected"),
    [(VersionSelection.UseOurs, "ours"), (VersionSelection.UseTheirs, "theirs")],
)
def test_colliding_attribute_follows_version_selection(
    selection: VersionSelection, expected: str
) -> None:
    repo = _repo()
    solver = BasicConflictSolver(on_chunk_conflict=selection, merge_metadata=True)
    session = _race(repo, _attrs(units="ours", mine=1), _attrs(units="theirs", other=2), solver)
    session.commit("ours")
    assert dict(_committed(repo).attrs) == {"units": expected, "keep": 1, "mine": 1, "other": 2}


def test_colliding_attribute_fails_under_fail() -> None:
    repo = _repo()
    solver = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, merge_metadata=True)
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _attrs(units="ours"), _attrs(units="theirs"), solver)
    assert _kinds(error) == ["ZarrMetadataDoubleUpdate"]
    assert error.value.conflicts[0].path == "/a"


def test_same_value_on_both_sides_is_no_collision() -> None:
    repo = _repo()
    solver = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, merge_metadata=True)
    session = _race(repo, _attrs(units="km", a=1), _attrs(units="km", b=2), solver)
    session.commit("ours")
    assert dict(_committed(repo).attrs) == {"units": "km", "keep": 1, "a": 1, "b": 2}


def test_group_attributes_are_merged() -> None:
    repo = _repo()

    def group_attrs(**values: Any) -> Callable[[ic.Session], None]:
        def run(session: ic.Session) -> None:
            zarr.open_group(session.store, mode="r+").attrs.update(values)

        return run

    session = _race(repo, group_attrs(ours=[1, 2]), group_attrs(theirs={"x": None}))
    session.commit("ours")
    root = zarr.open_group(repo.readonly_session("main").store, mode="r")
    assert dict(root.attrs) == {"title": "base", "ours": [1, 2], "theirs": {"x": None}}


def test_merged_document_keeps_our_key_order_and_zarr_style() -> None:
    repo = _repo()
    session = _race(repo, _attrs(ours=1), _attrs(theirs=2))
    raw = _raw(session, "a/zarr.json")
    doc = json.loads(raw)
    base = json.loads(_raw(repo.readonly_session("main"), "a/zarr.json"))
    assert list(doc) == list(base)
    assert list(doc["attributes"]) == ["units", "keep", "ours", "theirs"]
    assert raw == json.dumps(doc, indent=2).encode()


# -- shapes -------------------------------------------------------------------------------------


def _resize(*shape: int) -> Callable[[ic.Session], None]:
    def run(session: ic.Session) -> None:
        _array(session).resize(shape)

    return run


@pytest.mark.parametrize(("ours", "theirs"), [(15, 20), (20, 15), (15, 5), (5, 15)])
def test_two_resizes_keep_the_larger_length(ours: int, theirs: int) -> None:
    repo = _repo()
    session = _race(repo, _resize(ours), _resize(theirs))
    session.commit("ours")
    array = _committed(repo)
    assert array.shape == (max(ours, theirs),)
    data = array[:]
    # rows both sides kept hold the base data; rows either side cut away read as fill
    kept = min(ours, theirs, 10)
    np.testing.assert_array_equal(data[:kept], np.arange(kept))
    assert (data[kept:] == -1).all()


def test_grow_on_both_sides_keeps_both_sides_chunks() -> None:
    repo = _repo()

    def ours(session: ic.Session) -> None:
        array = _array(session)
        array.resize((20,))
        array[15:20] = 150

    def theirs(session: ic.Session) -> None:
        array = _array(session)
        array.resize((15,))
        array[10:15] = 100

    session = _race(repo, ours, theirs)
    session.commit("ours")
    expected = np.concatenate([np.arange(10), np.full(5, 100), np.full(5, 150)])
    np.testing.assert_array_equal(_committed(repo)[:], expected)


def test_resize_and_attribute_change_combine() -> None:
    repo = _repo()
    session = _race(repo, _resize(12), _attrs(theirs=True))
    session.commit("ours")
    array = _committed(repo)
    assert array.shape == (12,)
    assert array.attrs["theirs"] is True


def test_resizes_of_different_dimensions_conflict() -> None:
    repo = _repo(shape=(4, 4), chunks=(2, 2))
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _resize(6, 4), _resize(4, 6))
    assert _kinds(error) == ["ZarrMetadataDoubleUpdate"]


@pytest.mark.parametrize(
    "field",
    ["codecs", "fill_value", "dimension_names", "data_type"],
)
def test_any_other_metadata_difference_stays_a_conflict(field: str) -> None:
    repo = _repo()

    def change(doc: dict[str, Any]) -> None:
        if field == "codecs":
            doc["codecs"] = [{"name": "bytes", "configuration": {"endian": "big"}}]
        elif field == "fill_value":
            doc["fill_value"] = 7
        elif field == "dimension_names":
            doc["dimension_names"] = ["time"]
        else:
            doc["data_type"] = "int64"

    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _resize(15), _patch("a/zarr.json", change))
    assert _kinds(error) == ["ZarrMetadataDoubleUpdate"]


# -- chunks written into an array the commit changed ---------------------------------------------


def _write_rows(start: int, stop: int, value: int) -> Callable[[ic.Session], None]:
    def run(session: ic.Session) -> None:
        _array(session)[start:stop] = value

    return run


def test_chunks_in_array_whose_attributes_changed_are_kept() -> None:
    repo = _repo()
    session = _race(repo, _write_rows(0, 5, 7), _attrs(theirs=1))
    session.commit("ours")
    array = _committed(repo)
    np.testing.assert_array_equal(array[:], [7] * 5 + list(range(5, 10)))
    assert array.attrs["theirs"] == 1


def test_chunks_in_array_they_grew_are_kept() -> None:
    repo = _repo()
    session = _race(repo, _write_rows(5, 10, 7), _resize(20))
    session.commit("ours")
    array = _committed(repo)
    assert array.shape == (20,)
    np.testing.assert_array_equal(array[:10], list(range(5)) + [7] * 5)


def test_chunks_outside_the_shape_they_shrank_to_conflict() -> None:
    repo = _repo()
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _write_rows(5, 10, 7), _resize(5))
    # shrinking also deleted the chunk we wrote; that part alone UseOurs would settle
    assert _kinds(error) == ["ChunkDoubleUpdate", "ChunksUpdatedInUpdatedArray"]


def test_chunks_in_array_whose_codecs_changed_conflict() -> None:
    repo = _repo()

    def change(doc: dict[str, Any]) -> None:
        doc["codecs"] = [{"name": "bytes", "configuration": {"endian": "big"}}]

    with pytest.raises(RebaseFailedError) as error:
        _race(repo, _write_rows(0, 5, 7), _patch("a/zarr.json", change))
    assert _kinds(error) == ["ChunksUpdatedInUpdatedArray"]


def test_chunk_double_update_still_follows_version_selection() -> None:
    repo = _repo()
    solver = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, merge_metadata=True)

    def ours(session: ic.Session) -> None:
        _resize(15)(session)
        _write_rows(10, 15, 1)(session)

    def theirs(session: ic.Session) -> None:
        _resize(15)(session)
        _write_rows(10, 15, 2)(session)

    with pytest.raises(RebaseFailedError) as error:
        _race(repo, ours, theirs, solver)
    assert _kinds(error) == ["ChunkDoubleUpdate"]


# -- defaults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "kinds"),
    [
        (_attrs(ours=1), _attrs(theirs=2), ["ZarrMetadataDoubleUpdate"]),
        (_resize(15), _resize(20), ["ZarrMetadataDoubleUpdate"]),
        (_write_rows(0, 5, 7), _attrs(theirs=1), ["ChunksUpdatedInUpdatedArray"]),
    ],
    ids=["attributes", "resize", "chunks"],
)
@pytest.mark.parametrize("solver", [BasicConflictSolver(), ic.ConflictDetector()])
def test_default_solvers_do_not_merge_metadata(
    ours: Callable[[ic.Session], None],
    theirs: Callable[[ic.Session], None],
    kinds: list[str],
    solver: ic.ConflictSolver,
) -> None:
    repo = _repo()
    with pytest.raises(RebaseFailedError) as error:
        _race(repo, ours, theirs, solver)
    assert _kinds(error) == kinds


def test_rebase_over_several_commits_merges_each() -> None:
    repo = _repo()
    mine = repo.writable_session("main")
    for step, length in enumerate([12, 18, 14]):
        other = repo.writable_session("main")
        _resize(length)(other)
        _attrs(**{f"step{step}": step})(other)
        other.commit(f"theirs {step}")
    _attrs(ours="yes")(mine)
    _resize(16)(mine)
    mine.commit("ours", rebase_with=MERGE)
    array = _committed(repo)
    # the tip was 14 long; ours grew to 16 from 10, theirs to 14: the larger wins
    assert array.shape == (16,)
    assert dict(array.attrs) == {
        "units": "m",
        "keep": 1,
        "ours": "yes",
        "step0": 0,
        "step1": 1,
        "step2": 2,
    }
    ancestry = [s.message for s in repo.ancestry(branch="main")]
    assert ancestry[:4] == ["ours", "theirs 2", "theirs 1", "theirs 0"]


def test_reference_reads_the_merged_repository(tmp_path: Any) -> None:
    import icechunk

    path = str(tmp_path / "repo")
    repo = ic.Repository.create(ic.local_filesystem_storage(path), spec_version=1)  # for 1.1.21
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(10,), chunks=(5,), dtype="i4", fill_value=-1)
    session.commit("base")
    session = _race(repo, _resize(20), _attrs(theirs=2))
    _write_rows(15, 20, 9)(session)
    session.commit("ours")
    ref = icechunk.Repository.open(icechunk.local_filesystem_storage(path))
    array = zarr.open_array(ref.readonly_session("main").store, path="a", mode="r")
    assert array.shape == (20,)
    assert array.attrs["theirs"] == 2
    np.testing.assert_array_equal(array[:], [-1] * 15 + [9] * 5)


def test_merge_metadata_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        BasicConflictSolver(VersionSelection.UseOurs, False, False, True)  # type: ignore[misc]
