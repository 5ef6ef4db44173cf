"""Async object storage: the one abstraction every repository operation goes through.

A :class:`StorageBackend` stores opaque objects under ``'/'``-separated keys relative to the
repository root (``refs/branch.main/ref.json``, ``chunks/<id>``). Besides plain reads and writes
it offers the two conditional writes Icechunk's refs depend on (spec §7.2): create-if-absent,
and compare-and-swap against an :class:`ObjectVersion` from :meth:`StorageBackend.get_versioned`.

:class:`Storage` is the user-facing handle that constructors such as :func:`in_memory_storage`
and :func:`local_filesystem_storage` return; the repository works with its ``_backend``.
Backends live in private modules and are imported lazily, so importing this package never pulls
in an SDK that a user does not need.

Lost responses (FORMAT-V2 §14). A conditional write can land while its response is lost (a
dropped connection, a proxy that times out); the retry then fails its precondition against the
object just written, which would read as a conflict ("tag already exists", "branch moved").
So every conditional write is stamped with a write id, a UUID4 made once per call of
:meth:`StorageBackend.put_if_absent` / :meth:`StorageBackend.put_if_version` and shared by
every retry below it, stored as user metadata ``icechunk_write_id`` (the reference's key).
When the write fails its precondition, or fails in a way that may hide a landed write, the
backend reads the stamp back: our id means the write landed and the call succeeds; another id,
none or no object means it did not; a failed read-back is an error, never a guess.
"""

from __future__ import annotations

import abc
import copy
import importlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from pyicechunk.exceptions import IcechunkError

if TYPE_CHECKING:
    from types import ModuleType

    from pyicechunk.config import S3Options, StorageSettings
    from pyicechunk.credentials import (
        AnyAzureCredential,
        AnyGcsCredential,
        AnyS3Credential,
        GcsBearerCredential,
        S3StaticCredentials,
    )
    from pyicechunk.storage.object_store import ObjectStoreSpec

__all__ = [
    "ByteRequest",
    "ObjectInfo",
    "ObjectVersion",
    "OffsetByteRequest",
    "RangeByteRequest",
    "Storage",
    "StorageBackend",
    "SuffixByteRequest",
    "azure_storage",
    "gcs_storage",
    "in_memory_storage",
    "local_filesystem_storage",
    "r2_storage",
    "s3_storage",
    "tigris_storage",
]


logger = logging.getLogger("pyicechunk.storage")

# The user-metadata key of a conditional write's write id: the key icechunk 2.x stamps and reads.
_WRITE_ID_KEY = "icechunk_write_id"
# The same key without underscores, which some servers and gateways return (and later
# reference versions stamp); a stamp under either name is recognised.
_WRITE_ID_KEY_ALPHANUMERIC = "icechunkwriteid"


def _new_write_id() -> str:
    return str(uuid.uuid4())


