"""Snapshot expiration: cut old snapshots out of every ref's history (FORMAT-V1 §9.8).

Expiration edits history in place. For each ref, the oldest snapshot that is not expired is
rewritten under its own id with the repository root as its parent; the expired snapshots between
them are then unreachable from that ref and a later garbage collection can delete them.
"""

from __future__ import annotations

import dataclasses

from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.history import HistorySource, HistoryWalk
from pyicechunk.repo_state import RepoState

__all__ = ["expire_snapshots"]


async def _expire_ref(
    history: HistorySource, assets: AssetManager, tip_id: bytes, older_than: int
) -> tuple[set[bytes], bool]:
    """Expire one ref's history; return the released snapshot ids and whether the tip expired.

    ``older_than`` is in microseconds since the Unix epoch, like ``Snapshot.flushed_at``.
    """
    editable = tip_id
    root = tip_id
    released: set[bytes] = set()
    tip_expired: bool | None = None
    async for entry in HistoryWalk(history, tip_id):
        expired = entry.flushed_at < older_than
        if tip_expired is None:
            tip_expired = expired
        if expired:
            released.add(entry.id)
            root = entry.id
        else:
            editable = entry.id
    # The last expired snapshot visited is the history's root: it always stays.
    released.discard(root)

    child = await history.snapshot(editable)
    if editable == root or child.parent_id == root or root == tip_id:
        return set(), bool(tip_expired)
    root_snapshot = await history.snapshot(root)
    if child.parent_id is None or root_snapshot.parent_id is not None:
        # Re-parenting a root, or onto a non-root, could create a cycle in the history.
        raise IcechunkError(
            f"cannot expire snapshots: the history of snapshot {encode_id(tip_id)} is "
            "inconsistent (its oldest expired snapshot has a parent); the repository may be "
            "damaged"
        )
    # Same id, nodes, message, metadata and time: only the parent changes. write_snapshot also
    # replaces the cached copy, so this process sees the new parent at once.
    await assets.write_snapshot(dataclasses.replace(child, parent_id=root))
    return released, bool(tip_expired)


async def expire_snapshots(
    state: RepoState,
    assets: AssetManager,
    older_than: int,
    *,
    delete_expired_branches: bool = False,
    delete_expired_tags: bool = False,
) -> set[str]:
    """Cut snapshots older than ``older_than`` out of the history of every branch and tag.

    Refs are processed tags first, then branches, each in name order, as the reference does.

    Parameters
    ----------
    state
        The repository's state (its refs and history).
    assets
        The repository's asset manager; its snapshot cache is kept up to date.
    older_than
        Threshold in microseconds since the Unix epoch: snapshots flushed strictly before it
        expire.
    delete_expired_branches, delete_expired_tags
        Also delete refs whose target snapshot itself expired (never ``main``).

    Returns
    -------
    set[str]
        Ids of the snapshots cut out of some ref's history. They stay on storage until garbage
        collection, and may still be reachable from other refs.

    Raises
    ------
    IcechunkError
        The storage is read-only, or a ref or snapshot cannot be read.
    """
    if assets.backend.read_only:
        raise IcechunkError(
            "the storage used by this Icechunk repository is read-only: Cannot expire snapshots"
        )
    refs = await state.refs()
    history = await state.history()
    released: set[bytes] = set()
    for tag in sorted(refs.tags):
        tip = await state.tag_target(tag)
        ids, tip_expired = await _expire_ref(history, assets, tip, older_than)
        released |= ids
        if tip_expired and delete_expired_tags:
            await state.delete_tag(tag)
    for branch in sorted(refs.branches):
        tip = await state.branch_tip(branch)
        ids, tip_expired = await _expire_ref(history, assets, tip, older_than)
        released |= ids
        if tip_expired and delete_expired_branches and branch != "main":
            await state.delete_branch(branch)
    return {encode_id(i) for i in released}
