"""Writing a commit: from a change set to manifests, a snapshot and its transaction log.

:func:`write_snapshot` does the writing and moves no ref; a commit, an amend and a flush differ
only in the :class:`CommitPlan` they pass (the parent, an earlier transaction log to fold in,
whether every manifest is rewritten) and in how the session then makes the snapshot part of the
history (:meth:`pyicechunk.repo_state.RepoState.add_snapshot`). Everything one commit computes
lives in one :class:`_SnapshotBuilder`, made for that commit and dropped after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pyicechunk import progress
from pyicechunk._time import now_micros
from pyicechunk.change_set import ChangeSet
from pyicechunk.config import ManifestSplittingConfig
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import new_manifest_id, new_snapshot_id
from pyicechunk.format.manifest import ArrayManifest, ChunkPayload, NativePayload
from pyicechunk.format.snapshot import (
    ArrayNodeData,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    Snapshot,
)
from pyicechunk.format.transaction_log import MoveOperation, TransactionLog
from pyicechunk.format.zarr_metadata import ArrayMeta, grid_upper
from pyicechunk.history import combine_transaction_logs
from pyicechunk.session.chunks import Coords, all_refs, manifest_info
from pyicechunk.session.splitting import SplitPart, array_split_sizes, layout_manifests
from pyicechunk.storage.keys import chunk_key, manifest_key, snapshot_key, transaction_key

if TYPE_CHECKING:
    from pyicechunk.asset_manager import AssetManager
    from pyicechunk.format.snapshot import DimensionShape
    from pyicechunk.storage import StorageBackend

__all__ = ["CommitPlan", "chunk_barrier", "start_snapshot", "write_snapshot", "written_keys"]

_NodeResult = tuple[NodeSnapshot, tuple[ManifestFileInfo, ...]]


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """What one commit, amend or flush writes.

    Parameters
    ----------
    message, properties
        The snapshot's message and metadata (the default commit metadata merged under the
        caller's).
    parent_id
        Its parent: the base for a commit or flush, the replaced tip's parent for an amend.
    parent_flushed_at
        The parent's time; the new snapshot must be later.
    earlier_tx
        For an amend: the replaced tip's transaction log, folded into the new one.
    rewrite_manifests
        Write fresh manifests for every array, even unchanged ones (``rewrite_manifests``).
    splitting
        The repository's manifest splitting config (None: one manifest per array).
    moved_nodes
        For a rearrange session: every move from the parent, recorded in the transaction log
        (the base then already holds the nodes at their new paths).
    """

    message: str
    properties: dict[str, Any]
    parent_id: bytes
    parent_flushed_at: int
    earlier_tx: TransactionLog | None = None
    rewrite_manifests: bool = False
    splitting: ManifestSplittingConfig | None = None
    moved_nodes: tuple[MoveOperation, ...] = ()


class _SnapshotBuilder:
    """The nodes and manifests of one new snapshot: the base with a change set applied."""

    def __init__(
        self,
        assets: AssetManager,
        base: Snapshot,
        changes: ChangeSet,
        rewrite_all: bool,
        splitting: ManifestSplittingConfig | None,
    ) -> None:
        self._assets, self._base, self._changes = assets, base, changes
        self._rewrite_all, self._splitting = rewrite_all, splitting
        # The coordinates of each array's chunk changes, computed once and shared by the
        # manifest writer and the transaction log.
        self.coords: dict[bytes, np.ndarray] = {
            nid: changes.coords_array(nid) for nid in changes.chunks
        }
        # The new manifests, written together once every node is laid out.
        self._new_manifests: list[tuple[bytes, ArrayManifest]] = []

    async def nodes(self) -> tuple[list[NodeSnapshot], list[ManifestFileInfo]]:
        """Every node of the new snapshot, sorted by path, and the manifests they list."""
        changes = self._changes
        # Nodes that write no manifest are made here; only the others become tasks (a commit
        # touching one array of many schedules one task, not one per node).
        results: list[_NodeResult] = []
        jobs: list[Awaitable[_NodeResult]] = []
        for node in self._base.nodes:
            if not changes.is_deleted(node.path, node.id):
                carried = self._carry_unwritten(node)
                if carried is None:
                    jobs.append(self._carry_node(node))
                else:
                    results.append(carried)
        for path, (node_id, user_data) in changes.new_groups.items():
            results.append((NodeSnapshot(node_id, path, user_data, None), ()))
        for path, (node_id, meta) in changes.new_arrays.items():
            jobs.append(self._new_array_node(path, node_id, meta))
        if len(jobs) == 1:
            results.append(await jobs[0])
        elif jobs:
            results.extend(await asyncio.gather(*jobs))
        infos: dict[bytes, ManifestFileInfo] = {}
        for _, node_infos in results:
            for info in node_infos:
                infos[info.id] = info
        new = self._new_manifests
        if new:
            sizes = await self._assets.write_manifests([(m, [refs]) for m, refs in new])
            progress.advance("writing manifests", len(new))
            for (manifest_id, refs), size in zip(new, sizes, strict=True):
                infos[manifest_id] = ManifestFileInfo(manifest_id, size, len(refs))
        nodes = sorted((n for n, _ in results), key=lambda n: n.path)
        return nodes, sorted(infos.values(), key=lambda i: i.id)

    def _carry_unwritten(self, node: NodeSnapshot) -> _NodeResult | None:
        """The node in the new snapshot if none of its manifests is rewritten, else None."""
        if node.array is None:
            user_data = self._changes.updated_groups.get(node.id, node.user_data)
            return NodeSnapshot(node.id, node.path, user_data, None), ()
        if self._rewrite_all or self._changes.updated_arrays.get(node.id) is not None:
            return None
        if self._changes.chunks.get(node.id):
            return None
        return node, self._infos(node.array.manifests)

    async def _carry_node(self, node: NodeSnapshot) -> _NodeResult:
        """An array node whose manifests are rewritten (:meth:`_carry_unwritten` is None)."""
        changes = self._changes
        old = node.array
        assert old is not None
        if self._rewrite_all:
            refs, infos = await self._write_manifests(
                node.id, node.path, old.shape, old.dimension_names, old.manifests, None
            )
            data = ArrayNodeData(old.shape, old.dimension_names, refs)
            return NodeSnapshot(node.id, node.path, node.user_data, data), infos
        meta = changes.updated_arrays.get(node.id)
        chunk_changes = changes.chunks.get(node.id)
        shape = meta.shape if meta is not None else old.shape
        names = meta.dimension_names if meta is not None else old.dimension_names
        user_data = meta.user_data if meta is not None else node.user_data
        # Manifests wholly inside an unchanged split are kept; nothing is read for them.
        refs, infos = await self._write_manifests(
            node.id, node.path, shape, names, old.manifests, chunk_changes
        )
        return NodeSnapshot(node.id, node.path, user_data, ArrayNodeData(shape, names, refs)), infos

    async def _new_array_node(self, path: str, node_id: bytes, meta: ArrayMeta) -> _NodeResult:
        refs, infos = await self._write_manifests(
            node_id, path, meta.shape, meta.dimension_names, (), self._changes.chunks.get(node_id)
        )
        data = ArrayNodeData(meta.shape, meta.dimension_names, refs)
        return NodeSnapshot(node_id, path, meta.user_data, data), infos

    def _infos(self, refs: Sequence[ManifestRef]) -> tuple[ManifestFileInfo, ...]:
        return tuple(manifest_info(self._base, m.object_id) for m in refs)

    async def _write_manifests(
        self,
        node_id: bytes,
        path: str,
        shape: tuple[DimensionShape, ...],
        names: tuple[str | None, ...] | None,
        old_refs: Sequence[ManifestRef],
        chunk_changes: dict[Coords, ChunkPayload | None] | None,
    ) -> tuple[tuple[ManifestRef, ...], tuple[ManifestFileInfo, ...]]:
        """The array's manifests in the new snapshot, one or more per split (see
        :mod:`pyicechunk.session.splitting`): old ones kept (with their infos), new ones
        queued for :meth:`nodes` to write.

        Reading the old refs checks them like a read does: a damaged manifest fails the commit
        instead of losing its chunks from the new snapshot.
        """
        ndim = len(shape)
        upper = grid_upper(shape)
        touched = None
        written = None
        if chunk_changes:
            touched = self.coords.get(node_id)
            if touched is None or len(touched) != len(chunk_changes):
                touched = np.array(list(chunk_changes), dtype=np.uint32).reshape(
                    len(chunk_changes), ndim
                )
            # Vectorised: which changes are writes (not deletions) inside the current grid.
            payload_list = list(chunk_changes.values())
            live = np.fromiter(
                (p is not None for p in payload_list), dtype=bool, count=len(payload_list)
            )
            if ndim:
                live &= (touched < np.array(upper, dtype=np.int64)).all(axis=1)
            keep_idx = np.flatnonzero(live)
            if len(keep_idx) == len(payload_list):
                payloads = payload_list
            else:
                payloads = [payload_list[i] for i in keep_idx]
            if payloads:
                written = ArrayManifest.from_payloads(
                    node_id,
                    ndim,
                    touched[keep_idx],  # type: ignore[arg-type]
                    payloads,  # type: ignore[arg-type]
                )
        base = self._base
        # The stored refs have the dimensions the snapshot records for the array.
        stored = base.get_node(path)
        stored_ndim = len(stored.array.shape) if stored and stored.array else ndim

        async def load(refs: Sequence[ManifestRef]) -> list[ArrayManifest]:
            return await all_refs(self._assets, base, node_id, path, stored_ndim, refs)

        parts = await layout_manifests(
            sizes=array_split_sizes(self._splitting, path, names, ndim),
            upper=upper,
            old_refs=old_refs,
            load=load,
            touched=touched,
            written=written,
            rewrite_all=self._rewrite_all,
        )
        refs = tuple(self._manifest_of(part) for part in parts)
        return refs, self._infos([p.ref for p in parts if p.ref is not None])

    def _manifest_of(self, part: SplitPart) -> ManifestRef:
        """A kept manifest, or a new one for ``part.refs`` (written by :meth:`nodes`)."""
        if part.ref is not None:
            return part.ref
        assert part.refs is not None
        manifest_id = new_manifest_id()
        self._new_manifests.append((manifest_id, part.refs))
        return ManifestRef(manifest_id, part.refs.extents())


async def anonymous_snapshot(
    assets: AssetManager,
    base: Snapshot,
    changes: ChangeSet,
    splitting: ManifestSplittingConfig | None,
) -> Snapshot:
    """Write the base plus uncommitted changes as a snapshot no ref names and no history lists.

    A fork of a session with uncommitted changes starts from it, as in icechunk 2.x: its readers
    see those changes, and merging the fork back brings only the fork's own changes.
    """
    plan = CommitPlan(
        "fork of a session with uncommitted changes",
        {},
        base.id,
        base.flushed_at,
        splitting=splitting,
    )
    return await write_snapshot(assets, base, changes, plan)


@progress.operation("commit")
async def write_snapshot(
    assets: AssetManager, base: Snapshot, changes: ChangeSet, plan: CommitPlan
) -> Snapshot:
    """Write manifests, then the snapshot and its transaction log; move no ref.

    Raises
    ------
    IcechunkError
        If a manifest the snapshot carries over is damaged, or this machine's clock is not
        later than the parent's time.
    """
    snapshot, writing = await _start_snapshot(assets, base, changes, plan)
    await writing
    return snapshot


@progress.operation("commit")
async def start_snapshot(
    assets: AssetManager, base: Snapshot, changes: ChangeSet, plan: CommitPlan
) -> tuple[Snapshot, asyncio.Future[Any]]:
    """As :func:`write_snapshot`, but return once the manifests are written.

    The snapshot and its transaction log are still being written by the returned task, so a
    commit can prepare the history's update meanwhile; whatever refers to them awaits the task
    first (:attr:`pyicechunk.repo_state.NewSnapshot.written`).

    Raises
    ------
    IcechunkError
        As :func:`write_snapshot` (a failed write: from the task).
    """
    return await _start_snapshot(assets, base, changes, plan)


async def _start_snapshot(
    assets: AssetManager, base: Snapshot, changes: ChangeSet, plan: CommitPlan
) -> tuple[Snapshot, asyncio.Future[Any]]:
    snapshot_id = new_snapshot_id()
    builder = _SnapshotBuilder(assets, base, changes, plan.rewrite_manifests, plan.splitting)
    nodes, manifests = await builder.nodes()
    flushed_at = now_micros()
    if flushed_at <= plan.parent_flushed_at:
        raise IcechunkError(
            "cannot commit: this machine's clock is behind the time recorded in the parent "
            "snapshot; check the system clock",
            kind="snapshot-timestamp",
        )
    snapshot = Snapshot(
        id=snapshot_id,
        parent_id=plan.parent_id,
        nodes=tuple(nodes),
        flushed_at=flushed_at,
        message=plan.message,
        metadata=plan.properties,
        manifest_files=tuple(manifests),
    )
    tx = changes.to_transaction_log(snapshot_id, builder.coords)
    if plan.earlier_tx is not None:
        tx = combine_transaction_logs(plan.earlier_tx, tx, snapshot_id)
    if plan.moved_nodes:
        tx.moved_nodes = list(plan.moved_nodes)
    writing = asyncio.ensure_future(
        asyncio.gather(assets.write_snapshot(snapshot), assets.write_transaction_log(tx))
    )
    # Marked as retrieved: a caller that fails before awaiting it has its own error to report,
    # and awaiting it still raises the write's failure.
    writing.add_done_callback(_retrieved)
    return snapshot, writing


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def written_keys(base: Snapshot, snapshot: Snapshot) -> list[str]:
    """The metadata objects written for ``snapshot`` on top of ``base`` (chunks: see below)."""
    keys = [snapshot_key(snapshot.id), transaction_key(snapshot.id)]
    base_manifests = {m.id for m in base.manifest_files}
    keys.extend(manifest_key(m.id) for m in snapshot.manifest_files if m.id not in base_manifests)
    return keys


@contextlib.asynccontextmanager
async def chunk_barrier(
    backend: StorageBackend, changes: ChangeSet
) -> AsyncIterator[asyncio.Future[None]]:
    """Start syncing the chunk files ``changes`` references now; yield the task to await.

    The chunks were written before the commit began, so their barrier runs while the manifests
    and the snapshot are built and written, instead of after. If the body fails before awaiting
    it, the barrier is still waited for (its outcome no longer matters).
    """
    keys: list[str] = []
    for per_node in changes.chunks.values():
        keys.extend(chunk_key(p.chunk_id) for p in per_node.values() if type(p) is NativePayload)
    if not keys:  # only inline chunks, or none: nothing to sync, no task to run
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        yield done
        return
    task = asyncio.ensure_future(backend.make_durable(keys))
    try:
        yield task
    finally:
        await asyncio.wait([task])
        _retrieved(task)  # a failure was already raised, or is moot
