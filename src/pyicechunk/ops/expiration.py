"""Snapshot expiration: cut old snapshots out of every ref's history.

Expiration edits history in place, where the format keeps it:

* spec 1 (FORMAT-V1 §9.8): for each ref, the oldest snapshot that is not expired is rewritten
  under its own id with the repository root as its parent; the expired snapshots between them
  are then unreachable from that ref and a later garbage collection can delete them.
* spec 2 (FORMAT-V2 §12.1): only the snapshot list in ``repo`` changes, in one update recording
  ``ExpirationRan``. Expired snapshots leave the list; every snapshot whose parent left is
  re-parented to the root of its tree, and (spec 2.1) the ids of the ancestors it now spans go
  to its ``pruned_ancestor_tx_logs``, so that diffs, amends and rebases still see their changes.
  No snapshot file is rewritten.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pyicechunk import progress
from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import ErrorKind, IcechunkError, ReadOnlyError
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, encode_id
from pyicechunk.format.repo_info import (
    ExpirationRan,
    RepoInfo,
    SnapshotInfo,
    UpdateAction,
    ancestry,
    remove_snapshots,
)
from pyicechunk.history import HistorySource, HistoryWalk
from pyicechunk.repo_state import RepoState
from pyicechunk.repo_state.repo_object import read_only_error
from pyicechunk.storage import keys

__all__ = ["collapse_ancestors", "expire_listed", "expire_snapshots"]


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
            "damaged",
            kind="invalid-file-format",
        )
    # Same id, nodes, message, metadata and time: only the parent changes. write_snapshot also
    # replaces the cached copy, so this process sees the new parent at once. The new version
    # replaces one that refs reach, so it is made durable before the next ref is edited.
    await assets.write_snapshot(dataclasses.replace(child, parent_id=root))
    await assets.backend.make_durable([keys.snapshot_key(child.id)])
    return released, bool(tip_expired)


def collapse_ancestors(
    info: RepoInfo, snapshot: SnapshotInfo, is_boundary: Callable[[SnapshotInfo], bool]
) -> tuple[bytes | None, tuple[bytes, ...]]:
    """Where ``snapshot`` is re-parented, and its pruned logs, when its ancestors up to the
    first boundary leave its path (FORMAT-V2 §12.2).

    Returns
    -------
    boundary
        The nearest ancestor ``is_boundary`` accepts; None if there is none.
    pruned
        Oldest first: for each ancestor passed over, its own pruned logs then its id; then
        ``snapshot``'s own pruned logs, which are newer than all of them.
    """
    boundary: bytes | None = None
    passed: list[SnapshotInfo] = []
    for ancestor in ancestry(info, snapshot.id):
        if ancestor.id == snapshot.id:
            continue
        if is_boundary(ancestor):
            boundary = ancestor.id
            break
        passed.append(ancestor)
    pruned: list[bytes] = []
    for ancestor in reversed(passed):
        pruned.extend(ancestor.pruned_ancestor_tx_logs)
        pruned.append(ancestor.id)
    pruned.extend(snapshot.pruned_ancestor_tx_logs)
    return boundary, tuple(pruned)


def _tree_roots(info: RepoInfo) -> dict[bytes, bytes]:
    """Snapshot -> the root of its tree, for every non-root snapshot a ref reaches."""
    root_of: dict[bytes, bytes] = {}
    for tip in (*info.tags.values(), *info.branches.values()):
        line = list(ancestry(info, tip))
        root = line[-1].id
        for entry in line[:-1]:
            root_of.setdefault(entry.id, root)
    return root_of


def expire_listed(
    info: RepoInfo,
    older_than: int,
    *,
    delete_expired_branches: bool = False,
    delete_expired_tags: bool = False,
) -> tuple[RepoInfo, set[bytes]]:
    """Expire snapshots in a spec-2 snapshot list, as icechunk 2.3.0 does (FORMAT-V2 §12.1).

    A snapshot with a parent, flushed before ``older_than``, is expired. It is released (leaves
    the list) unless a ref keeps it: the tip of a tag (unless ``delete_expired_tags``), of a
    branch (unless ``delete_expired_branches``), and always the tip of ``main``. Roots always
    stay. A kept snapshot whose parent is released gets the root of its tree as parent (the
    initial snapshot when no ref reaches it), and every ancestor between them in its pruned
    logs, kept ones included, since they all leave its path. Refs whose target expired are
    deleted when asked (deleted tags are remembered; ``main`` is never deleted).

    Parameters
    ----------
    info
        The ``repo`` object as read.
    older_than
        Microseconds since the Unix epoch.
    delete_expired_branches, delete_expired_tags
        Delete refs whose target expired.

    Returns
    -------
    RepoInfo
        The edited state (its ops log unchanged: the caller records ``ExpirationRan``).
    set[bytes]
        The released snapshot ids.
    """
    expired = {
        sid
        for sid, entry in info.snapshots.items()
        if entry.parent_id is not None and entry.flushed_at < older_than
    }
    protected: set[bytes] = set()
    if not delete_expired_tags:
        protected.update(info.tags.values())
    if not delete_expired_branches:
        protected.update(info.branches.values())
    main = info.branches.get("main")
    if main is not None:
        protected.add(main)
    released = expired - protected

    root_of = _tree_roots(info)
    fallback = INITIAL_SNAPSHOT_ID if INITIAL_SNAPSHOT_ID in info.snapshots else None
    snapshots: dict[bytes, SnapshotInfo] = {}
    for sid, entry in info.snapshots.items():
        if sid in released:
            continue
        if entry.parent_id is not None and entry.parent_id in released:
            own_root, pruned = collapse_ancestors(info, entry, lambda a: a.parent_id is None)
            parent = root_of.get(sid, fallback) or own_root
            entry = dataclasses.replace(entry, parent_id=parent, pruned_ancestor_tx_logs=pruned)
        snapshots[sid] = entry

    tags = dict(info.tags)
    deleted_tags = set(info.deleted_tags)
    if delete_expired_tags:
        for name, target in info.tags.items():
            if target in expired:
                del tags[name]
                deleted_tags.add(name)
    branches = dict(info.branches)
    if delete_expired_branches:
        for name, target in info.branches.items():
            if target in expired and name != "main":
                del branches[name]
    edited = dataclasses.replace(
        info,
        snapshots=snapshots,
        tags=tags,
        branches=branches,
        deleted_tags=frozenset(deleted_tags),
    )
    # The released snapshots are gone from `snapshots` already; this checks that no ref and no
    # remaining parent link still names one.
    remove_snapshots(edited, released)
    return edited, released


async def _expire_repo_info(
    state: RepoState,
    older_than: int,
    delete_expired_branches: bool,
    delete_expired_tags: bool,
) -> set[bytes]:
    released: set[bytes] = set()

    def edit(info: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
        # Run again on the freshest state after a concurrent update, as the reference redoes
        # the whole expiration then: the answer is the last run's.
        nonlocal released
        edited, released = expire_listed(
            info,
            older_than,
            delete_expired_branches=delete_expired_branches,
            delete_expired_tags=delete_expired_tags,
        )
        return edited, ExpirationRan()

    await state.update_repo_info(edit)
    return released


@progress.operation("expiration")
async def expire_snapshots(
    state: RepoState,
    assets: AssetManager,
    older_than: int,
    *,
    delete_expired_branches: bool = False,
    delete_expired_tags: bool = False,
) -> set[str]:
    """Cut snapshots older than ``older_than`` out of the history of every branch and tag.

    On spec 2 only the ``repo`` object changes (:func:`expire_listed`, one update recording
    ``ExpirationRan``, also when nothing expires). On spec 1 each ref's history is edited in
    place, tags first, then branches, each in name order, as the reference does.

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
        collection; on spec 1 they may still be reachable from other refs, on spec 2 they are
        no longer listed.

    Raises
    ------
    IcechunkError
        The storage is read-only, the repository's status is read-only (spec 2), or a ref or
        snapshot cannot be read.
    """
    if assets.backend.read_only:
        raise IcechunkError(
            "the storage used by this Icechunk repository is read-only: Cannot expire snapshots",
            kind="read-only-storage",
        )
    if state.spec_version >= 2:
        # One read of `repo`: the update's own. It refuses a read-only status before editing;
        # only then is `repo` read again, to say so in the reference's words.
        try:
            ids = await _expire_repo_info(
                state, older_than, delete_expired_branches, delete_expired_tags
            )
        except ReadOnlyError as e:
            info = await state.repo_info()
            if e.kind != ErrorKind.READ_ONLY_REPOSITORY or info is None or info.status.is_online:
                raise
            raise read_only_error(info.status, "Cannot expire") from None
        return {encode_id(i) for i in ids}
    refs = await state.refs()
    history = await state.history()
    released: set[bytes] = set()
    for tag in sorted(refs.tags):
        tip = await state.tag_target(tag)
        ids, tip_expired = await _expire_ref(history, assets, tip, older_than)
        released |= ids
        progress.advance("refs", total=len(refs.tags) + len(refs.branches))
        if tip_expired and delete_expired_tags:
            await state.delete_tag(tag)
    for branch in sorted(refs.branches):
        tip = await state.branch_tip(branch)
        ids, tip_expired = await _expire_ref(history, assets, tip, older_than)
        released |= ids
        progress.advance("refs", total=len(refs.tags) + len(refs.branches))
        if tip_expired and delete_expired_branches and branch != "main":
            await state.delete_branch(branch)
    return {encode_id(i) for i in released}
