"""Pure edits of a :class:`~pyicechunk.format.repo_info.model.RepoInfo` for the update protocol
(FORMAT-V2 §10): each returns a new value and leaves its argument unchanged.
"""

from __future__ import annotations

import dataclasses
import os

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, check_id_length, encode_id
from pyicechunk.format.repo_info.model import (
    DEFAULT_NUM_UPDATES_PER_FILE,
    RepoAvailability,
    RepoInfo,
    RepoInitialized,
    RepoStatus,
    SnapshotInfo,
    Update,
    UpdateAction,
    ancestry,
)


def initial_repo_info(initial: SnapshotInfo, now: int, config: bytes | None = None) -> RepoInfo:
    """The ``repo`` written by create: ``main`` at the initial snapshot, one RepoInitialized.

    Parameters
    ----------
    initial
        The initial snapshot's entry (no parent).
    now
        Creation time in µs since the epoch; status ``set_at`` and the update's time.
    config
        The config FlexBuffer to store, or None (default config).
    """
    return RepoInfo(
        branches={"main": initial.id},
        tags={},
        deleted_tags=frozenset(),
        snapshots={initial.id: initial},
        status=RepoStatus(RepoAvailability.ONLINE, now),
        latest_updates=(Update(RepoInitialized(), now),),
        config=config,
    )


def backup_name(now_ms: int, random12: bytes | None = None) -> str:
    """The bare name of a new ``overwritten/`` backup (FORMAT-V2 §1).

    Parameters
    ----------
    now_ms
        Current Unix time in milliseconds.
    random12
        12 random bytes; fresh ones when None.

    Returns
    -------
    str
        ``repo.<T>.<R>``: T = 32503680000000 - now_ms, zero-padded to 14 digits (newer backups
        sort first), R the random bytes in Crockford base32.
    """
    rand = os.urandom(12) if random12 is None else random12
    return (
        f"repo.{32503680000000 - now_ms:014d}.{encode_id(check_id_length(rand, 12, 'random part'))}"
    )


def check_update_time(repo: RepoInfo, now: int) -> None:
    """Refuse an update at ``now`` (µs) that would not be later than the newest ops-log entry.

    Raises
    ------
    IcechunkError
        The reference's ``snapshot-timestamp`` check: the clock moved back, or the newest
        entry is in the future.
    """
    entries = repo.latest_updates
    if entries and now <= entries[0].updated_at:
        raise IcechunkError(
            "update timestamp is invalid, please verify if the machine clock has drifted: "
            f"update time: `{now}`, latest update time: `{entries[0].updated_at}`",
            kind="snapshot-timestamp",
        )


def record_update(
    repo: RepoInfo,
    action: UpdateAction,
    now: int,
    backup: str,
    window: int = DEFAULT_NUM_UPDATES_PER_FILE,
) -> RepoInfo:
    """Prepend an ops-log entry, with the window and chain rule of FORMAT-V2 §10.3.

    The current newest entry gets ``backup`` as its backup path (``backup`` is where the caller
    copies the current ``repo`` before replacing it). Once ``window`` entries are in, the log
    is cut at the first further entry that has a backup path, and ``repo_before_updates`` names
    that entry's file; entries without one (from migration) are kept past the window.

    Parameters
    ----------
    repo
        The current state, as read.
    action
        What the update does.
    now
        The update's time in µs since the epoch.
    backup
        Bare ``overwritten/`` name of the copy of the current state.
    window
        ``num_updates_per_repo_info_file``.

    Returns
    -------
    RepoInfo
        ``repo`` with the new log; nothing else changed.

    Raises
    ------
    IcechunkError
        If ``now`` is not later than the newest entry (the reference's ``snapshot-timestamp``
        check: the clock moved back, or the newest entry is in the future).
    """
    check_update_time(repo, now)
    entries = repo.latest_updates
    before = repo.repo_before_updates
    new: tuple[Update, ...] = (Update(action, now),)
    if entries:
        first = entries[0]
        new += (Update(first.action, first.updated_at, backup), *entries[1:])
    # Past the window, the log ends before the first entry that has a backup path.
    cut = window
    while cut < len(new) and new[cut].backup_path is None:
        cut += 1
    if cut < len(new):
        before = new[cut].backup_path
        new = new[:cut]
    return repo.replaced(latest_updates=new, repo_before_updates=before)


def add_snapshot(repo: RepoInfo, info: SnapshotInfo) -> RepoInfo:
    """List a new snapshot (commit, amend, flush).

    Raises
    ------
    IcechunkError
        If the id is already listed or the parent is not.
    """
    if info.id in repo.snapshots:
        raise IcechunkError(
            f"snapshot {encode_id(info.id)} is already listed in the repository",
            kind="duplicate-snapshot-id",
        )
    if info.parent_id is not None:
        repo.snapshot(info.parent_id)
    return repo.replaced(snapshots={**repo.snapshots, info.id: info})


