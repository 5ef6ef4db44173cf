"""Chunk storage statistics: how many bytes of chunk data the refs can reach."""

from __future__ import annotations

import asyncio

import numpy as np

from pyicechunk.asset_manager import AssetManager
from pyicechunk.format.manifest import INLINE, NATIVE, VIRTUAL, Manifest
from pyicechunk.ops.reachability import reachable_manifests, reachable_snapshots
from pyicechunk.repo_state import RepoState
from pyicechunk.types import ChunkStorageStats

__all__ = ["chunk_storage_stats"]


async def chunk_storage_stats(
    state: RepoState, assets: AssetManager, *, max_concurrent_manifest_fetches: int = 500
) -> ChunkStorageStats:
    """Totals over every chunk reachable from a branch or tag.

    Native chunks count once per chunk object and virtual chunks once per (location, offset,
    length), as in the reference; inline chunks count once per manifest that holds them,
    because each manifest stores its own copy.
    """
    manifests = reachable_manifests(await reachable_snapshots(state))
    limit = asyncio.Semaphore(max(1, max_concurrent_manifest_fetches))

    async def fetch(manifest_id: bytes, size: int) -> Manifest:
        async with limit:
            return await assets.fetch_manifest(manifest_id, size)

    loaded = await asyncio.gather(*(fetch(i.id, i.size_bytes) for i in manifests.values()))
    native_ids: list[np.ndarray] = []
    native_lengths: list[np.ndarray] = []
    virtual_seen: set[tuple[bytes, int, int]] = set()
    virtual_bytes = 0
    inlined_bytes = 0
    for manifest in loaded:
        for array in manifest.arrays:
            kind = array.kind
            native = kind == NATIVE
            if native.any():
                native_ids.append(array.chunk_id[native])
                native_lengths.append(array.length[native])
            inlined_bytes += int(array.data_len[kind == INLINE].sum())
            for i in np.flatnonzero(kind == VIRTUAL):
                blob = bytes(
                    array.blob[array.data_start[i] : array.data_start[i] + array.data_len[i]]
                )
                key = (blob, int(array.offset[i]), int(array.length[i]))
                if key not in virtual_seen:
                    virtual_seen.add(key)
                    virtual_bytes += int(array.length[i])
    native_bytes = 0
    if native_ids:
        ids = np.ascontiguousarray(np.concatenate(native_ids)).view("S12").ravel()
        lengths = np.concatenate(native_lengths)
        _, first = np.unique(ids, return_index=True)
        native_bytes = int(lengths[first].sum())
    return ChunkStorageStats(native_bytes, virtual_bytes, inlined_bytes)
