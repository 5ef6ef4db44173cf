"""Async object storage: the one abstraction every repository operation goes through.

A :class:`StorageBackend` stores opaque objects under ``'/'``-separated keys relative to the
repository root (``refs/branch.main/ref.json``, ``chunks/<id>``). Besides plain reads and writes
it offers the two conditional writes Icechunk's refs depend on (spec §7.2): create-if-absent,
and compare-and-swap against an :class:`ObjectVersion` from :meth:`StorageBackend.get_versioned`.

:class:`Storage` is the user-facing handle that constructors such as :func:`in_memory_storage`
and :func:`local_filesystem_storage` return; the repository works with its ``_backend``.
Backends live in private modules and are imported lazily, so importing this package never pulls
in an SDK that a user does not need.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from pyicechunk.exceptions import IcechunkError

if TYPE_CHECKING:
    from pyicechunk.config import StorageSettings

__all__ = [
    "ByteRequest",
    "ObjectInfo",
    "ObjectVersion",
    "OffsetByteRequest",
    "RangeByteRequest",
    "Storage",
    "StorageBackend",
    "SuffixByteRequest",
    "in_memory_storage",
    "local_filesystem_storage",
]


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """Opaque token naming one state of an object, for :meth:`StorageBackend.put_if_version`.

    Parameters
    ----------
    token
        Backend-specific text (an ETag, a counter, file identity); only compared for equality.
    """

    token: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a head request knows about one object.

    Parameters
    ----------
    key
        The object's key, relative to the repository root.
    size
        Its size in bytes.
    last_modified
        When it was last written, timezone-aware UTC.
    """

    key: str
    size: int
    last_modified: datetime


