"""Which snapshots and manifests the repository's refs can reach."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pyicechunk.asset_manager import AssetManager
from pyicechunk.format.repo_info import RepoInfo, ancestry
from pyicechunk.format.snapshot import ManifestFileInfo, Snapshot
from pyicechunk.history import HistoryEntry, HistoryWalk
from pyicechunk.repo_state import RepoState

__all__ = ["fetch_snapshots", "listed_reachable", "reachable_manifests", "reachable_snapshots"]

# Snapshot reads in flight at once when the ids are known up front (spec 2).
_READ_AHEAD = 64


def listed_reachable(info: RepoInfo) -> list[bytes]:
    """Every snapshot in the ancestry of a tag or a branch of a spec-2 ``repo``, each once,
    in the order the reference visits them (tags, then branches, each in name order)."""
    seen: dict[bytes, None] = {}
    tips = [info.tags[t] for t in sorted(info.tags)] + [
        info.branches[b] for b in sorted(info.branches)
    ]
    for tip in tips:
        # Stopping at a snapshot seen before is safe: its walk went on to the root already.
        for entry in ancestry(info, tip):
            if entry.id in seen:
                break
            seen[entry.id] = None
    return list(seen)


async def fetch_snapshots(assets: AssetManager, ids: Iterable[bytes]) -> list[Snapshot]:
    """Read the given snapshots, a bounded number at a time, in the given order."""
    slots = asyncio.Semaphore(_READ_AHEAD)

    async def fetch(snapshot_id: bytes) -> Snapshot:
        async with slots:
            return await assets.fetch_snapshot(snapshot_id)

    return list(await asyncio.gather(*(fetch(i) for i in ids)))


async def reachable_snapshots(state: RepoState) -> list[Snapshot]:
    """Every snapshot in the ancestry of a branch or a live tag, each once.

    The walks come first, then the snapshots not read by them (all of them on spec 2, whose
    history is the snapshot list) are read concurrently.
    """
    refs = await state.refs()
    tips = await asyncio.gather(
        *(state.branch_tip(b) for b in sorted(refs.branches)),
        *(state.tag_target(t) for t in sorted(refs.tags)),
    )
    history = await state.history()
    seen: dict[bytes, HistoryEntry] = {}
    for tip in tips:
        # Stopping at a snapshot an earlier walk visited is safe: that walk went on from it
        # to the root, and would have raised had the history looped.
        async for entry in HistoryWalk(history, tip):
            if entry.id in seen:
                break
            seen[entry.id] = entry
    slots = asyncio.Semaphore(_READ_AHEAD)

    async def read(entry: HistoryEntry) -> Snapshot:
        async with slots:
            return await history.snapshot_of(entry)

    return list(await asyncio.gather(*(read(e) for e in seen.values())))


def reachable_manifests(snapshots: Iterable[Snapshot]) -> dict[bytes, ManifestFileInfo]:
    """The manifests referenced by the given snapshots, by id."""
    out: dict[bytes, ManifestFileInfo] = {}
    for snapshot in snapshots:
        for info in snapshot.manifest_files:
            out.setdefault(info.id, info)
    return out