def set_branch(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Point branch ``name`` (new or existing) at a listed snapshot.

    Raises
    ------
    IcechunkError
        If the snapshot is not listed.
    """
    repo.snapshot(snapshot_id)
    return repo.replaced(branches={**repo.branches, name: snapshot_id})


def create_branch(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Create a branch.

    Raises
    ------
    IcechunkError
        If it exists or the snapshot is not listed.
    """
    if name in repo.branches:
        raise IcechunkError(
            f"branch already exists `{name} -> {encode_id(repo.branches[name])}`",
            kind="branch-already-exists",
        )
    return set_branch(repo, name, snapshot_id)


def delete_branch(repo: RepoInfo, name: str) -> RepoInfo:
    """Delete a branch other than ``main``.

    Raises
    ------
    IcechunkError
        For ``main`` or a branch that does not exist.
    """
    if name == "main":
        raise IcechunkError("cannot delete branch main", kind="cannot-delete-main")
    if name not in repo.branches:
        raise IcechunkError(f"ref not found `{name}`", kind="ref-not-found")
    branches = dict(repo.branches)
    del branches[name]
    return repo.replaced(branches=branches)


def create_tag(repo: RepoInfo, name: str, snapshot_id: bytes) -> RepoInfo:
    """Create a tag.

    Raises
    ------
    IcechunkError
        If the tag exists or was deleted before (tags are never reused), or the snapshot is
        not listed.
    """
    if name in repo.tags:
        raise IcechunkError(
            f"tag already exists `{name} -> {encode_id(repo.tags[name])}`",
            kind="tag-already-exists",
        )
    if name in repo.deleted_tags:
        raise IcechunkError(
            f"icechunk does not allow tag reuse and tag was already deleted `{name}`",
            kind="tag-previously-deleted",
        )
    repo.snapshot(snapshot_id)
    return repo.replaced(tags={**repo.tags, name: snapshot_id})


def delete_tag(repo: RepoInfo, name: str) -> RepoInfo:
    """Delete a tag; its name joins ``deleted_tags``.

    Raises
    ------
    IcechunkError
        If the tag does not exist.
    """
    if name not in repo.tags:
        raise IcechunkError(f"ref not found `{name}`", kind="ref-not-found")
    tags = dict(repo.tags)
    del tags[name]
    return repo.replaced(tags=tags, deleted_tags=repo.deleted_tags | {name})


def set_feature_flag(repo: RepoInfo, flag: int, value: bool | None) -> RepoInfo:
    """Enable, disable or (``value`` None) unset a feature flag.

    Once a flag was set, both lists are written (possibly empty), as 2.3.0 does.
    """
    enabled = set(repo.enabled_feature_flags or ()) - {flag}
    disabled = set(repo.disabled_feature_flags or ()) - {flag}
    if value is True:
        enabled.add(flag)
    elif value is False:
        disabled.add(flag)
    return dataclasses.replace(
        repo,
        enabled_feature_flags=tuple(sorted(enabled)),
        disabled_feature_flags=tuple(sorted(disabled)),
    )


def reparent_snapshot(repo: RepoInfo, snapshot_id: bytes, new_parent_id: bytes) -> RepoInfo:
    """Make an ancestor the parent of ``snapshot_id``, collapsing the snapshots in between.

    The collapsed snapshots' transaction logs go to ``pruned_ancestor_tx_logs`` (FORMAT-V2
    §12.2): for each collapsed ancestor, oldest first, its own pruned list then its id; then
    the snapshot's previous list.

    Raises
    ------
    IcechunkError
        If ``new_parent_id`` is not an ancestor of ``snapshot_id``.
    """
    info = repo.snapshot(snapshot_id)
    collapsed: list[SnapshotInfo] = []
    for ancestor in ancestry(repo, snapshot_id):
        if ancestor.id == snapshot_id:
            continue
        if ancestor.id == new_parent_id:
            break
        collapsed.append(ancestor)
    else:
        raise IcechunkError(
            f"snapshot {encode_id(new_parent_id)} is not an ancestor of {encode_id(snapshot_id)}",
            kind="invalid-snapshot-id",
        )
    pruned: list[bytes] = []
    for ancestor in reversed(collapsed):
        pruned.extend(ancestor.pruned_ancestor_tx_logs)
        pruned.append(ancestor.id)
    pruned.extend(info.pruned_ancestor_tx_logs)
    new = dataclasses.replace(info, parent_id=new_parent_id, pruned_ancestor_tx_logs=tuple(pruned))
    return dataclasses.replace(repo, snapshots={**repo.snapshots, snapshot_id: new})


def remove_snapshots(repo: RepoInfo, ids: set[bytes] | frozenset[bytes]) -> RepoInfo:
    """Unlist snapshots that nothing refers to any more (expiration, GC).

    Reparent the survivors first (:func:`reparent_snapshot`) and delete the refs.

    Raises
    ------
    IcechunkError
        If a ref or a remaining snapshot still points at one of them, or one is the initial
        snapshot.
    """
    if INITIAL_SNAPSHOT_ID in ids:
        raise IcechunkError("the initial snapshot cannot be removed", kind="not-allowed")
    for kind, refs in (("branch", repo.branches), ("tag", repo.tags)):
        for name, target in refs.items():
            if target in ids:
                raise IcechunkError(
                    f"{kind} {name!r} points at snapshot {encode_id(target)}, which is removed",
                    kind="not-allowed",
                )
    kept = {k: v for k, v in repo.snapshots.items() if k not in ids}
    for info in kept.values():
        if info.parent_id is not None and info.parent_id in ids:
            raise IcechunkError(
                f"snapshot {encode_id(info.id)} has removed parent {encode_id(info.parent_id)}",
                kind="invalid-file-format",
            )
    return dataclasses.replace(repo, snapshots=kept)
