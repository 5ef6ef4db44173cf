"""Garbage collection: delete objects no branch or tag can reach (FORMAT-V1 §9.7, V2 §12.3).

Retained = every snapshot in the ancestry of a branch or live tag, every manifest those
snapshots list, every native chunk those manifests point to. Everything else under
``snapshots/``, ``transactions/``, ``manifests/`` and ``chunks/`` that is older than the
threshold is deleted, in that order, so that a crash part-way never leaves a retained object
pointing at a deleted one.

Spec 2 lists every snapshot in ``repo``, so GC edits that list before deleting anything, as
icechunk 2.3.0 does:

* snapshots whose file is not older than the threshold (or not listed yet) are retained too,
  with their manifests and chunks, though no ref reaches them;
* one update of ``repo`` (recording ``GCRan``) unlists the others; a retained snapshot whose
  parent goes is re-parented to its nearest retained ancestor, the ones in between joining its
  pruned logs; a snapshot that appeared since (a concurrent commit) stays, with its manifests
  and chunks; if one appeared on top of a snapshot being unlisted, or a ref moved onto one, the
  whole collection starts again;
* transaction logs named in any pruned list are kept (so after an expiration the logs of the
  expired snapshots survive their snapshot files); ``overwritten/`` is never touched, since
  the ops log chains through it.

Chunk ids are handled as numpy arrays of 12-byte rows (viewed as ``S12`` for set operations),
and listed object names are decoded in bulk, so a repository with millions of chunks costs a
few array operations rather than a Python object per chunk reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from pyicechunk import progress
from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID
from pyicechunk.format.repo_info import GCRan, RepoInfo, SnapshotInfo, UpdateAction
from pyicechunk.format.snapshot import ManifestFileInfo
from pyicechunk.ops.expiration import collapse_ancestors
from pyicechunk.ops.reachability import (
    fetch_snapshots,
    listed_reachable,
    reachable_manifests,
    reachable_snapshots,
)
from pyicechunk.repo_state import RepoState
from pyicechunk.repo_state.repo_object import RetrySchedule, read_only_error
from pyicechunk.storage import ObjectInfo, StorageBackend, keys
from pyicechunk.types import GCSummary

__all__ = ["garbage_collect"]

logger = logging.getLogger(__name__)

_ID_CHARS = 20  # text length of a 12-byte id
_DELETE_BATCH = 1000
# Once this many retained ids pile up unmerged, deduplicate them to bound memory.
_COMPACT_ROWS = 4_000_000

# Crockford symbol value per ASCII byte; 255 marks bytes outside the alphabet. Lenient like
# format.ids.decode_id: any case, and I/L read as 1, O as 0.
_SYMBOL = np.full(256, 255, dtype=np.uint8)
for _value, _char in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ"):
    _SYMBOL[ord(_char)] = _SYMBOL[ord(_char.lower())] = _value
for _alias, _value in (("I", 1), ("L", 1), ("O", 0)):
    _SYMBOL[ord(_alias)] = _SYMBOL[ord(_alias.lower())] = _value


def decode_object_names(
    names: Sequence[str],
) -> tuple[npt.NDArray[np.bytes_], npt.NDArray[np.bool_]]:
    """Decode object names as 12-byte ids, all at once.

    Returns
    -------
    ids
        ``S12`` array with one entry per name (meaningless where ``valid`` is False).
    valid
        Which names are the text form of an id; the others are not Icechunk objects.
    """
    n = len(names)
    valid = np.fromiter(map(len, names), np.int64, n) == _ID_CHARS
    joined = "".join(names)
    if not joined.isascii():
        valid &= np.fromiter(map(str.isascii, names), bool, n)
    good = names if valid.all() else list(itertools.compress(names, valid.tolist()))
    raw = np.frombuffer("".join(good).encode("ascii"), dtype=np.uint8).reshape(-1, _ID_CHARS)
    if len(good) == n:
        text = raw
    else:
        text = np.zeros((n, _ID_CHARS), dtype=np.uint8)
        text[valid] = raw
    symbols = _SYMBOL[text]
    valid &= (symbols != 255).all(axis=1)
    # 20 symbols x 5 bits = 100 bits; the id is the first 96 (the last 4 are padding). Eight
    # symbols make 40 bits = 5 whole bytes, so build the id from 5 + 5 + 2 bytes.
    wide = np.ascontiguousarray(symbols.T).astype(np.uint64)
    ids = np.empty((n, 12), dtype=np.uint8)
    for group in range(3):
        first = 8 * group
        count = min(8, _ID_CHARS - first)
        value = np.zeros(n, dtype=np.uint64)
        for k in range(count):
            value = (value << np.uint64(5)) | wide[first + k]
        nbytes = 5 * count // 8
        value >>= np.uint64(5 * count - 8 * nbytes)
        for b in range(nbytes):
            shift = np.uint64(8 * (nbytes - 1 - b))
            ids[:, 5 * group + b] = (value >> shift) & np.uint64(0xFF)
    return ids.view("S12").ravel(), valid


def _sorted_unique(ids: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bytes_]:
    """The distinct values of a 1-d array, sorted: ``np.unique``, without its first-use cost.

    ``np.unique`` imports ``numpy.ma`` the first time it runs (about 25 ms), which a garbage
    collection in a fresh process would pay for nothing.
    """
    ordered = np.sort(ids)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]


def _contained(
    ids: npt.NDArray[np.bytes_], ordered: npt.NDArray[np.bytes_]
) -> npt.NDArray[np.bool_]:
    """Which of ``ids`` are in the sorted array ``ordered`` (``np.isin``, by binary search;
    ``np.isin`` would sort both and deduplicate with ``np.unique``)."""
    if not len(ordered):
        return np.zeros(len(ids), dtype=bool)
    at = np.searchsorted(ordered, ids).clip(max=len(ordered) - 1)
    found: npt.NDArray[np.bool_] = ordered[at] == ids
    return found


_ONE_SECOND = dt.timedelta(seconds=1)


def written_before(info: ObjectInfo, threshold: dt.datetime, *, spec2: bool = True) -> bool:
    """Whether the listed object was certainly written before ``threshold``.

    Object stores that give times in whole seconds (S3) truncate them: the write happened
    somewhere in that second. icechunk 2.3.0 then counts the object as older than the
    threshold only if the whole second is; icechunk 1.1 compared the truncated time as it is,
    which ``spec2=False`` keeps for spec-1 repositories. Times with a fraction are taken as
    they are.
    """
    written = info.last_modified
    if spec2 and written.microsecond == 0:
        return written + _ONE_SECOND <= threshold
    return written < threshold


class _ByteBudget:
    """Lets fetches proceed while the compressed bytes in flight stay under a limit."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, n: int) -> int:
        # A manifest larger than the whole budget still runs, alone.
        n = min(max(1, n), self._limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self._used + n <= self._limit)
            self._used += n
        return n

    async def release(self, n: int) -> None:
        async with self._changed:
            self._used -= n
            self._changed.notify_all()


