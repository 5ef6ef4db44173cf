"""A damaged or hostile ``repo`` object of a spec-2 repository, and what depends on it.

``repo`` holds every ref, the snapshot list and the ops log, so its damage must never be read
as another repository: a file that fails its checksum, a snapshot list whose parent offsets
loop or point past the end, a ref past the end of the list, each is an IcechunkError that names
``repo``, from every entry point. What decodes but cannot be written back (no ``main``, an
ops log newer than the clock) reads and refuses every update. An older copy from
``overwritten/`` put in place of ``repo`` is an older, consistent repository. A looping,
damaged or out-of-order ops-log chain fails the ops log only, naming the copy (a missing copy
ends the log, as in the reference). Missing or swapped snapshot files fail the reads
and commits that need them, naming the file. Nothing here changes a byte on disk.

The hostile objects are re-framed (a valid checksum over altered content), so what is tested
is the decoder's own checks, not the frame's.
"""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk as icechunk
from pyicechunk._time import micros_to_datetime
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Table, root_table
from pyicechunk.format.header import SPEC_V2, FileType, encode_object, open_object
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import NewCommit, RepoInfo, pack_repo_object, unpack_repo_object


@dataclass(frozen=True)
class Built:
    path: Path
    c1: str
    c2: str


@pytest.fixture
def built(tmp_path: Path) -> Built:
    """main: c1 (a = 1) then c2 (a = 2); dev and tag v1 at c1; side: two commits on c2, tag
    v2 at its tip; tag gone deleted. Five snapshots: at least three store a parent offset (the
    default 0 is not stored), and among main, dev and side some ref stores its index."""
    path = tmp_path / "repo"
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)), spec_version=2)
    session = repo.writable_session("main")
    zarr.group(session.store).create_array("a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    c1 = session.commit("c1")
    session = repo.writable_session("main")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 2
    c2 = session.commit("c2")
    repo.create_branch("dev", c1)
    repo.create_branch("side", c2)
    for value in (5, 6):
        session = repo.writable_session("side")
        zarr.open_array(session.store, path="a", mode="r+")[:] = value
        side = session.commit(f"side {value}")
    repo.create_tag("v1", c1)
    repo.create_tag("v2", side)
    repo.create_tag("gone", c2)
    repo.delete_tag("gone")
    return Built(path, c1, c2)


def tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def storage(path: Path) -> icechunk.Storage:
    return icechunk.local_filesystem_storage(str(path))


def info_of(path: Path) -> RepoInfo:
    return unpack_repo_object((path / "repo").read_bytes())


def put_info(path: Path, info: RepoInfo) -> None:
    (path / "repo").write_bytes(pack_repo_object(info))


# -- hostile flatbuffers under a valid frame ----------------------------------------------------


def patch_repo(path: Path, edit: Callable[[bytearray], None]) -> None:
    """Alter the decompressed flatbuffer of ``repo`` in place, then store it re-framed."""
    content = bytearray(
        open_object((path / "repo").read_bytes(), FileType.REPO_INFO, "repo").content
    )
    edit(content)
    (path / "repo").write_bytes(encode_object(FileType.REPO_INFO, bytes(content), 3, SPEC_V2))


def _snapshot_tables(content: bytearray) -> list[Table]:
    vec = root_table(content).vector(4, 4)
    assert vec is not None
    return [vec.table(i) for i in range(len(vec))]


def _set_parents(
    pairs: Callable[[list[int]], list[tuple[int, int]]],
) -> Callable[[bytearray], None]:
    """Rewrite stored parent offsets; ``pairs`` maps the indices of snapshots that store one
    (not the root, nor a child of snapshot 0: the default 0 is not stored) to new values."""

    def edit(content: bytearray) -> None:
        tables = _snapshot_tables(content)
        stored = [i for i, t in enumerate(tables) if t.field_pos(1, 4)]
        for i, value in pairs(stored):
            struct.pack_into("<i", content, tables[i].field_pos(1, 4), value)

    return edit


def _set_ref(slot: int, index: int) -> Callable[[bytearray], None]:
    """Point the first ref of a ref vector that stores its snapshot index at ``index``."""

    def edit(content: bytearray) -> None:
        vec = root_table(content).vector(slot, 4)
        assert vec is not None
        pos = next(p for i in range(len(vec)) if (p := vec.table(i).field_pos(1, 4)))
        struct.pack_into("<I", content, pos, index)

    return edit


HOSTILE = {
    "parent-cycle": (_set_parents(lambda s: [(s[0], s[1]), (s[1], s[0])]), "parent cycle"),
    "own-parent": (_set_parents(lambda s: [(s[0], s[0])]), "is its own parent"),
    "parent-past-end": (_set_parents(lambda s: [(s[0], 99)]), "parent offset 99"),
    "parent-below-root": (_set_parents(lambda s: [(s[0], -2)]), "parent offset -2"),
    "branch-past-end": (_set_ref(2, 99), "points at snapshot number 99, but the repository"),
    "tag-past-end": (_set_ref(1, 5), "points at snapshot number 5, but the repository"),
}


def expect_refused(path: Path, problem: str) -> None:
    """Every entry point fails naming ``repo`` and the problem; nothing changes on disk."""
    before = tree(path)
    for call in (
        icechunk.Repository.exists,
        icechunk.Repository.fetch_spec_version,
        icechunk.Repository.fetch_config,
        icechunk.Repository.open,
        icechunk.Repository.open_or_create,
    ):
        with pytest.raises(IcechunkError) as info:
            call(storage(path))
        assert "repo" in info.value.message and problem in info.value.message, call
    assert tree(path) == before


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_snapshot_list_or_ref(built: Built, case: str) -> None:
    edit, problem = HOSTILE[case]
    patch_repo(built.path, edit)
    expect_refused(built.path, problem)


# -- damage the frame catches -------------------------------------------------------------------


def _bitflip(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _zero(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    end = min(len(data), start + rng.choice((1, 8, 64, len(data))))
    return data[:start] + bytes(end - start) + data[end:]


@pytest.mark.parametrize(
    "damage", [_bitflip, _truncate, _zero], ids=["bitflip", "truncate", "zero"]
)
def test_damaged_repo_bytes(built: Built, damage: Any) -> None:
    pristine = (built.path / "repo").read_bytes()
    for seed in range(12):
        damaged = damage(pristine, random.Random(seed))
        if damaged == pristine:
            continue
        (built.path / "repo").write_bytes(damaged)
        expect_refused(built.path, "")


# -- decodes, but cannot be written back ----------------------------------------------------------


def _refuses_updates(path: Path, problem: str) -> icechunk.Repository:
    """Reads work; every update fails naming the problem, and nothing changes on disk."""
    repo = icechunk.Repository.open(storage(path))
    session = repo.writable_session("dev")
    zarr.open_array(session.store, path="a", mode="r+")[:] = 9
    before = tree(path)
    tip = repo.lookup_branch("dev")
    for update in (
        session.commit,
        lambda _: repo.create_tag("new", tip),
        lambda _: repo.create_branch("other", tip),
        lambda _: repo.delete_branch("dev"),
        lambda _: repo.save_config(),
    ):
        with pytest.raises(IcechunkError, match=problem):
            update("x")
    assert tree(path) == before
    return repo


def _rename_main(content: bytearray) -> None:
    vec = root_table(content).vector(2, 4)
    assert vec is not None
    for i in range(len(vec)):
        pos = vec.table(i).field_pos(0, 4)
        start = pos + struct.unpack_from("<I", content, pos)[0] + 4
        if content[start : start + 5] == b"main\0":
            content[start : start + 4] = b"mair"  # still sorted after "dev"


def test_no_main_branch_reads_but_refuses_updates(built: Built) -> None:
    patch_repo(built.path, _rename_main)
    repo = _refuses_updates(built.path, "no main branch")
    assert repo.list_branches() == {"dev", "mair", "side"}
    assert [a.message for a in repo.ancestry(branch="mair")] == [
        "c2",
        "c1",
        "Repository initialized",
    ]


def test_ops_log_newer_than_the_clock_refuses_updates(built: Built) -> None:
    info = info_of(built.path)
    newest = info.latest_updates[0]
    future = replace(newest, updated_at=newest.updated_at + 3600 * 10**6)
    put_info(built.path, replace(info, latest_updates=(future, *info.latest_updates[1:])))
    repo = _refuses_updates(built.path, "clock")
    assert len(list(repo.ops_log())) == len(info.latest_updates)


# -- an older copy in place of repo ------------------------------------------------------------


def test_older_backup_over_repo_is_that_older_state(built: Built) -> None:
    info = info_of(built.path)
    # The copy of the state c2's commit made: main at c2, no dev, no tags yet.
    name = next(
        e.backup_path
        for e in info.latest_updates
        if isinstance(e.action, NewCommit) and encode_id(e.action.new_snap_id) == built.c2
    )
    assert name is not None
    older = unpack_repo_object((built.path / "overwritten" / name).read_bytes())
    shutil.copyfile(built.path / "overwritten" / name, built.path / "repo")
    before = tree(built.path)
    repo = icechunk.Repository.open(storage(built.path))
    assert repo.list_branches() == set(older.branches) == {"main"}
    assert repo.list_tags() == set()
    assert repo.lookup_branch("main") == built.c2
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:], [2] * 4)
    assert [u.updated_at for u in repo.ops_log()] == [
        micros_to_datetime(u.updated_at) for u in older.latest_updates
    ]
    assert tree(built.path) == before
    # and it goes on from there: the next update copies this state and moves on
    repo.create_tag("again", built.c1)
    assert icechunk.Repository.open(storage(built.path)).list_tags() == {"again"}


# -- the ops-log chain and its copies -----------------------------------------------------------


def _cut_log(path: Path, before: str) -> None:
    info = info_of(path)
    put_info(
        path, replace(info, latest_updates=info.latest_updates[:1], repo_before_updates=before)
    )


def test_ops_log_chain_loop(built: Built) -> None:
    name = info_of(built.path).latest_updates[1].backup_path
    assert name is not None
    copy = built.path / "overwritten" / name
    looped = replace(unpack_repo_object(copy.read_bytes()), repo_before_updates=name)
    copy.write_bytes(pack_repo_object(looped))
    _cut_log(built.path, name)
    before = tree(built.path)
    repo = icechunk.Repository.open(storage(built.path))
    with pytest.raises(IcechunkError, match="loops") as info:
        list(repo.ops_log())
    assert name in info.value.message
    assert repo.list_tags() == {"v1", "v2"}
    assert tree(built.path) == before


def test_ops_log_chain_missing_or_damaged_copy(built: Built) -> None:
    name = info_of(built.path).latest_updates[1].backup_path
    assert name is not None
    _cut_log(built.path, "repo.00000000000000.00000000000000000000")
    repo = icechunk.Repository.open(storage(built.path))
    # copies are only history: a missing one ends the log there, as in the reference
    assert len(list(repo.ops_log())) == 1
    _cut_log(built.path, name)
    copy = built.path / "overwritten" / name
    copy.write_bytes(_truncate(copy.read_bytes(), random.Random(1)))
    before = tree(built.path)
    with pytest.raises(IcechunkError) as info:
        list(icechunk.Repository.open(storage(built.path)).ops_log())
    assert f"overwritten/{name}" in info.value.message
    assert tree(built.path) == before


def test_ops_log_chain_copy_newer_than_its_successors(built: Built) -> None:
    # A chained copy holding the newest state instead of an old one: out of order, refused.
    info = info_of(built.path)
    name = info.latest_updates[2].backup_path
    assert name is not None
    _cut_log(built.path, name)
    shutil.copyfile(built.path / "repo", built.path / "overwritten" / name)
    before = tree(built.path)
    repo = icechunk.Repository.open(storage(built.path))
    with pytest.raises(IcechunkError, match="out of order") as raised:
        list(repo.ops_log())
    assert f"overwritten/{name}" in raised.value.message
    assert tree(built.path) == before


# -- snapshot files the list names --------------------------------------------------------------


def test_listed_snapshot_missing_or_swapped(built: Built) -> None:
    snapshots = built.path / "snapshots"
    (snapshots / built.c2).rename(built.path / "aside")
    before = tree(built.path)
    repo = icechunk.Repository.open(storage(built.path))
    # the list still answers for history; reading the snapshot itself fails, naming it
    assert [a.message for a in repo.ancestry(branch="main")] == [
        "c2",
        "c1",
        "Repository initialized",
    ]
    for use in (lambda: repo.writable_session("main"), lambda: repo.readonly_session("main")):
        with pytest.raises(IcechunkError) as info:
            use()
        assert built.c2 in info.value.message
    assert tree(built.path) == before
    # another snapshot's bytes under c2's name: named as such, never read as c2
    (built.path / "aside").unlink()
    shutil.copyfile(snapshots / built.c1, snapshots / built.c2)
    before = tree(built.path)
    repo = icechunk.Repository.open(storage(built.path))
    with pytest.raises(IcechunkError) as info:
        repo.readonly_session(branch="main")
    assert built.c2 in info.value.message and built.c1 in info.value.message
    arr = zarr.open_array(repo.readonly_session(branch="dev").store, path="a", mode="r")
    np.testing.assert_array_equal(arr[:], [1] * 4)
    assert tree(built.path) == before
