"""`IcechunkStore`: the zarr v3 `Store` interface mapped onto a session.

The store owns no data. It turns zarr keys into node paths and chunk coordinates (the grammar
is :mod:`~pyicechunk.store.zarr_keys`) and calls the session core
(:class:`~pyicechunk.session.core.SessionCore`), which keeps the change set and talks to storage.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from zarr.abc.store import Store
from zarr.core.buffer import Buffer, BufferPrototype

from pyicechunk._docs import fill_doc, filled
from pyicechunk._repr import Block, Shown, session_block
from pyicechunk._sync import blocking_twin, sync
from pyicechunk.exceptions import IcechunkError, KeyNotFoundError
from pyicechunk.session.facade import PICKLE_WRITABLE, wrap_core
from pyicechunk.session.refusals import READ_ONLY_STORE
from pyicechunk.storage.byte_range import ByteRequest, check_request, slice_bytes
from pyicechunk.store.chunk_iterator import ArrayChunks
from pyicechunk.store.virtual_arrays import SKIPPED_REFS, VirtualArrays
from pyicechunk.store.zarr_keys import (
    CHUNK,
    METADATA,
    chunk_key,
    chunk_key_prefix,
    is_prefix_match,
    metadata_key,
    node_path,
    not_a_node,
    parse_key,
    prefix_path,
)
from pyicechunk.virtual import NO_CONTAINER_MESSAGE, VirtualChunkSpecLike

if TYPE_CHECKING:
    from zarr.core.common import BytesLike

    from pyicechunk.session import ForkSession, Session
    from pyicechunk.session.core import SessionCore

__all__ = ["IcechunkStore"]

# Docstring pieces several methods share (see pyicechunk._docs).
_ZARR_READ_ONLY = """\
ValueError
    If the store was opened read-only at the zarr level.
"""
_DOCS = {
    "key_parameter": """\
Parameters
----------
key
    A metadata or chunk key.
""",
    "invalid_key": """\
IcechunkError
    If the key is not a valid zarr v3 key.
""",
    "zarr_read_only": _ZARR_READ_ONLY,
    "read_only_raises": """\
Raises
------
IcechunkError
    For a read-only session.
