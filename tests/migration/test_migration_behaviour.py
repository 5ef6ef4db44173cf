"""upgrade_icechunk_repository and the migration beneath it: what is written, what is refused,
and what a failure part-way leaves behind (API-2 §6, FORMAT-V2 §13)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from oracle import Oracle, raises

import pyicechunk as ic
from pyicechunk._error_context import without_context
from pyicechunk._sync import sync
from pyicechunk.format.config_flex import config_from_flexbuffer
from pyicechunk.format.ids import decode_id
from pyicechunk.format.repo_info import RepoAvailability, RepoInfo, RepoMigrated, unpack_repo_object
from pyicechunk.ops.migration import migrate_1_to_2
from pyicechunk.session.context import RepoContext
from pyicechunk.storage import Storage, StorageBackend, keys
from pyicechunk.testing.faults import FaultPlan, FaultyBackend, InjectedFault

INVALID_VERSION = (
    "invalid repository version (2.0), this function can only migrate repositories that use "
    "version 1.0 of the specification, to repositories with spec version 2.0"
)
INVALIDATED = (
    "This repository has been invalidated by upgrade_icechunk_repository(). Use the new "
    "Repository object returned by that function instead."
)


def small_history(storage: Storage, config: ic.RepositoryConfig | None = None) -> dict[str, Any]:
    """Three commits on main, a branch, a tag, a deleted tag and one detached snapshot (spec 1:
    the format a migration starts from)."""
    repo = ic.Repository.create(storage, config, spec_version=1)
    ids = []
    for step in range(3):
        s = repo.writable_session("main")
        if step == 0:
            zarr.create_array(s.store, name="a", shape=(6,), chunks=(2,), dtype="i4")
        zarr.open_array(s.store, path="a", mode="r+")[step * 2 : step * 2 + 2] = step + 1
        ids.append(s.commit(f"commit {step}", metadata={"step": step, "even": step % 2 == 0}))
    repo.create_branch("dev", ids[0])
    repo.create_tag("keep", ids[1])
    repo.create_tag("gone", ids[2])
    repo.delete_tag("gone")
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="a", mode="r+")[0] = 9
    detached = s.flush("detached")
    return {"repo": repo, "main": ids, "detached": detached}


def tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def migrate(storage: Storage, **options: Any) -> RepoInfo:
    """The migration as ``upgrade_icechunk_repository`` runs it, without the final open."""
    ctx = RepoContext(storage=storage, config=ic.RepositoryConfig(), spec_version=1)
    return sync(migrate_1_to_2(ctx.state, ctx.storage.backend, **options))


def stored_repo(storage: Storage) -> RepoInfo:
    return unpack_repo_object(sync(storage.backend.get(keys.REPO)))


# --- what a migration writes --------------------------------------------------------------------


def test_dry_run_writes_nothing_and_both_objects_stay_spec_1(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    built = small_history(storage)
    before = tree(tmp_path / "r")
    repo = built["repo"]
    again = ic.upgrade_icechunk_repository(repo, dry_run=True)
    assert tree(tmp_path / "r") == before
    assert isinstance(again, ic.Repository) and again is not repo
    assert again.list_branches() == repo.list_branches() == {"main", "dev"}
    # The argument still works: it commits, as a spec-1 repository.
    s = repo.writable_session("main")
    zarr.open_array(s.store, path="a", mode="r+")[5] = 5
    s.commit("after the dry run")
    assert (tmp_path / "r" / "refs" / "branch.main" / "ref.json").is_file()
    assert not (tmp_path / "r" / keys.REPO).exists()


def test_the_async_twin_runs_the_same_migration(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    repo = small_history(storage)["repo"]
    again = asyncio.run(ic.upgrade_icechunk_repository_async(repo, dry_run=True))
    assert again.list_tags() == {"keep"}


def test_the_repo_object_holds_refs_reachable_history_config_and_a_synthesised_log() -> None:
    config = ic.RepositoryConfig.default()
    config.inline_chunk_threshold_bytes = 7
    storage = ic.in_memory_storage()
    built = small_history(storage, config)
    repo: ic.Repository = built["repo"]
    stored_config = ic.Repository.fetch_config(storage)
    history = {s.id: s for s in repo.ancestry(branch="main")}
    tips = {b: decode_id(repo.lookup_branch(b), 12) for b in ("main", "dev")}

    written = migrate(storage, dry_run=False)
    assert stored_repo(storage) == written
    assert written.spec_version == 2
    assert written.branches == tips
    assert written.tags == {"keep": decode_id(built["main"][1], 12)}
    assert written.deleted_tags == {"gone"}
    # Every snapshot a ref reaches (all of them are on main here), and not the detached one.
    assert {sid for sid in written.snapshots} == {decode_id(s, 12) for s in history}
    for sid, info in history.items():
        entry = written.snapshots[decode_id(sid, 12)]
        assert entry.parent_id == (
            None if info.parent_id is None else decode_id(info.parent_id, 12)
        )
        assert (entry.message, entry.metadata_values()) == (info.message, info.metadata)
    root = written.snapshots[decode_id(list(history)[-1], 12)]
    assert written.status.availability == RepoAvailability.ONLINE
    assert written.status.set_at == root.flushed_at
    assert written.config is not None
    assert config_from_flexbuffer(written.config) == stored_config
    newest, *synthesised = written.latest_updates
    assert newest.action == RepoMigrated(1, 2)
    assert all(u.backup_path is None for u in written.latest_updates)
    times = [u.updated_at for u in written.latest_updates]
    assert times == sorted(set(times), reverse=True)
    assert synthesised[-1].updated_at == root.flushed_at
    # The spec-1 files are gone; the snapshots, including the unreachable one, stay.
    left = {info.key for info in sync(storage.backend.list(""))}
    assert not {k for k in left if k.startswith(keys.REFS)} and keys.CONFIG not in left
    assert keys.snapshot_key(decode_id(built["detached"], 12)) in left


def test_without_a_stored_config_the_repo_object_has_none() -> None:
    storage = ic.in_memory_storage()
    small_history(storage)
    assert ic.Repository.fetch_config(storage) is None
    assert migrate(storage, dry_run=True).config is None


def test_keeping_the_v1_files_leaves_refs_and_config_beside_repo(tmp_path: Path) -> None:
    path = tmp_path / "r"
    storage = ic.local_filesystem_storage(str(path))
    small_history(storage, ic.RepositoryConfig(inline_chunk_threshold_bytes=9))
    before = tree(path)
    migrate(storage, dry_run=False, delete_unused_v1_files=False)
    after = tree(path)
    assert set(after) - set(before) == {keys.REPO}
    assert {k: after[k] for k in before} == before


def test_prefetch_concurrency_must_be_a_positive_integer() -> None:
    storage = ic.in_memory_storage()
    small_history(storage)
    one = migrate(storage, dry_run=True, prefetch_concurrency=1)
    default = migrate(storage, dry_run=True)
    assert one.snapshots == default.snapshots and one.branches == default.branches
    for bad in (0, -3, True, 2.0, "8"):
        with pytest.raises(ValueError, match="prefetch_concurrency must be a positive integer"):
            migrate(storage, dry_run=True, prefetch_concurrency=bad)


def test_a_long_history_is_collected_with_bounded_concurrency() -> None:
    """The prefetch reads ahead of the walk; no snapshot is read twice."""
    inner = ic.in_memory_storage().backend
    counting = _CountingGets(inner)
    storage = Storage.from_backend(counting)
    repo = ic.Repository.create(storage, spec_version=1)
    s = repo.writable_session("main")
    zarr.create_array(s.store, name="a", shape=(1,), chunks=(1,), dtype="i1")
    s.commit("first")
    for i in range(60):
        s = repo.writable_session("main")
        zarr.open_array(s.store, path="a", mode="r+")[0] = i
        s.commit(f"c{i}")
    counting.gets.clear()
    written = migrate(storage, dry_run=True, prefetch_concurrency=4)
    assert len(written.snapshots) == 62
    snapshot_reads = [k for k in counting.gets if k.startswith(keys.SNAPSHOTS)]
    assert len(snapshot_reads) == len(set(snapshot_reads))
    assert {keys.snapshot_key(sid) for sid in written.snapshots} <= set(snapshot_reads)
    assert counting.most_at_once <= 4 + 1  # the prefetch workers and the walk


# --- what is refused ---------------------------------------------------------------------------


def test_a_spec_2_repository_is_refused_as_the_reference_refuses_it(
    ic2: Oracle, tmp_path: Path
) -> None:
    path = tmp_path / "r"
    storage = ic.local_filesystem_storage(str(path))
    stale = small_history(storage)["repo"]
    migrate(storage, dry_run=False)
    before = tree(path)
    # A Repository object opened before the migration (or in another process).
    with pytest.raises(ic.IcechunkError) as ours:
        ic.upgrade_icechunk_repository(stale, dry_run=False)
    assert without_context(ours.value.message) == INVALID_VERSION
    with pytest.raises(ic.IcechunkError, match=r"invalid repository version \(2\.0\)"):
        ic.upgrade_icechunk_repository(stale, dry_run=True)
    assert tree(path) == before
    assert isinstance(stale.config, ic.RepositoryConfig)  # not invalidated: nothing changed
    with raises("SessionStateError", kind="invalid-repository-migration") as theirs:
        ic2.run(
            "icechunk.upgrade_icechunk_repository(icechunk.Repository.open("
            "icechunk.local_filesystem_storage(str(path))), dry_run=False)",
            path=path,
        )
    assert theirs.value is not None and theirs.value.first_line == without_context(
        ours.value.message
    )


def test_read_only_storage_is_refused_even_for_a_dry_run() -> None:
    inner = ic.in_memory_storage()
    small_history(inner)
    faulty = FaultyBackend(inner.backend, FaultPlan())
    faulty.read_only = True
    storage = Storage.from_backend(faulty)
    for dry_run in (True, False):
        with pytest.raises(ic.IcechunkError, match="the storage instance used to initialize"):
            migrate(storage, dry_run=dry_run)
    assert not sync(inner.backend.exists(keys.REPO))


def test_an_empty_location_and_wrong_arguments_are_refused() -> None:
    with pytest.raises(ic.IcechunkError, match="no spec-1 repository here"):
        migrate(ic.in_memory_storage(), dry_run=True)
    with pytest.raises(TypeError, match="expected a Repository, got Storage"):
        ic.upgrade_icechunk_repository(ic.in_memory_storage(), dry_run=True)  # type: ignore[arg-type]
    repo = ic.Repository.create(ic.in_memory_storage())
    with pytest.raises(TypeError):
        ic.upgrade_icechunk_repository(repo)  # type: ignore[call-arg]
    assert "upgrade_icechunk_repository" not in ic.__all__


def test_a_damaged_snapshot_stops_the_migration_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r"
    storage = ic.local_filesystem_storage(str(path))
    built = small_history(storage)
    victim = path / keys.snapshot_key(decode_id(built["main"][1], 12))
    victim.write_bytes(victim.read_bytes()[:60])
    before = tree(path)
    with pytest.raises(ic.IcechunkError, match=built["main"][1]):
        ic.upgrade_icechunk_repository(built["repo"], dry_run=False)
    assert tree(path) == before
    assert built["repo"].list_tags() == {"keep"}


# --- failures part-way -------------------------------------------------------------------------


class _CountingGets(FaultyBackend):
    """Passes everything through, recording reads and how many ran at once."""

    def __init__(self, inner: StorageBackend) -> None:
        super().__init__(inner, FaultPlan())
        self.gets: list[str] = []
        self.running = 0
        self.most_at_once = 0

    async def get(self, key: str, byte_range: Any = None) -> bytes:
        self.gets.append(key)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.001)
            return await super().get(key, byte_range)
        finally:
            self.running -= 1


class _Breaks(FaultyBackend):
    """Fails the writes a test names: the delete of some keys, or creating ``repo`` (after the
    write landed, as a lost acknowledgement)."""

    def __init__(
        self, inner: StorageBackend, *, deletes: Sequence[str] = (), lose_repo_ack: bool = False
    ) -> None:
        super().__init__(inner, FaultPlan())
        self.deletes = set(deletes)
        self.lose_repo_ack = lose_repo_ack

    async def delete(self, key: str) -> None:
        if key in self.deletes:
            raise InjectedFault(f"injected failure deleting {key}")
        await super().delete(key)

    async def delete_many(self, keys_: Sequence[str]) -> int:
        if self.deletes & set(keys_):
            raise InjectedFault("injected failure deleting several objects")
        return await super().delete_many(keys_)

    async def put_if_absent(self, key: str, data: bytes, *, durable: Sequence[str] = ()) -> bool:
        done = await super().put_if_absent(key, data, durable=durable)
        if key == keys.REPO and self.lose_repo_ack:
            raise InjectedFault(f"injected lost acknowledgement writing {key}")
        return done


def _broken(tmp_path: Path, **faults: Any) -> tuple[Path, ic.Repository, Storage]:
    path = tmp_path / "r"
    small_history(
        ic.local_filesystem_storage(str(path)), ic.RepositoryConfig(inline_chunk_threshold_bytes=3)
    )
    storage = Storage.from_backend(
        _Breaks(ic.local_filesystem_storage(str(path)).backend, **faults)
    )
    return path, ic.Repository.open(storage), storage


@pytest.mark.parametrize(
    "faults",
    [{"deletes": [keys.SPEC1_MAIN_BRANCH]}, {"lose_repo_ack": True}],
    ids=["deleting-main-fails", "writing-repo-loses-its-answer"],
)
def test_a_failure_before_main_is_deleted_leaves_everything_as_it_was(
    tmp_path: Path, faults: dict[str, Any]
) -> None:
    path, repo, _ = _broken(tmp_path, **faults)
    before = tree(path)
    with pytest.raises(ic.IcechunkError, match="the repository was left as it was"):
        ic.upgrade_icechunk_repository(repo, dry_run=False)
    assert tree(path) == before
    assert repo.list_tags() == {"keep"}  # still usable: nothing changed


def test_a_failure_after_main_is_deleted_keeps_the_migration_and_invalidates(
    tmp_path: Path,
) -> None:
    path, repo, _ = _broken(tmp_path, deletes=[keys.tag_key("keep")])
    with pytest.raises(ic.IcechunkError, match="the repository was migrated to spec 2, but"):
        ic.upgrade_icechunk_repository(repo, dry_run=False)
    assert (path / keys.REPO).is_file()
    assert not (path / keys.SPEC1_MAIN_BRANCH).exists()
    for use in (lambda: repo.list_branches(), lambda: repo.config, lambda: repo.storage):
        with pytest.raises(RuntimeError) as caught:
            use()
        assert str(caught.value) == INVALIDATED
    with pytest.raises(RuntimeError, match="invalidated by upgrade_icechunk_repository"):
        ic.upgrade_icechunk_repository(repo, dry_run=False)


def test_a_config_yaml_that_cannot_be_deleted_is_only_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, _, storage = _broken(tmp_path, deletes=[keys.CONFIG])
    with caplog.at_level(logging.WARNING, logger="pyicechunk"):
        written = migrate(storage, dry_run=False)
    assert (path / keys.CONFIG).is_file() and not (path / keys.SPEC1_MAIN_BRANCH).exists()
    assert stored_repo(storage) == written
    assert any(keys.CONFIG in r.getMessage() for r in caplog.records)


# --- the returned repository -------------------------------------------------------------------


def test_the_result_is_the_spec_2_repository_and_the_argument_is_invalidated(
    tmp_path: Path,
) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "r"))
    built = small_history(storage)
    old: ic.Repository = built["repo"]
    tips = {b: old.lookup_branch(b) for b in old.list_branches()}
    new = ic.upgrade_icechunk_repository(old, dry_run=False)
    assert int(new.spec_version) == 2
    assert {b: new.lookup_branch(b) for b in new.list_branches()} == tips
    with pytest.raises(RuntimeError) as caught:
        old.writable_session("main")
    assert str(caught.value) == INVALIDATED
    with pytest.raises(ic.IcechunkError) as second:
        ic.upgrade_icechunk_repository(new, dry_run=False)
    assert without_context(second.value.message) == INVALID_VERSION
    data = zarr.open_array(new.readonly_session("main").store, path="a", mode="r")[:]
    np.testing.assert_array_equal(data, [1, 1, 2, 2, 3, 3])
