"""Async object storage: the one abstraction every repository operation goes through.

A :class:`StorageBackend` stores opaque objects under ``'/'``-separated keys relative to the
repository root (``refs/branch.main/ref.json``, ``chunks/<id>``). Besides plain reads and writes
it offers the two conditional writes Icechunk's refs depend on (spec §7.2): create-if-absent,
and compare-and-swap against an :class:`ObjectVersion` from :meth:`StorageBackend.get_versioned`.

:class:`Storage` (:mod:`~pyicechunk.storage.handle`) is the user-facing handle that the
constructors of :mod:`~pyicechunk.storage.constructors` return; other packages reach the
backend behind it through :attr:`Storage.backend`. Object keys are spelled in
:mod:`~pyicechunk.storage.keys` only, byte ranges are read by
:mod:`~pyicechunk.storage.byte_range`. Backends live in their own modules and are imported
lazily, so importing this package never pulls in an SDK that a user does not need.

Lost responses (FORMAT-V2 §14). A conditional write can land while its response is lost (a
dropped connection, a proxy that times out); the retry then fails its precondition against the
object just written, which would read as a conflict ("tag already exists", "branch moved").
So every conditional write is stamped with a write id, a UUID4 made once per call of
:meth:`StorageBackend.put_if_absent` / :meth:`StorageBackend.put_if_version` and shared by
every retry below it, stored as user metadata ``icechunkwriteid`` with the UUID in its
canonical lower-case hyphenated text: the key and value icechunk 2.3.0 sends (letters only, so
that gateways which drop header names with ``_`` and Azure, which wants an identifier, keep it),
so the two implementations' stamps read the same way on a shared repository. The stamp is only
ever compared with the id of the call that reads it back, so an older spelling needs no reader.
When the write fails its precondition, or fails in a way that may hide a landed write, the
backend reads the stamp back: our id means the write landed and the call succeeds; another id,
none or no object means it did not; a failed read-back is an error, never a guess.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

# The settings classes live in the config package; icechunk 2.x also names them here (its
# config reprs spell them icechunk.storage.StorageSettings and so on).
from pyicechunk.config import (
    S3Options,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
    StorageTimeoutSettings,
)
from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import constructors
from pyicechunk.storage.byte_range import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
)

# The constructors are this package's API too; their module's __all__ is the one list of them.
from pyicechunk.storage.constructors import *  # noqa: F403
from pyicechunk.storage.handle import Storage
from pyicechunk.storage.request_log import instrument

__all__ = [
    "ByteRequest",
    "ConditionalWrite",
    "ObjectInfo",
    "ObjectVersion",
    "OffsetByteRequest",
    "RangeByteRequest",
    "S3Options",
    "Storage",
    "StorageBackend",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "StorageTimeoutSettings",
    "SuffixByteRequest",
]
__all__ += constructors.__all__


logger = logging.getLogger("pyicechunk.storage")

# The user-metadata key of a conditional write's write id, as icechunk 2.3.0 sends it.
_WRITE_ID_KEY = "icechunkwriteid"


def _new_write_id() -> str:
    """A random (version 4) UUID in its usual text form, as ``str(uuid.uuid4())`` makes it,
    without the UUID object."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


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


@dataclass(frozen=True, slots=True)
class ConditionalWrite:
    """One attempt at a conditional write, as :meth:`StorageBackend._write_conditionally` gets it.

    Parameters
    ----------
    key
        The object's key.
    data
        Its new content.
    version
        None to create the object only if it is absent; else replace it only if this is its
        current version (compare-and-swap).
    write_id
        The id to stamp on the object (user metadata ``icechunkwriteid``), or None for none;
        every retry of the same logical write carries the same id.
    durable
        Objects to make durable before the new object becomes visible.
    """

    key: str
    data: bytes
    version: ObjectVersion | None
    write_id: str | None
    durable: Sequence[str] = ()


