"""Reading chunks: from a session state to the chunk references and to the bytes they name.

A chunk is looked up in the change set first; otherwise in the manifest whose extents hold its
coordinates, among the manifests the base snapshot lists for the array. Every manifest is checked
against the snapshot that lists it before it is used: a manifest without the array, with
references of another dimensionality, or (for code that reads all references) with references
outside the extents recorded for it is damage, never an empty or silently partial array.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.manifest import (
    VIRTUAL,
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    VirtualPayload,
)
from pyicechunk.format.snapshot import ManifestFileInfo, ManifestRef, Snapshot
from pyicechunk.format.zarr_metadata import coords_in_grid
from pyicechunk.session.nodes import NodeInfo, SessionState
from pyicechunk.storage.byte_range import ByteRequest, slice_bytes

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.session.context import RepoContext

__all__ = [
    "Coords",
    "all_refs",
    "chunk_coords",
    "find_payload",
    "manifest_info",
    "read_payload",
    "virtual_locations",
]

Coords = tuple[int, ...]


def manifest_info(base: Snapshot, manifest_id: bytes) -> ManifestFileInfo:
    """What the snapshot records about one of its manifests.

    Raises
    ------
    IcechunkError
        If the snapshot does not list the manifest (it is damaged).
    """
    info = base.manifest_info(manifest_id)
    if info is None:
        raise IcechunkError(
            f"manifest information cannot be found in snapshot {encode_id(base.id)} "
            f"for manifest {encode_id(manifest_id)}: the snapshot is damaged",
            kind="manifest-info-not-found",
        )
    return info


def _in_extents(coords: Coords, extents: tuple[tuple[int, int], ...]) -> bool:
    if not extents:
        return True
    for c, (lo, hi) in zip(coords, extents, strict=False):
        if not lo <= c < hi:
            return False
    return True


async def _manifest_array(
    assets: AssetManager, base: Snapshot, manifest_id: bytes, node_id: bytes, path: str, ndim: int
) -> ArrayManifest:
    """The chunk refs of one array in one of its manifests, checked against the node.

    The snapshot says which manifests hold refs for an array; a manifest without that array,
    or with refs of another dimensionality, is damage, never an empty array.
    """
    info = manifest_info(base, manifest_id)
    manifest = await assets.fetch_manifest(manifest_id, info.size_bytes)
    array = manifest.array(node_id)
    if array is not None and (array.ndim == ndim or not len(array)):
        return array
    where = (
        f"manifest {encode_id(manifest_id)}, which snapshot {encode_id(base.id)} lists for "
        f"array {path} (node {encode_id(node_id)}),"
    )
    if array is None:
        raise IcechunkError(
            f"{where} holds no chunk references for that array; the repository is damaged "
            "(the manifest or the snapshot was corrupted or replaced)",
            kind="invalid-file-format",
        )
    raise IcechunkError(
        f"{where} holds {array.ndim}-dimensional chunk coordinates for a "
        f"{ndim}-dimensional array; the repository is damaged",
        kind="invalid-file-format",
    )


async def all_refs(
    assets: AssetManager,
    base: Snapshot,
    node_id: bytes,
    path: str,
    ndim: int,
    refs: Sequence[ManifestRef],
) -> list[ArrayManifest]:
    """Every chunk ref of an array, per manifest, for code that reads all of them.

    Such code also checks the refs lie in the box the snapshot records for their manifest: a
    read only looks into a manifest whose box holds the chunk, so a ref outside it would be
    listed (or carried into a new manifest) but never read.
    """
    reads = [_manifest_array(assets, base, m.object_id, node_id, path, ndim) for m in refs]
    # One manifest (the usual case) is read without a task of its own.
    arrays = [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)
    for mref, array in zip(refs, arrays, strict=True):
        if len(array) and ndim:
            lo = np.array([e[0] for e in mref.extents], dtype=np.int64)
            hi = np.array([e[1] for e in mref.extents], dtype=np.int64)
            if ((array.coords < lo) | (array.coords >= hi)).any():
                raise IcechunkError(
                    f"manifest {encode_id(mref.object_id)} holds chunk references of array "
                    f"{path} outside the extents snapshot {encode_id(base.id)} records "
                    "for it; the repository is damaged",
                    kind="invalid-file-format",
                )
    return arrays


async def _base_arrays(assets: AssetManager, base: Snapshot, node: NodeInfo) -> list[ArrayManifest]:
    """The node's chunk refs in each manifest of the base snapshot that holds some."""
    if node.is_new:
        return []
    ndim = len(node.shape or ())
    return await all_refs(assets, base, node.node_id, node.path, ndim, node.manifests)