class StorageBackend(abc.ABC):
    """Async object storage.

    Keys are ``'/'``-separated, relative to the repository root (e.g.
    ``'refs/branch.main/ref.json'``). Implementations must be usable from any event loop and any
    thread: they hold no loop-bound state.
    """

    read_only: bool

    @abc.abstractmethod
    def supports_conditional_update(self) -> bool:
        """Whether :meth:`put_if_version` is a real compare-and-swap on this backend."""

    @abc.abstractmethod
    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        """Read an object, or a byte range of it.

        Parameters
        ----------
        key
            The object's key.
        byte_range
            ``RangeByteRequest(start, end)`` (end exclusive, clamped to the size),
            ``OffsetByteRequest(offset)`` (from offset to the end) or
            ``SuffixByteRequest(suffix)`` (the last ``suffix`` bytes); None reads everything.

        Returns
        -------
        bytes
            The requested bytes.

        Raises
        ------
        ObjectNotFoundError
            If there is no object under ``key``.
        IcechunkError
            If the range is malformed or starts past the end of the object.
        """

    @abc.abstractmethod
    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        """Read a whole object together with the version to pass to :meth:`put_if_version`.

        Raises
        ------
        ObjectNotFoundError
            If there is no object under ``key``.
        """

    @abc.abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Write an object unconditionally; readers see the old or the new bytes, never a mix.

        The write may not be durable until :meth:`make_durable` is called for it;
        :meth:`put_if_absent` and :meth:`put_if_version` are durable on return.
        """

    async def make_durable(self, keys: Sequence[str]) -> None:
        """Make objects written with :meth:`put` durable before anything refers to them.

        :meth:`put` only promises atomic visibility. Callers (a commit, before it moves a ref)
        pass every object the new ref will reach; backends whose writes are durable when
        acknowledged (memory, object stores) have nothing to do.
        """
        return None

    @abc.abstractmethod
    async def put_if_absent(
        self, key: str, data: bytes, *, durable: Sequence[str] = ()
    ) -> bool:
        """Create an object atomically if no object exists under ``key``.

        Objects named in ``durable`` are made durable (:meth:`make_durable`) before the new
        object becomes visible; a backend may overlap that with preparing the write.

        Returns
        -------
        bool
            True if this call created the object, False if one already existed (it is unchanged).
        """

    @abc.abstractmethod
    async def put_if_version(
        self, key: str, data: bytes, version: ObjectVersion, *, durable: Sequence[str] = ()
    ) -> bool:
        """Replace an object only if its current version is ``version`` (compare-and-swap).

        Objects named in ``durable`` are made durable before the new version becomes visible.

        Returns
        -------
        bool
            True if the object was replaced; False if it changed since ``version`` was read or
            no longer exists.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""

    @abc.abstractmethod
    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete several objects and return how many existed and were deleted."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object exists under ``key``."""

    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """Size and modification time of an object, or None if it does not exist."""

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (``''`` lists all), sorted by key."""

    @abc.abstractmethod
    def default_settings(self) -> StorageSettings:
        """The storage settings this backend uses where the repository config sets none."""

    @abc.abstractmethod
    def __repr__(self) -> str: ...

    @abc.abstractmethod
    def __reduce__(self) -> tuple[Any, ...]: ...


def _resolve_byte_range(byte_range: ByteRequest | None, size: int, key: str) -> tuple[int, int]:
    """Turn a byte request into ``(start, stop)`` offsets of an object of ``size`` bytes.

    Shared by the backends so that every one of them accepts and rejects the same ranges: the end
    of a bounded range is clamped to the size and a suffix longer than the object reads all of
    it, but a range that starts past the end is an error rather than silently empty.

    Raises
    ------
    IcechunkError
        If the request is malformed or starts past the end of the object.
    """
    if byte_range is None:
        return 0, size
    if isinstance(byte_range, RangeByteRequest):
        start, end = byte_range.start, byte_range.end
        if start < 0 or end < start:
            _bad_range(key, f"start={start}, end={end}: need 0 <= start <= end")
    elif isinstance(byte_range, OffsetByteRequest):
        start, end = byte_range.offset, size
        if start < 0:
            _bad_range(key, f"offset={start} is negative")
    elif isinstance(byte_range, SuffixByteRequest):
        if byte_range.suffix < 0:
            _bad_range(key, f"suffix={byte_range.suffix} is negative")
        return max(size - byte_range.suffix, 0), size
    else:
        raise TypeError(f"unsupported byte range type {type(byte_range).__name__}")
    if start > size:
        raise IcechunkError(
            f"invalid byte range for object {key}: it starts at byte {start} but the object has "
            f"only {size} bytes; request a range inside the object"
        )
    return start, min(end, size)


def _bad_range(key: str, detail: str) -> NoReturn:
    raise IcechunkError(f"invalid byte range for object {key}: {detail}")


def _check_key(key: str) -> None:
    """Reject keys that are not plain relative paths inside the repository.

    Every backend applies the same rule, so a key that works in memory works on disk and on an
    object store, and no key can reach outside the repository directory.

    Raises
    ------
    IcechunkError
        If the key is empty, absolute, or has an empty, ``.`` or ``..`` component or a NUL.
    """
    parts = key.split("/")
    if key and "\0" not in key and not any(p in ("", ".", "..") for p in parts):
        return
    raise IcechunkError(
        f"invalid storage key {key!r}: keys are '/'-separated paths relative to the repository "
        "root, without empty, '.' or '..' components"
    )


_NO_INIT_MESSAGE = (
    "cannot create 'Storage' instances; use a constructor such as local_filesystem_storage(path)"
)


class Storage:
    """A handle on the object storage that holds a repository.

    Create it with a constructor such as :func:`in_memory_storage` or
    :func:`local_filesystem_storage`, then pass it to ``Repository.create`` or ``Repository.open``.
    """

    __slots__ = ("_backend",)

    _backend: StorageBackend

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError(_NO_INIT_MESSAGE)

    @classmethod
    def _from_backend(cls, backend: StorageBackend) -> Storage:
        storage = cls.__new__(cls)
        storage._backend = backend
        return storage

    @classmethod
    def new_in_memory(cls) -> Storage:
        """Storage in this process's memory; see :func:`in_memory_storage`."""
        from pyicechunk.storage.memory import InMemoryBackend

        return cls._from_backend(InMemoryBackend())

    @classmethod
    def new_local_filesystem(cls, path: str) -> Storage:
        """Storage in a local directory; see :func:`local_filesystem_storage`."""
        from pyicechunk.storage.local import LocalFileSystemBackend

        return cls._from_backend(LocalFileSystemBackend(path))

    def default_settings(self) -> StorageSettings:
        """The storage settings this storage uses where the repository config sets none.

        Returns
        -------
        StorageSettings
            The backend's defaults (concurrency, retries and conditional-write switches).
        """
        return self._backend.default_settings()

    def __repr__(self) -> str:
        return f"ObjectStorage(backend={self._backend!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage._from_backend, (self._backend,))


def in_memory_storage() -> Storage:
    """Create storage that keeps every object in this process's memory.

    Each call gives a new, empty store. It is for tests and experiments: nothing survives the
    process, and a pickled copy only shares the data when unpickled in the same process.

    Returns
    -------
    Storage
        The new storage.
    """
    return Storage.new_in_memory()


def local_filesystem_storage(path: str) -> Storage:
    """Create storage that keeps objects as files under a local directory.

    Unlike icechunk 1.1, several threads or processes may commit to the same repository safely:
    branch updates are compare-and-swap operations under an OS file lock.

    Parameters
    ----------
    path
        The repository directory. A relative path is resolved against the current directory
        now; missing directories are created when the first object is written.

    Returns
    -------
    Storage
        The new storage.
    """
    return Storage.new_local_filesystem(path)
