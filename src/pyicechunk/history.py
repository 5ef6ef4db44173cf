"""Walking history: from a snapshot through its parents back to the repository's first one.

Every reader of history (ancestry, ``as_of``, diff, rebase, snapshot expiration, reachability
for garbage collection and statistics) walks parent links through :class:`HistoryWalk`. The
walk remembers where it has been, so a damaged or hostile snapshot whose parent link leads
back into its own history is reported as damage instead of making the caller loop forever.
"""

from __future__ import annotations

from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.snapshot import Snapshot

__all__ = ["HistoryWalk"]

# A loop is named by its members, up to this many (a hostile loop may be very long).
_NAMED_IN_LOOP = 8


class HistoryWalk:
    """The snapshots from ``start`` back to the root, newest first, each fetched once.

    Use ``async for snapshot in HistoryWalk(assets, start)``, or :meth:`next` to take the
    snapshots one at a time across several calls.

    Parameters
    ----------
    assets
        Where the snapshots are read from.
    start
        The id of the newest snapshot of the walk.

    Raises
    ------
    IcechunkError
        While walking: a snapshot is missing (``start`` itself: "snapshot not found"), or a
        parent link leads back to a snapshot already visited (the history loops).
    """

    def __init__(self, assets: AssetManager, start: bytes) -> None:
        self._assets = assets
        self._start = start
        self._next: bytes | None = start
        self._order: list[bytes] = []
        self._seen: set[bytes] = set()

    async def next(self) -> Snapshot | None:
        """The next older snapshot, or None after the root."""
        sid = self._next
        if sid is None:
            return None
        if sid in self._seen:
            raise self._loop_error(sid)
        try:
            snapshot = await self._assets.fetch_snapshot(sid)
        except ObjectNotFoundError:
            raise self._missing_error(sid) from None
        self._seen.add(sid)
        self._order.append(sid)
        self._next = snapshot.parent_id
        return snapshot

    def __aiter__(self) -> HistoryWalk:
        return self

    async def __anext__(self) -> Snapshot:
        snapshot = await self.next()
        if snapshot is None:
            raise StopAsyncIteration
        return snapshot

    def _missing_error(self, sid: bytes) -> IcechunkError:
        if not self._order:
            return IcechunkError(f"snapshot not found: `{encode_id(sid)}`")
        return IcechunkError(
            f"snapshot not found: `{encode_id(sid)}`, the parent of snapshot "
            f"{encode_id(self._order[-1])} in the history of snapshot {encode_id(self._start)}; "
            "the repository is damaged (a snapshot object was deleted or its parent link is "
            "corrupt)"
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
            "to an undamaged snapshot or restore the snapshot objects from a backup"
        )
