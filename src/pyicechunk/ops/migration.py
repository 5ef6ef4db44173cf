"""Migrating a spec-1 repository to spec 2 (FORMAT-V2 §13), the way icechunk 2.3.0 does.

Nothing is rewritten: snapshots, manifests, transaction logs and chunks keep their spec-1 bytes
(a spec-2 repository reads each object by its own header). The migration only builds the one
new object, ``repo``, from what the spec-1 state holds:

* the refs and the deleted tags, read through the spec-1 repository state;
* every snapshot reachable from a ref, with its parent, time, message and metadata (the
  metadata re-encoded as FlexBuffers); snapshots no ref reaches are left out;
* an ops log synthesised from that history, with the reference's timestamps, newest first,
  under a final ``RepoMigrated{1, 2}`` entry;
* the *stored* ``config.yaml`` (not the caller's runtime config) as a FlexBuffer.

Then ``repo`` is created (create-if-absent), read back, and the spec-1 files are removed:
``refs/branch.main/ref.json`` first, so that icechunk 1.x clients fail at once instead of
writing commits nobody will see, then the rest of ``refs/``, then ``config.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from pyicechunk import progress
from pyicechunk._time import now_micros
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.config_flex import config_to_flexbuffer
from pyicechunk.format.ids import encode_id
from pyicechunk.format.refs import decode_ref
from pyicechunk.format.repo_info import (
    BranchCreated,
    NewCommit,
    RepoAvailability,
    RepoInfo,
    RepoInitialized,
    RepoMigrated,
    RepoStatus,
    SnapshotInfo,
    TagCreated,
    TagDeleted,
    Update,
    UpdateAction,
    encode_metadata_items,
    pack_repo_object,
    unpack_repo_object,
)
from pyicechunk.format.snapshot import Snapshot
from pyicechunk.history import HistoryEntry, HistorySource, HistoryWalk
from pyicechunk.ops.gc import decode_object_names
from pyicechunk.repo_state import RepoState, fetch_config
from pyicechunk.storage import StorageBackend, keys

__all__ = [
    "DEFAULT_PREFETCH_CONCURRENCY",
    "migrate_1_to_2",
    "synthesize_ops_log",
]

logger = logging.getLogger("pyicechunk.ops.migration")

DEFAULT_PREFETCH_CONCURRENCY = 64
"""Snapshots read at the same time while the history is collected (the reference's default)."""

# Synthesised branch and tag events are dated this long after the snapshot they point at.
_EVENT_OFFSET = 1_000  # µs

_UNKNOWN_FAILURE = (
    "An unknown error prevented this repo from migrating, please contact the Icechunk "
    "maintainers by writing an issue report: https://github.com/earth-mover/icechunk/issues"
)


def _invalid_version(actual: str) -> IcechunkError:
    return IcechunkError(
        f"invalid repository version ({actual}), this function can only migrate repositories "
        "that use version 1.0 of the specification, to repositories with spec version 2.0",
        kind="invalid-repository-migration",
    )


# --- the ops log -------------------------------------------------------------------------------


def synthesize_ops_log(
    main: Sequence[HistoryEntry],
    branches: Sequence[tuple[str, Sequence[HistoryEntry]]],
    tags: Sequence[tuple[str, bytes]],
    deleted_tags: Sequence[tuple[str, bytes]],
    times: Mapping[bytes, int],
) -> list[Update]:
    """The ops log a migration writes for a spec-1 history, newest entry first.

    The events are the reference's: the repository initialised at the root's time; a commit on
    ``main`` for each of its snapshots but the root; for each other branch, its creation 1 ms
    after its tip and a commit for each of its snapshots no earlier branch claimed; a tag's
    creation 1 ms after its target; a deleted tag's creation and, 1 ms later, its deletion.
    They are sorted by time (stably, so simultaneous events keep that order) and a time that
    does not exceed the one before it is moved to 1 µs after it.

    Parameters
    ----------
    main
        The history of ``main``, tip first, root last.
    branches
        The other branches in name order, each with its history (tip first).
    tags
        Live tags in name order, with their targets.
    deleted_tags
        Deleted tags with the target their ref file still names.
    times
        ``flushed_at`` of every snapshot the migration lists; a target missing here is dated
        as the root.

    Returns
    -------
    list of Update
        Without backup paths (no earlier ``repo`` exists to chain to).
    """
    if not main:
        return []
    root_time = main[-1].flushed_at
    attributed = {entry.id for entry in main}
    events: list[tuple[UpdateAction, int]] = [(RepoInitialized(), root_time)]
    events.extend((NewCommit("main", e.id), e.flushed_at) for e in reversed(main[:-1]))
    for name, history in branches:
        tip_time = history[0].flushed_at if history else root_time
        events.append((BranchCreated(name), tip_time + _EVENT_OFFSET))
        for entry in reversed(history):
            if entry.id not in attributed:
                attributed.add(entry.id)
                events.append((NewCommit(name, entry.id), entry.flushed_at))
    for name, target in tags:
        events.append((TagCreated(name), times.get(target, root_time) + _EVENT_OFFSET))
    for name, target in deleted_tags:
        when = times.get(target, root_time)
        events.append((TagCreated(name), when + _EVENT_OFFSET))
        events.append((TagDeleted(name, target), when + 2 * _EVENT_OFFSET))
    events.sort(key=lambda event: event[1])
    log: list[Update] = []
    previous: int | None = None
    for action, when in events:
        if previous is not None and when <= previous:
            when = previous + 1
        log.append(Update(action, when))
        previous = when
    log.reverse()
    return log


# --- collecting the history --------------------------------------------------------------------


class _SharedReads(HistorySource):
    """A history source that reads each entry once, for the walk and the prefetch together.

    Entries are kept without their snapshot (only parent, time, message and metadata), so
    holding the whole history costs little; a read that failed is forgotten, and the next
    request for it reads again.
    """

    def __init__(self, source: HistorySource) -> None:
        self._source = source
        self._done: dict[bytes, HistoryEntry] = {}
        self._reading: dict[bytes, asyncio.Task[HistoryEntry]] = {}

    async def entry(self, snapshot_id: bytes) -> HistoryEntry:
        done = self._done.get(snapshot_id)
        if done is not None:
            return done
        task = self._reading.get(snapshot_id)
        if task is None:
            task = asyncio.ensure_future(self._source.entry(snapshot_id))
            self._reading[snapshot_id] = task
            task.add_done_callback(functools.partial(self._settle, snapshot_id))
        # Shielded: a cancelled prefetch worker must not cancel a read the walk waits for.
        return await asyncio.shield(task)

    def _settle(self, snapshot_id: bytes, task: asyncio.Task[HistoryEntry]) -> None:
        self._reading.pop(snapshot_id, None)
        if not task.cancelled() and task.exception() is None:
            self._done[snapshot_id] = dataclasses.replace(task.result(), snapshot=None)

    async def snapshot(self, snapshot_id: bytes) -> Snapshot:
        return await self._source.snapshot(snapshot_id)

    async def close(self) -> None:
        """Stop the reads still running (the prefetch's, once the walk needs no more)."""
        running = list(self._reading.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def _prefetch(source: _SharedReads, backend: StorageBackend, concurrency: int) -> None:
    """Read every snapshot object, newest first, ``concurrency`` at a time.

    The walk through parent links is one read after another; reading ahead turns most of its
    steps into lookups. Failures here only cost the walk its own read, so they are not errors.
    """
    try:
        listed = await backend.list(keys.SNAPSHOTS)
    except IcechunkError as exc:
        logger.warning("snapshot prefetch: cannot list snapshots: %s", exc)
        return
    listed.sort(key=lambda info: info.last_modified, reverse=True)
    ids, valid = decode_object_names([info.key[len(keys.SNAPSHOTS) :] for info in listed])
    pending: Iterator[bytes] = (bytes(sid) for sid, ok in zip(ids, valid, strict=True) if ok)

    async def worker() -> None:
        for snapshot_id in pending:
            try:
                await source.entry(snapshot_id)
            except IcechunkError as exc:
                logger.debug("snapshot prefetch: %s: %s", encode_id(snapshot_id), exc)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _collect(
    history: HistorySource, backend: StorageBackend, roots: Iterable[bytes], concurrency: int
) -> dict[bytes, HistoryEntry]:
    """Every snapshot in the history of ``roots``, each read once."""
    shared = _SharedReads(history)
    prefetch = asyncio.ensure_future(_prefetch(shared, backend, concurrency))
    found: dict[bytes, HistoryEntry] = {}
    try:
        for root in roots:
            # Stopping at a snapshot an earlier walk visited is safe: that walk went on from
            # it to the root, and would have raised had the history looped.
            async for entry in HistoryWalk(shared, root):
                if entry.id in found:
                    break
                found[entry.id] = dataclasses.replace(entry, snapshot=None)
                progress.advance("reading snapshots")
    finally:
        prefetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prefetch
        await shared.close()
    return found


def _history_of(tip: bytes, entries: Mapping[bytes, HistoryEntry]) -> list[HistoryEntry]:
    """``tip``'s history, tip first, from entries already collected (complete by then)."""
    out = []
    current: bytes | None = tip
    while current is not None:
        entry = entries[current]
        out.append(entry)
        current = entry.parent_id
    return out


async def _deleted_tag_target(backend: StorageBackend, name: str) -> bytes | None:
    """The target a deleted tag's ``ref.json`` still names (None without a readable one)."""
    key = keys.tag_key(name)
    try:
        return decode_ref(await backend.get(key), key)
    except IcechunkError as exc:
        logger.warning(
            "deleted tag %r: cannot read %s (%s); no ops-log entry for it", name, key, exc
        )
        return None


def _snapshot_info(entry: HistoryEntry) -> SnapshotInfo:
    try:
        metadata = encode_metadata_items(entry.metadata)
    except (TypeError, ValueError) as exc:
        raise IcechunkError(
            f"cannot migrate snapshot {encode_id(entry.id)}: its metadata cannot be stored as "
            f"FlexBuffers ({exc})",
            kind="serialization",
        ) from None
    return SnapshotInfo(entry.id, entry.parent_id, entry.flushed_at, entry.message, metadata)


# --- the steps ---------------------------------------------------------------------------------


async def _check_migratable(backend: StorageBackend) -> None:
    """Refuse a location that is not a writable spec-1 repository."""
    try:
        data = await backend.get(keys.REPO)
    except ObjectNotFoundError:
        data = None
    if data is not None:
        found = unpack_repo_object(data, keys.REPO)
        if found.spec_version >= 2:
            logger.error("the repository to migrate must be a spec-1 (icechunk 1.x) repository")
            raise _invalid_version(f"{found.spec_version}.0")
        raise IcechunkError(
            f"cannot migrate: the location already holds an object `{keys.REPO}` (declaring "
            f"format version {found.spec_version}) beside the spec-1 refs; remove it if it is "
            "left over from an earlier attempt, then migrate again",
            kind="invalid-repository-migration",
        )
    if not await backend.exists(keys.SPEC1_MAIN_BRANCH):
        raise IcechunkError(
            "cannot migrate: there is no spec-1 repository here (no branch `main` in the "
            "storage location)",
            kind="invalid-repository-migration",
        )
    if backend.read_only:
        raise IcechunkError(
            "the storage instance used to initialize this repo is read-only, the migration "
            "process needs to make changes in object store",
            kind="read-only-storage",
        )


async def _build(state: RepoState, backend: StorageBackend, concurrency: int) -> RepoInfo:
    """The ``repo`` object of the migrated repository (FORMAT-V2 §13 steps 2 to 5)."""
    refs = await state.refs()
    if "main" not in refs.branches:
        raise IcechunkError(
            "cannot migrate: the repository has no branch `main`",
            kind="invalid-repository-migration",
        )
    branch_names = sorted(refs.branches)
    tag_names = sorted(refs.tags)
    # The reference goes through the tombstones in the order of their keys.
    deleted_names = sorted(refs.deleted_tags, key=keys.tag_tombstone_key)
    branch_tips, tag_targets, deleted_targets = await asyncio.gather(
        asyncio.gather(*(state.branch_tip(name) for name in branch_names)),
        asyncio.gather(*(state.tag_target(name) for name in tag_names)),
        asyncio.gather(*(_deleted_tag_target(backend, name) for name in deleted_names)),
    )
    branches = dict(zip(branch_names, branch_tips, strict=True))
    tags = dict(zip(tag_names, tag_targets, strict=True))
    logger.info(
        "found %d branches, %d tags, %d deleted tags",
        len(branches),
        len(tags),
        len(deleted_names),
    )

    # Tags first, then branches, each in name order: the reference's order of refs.
    roots = [*tag_targets, *branch_tips]
    entries = await _collect(await state.history(), backend, roots, concurrency)
    logger.info("found %d snapshots reachable from a ref", len(entries))

    main = _history_of(branches["main"], entries)
    others = [
        (name, _history_of(branches[name], entries)) for name in branch_names if name != "main"
    ]
    deleted = [
        (name, target)
        for name, target in zip(deleted_names, deleted_targets, strict=True)
        if target is not None
    ]
    times = {sid: entry.flushed_at for sid, entry in entries.items()}
    log = synthesize_ops_log(main, others, list(tags.items()), deleted, times)

    stored = await fetch_config(backend)
    config = config_to_flexbuffer(stored) if stored is not None else None

    now = now_micros()
    if now <= log[0].updated_at:
        raise IcechunkError(
            "update timestamp is invalid, please verify if the machine clock has drifted: "
            f"update time: `{now}`, latest update time: `{log[0].updated_at}`",
            kind="snapshot-timestamp",
        )
    # Every entry fits in the new file (the reference sizes its window to hold them all), and
    # none has a backup path: there is no earlier file to chain to.
    return RepoInfo(
        branches=branches,
        tags=tags,
        deleted_tags=frozenset(refs.deleted_tags),
        snapshots={sid: _snapshot_info(entry) for sid, entry in entries.items()},
        status=RepoStatus(RepoAvailability.ONLINE, main[-1].flushed_at),
        latest_updates=(Update(RepoMigrated(1, 2), now), *log),
        config=config,
    )


async def _read_back(backend: StorageBackend, written: RepoInfo) -> None:
    """Check that ``repo`` reads as the spec-2 object just written."""
    found = unpack_repo_object(await backend.get(keys.REPO), keys.REPO)
    if found.spec_version != 2 or found != written:
        raise IcechunkError(
            f"the `{keys.REPO}` object read back differs from the one written",
            kind="invalid-repository-migration",
        )


async def _delete_v1_refs(backend: StorageBackend) -> None:
    """Delete ``refs/``: ``main`` first, so icechunk 1.x clients stop at once."""
    await backend.delete(keys.SPEC1_MAIN_BRANCH)
    rest = [info.key for info in await backend.list(keys.REFS)]
    if rest:
        await backend.delete_many(rest)
    remaining = await backend.list(keys.REFS)
    if remaining:
        raise IcechunkError(
            f"{len(remaining)} objects under {keys.REFS} could not be deleted (the first: "
            f"{remaining[0].key})",
            kind="storage-other",
        )


async def _undo(backend: StorageBackend, what: str, cause: BaseException) -> IcechunkError:
    """Remove the ``repo`` just written; the error to raise, saying where things stand."""
    try:
        await backend.delete(keys.REPO)
    except (IcechunkError, OSError) as exc:
        return IcechunkError(
            f"{_UNKNOWN_FAILURE} ({what}: {cause}); removing the new `{keys.REPO}` object "
            f"failed as well ({exc}): delete `{keys.REPO}` to return to spec 1, or migrate "
            "again"
        )
    return IcechunkError(f"{_UNKNOWN_FAILURE} ({what}: {cause}); the repository was left as it was")


async def _write(backend: StorageBackend, repo: RepoInfo, compression_level: int) -> None:
    """Create ``repo`` and check it; on failure remove it again (nothing else changed yet)."""
    data = pack_repo_object(repo, compression_level)
    try:
        created = await backend.put_if_absent(keys.REPO, data)
    except (IcechunkError, OSError) as exc:
        # The write may have landed with its answer lost: remove whatever it left.
        raise await _undo(backend, f"writing `{keys.REPO}` failed", exc) from exc
    if not created:
        raise IcechunkError(
            f"cannot migrate: an object `{keys.REPO}` appeared at the repository root while "
            "migrating (another migration running at the same time?); nothing was changed",
            kind="repo-info-updated",
        )
    try:
        await _read_back(backend, repo)
    except (IcechunkError, OSError) as exc:
        logger.error("the migrated repository does not read back as spec 2: %s", exc)
        raise await _undo(backend, "the new repository did not read back", exc) from exc


async def _remove_v1_files(backend: StorageBackend, repo: RepoInfo) -> None:
    """Delete ``refs/`` and ``config.yaml`` once ``repo`` is in place.

    Until ``refs/branch.main/ref.json`` is gone the spec-1 repository is whole, so a failure
    before that removes ``repo`` and leaves everything as it was. After it the repository is
    spec 2 for every reader (``repo`` wins over leftover refs), so a later failure keeps it.
    """
    try:
        await _delete_v1_refs(backend)
        await _read_back(backend, repo)
    except (IcechunkError, OSError) as exc:
        try:
            intact = await backend.exists(keys.SPEC1_MAIN_BRANCH)
        except (IcechunkError, OSError):
            intact = False
        if intact:
            raise await _undo(backend, "deleting the spec-1 refs failed", exc) from exc
        raise IcechunkError(
            f"the repository was migrated to spec 2, but removing its spec-1 files failed "
            f"({exc}); readers of spec 2 ignore what is left under {keys.REFS} and "
            f"{keys.CONFIG}: delete them by hand",
            kind="storage-other",
        ) from exc
    try:
        await backend.delete(keys.CONFIG)
    except (IcechunkError, OSError) as exc:
        # The config lives in `repo` now; a leftover config.yaml is ignored by every reader.
        logger.warning("could not delete %s (%s); continuing anyway", keys.CONFIG, exc)


@progress.operation("upgrade to spec 2")
async def migrate_1_to_2(
    state: RepoState,
    backend: StorageBackend,
    *,
    dry_run: bool,
    delete_unused_v1_files: bool = True,
    prefetch_concurrency: int | None = None,
    compression_level: int = 3,
) -> RepoInfo:
    """Migrate the spec-1 repository at ``backend`` to spec 2 (FORMAT-V2 §13).

    Parameters
    ----------
    state
        The repository's spec-1 state (refs, tombstones, history).
    backend
        Where the repository lives.
    dry_run
        Build the new ``repo`` object but write nothing.
    delete_unused_v1_files
        Delete ``refs/`` and ``config.yaml`` once ``repo`` is written and checked.
    prefetch_concurrency
        Snapshots read at the same time; None for :data:`DEFAULT_PREFETCH_CONCURRENCY`.
    compression_level
        zstd level of the ``repo`` object.

    Returns
    -------
    RepoInfo
        The ``repo`` object, written unless ``dry_run``.

    Raises
    ------
    IcechunkError
        The location holds a spec-2 repository ("invalid repository version (2.0) ..."), no
        repository, or is read-only; a snapshot or ref is damaged; or writing failed (then
        the repository is left as it was, or, if only removing the spec-1 files failed, it is
        spec 2 and the message says so).
    ValueError
        If ``prefetch_concurrency`` is not a positive integer.
    """
    concurrency = (
        DEFAULT_PREFETCH_CONCURRENCY if prefetch_concurrency is None else prefetch_concurrency
    )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"prefetch_concurrency must be a positive integer, got {concurrency!r}")
    await _check_migratable(backend)
    logger.info("starting migration to spec 2")
    repo = await _build(state, backend, concurrency)
    if dry_run:
        logger.info("migration dry run complete; the repository was not modified")
        return repo
    await _write(backend, repo, compression_level)
    if delete_unused_v1_files:
        await _remove_v1_files(backend, repo)
    logger.info("migration complete")
    return repo
