"""Garbage collection: delete objects no branch or tag can reach (FORMAT-V1 §9.7).

Retained = every snapshot in the ancestry of a branch or live tag, every manifest those
snapshots list, every native chunk those manifests point to. Everything else under
``snapshots/``, ``transactions/``, ``manifests/`` and ``chunks/`` that is older than the
threshold is deleted, in that order, so that a crash part-way never leaves a retained object
pointing at a deleted one.

Chunk ids are handled as numpy arrays of 12-byte rows (viewed as ``S12`` for set operations),
and listed object names are decoded in bulk, so a repository with millions of chunks costs a
few array operations rather than a Python object per chunk reference.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from pyicechunk.asset_manager import AssetManager
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.snapshot import ManifestFileInfo
from pyicechunk.ops.reachability import reachable_manifests, reachable_snapshots
from pyicechunk.repo_state import RepoState
from pyicechunk.storage import ObjectInfo, StorageBackend, keys
from pyicechunk.types import GCSummary

__all__ = ["garbage_collect"]

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
        return np.unique(np.concatenate(self._parts))


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
            finally:
                await budget.release(held)

    await asyncio.gather(*(collect(m) for m in manifests))
    return retained.ids()


async def _collect_prefix(
    backend: StorageBackend,
    prefix: str,
    keep: npt.NDArray[np.bytes_],
    older_than: dt.datetime,
    dry_run: bool,
    forget: Callable[[bytes], None] | None,
) -> tuple[int, int]:
    """Delete the unretained objects under ``prefix`` older than the threshold.

    Returns the number of objects and bytes deleted (or that would be, in a dry run).
    """
    listed: list[ObjectInfo] = await backend.list(prefix)
    if not listed:
        return 0, 0
    ids, valid = decode_object_names([info.key[len(prefix) :] for info in listed])
    old = np.fromiter((info.last_modified < older_than for info in listed), bool, len(listed))
    doomed = np.flatnonzero(valid & old & ~np.isin(ids, keep))
    sizes = sum(listed[i].size for i in doomed)
    if forget is not None:
        for i in doomed:
            forget(ids[i].ljust(12, b"\0"))
    if dry_run or not len(doomed):
        return len(doomed), sizes
    keys = [listed[i].key for i in doomed]
    deleted = await asyncio.gather(
        *(
            backend.delete_many(keys[start : start + _DELETE_BATCH])
            for start in range(0, len(keys), _DELETE_BATCH)
        )
    )
    return sum(deleted), sizes


def _as_s12(ids: set[bytes]) -> npt.NDArray[np.bytes_]:
    return np.array(sorted(ids), dtype="S12")


async def garbage_collect(
    state: RepoState,
    assets: AssetManager,
    delete_object_older_than: dt.datetime,
    *,
    dry_run: bool = False,
    max_compressed_manifest_mem_bytes: int = 512 * 1024 * 1024,
    max_concurrent_manifest_fetches: int = 500,
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
        Count what would be deleted, and delete nothing.
    max_compressed_manifest_mem_bytes
        Upper bound on the compressed size of the manifests being read at the same time.
    max_concurrent_manifest_fetches
        Upper bound on concurrent manifest reads.

    Returns
    -------
    GCSummary
        Objects and bytes deleted per kind.

    Raises
    ------
    IcechunkError
        The storage is read-only, or a ref, snapshot or manifest cannot be read.
    """
    backend = assets.backend
    if backend.read_only:
        raise IcechunkError(
            "the storage used by this Icechunk repository is read-only: Cannot garbage collect"
        )
    snapshots = await reachable_snapshots(state)
    keep_snapshots = _as_s12({s.id for s in snapshots})
    manifests = reachable_manifests(snapshots)
    keep_manifests = _as_s12(set(manifests))
    keep_chunks = await _retained_chunks(
        assets,
        list(manifests.values()),
        max_concurrent_manifest_fetches,
        max_compressed_manifest_mem_bytes,
    )
    # Snapshots before transaction logs before manifests before chunks: whatever survives an
    # interruption still only points at objects that exist.
    counts: list[int] = []
    total_bytes = 0
    for prefix, keep, forget in (
        (keys.SNAPSHOTS, keep_snapshots, assets.forget_snapshot),
        (keys.TRANSACTIONS, keep_snapshots, assets.forget_transaction_log),
        (keys.MANIFESTS, keep_manifests, assets.forget_manifest),
        (keys.CHUNKS, keep_chunks, None),
    ):
        count, size = await _collect_prefix(
            backend, prefix, keep, delete_object_older_than, dry_run, forget
        )
        counts.append(count)
        total_bytes += size
    snapshots_deleted, transaction_logs_deleted, manifests_deleted, chunks_deleted = counts
    return GCSummary(
        bytes_deleted=total_bytes,
        chunks_deleted=chunks_deleted,
        manifests_deleted=manifests_deleted,
        snapshots_deleted=snapshots_deleted,
        transaction_logs_deleted=transaction_logs_deleted,
    )
