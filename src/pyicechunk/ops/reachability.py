"""Which snapshots and manifests the repository's refs can reach."""

from __future__ import annotations

import asyncio

from pyicechunk.format.snapshot import ManifestFileInfo, Snapshot
from pyicechunk.history import HistoryWalk
from pyicechunk.repo_state import RepoState

__all__ = ["reachable_manifests", "reachable_snapshots"]


async def reachable_snapshots(state: RepoState) -> list[Snapshot]:
    """Every snapshot in the ancestry of a branch or a live tag, each once."""
    refs = await state.refs()
    tips = await asyncio.gather(
        *(state.branch_tip(b) for b in sorted(refs.branches)),
        *(state.tag_target(t) for t in sorted(refs.tags)),
    )
    history = await state.history()
    seen: dict[bytes, Snapshot] = {}
    for tip in tips:
        # Stopping at a snapshot an earlier walk visited is safe: that walk went on from it
        # to the root, and would have raised had the history looped.
        async for entry in HistoryWalk(history, tip):
            if entry.id in seen:
                break
            seen[entry.id] = await history.snapshot_of(entry)
    return list(seen.values())


def reachable_manifests(snapshots: list[Snapshot]) -> dict[bytes, ManifestFileInfo]:
    """The manifests referenced by the given snapshots, by id."""
    out: dict[bytes, ManifestFileInfo] = {}
    for snapshot in snapshots:
        for info in snapshot.manifest_files:
            out.setdefault(info.id, info)
    return out
