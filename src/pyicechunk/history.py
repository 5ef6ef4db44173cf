"""Walking history: from a snapshot through its parents back to the repository's first one.

Every reader of history (ancestry, ``as_of``, diff, rebase, amend, snapshot expiration,
reachability for garbage collection and statistics) walks parent links through
:class:`HistoryWalk`, over a :class:`HistorySource` that the repository state provides: spec 1
reads parents from the snapshot files, spec 2 from the ``repo`` object's snapshot list. The walk
remembers where it has been, so a damaged or hostile history whose parent link leads back into
itself is reported as damage instead of making the caller loop forever.

The transaction logs along a stretch of history combine into a diff (:func:`diff_between`) or,
for an amend, into one log (:func:`combine_transaction_logs`). Each step of history has its own
log, preceded in spec 2.1 by the logs of the ancestors expiration collapsed into it
(:meth:`HistorySource.step_logs`).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.types import Diff, StoredSnapshot, diff_from_changes

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.format.snapshot import Snapshot

__all__ = [
    "HistoryEntry",
    "HistorySource",
    "HistoryWalk",
    "as_of",
    "combine_transaction_logs",
    "diff_between",
    "diff_from_transaction_logs",
    "path_between",
]

Coords = tuple[int, ...]

logger = logging.getLogger(__name__)

# A loop is named by its members, up to this many (a hostile loop may be very long).
_NAMED_IN_LOOP = 8


@dataclass(slots=True)
class HistoryEntry:
    """What the history records about one snapshot (not to be changed once made).

    Not frozen: a walk makes one per step, and a frozen dataclass costs four times as much to
    build.

    Parameters
    ----------
    id
        The snapshot's id.
    parent_id
        Its parent's id; None for a root.
    flushed_at
        When it was written, in microseconds since the Unix epoch.
    message
        Its commit message.
    metadata
        Its commit metadata.
    snapshot
        The snapshot the entry was read from, where the source reads snapshots to know the
        history (spec 1); None where the history is kept apart from them (spec 2).
    pruned_tx_logs
        Spec 2.1: ids of the transaction logs of the ancestors that expiration collapsed
        between this snapshot and its parent, oldest first.
    """

    id: bytes
    parent_id: bytes | None
    flushed_at: int
    message: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)
    pruned_tx_logs: tuple[bytes, ...] = ()


class HistorySource(abc.ABC):
    """Where a walk finds history: entries by snapshot id, and the snapshots themselves.

    Parameters
    ----------
    assets
        Where the snapshots and transaction logs are read.
    """

    #: The whole history in memory, by snapshot id, where the source holds it (spec 2's
    #: snapshot list): entries with ``id``, ``parent_id``, ``flushed_at`` and ``message``,
    #: which :meth:`HistoryWalk.take_listed` hands out as they are. None elsewhere.
    listing: Mapping[bytes, Any] | None = None

    def __init__(self, assets: AssetManager) -> None:
        self.assets = assets

    @abc.abstractmethod
    async def entry(self, snapshot_id: bytes) -> HistoryEntry:
        """The entry of a snapshot.

        Raises
        ------
        ObjectNotFoundError
            If the history knows no such snapshot (its message says so in the version's
            words).
        """

    def known_entry(self, snapshot_id: bytes) -> HistoryEntry | None:
        """The entry, if the source holds it in memory; None where it must be read.

        A source that keeps the whole history in memory (spec 2's snapshot list) or finds the
        snapshot in the cache (spec 1) answers here, so a walk takes no event-loop round trip
        per step, and none at all from blocking code where the start was read without one.

        Raises
        ------
        ObjectNotFoundError
            If the source holds the whole history and it has no such snapshot.
        """
        return None

    async def snapshot(self, snapshot_id: bytes) -> Snapshot:
        """The snapshot itself (its nodes and manifests).

        Raises
        ------
        ObjectNotFoundError
            If there is no such snapshot.
        """
        return await self.assets.fetch_snapshot(snapshot_id)

    async def snapshot_of(self, entry: HistoryEntry) -> Snapshot:
        """The snapshot of an entry, without reading it again if the entry came from it."""
        if entry.snapshot is not None:
            return entry.snapshot
        return await self.snapshot(entry.id)

    async def transaction_log(self, entry: HistoryEntry) -> TransactionLog:
        """The snapshot's own transaction log.

        It is checked against the parent only when it describes exactly the step from it:
        not when expiration collapsed ancestors in between (a pruned list, or a root parent,
        which spec-1 and spec-2.0 expiration leave without a list).

        Raises
        ------
        IcechunkError
            The log is missing or does not match the snapshot.
        """
        snapshot = await self.snapshot_of(entry)
        parent = None
        if entry.parent_id is not None and not entry.pruned_tx_logs:
            parent_entry = await self.entry(entry.parent_id)
            if parent_entry.parent_id is not None:
                parent = await self.snapshot_of(parent_entry)
        return await self.assets.fetch_transaction_log(snapshot, parent)

    async def step_logs(self, entry: HistoryEntry, *, require_pruned: bool) -> list[TransactionLog]:
        """The logs that take the snapshot's parent to it, oldest first.

        Those are the logs of the ancestors expiration collapsed into this step (spec 2.1),
        then the snapshot's own.

        Parameters
        ----------
        entry
            The snapshot's entry.
        require_pruned
            Whether a missing collapsed ancestor's log is an error (rebase: conflicts
            against it could not be checked); otherwise it is skipped with a warning (diff),
            as in the reference.

        Raises
        ------
        IcechunkError
            A log is missing (see ``require_pruned``) or damaged.
        """
        found = await asyncio.gather(
            *(self.assets.fetch_transaction_log_by_id(i) for i in entry.pruned_tx_logs),
            return_exceptions=True,
        )
        logs: list[TransactionLog] = []
        for pruned_id, log in zip(entry.pruned_tx_logs, found, strict=True):
            if isinstance(log, TransactionLog):
                logs.append(log)
                continue
            if not isinstance(log, ObjectNotFoundError):
                raise log
            what = (
                f"transaction log {encode_id(pruned_id)} of an expiration-pruned ancestor of "
                f"snapshot {encode_id(entry.id)} is missing (likely deleted by the garbage "
                "collection of an older Icechunk)"
            )
            if require_pruned:
                raise IcechunkError(
                    f"cannot rebase: {what}, so conflicts against it cannot be checked; "
                    "commit the session's changes in a new session on the branch instead",
                    kind="rebase-tx-log-pruned",
                )
            logger.warning("%s; its changes are left out", what)
        logs.append(await self.transaction_log(entry))
        return logs


class HistoryWalk:
    """The entries from ``start`` back to the root, newest first, each read once.

    Use ``async for entry in HistoryWalk(source, start)``, or :meth:`next` to take the entries
    one at a time across several calls.

    Parameters
    ----------
    source
        Where the entries are read from.
    start
        The id of the newest snapshot of the walk.

    Raises
    ------
    IcechunkError
        While walking: a snapshot is missing (``start`` itself: "snapshot not found"), or a
        parent link leads back to a snapshot already visited (the history loops).
    """

    def __init__(self, source: HistorySource, start: bytes) -> None:
        self._source = source
        self._start = start
        self._next: bytes | None = start
        self._order: list[bytes] = []
        self._seen: set[bytes] = set()
        self._listed = 0  # entries take_listed handed out

    @property
    def done(self) -> bool:
        """Whether the walk has passed the root (the next step finds nothing)."""
        return self._next is None

    async def next(self) -> HistoryEntry | None:
        """The next older entry, or None after the root."""
        taken = await self.take(1)
        return taken[0] if taken else None

    async def take(self, limit: int) -> list[HistoryEntry]:
        """Up to ``limit`` next older entries (fewer only at the root), newest first."""
        entries: list[HistoryEntry] = []
        while (sid := self._take_known(entries, limit)) is not None:
            try:
                entry = await self._source.entry(sid)
            except ObjectNotFoundError:
                raise self._missing_error(sid) from None
            self._seen.add(sid)
            self._order.append(sid)
            entries.append(entry)
            self._next = entry.parent_id
        return entries

    def take_known(self, limit: int) -> list[HistoryEntry]:
        """Like :meth:`take`, without reading: it stops early at an entry the source does not
        hold in memory (:meth:`HistorySource.known_entry`), which the next :meth:`take` reads."""
        entries: list[HistoryEntry] = []
        self._take_known(entries, limit)
        return entries

    def take_listed(self, limit: int) -> list[StoredSnapshot]:
        """Like :meth:`take_known`, over the source's :attr:`HistorySource.listing`: up to
        ``limit`` next older entries of the listing itself, no :class:`HistoryEntry` made.

        The loop check is a count: a walk that took more entries than the listing holds has
        met one twice. Only then, or at a missing entry, is the walk replayed to name the
        damage. A decoded ``repo`` never loops (decoding refuses parent cycles) and updates
        only add parents that are already listed, so the check guards hand-built listings; on
        one that loops, earlier batches may repeat entries before the error.

        Raises
        ------
        IcechunkError
            As the walk does: a snapshot is not listed, or the history loops.
        """
        listing = self._source.listing
        assert listing is not None, "take_listed needs a source holding the whole history"
        get = listing.get
        entries: list[StoredSnapshot] = []
        append = entries.append
        sid = self._next
        for _ in range(limit):
            if sid is None:
                break
            found = get(sid)
            if found is None:
                raise self._listing_damage(listing)
            append(found)
            sid = found.parent_id
        self._listed += len(entries)
        if self._listed > len(listing):
            raise self._listing_damage(listing)
        self._next = sid
        return entries

    def _listing_damage(self, listing: Mapping[bytes, Any]) -> IcechunkError:
        """The error of a walk over a damaged listing, found by walking it again."""
        self._order, self._seen = [], set()
        sid: bytes | None = self._start
        while sid is not None and sid not in self._seen:
            found = listing.get(sid)
            if found is None:
                return self._missing_error(sid)
            self._seen.add(sid)
            self._order.append(sid)
            sid = found.parent_id
        assert sid is not None, "an undamaged listing was taken for a damaged one"
        return self._loop_error(sid)

    def _take_known(self, entries: list[HistoryEntry], limit: int) -> bytes | None:
        """Add the next entries the source holds to ``entries``, up to ``limit`` in all.

        Returns the id of the next snapshot if its entry must be read, else None (the limit or
        the root is reached).
        """
        source, seen, order = self._source, self._seen, self._order
        sid = self._next
        try:
            while sid is not None and len(entries) < limit:
                if sid in seen:
                    raise self._loop_error(sid)
                try:
                    entry = source.known_entry(sid)
                except ObjectNotFoundError:
                    raise self._missing_error(sid) from None
                if entry is None:
                    return sid
                seen.add(sid)
                order.append(sid)
                entries.append(entry)
                sid = entry.parent_id
            return None
        finally:
            self._next = sid

    def __aiter__(self) -> HistoryWalk:
        return self

    async def __anext__(self) -> HistoryEntry:
        taken = await self.take(1)
        if taken:
            return taken[0]
        raise StopAsyncIteration

    def _missing_error(self, sid: bytes) -> IcechunkError:
        if not self._order:
            return IcechunkError(
                f"snapshot not found: `{encode_id(sid)}`", kind="snapshot-not-found"
            )
        return IcechunkError(
            f"snapshot not found: `{encode_id(sid)}`, the parent of snapshot "
            f"{encode_id(self._order[-1])} in the history of snapshot {encode_id(self._start)}; "
            "the repository is damaged (a snapshot object was deleted or its parent link is "
            "corrupt)",
            kind="invalid-file-format",
        )

    def _loop_error(self, sid: bytes) -> IcechunkError:
        loop = self._order[self._order.index(sid) :]
        names = ", ".join(encode_id(s) for s in loop[:_NAMED_IN_LOOP])
        if len(loop) > _NAMED_IN_LOOP:
            names += f", ... ({len(loop)} snapshots)"
        return IcechunkError(
            f"the history of snapshot {encode_id(self._start)} loops: the parent of snapshot "
            f"{encode_id(self._order[-1])} is {encode_id(sid)}, which is already in that "
            f"history (loop: {names}); the repository is damaged, reset the affected branch "
            "to an undamaged snapshot or restore the snapshot objects from a backup",
            kind="invalid-file-format",
        )


async def as_of(source: HistorySource, tip: bytes, limit: int) -> HistoryEntry | None:
    """The newest entry at or before ``limit`` (µs since the epoch) in the history of ``tip``."""
    async for entry in HistoryWalk(source, tip):
        if entry.flushed_at <= limit:
            return entry
    return None


async def path_between(
    source: HistorySource, ancestor: bytes, descendant: bytes
) -> list[tuple[HistoryEntry, Snapshot]] | None:
    """The snapshots after ``ancestor`` up to ``descendant``, newest first, with their entries.

    Returns
    -------
    list of (HistoryEntry, Snapshot) or None
        Empty if the two are the same snapshot; None if ``ancestor`` is not in the history of
        ``descendant``.
    """
    entries: list[HistoryEntry] = []
    async for entry in HistoryWalk(source, descendant):
        if entry.id == ancestor:
            snapshots = await asyncio.gather(*(source.snapshot_of(e) for e in entries))
            return list(zip(entries, snapshots, strict=True))
        entries.append(entry)
    return None


async def diff_between(source: HistorySource, ancestor: bytes, descendant: bytes) -> Diff:
    """The changes after ``ancestor`` up to and including ``descendant``.

    Raises
    ------
    IcechunkError
        If ``ancestor`` is not a strict ancestor of ``descendant``, or a transaction log on the
        way cannot be read.
    """
    path = await path_between(source, ancestor, descendant)
    if not path:
        raise IcechunkError(
            "session error: `to` snapshot ancestry doesn't include `from`: the diff needs "
            "`from` to be an ancestor of `to`",
            kind="bad-snapshot-chain-for-diff",
        )
    start = await source.snapshot(ancestor)
    steps = await asyncio.gather(
        *(source.step_logs(entry, require_pruned=False) for entry, _ in path)
    )
    paths = {n.id: n.path for n in start.nodes}
    paths.update({n.id: n.path for n in path[0][1].nodes})
    return diff_from_transaction_logs((log for logs in steps for log in logs), paths)


def combine_transaction_logs(
    earlier: TransactionLog, later: TransactionLog, snapshot_id: bytes
) -> TransactionLog:
    """The changes of ``earlier`` followed by ``later``, as one log (used by amend)."""
    deleted = set(later.deleted_groups) | set(later.deleted_arrays)
    created_earlier = set(earlier.new_groups) | set(earlier.new_arrays)
    created = created_earlier | set(later.new_groups) | set(later.new_arrays)

    def keep(ids: Iterable[bytes], drop: set[bytes]) -> list[bytes]:
        return sorted({i for i in ids if i not in drop})

    chunks: dict[bytes, np.ndarray] = {}
    for tx in (earlier, later):
        for node_id, coords in tx.updated_chunks.items():
            if node_id in deleted:
                continue
            prev = chunks.get(node_id)
            if prev is None or not len(prev):
                chunks[node_id] = coords
            elif len(coords):
                chunks[node_id] = np.unique(np.concatenate([prev, coords]), axis=0)
    return TransactionLog(
        id=snapshot_id,
        new_groups=keep([*earlier.new_groups, *later.new_groups], deleted),
        new_arrays=keep([*earlier.new_arrays, *later.new_arrays], deleted),
        deleted_groups=keep([*earlier.deleted_groups, *later.deleted_groups], created_earlier),
        deleted_arrays=keep([*earlier.deleted_arrays, *later.deleted_arrays], created_earlier),
        updated_groups=keep([*earlier.updated_groups, *later.updated_groups], created | deleted),
        updated_arrays=keep([*earlier.updated_arrays, *later.updated_arrays], created | deleted),
        updated_chunks=chunks,
    )


# The node lists a transaction log and a Diff both have, by attribute name.
NODE_LISTS = (
    "new_groups",
    "new_arrays",
    "deleted_groups",
    "deleted_arrays",
    "updated_groups",
    "updated_arrays",
)


def diff_from_transaction_logs(logs: Iterable[TransactionLog], paths: Mapping[bytes, str]) -> Diff:
    """Union of transaction logs, newest first, with node ids turned into paths (unknown ids
    are left out); the moves of every log, one log after the other, as 2.x lists them (moves
    over several commits are not collapsed into one)."""
    sets: dict[str, set[bytes]] = {k: set() for k in NODE_LISTS}
    chunks: dict[bytes, set[Coords]] = {}
    moves: list[tuple[str, str]] = []
    for tx in logs:
        for name, ids in sets.items():
            ids.update(getattr(tx, name))
        for node_id, coords in tx.updated_chunks.items():
            dest = chunks.setdefault(node_id, set())
            dest.update(tuple(int(x) for x in row) for row in coords)
        moves.extend((move.from_path, move.to_path) for move in tx.moved_nodes)

    def to_paths(ids: set[bytes]) -> list[str]:
        return [paths[i] for i in ids if i in paths]

    return diff_from_changes(
        new_groups=to_paths(sets["new_groups"]),
        new_arrays=to_paths(sets["new_arrays"]),
        deleted_groups=to_paths(sets["deleted_groups"]),
        deleted_arrays=to_paths(sets["deleted_arrays"]),
        updated_groups=to_paths(sets["updated_groups"]),
        updated_arrays=to_paths(sets["updated_arrays"]),
        updated_chunks={paths[i]: c for i, c in chunks.items() if i in paths},
        moved_nodes=moves,
    )