class _RetainedChunks:
    """Native chunk ids kept alive by reachable manifests, as a sorted unique ``S12`` array."""

    def __init__(self) -> None:
        self._parts: list[npt.NDArray[np.bytes_]] = []
        self._pending = 0

    def add(self, ids: npt.NDArray[np.uint8]) -> None:
        if not len(ids):
            return
        self._parts.append(np.ascontiguousarray(ids).view("S12").ravel())
        self._pending += len(ids)
        if self._pending > _COMPACT_ROWS:
            self._parts = [self.ids()]
            self._pending = 0

    def ids(self) -> npt.NDArray[np.bytes_]:
        if not self._parts:
            return np.empty(0, dtype="S12")
        return _sorted_unique(np.concatenate(self._parts))


async def _retained_chunks(
    assets: AssetManager,
    manifests: Sequence[ManifestFileInfo],
    max_concurrent_fetches: int,
    max_compressed_bytes: int,
) -> npt.NDArray[np.bytes_]:
    retained = _RetainedChunks()
    slots = asyncio.Semaphore(max(1, max_concurrent_fetches))
    budget = _ByteBudget(max_compressed_bytes)

    async def collect(info: ManifestFileInfo) -> None:
        async with slots:
            held = await budget.acquire(info.size_bytes)
            try:
                manifest = await assets.fetch_manifest(info.id, info.size_bytes)
                for array in manifest.arrays:
                    retained.add(array.native_chunk_ids())
                progress.advance("reading manifests", total=len(manifests))
            finally:
                await budget.release(held)

    await asyncio.gather(*(collect(m) for m in manifests))
    return retained.ids()


