"""The history methods of :class:`~pyicechunk.Repository`.

Ancestry, snapshot lookup and diff read history through the repository state
(:meth:`~pyicechunk.repo_state.RepoState.history`): snapshot files in spec 1, the ``repo``
object's snapshot list in spec 2. Also the argument rules every ref-taking method shares. The
``inspect_*`` methods are in :mod:`~pyicechunk.repository.object_inspection`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pyicechunk._sync import blocking_twin, sync, sync_here
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import decode_id, encode_id
from pyicechunk.format.repo_info import SnapshotInfo as ListedSnapshot
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.graph import AncestryGraph, ancestry_graph_async
from pyicechunk.history import HistoryEntry, HistorySource, HistoryWalk, diff_between
from pyicechunk.repo_state import RepoState
from pyicechunk.session.context import RepoContext
from pyicechunk.types import Diff, ManifestFileInfo, SnapshotInfo

__all__ = ["Inspection", "check_one_ref", "parse_snapshot_id"]

_ONE_OF = "Must provide one of branch, tag, or snapshot_id"


def check_one_ref(branch: str | None, tag: str | None, snapshot_id: str | None) -> None:
    """The rule of every method that takes a ref: exactly one of branch, tag, snapshot id."""
    if sum(x is not None for x in (branch, tag, snapshot_id)) != 1:
        raise ValueError(_ONE_OF)


def parse_snapshot_id(text: str) -> bytes:
    """Decode a user-supplied snapshot id, with the reference's error text."""
    if not isinstance(text, str):
        raise TypeError(f"snapshot ids are str, not {type(text).__name__}")
    try:
        return decode_id(text, 12)
    except ValueError:
        raise IcechunkError(
            f"invalid snapshot id: `{text}` (expected 20 Crockford base32 characters)",
            kind="invalid-snapshot-id",
        ) from None


def _copy_json(value: Any) -> Any:
    # Commit metadata is JSON-like; copying only containers is much cheaper than deepcopy.
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _manifest_infos(snapshot: Snapshot) -> list[ManifestFileInfo]:
    return [
        ManifestFileInfo(encode_id(m.id), m.size_bytes, m.num_chunk_refs)
        for m in snapshot.manifest_files
    ]


class _Snapshots:
    """Where the :class:`SnapshotInfo` values of a history walk find their metadata and
    manifests (one per walk: a walk builds thousands of infos and most are never looked into).
    """

    __slots__ = ("history", "snapshot")

    def __init__(self, history: HistorySource, snapshot: Snapshot | None = None) -> None:
        self.history = history
        self.snapshot = snapshot

    def stored_metadata(self, stored: HistoryEntry) -> dict[str, Any]:
        return _copy_json(stored.metadata)  # type: ignore[no-any-return]

    def stored_manifests(self, stored: HistoryEntry) -> list[ManifestFileInfo]:
        snapshot = self.snapshot or stored.snapshot
        if snapshot is None:
            # Spec 2: history comes from `repo`; the snapshot is read only if its manifests
            # are asked for (icechunk 2 does not report them at all).
            snapshot = sync(self.history.snapshot_of(stored))
        return _manifest_infos(snapshot)


# Entries a walk over a listing takes at a time (see _Ancestry._listed).
_LISTED_BATCH = 256


class _Listed:
    """Where the :class:`SnapshotInfo` values of a walk over a listing (spec 2's snapshot
    list, :attr:`HistorySource.listing`) find their metadata and manifests."""

    __slots__ = ("_decoded", "history")

    def __init__(self, history: HistorySource) -> None:
        self.history = history
        self._decoded: dict[bytes, dict[str, Any]] = {}

    def decode(self, listed: list[ListedSnapshot]) -> None:
        """Decode the metadata of the entries a walk takes, as the walk takes them: damaged
        metadata fails the walk, as in the reference, even if no one looks at it."""
        decoded = self._decoded
        for stored in [entry for entry in listed if entry.metadata]:
            decoded[stored.id] = stored.metadata_values()

    def stored_metadata(self, stored: ListedSnapshot) -> dict[str, Any]:
        # Each info asks once, and keeps what it is given: the decoded dict is handed over.
        found = self._decoded.pop(stored.id, None)
        if found is None:
            found = stored.metadata_values() if stored.metadata else {}
        return found

    def stored_manifests(self, stored: ListedSnapshot) -> list[ManifestFileInfo]:
        # Read only if asked for (icechunk 2 does not report them at all).
        return _manifest_infos(sync(self.history.snapshot(stored.id)))


