"""Spec-2 expiration and GC racing other writers, and failing part-way (pyicechunk only: the
reference cannot be paused at a chosen write).

A backend wrapper runs another writer's commit (or branch creation), through a repository
handle of its own on a thread of its own, just before the maintenance operation's conditional
write of ``repo``, so that write loses the race; the operation must retry on the fresh state
and never lose or break what the other writer wrote, even when its objects are older than the
GC threshold. Faults injected into deletes or into the write of ``repo`` must leave a
repository that opens and reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import zarr
from oracle import Oracle

import pyicechunk as ic
from pyicechunk.storage import ConditionalWrite, Storage, keys
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

WIDTH = 64


class RacingBackend(FaultyBackend):
    """Runs ``rival`` on another thread before the first conditional write of repo after it
    is set, and waits for it (the event loop stays free for the rival's own calls)."""

    rival: Callable[[], object] | None = None

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        if self.rival is not None and write.key == keys.REPO and write.version is not None:
            rival, self.rival = self.rival, None
            await asyncio.to_thread(rival)
        return await super()._write_conditionally(write)


def _values(n: int) -> np.ndarray:
    return np.random.default_rng(n).random(WIDTH)


def _build(path: Path) -> tuple[ic.Repository, list[str]]:
    """c0..c2 on main, then main reset to c1: c2 is unreachable."""
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=0)
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), config, spec_version=2)
    ids = []
    for i in range(3):
        s = repo.writable_session("main")
        if i == 0:
            zarr.create_array(s.store, name="a", shape=(8, WIDTH), chunks=(1, WIDTH), dtype="f8")
        zarr.open_array(s.store, path="a", mode="r+")[i] = _values(i)
        ids.append(s.commit(f"c{i}"))
    repo.reset_branch("main", ids[1])
    return repo, ids


def _racing(path: Path) -> tuple[ic.Repository, RacingBackend]:
    inner = ic.local_filesystem_storage(str(path)).backend
    backend = RacingBackend(inner, FaultPlan())
    return ic.Repository.open(Storage.from_backend(backend)), backend


def _rival_commit(path: Path, row: int) -> Callable[[], object]:
    def commit() -> str:
        repo = ic.Repository.open(ic.local_filesystem_storage(str(path)))
        s = repo.writable_session("main")
        zarr.open_array(s.store, path="a", mode="r+")[row] = _values(row)
        return s.commit("concurrent")

    return commit


def _kinds(repo: ic.Repository) -> list[str]:
    return [type(u.kind).__name__ for u in repo.ops_log()]


def _listed_files_exist(path: Path, repo: ic.Repository) -> None:
    for branch in repo.list_branches():
        for snap in repo.ancestry(branch=branch):
            assert (path / "snapshots" / snap.id).is_file()


