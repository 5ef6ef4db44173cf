"""The repository state of spec-2 repositories: the ``repo`` object (FORMAT-V2 §5, §10, §11).

Branches, tags, deleted tags, the list of every snapshot with its parent, the config and the
ops log all live in ``repo``; every change is one update of it through
:class:`~pyicechunk.repo_state.repo_object.RepoObject` (read, check, back up, compare-and-swap,
retry), recording the ops-log entry the reference records for it. Reads take ``repo`` as it is
at the time of the call; history is the snapshot list of one such read, so a walk of any length
costs one request.

The rules are icechunk 2.3.0's: any string is a ref name (``/`` included); a ref's target must
be listed in the snapshot list (its file is not read); ``main`` is never deleted; a deleted
tag's name is never reused; the ``create_tag`` and ``delete_tag`` feature flags are honoured;
nothing changes while the status is read-only.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyicechunk._time import now_micros
from pyicechunk.exceptions import ConflictError, IcechunkError, ObjectNotFoundError
from pyicechunk.format.config_flex import config_from_flexbuffer, config_to_flexbuffer
from pyicechunk.format.header import SPEC_V2
from pyicechunk.format.ids import encode_id
from pyicechunk.format.repo_info import (
    BranchCreated,
    BranchDeleted,
    BranchReset,
    CommitAmended,
    ConfigChanged,
    FeatureFlag,
    NewCommit,
    NewDetachedSnapshot,
    RepoStatusChanged,
    SnapshotInfo,
    TagCreated,
    TagDeleted,
    add_snapshot,
    initial_repo_info,
    set_branch,
)
from pyicechunk.format.repo_info import create_tag as listed_with_tag
from pyicechunk.format.repo_info import delete_branch as without_branch
from pyicechunk.format.repo_info import delete_tag as without_tag
from pyicechunk.format.snapshot import Snapshot, encode_metadata_value, initial_snapshot
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.history import HistoryEntry, HistorySource
from pyicechunk.repo_state import (
    BranchTip,
    ConfigVersion,
    OpenedState,
    RefListing,
    RepoState,
    SnapshotKind,
    ref_not_found,
)
from pyicechunk.repo_state.repo_object import (
    RepoObject,
    RepoRead,
    check_updatable,
    read_only_error,
)
from pyicechunk.storage import StorageBackend, keys

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.format.repo_info import RepoInfo, RepoStatus, Update, UpdateAction
    from pyicechunk.repo_state import NewSnapshot
    from pyicechunk.repo_state.repo_object import Edit

__all__ = ["Spec2State"]


def _listed(info: RepoInfo, snapshot_id: bytes) -> SnapshotInfo:
    """The snapshot's entry; a ref may only point at a listed snapshot."""
    found = info.snapshots.get(snapshot_id)
    if found is None:
        raise IcechunkError(
            f"snapshot id not found `{encode_id(snapshot_id)}`", kind="snapshot-not-found"
        )
    return found


def _check_flag(info: RepoInfo, flag: FeatureFlag, what: str) -> None:
    if not info.feature_flag(flag):
        raise IcechunkError(
            f"{what} is disabled by a feature flag ({flag.name.lower()})",
            kind="feature-flag-disabled",
        )


def _some(snapshot_id: bytes | None) -> str:
    return "None" if snapshot_id is None else f"Some({encode_id(snapshot_id)})"


def snapshot_info(snapshot: Snapshot, parent_id: bytes | None) -> SnapshotInfo:
    """The snapshot-list entry of a written snapshot, its metadata as its file stores it."""
    metadata = tuple(
        (name, encode_metadata_value(snapshot.metadata[name], name, SPEC_V2))
        for name in sorted(snapshot.metadata)
    )
    return SnapshotInfo(snapshot.id, parent_id, snapshot.flushed_at, snapshot.message, metadata)


class _Spec2History(HistorySource):
    """Parents, times, messages and metadata from the snapshot list of one read of ``repo``."""

    def __init__(self, assets: AssetManager, info: RepoInfo) -> None:
        super().__init__(assets)
        self._info = info
        self.listing = info.snapshots

    async def entry(self, snapshot_id: bytes) -> HistoryEntry:
        return self.known_entry(snapshot_id)

    def known_entry(self, snapshot_id: bytes) -> HistoryEntry:
        found = self._info.snapshots.get(snapshot_id)
        if found is None:
            raise ObjectNotFoundError(
                keys.REPO, f"snapshot id not found `{encode_id(snapshot_id)}`"
            )
        return HistoryEntry(
            found.id,
            found.parent_id,
            found.flushed_at,
            found.message,
            found.metadata_values() if found.metadata else {},
            None,
            found.pruned_ancestor_tx_logs,
        )


