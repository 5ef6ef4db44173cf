"""Which snapshots and manifests the repository's refs can reach."""

from __future__ import annotations

import asyncio

from pyicechunk.asset_manager import AssetManager
from pyicechunk.format.snapshot import ManifestFileInfo, Snapshot
from pyicechunk.history import HistoryWalk
from pyicechunk.refs import fetch_branch, fetch_tag, list_refs
from pyicechunk.storage import StorageBackend

__all__ = ["reachable_manifests", "reachable_snapshots"]


async def reachable_snapshots(backend: StorageBackend, assets: AssetManager) -> list[Snapshot]:
    """Every snapshot in the ancestry of a branch or a live tag, each once."""
    refs = await list_refs(backend)
    tips = await asyncio.gather(
        *(fetch_branch(backend, b) for b in sorted(refs.branches)),
        *(fetch_tag(backend, t) for t in sorted(refs.tags)),
    )
    seen: dict[bytes, Snapshot] = {}
    for tip in tips:
        # Stopping at a snapshot an earlier walk visited is safe: that walk went on from it
        # to the root, and would have raised had the history looped.
        async for snapshot in HistoryWalk(assets, tip):
            if snapshot.id in seen:
                break
            seen[snapshot.id] = snapshot
    return list(seen.values())


def reachable_manifests(snapshots: list[Snapshot]) -> dict[bytes, ManifestFileInfo]:
    """The manifests referenced by the given snapshots, by id."""
    out: dict[bytes, ManifestFileInfo] = {}
    for snapshot in snapshots:
        for info in snapshot.manifest_files:
            out.setdefault(info.id, info)
    return out
