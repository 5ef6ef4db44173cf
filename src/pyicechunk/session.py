"""Sessions: the read path, the write path, and commit / flush / amend.

``Session`` is the public, blocking-and-async facade with icechunk 1.1's API. The work happens in
``_SessionCore``: it reads nodes from its base snapshot with the change set applied over them,
serves and records chunks, and turns the change set into manifests, a snapshot and a transaction
log. The only visible step of a commit is the final conditional update of the branch ref, so a
commit that fails at any point leaves the branch and all committed data as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
from zarr.core.group import GroupMetadata
from zarr.core.metadata import ArrayV3Metadata

from pyicechunk._sync import sync
from pyicechunk.asset_manager import AssetManager
from pyicechunk.change_set import ChangeSet
from pyicechunk.exceptions import ConflictError, IcechunkError, KeyNotFoundError
from pyicechunk.format.ids import (
    encode_id,
    new_chunk_id,
    new_manifest_id,
    new_node_id,
    new_snapshot_id,
)
from pyicechunk.format.manifest import (
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    VirtualPayload,
)
from pyicechunk.format.snapshot import (
    ArrayNodeData,
    DimensionShape,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    Snapshot,
    encode_metadata_value,
    validate_path,
)
from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.format.zarr_metadata import (
    ArrayMeta,
    GroupMeta,
    coords_in_grid,
    grid_upper,
    parse_node_metadata,
)
from pyicechunk.history import HistoryWalk
from pyicechunk.refs import BranchConflict, fetch_branch_versioned, update_branch
from pyicechunk.storage import ObjectVersion
from pyicechunk.storage.byte_range import ByteRequest, slice_bytes
from pyicechunk.storage.keys import chunk_key, manifest_key, snapshot_key, transaction_key
from pyicechunk.types import ChunkType, Diff, diff_from_changes

if TYPE_CHECKING:
    from pyicechunk.config import RepositoryConfig
    from pyicechunk.conflicts import ConflictSolver
    from pyicechunk.storage import Storage
    from pyicechunk.store import IcechunkStore

__all__ = ["ForkSession", "NodeInfo", "Session"]

Coords = tuple[int, ...]

_READ_ONLY_SESSION = "session error: Read only sessions cannot modify the repository"
_READ_ONLY_STORE = "cannot write to read-only store"
_NO_CHANGES = "session error: cannot commit, no changes made to the session"
_PICKLE_WRITABLE = (
    "You must opt-in to pickle writable sessions in a distributed context using Session.fork(). "
    "If you are using xarray's `Dataset.to_zarr` method to write dask arrays, please use "
    "`icechunk.xarray.to_icechunk` instead. "
)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the session sees it (base snapshot with the change set applied)."""

    path: str
    node_id: bytes
    is_array: bool
    user_data: bytes
    shape: tuple[DimensionShape, ...] | None = None
    dimension_names: tuple[str | None, ...] | None = None
    manifests: tuple[ManifestRef, ...] = ()
    is_new: bool = False


@dataclass
class RepoContext:
    """What a session needs from its repository; picklable (the caches are rebuilt)."""

    storage: Storage
    config: RepositoryConfig
    default_metadata: dict[str, Any] = field(default_factory=dict)
    authorized: dict[str, Any] = field(default_factory=dict)
    """Virtual chunk container prefix -> credentials (None: use the container's defaults)."""
    _assets: AssetManager | None = None

    @property
    def assets(self) -> AssetManager:
        if self._assets is None:
            self._assets = make_asset_manager(self.storage, self.config)
        return self._assets

    def setting(self, name: str) -> Any:
        return _storage_flag(self.storage, self.config, name)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_assets"] = None
        return state


def _opt(obj: Any, name: str, default: Any) -> Any:
    value = getattr(obj, name, None) if obj is not None else None
    return default if value is None else value


def make_asset_manager(storage: Storage, config: RepositoryConfig) -> AssetManager:
    caching = config.caching
    return AssetManager(
        storage.backend,
        compression_level=_opt(config.compression, "level", 3),
        num_snapshot_nodes=_opt(caching, "num_snapshot_nodes", 500_000),
        num_chunk_refs=_opt(caching, "num_chunk_refs", 15_000_000),
        num_transaction_changes=max(_opt(caching, "num_transaction_changes", 0), 100_000),
    )


def _storage_flag(storage: Storage, config: RepositoryConfig, name: str) -> bool:
    """An ``unsafe_use_*`` flag: repo config over backend default; unset means true."""
    for settings in (config.storage, storage.default_settings()):
        value = getattr(settings, name, None) if settings is not None else None
        if value is not None:
            return bool(value)
    return True


def now_micros() -> int:
    return time.time_ns() // 1000


def check_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(
            f"argument 'metadata': '{type(metadata).__name__}' object cannot be cast as 'dict'"
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"commit metadata keys must be str, got {key!r}")
        encode_metadata_value(value)  # raises TypeError naming what is not JSON-like
    return dict(metadata)


