"""The repository state of spec-1 repositories: ``refs/`` and ``config.yaml`` (FORMAT-V1 §2, §7).

Each branch is a ``ref.json`` moved by conditional update, each tag a ``ref.json`` created once,
and a deleted tag keeps an empty tombstone ``ref.json.deleted`` beside it, so its name can never
be reused. The config is ``config.yaml``, replaced by compare-and-swap against the version this
handle last saw. A snapshot's parent is recorded in the snapshot file itself.

The conditional writes are the storage's (:meth:`StorageBackend.put_if_absent`,
:meth:`StorageBackend.put_if_version`), which also recover a write whose response was lost; with
``unsafe_use_conditional_create`` / ``_update`` off, the same steps write unconditionally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyicechunk._time import now_micros
from pyicechunk.exceptions import ConflictError, IcechunkError, ObjectNotFoundError
from pyicechunk.format.config_yaml import config_from_yaml, config_to_yaml
from pyicechunk.format.ids import encode_id
from pyicechunk.format.refs import decode_ref, encode_ref
from pyicechunk.format.snapshot import initial_snapshot
from pyicechunk.history import HistoryEntry, HistorySource
from pyicechunk.repo_state import (
    BranchTip,
    ConfigVersion,
    NewSnapshot,
    OpenedState,
    RefListing,
    RepoState,
    SnapshotKind,
    ref_not_found,
)
from pyicechunk.storage import ObjectVersion, StorageBackend, keys

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.format.snapshot import Snapshot

__all__ = ["Spec1State"]


class _BranchMoved(Exception):
    """A branch was not where an update expected it; each caller words its own error."""

    def __init__(self, expected: bytes | None, actual: bytes | None) -> None:
        super().__init__(expected, actual)
        self.expected = expected
        self.actual = actual

    def describe(self) -> str:
        def some(v: bytes | None) -> str:
            return "None" if v is None else f"Some({encode_id(v)})"

        return f"branch update conflict: `({some(self.expected)}) != ({some(self.actual)})`"


def _invalid_name(name: str, why: str) -> IcechunkError:
    return IcechunkError(f"invalid ref name `{name}`: {why}", kind="invalid-ref-name")


class _Spec1History(HistorySource):
    """Parents, times and messages from the snapshot files themselves."""

    async def entry(self, snapshot_id: bytes) -> HistoryEntry:
        # A missing snapshot keeps the storage's message, naming its key, as icechunk 1.1 does.
        return _entry_of(await self.assets.fetch_snapshot(snapshot_id))

    def known_entry(self, snapshot_id: bytes) -> HistoryEntry | None:
        snapshot = self.assets.cached_snapshot(snapshot_id)
        return None if snapshot is None else _entry_of(snapshot)


def _entry_of(snapshot: Snapshot) -> HistoryEntry:
    return HistoryEntry(
        snapshot.id,
        snapshot.parent_id,
        snapshot.flushed_at,
        snapshot.message,
        snapshot.metadata,
        snapshot,
    )


class Spec1State(RepoState):
    """Refs as ``ref.json`` files, config as ``config.yaml``, parents inside snapshots.

    Parameters
    ----------
    backend
        Where the repository lives.
    assets
        Its asset manager.
    conditional_create, conditional_update
        Whether creating and replacing refs is conditional (the ``unsafe_use_conditional_*``
        switches; off, the same steps write blindly).
    """

    spec_version = 1

    def __init__(
        self,
        backend: StorageBackend,
        assets: AssetManager,
        *,
        conditional_create: bool,
        conditional_update: bool,
    ) -> None:
        self._backend = backend
        self._assets = assets
        self._conditional_create = conditional_create
        self._conditional_update = conditional_update

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    async def exists(cls, backend: StorageBackend) -> bool:
        """Whether the location holds a spec-1 repository (its ``main`` branch)."""
        return await backend.exists(keys.SPEC1_MAIN_BRANCH)

    @classmethod
    async def read_config(cls, backend: StorageBackend) -> OpenedState:
        """``config.yaml``, if there is one, and its version."""
        try:
            data, version = await backend.get_versioned(keys.CONFIG)
        except ObjectNotFoundError:
            return OpenedState(cls.spec_version, None, ConfigVersion())
        config = config_from_yaml(data, keys.CONFIG)
        return OpenedState(cls.spec_version, config, ConfigVersion(True, version))

    # -- refs ---------------------------------------------------------------------------------

    def validate_ref_name(self, name: str) -> None:
        """Refuse a name for a new branch or tag that could not be stored and read back safely.

        On top of what every ref key refuses (a separator or a NUL: see
        :func:`pyicechunk.storage.keys.branch_key`), a new ref may not be empty (the reference
        accepts ``""``; a nameless ref is a mistake, and would be the directory
        ``refs/branch.``), ``.`` or ``..``, hold control characters, or hold ``%``: icechunk's
        local filesystem storage percent-encodes file names and lists them back encoded (its
        branch ``%2F`` comes back as ``%252F``), so such a name would not survive a round trip.
        """
        keys.branch_key(name)
        if not name:
            raise _invalid_name(name, "branch and tag names cannot be empty")
        if name in (".", ".."):
            raise _invalid_name(name, "branch and tag names cannot be '.' or '..'")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
            raise _invalid_name(name, "branch and tag names cannot contain control characters")
        if "%" in name:
            raise _invalid_name(
                name,
                "branch and tag names cannot contain '%' (icechunk's filesystem storage "
                "percent-encodes names, so such a name would not read back the same)",
            )

    async def _read_branch(self, name: str) -> BranchTip:
        key = keys.branch_key(name)
        try:
            data, version = await self._backend.get_versioned(key)
        except ObjectNotFoundError:
            return BranchTip(None)
        return BranchTip(decode_ref(data, key), version)

    async def branch_tip(self, name: str) -> bytes:
        tip = (await self._read_branch(name)).snapshot_id
        if tip is None:
            raise ref_not_found(name)
        return tip

    async def tag_target(self, name: str) -> bytes:
        key = keys.tag_key(name)
        try:
            data = await self._backend.get(key)
        except ObjectNotFoundError:
            raise ref_not_found(name) from None
        if await self._backend.exists(keys.tag_tombstone_key(name)):
            raise ref_not_found(name)
        return decode_ref(data, key)

    async def refs(self) -> RefListing:
        found: dict[str, set[str]] = {"branch": set(), "tag": set(), "tombstone": set()}
        for info in await self._backend.list(keys.REFS):
            ref = keys.parse_ref_key(info.key)
            if ref is not None:
                found[ref[0]].add(ref[1])
        deleted = frozenset(found["tombstone"])
        return RefListing(frozenset(found["branch"]), frozenset(found["tag"] - deleted), deleted)

    async def _update_branch(
        self,
        name: str,
        new_id: bytes,
        expected: bytes | None,
        *,
        conditional: bool,
        known: BranchTip | None = None,
        durable: Sequence[str] = (),
    ) -> None:
        """Point ``name`` at ``new_id`` if it currently points at ``expected`` (None: absent).

        ``conditional`` false writes without a precondition once the check passed (the
        ``unsafe_use_conditional_*`` switch of the step). ``known`` is the branch as the caller
        just read it, saving one read; a stale value only costs a retry, because the write
        itself is conditional. ``durable`` names objects the new ref reaches: they are on disk
        before the ref moves.

        Raises
        ------
        _BranchMoved
            The branch points somewhere else (or exists when it should not).
        """
        backend = self._backend
        key = keys.branch_key(name)
        payload = encode_ref(new_id)
        while True:
            # The caller read the ref moments ago: start from that instead of reading again.
            tip = known if known is not None else await self._read_branch(name)
            known = None
            if tip.snapshot_id != expected:
                raise _BranchMoved(expected, tip.snapshot_id)
            if not conditional:
                await backend.make_durable(durable)
                await backend.put(key, payload)
                return
            if expected is None:
                if await backend.put_if_absent(key, payload, durable=durable):
                    return
            else:
                assert isinstance(tip.token, ObjectVersion)
                if await backend.put_if_version(key, payload, tip.token, durable=durable):
                    return
            # Someone else wrote in between: read again; the comparison above reports it.

    async def _check_snapshot(self, snapshot_id: bytes) -> None:
        """Refuse a target snapshot whose file does not exist."""
        try:
            await self._assets.fetch_snapshot(snapshot_id)
        except ObjectNotFoundError:
            # icechunk 2.x reports the storage miss here (spec 1 has no snapshot list).
            raise IcechunkError(
                f"snapshot not found: `{encode_id(snapshot_id)}`", kind="object-not-found"
            ) from None

    async def create_branch(self, name: str, snapshot_id: bytes) -> None:
        await self._check_snapshot(snapshot_id)
        try:
            await self._update_branch(name, snapshot_id, None, conditional=self._conditional_create)
        except _BranchMoved as moved:
            raise IcechunkError(moved.describe(), kind="branch-update-conflict") from None

    async def reset_branch(self, name: str, snapshot_id: bytes, expected: bytes | None) -> None:
        await self._check_snapshot(snapshot_id)
        current = await self.branch_tip(name)
        try:
            await self._update_branch(
                name,
                snapshot_id,
                current if expected is None else expected,
                conditional=self._conditional_update,
            )
        except _BranchMoved as moved:
            raise IcechunkError(moved.describe(), kind="branch-update-conflict") from None

    async def delete_branch(self, name: str) -> None:
        if name == "main":
            raise IcechunkError("main branch cannot be deleted", kind="cannot-delete-main")
        key = keys.branch_key(name)
        if not await self._backend.exists(key):
            raise ref_not_found(name)
        await self._backend.delete(key)

    async def create_tag(self, name: str, snapshot_id: bytes) -> None:
        await self._check_snapshot(snapshot_id)
        key = keys.tag_key(name)
        payload = encode_ref(snapshot_id)
        already = f"tag already exists, tags are immutable: `{name}`"
        if self._conditional_create:
            if not await self._backend.put_if_absent(key, payload):
                raise IcechunkError(already, kind="tag-already-exists")
        else:
            if await self._backend.exists(key):
                raise IcechunkError(already, kind="tag-already-exists")
            await self._backend.put(key, payload)

    async def delete_tag(self, name: str) -> None:
        await self.tag_target(name)
        if not await self._backend.put_if_absent(keys.tag_tombstone_key(name), b""):
            raise ref_not_found(name)

    # -- new snapshots ------------------------------------------------------------------------

    async def check_branch(self, branch: str, expected: bytes) -> BranchTip:
        backend = self._backend
        tip, spec2 = await asyncio.gather(self._read_branch(branch), backend.exists(keys.REPO))
        if spec2:
            raise IcechunkError(
                f"this repository was upgraded to Icechunk format version 2 (an object named "
                f"`{keys.REPO}` exists at its root) after it was opened as version 1; open it "
                "again to commit to it",
                kind="unsupported-spec-version",
            )
        if tip.snapshot_id != expected:
            actual = None if tip.snapshot_id is None else encode_id(tip.snapshot_id)
            raise ConflictError(encode_id(expected), actual)
        return tip

    async def add_snapshot(self, new: NewSnapshot, tip: BranchTip | None = None) -> None:
        if new.written is not None:
            await new.written
        if new.kind is SnapshotKind.DETACHED:
            # No ref moves, but the caller gets an id to branch or tag from: make it durable.
            await self._backend.make_durable(new.durable)
            return
        assert new.branch is not None and new.expected is not None
        try:
            await self._update_branch(
                new.branch,
                new.snapshot.id,
                new.expected,
                conditional=self._conditional_update,
                known=tip,
                durable=new.durable,
            )
        except _BranchMoved as moved:
            actual = None if moved.actual is None else encode_id(moved.actual)
            raise ConflictError(encode_id(new.expected), actual) from None

    # -- config -------------------------------------------------------------------------------

    async def save_config(self, config: RepositoryConfig, previous: ConfigVersion) -> ConfigVersion:
        backend = self._backend
        data = config_to_yaml(config)
        if not previous.exists:
            if not await backend.put_if_absent(keys.CONFIG, data):
                raise IcechunkError(
                    f"config was updated by other session: {keys.CONFIG} appeared since this "
                    "repository was opened; reopen the repository and save again",
                    kind="config-updated",
                )
        elif previous.token is None:
            await backend.put(keys.CONFIG, data)
        elif not await backend.put_if_version(keys.CONFIG, data, previous.token):
            raise IcechunkError(
                f"config was updated by other session: {keys.CONFIG} changed since this "
                "repository was opened; reopen the repository and save again",
                kind="config-updated",
            )
        _, version = await backend.get_versioned(keys.CONFIG)
        return ConfigVersion(True, version)

    # -- history ------------------------------------------------------------------------------

    async def history(self) -> HistorySource:
        return _Spec1History(self._assets)

    def ref_history_now(
        self, branch: str | None, tag: str | None
    ) -> tuple[bytes, HistorySource] | None:
        if branch is None:
            return None  # a tag takes two reads: its ref and its tombstone
        key = keys.branch_key(branch)
        try:
            read = self._backend.get_versioned_now(key)
        except ObjectNotFoundError:
            raise ref_not_found(branch) from None
        return None if read is None else (decode_ref(read[0], key), _Spec1History(self._assets))

    async def check_writable(self, operation: str) -> None:
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    async def initialize(self, config: RepositoryConfig | None) -> ConfigVersion:
        init = initial_snapshot(now_micros())

        async def create_main() -> None:
            await self._assets.write_snapshot(init)
            # Always conditional, whatever the switch says: two creators must not both win.
            await self._update_branch("main", init.id, None, conditional=True)

        if config is None:
            await create_main()
            return ConfigVersion()
        _, version = await asyncio.gather(create_main(), self.save_config(config, ConfigVersion()))
        return version
