"""The spec-1 repository state: ``refs/`` and ``config.yaml`` (FORMAT-V1 §2, §7)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from contract import Repo, RepoStateContract, child, commit, run

from pyicechunk.asset_manager import AssetManager
from pyicechunk.config import RepositoryConfig
from pyicechunk.exceptions import ConflictError, IcechunkError
from pyicechunk.format.config_yaml import config_from_yaml
from pyicechunk.format.refs import decode_ref
from pyicechunk.repo_state import (
    ConfigVersion,
    NewSnapshot,
    SnapshotKind,
    fetch_config,
    open_state,
    repository_exists,
)
from pyicechunk.repo_state.spec1 import Spec1State
from pyicechunk.storage import StorageBackend, keys
from pyicechunk.storage.local import LocalFileSystemBackend
from pyicechunk.storage.memory import InMemoryBackend


def _repo(backend: StorageBackend, *, conditional: bool = True) -> Repo:
    assets = AssetManager(backend)
    state = Spec1State(
        backend, assets, conditional_create=conditional, conditional_update=conditional
    )
    return Repo(state, assets)


class TestSpec1InMemory(RepoStateContract):
    @pytest.fixture
    def repo(self) -> Repo:
        repo = _repo(InMemoryBackend())
        run(repo.state.initialize(None))
        return repo


class TestSpec1OnDisk(RepoStateContract):
    @pytest.fixture
    def repo(self, tmp_path: Path) -> Repo:
        repo = _repo(LocalFileSystemBackend(str(tmp_path)))
        run(repo.state.initialize(None))
        return repo


class TestSpec1Unconditional(RepoStateContract):
    """With the ``unsafe_use_conditional_*`` switches off, only concurrency gets weaker."""

    @pytest.fixture
    def repo(self) -> Repo:
        repo = _repo(InMemoryBackend(), conditional=False)
        run(repo.state.initialize(None))
        return repo

    def test_concurrent_commits_from_one_tip_have_one_winner(self, repo: Repo) -> None:
        # Without conditional updates writers that check the tip at the same moment overwrite
        # each other: there may be several winners, and the branch ends at one of them.
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            candidates = [await child(repo, root, f"c{i}") for i in range(4)]
            results = await asyncio.gather(
                *(
                    state.add_snapshot(NewSnapshot(SnapshotKind.COMMIT, c, "main", root))
                    for c in candidates
                ),
                return_exceptions=True,
            )
            won = {c.id for c, r in zip(candidates, results, strict=True) if r is None}
            assert won
            assert all(isinstance(r, ConflictError) for r in results if r is not None)
            assert await state.branch_tip("main") in won

        run(check())


def test_refs_are_ref_files_and_tombstones() -> None:
    backend = InMemoryBackend()
    repo = _repo(backend)

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        first = await commit(repo, "main")
        await state.create_branch("dev", first.id)
        await state.create_tag("v1", first.id)
        await state.delete_tag("v1")
        listed = sorted(info.key for info in await backend.list(keys.REFS))
        assert listed == [
            "refs/branch.dev/ref.json",
            "refs/branch.main/ref.json",
            "refs/tag.v1/ref.json",
            "refs/tag.v1/ref.json.deleted",
        ]
        assert decode_ref(await backend.get(listed[0]), listed[0]) == first.id
        assert await backend.get("refs/tag.v1/ref.json.deleted") == b""

    run(check())


def test_the_reference_messages() -> None:
    repo = _repo(InMemoryBackend())

    async def check() -> None:
        state = repo.state
        await state.initialize(None)
        root = await state.branch_tip("main")
        with pytest.raises(IcechunkError, match=r"branch update conflict: `\(None\) != \(Some"):
            await state.create_branch("main", root)
        with pytest.raises(IcechunkError, match="main branch cannot be deleted"):
            await state.delete_branch("main")
        await state.create_tag("t", root)
        with pytest.raises(IcechunkError, match="tag already exists, tags are immutable: `t`"):
            await state.create_tag("t", root)

    run(check())


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "cannot be empty"),
        ("..", "cannot be '.' or '..'"),
        ("a/b", "cannot contain '/'"),
        ("tab\there", "control characters"),
        ("50%", "cannot contain '%'"),
    ],
)
def test_new_ref_names_must_survive_a_round_trip(name: str, why: str) -> None:
    with pytest.raises(IcechunkError, match=why):
        _repo(InMemoryBackend()).state.validate_ref_name(name)


def test_config_saves_are_compare_and_swap() -> None:
    backend = InMemoryBackend()
    repo = _repo(backend)

    async def check() -> None:
        state = repo.state
        first = RepositoryConfig(inline_chunk_threshold_bytes=7)
        created = await state.initialize(first)
        assert created.exists
        assert config_from_yaml(await backend.get(keys.CONFIG)) == first
        second = RepositoryConfig(inline_chunk_threshold_bytes=9)
        saved = await state.save_config(second, created)
        with pytest.raises(IcechunkError, match="config was updated by other session"):
            await state.save_config(first, created)  # stale: someone saved since
        with pytest.raises(IcechunkError, match="appeared since this repository was opened"):
            await state.save_config(first, ConfigVersion())
        assert await fetch_config(backend) == second
        opened = await open_state(backend)
        assert (opened.spec_version, opened.config, opened.config_version) == (1, second, saved)

    run(check())


def test_opening_probes_the_location() -> None:
    backend = InMemoryBackend()

    async def check() -> None:
        assert not await repository_exists(backend)
        with pytest.raises(IcechunkError, match="the repository doesn't exist"):
            await open_state(backend)
        await _repo(backend).state.initialize(None)
        assert await repository_exists(backend)
        assert (await open_state(backend)).config is None
        # `repo` wins over refs/ (FORMAT-V2 §11.1): a damaged one is reported, not skipped.
        await backend.put(keys.REPO, b"a spec-2 repo object")
        with pytest.raises(IcechunkError, match="cannot read repo"):
            await open_state(backend)
        # A spec-1 handle does not commit into a repository upgraded meanwhile.
        with pytest.raises(IcechunkError, match="upgraded to Icechunk format version 2"):
            await _repo(backend).state.check_branch("main", b"\0" * 12)

    run(check())