@dataclass
class _Deleted:
    """What one delete phase did: objects and bytes deleted, objects it failed to delete."""

    count: int = 0
    size: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class _Deleter:
    """Sends a collection's delete requests: a bounded number at a time, giving up with an
    error after too many failures in a row (isolated ones are the caller's to report)."""

    def __init__(self, backend: StorageBackend, max_concurrent: int, max_failures: int) -> None:
        self._backend = backend
        self._slots = asyncio.Semaphore(max(1, max_concurrent))
        self._max_failures = max(1, max_failures)
        self._failures_in_a_row = 0

    async def _request(self, call: Callable[[], Awaitable[object]]) -> bool:
        async with self._slots:
            try:
                await call()
            except (IcechunkError, OSError) as exc:
                self._failures_in_a_row += 1
                if self._failures_in_a_row >= self._max_failures:
                    raise IcechunkError(
                        f"garbage collection gave up: {self._failures_in_a_row} delete requests "
                        f"failed in a row, the last with: {exc}; the repository is intact, run "
                        "it again once the storage accepts deletes",
                        kind="gc-deletes-failing",
                    ) from exc
                logger.warning("a delete request failed: %s", exc)
                return False
        self._failures_in_a_row = 0
        return True

    async def delete(self, batch: Sequence[str]) -> tuple[int, set[str]]:
        """Delete ``batch``: how many objects were deleted, and the keys that could not be.

        A failed bulk delete is retried key by key, to delete what can be and learn what
        cannot.
        """
        deleted = [0]

        async def bulk() -> None:
            deleted[0] = await self._backend.delete_many(batch)

        if await self._request(bulk):
            return deleted[0], set()
        refused: set[str] = set()
        for key in batch:
            if not await self._request(functools.partial(self._backend.delete, key)):
                refused.add(key)
        return len(batch) - len(refused), refused


