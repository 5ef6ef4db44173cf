"""Spec-2 history and updates as the commit path uses them: what one look at ``repo`` serves.

- ancestry takes its steps from the snapshot list of one read, and a snapshot whose stored
  commit metadata is damaged fails the walk and its lookup, as in icechunk 2.3.0 (checked
  beside it): the faster walk decodes what the reference decodes;
- a writable session reads ``repo`` once (status and branch tip from the same read);
- the ``repo`` encoder, which copies recorded bytes of unchanged entries, writes exactly what a
  fresh encoding writes, for the objects it recorded and for equal objects decoded anew.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import zarr
from oracle import InProcess, Oracle, raises

import pyicechunk
from pyicechunk.format.ids import decode_id
from pyicechunk.format.repo_info import (
    NewCommit,
    backup_name,
    encode_repo_info,
    pack_repo_object,
    record_update,
    unpack_repo_object,
)
from pyicechunk.format.repo_info import codec as repo_codec
from pyicechunk.storage import Storage, keys
from pyicechunk.storage.local import LocalFileSystemBackend

OPEN = "repo = icechunk.Repository.open(icechunk.local_filesystem_storage(where))"


def _history(path: Path, commits: int) -> tuple[pyicechunk.Repository, list[str]]:
    repo = pyicechunk.Repository.create(
        pyicechunk.local_filesystem_storage(str(path)), spec_version=2
    )
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(commits,), chunks=(1,), dtype="i4")
    ids = [session.commit("create", metadata={"step": -1})]
    for i in range(commits):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[i] = i
        ids.append(session.commit(f"step {i}", metadata={"step": i, "tags": ["x", i]}))
    return repo, ids


def _damage_metadata(path: Path, snapshot_id: str) -> None:
    """Replace one snapshot's stored metadata value by bytes that are no FlexBuffer."""
    info = unpack_repo_object((path / keys.REPO).read_bytes())
    sid = decode_id(snapshot_id, 12)
    damaged = dataclasses.replace(info.snapshots[sid], metadata=(("step", b"\xff\xff\xff"),))
    info = dataclasses.replace(info, snapshots={**info.snapshots, sid: damaged})
    (path / keys.REPO).write_bytes(pack_repo_object(info))


def test_ancestry_lists_every_step_with_its_metadata(tmp_path: Path) -> None:
    repo, ids = _history(tmp_path, 70)  # more than one batch of the blocking iterator
    history = list(repo.ancestry(branch="main"))
    assert [s.id for s in history] == [*reversed(ids), history[-1].id]
    assert history[-1].message == "Repository initialized" and history[-1].parent_id is None
    assert [s.parent_id for s in history[:-1]] == [s.id for s in history[1:]]
    assert history[0].metadata == {"step": 69, "tags": ["x", 69]}
    # each info owns its metadata: changing one changes no other, nor a later walk
    history[0].metadata["tags"].append("mine")
    again = list(repo.ancestry(branch="main"))
    assert again[0].metadata == {"step": 69, "tags": ["x", 69]}
    assert [s.written_at for s in again] == [s.written_at for s in history]


def test_damaged_commit_metadata_fails_the_walk_as_the_reference(
    impl: InProcess | Oracle, tmp_path: Path
) -> None:
    path = tmp_path / "repo"
    _, ids = _history(path, 3)
    _damage_metadata(path, ids[1])
    impl.run(OPEN, where=str(path))
    deserialization = "error during metadata deserialization"
    with raises("FormatError", match=deserialization):
        impl.run("[s.message for s in repo.ancestry(branch='main')]")
    with raises("FormatError", match=deserialization):
        impl.run("repo.lookup_snapshot(damaged).message", damaged=ids[1])
    assert impl.run("repo.lookup_snapshot(tip).metadata", tip=ids[-1]) == {
        "step": 2,
        "tags": ["x", 2],
    }


class _CountingBackend(LocalFileSystemBackend):
    """Counts the reads of ``repo``."""

    repo_reads = 0

    async def get_versioned(self, key: str) -> Any:
        if key == keys.REPO:
            type(self).repo_reads += 1
        return await super().get_versioned(key)


def test_writable_session_reads_repo_once(tmp_path: Path) -> None:
    storage = Storage.from_backend(_CountingBackend(str(tmp_path)))
    repo = pyicechunk.Repository.create(storage, spec_version=2)
    before = _CountingBackend.repo_reads
    session = repo.writable_session("main")
    assert _CountingBackend.repo_reads == before + 1
    zarr.create_array(session.store, name="a", shape=(2,), chunks=(1,), dtype="i4")[:] = 1
    session.commit("one")
    # the commit: its early branch check, whose read the update then starts from
    assert _CountingBackend.repo_reads == before + 2
    # the session still refuses what it refused before: a missing branch, a read-only status
    with pytest.raises(pyicechunk.IcechunkError, match="ref not found `nope`"):
        repo.writable_session("nope")
    repo.set_status(
        pyicechunk.RepoStatus(
            pyicechunk.RepoAvailability.read_only, limited_availability_reason="audit"
        )
    )
    with pytest.raises(pyicechunk.IcechunkError, match="Cannot create writable session") as info:
        repo.writable_session("nope")  # the status is checked first, as before
    assert info.value.kind == "read-only-repository"


def test_repo_encoder_copies_only_what_a_fresh_encoding_writes(tmp_path: Path) -> None:
    repo, _ = _history(tmp_path, 12)
    for tag in range(5):
        repo.create_tag(f"t{tag}", repo.lookup_branch("main"))
    stored = (tmp_path / keys.REPO).read_bytes()
    info = unpack_repo_object(stored)
    tip = info.branches["main"]
    later = record_update(
        info, NewCommit("main", tip), info.latest_updates[0].updated_at + 1, backup_name(1)
    )
    cached = [encode_repo_info(later) for _ in range(3)]  # recorded, then copied
    twin = unpack_repo_object(pack_repo_object(later))  # equal objects, none of them cached
    assert twin == later and twin.latest_updates[1] is not later.latest_updates[1]
    copied_twin = encode_repo_info(twin)
    repo_codec._UPDATE_BLOCKS.clear()
    repo_codec._SNAPSHOT_BLOCKS.clear()
    fresh = encode_repo_info(later)
    assert cached == [fresh] * 3 and copied_twin == fresh
    assert unpack_repo_object(pack_repo_object(later)) == later