def test_gc_keeps_a_commit_that_lands_while_it_runs(tmp_path: Path, ic2: Oracle) -> None:
    path = tmp_path / "repo"
    _, ids = _build(path)
    repo, backend = _racing(path)
    backend.rival = _rival_commit(path, 3)
    # Everything is older than this threshold, the concurrent commit's objects too.
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert backend.rival is None
    assert (summary.snapshots_deleted, summary.transaction_logs_deleted) == (1, 1)  # c2
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    history = [s.message for s in fresh.ancestry(branch="main")]
    assert history == ["concurrent", "c1", "c0", "Repository initialized"]
    got = zarr.open_array(fresh.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(got[[0, 1, 3]], [_values(0), _values(1), _values(3)])
    _listed_files_exist(path, fresh)
    assert _kinds(fresh)[:2] == ["GCRan", "NewCommit"]
    # icechunk 2.3.0 reads the result too.
    seen = ic2.run(
        "repo = icechunk.Repository.open(icechunk.local_filesystem_storage(p))\n"
        "zarr.open_array(repo.readonly_session('main').store, path='a', mode='r')[3]",
        p=str(path),
    )
    np.testing.assert_array_equal(seen, _values(3))
    assert ids[2] not in {p.name for p in (path / "snapshots").iterdir()}


def test_gc_starts_again_when_a_ref_lands_on_what_it_unlists(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    _, ids = _build(path)
    repo, backend = _racing(path)
    rival = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    backend.rival = lambda: rival.create_branch("rescue", ids[2])
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    # The second plan sees the branch: c2 is kept, nothing is deleted.
    assert summary.snapshots_deleted == 0 and summary.chunks_deleted == 0
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    got = zarr.open_array(fresh.readonly_session("rescue").store, path="a", mode="r")[2]
    np.testing.assert_array_equal(got, _values(2))
    assert _kinds(fresh)[:2] == ["GCRan", "BranchCreated"]


def test_expiration_redone_on_top_of_a_commit_that_lands_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    _, ids = _build(path)
    repo, backend = _racing(path)
    backend.rival = _rival_commit(path, 4)
    expired = repo.expire_snapshots(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    # Redone on the state with the new commit: it is main's tip, so it stays.
    assert expired == set(ids)
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    assert [s.message for s in fresh.ancestry(branch="main")] == [
        "concurrent",
        "Repository initialized",
    ]
    diff = fresh.diff(from_snapshot_id="1CECHNKREP0F1RSTCMT0", to_branch="main")
    assert sorted(map(tuple, diff.updated_chunks["/a"])) == [(0, 0), (1, 0), (4, 0)]
    assert _kinds(fresh)[:2] == ["ExpirationRan", "NewCommit"]


def _on_disk(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and not p.relative_to(path).parts[0] == "overwritten"
    }


@pytest.mark.parametrize("operation", ["gc", "expire"])
def test_a_failed_write_of_repo_changes_nothing(tmp_path: Path, operation: str) -> None:
    path = tmp_path / "repo"
    _build(path)
    before = _on_disk(path)
    faulty = FaultyBackend(
        ic.local_filesystem_storage(str(path)).backend, FaultPlan(rates={"put_if_version": 1.0})
    )
    repo = ic.Repository.open(Storage.from_backend(faulty))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(ic.IcechunkError, match="injected"):
        if operation == "gc":
            repo.garbage_collect(later)
        else:
            repo.expire_snapshots(later)
    # Only an unused copy under overwritten/ may be left, as the reference leaves one.
    assert _on_disk(path) == before


class RefusingBackend(FaultyBackend):
    """Refuses to delete the keys in ``refused``, as a store reporting per-key errors does."""

    refused: frozenset[str] = frozenset()

    async def delete_many(self, keys: Sequence[str]) -> int:
        if self.refused & set(keys):
            raise InjectedFault("storage error: access denied for some keys")
        return await super().delete_many(keys)

    async def delete(self, key: str) -> None:
        if key in self.refused:
            raise InjectedFault(f"storage error: access denied for {key}")
        await super().delete(key)


# What icechunk 2.3.0 reported when one object of a phase could not be deleted (measured on
# the local filesystem with an immutable file), and the phases it then skipped: counts of
# snapshots, transaction logs, manifests and chunks deleted, and the skipped phases.
_REFUSED = {
    "snapshots": ((2, 0, 0, 0), ["transaction_logs", "manifests", "chunks"]),
    "transactions": ((3, 2, 0, 0), ["manifests", "chunks"]),
    "manifests": ((3, 3, 2, 0), ["chunks"]),
    "chunks": ((3, 3, 3, 2), []),
}


@pytest.mark.parametrize("spec", [2, 1])
@pytest.mark.parametrize("kind", sorted(_REFUSED))
def test_an_object_gc_cannot_delete_is_reported_and_stops_later_phases(
    tmp_path: Path, kind: str, spec: int
) -> None:
    path = tmp_path / "repo"
    config = ic.RepositoryConfig(inline_chunk_threshold_bytes=0)
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)), config, spec_version=spec)
    s = repo.writable_session("main")
    zarr.create_array(s.store, name="a", shape=(8, WIDTH), chunks=(1, WIDTH), dtype="f8")
    base = s.commit("c0")
    before = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    for i in range(3):
        s = repo.writable_session("main")
        zarr.open_array(s.store, path="a", mode="r+")[i] = _values(i)
        s.commit(f"c{i + 1}")
    repo.reset_branch("main", base)  # c1..c3 and all they wrote are garbage
    new = sorted(
        p.relative_to(path).as_posix()
        for p in (path / kind).iterdir()
        if p.relative_to(path).as_posix() not in before
    )
    backend = RefusingBackend(ic.local_filesystem_storage(str(path)).backend, FaultPlan())
    backend.refused = frozenset(new[:1])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    summary = ic.Repository.open(Storage.from_backend(backend)).garbage_collect(later)
    counts, skipped = _REFUSED[kind]
    if spec == 1:  # icechunk 1.1 goes on with the later phases
        counts = tuple(2 if i == list(_REFUSED).index(kind) else 3 for i in range(4))
        skipped = []
    got = (
        summary.snapshots_deleted,
        summary.transaction_logs_deleted,
        summary.manifests_deleted,
        summary.chunks_deleted,
    )
    assert (got, summary.skipped_phases) == (counts, skipped)
    assert summary.objects_failed_to_delete == 1
    assert summary.delete_errors == [
        "1 of 3 objects not deleted (per-key errors reported by storage)"
    ]
    # The repository reads, and a run that can delete everything finishes the job.
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    _listed_files_exist(path, fresh)
    np.testing.assert_array_equal(
        zarr.open_array(fresh.readonly_session("main").store, path="a", mode="r")[:], 0
    )
    fresh.garbage_collect(later)
    after = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {k for k in after - before if not k.startswith("overwritten/")} <= {"repo"}


def test_gc_gives_up_after_too_many_failed_deletes_in_a_row(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    _, ids = _build(path)
    backend = RefusingBackend(ic.local_filesystem_storage(str(path)).backend, FaultPlan())
    backend.refused = frozenset({f"snapshots/{ids[2]}"})
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    repo = ic.Repository.open(Storage.from_backend(backend))
    # The bulk delete and then the single one fail: two in a row.
    with pytest.raises(ic.IcechunkError, match="2 delete requests failed in a row"):
        repo.garbage_collect(later, max_consecutive_delete_failures=2)
    fresh = ic.Repository.open(ic.local_filesystem_storage(str(path)))
    _listed_files_exist(path, fresh)
    assert fresh.garbage_collect(later).snapshots_deleted == 1
