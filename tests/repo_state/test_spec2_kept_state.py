"""Spec-2 updates start from the state their own last write stored, not from a read of it.

The compare-and-swap keeps that safe: a state someone replaced since is refused by the swap
and the update is made again on a read (no retry used up), and a change the kept state refuses
is decided again on the stored one, so no error comes from a state that is no longer stored.
Two repository handles on one directory stand for two processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zarr

import pyicechunk
from pyicechunk.format.repo_info import BranchCreated, TagCreated, unpack_repo_object
from pyicechunk.storage import Storage, keys
from pyicechunk.storage.local import LocalFileSystemBackend


class _CountingBackend(LocalFileSystemBackend):
    """Counts the reads and the compare-and-swaps of ``repo``."""

    def __init__(self, path: str) -> None:
        super().__init__(path, durable=False)
        self.reads = 0
        self.swaps = 0

    async def get_versioned(self, key: str) -> Any:
        if key == keys.REPO:
            self.reads += 1
        return await super().get_versioned(key)

    async def put_if_version(self, key: str, data: bytes, version: Any, **kwargs: Any) -> Any:
        if key == keys.REPO:
            self.swaps += 1
        return await super().put_if_version(key, data, version, **kwargs)


def _two_handles(path: Path) -> tuple[pyicechunk.Repository, pyicechunk.Repository, str, Any]:
    backend = _CountingBackend(str(path))
    first = pyicechunk.Repository.create(Storage.from_backend(backend), spec_version=2)
    session = first.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(1,), chunks=(1,), dtype="i4")
    snapshot = session.commit("one")
    second = pyicechunk.Repository.open(pyicechunk.local_filesystem_storage(str(path)))
    return first, second, snapshot, backend


def test_an_update_after_a_write_does_not_read_repo(tmp_path: Path) -> None:
    repo, _, snapshot, backend = _two_handles(tmp_path)
    repo.create_branch("b", snapshot)
    reads, swaps = backend.reads, backend.swaps
    for i in range(5):
        repo.create_tag(f"t{i}", snapshot)
    assert (backend.reads, backend.swaps) == (reads, swaps + 5)
    assert repo.list_tags() == {f"t{i}" for i in range(5)}


def test_a_state_replaced_since_is_refused_and_the_update_made_on_a_read(
    tmp_path: Path,
) -> None:
    repo, other, snapshot, backend = _two_handles(tmp_path)
    repo.create_branch("b", snapshot)
    other.create_tag("theirs", snapshot)  # repo's kept state no longer is the stored one
    reads, swaps = backend.reads, backend.swaps
    repo.create_tag("ours", snapshot)
    # The swap on the kept state failed (the backup copy it made is deleted again), then a
    # read and a swap on it; nothing of the other writer's change is lost.
    assert backend.swaps == swaps + 2 and backend.reads > reads
    assert repo.list_tags() == other.list_tags() == {"theirs", "ours"}
    stored = unpack_repo_object((tmp_path / keys.REPO).read_bytes())
    kinds = [type(u.action) for u in stored.latest_updates[:3]]
    assert kinds == [TagCreated, TagCreated, BranchCreated]
    # Every copy in overwritten/ is one the stored ops log names: the refused one is gone.
    copies = {p.name for p in (tmp_path / "overwritten").iterdir()}
    assert copies <= {u.backup_path for u in stored.latest_updates}


def test_a_change_the_kept_state_refuses_is_decided_on_the_stored_state(
    tmp_path: Path,
) -> None:
    repo, other, snapshot, _ = _two_handles(tmp_path)
    repo.create_branch("b", snapshot)
    other.delete_branch("b")
    repo.create_branch("b", snapshot)  # the kept state has "b"; the stored one does not
    assert other.list_branches() == {"main", "b"}
    other.create_branch("c", snapshot)
    with pytest.raises(pyicechunk.IcechunkError, match="branch already exists `c"):
        repo.create_branch("c", snapshot)  # refused on the stored state too: final
