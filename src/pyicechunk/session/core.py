"""The engine behind a Session and its IcechunkStore: state, concurrency, and the operations.

A session may be shared by many threads, each possibly running its own event loop, as in the
reference. Its state is the pair (base snapshot, change set), replaced as a whole by a commit or
a rebase; every read takes the pair once, so it never mixes two states. Edits of the change set
and reads that iterate it run under a lock, in short sections that never await. Operations that
replace the state (commit, flush, amend, rebase) run one at a time, and edits wait while one
runs, so the changes a commit writes are exactly those it started from and no acknowledged write
is dropped by the state switch at its end.

The work itself is done by the modules beside this one: :mod:`~pyicechunk.session.nodes` and
:mod:`~pyicechunk.session.chunks` read, :mod:`~pyicechunk.session.writes` records edits,
:mod:`~pyicechunk.session.commit` writes snapshots. The only visible step of a commit is
:meth:`~pyicechunk.repo_state.RepoState.add_snapshot`, so a commit that fails at any point leaves
the branch and all committed data as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pyicechunk.change_set import ChangeSet
from pyicechunk.exceptions import (
    ConflictError,
    IcechunkError,
    KeyNotFoundError,
)
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.ids import encode_id, new_chunk_id
from pyicechunk.format.manifest import (
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    VirtualPayload,
)
from pyicechunk.format.snapshot import Snapshot, validate_path
from pyicechunk.format.transaction_log import MoveOperation
from pyicechunk.format.zarr_metadata import parse_node_metadata
from pyicechunk.history import combine_transaction_logs, diff_from_transaction_logs, path_between
from pyicechunk.repo_state import NewSnapshot, SnapshotKind, needs_spec2_error
from pyicechunk.session.chunks import (
    Coords,
    chunk_coords,
    chunk_refs,
    find_payload,
    read_payload,
    virtual_locations,
)
from pyicechunk.session.commit import CommitPlan, chunk_barrier, start_snapshot, written_keys
from pyicechunk.session.context import RepoContext, check_metadata, with_reserved
from pyicechunk.session.mode import READ_ONLY_SESSION, SessionMode
from pyicechunk.session.nodes import NodeInfo, check_stored_metadata, node_at, nodes_below
from pyicechunk.session.rearrange import (
    NON_REARRANGE,
    REARRANGE_ONLY,
    Rearrangement,
    check_move_flag,
    checked_node_path,
    has_moves,
    node_not_found,
    rebase_over_moves_error,
)
from pyicechunk.session.refusals import (
    NO_CHANGES,
    READ_ONLY_STORE,
    fork_cannot_commit,
    fork_cannot_flush,
)
from pyicechunk.session.reindex import ChunkMap, existing_chunks, plan_reindex, reindexed_grid
from pyicechunk.session.splitting import configured_splitting
from pyicechunk.session.writes import chunk_target, record_deletion, record_metadata
from pyicechunk.storage.byte_range import ByteRequest
from pyicechunk.types import ChunkType, Diff

if TYPE_CHECKING:
    from pyicechunk.config import RepositoryConfig

__all__ = ["SessionCore"]

logger = logging.getLogger(__name__)


class SessionCore:
    """The state of one session and every operation on it (see the module docstring).

    Parameters
    ----------
    ctx
        The repository as the session sees it.
    base
        The snapshot the session starts from.
    branch
        The branch a writable session commits to; None for a read-only one.
    read_only
        Whether the session can record changes.
    rearrange
        A rearrange session: it records moves only (see :mod:`~pyicechunk.session.rearrange`).
    """

    def __init__(
        self,
        ctx: RepoContext,
        base: Snapshot,
        *,
        branch: str | None,
        read_only: bool,
        rearrange: bool = False,
    ) -> None:
        self.ctx = ctx
        self._state: tuple[Snapshot, ChangeSet] = (base, ChangeSet())
        self.branch = branch
        self.read_only = read_only
        self.rearrangement = Rearrangement(base) if rearrange else None
        """The moves of a rearrange session; the state's snapshot is then their view."""
        self.forked = False
        """This session was forked and the forks were not merged back yet."""
        self.is_fork = False
        """This session is a fork: it can record changes but never commit them itself."""
        self._init_guards()

    def _init_guards(self) -> None:
        self._lock = threading.RLock()
        self._exclusive = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # -- pickling -----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            state = dict(self.__dict__)
            base, changes = self._state
            state["_state"] = (base, changes.copy())
        for name in ("_lock", "_exclusive", "_waiters"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_guards()

    # -- state --------------------------------------------------------------------------------

    @property
    def base(self) -> Snapshot:
        """The snapshot the session reads from and commits on top of."""
        return self._state[0]

    @property
    def changes(self) -> ChangeSet:
        """The uncommitted changes."""
        return self._state[1]

    @property
    def config(self) -> RepositoryConfig:
        return self.ctx.config

    @property
    def snapshot_id(self) -> str:
        return encode_id(self.base.id)

    @property
    def mode(self) -> SessionMode:
        if self.read_only or self.is_fork:
            return SessionMode.readonly
        return SessionMode.writable if self.rearrangement is None else SessionMode.rearrange

    def _waiter(self) -> asyncio.Future[None]:
        """A future resolved when the running exclusive operation ends (hold ``_lock``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop, future))
        return future

    async def _enter_edit(self) -> None:
        """Acquire ``_lock`` once no exclusive operation runs; the caller releases it."""
        while True:
            self._lock.acquire()
            if not self._exclusive:
                return
            waiter = self._waiter()
            self._lock.release()
            await waiter

    async def _begin_edit(self) -> None:
        """Acquire ``_lock`` for an edit of a writable session; the caller releases it."""
        await self._enter_edit()
        if self.read_only:
            self._lock.release()
            raise IcechunkError(READ_ONLY_STORE, kind="read-only-store")

    @contextlib.asynccontextmanager
    async def _exclusive_operation(self) -> AsyncIterator[None]:
        """Run a commit, flush, amend or rebase alone: other ones and edits wait for it."""
        while True:
            with self._lock:
                if not self._exclusive:
                    self._exclusive = True
                    break
                waiter = self._waiter()
            await waiter
        try:
            yield
        finally:
            with self._lock:
                self._exclusive = False
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                with contextlib.suppress(RuntimeError):  # that waiter's loop has closed
                    loop.call_soon_threadsafe(_resolve, future)

    @contextlib.contextmanager
    def sync_edit(self) -> Iterator[None]:
        """Hold ``_lock`` for an edit made from blocking code (merge, discard)."""
        with self._lock:
            if self._exclusive:
                raise IcechunkError(
                    "session error: a commit, flush, amend or rebase is running on this "
                    "session; wait for it to finish before changing the session",
                    kind="concurrency",
                )
            yield

    def discard(self) -> None:
        with self.sync_edit():
            base = self.base
            if self.rearrangement is not None:  # back to the snapshot before the moves
                self.rearrangement = Rearrangement(self.rearrangement.origin)
                base = self.rearrangement.view
            self._state = (base, ChangeSet())

    def merge(self, other: SessionCore) -> None:
        """Bring another session's changes into this one (``other`` wins on overlap)."""
        if self.rearrangement is not None:
            raise IcechunkError(f"session error: {REARRANGE_ONLY}", kind="rearrange-session-only")
        with other._lock:
            incoming = other.changes.copy()
        with self.sync_edit():
            self.changes.merge(incoming)

    # -- nodes --------------------------------------------------------------------------------

    def node(self, path: str) -> NodeInfo | None:
        return node_at(self._state, path)

    def nodes(self, prefix: str = "/") -> list[NodeInfo]:
        """The node at ``prefix`` and all nodes below it, sorted by path."""
        return nodes_below(self._state, prefix, self._lock)

    async def get_node(self, path: str) -> NodeInfo | None:
        return self.node(path)

    async def list_nodes(self, prefix: str = "/") -> list[NodeInfo]:
        return self.nodes(prefix)

    async def metadata_document(self, path: str) -> bytes | None:
        """The ``zarr.json`` of the node at ``path``, checked if it comes from the snapshot."""
        state = self._state
        node = node_at(state, path)
        if node is None:
            return None
        if not node.is_new:
            check_stored_metadata(state[0], node)
        return node.user_data

    # -- edits --------------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.read_only:
            raise IcechunkError(READ_ONLY_STORE, kind="read-only-store")
        if self.rearrangement is not None:
            raise IcechunkError(REARRANGE_ONLY, kind="rearrange-session-only")

    async def move(self, source: str, target: str) -> None:
        """Move a node and everything below it in a rearrange session (metadata only)."""
        if self.read_only:
            raise IcechunkError(READ_ONLY_SESSION, kind="read-only-session")
        if self.ctx.spec_version == SPEC_V1:
            raise IcechunkError(
                f"session error: {needs_spec2_error().message}", kind="unsupported-spec-version"
            )
        await self._enter_edit()
        try:
            if self.rearrangement is None or self.is_fork:
                raise IcechunkError(NON_REARRANGE, kind="non-rearrange-session")
            view = self.rearrangement.move(source, target)
            changes = self.changes
            changes.touched = True
            self._state = (view, changes)
        finally:
            self._lock.release()

    async def set_metadata(self, path: str, data: bytes) -> None:
        self._check_writable()
        path = validate_path(path)
        meta = parse_node_metadata(path, data, self.ctx.spec_version)
        await self._begin_edit()
        try:
            record_metadata(self._state, path, data, meta)
        finally:
            self._lock.release()

    async def delete_node(self, path: str) -> None:
        self._check_writable()
        await self._begin_edit()
        try:
            record_deletion(self._state, path)
        finally:
            self._lock.release()

    async def clear(self) -> None:
        await self.delete_node("/")

    async def _record_chunk(
        self,
        path: str,
        coords: Coords,
        payload: ChunkPayload | None,
        written_for: bytes | None = None,
    ) -> None:
        """Put a chunk change into the change set, once no exclusive operation runs.

        ``written_for`` is the array whose chunk object was written before this call: the
        array may have been deleted or replaced meanwhile.
        """
        await self._begin_edit()
        try:
            node_id = chunk_target(self._state, path, coords, payload).node_id
            if written_for is not None and node_id != written_for:
                raise KeyNotFoundError(
                    path,
                    f"node not found at `{path}`: the array was deleted or replaced while "
                    f"chunk {list(coords)} was being written",
                )
            self.changes.set_chunk(node_id, coords, payload)
        finally:
            self._lock.release()

    async def set_chunk(self, path: str, coords: Coords, data: bytes | memoryview) -> None:
        self._check_writable()
        if len(data) <= self.ctx.inline_threshold:
            await self._record_chunk(path, coords, InlinePayload(bytes(data)))
            return
        # Checked before the chunk object is written, so a bad key writes nothing.
        node = chunk_target(self._state, path, coords)
        chunk_id = new_chunk_id()
        await self.ctx.assets.write_chunk(chunk_id, data)
        payload = NativePayload(chunk_id, 0, len(data))
        await self._record_chunk(path, coords, payload, written_for=node.node_id)

    async def delete_chunk(self, path: str, coords: Coords) -> None:
        self._check_writable()
        await self._record_chunk(path, coords, None)

    async def set_virtual_ref(
        self,
        path: str,
        coords: Coords,
        location: str,
        offset: int,
        length: int,
        checksum: str | dt.datetime | None,
        validate_container: bool,
    ) -> None:
        from pyicechunk.virtual import (
            NO_CONTAINER_MESSAGE,
            checksum_fields,
            find_container,
            normalize_location,
            usable_containers,
        )

        etag, last_modified = checksum_fields(checksum)
        normalized = normalize_location(location)
        self._check_writable()
        if validate_container and (
            find_container(normalized, usable_containers(self.ctx.config)) is None
        ):
            raise IcechunkError(
                f"{NO_CONTAINER_MESSAGE}: `{normalized}`; add a VirtualChunkContainer for it "
                "to the repository config, or pass validate_container=False",
                kind="no-container-for-virtual-chunk",
            )
        payload = VirtualPayload(normalized, offset, length, etag, last_modified)
        await self._record_chunk(path, coords, payload)

    async def reindex_array(
        self, path: str, mappings: Callable[[tuple[int, ...]], tuple[ChunkMap, ChunkMap | None]]
    ) -> None:
        """Move chunk references inside the array at ``path``: ``mappings`` gets the grid's
        size and gives ``forward`` and ``backward`` (see :mod:`~pyicechunk.session.reindex`)."""
        path = checked_node_path(path)
        node = self.node(path)
        upper = reindexed_grid(node, path, self.read_only, self.rearrangement is not None)
        forward, backward = mappings(upper)
        written, base = await self.chunk_refs(path)
        edits = plan_reindex(existing_chunks(written, base), upper, path, forward, backward)
        await self._begin_edit()
        try:
            now = node_at(self._state, path)
            if node is None or now is None or now.node_id != node.node_id:  # replaced meanwhile
                raise node_not_found(path)
            for coords, payload in edits.items():
                self.changes.set_chunk(node.node_id, coords, payload)
        finally:
            self._lock.release()

    # -- chunk reads --------------------------------------------------------------------------

    async def _array_payload(
        self, path: str, coords: Coords
    ) -> tuple[NodeInfo | None, ChunkPayload | None]:
        state = self._state
        node = node_at(state, path)
        if node is None or not node.is_array:
            return node, None
        return node, await find_payload(self.ctx.assets, state, node, coords)

    async def get_chunk(
        self, path: str, coords: Coords, byte_range: ByteRequest | None = None
    ) -> bytes | memoryview | None:
        _, payload = await self._array_payload(path, coords)
        if payload is None:
            return None
        return await read_payload(self.ctx, payload, byte_range)

    async def get_chunks(
        self, requests: Sequence[tuple[str, Coords, ByteRequest | None]]
    ) -> list[bytes | memoryview | None]:
        return list(await asyncio.gather(*(self.get_chunk(*r) for r in requests)))

    async def chunk_exists(self, path: str, coords: Coords) -> bool:
        return (await self._array_payload(path, coords))[1] is not None

    async def chunk_size(self, path: str, coords: Coords) -> int:
        _, payload = await self._array_payload(path, coords)
        if payload is None:
            return 0
        if isinstance(payload, InlinePayload):
            return len(payload.data)
        return payload.length

    async def chunk_coords(self, path: str) -> list[Coords]:
        state = self._state
        node = node_at(state, path)
        if node is None or not node.is_array:
            return []
        return await chunk_coords(self.ctx.assets, state, node, self._lock)

    async def chunk_refs(
        self, path: str
    ) -> tuple[list[tuple[Coords, ChunkPayload]], list[ArrayManifest]]:
        """The chunk refs of the array at ``path`` (none for a missing node or a group): see
        :func:`~pyicechunk.session.chunks.chunk_refs`."""
        state = self._state
        node = node_at(state, path)
        if node is None or not node.is_array:
            return [], []
        return await chunk_refs(self.ctx.assets, state, node, self._lock)

    async def chunk_type(self, path: str, coords: Coords) -> ChunkType:
        if not path.startswith("/"):
            raise IcechunkError(
                f"could not create path from prefix `{path}`: paths must be absolute",
                kind="invalid-path",
            )
        node, payload = await self._array_payload(path, tuple(coords))
        if node is None:
            raise IcechunkError(f"session error: node not found at `{path}`", kind="node-not-found")
        if not node.is_array:
            raise IcechunkError(
                f"session error: there is not an array at `{path}`", kind="not-an-array"
            )
        if payload is None:
            return ChunkType.UNINITIALIZED
        if isinstance(payload, InlinePayload):
            return ChunkType.INLINE
        if isinstance(payload, NativePayload):
            return ChunkType.NATIVE
        return ChunkType.VIRTUAL

    async def virtual_chunk_locations(self) -> list[str]:
        """Locations of every virtual ref the session sees, per array in chunk order; named
        ones (``vcc://``) resolved, as 2.x lists them."""
        from pyicechunk.virtual import resolve_named, usable_containers

        state = self._state
        found = await virtual_locations(self.ctx.assets, state, self.nodes("/"), self._lock)
        containers = usable_containers(self.ctx.config)
        return [resolve_named(location, containers, strict=False) for location in found]

    # -- status -------------------------------------------------------------------------------

    def status(self) -> Diff:
        if self.read_only:
            return Diff()
        base, changes = self._state
        with self._lock:
            tx = changes.to_transaction_log(base.id)
            new_nodes = [*changes.new_groups.items(), *changes.new_arrays.items()]
        if self.rearrangement is not None:
            tx.moved_nodes = self.rearrangement.moves()
        paths = {n.id: n.path for n in base.nodes}
        for path, (node_id, _) in new_nodes:
            paths[node_id] = path
        return diff_from_transaction_logs([tx], paths)

    # -- commit, flush, amend, rebase ---------------------------------------------------------

    def _check_can_commit(self, verb: str) -> None:
        if self.is_fork:
            raise fork_cannot_commit()
        if self.read_only:
            raise IcechunkError(READ_ONLY_SESSION, kind="commit-not-allowed")

    def _properties(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.ctx.default_metadata, **check_metadata(metadata)}

    def _finish(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._state = (snapshot, ChangeSet())
            self.branch = None
            self.read_only = True
            self.rearrangement = None

    async def _moves_to_record(self, verb: str) -> tuple[MoveOperation, ...]:
        """The moves a commit, flush or amend of this session records (none for a writable
        session), once the ``move_node`` feature flag allows them."""
        if self.rearrangement is None:
            return ()
        await check_move_flag(self.ctx.state, f"session error: {verb} rearrange session")
        return tuple(self.rearrangement.moves())

    async def commit(
        self,
        message: str,
        metadata: Mapping[str, Any] | None,
        *,
        allow_empty: bool = False,
        rebase_with: Any = None,
        rebase_tries: int = 1_000,
        rewrite_manifests: bool = False,
        amend: bool = False,
    ) -> str:
        """Commit the changes to the session's branch: THE retry loop of every commit.

        When the branch moved since the session's base, the commit is refused before anything
        is written; with ``rebase_with``, the changes are rebased onto the new tip (at most
        ``rebase_tries`` times) and the commit is tried again. With ``amend`` the new snapshot
        replaces the branch tip instead (the reference's amend commit method), and a moved
        branch refuses it whatever ``rebase_with`` says.
        """
        attempt = 0
        while True:
            try:
                async with self._exclusive_operation():
                    if amend:
                        return await self._amend(message, metadata, allow_empty, rewrite_manifests)
                    # 2.x records how many rebases a commit with a solver took (spec 2 here:
                    # spec 1 follows 1.1, which does not).
                    rebases = None if rebase_with is None else attempt
                    return await self._commit(
                        message, metadata, allow_empty, rewrite_manifests, rebases
                    )
            except ConflictError:
                if amend or rebase_with is None or attempt >= rebase_tries:
                    raise
                attempt += 1
                logger.debug(
                    "Branch moved during commit, rebasing, branch_name: %r, attempt: %d",
                    self.branch,
                    attempt,
                )
                await self.rebase(rebase_with)

    async def _commit(
        self,
        message: str,
        metadata: Mapping[str, Any] | None,
        allow_empty: bool,
        rewrite_manifests: bool,
        rebase_attempts: int | None = None,
    ) -> str:
        self._check_can_commit("commit")
        if not self.changes.touched and not allow_empty:
            raise IcechunkError(NO_CHANGES, kind="no-changes-to-commit")
        if not isinstance(message, str):
            raise TypeError(f"argument 'message': '{type(message).__name__}' object is not a str")
        properties = self._properties(metadata)
        if rebase_attempts is not None and self.ctx.spec_version != SPEC_V1:
            properties = with_reserved(properties, "rebase_attempts", rebase_attempts)
        plan = CommitPlan(
            message,
            properties,
            self.base.id,
            self.base.flushed_at,
            rewrite_manifests=rewrite_manifests,
            moved_nodes=await self._moves_to_record("commit"),
            splitting=configured_splitting(self.ctx.config),
        )
        assert self.branch is not None
        logger.info(
            "Commit started, branch_name: %r, old_snapshot_id: %s",
            self.branch,
            encode_id(self.base.id),
        )
        state = self.ctx.state
        async with chunk_barrier(self.ctx.storage.backend, self.changes) as chunks_durable:
            tip = await state.check_branch(self.branch, self.base.id)
            snapshot, written = await start_snapshot(self.ctx.assets, self.base, self.changes, plan)
            await chunks_durable
            new = NewSnapshot(
                SnapshotKind.COMMIT,
                snapshot,
                self.branch,
                self.base.id,
                written_keys(self.base, snapshot),
                written,
            )
            await state.add_snapshot(new, tip)
        logger.info(
            "Commit done, branch_name: %r, new_snapshot_id: %s",
            self.branch,
            encode_id(snapshot.id),
        )
        self._finish(snapshot)
        return encode_id(snapshot.id)

    async def flush(self, message: str, metadata: Mapping[str, Any] | None) -> str:
        async with self._exclusive_operation():
            if self.is_fork:
                raise fork_cannot_flush()
            if not self.changes.touched:
                raise IcechunkError(NO_CHANGES, kind="no-changes-to-commit")
            self._check_can_commit("flush")
            base = self.base
            plan = CommitPlan(
                message,
                self._properties(metadata),
                base.id,
                base.flushed_at,
                moved_nodes=await self._moves_to_record("flush"),
                splitting=configured_splitting(self.ctx.config),
            )
            async with chunk_barrier(self.ctx.storage.backend, self.changes) as chunks_durable:
                snapshot, written = await start_snapshot(self.ctx.assets, base, self.changes, plan)
                keys = written_keys(base, snapshot)
                new = NewSnapshot(SnapshotKind.DETACHED, snapshot, durable=keys, written=written)
                await asyncio.gather(chunks_durable, self.ctx.state.add_snapshot(new))
            self._finish(snapshot)
            return encode_id(snapshot.id)

    async def _amend(
        self,
        message: str,
        metadata: Mapping[str, Any] | None,
        allow_empty: bool,
        rewrite_manifests: bool,
    ) -> str:
        self._check_can_commit("amend")
        spec1 = self.ctx.spec_version == SPEC_V1
        # pyicechunk's spec-1 amend (beyond icechunk 1.1) may replace a tip without changes;
        # spec 2 follows icechunk 2, which asks for allow_empty.
        if not spec1 and not self.changes.touched and not allow_empty:
            raise IcechunkError(NO_CHANGES, kind="no-changes-to-commit")
        if not isinstance(message, str):
            raise TypeError(f"argument 'message': '{type(message).__name__}' object is not a str")
        tip = self.base
        state = self.ctx.state
        history = await state.history()
        tip_entry = await history.entry(tip.id)
        parent_id = tip_entry.parent_id
        if parent_id is None:
            raise IcechunkError(
                "cannot amend the initial snapshot of the repository: there is no commit to "
                "replace; use commit() instead"
                if spec1
                else "session error: the first commit in the repository cannot be an amend, "
                "create a new commit instead",
                kind="no-amend-for-initial-commit",
            )
        properties = self._properties(metadata)
        assert self.branch is not None
        check = await state.check_branch(self.branch, tip.id)
        parent = await history.snapshot(parent_id)
        # The tip's own log: in spec 2.1 the logs expiration collapsed into its step stay
        # apart, in the pruned list the replacement inherits.
        tip_tx = await history.transaction_log(tip_entry)
        moves: tuple[MoveOperation, ...] = ()
        if self.rearrangement is not None:
            # Collapsed with the replaced commit's own moves: from its parent to the view.
            await check_move_flag(state, "session error: amend rearrange session")
            moves = tuple(self.rearrangement.moves(parent.nodes))
        elif tip_tx.moved_nodes:
            raise IcechunkError(f"session error: {REARRANGE_ONLY}", kind="rearrange-session-only")
        plan = CommitPlan(
            message,
            properties,
            parent_id,
            parent.flushed_at,
            earlier_tx=tip_tx,
            rewrite_manifests=rewrite_manifests,
            moved_nodes=moves,
            splitting=configured_splitting(self.ctx.config),
        )
        async with chunk_barrier(self.ctx.storage.backend, self.changes) as chunks_durable:
            snapshot, written = await start_snapshot(self.ctx.assets, tip, self.changes, plan)
            await chunks_durable
            keys = written_keys(tip, snapshot)
            new = NewSnapshot(SnapshotKind.AMEND, snapshot, self.branch, tip.id, keys, written)
            await state.add_snapshot(new, check)
        self._finish(snapshot)
        return encode_id(snapshot.id)

    async def rebase(self, solver: Any) -> None:
        """Replay the change set over every snapshot the branch gained since the base.

        Raises
        ------
        IcechunkError
            For a read-only session, or a base no longer in the branch's history.
        TypeError
            If ``solver`` is not a ConflictSolver.
        RebaseFailedError
            If the solver cannot resolve a conflict (the change set is left untouched).
        """
        from pyicechunk.conflicts import ConflictSolver, replay

        if self.read_only or self.branch is None:
            raise IcechunkError(READ_ONLY_SESSION, kind="commit-not-allowed")
        if not isinstance(solver, ConflictSolver):
            raise TypeError(
                f"argument 'solver': '{type(solver).__name__}' object cannot be converted to "
                "'ConflictSolver'"
            )
        async with self._exclusive_operation():
            if self.read_only or self.branch is None:
                raise IcechunkError(READ_ONLY_SESSION, kind="commit-not-allowed")
            state = self.ctx.state
            base, changes = self._state
            tip_id = await state.branch_tip(self.branch)
            if tip_id == base.id:
                return
            history = await state.history()
            landed = await path_between(history, base.id, tip_id)
            if landed is None:
                raise IcechunkError(
                    f"cannot rebase: the session's base snapshot {encode_id(base.id)} is not in "
                    f"the history of branch `{self.branch}` (was the branch reset?); open a new "
                    "writable session on the branch and write the changes again",
                    kind="bad-snapshot-chain-for-diff",
                )
            # Each landed commit's change from its parent, the logs expiration collapsed into
            # its step (spec 2.1) included: a missing one would hide conflicts, so it fails.
            steps = await asyncio.gather(
                *(history.step_logs(entry, require_pruned=True) for entry, _ in landed)
            )
            logs = [
                functools.reduce(lambda a, b: combine_transaction_logs(a, b, b.id), step)
                for step in steps
            ]
            snapshots = [snapshot for _, snapshot in landed]
            moved = [s.id for s, log in zip(snapshots, logs, strict=True) if has_moves([log])]
            if moved:  # icechunk 2.x never rebases over moves, whatever the solver
                raise rebase_over_moves_error(moved[-1])
            logger.debug(
                "Rebasing, branch_name: %r, from: %s, onto: %s, commits: %d",
                self.branch,
                encode_id(base.id),
                encode_id(tip_id),
                len(snapshots),
            )
            changes = await replay(solver, base, snapshots, logs, changes)
            tip = snapshots[0]
            if self.rearrangement is not None:
                self.rearrangement = self.rearrangement.rebased(tip)
                tip = self.rearrangement.view
            with self._lock:
                self._state = (tip, changes)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