async def find_payload(
    assets: AssetManager, state: SessionState, node: NodeInfo, coords: Coords
) -> ChunkPayload | None:
    """Where the chunk at ``coords`` of array ``node`` is, or None if it is not initialized."""
    base, changes = state
    per_node = changes.chunks.get(node.node_id)
    if per_node is not None and coords in per_node:
        return per_node[coords]
    if node.is_new or not node.manifests:
        return None
    assert node.shape is not None
    if not coords_in_grid(coords, node.shape):
        return None
    for mref in node.manifests:
        if not _in_extents(coords, mref.extents):
            continue
        array = await _manifest_array(
            assets, base, mref.object_id, node.node_id, node.path, len(node.shape)
        )
        i = array.find(coords)
        return array.payload(i) if i >= 0 else None
    return None


async def read_payload(
    ctx: RepoContext, payload: ChunkPayload, byte_range: ByteRequest | None
) -> bytes | memoryview:
    """The bytes a chunk reference names (or the part ``byte_range`` asks for)."""
    if isinstance(payload, InlinePayload):
        return slice_bytes(payload.data, byte_range)
    if isinstance(payload, NativePayload):
        return await ctx.assets.fetch_chunk(
            payload.chunk_id, payload.offset, payload.length, byte_range
        )
    from pyicechunk.virtual import fetch_virtual_chunk

    # Authorization carries no credentials here, so S3 containers use anonymous or
    # environment credentials (see fetch_virtual_chunk).
    return await fetch_virtual_chunk(payload, byte_range, ctx.config, ctx.authorized)


async def chunk_coords(
    assets: AssetManager, state: SessionState, node: NodeInfo, lock: threading.RLock
) -> list[Coords]:
    """The coordinates of every initialized chunk of array ``node``, sorted."""
    assert node.shape is not None
    coords: set[Coords] = set()
    for array in await _base_arrays(assets, state[0], node):
        coords.update(tuple(int(x) for x in row) for row in array.coords)
    coords = {c for c in coords if coords_in_grid(c, node.shape)}
    with lock:
        changed = list(state[1].chunks.get(node.node_id, {}).items())
    for c, payload in changed:
        if payload is None:
            coords.discard(c)
        else:
            coords.add(c)
    return sorted(coords)


async def chunk_refs(
    assets: AssetManager, state: SessionState, node: NodeInfo, lock: threading.RLock
) -> tuple[list[tuple[Coords, ChunkPayload]], list[ArrayManifest]]:
    """Every chunk ref the session sees for array ``node``, as the session's own (what it
    wrote) and the base snapshot's, per manifest, without those it replaced or deleted and
    those outside the grid."""
    assert node.shape is not None
    with lock:
        changed = dict(state[1].chunks.get(node.node_id, {}))
    written = [(c, p) for c, p in changed.items() if p is not None]
    upper = tuple(max(d.num_chunks, 1) for d in node.shape)
    base = []
    touched = np.array(list(changed), dtype=np.int64).reshape(len(changed), len(node.shape))
    for array in await _base_arrays(assets, state[0], node):
        if not len(array):
            continue
        keep = array.within(upper)
        if len(touched):
            found = array.find_many(touched)
            keep[found[found >= 0]] = False
        base.append(array.take(keep))
    return written, base


async def virtual_locations(
    assets: AssetManager, state: SessionState, nodes: Sequence[NodeInfo], lock: threading.RLock
) -> list[str]:
    """Locations of every virtual ref of the arrays among ``nodes``, per array in chunk order."""
    out: list[str] = []
    for node in nodes:
        if not node.is_array:
            continue
        assert node.shape is not None
        with lock:
            changed = dict(state[1].chunks.get(node.node_id, {}))
        found: list[tuple[Coords, str]] = [
            (c, p.location) for c, p in changed.items() if isinstance(p, VirtualPayload)
        ]
        for array in await _base_arrays(assets, state[0], node):
            if not len(array):
                continue
            rows = np.flatnonzero(array.kind == VIRTUAL)
            for i in rows:
                coords = tuple(int(x) for x in array.coords[i])
                if coords in changed or not coords_in_grid(coords, node.shape):
                    continue
                start = int(array.data_start[i])
                blob = bytes(array.blob[start : start + int(array.data_len[i])])
                found.append((coords, blob.decode("utf-8")))
        found.sort(key=lambda item: item[0])
        out.extend(location for _, location in found)
    return out