"""
    + _ZARR_READ_ONLY,
}


class IcechunkStore(Shown, VirtualArrays, ArrayChunks, Store):
    """A zarr v3 store over an Icechunk session.

    Do not construct it directly: use ``Session.store``.

    Parameters
    ----------
    core
        The session core that holds the session's state.
    for_fork
        True when the store belongs to a `ForkSession`; such stores may be pickled.
    read_only
        The zarr-level read-only flag. Defaults to the session's flag at construction time.
    """

    _core: SessionCore
    _for_fork: bool

    def __init__(self, core: SessionCore, for_fork: bool, read_only: bool | None = None) -> None:
        super().__init__(read_only=core.read_only if read_only is None else read_only)
        self._core = core
        self._for_fork = for_fork
        self._is_open = True

    @classmethod
    async def open(cls, *args: Any, **kwargs: Any) -> Self:
        """Create a store; it is open from construction.

        zarr's default would open it a second time and fail with "store is already open".

        Parameters
        ----------
        *args, **kwargs
            The constructor's arguments.

        Returns
        -------
        IcechunkStore
        """
        return cls(*args, **kwargs)

    def __eq__(self, value: object) -> bool:
        return isinstance(value, IcechunkStore) and self._core is value._core

    def _block(self) -> Block:
        shown = (self.read_only, self._core.snapshot_id, ("branch", self._core.branch))
        return session_block("IcechunkStore", *shown)

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        if not self._core.read_only and not self._for_fork:
            raise ValueError(PICKLE_WRITABLE)
        return self.__dict__.copy()

    def with_read_only(self, read_only: bool = False) -> IcechunkStore:
        """Return a new, not yet opened store over the same session.

        Parameters
        ----------
        read_only
            The zarr-level read-only flag of the new store.

        Returns
        -------
        IcechunkStore
            A store that shares this store's session, with ``for_fork`` False.
        """
        store = IcechunkStore(self._core, for_fork=False, read_only=read_only)
        store._is_open = False
        return store

    @property
    def session(self) -> Session | ForkSession:
        """The session this store reads and writes (a `ForkSession` for a fork's store)."""
        return wrap_core(self._core, fork=self._for_fork)

    @property
    def supports_writes(self) -> bool:
        """Does the store support writes (and deletes, and listing)? Always True."""
        return True

    supports_deletes = supports_listing = supports_writes

    @property
    def supports_partial_writes(self) -> Literal[False]:
        """Does the store support partial writes? Always False."""
        return False

    @property
    def supports_consolidated_metadata(self) -> bool:
        """Icechunk keeps all metadata in the snapshot, so zarr must not consolidate it."""
        return False

    def _ensure_writable(self) -> None:
        # The session's own flag comes first so that a read-only session reports the
        # reference's IcechunkError; zarr's flag (from with_read_only) then gives zarr's error.
        if self._core.read_only:
            raise IcechunkError(READ_ONLY_STORE, kind="read-only-store")
        self._check_writable()

    @fill_doc(**_DOCS)
    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """Read the value at a key.

        Parameters
        ----------
        key
            A metadata key (``a/zarr.json``) or chunk key (``a/c/0/1``).
        prototype
            Creates the returned buffer.
        byte_range
            None for the whole value, or a `RangeByteRequest` (end exclusive),
            `OffsetByteRequest` or `SuffixByteRequest` (the last n bytes).

        Returns
        -------
        Buffer or None
            None if there is no such node or chunk.

        Raises
        ------
        {invalid_key}
        ValueError
            If `byte_range` is not a byte request.
        """
        if byte_range is not None:
            check_request(byte_range)
        kind, path, coords = parse_key(key)
        data: bytes | memoryview | None
        if kind == CHUNK:
            data = await self._core.get_chunk(path, coords, byte_range)
        elif kind == METADATA:
            document = await self._core.metadata_document(path)
            data = None if document is None else slice_bytes(document, byte_range)
        else:
            return None
        return None if data is None else prototype.buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> builtins.list[Buffer | None]:
        """Read several keys, or ranges of them, concurrently.

        Parameters
        ----------
        prototype
            Creates the returned buffers.
        key_ranges
            ``(key, byte_range)`` pairs; a key may appear several times.

        Returns
        -------
        list of Buffer or None
            In the order of `key_ranges`; None where the key does not exist.

        Raises
        ------
        IcechunkError
            If a key is not a valid zarr v3 key.
        """
        requests = list(key_ranges)
        results: builtins.list[bytes | memoryview | None] = [None] * len(requests)
        chunk_slots: builtins.list[int] = []
        chunk_requests: builtins.list[tuple[str, tuple[int, ...], ByteRequest | None]] = []
        metadata_slots: builtins.list[tuple[int, str, ByteRequest | None]] = []
        for slot, (key, byte_range) in enumerate(requests):
            check_request(byte_range)
            kind, path, coords = parse_key(key)
            if kind == CHUNK:
                chunk_slots.append(slot)
                chunk_requests.append((path, coords, byte_range))
            elif kind == METADATA:
                metadata_slots.append((slot, path, byte_range))

        async def read_chunks() -> None:
            if chunk_requests:
                found = await self._core.get_chunks(chunk_requests)
                for slot, data in zip(chunk_slots, found, strict=True):
                    results[slot] = data

        async def read_metadata(slot: int, path: str, byte_range: ByteRequest | None) -> None:
            document = await self._core.metadata_document(path)
            if document is not None:
                results[slot] = slice_bytes(document, byte_range)

        await asyncio.gather(read_chunks(), *(read_metadata(*m) for m in metadata_slots))
        make = prototype.buffer.from_bytes
        return [None if data is None else make(data) for data in results]

    @fill_doc(**_DOCS)
    async def exists(self, key: str) -> bool:
        """Whether a node (for a metadata key) or an initialized chunk exists.

        {key_parameter}

        Returns
        -------
        bool

        Raises
        ------
        {invalid_key}
        """
        kind, path, coords = parse_key(key)
        if kind == CHUNK:
            return await self._core.chunk_exists(path, coords)
        if kind == METADATA:
            return await self._core.get_node(path) is not None
        return False

    @fill_doc(**_DOCS)
    async def set(self, key: str, value: Buffer) -> None:
        """Write a node's ``zarr.json`` or a chunk.

        Parameters
        ----------
        key
            A metadata or chunk key. A metadata write needs no parent node.
        value
            The bytes to store.

        Raises
        ------
        TypeError
            If `value` is not a zarr `Buffer`.
        IcechunkError
            For a read-only session, an invalid or zarr v2 key, metadata that is neither an array
            nor a group document, a chunk key under a group, or a chunk index outside the grid.
        {zarr_read_only}
        KeyError
            For a chunk of an array that does not exist (an IcechunkError that is also a
            KeyError, as the reference raises).
        """
        if not isinstance(value, Buffer):
            raise TypeError(
                "IcechunkStore.set(): `value` must be a Buffer instance. "
                f"Got an instance of {type(value)} instead."
            )
        core = self._core
        # _ensure_writable, inlined: zarr calls set once per chunk.
        if core.read_only:
            raise IcechunkError(READ_ONLY_STORE, kind="read-only-store")
        if self._read_only:
            self._check_writable()
        kind, path, coords = parse_key(key)
        if kind == CHUNK:
            # A view, not a copy: a 1 MiB chunk goes straight from zarr's buffer to the file.
            await core.set_chunk(path, coords, memoryview(value.as_buffer_like()))
        elif kind == METADATA:
            await core.set_metadata(path, value.to_bytes())
        else:
            raise IcechunkError(
                "store method `Icechunk cannot set Zarr V2 metadata keys` "
                "is not implemented by Icechunk",
                kind="unimplemented",
            )

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Write a key only if it does not exist yet; otherwise do nothing.

        Parameters
        ----------
        key
            A metadata or chunk key.
        value
            The bytes to store.

        Raises
        ------
        IcechunkError, ValueError, TypeError, KeyError
            As for `set`, when the key does not exist.
        """
        if not await self.exists(key):
            await self.set(key, value)

    @fill_doc(**_DOCS)
    async def delete(self, key: str) -> None:
        """Delete a node (metadata key) with everything below it, or one chunk.

        Deleting a node that does not exist, or a zarr v2 key, does nothing.

        {key_parameter}

        Raises
        ------
        IcechunkError
            For a read-only session (the reference silently changes the session's view
            instead), an invalid key, or a chunk index outside the grid.
        {zarr_read_only}
        """
        self._ensure_writable()
        kind, path, coords = parse_key(key)
        if kind == CHUNK:
            await self._core.delete_chunk(path, coords)
        elif kind == METADATA:
            await self._core.delete_node(path)

    @fill_doc(**_DOCS)
    async def delete_dir(self, prefix: str) -> None:
        """Delete every key under a prefix.

        A node prefix deletes the node and its descendants; a chunk prefix inside an array
        (``a/c`` or ``a/c/1``) deletes the matching chunks; anything else does nothing.

        Parameters
        ----------
        prefix
            The prefix, with or without leading and trailing ``/``.

        Raises
        ------
        IcechunkError
            For a read-only session, or a prefix that is not a canonical path.
        {zarr_read_only}
        """
        self._ensure_writable()
        relative = prefix.strip("/")
        path = node_path(relative)
        if path is None:
            raise IcechunkError(
                f"bad key prefix ({relative}): Cannot convert to a path", kind="bad-key-prefix"
            )
        if path == "/":
            await self._core.clear()
            return
        core = self._core
        if await core.get_node(path) is not None:
            await core.delete_node(path)
            return
        array = await self._closest_ancestor(path)
        if array is None:
            return
        key_prefix = chunk_key_prefix(array)
        for coords in await core.chunk_coords(array):
            if is_prefix_match(chunk_key(key_prefix, coords), relative):
                await core.delete_chunk(array, coords)

    async def _closest_ancestor(self, path: str) -> str | None:
        """The path of the nearest existing ancestor of `path` if it is an array, else None."""
        ancestor = path
        while ancestor != "/":
            ancestor = ancestor.rpartition("/")[0] or "/"
            node = await self._core.get_node(ancestor)
            if node is not None:
                return ancestor if node.is_array else None
        return None

    @fill_doc(**_DOCS)
    async def clear(self) -> None:
        """Remove every group and array from the session; history is untouched.

        {read_only_raises}
        """
        self._ensure_writable()
        await self._core.clear()

    @fill_doc(**_DOCS)
    def sync_clear(self) -> None:
        """Blocking version of `clear`.

        {read_only_raises}
        """
        sync(self.clear())

    async def is_empty(self, prefix: str) -> bool:
        """Whether nothing exists under a prefix.

        Parameters
        ----------
        prefix
            A node path or a chunk prefix; an unknown prefix is empty.

        Returns
        -------
        bool
        """
        async for _ in self.list_dir(prefix):
            return False
        return True

    async def set_partial_values(
        self, key_start_values: Iterable[tuple[str, int, BytesLike]]
    ) -> None:
        """Not supported by Icechunk.

        Raises
        ------
        IcechunkError
            Always.
        """
        if self._core.read_only:
            raise IcechunkError(READ_ONLY_STORE, kind="read-only-store")
        raise IcechunkError(
            "store method `set_partial_values` is not implemented by Icechunk", kind="unimplemented"
        )

    def list(self) -> AsyncIterator[str]:
        """Every metadata key, then every chunk key.

        Returns
        -------
        AsyncIterator[str]
        """
        return self._list_below("/")

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key of the node at `prefix` and of the nodes below it.

        Parameters
        ----------
        prefix
            ``""`` or the path of a group or array, with or without a trailing ``/``.

        Returns
        -------
        AsyncIterator[str]
            Metadata keys first, then chunk keys.

        Raises
        ------
        IcechunkError
            If the prefix is not the path of a node (raised by the call, as in icechunk).
        """
        trimmed, path = prefix_path(prefix)
        # The session's node table is in memory, so the check can run before the iteration.
        if path != "/" and self._core.node(path) is None:
            raise not_a_node(trimmed)
        return self._list_below(path)

    async def _list_below(self, path: str) -> AsyncIterator[str]:
        nodes = await self._core.list_nodes(path)
        for node in nodes:
            yield metadata_key(node.path)
        arrays = [node.path for node in nodes if node.is_array]
        # One listing per array, all in flight together, rather than one await per chunk.
        all_coords = await asyncio.gather(*(self._core.chunk_coords(p) for p in arrays))
        for array, coords_list in zip(arrays, all_coords, strict=True):
            key_prefix = chunk_key_prefix(array)
            for coords in coords_list:
                yield chunk_key(key_prefix, coords)

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """The names directly below a prefix, sorted, without trailing ``/``.

        For a group: its children's names and ``zarr.json``; for an array: ``c`` and
        ``zarr.json``; for a chunk prefix (``a/c``, ``a/c/0``): the next coordinate (or the
        last one of a chunk key); for an unknown prefix: nothing.

        Parameters
        ----------
        prefix
            The prefix, with or without a trailing ``/``.

        Returns
        -------
        AsyncIterator[str]
        """
        return self._list_dir(prefix)

    async def _list_dir(self, prefix: str) -> AsyncIterator[str]:
        for name in await self._list_dir_names(prefix):
            yield name

    async def _list_dir_names(self, prefix: str) -> builtins.list[str]:
        relative = prefix.strip("/")
        path = node_path(relative)
        if path is None:
            return []
        core = self._core
        nodes = await core.list_nodes(path)
        names: set[str] = set()
        if nodes and nodes[0].path == path:
            names.add("zarr.json")
            if nodes[0].is_array:
                names.add("c")
                return sorted(names)
        # Children are named after the first component below `path`, which also shows
        # descendants whose intermediate groups were never written.
        skip = 1 if path == "/" else len(path) + 1
        for node in nodes:
            if node.path != path:
                names.add(node.path[skip:].partition("/")[0])
        if names:
            return sorted(names)
        array = await self._closest_ancestor(path)
        if array is None:
            return []
        key_prefix = chunk_key_prefix(array)
        for coords in await core.chunk_coords(array):
            key = chunk_key(key_prefix, coords)
            if is_prefix_match(key, relative) and len(key) > len(relative):
                names.add(key[len(relative) + 1 :].partition("/")[0])
        return sorted(names)

    @fill_doc(**_DOCS)
    async def getsize(self, key: str) -> int:
        """The size in bytes of a node's ``zarr.json`` or of a chunk.

        {key_parameter}

        Returns
        -------
        int
            0 for a chunk that is not initialized.

        Raises
        ------
        KeyError
            For the metadata of a node that does not exist, or a zarr v2 key.
        {invalid_key}
        """
        kind, path, coords = parse_key(key)
        if kind == CHUNK:
            return await self._core.chunk_size(path, coords)
        if kind == METADATA:
            node = await self._core.get_node(path)
            if node is None:
                raise KeyNotFoundError(path)
            return len(node.user_data)
        raise KeyNotFoundError(key, f"v2 key not found at `{key}`")

    async def getsize_prefix(self, prefix: str) -> int:
        """The total size of every key under a node.

        Parameters
        ----------
        prefix
            ``""`` or the path of a group or array.

        Returns
        -------
        int

        Raises
        ------
        IcechunkError
            If the prefix is not the path of a node.
        """
        trimmed, path = prefix_path(prefix)
        nodes = await self._core.list_nodes(path)
        if path != "/" and (not nodes or nodes[0].path != path):
            raise not_a_node(trimmed)
        core = self._core
        total = sum(len(node.user_data) for node in nodes)
        arrays = [node.path for node in nodes if node.is_array]
        # All arrays' chunk sizes at once rather than one await per chunk.
        per_array = await asyncio.gather(*(core.chunk_coords(p) for p in arrays))
        sizes = await asyncio.gather(
            *(
                core.chunk_size(p, coords)
                for p, all_coords in zip(arrays, per_array, strict=True)
                for coords in all_coords
            )
        )
        return total + sum(sizes)

    async def set_virtual_ref_async(
        self,
        key: str,
        location: str,
        *,
        offset: int,
        length: int,
        checksum: str | datetime | None = None,
        validate_container: bool = True,
    ) -> None:
        """Async version of `set_virtual_ref`, with the same parameters and errors.

        Parameters
        ----------
        key, location, offset, length, checksum, validate_container
            See `set_virtual_ref`.

        Raises
        ------
        IcechunkError
            See `set_virtual_ref`.
        """
        self._ensure_writable()
        kind, path, coords = parse_key(key)
        if kind != CHUNK:
            raise IcechunkError(
                f"this operation is not allowed: use .set to modify metadata for key {key}",
                kind="not-allowed",
            )
        await self._core.set_virtual_ref(
            path, coords, location, offset, length, checksum, validate_container
        )

    set_virtual_ref = blocking_twin(
        set_virtual_ref_async,
        """Point a chunk at a byte range of an object outside the repository.

        Parameters
        ----------
        key
            The chunk key, e.g. ``array/c/0/0``.
        location
            The URL of the object, e.g. ``s3://bucket/file.nc``.
        offset
            Where the chunk starts in the object.
        length
            The chunk's length in bytes.
        checksum
            An ETag (str) or a last-modified bound (datetime); reads fail if the object changed.
        validate_container
            Refuse locations that match no configured virtual chunk container.

        Raises
        ------
        IcechunkError
            For a read-only session, a metadata key, an invalid key, or (with validation) a
            location outside every virtual chunk container.
        """,
    )

    async def set_virtual_refs_async(
        self,
        array_path: str,
        chunks: builtins.list[VirtualChunkSpecLike],
        *,
        validate_containers: bool = True,
    ) -> builtins.list[tuple[int, ...]] | None:
        """Async version of `set_virtual_refs`, with the same parameters and result.

        Parameters
        ----------
        array_path, chunks, validate_containers
            See `set_virtual_refs`.

        Returns
        -------
        list of tuple of int, or None
            See `set_virtual_refs`.

        Raises
        ------
        IcechunkError
            See `set_virtual_refs`.
        """
        self._ensure_writable()
        path = node_path(array_path.strip("/"))
        if path is None:
            raise ValueError(f"Invalid array path: {array_path}")
        failed: builtins.list[tuple[int, ...]] = []
        for spec in chunks:
            coords = tuple(spec.index)
            checksum: str | datetime | None = spec.etag_checksum or spec.last_updated_at_checksum
            try:
                await self._core.set_virtual_ref(
                    path,
                    coords,
                    spec.location,
                    spec.offset,
                    spec.length,
                    checksum,
                    validate_containers,
                )
            except IcechunkError as error:
                # Outside every virtual chunk container: skipped, as the reference does.
                if not error.message.startswith(NO_CONTAINER_MESSAGE):
                    raise
                failed.append(coords)
        return failed or None

    set_virtual_refs = blocking_twin(
        set_virtual_refs_async,
        filled(
            """Set many virtual chunk references of one array.

        Parameters
        ----------
        array_path
            The array's path, absolute (``/a/b``) or relative (``a/b``).
        chunks
            The references, as `VirtualChunkSpec` objects.
        validate_containers
            Skip references whose location matches no virtual chunk container.

        {skipped_refs}

        Raises
        ------
        IcechunkError
            For a read-only session or a chunk index outside the grid.
        """,
            {"skipped_refs": SKIPPED_REFS},
        ),
    )