class _SessionCore:
    """The engine behind a Session and its IcechunkStore.

    A session may be shared by many threads, each possibly running its own event loop, as in
    the reference. Its state is the pair (base snapshot, change set), replaced as a whole by a
    commit or a rebase; every read takes the pair once, so it never mixes two states. Edits of
    the change set and reads that iterate it run under a lock, in short sections that never
    await. Operations that replace the state (commit, flush, amend, rebase) run one at a time,
    and edits wait while one runs, so the changes a commit writes are exactly those it started
    from and no acknowledged write is dropped by the state switch at its end.
    """

    def __init__(
        self,
        ctx: RepoContext,
        base: Snapshot,
        *,
        branch: str | None,
        read_only: bool,
    ) -> None:
        self.ctx = ctx
        self._state: tuple[Snapshot, ChangeSet] = (base, ChangeSet())
        self.branch = branch
        self.read_only = read_only
        self.forked = False
        """This session was forked and the forks were not merged back yet."""
        self.is_fork = False
        """This session is a fork: it can record changes but never commit them itself."""
        # Coordinates of the chunk changes being committed, computed once per commit and
        # shared by the manifest writer and the transaction log.
        self._commit_coords: dict[bytes, np.ndarray] = {}
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
                    "session; wait for it to finish before changing the session"
                )
            yield

    def _replace_state(self, base: Snapshot, changes: ChangeSet) -> None:
        with self._lock:
            self._state = (base, changes)

    def discard(self) -> None:
        with self.sync_edit():
            self._state = (self.base, ChangeSet())

    # -- properties ---------------------------------------------------------------------------

    @property
    def config(self) -> RepositoryConfig:
        return self.ctx.config

    @property
    def snapshot_id(self) -> str:
        return encode_id(self.base.id)

    def public_session(self, for_fork: bool) -> Session:
        return (ForkSession if for_fork or self.is_fork else Session)._wrap(self)

    def _inline_threshold(self) -> int:
        return int(_opt(self.ctx.config, "inline_chunk_threshold_bytes", 512))

    # -- nodes --------------------------------------------------------------------------------

    def node(self, path: str) -> NodeInfo | None:
        return _node(self._state, path)

    def nodes(self, prefix: str = "/") -> list[NodeInfo]:
        """The node at ``prefix`` and all nodes below it, sorted by path."""
        state = self._state
        base, changes = state
        out: list[NodeInfo] = []
        base_root = base.get_node(prefix)
        candidates: Iterable[NodeSnapshot] = base.iter_descendants(prefix)
        if base_root is not None:
            candidates = [base_root, *candidates]
        with self._lock:
            for node in candidates:
                if not changes.is_deleted(node.path, node.id):
                    out.append(_apply_updates(changes, node))
            for path in (*changes.new_groups, *changes.new_arrays):
                if _is_at_or_below(path, prefix):
                    info = _node(state, path)
                    assert info is not None
                    out.append(info)
        out.sort(key=lambda n: n.path)
        return out

    async def get_node(self, path: str) -> NodeInfo | None:
        return self.node(path)

    async def list_nodes(self, prefix: str = "/") -> list[NodeInfo]:
        return self.nodes(prefix)

    async def metadata_document(self, path: str) -> bytes | None:
        """The ``zarr.json`` of the node at ``path``, checked if it comes from the snapshot."""
        state = self._state
        node = _node(state, path)
        if node is None:
            return None
        if not node.is_new:
            _check_stored_metadata(state[0], node)
        return node.user_data

    def _check_writable(self) -> None:
        if self.read_only:
            raise IcechunkError(_READ_ONLY_STORE)

    async def set_metadata(self, path: str, data: bytes) -> None:
        self._check_writable()
        path = validate_path(path)
        meta = parse_node_metadata(path, data)
        await self._enter_edit()
        try:
            self._check_writable()
            self._record_metadata(path, data, meta)
        finally:
            self._lock.release()

    def _record_metadata(self, path: str, data: bytes, meta: ArrayMeta | GroupMeta) -> None:
        changes = self.changes
        existing = self.node(path)
        if existing is None:
            node_id = new_node_id()
            if isinstance(meta, ArrayMeta):
                changes.new_arrays[path] = (node_id, meta)
            else:
                changes.new_groups[path] = (node_id, meta.user_data)
            changes.touched = True
            return
        if existing.is_array != isinstance(meta, ArrayMeta):
            have, want = ("an array", "a group") if existing.is_array else ("a group", "an array")
            raise IcechunkError(
                f"node already exists at `{path}`: it is {have}; delete it before writing "
                f"{want} there"
            )
        if existing.user_data == data:
            return
        changes.touched = True
        if isinstance(meta, ArrayMeta):
            if existing.is_new:
                changes.new_arrays[path] = (existing.node_id, meta)
            else:
                changes.updated_arrays[existing.node_id] = meta
        else:
            assert isinstance(meta, GroupMeta)
            if existing.is_new:
                changes.new_groups[path] = (existing.node_id, meta.user_data)
            else:
                changes.updated_groups[existing.node_id] = meta.user_data

    async def delete_node(self, path: str) -> None:
        self._check_writable()
        await self._enter_edit()
        try:
            self._check_writable()
            self._record_deletion(path)
        finally:
            self._lock.release()

    def _record_deletion(self, path: str) -> None:
        base, changes = self._state
        for new_path in [p for p in changes.new_groups if _is_at_or_below(p, path)]:
            node_id, _ = changes.new_groups.pop(new_path)
            changes.forget_node(node_id)
            changes.touched = True
        for new_path in [p for p in changes.new_arrays if _is_at_or_below(p, path)]:
            node_id, _ = changes.new_arrays.pop(new_path)
            changes.forget_node(node_id)
            changes.touched = True
        base_root = base.get_node(path)
        targets: list[NodeSnapshot] = list(base.iter_descendants(path))
        if base_root is not None:
            targets.append(base_root)
        for node in targets:
            if changes.is_deleted(node.path, node.id):
                continue
            if node.array is None:
                changes.deleted_groups[node.path] = node.id
            else:
                changes.deleted_arrays[node.path] = node.id
            changes.forget_node(node.id)
            changes.touched = True

    async def clear(self) -> None:
        await self.delete_node("/")

    # -- chunks -------------------------------------------------------------------------------

    def _array(self, path: str, coords: Coords) -> NodeInfo:
        """The array a chunk is written to, with ``coords`` checked against its grid."""
        node = self.node(path)
        if node is None:
            raise KeyNotFoundError(
                path,
                f"node not found at `{path}`: there is no array at `{path}` to hold chunk "
                f"{list(coords)}; create the array (write its zarr.json) before its chunks",
            )
        if not node.is_array:
            raise IcechunkError(f"there is not an array at `{path}`")
        assert node.shape is not None
        if len(coords) != len(node.shape) or not coords_in_grid(coords, node.shape):
            raise IcechunkError(
                f"invalid chunk index: coordinates ChunkIndices({list(coords)}) are not valid "
                f"for array at {node.path}"
            )
        return node

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
        await self._enter_edit()
        try:
            self._check_writable()
            node_id = self._array(path, coords).node_id
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
        if len(data) <= self._inline_threshold():
            await self._record_chunk(path, coords, InlinePayload(bytes(data)))
            return
        # Checked before the chunk object is written, so a bad key writes nothing.
        node = self._array(path, coords)
        chunk_id = new_chunk_id()
        await self.ctx.assets.write_chunk(chunk_id, data)
        payload = NativePayload(chunk_id, 0, len(data))
        await self._record_chunk(path, coords, payload, written_for=node.node_id)

    async def delete_chunk(self, path: str, coords: Coords) -> None:
        self._check_writable()
        await self._record_chunk(path, coords, None)

    async def _payload(
        self, state: tuple[Snapshot, ChangeSet], node: NodeInfo, coords: Coords
    ) -> ChunkPayload | None:
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
            array = await self._manifest_array(
                base, mref.object_id, node.node_id, node.path, len(node.shape)
            )
            i = array.find(coords)
            return array.payload(i) if i >= 0 else None
        return None

    async def _manifest_array(
        self, base: Snapshot, manifest_id: bytes, node_id: bytes, path: str, ndim: int
    ) -> ArrayManifest:
        """The chunk refs of one array in one of its manifests, checked against the node.

        The snapshot says which manifests hold refs for an array; a manifest without that
        array, or with refs of another dimensionality, is damage, never an empty array.
        """
        info = _manifest_info(base, manifest_id)
        manifest = await self.ctx.assets.fetch_manifest(manifest_id, info.size_bytes)
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
                "(the manifest or the snapshot was corrupted or replaced)"
            )
        raise IcechunkError(
            f"{where} holds {array.ndim}-dimensional chunk coordinates for a "
            f"{ndim}-dimensional array; the repository is damaged"
        )

    async def read_payload(
        self, payload: ChunkPayload, byte_range: ByteRequest | None
    ) -> bytes | memoryview:
        if isinstance(payload, InlinePayload):
            return slice_bytes(payload.data, byte_range)
        if isinstance(payload, NativePayload):
            return await self.ctx.assets.fetch_chunk(
                payload.chunk_id, payload.offset, payload.length, byte_range
            )
        from pyicechunk.virtual import fetch_virtual_chunk

        # Authorization carries no credentials here, so S3 containers use anonymous or
        # environment credentials (see fetch_virtual_chunk).
        authorized = self.ctx.authorized
        return await fetch_virtual_chunk(payload, byte_range, self.ctx.config, authorized)

    async def get_chunk(
        self, path: str, coords: Coords, byte_range: ByteRequest | None = None
    ) -> bytes | memoryview | None:
        state = self._state
        node = _node(state, path)
        if node is None or not node.is_array:
            return None
        payload = await self._payload(state, node, coords)
        if payload is None:
            return None
        return await self.read_payload(payload, byte_range)

    async def get_chunks(
        self, requests: Sequence[tuple[str, Coords, ByteRequest | None]]
    ) -> list[bytes | memoryview | None]:
        return list(await asyncio.gather(*(self.get_chunk(*r) for r in requests)))

    async def chunk_exists(self, path: str, coords: Coords) -> bool:
        state = self._state
        node = _node(state, path)
        if node is None or not node.is_array:
            return False
        return await self._payload(state, node, coords) is not None

    async def chunk_size(self, path: str, coords: Coords) -> int:
        state = self._state
        node = _node(state, path)
        if node is None or not node.is_array:
            return 0
        payload = await self._payload(state, node, coords)
        if payload is None:
            return 0
        if isinstance(payload, InlinePayload):
            return len(payload.data)
        return payload.length

    async def _base_arrays(self, base: Snapshot, node: NodeInfo) -> list[ArrayManifest]:
        """The node's chunk refs in each manifest of the base snapshot that holds some."""
        if node.is_new:
            return []
        ndim = len(node.shape or ())
        return await self._all_refs(base, node.node_id, node.path, ndim, node.manifests)

    async def _all_refs(
        self, base: Snapshot, node_id: bytes, path: str, ndim: int, refs: Sequence[ManifestRef]
    ) -> list[ArrayManifest]:
        """Every chunk ref of an array, per manifest, for code that reads all of them.

        Such code also checks the refs lie in the box the snapshot records for their manifest:
        a read only looks into a manifest whose box holds the chunk, so a ref outside it would
        be listed (or carried into a new manifest) but never read.
        """
        arrays = await asyncio.gather(
            *(self._manifest_array(base, m.object_id, node_id, path, ndim) for m in refs)
        )
        for mref, array in zip(refs, arrays, strict=True):
            if len(array) and ndim:
                lo = np.array([e[0] for e in mref.extents], dtype=np.int64)
                hi = np.array([e[1] for e in mref.extents], dtype=np.int64)
                if ((array.coords < lo) | (array.coords >= hi)).any():
                    raise IcechunkError(
                        f"manifest {encode_id(mref.object_id)} holds chunk references of array "
                        f"{path} outside the extents snapshot {encode_id(base.id)} records "
                        "for it; the repository is damaged"
                    )
        return list(arrays)

    async def chunk_coords(self, path: str) -> list[Coords]:
        state = self._state
        node = _node(state, path)
        if node is None or not node.is_array:
            return []
        assert node.shape is not None
        coords: set[Coords] = set()
        for array in await self._base_arrays(state[0], node):
            coords.update(tuple(int(x) for x in row) for row in array.coords)
        coords = {c for c in coords if coords_in_grid(c, node.shape)}
        with self._lock:
            changed = list(state[1].chunks.get(node.node_id, {}).items())
        for c, payload in changed:
            if payload is None:
                coords.discard(c)
            else:
                coords.add(c)
        return sorted(coords)

    async def chunk_type(self, path: str, coords: Coords) -> ChunkType:
        if not path.startswith("/"):
            raise IcechunkError(
                f"could not create path from prefix `{path}`: paths must be absolute"
            )
        state = self._state
        node = _node(state, path)
        if node is None:
            raise IcechunkError(f"session error: node not found at `{path}`")
        if not node.is_array:
            raise IcechunkError(f"session error: there is not an array at `{path}`")
        payload = await self._payload(state, node, tuple(coords))
        if payload is None:
            return ChunkType.UNINITIALIZED
        if isinstance(payload, InlinePayload):
            return ChunkType.INLINE
        if isinstance(payload, NativePayload):
            return ChunkType.NATIVE
        return ChunkType.VIRTUAL

    async def virtual_chunk_locations(self) -> list[str]:
        """Locations of every virtual ref the session sees, per array in chunk order."""
        from pyicechunk.format.manifest import VIRTUAL as VIRTUAL_KIND

        state = self._state
        out: list[str] = []
        for node in self.nodes("/"):
            if not node.is_array:
                continue
            assert node.shape is not None
            with self._lock:
                changed = dict(state[1].chunks.get(node.node_id, {}))
            found: list[tuple[Coords, str]] = [
                (c, p.location) for c, p in changed.items() if isinstance(p, VirtualPayload)
            ]
            for array in await self._base_arrays(state[0], node):
                if not len(array):
                    continue
                rows = np.flatnonzero(array.kind == VIRTUAL_KIND)
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
                "to the repository config, or pass validate_container=False"
            )
        payload = VirtualPayload(normalized, offset, length, etag, last_modified)
        await self._record_chunk(path, coords, payload)

    # -- status and diff ----------------------------------------------------------------------

    def status(self) -> Diff:
        if self.read_only:
            return Diff()
        base, changes = self._state
        with self._lock:
            tx = changes.to_transaction_log(base.id)
            new_nodes = [*changes.new_groups.items(), *changes.new_arrays.items()]
        paths = {n.id: n.path for n in base.nodes}
        for path, (node_id, _) in new_nodes:
            paths[node_id] = path
        return diff_from_transaction_logs([tx], paths)

    # -- commit, flush, amend -----------------------------------------------------------------

    async def rebase(self, solver: ConflictSolver) -> None:
        """Replay the change set over every snapshot the branch gained since the base."""
        async with self._exclusive_operation():
            await self._rebase(solver)

    async def _rebase(self, solver: ConflictSolver) -> None:
        from pyicechunk.exceptions import RebaseFailedError
        from pyicechunk.refs import fetch_branch

        if self.read_only or self.branch is None:
            raise IcechunkError(_READ_ONLY_SESSION)
        assets = self.ctx.assets
        base, changes = self._state
        tip_id = await fetch_branch(self.ctx.storage.backend, self.branch)
        if tip_id == base.id:
            return
        landed: list[Snapshot] = []
        async for snapshot in HistoryWalk(assets, tip_id):
            if snapshot.id == base.id:
                break
            landed.append(snapshot)
        else:
            raise IcechunkError(
                f"cannot rebase: the session's base snapshot {encode_id(base.id)} is not in the "
                f"history of branch `{self.branch}` (was the branch reset?); open a new "
                "writable session on the branch and write the changes again"
            )
        tip = landed[0]
        # The solvers never modify the change set they get, so a failure leaves it untouched.
        current = base
        for snapshot in reversed(landed):
            tx = await assets.fetch_transaction_log(snapshot, current)
            solved = solver._solve(tx, tip, changes, current, snapshot)
            if isinstance(solved, list):
                raise RebaseFailedError(encode_id(snapshot.id), solved)
            changes, current = solved, snapshot
        self._replace_state(tip, changes)

    def _check_can_commit(self, verb: str) -> None:
        if self.is_fork:
            raise TypeError(_FORK_CANNOT.format(verb))
        if self.read_only:
            raise IcechunkError(_READ_ONLY_SESSION)

    def _properties(self, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**self.ctx.default_metadata, **check_metadata(metadata)}

    async def flush(self, message: str, metadata: Mapping[str, Any] | None) -> str:
        async with self._exclusive_operation():
            return await self._flush(message, metadata)

    async def _flush(self, message: str, metadata: Mapping[str, Any] | None) -> str:
        if self.is_fork:
            raise TypeError(_FORK_CANNOT.format("flush"))
        if not self.changes.touched:
            raise IcechunkError(_NO_CHANGES)
        self._check_can_commit("flush")
        props = self._properties(metadata)
        async with self._chunk_barrier() as chunks_durable:
            snapshot = await self._write_snapshot(
                message, props, self.base.id, self.base.flushed_at
            )
            # No ref moves, but the caller gets an id to branch or tag from: make it durable.
            await asyncio.gather(
                chunks_durable,
                self.ctx.storage.backend.make_durable(self._written_keys(snapshot)),
            )
        self._finish(snapshot)
        return encode_id(snapshot.id)

    async def commit(
        self, message: str, metadata: Mapping[str, Any] | None, *, allow_empty: bool = False
    ) -> str:
        async with self._exclusive_operation():
            return await self._commit(message, metadata, allow_empty)

    async def _commit(
        self, message: str, metadata: Mapping[str, Any] | None, allow_empty: bool
    ) -> str:
        self._check_can_commit("commit")
        if not self.changes.touched and not allow_empty:
            raise IcechunkError(_NO_CHANGES)
        if not isinstance(message, str):
            raise TypeError(f"argument 'message': '{type(message).__name__}' object is not a str")
        props = self._properties(metadata)
        assert self.branch is not None
        async with self._chunk_barrier() as chunks_durable:
            current, version = await self._check_tip(self.base.id)
            snapshot = await self._write_snapshot(
                message, props, self.base.id, self.base.flushed_at
            )
            await chunks_durable
            await self._move_branch(snapshot, self.base.id, (current, version))
        self._finish(snapshot)
        return encode_id(snapshot.id)

    @contextlib.asynccontextmanager
    async def _chunk_barrier(self) -> AsyncIterator[asyncio.Future[None]]:
        """Start syncing this session's chunk files now; yield the task to await before the ref.

        The chunks were written before the commit began, so their barrier runs while the
        manifests and the snapshot are built and written, instead of after. If the body fails
        before awaiting it, the barrier is still waited for (its outcome no longer matters).
        """
        keys = self._chunk_keys()
        durable = self.ctx.storage.backend.make_durable(keys) if keys else asyncio.sleep(0)
        task = asyncio.ensure_future(durable)
        try:
            yield task
        finally:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: a failure was already raised, or is moot

    async def _check_tip(self, expected: bytes) -> tuple[bytes | None, ObjectVersion | None]:
        """Refuse to write anything if the branch moved or the repository is not spec v1."""
        assert self.branch is not None
        backend = self.ctx.storage.backend
        (current, version), v2 = await asyncio.gather(
            fetch_branch_versioned(backend, self.branch), backend.exists("repo")
        )
        if v2:
            raise IcechunkError(
                "this repository uses Icechunk v2 format (an object named `repo` exists at its "
                "root); pyicechunk writes spec version 1 only and will not commit to it"
            )
        if current != expected:
            raise ConflictError(self.snapshot_id, None if current is None else encode_id(current))
        return current, version

    async def amend(self, message: str, metadata: Mapping[str, Any] | None) -> str:
        async with self._exclusive_operation():
            return await self._amend(message, metadata)

    async def _amend(self, message: str, metadata: Mapping[str, Any] | None) -> str:
        self._check_can_commit("amend")
        if not isinstance(message, str):
            raise TypeError(f"argument 'message': '{type(message).__name__}' object is not a str")
        tip = self.base
        if tip.parent_id is None:
            raise IcechunkError(
                "cannot amend the initial snapshot of the repository: there is no commit to "
                "replace; use commit() instead"
            )
        props = self._properties(metadata)
        assert self.branch is not None
        current, version = await self._check_tip(tip.id)
        assets = self.ctx.assets
        parent = await assets.fetch_snapshot(tip.parent_id)
        tip_tx = await assets.fetch_transaction_log(tip, parent)
        async with self._chunk_barrier() as chunks_durable:
            snapshot = await self._write_snapshot(
                message, props, tip.parent_id, parent.flushed_at, earlier_tx=tip_tx
            )
            await chunks_durable
            await self._move_branch(snapshot, tip.id, (current, version))
        self._finish(snapshot)
        return encode_id(snapshot.id)

    async def _move_branch(
        self,
        snapshot: Snapshot,
        expected: bytes,
        known: tuple[bytes | None, ObjectVersion | None],
    ) -> None:
        """Point the branch at ``snapshot`` once everything it references is durable."""
        assert self.branch is not None
        backend = self.ctx.storage.backend
        try:
            await update_branch(
                backend,
                self.branch,
                snapshot.id,
                expected,
                conditional_create=self.ctx.setting("unsafe_use_conditional_create"),
                conditional_update=self.ctx.setting("unsafe_use_conditional_update"),
                known=known,
                durable=self._written_keys(snapshot),
            )
        except BranchConflict as c:
            raise ConflictError(
                encode_id(expected), None if c.actual is None else encode_id(c.actual)
            ) from None

    def _finish(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._state = (snapshot, ChangeSet())
            self.branch = None
            self.read_only = True

    async def _write_snapshot(
        self,
        message: str,
        properties: dict[str, Any],
        parent_id: bytes,
        parent_flushed_at: int,
        earlier_tx: TransactionLog | None = None,
    ) -> Snapshot:
        """Write manifests, then the snapshot and its transaction log; move no ref."""
        assets = self.ctx.assets
        snapshot_id = new_snapshot_id()
        base = self.base
        changes = self.changes
        self._commit_coords = {nid: changes.coords_array(nid) for nid in changes.chunks}

        node_jobs: list[Any] = []
        for node in base.nodes:
            if changes.is_deleted(node.path, node.id):
                continue
            node_jobs.append(self._carry_node(node))
        for path, (node_id, user_data) in changes.new_groups.items():
            node_jobs.append(_ready(NodeSnapshot(node_id, path, user_data, None), ()))
        for path, (node_id, meta) in changes.new_arrays.items():
            node_jobs.append(self._new_array_node(path, node_id, meta))
        results = await asyncio.gather(*node_jobs)

        nodes = sorted((n for n, _ in results), key=lambda n: n.path)
        infos: dict[bytes, ManifestFileInfo] = {}
        for _, node_infos in results:
            for info in node_infos:
                infos[info.id] = info

        flushed_at = now_micros()
        if flushed_at <= parent_flushed_at:
            raise IcechunkError(
                "cannot commit: this machine's clock is behind the time recorded in the parent "
                "snapshot; check the system clock"
            )
        snapshot = Snapshot(
            id=snapshot_id,
            parent_id=parent_id,
            nodes=tuple(nodes),
            flushed_at=flushed_at,
            message=message,
            metadata=properties,
            manifest_files=tuple(sorted(infos.values(), key=lambda i: i.id)),
        )
        tx = changes.to_transaction_log(snapshot_id, self._commit_coords)
        self._commit_coords = {}
        if earlier_tx is not None:
            tx = _combine_transaction_logs(earlier_tx, tx, snapshot_id)
        await asyncio.gather(assets.write_snapshot(snapshot), assets.write_transaction_log(tx))
        return snapshot

    def _written_keys(self, snapshot: Snapshot) -> list[str]:
        """Metadata objects this session wrote for the new snapshot (chunks: `_chunk_keys`)."""
        keys = [snapshot_key(snapshot.id), transaction_key(snapshot.id)]
        base_manifests = {m.id for m in self.base.manifest_files}
        keys.extend(
            manifest_key(m.id) for m in snapshot.manifest_files if m.id not in base_manifests
        )
        return keys

    def _chunk_keys(self) -> list[str]:
        """Chunk objects this session wrote that its change set still references."""
        keys: list[str] = []
        for per_node in self.changes.chunks.values():
            keys.extend(
                chunk_key(p.chunk_id) for p in per_node.values() if type(p) is NativePayload
            )
        return keys

    async def _carry_node(
        self, node: NodeSnapshot
    ) -> tuple[NodeSnapshot, tuple[ManifestFileInfo, ...]]:
        changes = self.changes
        if node.array is None:
            user_data = changes.updated_groups.get(node.id, node.user_data)
            return NodeSnapshot(node.id, node.path, user_data, None), ()
        meta = changes.updated_arrays.get(node.id)
        chunk_changes = changes.chunks.get(node.id)
        old = node.array
        if meta is None and not chunk_changes:
            return node, tuple(self._info(m.object_id) for m in old.manifests)
        shape = meta.shape if meta is not None else old.shape
        names = meta.dimension_names if meta is not None else old.dimension_names
        user_data = meta.user_data if meta is not None else node.user_data
        upper = grid_upper(shape)
        if not chunk_changes and all(_extents_within(m.extents, upper) for m in old.manifests):
            refs = old.manifests
            infos = tuple(self._info(m.object_id) for m in refs)
        else:
            refs, infos = await self._rewrite_manifest(
                node.id, node.path, shape, old.manifests, chunk_changes
            )
        return NodeSnapshot(node.id, node.path, user_data, ArrayNodeData(shape, names, refs)), infos

    async def _new_array_node(
        self, path: str, node_id: bytes, meta: ArrayMeta
    ) -> tuple[NodeSnapshot, tuple[ManifestFileInfo, ...]]:
        refs, infos = await self._rewrite_manifest(
            node_id, path, meta.shape, (), self.changes.chunks.get(node_id)
        )
        data = ArrayNodeData(meta.shape, meta.dimension_names, refs)
        return NodeSnapshot(node_id, path, meta.user_data, data), infos

    def _info(self, manifest_id: bytes) -> ManifestFileInfo:
        return _manifest_info(self.base, manifest_id)

    async def _rewrite_manifest(
        self,
        node_id: bytes,
        path: str,
        shape: tuple[DimensionShape, ...],
        old_refs: Sequence[ManifestRef],
        chunk_changes: dict[Coords, ChunkPayload | None] | None,
    ) -> tuple[tuple[ManifestRef, ...], tuple[ManifestFileInfo, ...]]:
        """One manifest with the old refs (minus touched and out-of-grid ones) and the new ones.

        Reading the old refs checks them like a read does: a damaged manifest fails the commit
        instead of losing its chunks from the new snapshot.
        """
        ndim = len(shape)
        upper = grid_upper(shape)
        parts: list[ArrayManifest] = []
        touched = None
        if chunk_changes:
            touched = self._commit_coords.get(node_id)
            if touched is None or len(touched) != len(chunk_changes):
                touched = np.array(list(chunk_changes), dtype=np.uint32).reshape(
                    len(chunk_changes), ndim
                )
        base = self.base
        # The stored refs have the dimensions the snapshot records for the array.
        stored = base.get_node(path)
        stored_ndim = len(stored.array.shape) if stored and stored.array else ndim
        for array in await self._all_refs(base, node_id, path, stored_ndim, old_refs):
            if not len(array):
                continue
            keep = array.within(upper)
            if touched is not None:
                hits = array.find_many(touched)
                keep[hits[hits >= 0]] = False
            parts.append(array.take(keep))
        if chunk_changes and touched is not None:
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
                parts.append(
                    ArrayManifest.from_payloads(node_id, ndim, touched[keep_idx], payloads)  # type: ignore[arg-type]
                )
        parts = [p for p in parts if len(p)]
        if not parts:
            return (), ()
        merged = ArrayManifest.concat_sorted(node_id, parts) if len(parts) > 1 else parts[0]
        manifest_id = new_manifest_id()
        size = await self.ctx.assets.write_manifest(manifest_id, [merged])
        ref = ManifestRef(manifest_id, merged.extents())
        return (ref,), (ManifestFileInfo(manifest_id, size, len(merged)),)


def _node(state: tuple[Snapshot, ChangeSet], path: str) -> NodeInfo | None:
    """The node at ``path`` in a session state (base snapshot with the changes applied)."""
    base, changes = state
    new = changes.new_node(path)
    if new is not None:
        node_id, meta = new
        if isinstance(meta, ArrayMeta):
            return NodeInfo(
                path, node_id, True, meta.user_data, meta.shape, meta.dimension_names, (), True
            )
        return NodeInfo(path, node_id, False, meta, is_new=True)
    node = base.get_node(path)
    if node is None or changes.is_deleted(path, node.id):
        return None
    return _apply_updates(changes, node)


def _apply_updates(changes: ChangeSet, node: NodeSnapshot) -> NodeInfo:
    if node.array is None:
        user_data = changes.updated_groups.get(node.id, node.user_data)
        return NodeInfo(node.path, node.id, False, user_data)
    meta = changes.updated_arrays.get(node.id)
    if meta is None:
        return NodeInfo(
            node.path,
            node.id,
            True,
            node.user_data,
            node.array.shape,
            node.array.dimension_names,
            node.array.manifests,
        )
    return NodeInfo(
        node.path,
        node.id,
        True,
        meta.user_data,
        meta.shape,
        meta.dimension_names,
        node.array.manifests,
    )


def _manifest_info(base: Snapshot, manifest_id: bytes) -> ManifestFileInfo:
    info = base.manifest_info(manifest_id)
    if info is None:
        raise IcechunkError(
            f"manifest information cannot be found in snapshot {encode_id(base.id)} "
            f"for manifest {encode_id(manifest_id)}: the snapshot is damaged"
        )
    return info


def _check_stored_metadata(base: Snapshot, node: NodeInfo) -> None:
    """Refuse a node's stored ``zarr.json`` that zarr cannot read or that contradicts the node.

    The snapshot keeps the array's shape, chunk grid and dimension names beside the document;
    a document that disagrees with them, or is not a readable zarr v3 document, is damage.
    """
    where = f"the zarr.json of node {node.path} in snapshot {encode_id(base.id)}"
    try:
        meta = parse_node_metadata(node.path, node.user_data)
        document = json.loads(node.user_data)
        if isinstance(meta, ArrayMeta):
            ArrayV3Metadata.from_dict(document)
        else:
            GroupMetadata.from_dict(document)
    except IcechunkError as e:
        raise IcechunkError(f"{where} is damaged: {e.message}") from None
    except Exception as e:  # zarr's own validation: its error types vary by field
        raise IcechunkError(f"{where} is damaged: zarr cannot read it ({e!r})") from None
    if isinstance(meta, ArrayMeta) != node.is_array:
        kind = "an array" if isinstance(meta, ArrayMeta) else "a group"
        raise IcechunkError(f"{where} is damaged: it describes {kind}, the snapshot does not")
    if isinstance(meta, ArrayMeta) and (
        meta.shape != node.shape
        or _dimension_names(meta.dimension_names, len(meta.shape))
        != _dimension_names(node.dimension_names, len(meta.shape))
    ):
        raise IcechunkError(
            f"{where} is damaged: its shape, chunk grid or dimension names differ from those "
            "the snapshot records for the array"
        )


def _dimension_names(names: tuple[str | None, ...] | None, ndim: int) -> tuple[str | None, ...]:
    # No names, and a null or empty name per dimension, all mean "unnamed".
    return tuple(n or None for n in names) if names is not None else (None,) * ndim


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _ready(
    node: NodeSnapshot, infos: tuple[ManifestFileInfo, ...]
) -> tuple[NodeSnapshot, tuple[ManifestFileInfo, ...]]:
    return node, infos


def _is_at_or_below(path: str, prefix: str) -> bool:
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def _in_extents(coords: Coords, extents: tuple[tuple[int, int], ...]) -> bool:
    if not extents:
        return True
    for c, (lo, hi) in zip(coords, extents, strict=False):
        if not lo <= c < hi:
            return False
    return True


def _extents_within(extents: tuple[tuple[int, int], ...], upper: tuple[int, ...]) -> bool:
    return all(hi <= u for (_, hi), u in zip(extents, upper, strict=False))


def _combine_transaction_logs(
    earlier: TransactionLog, later: TransactionLog, snapshot_id: bytes
) -> TransactionLog:
    """The changes of ``earlier`` followed by ``later``, as one log (used by amend)."""
    deleted = set(later.deleted_groups) | set(later.deleted_arrays)
    created_earlier = set(earlier.new_groups) | set(earlier.new_arrays)
    created = created_earlier | set(later.new_groups) | set(later.new_arrays)

    def keep(ids: Iterable[bytes], drop: set[bytes]) -> list[bytes]:
        return sorted({i for i in ids if i not in drop})

    chunks: dict[bytes, np.ndarray] = {}
    for tx in (earlier, later):
        for node_id, coords in tx.updated_chunks.items():
            if node_id in deleted:
                continue
            prev = chunks.get(node_id)
            if prev is None or not len(prev):
                chunks[node_id] = coords
            elif len(coords):
                chunks[node_id] = np.unique(np.concatenate([prev, coords]), axis=0)
    return TransactionLog(
        id=snapshot_id,
        new_groups=keep([*earlier.new_groups, *later.new_groups], deleted),
        new_arrays=keep([*earlier.new_arrays, *later.new_arrays], deleted),
        deleted_groups=keep([*earlier.deleted_groups, *later.deleted_groups], created_earlier),
        deleted_arrays=keep([*earlier.deleted_arrays, *later.deleted_arrays], created_earlier),
        updated_groups=keep([*earlier.updated_groups, *later.updated_groups], created | deleted),
        updated_arrays=keep([*earlier.updated_arrays, *later.updated_arrays], created | deleted),
        updated_chunks=chunks,
    )


def diff_from_transaction_logs(logs: Iterable[TransactionLog], paths: Mapping[bytes, str]) -> Diff:
    """Union of transaction logs, with node ids turned into paths (unknown ids are left out)."""
    sets: dict[str, set[bytes]] = {
        k: set()
        for k in (
            "new_groups",
            "new_arrays",
            "deleted_groups",
            "deleted_arrays",
            "updated_groups",
            "updated_arrays",
        )
    }
    chunks: dict[bytes, set[Coords]] = {}
    for tx in logs:
        for name, ids in sets.items():
            ids.update(getattr(tx, name))
        for node_id, coords in tx.updated_chunks.items():
            dest = chunks.setdefault(node_id, set())
            dest.update(tuple(int(x) for x in row) for row in coords)

    def to_paths(ids: set[bytes]) -> list[str]:
        return [paths[i] for i in ids if i in paths]

    return diff_from_changes(
        new_groups=to_paths(sets["new_groups"]),
        new_arrays=to_paths(sets["new_arrays"]),
        deleted_groups=to_paths(sets["deleted_groups"]),
        deleted_arrays=to_paths(sets["deleted_arrays"]),
        updated_groups=to_paths(sets["updated_groups"]),
        updated_arrays=to_paths(sets["updated_arrays"]),
        updated_chunks={paths[i]: c for i, c in chunks.items() if i in paths},
    )


class Session:
    """A view of a repository at one snapshot; writable sessions also record changes.

    Obtain sessions from :meth:`Repository.writable_session` and
    :meth:`Repository.readonly_session`. A writable session becomes read-only after
    :meth:`commit`, :meth:`flush` or :meth:`amend`.
    """

    _core: _SessionCore

    def __init__(self, session: _SessionCore) -> None:
        self._core = session

    @classmethod
    def _wrap(cls, core: _SessionCore) -> Session:
        obj = cls.__new__(cls)
        obj._core = core
        return obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other._core is self._core

    __hash__ = object.__hash__

    def __getstate__(self) -> dict[str, Any]:
        if not self._core.read_only:
            raise ValueError(_PICKLE_WRITABLE)
        return {"_session": self._core, "_allow_changes": self._core.forked}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or "_session" not in state:
            raise ValueError("Invalid state")
        self._core = state["_session"]

    # -- properties ---------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Whether the session can no longer record changes."""
        return self._core.read_only

    @property
    def snapshot_id(self) -> str:
        """The snapshot this session is based on (the new one after a commit or flush)."""
        return self._core.snapshot_id

    @property
    def branch(self) -> str | None:
        """The branch a writable session commits to; None for read-only sessions."""
        return self._core.branch

    @property
    def has_uncommitted_changes(self) -> bool:
        """Whether anything was written since the session started (even if undone)."""
        return self._core.changes.touched

    @property
    def store(self) -> IcechunkStore:
        """A zarr store reading and writing through this session."""
        from pyicechunk.store import IcechunkStore

        return IcechunkStore(self._core, for_fork=isinstance(self, ForkSession))

    @property
    def config(self) -> RepositoryConfig:
        """A copy of the repository configuration."""
        import copy

        return copy.deepcopy(self._core.config)

    # -- changes ------------------------------------------------------------------------------

    def status(self) -> Diff:
        """The uncommitted changes, relative to the base snapshot."""
        return self._core.status()

    def discard_changes(self) -> None:
        """Drop every uncommitted change."""
        if not self._core.read_only:
            self._core.discard()

    def _warn_forked(self, verb: str) -> None:
        if self._core.forked:
            warnings.warn(
                f"{verb} a session after forking, and without merging will not work. "
                "Merge back in the remote changes first using Session.merge().",
                UserWarning,
                stacklevel=3,
            )

    def commit(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: Any | None = None,
        rebase_tries: int = 1_000,
        *,
        allow_empty: bool = False,
    ) -> str:
        """Commit the changes to the session's branch.

        Parameters
        ----------
        message
            The commit message.
        metadata
            Commit properties (JSON-like values), merged over the repository's default
            commit metadata.
        rebase_with
            A conflict solver used to rebase onto the branch tip if it moved.
        rebase_tries
            How many times to rebase and retry.
        allow_empty
            Commit even when nothing changed (the new snapshot has the same content).

        Returns
        -------
        str
            The id of the new snapshot.

        Raises
        ------
        ConflictError
            The branch moved since the session started (nothing was changed).
        IcechunkError
            No changes, a read-only session, or a storage failure.
        """
        self._warn_forked("Committing")
        return sync(
            self.commit_async(
                message, metadata, rebase_with, rebase_tries, allow_empty=allow_empty, _warn=False
            )
        )

    async def commit_async(
        self,
        message: str,
        metadata: dict[str, Any] | None = None,
        rebase_with: Any | None = None,
        rebase_tries: int = 1_000,
        *,
        allow_empty: bool = False,
        _warn: bool = True,
    ) -> str:
        """Async version of :meth:`commit`."""
        if _warn:
            self._warn_forked("Committing")
        core = self._core
        attempt = 0
        while True:
            try:
                return await core.commit(message, metadata, allow_empty=allow_empty)
            except ConflictError:
                if rebase_with is None or attempt >= rebase_tries:
                    raise
                attempt += 1
                await self.rebase_async(rebase_with)

    def amend(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Replace the branch tip with a new snapshot holding its changes plus this session's.

        The new snapshot's parent is the tip's parent, so the tip leaves the branch history
        (it stays readable by id until garbage collection). The branch moves only if it still
        points at the tip this session started from.

        Parameters
        ----------
        message
            The message of the replacement snapshot.
        metadata
            Its commit properties.

        Returns
        -------
        str
            The id of the new snapshot.

        Raises
        ------
        ConflictError
            The branch moved since the session started.
        IcechunkError
            A read-only session, or the tip is the repository's initial snapshot.
        """
        return sync(self.amend_async(message, metadata))

    async def amend_async(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Async version of :meth:`amend`."""
        return await self._core.amend(message, metadata)

    def flush(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Write a snapshot of the changes without moving any branch.

        Returns
        -------
        str
            The id of the new (detached) snapshot; the session becomes read-only on it.
        """
        self._warn_forked("Flushing")
        return sync(self._core.flush(message, metadata))

    async def flush_async(self, message: str, metadata: dict[str, Any] | None = None) -> str:
        """Async version of :meth:`flush`."""
        self._warn_forked("Flushing")
        return await self._core.flush(message, metadata)

    def rebase(self, solver: Any) -> None:
        """Replay this session's changes on the branch tip, using ``solver`` for conflicts."""
        sync(self.rebase_async(solver))

    async def rebase_async(self, solver: Any) -> None:
        """Async version of :meth:`rebase`."""
        from pyicechunk.conflicts import ConflictSolver

        core = self._core
        if core.read_only or core.branch is None:
            raise IcechunkError(_READ_ONLY_SESSION)
        if not isinstance(solver, ConflictSolver):
            raise TypeError(
                f"argument 'solver': '{type(solver).__name__}' object cannot be converted to "
                "'ConflictSolver'"
            )
        await core.rebase(solver)

    # -- inspection ---------------------------------------------------------------------------

    async def chunk_coordinates(
        self, array_path: str, batch_size: int = 1000
    ) -> AsyncIterator[tuple[int, ...]]:
        """Yield the coordinates of every initialized chunk of an array (each once)."""
        if not array_path.startswith("/"):
            raise ValueError("Invalid path: path must start with a `/` character")
        node = self._core.node(array_path)
        if node is None:
            raise IcechunkError(
                f"session error: node not found at `{array_path}`: existing node not found"
            )
        for coords in await self._core.chunk_coords(array_path):
            yield coords

    def chunk_type(self, array_path: str, chunk_coordinates: Sequence[int]) -> ChunkType:
        """How a chunk is stored: UNINITIALIZED, INLINE, NATIVE or VIRTUAL."""
        return sync(self._core.chunk_type(array_path, tuple(chunk_coordinates)))

    async def chunk_type_async(
        self, array_path: str, chunk_coordinates: Sequence[int]
    ) -> ChunkType:
        """Async version of :meth:`chunk_type`."""
        return await self._core.chunk_type(array_path, tuple(chunk_coordinates))

    def all_virtual_chunk_locations(self) -> list[str]:
        """The location of every virtual chunk reference."""
        return sync(self._core.virtual_chunk_locations())

    async def all_virtual_chunk_locations_async(self) -> list[str]:
        """Async version of :meth:`all_virtual_chunk_locations`."""
        return await self._core.virtual_chunk_locations()

    def allow_pickling(self) -> Any:
        """Removed API; use :meth:`fork`."""
        raise RuntimeError(
            "The allow_pickling context manager has been removed. Use the new `Session.fork` "
            "API instead. Better yet, use `to_icechunk` if that will fit your needs."
        )

    # -- distributed writes -------------------------------------------------------------------

    def fork(self) -> ForkSession:
        """Make an independent, picklable copy of this clean writable session.

        Send the forks to workers, let each write through its ``store``, bring them back and
        combine their changes here with :meth:`merge` before committing.

        Returns
        -------
        ForkSession
            A deep copy sharing nothing mutable with this session.

        Raises
        ------
        ValueError
            If this session has uncommitted changes, or is read-only.
        """
        import pickle

        core = self._core
        if core.changes.touched:
            raise ValueError(
                "Cannot fork a Session with uncommitted changes. Make a commit, create a new "
                "Session, and then fork that to execute distributed writes."
            )
        if core.read_only:
            raise ValueError(
                "You should not need to fork a read-only session. Read-only sessions can be "
                "pickled and transmitted directly."
            )
        clone: _SessionCore = pickle.loads(pickle.dumps(core))
        clone.forked = False
        clone.is_fork = True
        core.forked = True
        return ForkSession._wrap(clone)  # type: ignore[return-value]

    def _merge_one(self, other: Session, required: type[Session], error: str) -> None:
        if not isinstance(other, required):
            raise TypeError(error)
        if self._core.read_only:
            raise IcechunkError(_READ_ONLY_SESSION)
        theirs = other._core
        with theirs._lock:
            incoming = theirs.changes.copy()
        with self._core.sync_edit():
            self._core.changes.merge(incoming)

    def merge(self, *others: ForkSession) -> None:
        """Bring the changes of forks of this session into it (the last one wins on overlap).

        Parameters
        ----------
        *others
            Sessions created with :meth:`fork` (possibly pickled and written to elsewhere).

        Raises
        ------
        TypeError
            If one of ``others`` is not a :class:`ForkSession`.
        IcechunkError
            If this session is read-only.
        """
        for other in others:
            self._merge_one(
                other,
                ForkSession,
                "Sessions can only be merged with a ForkSession created with Session.fork(). "
                f"Received {type(other).__name__} instead.",
            )
        self._core.forked = False

    async def merge_async(self, *others: ForkSession) -> None:
        """Async version of :meth:`merge`."""
        self.merge(*others)


_FORK_CANNOT = (
    "Cannot {} a fork of a Session. If you are using uncooperative writes, please send the "
    "Repository object to your workers, not a Session. See "
    "https://icechunk.io/en/stable/icechunk-python/parallel/#distributed-writes for more."
)


class ForkSession(Session):
    """A picklable copy of a writable session, for distributed writes (see issue on forks).

    A fork cannot commit or flush: merge it back into the session it came from.
    """

    def __getstate__(self) -> dict[str, Any]:
        return {"_session": self._core}

    def merge(self, *others: ForkSession) -> None:
        """Bring the changes of other forks into this one (the last one wins on overlap).

        Raises
        ------
        TypeError
            If one of ``others`` is not a :class:`ForkSession`.
        """
        for other in others:
            self._merge_one(
                other,
                ForkSession,
                "A ForkSession can only be merged with another ForkSession. "
                f"Received {type(other)} instead.",
            )

    async def merge_async(self, *others: ForkSession) -> None:
        """Async version of :meth:`merge`."""
        self.merge(*others)

    def commit(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork.

        Raises
        ------
        TypeError
            Always; merge the fork into its parent session and commit that.
        """
        raise TypeError(_FORK_CANNOT.format("commit"))

    async def commit_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise TypeError(_FORK_CANNOT.format("commit"))

    def flush(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise TypeError(_FORK_CANNOT.format("flush"))

    async def flush_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise TypeError(_FORK_CANNOT.format("flush"))

    def amend(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise TypeError(_FORK_CANNOT.format("amend"))

    async def amend_async(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not available on a fork (see :meth:`commit`)."""
        raise TypeError(_FORK_CANNOT.format("amend"))