class _Ancestry:
    """Snapshots from a starting point back to the root; a sync and an async iterator."""

    def __init__(
        self, repo: Inspection, branch: str | None, tag: str | None, snapshot_id: str | None
    ) -> None:
        self._repo = repo
        self._start = (branch, tag, snapshot_id)
        self._walk: HistoryWalk | None = None
        self._history: HistorySource | None = None
        self._snapshots: _Snapshots | _Listed | None = None
        self._buffer: list[SnapshotInfo] = []

    async def _advance(self, batch: int) -> list[SnapshotInfo]:
        if self._walk is None:
            branch, tag, snapshot_id = self._start
            if snapshot_id is None:
                check_one_ref(branch, tag, snapshot_id)
                start, self._history = await self._repo._state.ref_history(branch, tag)
            else:
                start = await self._repo._resolve(branch, tag, snapshot_id)
                self._history = await self._repo._state.history()
            self._walk = HistoryWalk(self._history, start)
        assert self._history is not None
        if self._history.listing is not None:
            return self._listed(batch)
        return self._infos(await self._walk.take(batch))

    def _advance_now(self, batch: int) -> list[SnapshotInfo]:
        """What :meth:`_advance` finds without an event loop; fewer (none) where it must read."""
        if self._walk is None:
            branch, tag, snapshot_id = self._start
            if snapshot_id is not None:
                return []
            check_one_ref(branch, tag, snapshot_id)
            found = self._repo._state.ref_history_now(branch, tag)
            if found is None:
                return []
            start, self._history = found
            self._walk = HistoryWalk(self._history, start)
        assert self._history is not None
        if self._history.listing is not None:
            return self._listed(batch)
        return self._infos(self._walk.take_known(batch))

    def _listed(self, batch: int) -> list[SnapshotInfo]:
        """The next entries of a listing, for a walk over one (no entry made in between).

        The listing is in memory, so batches are larger than a walk that reads: a few
        hundred infos cost less than a millisecond to make.
        """
        assert self._walk is not None and self._history is not None
        batch = max(batch, _LISTED_BATCH)
        if self._snapshots is None:
            self._snapshots = _Listed(self._history)
        assert isinstance(self._snapshots, _Listed)
        entries: Any = self._walk.take_listed(batch)
        self._snapshots.decode(entries)
        entries.reverse()  # newest last, as in _infos
        return SnapshotInfo.from_stored(entries, self._snapshots)

    def _infos(self, entries: list[HistoryEntry]) -> list[SnapshotInfo]:
        if self._snapshots is None:
            assert self._history is not None
            self._snapshots = _Snapshots(self._history)
        # Newest last, so that handing them out one by one pops from the end.
        entries.reverse()
        return SnapshotInfo.from_stored(entries, self._snapshots)

    def __iter__(self) -> Iterator[SnapshotInfo]:
        return self

    def __next__(self) -> SnapshotInfo:
        if not self._buffer:
            # A short batch ended at the root: no further look at the history.
            if self._walk is not None and self._walk.done:
                raise StopIteration
            # Without an event loop while the storage reads on this thread and the entries
            # are at hand (a walk right after commits made here needs no loop at all).
            self._buffer = self._advance_now(64)
            if not self._buffer:
                if self._walk is not None and self._walk.done:
                    raise StopIteration
                self._buffer = sync_here(self._advance(64))
            if not self._buffer:
                raise StopIteration
        return self._buffer.pop()

    def __aiter__(self) -> AsyncIterator[SnapshotInfo]:
        return self

    async def __anext__(self) -> SnapshotInfo:
        if not self._buffer:
            self._buffer = await self._advance(16)
            if not self._buffer:
                raise StopAsyncIteration
        return self._buffer.pop()


