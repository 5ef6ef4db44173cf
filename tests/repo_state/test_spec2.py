"""The spec-2 repository state: the ``repo`` object and its backups (FORMAT-V2 §10, §11).

The contract runs in memory, on the local filesystem and on S3 (the moto server); the tests
below it check what only spec 2 does: the layout, icechunk 2.3.0's messages, one ops-log entry
and one backup per mutation, and how opening finds the repository.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from contract import Repo, RepoStateContract, child, commit, run

from pyicechunk.asset_manager import AssetManager
from pyicechunk.config import RepositoryConfig
from pyicechunk.exceptions import ConflictError, IcechunkError
from pyicechunk.format.ids import encode_id, new_snapshot_id
from pyicechunk.format.repo_info import unpack_repo_object
from pyicechunk.repo_state import (
    ConfigVersion,
    NewSnapshot,
    SnapshotKind,
    fetch_config,
    open_state,
    repository_exists,
)
from pyicechunk.repo_state.spec2 import Spec2State
from pyicechunk.spec_versions import SpecVersion
from pyicechunk.storage import StorageBackend, keys
from pyicechunk.storage.local import LocalFileSystemBackend
from pyicechunk.storage.memory import InMemoryBackend

SPEC_V2 = int(SpecVersion.v2)


def _repo(backend: StorageBackend, config: RepositoryConfig | None = None) -> Repo:
    assets = AssetManager(backend, spec_version=SPEC_V2)
    return Repo(Spec2State(backend, assets, config or RepositoryConfig()), assets)


def _new(backend: StorageBackend) -> Repo:
    repo = _repo(backend)
    run(repo.state.initialize(None))
    return repo


class TestSpec2InMemory(RepoStateContract):
    @pytest.fixture
    def repo(self) -> Repo:
        return _new(InMemoryBackend())


class TestSpec2OnDisk(RepoStateContract):
    @pytest.fixture
    def repo(self, tmp_path: Path) -> Repo:
        return _new(LocalFileSystemBackend(str(tmp_path)))


class TestSpec2OnS3(RepoStateContract):
    @pytest.fixture
    def repo(self, new_storage: Any) -> Repo:
        return _new(new_storage("s3").backend)


async def _keys(backend: StorageBackend, prefix: str) -> list[str]:
    return sorted(info.key for info in await backend.list(prefix))


async def _ops_log(repo: Repo) -> list[str]:
    entries, _ = await repo.state.ops_log_file(None)
    return [type(entry.action).__name__ for entry in entries]


def test_the_state_is_one_repo_object_with_a_backup_per_update() -> None:
    backend = InMemoryBackend()
    repo = _repo(backend)

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        root = await state.branch_tip("main")
        assert await _keys(backend, "") == [
            keys.REPO,
            keys.snapshot_key(root),
            keys.transaction_key(root),
        ]
        first = await commit(repo, "main")
        await state.create_branch("dev", first.id)
        await state.reset_branch("dev", root, expected=first.id)
        await state.create_tag("v1", first.id)
        await state.delete_tag("v1")
        await state.delete_branch("dev")
        detached = await child(repo, first.id, "detached")
        await state.add_snapshot(NewSnapshot(SnapshotKind.DETACHED, detached))
        await state.save_config(RepositoryConfig(inline_chunk_threshold_bytes=3), ConfigVersion())
        assert await _ops_log(repo) == [
            "ConfigChanged",
            "NewDetachedSnapshot",
            "BranchDeleted",
            "TagDeleted",
            "TagCreated",
            "BranchReset",
            "BranchCreated",
            "NewCommit",
            "RepoInitialized",
        ]
        # no refs/ and no config.yaml; one copy of the previous repo per update
        assert await _keys(backend, "refs") == []
        assert not await backend.exists(keys.CONFIG)
        backups = await _keys(backend, "overwritten")
        assert len(backups) == 8
        info = unpack_repo_object(await backend.get(keys.REPO), keys.REPO)
        assert info.branches == {"main": first.id}
        assert (dict(info.tags), set(info.deleted_tags)) == ({}, {"v1"})
        assert set(info.snapshots) == {root, first.id, detached.id}

    run(check())


def test_the_reference_messages() -> None:
    repo = _repo(InMemoryBackend())

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        root = await state.branch_tip("main")
        with pytest.raises(
            IcechunkError, match=f"branch already exists `main -> {encode_id(root)}`"
        ):
            await state.create_branch("main", root)
        with pytest.raises(IcechunkError, match="main branch cannot be deleted"):
            await state.delete_branch("main")
        unknown = new_snapshot_id()
        for make in (state.create_branch, state.create_tag):
            with pytest.raises(
                IcechunkError, match=f"snapshot id not found `{encode_id(unknown)}`"
            ):
                await make("x", unknown)
        await state.create_tag("t", root)
        with pytest.raises(IcechunkError, match="tag already exists, tags are immutable: `t`"):
            await state.create_tag("t", root)
        await state.delete_tag("t")
        with pytest.raises(
            IcechunkError, match="icechunk does not allow tag reuse and tag was already deleted `t`"
        ):
            await state.create_tag("t", root)
        # a failed update writes nothing: no backup, no entry
        assert await _ops_log(repo) == ["TagDeleted", "TagCreated", "RepoInitialized"]

    run(check())


def test_a_snapshot_must_be_listed_before_a_ref_points_at_it() -> None:
    repo = _repo(InMemoryBackend())

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        root = await state.branch_tip("main")
        written = await child(repo, root, "written but never listed")
        with pytest.raises(IcechunkError, match="snapshot id not found"):
            await state.reset_branch("main", written.id, expected=None)
        assert await state.branch_tip("main") == root

    run(check())


@pytest.mark.parametrize("name", ["a/b", "..", "50%", "tab\there", "/"])
def test_ref_names_are_not_paths(name: str) -> None:
    """In spec 2 names live inside ``repo``: as icechunk 2.x, anything but the empty name."""
    repo = _repo(InMemoryBackend())

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        root = await state.branch_tip("main")
        state.validate_ref_name(name)
        await state.create_branch(name, root)
        await state.create_tag(name, root)
        assert await state.branch_tip(name) == await state.tag_target(name) == root

    run(check())
    with pytest.raises(IcechunkError, match="cannot be empty"):
        repo.state.validate_ref_name("")


def test_config_lives_in_repo_and_opening_finds_it() -> None:
    backend = InMemoryBackend()

    async def check() -> None:
        assert not await repository_exists(backend)
        first = RepositoryConfig(inline_chunk_threshold_bytes=7)
        created = await _repo(backend).state.initialize(first)
        assert created.exists
        assert await repository_exists(backend)
        assert await fetch_config(backend) == first
        opened = await open_state(backend)
        assert (opened.spec_version, opened.config) == (2, first)
        second = RepositoryConfig(inline_chunk_threshold_bytes=9)
        await _repo(backend).state.save_config(second, opened.config_version)
        assert await fetch_config(backend) == second
        # a second repository cannot be created over the first
        with pytest.raises(IcechunkError):
            await _repo(backend).state.initialize(None)
        assert await fetch_config(backend) == second

    run(check())


def test_stale_handles_see_the_freshest_repo() -> None:
    """Two state objects on one location (two processes): each update starts from what is
    stored now, and a commit from a stale tip is a conflict, never a lost update."""
    backend = InMemoryBackend()
    one = _new(backend)
    other = _repo(backend)

    async def check() -> None:
        root = await one.state.branch_tip("main")
        first = await commit(one, "main")
        await other.state.create_tag("v1", first.id)  # sees the commit it never made
        assert await one.state.tag_target("v1") == first.id
        late = await child(other, root, "late")
        with pytest.raises(ConflictError):
            await other.state.add_snapshot(NewSnapshot(SnapshotKind.COMMIT, late, "main", root))
        # concurrent tag creations from both handles: every one lands
        await asyncio.gather(
            *(s.state.create_tag(f"t{i}", root) for i, s in enumerate((one, other) * 3))
        )
        assert (await one.state.refs()).tags == {"v1", *(f"t{i}" for i in range(6))}
        assert len(await _ops_log(one)) == 1 + 1 + 1 + 6

    run(check())
