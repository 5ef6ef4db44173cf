"""What every repository-state implementation must do (one subclass per format version).

Subclass :class:`RepoStateContract` and provide the ``repo`` fixture: a freshly initialised
repository's :class:`~pyicechunk.repo_state.RepoState` with the asset manager it reads snapshots
through. Only behaviour common to every version is asserted here; each version's own test
module checks its messages and its on-disk layout.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import ConflictError, IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import new_snapshot_id
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.history import HistoryWalk
from pyicechunk.repo_state import NewSnapshot, RepoState, SnapshotKind

T = TypeVar("T")


@dataclasses.dataclass
class Repo:
    state: RepoState
    assets: AssetManager


def run(awaitable: Awaitable[T]) -> T:
    async def wait() -> T:
        return await awaitable

    return asyncio.run(wait())


async def child(repo: Repo, parent_id: bytes, message: str = "child") -> Snapshot:
    """A written snapshot whose parent is ``parent_id`` (no nodes: the history is the point)."""
    parent = await repo.assets.fetch_snapshot(parent_id)
    snapshot = Snapshot(
        id=new_snapshot_id(),
        parent_id=parent_id,
        nodes=(),
        flushed_at=parent.flushed_at + 1,
        message=message,
        metadata={"n": message},
        manifest_files=(),
    )
    await repo.assets.write_snapshot(snapshot)
    return snapshot


async def commit(repo: Repo, branch: str, message: str = "commit") -> Snapshot:
    """One commit on ``branch`` through the seam, as a session makes it."""
    state = repo.state
    tip_id = await state.branch_tip(branch)
    tip = await state.check_branch(branch, tip_id)
    snapshot = await child(repo, tip_id, message)
    await state.add_snapshot(NewSnapshot(SnapshotKind.COMMIT, snapshot, branch, tip_id), tip)
    return snapshot


class RepoStateContract:
    @pytest.fixture
    def repo(self) -> Repo:
        raise NotImplementedError("provide the repo fixture in the subclass")

    def test_a_new_repository_has_main_at_a_root(self, repo: Repo) -> None:
        async def check() -> None:
            refs = await repo.state.refs()
            assert refs.branches == {"main"}
            assert refs.tags == refs.deleted_tags == frozenset()
            root = await (await repo.state.history()).entry(await repo.state.branch_tip("main"))
            assert root.parent_id is None

        run(check())

    def test_missing_refs_are_not_found(self, repo: Repo) -> None:
        for lookup in (repo.state.branch_tip, repo.state.tag_target):
            with pytest.raises(IcechunkError, match="ref not found `nope`"):
                run(lookup("nope"))

    def test_branches_are_created_reset_and_deleted(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            second = await commit(repo, "main")
            await state.create_branch("dev", root)
            assert await state.branch_tip("dev") == root
            with pytest.raises(IcechunkError):
                await state.create_branch("dev", second.id)
            with pytest.raises(IcechunkError):
                await state.reset_branch("dev", second.id, expected=second.id)
            assert await state.branch_tip("dev") == root
            await state.reset_branch("dev", second.id, expected=root)
            assert await state.branch_tip("dev") == second.id
            await state.reset_branch("dev", root, expected=None)
            assert await state.branch_tip("dev") == root
            await state.delete_branch("dev")
            assert (await state.refs()).branches == {"main"}
            with pytest.raises(IcechunkError):
                await state.delete_branch("dev")
            with pytest.raises(IcechunkError):
                await state.delete_branch("main")

        run(check())

    def test_a_deleted_tag_name_is_never_reused(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            await state.create_tag("v1", root)
            assert await state.tag_target("v1") == root
            with pytest.raises(IcechunkError):
                await state.create_tag("v1", root)
            await state.delete_tag("v1")
            refs = await state.refs()
            assert (refs.tags, refs.deleted_tags) == (frozenset(), {"v1"})
            with pytest.raises(IcechunkError, match="ref not found"):
                await state.tag_target("v1")
            with pytest.raises(IcechunkError):
                await state.delete_tag("v1")
            with pytest.raises(IcechunkError):
                await state.create_tag("v1", root)

        run(check())

    def test_a_commit_moves_its_branch_only_from_the_expected_tip(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            first = await commit(repo, "main", "first")
            assert await state.branch_tip("main") == first.id
            with pytest.raises(ConflictError):
                await state.check_branch("main", root)
            late = await child(repo, root, "late")
            with pytest.raises(ConflictError):
                await state.add_snapshot(NewSnapshot(SnapshotKind.COMMIT, late, "main", root))
            assert await state.branch_tip("main") == first.id

        run(check())

    def test_concurrent_commits_from_one_tip_have_one_winner(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            candidates = [await child(repo, root, f"c{i}") for i in range(6)]
            results = await asyncio.gather(
                *(
                    state.add_snapshot(NewSnapshot(SnapshotKind.COMMIT, c, "main", root))
                    for c in candidates
                ),
                return_exceptions=True,
            )
            won = [c.id for c, r in zip(candidates, results, strict=True) if r is None]
            assert len(won) == 1
            assert all(isinstance(r, ConflictError) for r in results if r is not None)
            assert await state.branch_tip("main") == won[0]

        run(check())

    def test_an_amend_replaces_the_tip(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            first = await commit(repo, "main", "first")
            replacement = await child(repo, root, "replacement")
            tip = await state.check_branch("main", first.id)
            await state.add_snapshot(
                NewSnapshot(SnapshotKind.AMEND, replacement, "main", first.id), tip
            )
            assert await state.branch_tip("main") == replacement.id
            walked = [e.id async for e in HistoryWalk(await state.history(), replacement.id)]
            assert walked == [replacement.id, root]

        run(check())

    def test_a_detached_snapshot_moves_no_ref(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            before = await state.refs()
            root = await state.branch_tip("main")
            detached = await child(repo, root, "detached")
            await state.add_snapshot(NewSnapshot(SnapshotKind.DETACHED, detached))
            assert await state.refs() == before
            assert await state.branch_tip("main") == root
            entry = await (await state.history()).entry(detached.id)
            assert (entry.parent_id, entry.message) == (root, "detached")

        run(check())

    def test_history_entries_follow_parents(self, repo: Repo) -> None:
        async def check() -> None:
            state = repo.state
            root = await state.branch_tip("main")
            made = [await commit(repo, "main", f"m{i}") for i in range(3)]
            history = await state.history()
            entries = [e async for e in HistoryWalk(history, made[-1].id)]
            assert [e.id for e in entries] == [*(s.id for s in reversed(made)), root]
            assert [e.message for e in entries[:3]] == ["m2", "m1", "m0"]
            assert entries[0].metadata == {"n": "m2"}
            assert entries[0].flushed_at == made[-1].flushed_at
            assert (await history.snapshot(made[0].id)).id == made[0].id
            with pytest.raises(ObjectNotFoundError):
                await history.entry(new_snapshot_id())

        run(check())