class Spec2State(RepoState):
    """Refs, snapshot list, config and ops log in the ``repo`` object.

    Parameters
    ----------
    backend, assets
        The repository's storage and its asset manager.
    config
        The repository config: its ops-log window, update retries and compression level.
    conditional_update
        Whether ``repo`` is replaced by compare-and-swap (``unsafe_use_conditional_update``).
    found
        What opening the repository read, to start from.
    """

    spec_version = SPEC_V2

    def __init__(
        self,
        backend: StorageBackend,
        assets: AssetManager,
        config: RepositoryConfig,
        *,
        conditional_update: bool = True,
        found: RepoRead | None = None,
    ) -> None:
        self._assets = assets
        self._repo = RepoObject.configured(
            backend,
            config,
            conditional_update=conditional_update,
            compression_level=assets.compression_level,
            found=found,
        )

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def opened(cls, found: RepoRead) -> OpenedState:
        """What opening finds in a ``repo`` just read: its config and the read itself.

        Raises
        ------
        IcechunkError
            If the stored config is not one this version can read.
        """
        stored = found.info.config
        config = None if stored is None else config_from_flexbuffer(stored, keys.REPO)
        return OpenedState(cls.spec_version, config, ConfigVersion(config is not None), found)

    # -- refs ---------------------------------------------------------------------------------

    def validate_ref_name(self, name: str) -> None:
        """Refuse an empty name; spec 2 stores names in ``repo``, so anything else goes.

        Branch names may contain ``/`` here, unlike in spec 1. The empty name is refused (the
        reference accepts it), as in spec 1: a nameless ref is a mistake.
        """
        if not isinstance(name, str):
            raise TypeError(f"ref names must be str, not {type(name).__name__}")
        if not name:
            raise IcechunkError(
                "invalid ref name ``: branch and tag names cannot be empty", kind="invalid-ref-name"
            )

    async def branch_tip(self, name: str) -> bytes:
        tip = (await self._repo.read()).info.branches.get(name)
        if tip is None:
            raise ref_not_found(name)
        return tip

    async def tag_target(self, name: str) -> bytes:
        target = (await self._repo.read()).info.tags.get(name)
        if target is None:
            raise ref_not_found(name)
        return target

    async def refs(self) -> RefListing:
        info = (await self._repo.read()).info
        return RefListing(frozenset(info.branches), frozenset(info.tags), info.deleted_tags)

    async def create_branch(self, name: str, snapshot_id: bytes) -> None:
        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            _listed(info, snapshot_id)
            existing = info.branches.get(name)
            if existing is not None:
                raise IcechunkError(
                    f"branch already exists `{name} -> {encode_id(existing)}`",
                    kind="branch-already-exists",
                )
            return set_branch(info, name, snapshot_id), BranchCreated(name)

        await self._repo.update(edit)

    async def reset_branch(self, name: str, snapshot_id: bytes, expected: bytes | None) -> None:
        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            tip = info.branches.get(name)
            if tip is None:
                raise ref_not_found(name)
            if expected is not None and tip != expected:
                raise IcechunkError(
                    f"branch update conflict: `({_some(expected)}) != ({_some(tip)})`",
                    kind="branch-update-conflict",
                )
            _listed(info, snapshot_id)
            return set_branch(info, name, snapshot_id), BranchReset(name, tip)

        await self._repo.update(edit)

    async def delete_branch(self, name: str) -> None:
        if name == "main":
            raise IcechunkError("main branch cannot be deleted", kind="cannot-delete-main")

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            tip = info.branches.get(name)
            if tip is None:
                raise ref_not_found(name)
            return without_branch(info, name), BranchDeleted(name, tip)

        await self._repo.update(edit)

    async def create_tag(self, name: str, snapshot_id: bytes) -> None:
        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            _listed(info, snapshot_id)
            _check_flag(info, FeatureFlag.CREATE_TAG, "tag creation")
            if name in info.tags:
                raise IcechunkError(
                    f"tag already exists, tags are immutable: `{name}`", kind="tag-already-exists"
                )
            if name in info.deleted_tags:
                raise IcechunkError(
                    f"icechunk does not allow tag reuse and tag was already deleted `{name}`",
                    kind="tag-previously-deleted",
                )
            return listed_with_tag(info, name, snapshot_id), TagCreated(name)

        await self._repo.update(edit)

    async def delete_tag(self, name: str) -> None:
        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            _check_flag(info, FeatureFlag.DELETE_TAG, "tag delete")
            target = info.tags.get(name)
            if target is None:
                raise ref_not_found(name)
            return without_tag(info, name), TagDeleted(name, target)

        await self._repo.update(edit)

    # -- new snapshots ------------------------------------------------------------------------

    async def check_writable(self, operation: str) -> None:
        status = (await self._repo.read()).info.status
        if not status.is_online:
            raise read_only_error(status, operation)

    async def writable_tip(self, branch: str, operation: str) -> bytes:
        info = (await self._repo.read()).info
        if not info.status.is_online:
            raise read_only_error(info.status, operation)
        tip = info.branches.get(branch)
        if tip is None:
            raise ref_not_found(branch)
        return tip

    async def check_branch(self, branch: str, expected: bytes) -> BranchTip:
        found = await self._repo.read()
        check_updatable(found.info)
        tip = found.info.branches.get(branch)
        if tip != expected:
            raise ConflictError(encode_id(expected), None if tip is None else encode_id(tip))
        return BranchTip(tip, found)

    async def add_snapshot(self, new: NewSnapshot, tip: BranchTip | None = None) -> None:
        snapshot = new.snapshot
        kind = new.kind

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            if kind is SnapshotKind.DETACHED:
                parent = snapshot.parent_id
                listed = add_snapshot(info, snapshot_info(snapshot, parent))
                return listed, NewDetachedSnapshot(snapshot.id)
            assert new.branch is not None and new.expected is not None
            actual = info.branches.get(new.branch)
            if actual != new.expected:
                raise ConflictError(
                    encode_id(new.expected), None if actual is None else encode_id(actual)
                )
            action: UpdateAction
            if kind is SnapshotKind.COMMIT:
                entry = snapshot_info(snapshot, new.expected)
                action = NewCommit(new.branch, snapshot.id)
            else:
                # The replacement takes the replaced tip's place: its parent and the logs
                # expiration collapsed into that step.
                replaced = _listed(info, new.expected)
                if replaced.parent_id is None:
                    raise IcechunkError(
                        "session error: the first commit in the repository cannot be an "
                        "amend, create a new commit instead",
                        kind="no-amend-for-initial-commit",
                    )
                entry = dataclasses.replace(
                    snapshot_info(snapshot, replaced.parent_id),
                    pruned_ancestor_tx_logs=replaced.pruned_ancestor_tx_logs,
                )
                action = CommitAmended(new.branch, new.expected, snapshot.id)
            return set_branch(add_snapshot(info, entry), new.branch, snapshot.id), action

        start = tip.token if tip is not None and isinstance(tip.token, RepoRead) else None
        written = new.written
        try:
            await self._repo.update(edit, start=start, durable=new.durable, ready=written)
        finally:
            if written is not None:
                # Never left running: a refused update returns after the writes did.
                await asyncio.wait([written])

    # -- config -------------------------------------------------------------------------------

    async def save_config(self, config: RepositoryConfig, previous: ConfigVersion) -> ConfigVersion:
        # As in the reference, the config is part of the update: the last save wins.
        stored = config_to_flexbuffer(config)

        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            return dataclasses.replace(info, config=stored), ConfigChanged()

        await self._repo.update(edit)
        return ConfigVersion(True)

    # -- history ------------------------------------------------------------------------------

    async def history(self) -> HistorySource:
        return _Spec2History(self._assets, (await self._repo.read()).info)

    async def ref_history(self, branch: str | None, tag: str | None) -> tuple[bytes, HistorySource]:
        return self._ref_history((await self._repo.read()).info, branch, tag)

    def ref_history_now(
        self, branch: str | None, tag: str | None
    ) -> tuple[bytes, HistorySource] | None:
        found = self._repo.read_now()
        return None if found is None else self._ref_history(found.info, branch, tag)

    def _ref_history(
        self, info: RepoInfo, branch: str | None, tag: str | None
    ) -> tuple[bytes, HistorySource]:
        name = branch if branch is not None else tag
        if name is None:
            raise ValueError("ref_history needs a branch or a tag")
        start = (info.branches if branch is not None else info.tags).get(name)
        if start is None:
            raise ref_not_found(name)
        return start, _Spec2History(self._assets, info)

    # -- what only spec 2 has -----------------------------------------------------------------

    async def ops_log_file(self, name: str | None) -> tuple[Sequence[Update], str | None]:
        return await self._repo.ops_log_file(name)

    async def set_status(self, status: RepoStatus) -> None:
        def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            return dataclasses.replace(info, status=status), RepoStatusChanged(status)

        await self._repo.update(edit, online_required=False)

    # -- the repo object ----------------------------------------------------------------------

    async def repo_info(self) -> RepoInfo:
        return (await self._repo.read()).info

    async def update_repo_info(self, edit: Edit) -> RepoInfo:
        return await self._repo.update(edit)

    # -- lifecycle ----------------------------------------------------------------------------

    async def initialize(self, config: RepositoryConfig | None) -> ConfigVersion:
        """Write the initial snapshot and its (empty) transaction log, then ``repo``.

        ``repo`` comes last and only if absent, so it never points at a missing object and two
        creators cannot both win.
        """
        init = initial_snapshot(now_micros(), SPEC_V2)
        stored = None if config is None else config_to_flexbuffer(config)
        await asyncio.gather(
            self._assets.write_snapshot(init),
            self._assets.write_transaction_log(TransactionLog(init.id)),
        )
        info = initial_repo_info(snapshot_info(init, None), now_micros(), stored)
        durable = [keys.snapshot_key(init.id), keys.transaction_key(init.id)]
        await self._repo.create(info, durable=durable)
        return ConfigVersion(config is not None)
