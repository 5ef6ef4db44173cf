"""Typed reads and writes of repository objects, with bounded caches.

The asset manager is the one reader and writer of the immutable objects (snapshots, manifests,
transaction logs, chunks; their keys come from :mod:`pyicechunk.storage.keys`) and of the binary
envelope. It turns storage bytes into format objects and back, and caches the immutable ones.
Every object is decoded by the spec version its own header names (a migrated repository mixes
spec-1 and spec-2 objects); new objects are written in the repository's spec version.
Large encode and decode work runs in a worker thread so the event loop stays responsive (zstd
and numpy release the GIL for the heavy parts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pyicechunk._logging import TRACE
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.format.header import SPEC_V1, FileType, encode_object, open_object
from pyicechunk.format.ids import encode_id
from pyicechunk.format.manifest import (
    ArrayManifest,
    LocationCompression,
    Manifest,
    decode_manifest,
    encode_manifest,
)
from pyicechunk.format.snapshot import Snapshot, decode_snapshot, encode_snapshot
from pyicechunk.format.transaction_log import (
    TransactionLog,
    decode_transaction_log,
    encode_transaction_log,
)
from pyicechunk.storage import StorageBackend
from pyicechunk.storage.byte_range import ByteRequest, RangeByteRequest, narrow
from pyicechunk.storage.keys import chunk_key, manifest_key, snapshot_key, transaction_key

logger = logging.getLogger(__name__)

__all__ = ["AssetManager"]

K = TypeVar("K")
V = TypeVar("V")

# Work on buffers larger than this is moved off the event loop.
_OFFLOAD_BYTES = 256 * 1024


class _WeightedLRU(Generic[K, V]):
    """An LRU cache bounded by the summed weight of its values (nodes, chunk refs, ...)."""

    def __init__(self, capacity: int, weigh: Callable[[V], int]) -> None:
        self._capacity = capacity
        self._weigh = weigh
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: K, value: V) -> None:
        weight = max(1, self._weigh(value))
        if weight > self._capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old[1]
            self._items[key] = (value, weight)
            self._total += weight
            while self._total > self._capacity:
                _, (_, w) = self._items.popitem(last=False)
                self._total -= w

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._items

    def discard(self, key: K) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old[1]


async def _maybe_offload(size: int, fn: Callable[[], V]) -> V:
    if size >= _OFFLOAD_BYTES:
        return await asyncio.to_thread(fn)
    return fn()


def _decode(data: bytes, file_type: FileType, key: str, decoder: Callable[[bytes, int], V]) -> V:
    """Check the header, then decode the content by the spec version the header names."""
    opened = open_object(data, file_type, key)
    try:
        return decoder(opened.content, opened.spec_version)
    except IcechunkError as e:
        if key in e.message:
            raise
        raise IcechunkError(f"cannot read {key}: {e.message}", kind=e.kind) from e


class _Identified(Protocol):
    @property
    def id(self) -> bytes: ...


Obj = TypeVar("Obj", bound=_Identified)


async def _decode_checked(
    data: bytes,
    key: str,
    file_type: FileType,
    decoder: Callable[[bytes, int], Obj],
    *,
    holds: str,
    wanted: bytes,
) -> Obj:
    """Decode the object ``data`` read from ``key`` (off the event loop when it is large) and
    check that it is object ``wanted`` (``holds`` names what it should be in the error)."""
    # Snapshots take about twice the decoding work per byte of manifests and logs.
    work = len(data) * (8 if file_type == FileType.SNAPSHOT else 4)
    logger.debug(
        "Downloaded asset, file_type: %s, key: %s, size_bytes: %d", file_type.name, key, len(data)
    )
    found = await _maybe_offload(work, lambda: _decode(data, file_type, key, decoder))
    _check_id(key, holds, found.id, wanted)
    return found


class AssetManager:
    """Reads and writes snapshots, manifests, transaction logs and chunks of one repository.

    Parameters
    ----------
    backend
        The storage the repository lives in.
    compression_level
        zstd level for snapshots, manifests and transaction logs.
    num_snapshot_nodes, num_chunk_refs, num_transaction_changes
        Cache capacities, as in ``CachingConfig``.
    spec_version
        The layout of the objects written (the repository's format version).
    location_compression
        When spec-2 manifests compress their virtual locations; None never compresses.
    """

    def __init__(
        self,
        backend: StorageBackend,
        *,
        compression_level: int = 3,
        num_snapshot_nodes: int = 500_000,
        num_chunk_refs: int = 15_000_000,
        num_transaction_changes: int = 0,
        spec_version: int = SPEC_V1,
        location_compression: LocationCompression | None = None,
    ) -> None:
        self.backend = backend
        self.compression_level = compression_level
        self._num_snapshot_nodes = num_snapshot_nodes
        self._num_chunk_refs = num_chunk_refs
        self._cache_warned: set[str] = set()
        self.spec_version = spec_version
        self._location_compression = location_compression
        self._snapshots: _WeightedLRU[bytes, Snapshot] = _WeightedLRU(
            num_snapshot_nodes, lambda s: len(s.nodes) + 1
        )
        self._manifests: _WeightedLRU[bytes, Manifest] = _WeightedLRU(
            num_chunk_refs, lambda m: m.num_chunk_refs()
        )
        self._transactions: _WeightedLRU[bytes, TransactionLog] = _WeightedLRU(
            num_transaction_changes, _tx_weight
        )
        # The manifests being read from storage, per event loop, for their concurrent readers.
        self._reading: dict[
            tuple[asyncio.AbstractEventLoop, bytes], asyncio.Future[Manifest | None]
        ] = {}
        self._reading_lock = threading.Lock()

    # -- snapshots ---------------------------------------------------------------------------

    async def fetch_snapshot(self, snapshot_id: bytes) -> Snapshot:
        """Read a snapshot; raises ObjectNotFoundError when it does not exist."""
        cached = self._snapshots.get(snapshot_id)
        if cached is not None:
            return cached
        key = snapshot_key(snapshot_id)
        data = await self.backend.get(key)
        snapshot = await _decode_checked(
            data, key, FileType.SNAPSHOT, decode_snapshot, holds="snapshot", wanted=snapshot_id
        )
        self._warn_if_cache_small(
            "snapshot", len(snapshot.nodes), "nodes", self._num_snapshot_nodes, 5
        )
        self._snapshots.put(snapshot_id, snapshot)
        return snapshot

    def cached_snapshot(self, snapshot_id: bytes) -> Snapshot | None:
        """The snapshot if it is in the cache (read or written here lately), else None."""
        return self._snapshots.get(snapshot_id)

    async def snapshot_exists(self, snapshot_id: bytes) -> bool:
        if self._snapshots.get(snapshot_id) is not None:
            return True
        return await self.backend.exists(snapshot_key(snapshot_id))

    async def write_snapshot(self, snapshot: Snapshot) -> None:
        """Write a snapshot in the repository's layout.

        Spec 2 does not store the parent (the ``repo`` object lists it), so the cached copy
        drops it too: a snapshot reads the same whether it comes from the cache or storage.
        """
        data = await _maybe_offload(
            len(snapshot.nodes) * 256,
            lambda: self._encode(FileType.SNAPSHOT, encode_snapshot, snapshot),
        )
        logger.debug("Writing snapshot, id: %s, size_bytes: %d", encode_id(snapshot.id), len(data))
        await self.backend.put(snapshot_key(snapshot.id), data)
        if self.spec_version != SPEC_V1 and snapshot.parent_id is not None:
            snapshot = dataclasses.replace(snapshot, parent_id=None)
        self._snapshots.put(snapshot.id, snapshot)

    def _warn_if_cache_small(
        self, what: str, weight: int, unit: str, capacity: int, fraction: int
    ) -> None:
        # Once per repository, when one object fills more than 1/fraction of its cache: the
        # reference's thresholds are half the manifest cache and a fifth of the snapshot cache.
        if weight > capacity // fraction and what not in self._cache_warned:
            self._cache_warned.add(what)
            field = "num_chunk_refs" if what == "manifest" else "num_snapshot_nodes"
            logger.warning(
                "A %s with %d %s is being loaded into a cache that can only keep %d; consider "
                "a larger cache through the %s field of CachingConfig",
                what,
                weight,
                unit,
                capacity,
                field,
            )

    # -- manifests ---------------------------------------------------------------------------

    async def fetch_manifest(self, manifest_id: bytes, size_bytes: int) -> Manifest:
        """Read a manifest through the cache; concurrent reads of one manifest on one event
        loop (a session's chunk reads, the preload task) share one storage read.

        Readers on different loops do not wait for each other: a loop can be blocked waiting
        for a helper loop (see :mod:`pyicechunk._sync`), and a read it owns would never end.
        """
        key = (asyncio.get_running_loop(), manifest_id)
        while True:
            cached = self._manifests.get(manifest_id)
            if cached is not None:
                return cached
            with self._reading_lock:
                pending = self._reading.get(key)
                if pending is None:
                    done: asyncio.Future[Manifest | None] = key[0].create_future()
                    self._reading[key] = done
                    break
            # Shielded: a cancelled waiter must not cancel the shared read. None means the
            # read failed; this caller then tries (and fails) on its own.
            found = await asyncio.shield(pending)
            if found is not None:
                return found
        manifest = None
        try:
            manifest = await self._read_manifest(manifest_id, size_bytes)
            return manifest
        finally:
            with self._reading_lock:
                del self._reading[key]
            done.set_result(manifest)

    def has_manifest(self, manifest_id: bytes) -> bool:
        """Whether the manifest is in the cache (asking does not keep it there longer)."""
        return manifest_id in self._manifests

    async def _read_manifest(self, manifest_id: bytes, size_bytes: int) -> Manifest:
        key = manifest_key(manifest_id)
        if size_bytes > 0:
            data = await self.backend.get(key, RangeByteRequest(0, size_bytes))
        else:
            data = await self.backend.get(key)
        manifest = await _decode_checked(
            data, key, FileType.MANIFEST, _decode_manifest, holds="manifest", wanted=manifest_id
        )
        self._warn_if_cache_small(
            "manifest", manifest.num_chunk_refs(), "chunk references", self._num_chunk_refs, 2
        )
        self._manifests.put(manifest_id, manifest)
        return manifest

    async def write_manifests(
        self, manifests: Sequence[tuple[bytes, Sequence[ArrayManifest]]]
    ) -> list[int]:
        """Write manifests (id and arrays each) and return their sizes in bytes (header
        included).

        All are encoded first (the large ones in worker threads, at once), then stored in one
        batch: a commit's many small manifests cost one storage round, not one each.
        """
        loop = asyncio.get_running_loop()
        datas: list[bytes] = []
        large: dict[int, asyncio.Future[bytes]] = {}
        for manifest_id, arrays in manifests:
            encode = functools.partial(self._encode_manifest, manifest_id, arrays)
            if sum(len(a) for a in arrays) * 32 >= _OFFLOAD_BYTES:
                large[len(datas)] = loop.run_in_executor(None, encode)
                datas.append(b"")
            else:
                datas.append(encode())
        for i, data in zip(large, await asyncio.gather(*large.values()), strict=True):
            datas[i] = data
        for (manifest_id, _), data in zip(manifests, datas, strict=True):
            logger.debug(
                "Writing manifest, id: %s, size_bytes: %d", encode_id(manifest_id), len(data)
            )
        await self.backend.put_many(
            [(manifest_key(m), data) for (m, _), data in zip(manifests, datas, strict=True)]
        )
        for manifest_id, arrays in manifests:
            self._manifests.put(manifest_id, Manifest(manifest_id, list(arrays)))
        return [len(data) for data in datas]

    def _encode_manifest(self, manifest_id: bytes, arrays: Sequence[ArrayManifest]) -> bytes:
        content = encode_manifest(
            manifest_id, arrays, self.spec_version, self._location_compression
        )
        return encode_object(FileType.MANIFEST, content, self.compression_level, self.spec_version)

    # -- transaction logs --------------------------------------------------------------------

    async def fetch_transaction_log(
        self, snapshot: Snapshot, parent: Snapshot | None
    ) -> TransactionLog:
        """Read the transaction log of ``snapshot``, checked against it and ``parent``.

        Parameters
        ----------
        snapshot
            The snapshot the log belongs to.
        parent
            The snapshot the log describes the step from, or None when the history cannot
            vouch for that step (the parent is a root, which expiration may have made it):
            then the nodes the log deletes are not checked.

        Raises
        ------
        IcechunkError
            The log is missing or damaged, belongs to another snapshot, or names nodes that
            the snapshot and its parent do not have.
        """
        tx = await self.fetch_transaction_log_by_id(snapshot.id)
        _check_transaction_nodes(transaction_key(snapshot.id), tx, snapshot, parent)
        return tx

    async def fetch_transaction_log_by_id(self, snapshot_id: bytes) -> TransactionLog:
        """Read the transaction log stored under a snapshot id, without checking its nodes.

        For logs whose snapshot may be gone (the pruned logs of spec 2.1's expiration).

        Raises
        ------
        ObjectNotFoundError
            There is no such log.
        IcechunkError
            The log is damaged or belongs to another snapshot.
        """
        key = transaction_key(snapshot_id)
        tx = self._transactions.get(snapshot_id)
        if tx is None:
            data = await self.backend.get(key)
            tx = await _decode_checked(
                data,
                key,
                FileType.TRANSACTION_LOG,
                _decode_transaction_log,
                holds="the transaction log of snapshot",
                wanted=snapshot_id,
            )
            self._transactions.put(snapshot_id, tx)
        return tx

    async def write_transaction_log(self, tx: TransactionLog) -> None:
        size = sum(len(c) for c in tx.updated_chunks.values())
        data = await _maybe_offload(
            size * 16, lambda: self._encode(FileType.TRANSACTION_LOG, encode_transaction_log, tx)
        )
        logger.debug(
            "Writing transaction log, transaction_id: %s, size_bytes: %d",
            encode_id(tx.id),
            len(data),
        )
        await self.backend.put(transaction_key(tx.id), data)

    # -- chunks ------------------------------------------------------------------------------

    async def write_chunk(self, chunk_id: bytes, data: bytes | memoryview) -> None:
        if logger.isEnabledFor(TRACE):
            logger.log(
                TRACE, "Writing chunk, id: %s, size_bytes: %d", encode_id(chunk_id), len(data)
            )
        await self.backend.put(chunk_key(chunk_id), data)

    async def fetch_chunk(
        self, chunk_id: bytes, offset: int, length: int, byte_range: ByteRequest | None
    ) -> bytes | memoryview:
        """Read ``[offset, offset+length)`` of a chunk object, narrowed by ``byte_range``."""
        key = chunk_key(chunk_id)
        if logger.isEnabledFor(TRACE):
            logger.log(
                TRACE, "Downloading chunk, key: %s, offset: %d, length: %d", key, offset, length
            )
        start, end = narrow(offset, length, byte_range)
        try:
            if start == 0 and byte_range is None:
                data = await self.backend.get_view(key)
                if len(data) > end:
                    data = data[:end]
            else:
                data = await self.backend.get(key, RangeByteRequest(start, end))
        except ObjectNotFoundError as e:
            raise IcechunkError(
                f"chunk object {key} is missing from storage: the repository is damaged "
                "(the chunk was deleted, perhaps by garbage collection of a newer version)",
                kind="object-not-found",
            ) from e
        if len(data) != end - start:
            # Storage returns what exists: a short read means the ref points past the object.
            raise IcechunkError(
                f"chunk object {key} ends before byte {end}, which its manifest reference "
                f"(offset {offset}, length {length}) needs; the manifest or the chunk object is "
                "damaged",
                kind="invalid-file-format",
            )
        return data

    # -- cache -------------------------------------------------------------------------------

    def forget_snapshot(self, snapshot_id: bytes) -> None:
        """Drop a snapshot from the cache (garbage collection deleted it)."""
        self._snapshots.discard(snapshot_id)

    def forget_transaction_log(self, snapshot_id: bytes) -> None:
        """Drop a transaction log from the cache (garbage collection deleted it)."""
        self._transactions.discard(snapshot_id)

    def forget_manifest(self, manifest_id: bytes) -> None:
        """Drop a manifest from the cache (garbage collection deleted it)."""
        self._manifests.discard(manifest_id)

    # -- helpers -----------------------------------------------------------------------------

    def _encode(self, file_type: FileType, encoder: Callable[[Any, int], bytes], obj: Any) -> bytes:
        return encode_object(
            file_type, encoder(obj, self.spec_version), self.compression_level, self.spec_version
        )


# Manifests and transaction logs are read by the fields present, whatever their header says.
def _decode_manifest(content: bytes, spec_version: int) -> Manifest:
    return decode_manifest(content)


def _decode_transaction_log(content: bytes, spec_version: int) -> TransactionLog:
    return decode_transaction_log(content)


def _check_id(key: str, holds: str, found: bytes, wanted: bytes) -> None:
    """Refuse an object whose own id is not the one it was fetched by (moved or swapped)."""
    if found != wanted:
        raise IcechunkError(
            f"cannot read {key}: the file holds {holds} {encode_id(found)}; "
            "the object was renamed or damaged",
            kind="invalid-file-format",
        )


def _check_transaction_nodes(
    key: str, tx: TransactionLog, snapshot: Snapshot, parent: Snapshot | None
) -> None:
    """Refuse a log that does not describe the step from ``parent`` to ``snapshot``.

    Every node it names must be a node of the snapshot (deleted ones: of the parent), and the
    nodes it creates and deletes must be exactly those that appear and disappear between the
    two. Otherwise a damaged id or list would silently change a diff, a rebase or an amend.
    The parent is compared only when the caller gives it, which it does unless the parent is
    a root: snapshot expiration gives a kept snapshot the root as its new parent, and its log
    still describes the step from the old one.
    """
    where = (
        f"cannot read {key}: the transaction log or snapshot {encode_id(snapshot.id)} is damaged"
    )
    after = {n.id: n.array is not None for n in snapshot.nodes}
    checks = [
        (tx.new_groups, after, False, "created group"),
        (tx.new_arrays, after, True, "created array"),
        (tx.updated_groups, after, False, "updated group"),
        (tx.updated_arrays, after, True, "updated array"),
        (tx.updated_chunks, after, True, "array with updated chunks"),
    ]
    before = None
    if parent is not None:
        before = {n.id: n.array is not None for n in parent.nodes}
        checks += [
            (tx.deleted_groups, before, False, "deleted group"),
            (tx.deleted_arrays, before, True, "deleted array"),
        ]
    for ids, nodes, is_array, what in checks:
        for node_id in ids:
            if nodes.get(node_id) is not is_array:
                raise IcechunkError(
                    f"{where}: the log names a {what} {encode_id(node_id)} that the snapshot "
                    "(or its parent) does not have",
                    kind="invalid-file-format",
                )
    if before is not None and parent is not None:
        created = {*tx.new_groups, *tx.new_arrays}
        deleted = {*tx.deleted_groups, *tx.deleted_arrays}
        if created != after.keys() - before.keys() or deleted != before.keys() - after.keys():
            raise IcechunkError(
                f"{where}: the nodes the log creates and deletes are not those that differ "
                f"between the snapshot and its parent {encode_id(parent.id)}",
                kind="invalid-file-format",
            )


def _tx_weight(tx: TransactionLog) -> int:
    return (
        len(tx.new_groups)
        + len(tx.new_arrays)
        + len(tx.deleted_groups)
        + len(tx.deleted_arrays)
        + len(tx.updated_groups)
        + len(tx.updated_arrays)
        + sum(len(c) for c in tx.updated_chunks.values())
    )