def _stored_write_id(metadata: Mapping[str, str]) -> str | None:
    """The write id in an object's user metadata, under either spelling of the key."""
    return metadata.get(_WRITE_ID_KEY) or metadata.get(_WRITE_ID_KEY_ALPHANUMERIC)


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

    @abc.abstractmethod
    async def put(self, key: str, data: bytes | memoryview) -> None:
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
        return await self._put_conditionally(key, data, None, durable)

    async def put_if_version(
        self, key: str, data: bytes, version: ObjectVersion, *, durable: Sequence[str] = ()
    ) -> bool:
        """Replace an object only if its current version is ``version`` (compare-and-swap).

        Objects named in ``durable`` are made durable before the new version becomes visible.

        Returns
        -------
        bool
            True if the object was replaced (also when the response was lost and the object's
            write id shows it landed); False if it changed since ``version`` was read or no
            longer exists.

        Raises
        ------
        IcechunkError
            As for :meth:`put_if_absent`.
        """
        return await self._put_conditionally(key, data, version, durable)

    async def _put_conditionally(
        self, key: str, data: bytes, version: ObjectVersion | None, durable: Sequence[str]
    ) -> bool:
        """One logical conditional write, with lost-response recovery (module docstring)."""
        write_id = _new_write_id() if self._stamps_write_ids() else None
        try:
            if await self._write_conditionally(key, data, version, write_id, durable):
                return True
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
                f"nothing was assumed: check {key} before retrying"
            ) from read_error
        if stored != write_id:
            return False
        logger.debug("conditional write of %s: response lost, but the write landed", key)
        return True

    @abc.abstractmethod
    async def _write_conditionally(
        self,
        key: str,
        data: bytes,
        version: ObjectVersion | None,
        write_id: str | None,
        durable: Sequence[str],
    ) -> bool:
        """One conditional write: create if absent (``version`` None) or compare-and-swap.

        Stamps the object with ``write_id`` when it is not None; any retry the backend or its
        SDK makes must send the same id. Objects in ``durable`` are durable before the new
        object is visible.

        Returns
        -------
        bool
            True if the object was written, False if the precondition failed.
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

    @abc.abstractmethod
    def default_settings(self) -> StorageSettings:
        """The storage settings this backend uses where the repository config sets none."""

    def with_settings(self, settings: StorageSettings) -> StorageBackend:
        """This backend, using ``settings`` (its defaults merged with the repository's).

        Backends whose behaviour the settings do not change return themselves.
        """
        return self

    def _storage_repr(self) -> str:
        """The repr of a :class:`Storage` holding this backend."""
        return f"ObjectStorage(backend={self!r})"

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


def _object_store_module() -> ModuleType:
    # Imported on first use: it is the only module that needs obstore.
    return importlib.import_module("pyicechunk.storage.object_store")


def _reject_tigris_endpoint(config: S3Options) -> None:
    endpoint = config.endpoint_url or ""
    if "fly.storage.tigris.dev" in endpoint or "t3.storage.dev" in endpoint:
        raise IcechunkError(
            "storage error: Tigris Storage is not S3 compatible, use the Tigris specific "
            "constructor instead"
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

    @classmethod
    def new_s3(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        credentials: AnyS3Credential | None = None,
    ) -> Storage:
        """Storage in an S3 or S3-compatible bucket; see :func:`s3_storage`."""
        _reject_tigris_endpoint(config)
        spec = _object_store_module().s3_spec("s3", config, bucket, prefix, credentials)
        return cls._object_store(spec)

    @classmethod
    def new_s3_object_store(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        credentials: AnyS3Credential | None = None,
    ) -> Storage:
        """S3 storage through the generic object-store backend; see ``s3_object_store_storage``."""
        _reject_tigris_endpoint(config)
        spec = _object_store_module().s3_spec(
            "s3_object_store", config, bucket, prefix, credentials
        )
        return cls._object_store(spec)

    @classmethod
    def new_tigris(
        cls,
        config: S3Options,
        bucket: str,
        prefix: str | None,
        use_weak_consistency: bool,
        credentials: AnyS3Credential | None = None,
    ) -> Storage:
        """Storage in a Tigris bucket; see :func:`tigris_storage`."""
        options = copy.copy(config)
        if options.endpoint_url is None:
            options.endpoint_url = "https://t3.storage.dev"
        headers: tuple[tuple[str, str], ...] = ()
        if not use_weak_consistency:
            if options.region is None:
                raise IcechunkError(
                    "storage error: Tigris storage requires a region to provide full consistency. "
                    "Either set the region for the bucket or use the read-only, eventually "
                    "consistent storage by passing `use_weak_consistency=True` (experts only)"
                )
            headers = (("X-Tigris-Regions", options.region), ("X-Tigris-Consistent", "true"))
        spec = _object_store_module().s3_spec(
            "s3",
            options,
            bucket,
            prefix,
            credentials,
            read_only=use_weak_consistency,
            extra_headers=headers,
        )
        return cls._object_store(spec)

    @classmethod
    def new_r2(
        cls,
        bucket: str | None,
        prefix: str | None,
        account_id: str | None,
        credentials: AnyS3Credential | None = None,
        *,
        config: S3Options,
    ) -> Storage:
        """Storage in a Cloudflare R2 bucket; see :func:`r2_storage`."""
        if bucket is None:
            if prefix is None:
                raise IcechunkError(
                    "storage configuration error: Either bucket or prefix must be provided."
                )
            # Like the reference: the prefix's first segment names the bucket.
            bucket, _, rest = prefix.partition("/")
            prefix = rest or None
        if config.endpoint_url is None and account_id is None:
            raise IcechunkError(
                "storage configuration error: Either endpoint_url or account_id must be provided."
            )
        options = copy.copy(config)
        if options.region is None:
            options.region = "auto"
        if options.endpoint_url is None:
            options.endpoint_url = f"https://{account_id}.r2.cloudflarestorage.com"
        options.force_path_style = True
        spec = _object_store_module().s3_spec("s3", options, bucket, prefix, credentials)
        return cls._object_store(spec)

    @classmethod
    def new_gcs(
        cls,
        bucket: str,
        prefix: str | None,
        credentials: AnyGcsCredential | None = None,
        *,
        config: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in a Google Cloud Storage bucket; see :func:`gcs_storage`."""
        spec = _object_store_module().gcs_spec(bucket, prefix, credentials, config)
        return cls._object_store(spec)

    @classmethod
    def new_azure_blob(
        cls,
        account: str,
        container: str,
        prefix: str,
        credentials: AnyAzureCredential | None = None,
        *,
        config: dict[str, str] | None = None,
    ) -> Storage:
        """Storage in an Azure Blob Storage container; see :func:`azure_storage`."""
        spec = _object_store_module().azure_spec(account, container, prefix, credentials, config)
        return cls._object_store(spec)

    @classmethod
    def _object_store(cls, spec: ObjectStoreSpec) -> Storage:
        return cls._from_backend(_object_store_module().ObjectStoreBackend(spec))

    def default_settings(self) -> StorageSettings:
        """The storage settings this storage uses where the repository config sets none.

        Returns
        -------
        StorageSettings
            The backend's defaults (concurrency, retries and conditional-write switches).
        """
        return self._backend.default_settings()

    def __repr__(self) -> str:
        return self._backend._storage_repr()

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


def s3_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int = 60,
    requester_pays: bool = False,
) -> Storage:
    """Create storage in an S3 or S3-compatible bucket.

    Parameters
    ----------
    bucket
        The bucket.
    prefix
        The repository's key prefix inside the bucket (None: the bucket root).
    region, endpoint_url, allow_http, force_path_style
        Connection options; see :class:`~pyicechunk.S3Options`.
    network_stream_timeout_seconds, requester_pays
        More connection options; a timeout of 0 disables it.
    access_key_id, secret_access_key, session_token, expires_after
        Fixed credentials.
    anonymous, from_env, get_credentials, scatter_initial_credentials
        Other credential kinds; :func:`pyicechunk.credentials.s3_credentials` picks one.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.config import S3Options
    from pyicechunk.credentials import s3_credentials

    credentials = s3_credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
    )
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        force_path_style=force_path_style,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
        requester_pays=requester_pays,
    )
    return Storage.new_s3(options, bucket, prefix, credentials)


def s3_object_store_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    force_path_style: bool = False,
) -> Storage:
    """Create S3 storage through the generic object-store backend (see :func:`s3_storage`).

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.config import S3Options
    from pyicechunk.credentials import s3_credentials

    credentials = s3_credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
    )
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        force_path_style=force_path_style,
    )
    return Storage.new_s3_object_store(options, bucket, prefix, credentials)