class Inspection:
    """The history methods of :class:`~pyicechunk.Repository` (see the module docstring)."""

    _ctx: RepoContext

    @property
    def _state(self) -> RepoState:
        return self._ctx.state

    # -- snapshots ----------------------------------------------------------------------------

    async def _fetch_snapshot(self, snapshot_id: bytes) -> Snapshot:
        try:
            return await self._ctx.assets.fetch_snapshot(snapshot_id)
        except ObjectNotFoundError:
            raise IcechunkError(
                f"snapshot not found: `{encode_id(snapshot_id)}`", kind="snapshot-not-found"
            ) from None

    async def _entry(self, history: HistorySource, snapshot_id: bytes) -> HistoryEntry:
        """The history's entry of a snapshot a user named."""
        try:
            return await history.entry(snapshot_id)
        except ObjectNotFoundError as missing:
            raise IcechunkError(missing.message, kind="snapshot-not-found") from None

    async def _resolve(self, branch: str | None, tag: str | None, snapshot_id: str | None) -> bytes:
        check_one_ref(branch, tag, snapshot_id)
        if branch is not None:
            return await self._state.branch_tip(branch)
        if tag is not None:
            return await self._state.tag_target(tag)
        assert snapshot_id is not None
        sid = parse_snapshot_id(snapshot_id)
        history = await self._state.history()
        try:
            await history.entry(sid)
        except ObjectNotFoundError:
            # icechunk 2.x reports a storage miss on spec 1, where no snapshot list exists.
            # On spec 2 the id is missing from the snapshot list, in that list's words.
            if self._state.spec_version >= 2:
                raise IcechunkError(
                    f"snapshot id not found `{encode_id(sid)}`", kind="snapshot-not-found"
                ) from None
            raise IcechunkError(
                f"snapshot not found: `{encode_id(sid)}`", kind="object-not-found"
            ) from None
        return sid

    # -- history ------------------------------------------------------------------------------

    def ancestry(
        self, *, branch: str | None = None, tag: str | None = None, snapshot_id: str | None = None
    ) -> _Ancestry:
        """Snapshots from the given one back to the repository's first, newest first.

        The result is both an iterator and an async iterator.
        """
        check_one_ref(branch, tag, snapshot_id)
        return _Ancestry(self, branch, tag, snapshot_id)

    def async_ancestry(
        self, *, branch: str | None = None, tag: str | None = None, snapshot_id: str | None = None
    ) -> _Ancestry:
        """Same as :meth:`ancestry`, for ``async for``."""
        return self.ancestry(branch=branch, tag=tag, snapshot_id=snapshot_id)

    async def ancestry_graph_async(
        self,
        *,
        branch: str | None = None,
        tag: str | None = None,
        snapshot_id: str | None = None,
        plain: bool = False,
    ) -> AncestryGraph:
        """Async version of :meth:`ancestry_graph`."""
        return await ancestry_graph_async(
            self, branch=branch, tag=tag, snapshot_id=snapshot_id, plain=plain
        )

    ancestry_graph = blocking_twin(
        ancestry_graph_async,
        """The history drawn as icechunk 2.x draws it: every branch and tag, or one ref's.

        ``str()`` of the result is the text drawing (ANSI-coloured unless ``plain``); in
        Jupyter it shows as SVG.

        Raises
        ------
        ValueError
            More than one of ``branch``, ``tag`` and ``snapshot_id`` was given.
        """,
    )

    def lookup_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """Information about one snapshot."""
        return sync(self.lookup_snapshot_async(snapshot_id))

    async def lookup_snapshot_async(self, snapshot_id: str) -> SnapshotInfo:
        """Async version of :meth:`lookup_snapshot`."""
        sid = parse_snapshot_id(snapshot_id)
        history = await self._state.history()
        entry = await self._entry(history, sid)
        snapshot = await history.snapshot_of(entry)
        return SnapshotInfo.from_stored([entry], _Snapshots(history, snapshot))[0]

    async def diff_async(
        self,
        *,
        from_branch: str | None = None,
        from_tag: str | None = None,
        from_snapshot_id: str | None = None,
        to_branch: str | None = None,
        to_tag: str | None = None,
        to_snapshot_id: str | None = None,
    ) -> Diff:
        """Async version of :meth:`diff`."""
        check_one_ref(from_branch, from_tag, from_snapshot_id)
        check_one_ref(to_branch, to_tag, to_snapshot_id)
        from_id, to_id = await asyncio.gather(
            self._resolve(from_branch, from_tag, from_snapshot_id),
            self._resolve(to_branch, to_tag, to_snapshot_id),
        )
        return await diff_between(await self._state.history(), from_id, to_id)

    diff = blocking_twin(
        diff_async,
        """The changes after ``from`` up to and including ``to`` (``from`` must be an ancestor).""",
    )