async def _collect_prefix(
    deleter: _Deleter,
    prefix: str,
    keep: npt.NDArray[np.bytes_],  # sorted
    older_than: dt.datetime,
    dry_run: bool,
    forget: Callable[[bytes], None] | None,
    listed: list[ObjectInfo],
    spec2: bool,
) -> _Deleted:
    """Delete the unretained objects under ``prefix`` older than the threshold.

    ``listed`` is the listing of ``prefix`` to choose from; ``spec2`` picks the rule for
    whole-second times (:func:`written_before`). Counts what was deleted (or would be, in a
    dry run), and what could not be, with one message per batch that failed, in icechunk
    2.3.0's words.
    """
    if not listed:
        return _Deleted()
    ids, valid = decode_object_names([info.key[len(prefix) :] for info in listed])
    old = np.fromiter(
        (written_before(info, older_than, spec2=spec2) for info in listed), bool, len(listed)
    )
    doomed = np.flatnonzero(valid & old & ~_contained(ids, keep))
    sizes = {listed[i].key: listed[i].size for i in doomed}
    if forget is not None:
        for i in doomed:
            forget(ids[i].ljust(12, b"\0"))
    if dry_run or not len(doomed):
        return _Deleted(len(doomed), sum(sizes.values()))
    keys = list(sizes)
    batches = [keys[start : start + _DELETE_BATCH] for start in range(0, len(keys), _DELETE_BATCH)]
    # Every batch runs to its end before an error is raised, so none is left running.
    step = f"deleting {prefix.strip('/')}"
    outcomes = await asyncio.gather(
        *(progress.tracked(deleter.delete(b), step, len(b), total=len(keys)) for b in batches),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    results = cast("list[tuple[int, set[str]]]", outcomes)
    out = _Deleted()
    for batch, (deleted, refused) in zip(batches, results, strict=True):
        out.count += deleted
        out.size += sum(sizes[key] for key in batch if key not in refused)
        if refused:
            out.failed += len(refused)
            out.errors.append(
                f"{len(refused)} of {len(batch)} objects not deleted (per-key errors reported "
                "by storage)"
            )
    return out


def _as_s12(ids: Iterable[bytes]) -> npt.NDArray[np.bytes_]:
    return np.sort(np.array(list(set(ids)), dtype="S12"))


@dataclass
class _Retained:
    """What a collection keeps: snapshot files, transaction logs, manifests and chunks."""

    snapshots: set[bytes]
    transaction_logs: set[bytes]
    manifests: dict[bytes, ManifestFileInfo]
    chunks: npt.NDArray[np.bytes_]
    snapshot_listing: list[ObjectInfo] | None = None
    """The listing of ``snapshots/`` the plan was made from, if it needed one."""
    spec2: bool = False
    """Whether the plan is for a spec-2 repository (see :func:`written_before`)."""


@dataclass(frozen=True)
class _Limits:
    max_concurrent_manifest_fetches: int
    max_compressed_manifest_mem_bytes: int


async def _retain(
    assets: AssetManager, snapshot_ids: Iterable[bytes], limits: _Limits
) -> tuple[dict[bytes, ManifestFileInfo], npt.NDArray[np.bytes_]]:
    """The manifests and native chunks the given snapshots reference."""
    manifests = reachable_manifests(await fetch_snapshots(assets, snapshot_ids))
    chunks = await _retained_chunks(
        assets,
        list(manifests.values()),
        limits.max_concurrent_manifest_fetches,
        limits.max_compressed_manifest_mem_bytes,
    )
    return manifests, chunks


class _Restart(Exception):
    """The snapshot list changed under the collection in a way that needs a fresh plan."""


def _unlist(
    current: RepoInfo, keep: set[bytes], drop: set[bytes], appeared: set[bytes]
) -> RepoInfo:
    """``current`` without the dropped snapshots (FORMAT-V2 §12.3).

    A kept snapshot whose parent is dropped moves onto its nearest kept ancestor (or the
    initial snapshot), the ones in between joining its pruned logs. A snapshot neither kept nor
    dropped appeared after the plan was made: it stays, and is added to ``appeared``.

    Raises
    ------
    _Restart
        A snapshot appeared on top of a dropped one, or a ref points at a dropped one.
    """
    appeared.clear()
    snapshots: dict[bytes, SnapshotInfo] = {}
    for sid, entry in current.snapshots.items():
        if sid in drop:
            continue
        parent_dropped = entry.parent_id is not None and entry.parent_id in drop
        if sid not in keep:
            if parent_dropped:
                raise _Restart
            appeared.add(sid)
        elif parent_dropped:
            boundary, pruned = collapse_ancestors(current, entry, lambda a: a.id in keep)
            entry = dataclasses.replace(
                entry,
                parent_id=INITIAL_SNAPSHOT_ID if boundary is None else boundary,
                pruned_ancestor_tx_logs=pruned,
            )
        snapshots[sid] = entry
    for target in (*current.tags.values(), *current.branches.values()):
        if target not in snapshots:
            raise _Restart
    return dataclasses.replace(current, snapshots=snapshots)


async def _plan_listed(
    state: RepoState,
    assets: AssetManager,
    older_than: dt.datetime,
    dry_run: bool,
    limits: _Limits,
) -> _Retained:
    """One attempt at what a spec-2 collection keeps; unlists the rest unless ``dry_run``.

    Raises
    ------
    _Restart
        See :func:`_unlist`; nothing was changed.
    """
    # Listed before `repo` is read: a snapshot committed in between is then missing from the
    # listing, and a snapshot missing from the listing is retained (it cannot be deleted now).
    listing = await assets.backend.list(keys.SNAPSHOTS)
    names = [info.key[len(keys.SNAPSHOTS) :] for info in listing]
    ids, valid = decode_object_names(names)
    old = {
        bytes(ids[i]).ljust(12, b"\0")
        for i in np.flatnonzero(valid)
        if written_before(listing[i], older_than)
    }
    info = await state.repo_info()
    assert info is not None
    if not info.status.is_online:
        raise read_only_error(info.status, "Cannot garbage collect")
    keep: set[bytes] = set(listed_reachable(info))
    keep.update(sid for sid in info.snapshots if sid not in old)
    manifests, chunks = await _retain(assets, keep, limits)
    source = info
    if not dry_run:
        drop = set(info.snapshots) - keep
        appeared: set[bytes] = set()

        def edit(current: RepoInfo) -> tuple[RepoInfo, UpdateAction]:
            return _unlist(current, keep, drop, appeared), GCRan()

        source = await state.update_repo_info(edit)
        if appeared:
            # Beyond the reference, which keeps only their snapshot files and logs: what a
            # commit that landed meanwhile references stays too, however old its objects.
            logger.info("%d snapshots appeared during garbage collection; kept", len(appeared))
            more_manifests, more_chunks = await _retain(assets, appeared, limits)
            keep |= appeared
            manifests = {**more_manifests, **manifests}
            chunks = _sorted_unique(np.concatenate([chunks, more_chunks]))
    transaction_logs = set(keep)
    for entry in source.snapshots.values():
        transaction_logs.update(entry.pruned_ancestor_tx_logs)
    return _Retained(keep, transaction_logs, manifests, chunks, listing, spec2=True)


async def _plan(
    state: RepoState,
    assets: AssetManager,
    older_than: dt.datetime,
    dry_run: bool,
    limits: _Limits,
    retries: RetrySchedule,
) -> _Retained:
    """What the collection keeps (spec 2: after unlisting the rest, restarting as needed)."""
    if state.spec_version < 2:
        snapshots = await reachable_snapshots(state)
        keep = {s.id for s in snapshots}
        manifests = reachable_manifests(snapshots)
        chunks = await _retained_chunks(
            assets,
            list(manifests.values()),
            limits.max_concurrent_manifest_fetches,
            limits.max_compressed_manifest_mem_bytes,
        )
        return _Retained(keep, keep, manifests, chunks)
    starts = 0
    for delay in itertools.chain([0.0], retries.delays()):
        if delay:
            await asyncio.sleep(delay)
        starts += 1
        try:
            return await _plan_listed(state, assets, older_than, dry_run, limits)
        except _Restart:
            logger.info("the repository changed during garbage collection; starting again")
    raise IcechunkError(
        f"garbage collection was started {starts} times: branches, tags or new snapshots "
        "kept landing on snapshots it was removing; try again later",
        kind="update-attempts-exhausted",
    )


@progress.operation("garbage collection")
async def garbage_collect(
    state: RepoState,
    assets: AssetManager,
    delete_object_older_than: dt.datetime,
    *,
    dry_run: bool = False,
    max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
    max_concurrent_manifest_fetches: int = 500,
    max_concurrent_deletes: int = 10,
    max_consecutive_delete_failures: int = 50,
    retries: RetrySchedule | None = None,
) -> GCSummary:
    """Delete every object that no branch or tag reaches and that is older than the threshold.

    Parameters
    ----------
    state
        The repository's state (its refs and history).
    assets
        The repository's asset manager: objects are listed and deleted through its backend,
        and dropped from its caches.
    delete_object_older_than
        Timezone-aware threshold: only objects last modified strictly before it are deleted.
    dry_run
        Count what would be deleted, and delete nothing (on spec 2, ``repo`` is not changed).
    max_compressed_manifest_mem_bytes
        Upper bound on the compressed size of the manifests being read at the same time.
    max_concurrent_manifest_fetches
        Upper bound on concurrent manifest reads.
    max_concurrent_deletes
        Upper bound on delete requests in flight.
    max_consecutive_delete_failures
        The collection gives up with an error after this many delete requests failed in a
        row (isolated failures are counted in the summary).
    retries
        How a spec-2 collection that must start again waits (``repo_update_retries``).

    Returns
    -------
    GCSummary
        Objects and bytes deleted per kind.

    Raises
    ------
    IcechunkError
        The storage or the repository's status is read-only, a ref, snapshot or manifest
        cannot be read, or (spec 2) the collection had to start again too many times.
    """
    backend = assets.backend
    if backend.read_only:
        raise IcechunkError(
            "the storage used by this Icechunk repository is read-only: Cannot garbage collect",
            kind="read-only-storage",
        )
    limits = _Limits(max_concurrent_manifest_fetches, max_compressed_manifest_mem_bytes)
    # The prefixes are listed while the plan is made (a spec-2 plan lists snapshots itself,
    # before it reads `repo`). Listing early is safe: an object written after its listing is
    # simply not a candidate, and a later collection finds it.
    prefixes = [keys.TRANSACTIONS, keys.MANIFESTS, keys.CHUNKS]
    if state.spec_version < 2:
        prefixes.insert(0, keys.SNAPSHOTS)
    listings = [asyncio.ensure_future(backend.list(prefix)) for prefix in prefixes]
    try:
        plan = await _plan(
            state, assets, delete_object_older_than, dry_run, limits, retries or RetrySchedule()
        )
    except BaseException:
        for task in listings:
            task.cancel()
        await asyncio.gather(*listings, return_exceptions=True)
        raise
    # Every listing ends before one's error is raised, so none is left running unobserved.
    found = await asyncio.gather(*listings, return_exceptions=True)
    for result in found:
        if isinstance(result, BaseException):
            raise result
    listed = dict(zip(prefixes, cast("list[list[ObjectInfo]]", found), strict=True))
    if plan.snapshot_listing is not None:
        listed[keys.SNAPSHOTS] = plan.snapshot_listing
    # Snapshots before transaction logs before manifests before chunks: whatever survives an
    # interruption still only points at objects that exist. For the same reason icechunk 2.3.0
    # skips the later phases once objects of one could not be deleted (a snapshot it failed
    # to delete may still name manifests); icechunk 1.1 went on, and so does spec 1 here.
    phases = (
        ("snapshots", keys.SNAPSHOTS, _as_s12(plan.snapshots), assets.forget_snapshot),
        (
            "transaction_logs",
            keys.TRANSACTIONS,
            _as_s12(plan.transaction_logs),
            assets.forget_transaction_log,
        ),
        ("manifests", keys.MANIFESTS, _as_s12(plan.manifests), assets.forget_manifest),
        ("chunks", keys.CHUNKS, plan.chunks, None),
    )
    deleter = _Deleter(backend, max_concurrent_deletes, max_consecutive_delete_failures)
    done: dict[str, _Deleted] = {}
    skipped: list[str] = []
    for name, prefix, keep, forget in phases:
        if plan.spec2 and any(d.failed for d in done.values()):
            skipped.append(name)
            continue
        done[name] = await _collect_prefix(
            deleter,
            prefix,
            keep,
            delete_object_older_than,
            dry_run,
            forget,
            listed[prefix],
            plan.spec2,
        )
    nothing = _Deleted()
    return GCSummary(
        bytes_deleted=sum(d.size for d in done.values()),
        chunks_deleted=done.get("chunks", nothing).count,
        manifests_deleted=done.get("manifests", nothing).count,
        snapshots_deleted=done.get("snapshots", nothing).count,
        transaction_logs_deleted=done.get("transaction_logs", nothing).count,
        objects_failed_to_delete=sum(d.failed for d in done.values()),
        delete_errors=[e for d in done.values() for e in d.errors],
        skipped_phases=skipped,
    )