class StorageBackend(abc.ABC):
    """Async object storage.

    Keys are ``'/'``-separated, relative to the repository root (e.g.
    ``'refs/branch.main/ref.json'``). Implementations must be usable from any event loop and any
    thread: they hold no loop-bound state.
    """

    read_only: bool
    quick_copies: ClassVar[bool] = False
    """Whether :meth:`put_copy` of a small object is made on the calling thread, without
    waiting for anything: a caller then awaits it instead of overlapping it with other work."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Each request a backend makes logs one TRACE record (see storage/request_log.py).
        instrument(cls, logger)

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

    async def get_view(self, key: str, byte_range: ByteRequest | None = None) -> bytes | memoryview:
        """Like :meth:`get`, but may return a read-only view instead of a copy.

        Only for immutable objects (chunks): a backend may map the object into memory.
        """
        return await self.get(key, byte_range)

    @abc.abstractmethod
    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        """Read a whole object together with the version to pass to :meth:`put_if_version`.

        Raises
        ------
        ObjectNotFoundError
            If there is no object under ``key``.
        """

    def get_versioned_now(self, key: str) -> tuple[bytes, ObjectVersion] | None:
        """:meth:`get_versioned` done on the calling thread, where that takes no waiting.

        Backends whose small reads are local and quick (the filesystem) answer here, so a
        caller holding no event loop (a history walk from blocking code) needs none; the
        others return None and are read with :meth:`get_versioned`.

        Raises
        ------
        ObjectNotFoundError
            If there is no object under ``key``.
        """
        return None

    @abc.abstractmethod
    async def put(self, key: str, data: bytes | memoryview) -> None:
        """Write an object unconditionally; readers see the old or the new bytes, never a mix.

        The write may not be durable until :meth:`make_durable` is called for it;
        :meth:`put_if_absent` and :meth:`put_if_version` are durable on return.
        """

    async def put_copy(
        self, key: str, data: bytes, *, source: str, version: ObjectVersion | None
    ) -> None:
        """Write ``data``, what ``source`` held at ``version``, to ``key`` (as :meth:`put`).

        A backend that can copy ``source`` itself while it is still at ``version`` may do so
        instead of sending the bytes (the local filesystem makes a hard link: no new file); it
        falls back to writing ``data``. ``version`` None: write ``data``.
        """
        await self.put(key, data)

    async def put_many(self, items: Sequence[tuple[str, bytes | memoryview]]) -> None:
        """Write several objects as :meth:`put` does, all at once (a commit's manifests).

        A backend may batch the writes; the first failure is raised.
        """
        await asyncio.gather(*(self.put(key, data) for key, data in items))

    async def make_durable(self, keys: Sequence[str]) -> None:
        """Make objects written with :meth:`put` durable before anything refers to them.

        :meth:`put` only promises atomic visibility. Callers (a commit, before it moves a ref)
        pass every object the new ref will reach; backends whose writes are durable when
        acknowledged (memory, object stores) have nothing to do.
        """
        return None

    async def put_if_absent(self, key: str, data: bytes, *, durable: Sequence[str] = ()) -> bool:
        """Create an object atomically if no object exists under ``key``.

        Objects named in ``durable`` are made durable (:meth:`make_durable`) before the new
        object becomes visible; a backend may overlap that with preparing the write.

        Returns
        -------
        bool
            True if this call created the object (also when its response was lost and the
            object's write id shows it landed), False if one already existed (it is unchanged).

        Raises
        ------
        IcechunkError
            If the write failed, or failed in a way that may hide a landed write and reading
            the object back could not tell.
        """
        return bool(await self._put_conditionally(key, data, None, durable))

    async def put_if_version(
        self, key: str, data: bytes, version: ObjectVersion, *, durable: Sequence[str] = ()
    ) -> bool | ObjectVersion:
        """Replace an object only if its current version is ``version`` (compare-and-swap).

        Objects named in ``durable`` are made durable before the new version becomes visible.

        Returns
        -------
        bool or ObjectVersion
            A true value if the object was replaced (also when the response was lost and the
            object's write id shows it landed): the new object's version where the backend
            learnt it from the write (what :meth:`get_versioned` would return for it), else
            True; False if it changed since ``version`` was read or no longer exists.

        Raises
        ------
        IcechunkError
            As for :meth:`put_if_absent`.
        """
        return await self._put_conditionally(key, data, version, durable)

    async def _put_conditionally(
        self, key: str, data: bytes, version: ObjectVersion | None, durable: Sequence[str]
    ) -> bool | ObjectVersion:
        """One logical conditional write, with lost-response recovery (module docstring)."""
        write_id = _new_write_id() if self._stamps_write_ids() else None
        try:
            write = ConditionalWrite(key, data, version, write_id, durable)
            written = await self._write_conditionally(write)
            if written:
                return written
        except Exception as error:
            if write_id is None or not self._may_have_landed(error):
                raise
            if await self._is_our_write(key, write_id, error):
                return True
            raise  # it did not land: the original failure stands
        # The precondition failed: against another writer's object, or against this very
        # write if it landed once already and a retry below us sent it again.
        return write_id is not None and await self._is_our_write(key, write_id, None)

    async def _is_our_write(self, key: str, write_id: str, error: Exception | None) -> bool:
        try:
            stored = await self._read_write_id(key)
        except Exception as read_error:
            failure = "failed its precondition" if error is None else f"failed ({error})"
            raise IcechunkError(
                f"storage error: the conditional write of {key} {failure}, and reading the "
                f"object back to see whether this write landed failed too ({read_error}); "
                f"nothing was assumed: check {key} before retrying",
                kind="object-store",
            ) from read_error
        if stored != write_id:
            return False
        logger.debug("conditional write of %s: response lost, but the write landed", key)
        return True

    @abc.abstractmethod
    async def _write_conditionally(self, write: ConditionalWrite) -> bool | ObjectVersion:
        """One conditional write: create if absent (no version) or compare-and-swap.

        Stamps the object with the write id when it is not None; any retry the backend or its
        SDK makes must send the same id. The ``durable`` objects are durable before the new
        object is visible.

        Returns
        -------
        bool or ObjectVersion
            A true value if the object was written (its new version, if the write tells it
            for certain: the version :meth:`get_versioned` returns for these bytes), False if
            the precondition failed.
        """

    def _stamps_write_ids(self) -> bool:
        """Whether conditional writes carry write ids that :meth:`_read_write_id` can read."""
        return False

    async def _read_write_id(self, key: str) -> str | None:
        """The write id stamped on the object under ``key``; None if it is missing or unstamped.

        Raises
        ------
        IcechunkError
            If the object's metadata cannot be read.
        """
        return None

    def _may_have_landed(self, error: Exception) -> bool:
        """Whether a conditional write that raised ``error`` may have been applied anyway."""
        return True

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

    def at_bucket_root(self) -> bool:
        """Whether this is the root of an object-store bucket (no key prefix).

        icechunk 2.1 and later refuse to create repositories there; other backends say False.
        """
        return False

    @abc.abstractmethod
    def default_settings(self) -> StorageSettings:
        """The storage settings this backend uses where the repository config sets none."""

    @staticmethod
    def _local_settings(ideal_concurrent_request_size: int, **more: Any) -> StorageSettings:
        """Defaults for a backend without a network in between: a request is not retried, and
        one object is read with at most five requests of ``ideal_concurrent_request_size``
        bytes; ``more`` sets other fields."""
        from pyicechunk.config import (
            StorageConcurrencySettings,
            StorageRetriesSettings,
            StorageSettings,
        )

        return StorageSettings(
            concurrency=StorageConcurrencySettings(
                max_concurrent_requests_for_object=5,
                ideal_concurrent_request_size=ideal_concurrent_request_size,
            ),
            retries=StorageRetriesSettings(max_tries=1, initial_backoff_ms=0, max_backoff_ms=0),
            **more,
        )

    def with_settings(self, settings: StorageSettings) -> StorageBackend:
        """This backend, using ``settings`` (its defaults merged with the repository's).

        Backends whose behaviour the settings do not change return themselves.
        """
        return self

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        """The fields of the repr of a :class:`Storage` holding this backend: its ``type``
        first, then where it stores (never a credential)."""
        return (("type", type(self).__name__),)

    @abc.abstractmethod
    def __repr__(self) -> str: ...

    @abc.abstractmethod
    def __reduce__(self) -> tuple[Any, ...]: ...


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
        "root, without empty, '.' or '..' components",
        kind="invalid-key",
    )