def tigris_storage(
    *,
    bucket: str,
    prefix: str | None,
    region: str | None = None,
    endpoint_url: str | None = None,
    use_weak_consistency: bool = False,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int = 60,
) -> Storage:
    """Create storage in a Tigris bucket (default endpoint ``https://t3.storage.dev``).

    Parameters
    ----------
    region
        Required unless ``use_weak_consistency``: requests pin it for consistent reads.
    use_weak_consistency
        Eventually consistent, read-only storage without a region (experts only).

    Returns
    -------
    Storage

    Raises
    ------
    IcechunkError
        If there is no region and ``use_weak_consistency`` is false.
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.config import S3Options
    from pyicechunk.credentials import s3_credentials

    credentials = s3_credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
    )
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
    )
    return Storage.new_tigris(options, bucket, prefix, use_weak_consistency, credentials)


def r2_storage(
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    account_id: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    allow_http: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
    network_stream_timeout_seconds: int = 60,
) -> Storage:
    """Create storage in a Cloudflare R2 bucket.

    Parameters
    ----------
    bucket
        The bucket; without it the first segment of ``prefix`` names the bucket.
    account_id
        Gives the endpoint ``https://<account_id>.r2.cloudflarestorage.com``.
    endpoint_url
        An explicit endpoint; one of it and ``account_id`` is required.

    Returns
    -------
    Storage

    Raises
    ------
    IcechunkError
        If neither ``endpoint_url`` nor ``account_id`` is given, or neither bucket nor prefix.
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.config import S3Options
    from pyicechunk.credentials import s3_credentials

    credentials = s3_credentials(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        session_token=session_token,
        expires_after=expires_after,
        anonymous=anonymous,
        from_env=from_env,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
    )
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
    )
    return Storage.new_r2(bucket, prefix, account_id, credentials, config=options)


def gcs_storage(
    *,
    bucket: str,
    prefix: str | None,
    service_account_file: str | None = None,
    service_account_key: str | None = None,
    application_credentials: str | None = None,
    bearer_token: str | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    config: dict[str, str] | None = None,
    get_credentials: Callable[[], GcsBearerCredential] | None = None,
    scatter_initial_credentials: bool = False,
) -> Storage:
    """Create storage in a Google Cloud Storage bucket.

    Credentials are chosen by :func:`pyicechunk.credentials.gcs_credentials`; ``config``
    passes extra store options.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.credentials import gcs_credentials

    credentials = gcs_credentials(
        service_account_file=service_account_file,
        service_account_key=service_account_key,
        application_credentials=application_credentials,
        bearer_token=bearer_token,
        from_env=from_env,
        anonymous=anonymous,
        get_credentials=get_credentials,
        scatter_initial_credentials=scatter_initial_credentials,
    )
    return Storage.new_gcs(bucket, prefix, credentials, config=config)


def azure_storage(
    *,
    account: str,
    container: str,
    prefix: str,
    access_key: str | None = None,
    sas_token: str | None = None,
    bearer_token: str | None = None,
    from_env: bool | None = None,
    config: dict[str, str] | None = None,
) -> Storage:
    """Create storage in an Azure Blob Storage container.

    Credentials are chosen by :func:`pyicechunk.credentials.azure_credentials`.

    Returns
    -------
    Storage

    Raises
    ------
    ValueError
        If the credential arguments conflict.
    """
    from pyicechunk.credentials import azure_credentials

    credentials = azure_credentials(
        access_key=access_key, sas_token=sas_token, bearer_token=bearer_token, from_env=from_env
    )
    return Storage.new_azure_blob(account, container, prefix, credentials, config=config)
