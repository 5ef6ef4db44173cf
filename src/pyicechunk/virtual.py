"""Virtual chunk references: containers, checksums and fetching (FORMAT-V1 §5.2).

A virtual chunk is a byte range of an object outside the repository. Reading it needs a virtual
chunk container from the repository config whose ``url_prefix`` holds the chunk's location, plus
the user's authorization for that prefix (``authorize_virtual_chunk_access``), which may carry
credentials. The location is parsed once (:mod:`pyicechunk.virtual_location`); the container is
chosen and the fetch addressed from that parsed value only, so nothing outside an authorized
container is ever fetched.

Fetching goes through obstore: ``file://`` with a root-less local store, ``s3://`` with an S3
store per bucket, ``gs://`` and ``az://`` with GCS and Azure stores per bucket/container and
``http(s)://`` with an HTTP store per host and port. obstore takes object paths as decoded
segments and escapes them itself (a ``%`` in a segment is sent as ``%25``), so a segment can
only ever name one file or key. Stores are cached across sessions, keyed by what defines them,
because building one (credential lookup, client setup) costs far more than a read. A checksum is
checked by the object store itself with a conditional GET (``If-Match`` for an ETag,
``If-Unmodified-Since`` for a last-modified bound).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from pyicechunk._readonly import ReadOnly
from pyicechunk.config import (
    ObjectStoreConfig,
    RepositoryConfig,
    S3Options,
    StorageSettings,
    VirtualChunkContainer,
    effective_storage_settings,
    validate_container,
)
from pyicechunk.credentials import Credentials, GcsCredentials, S3Credentials
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import VirtualPayload
from pyicechunk.storage.byte_range import ByteRequest, narrow
from pyicechunk.virtual_location import (
    VirtualLocation,
    normalize_location,
    parse_container_prefix,
    parse_location,
)

__all__ = [
    "NO_CONTAINER_MESSAGE",
    "VirtualChunkSpecLike",
    "VirtualChunkSpec",
    "checksum_fields",
    "fetch_virtual_chunk",
    "find_container",
    "normalize_location",
    "usable_containers",
]

NO_CONTAINER_MESSAGE: Final = "invalid chunk location, no matching virtual chunk container"

_TIGRIS_ENDPOINT: Final = "https://t3.storage.dev"
_FETCHER_CACHE_SIZE: Final = 50


def usable_containers(config: RepositoryConfig) -> list[VirtualChunkContainer]:
    """The config's valid containers, deepest ``url_prefix`` first.

    A persisted config may hold containers that would not pass validation, or whose prefix the
    location parser refuses; like the reference, they are ignored rather than failing every
    read. A missing trailing ``/`` is added.

    Parameters
    ----------
    config
        The repository config.

    Returns
    -------
    list of VirtualChunkContainer
    """
    out: list[tuple[int, VirtualChunkContainer]] = []
    for cont in (config.virtual_chunk_containers or {}).values():
        prefix = cont.url_prefix if cont.url_prefix.endswith("/") else cont.url_prefix + "/"
        fixed = VirtualChunkContainer(prefix, cont.store, cont.name)
        try:
            validate_container(fixed)
            depth = len(parse_container_prefix(prefix).segments)
        except ValueError:
            continue
        out.append((depth, fixed))
    out.sort(key=lambda item: (-item[0], -len(item[1].url_prefix)))
    return [cont for _, cont in out]


_NAMED: Final = "vcc://"


def resolve_named(
    location: str, containers: Sequence[VirtualChunkContainer], *, strict: bool = True
) -> str:
    """A ``vcc://<name>/<path>`` location as ``url_prefix + path`` of the container named
    ``name`` (icechunk 2.x stores such locations verbatim and resolves them when reading);
    any other location, or with ``strict=False`` one naming no container, as it is.

    Raises
    ------
    IcechunkError
        If ``strict`` and no container of the config has that name.
    """
    if location[: len(_NAMED)].lower() != _NAMED:
        return location
    name, _, path = location[len(_NAMED) :].partition("/")
    for cont in containers:
        if cont.name is not None and cont.name == name:
            return cont.url_prefix + path
    if not strict:
        return location
    raise IcechunkError(
        f"the virtual chunk location `{location}` names the container `{name}`, which the "
        "repository config does not have; add a VirtualChunkContainer with that name",
        kind="no-container-for-virtual-chunk",
    )


def _container_for(
    location: VirtualLocation, containers: Sequence[VirtualChunkContainer]
) -> VirtualChunkContainer | None:
    for cont in containers:
        if location.within(parse_container_prefix(cont.url_prefix)):
            return cont
    return None


def find_container(
    location: str, containers: Sequence[VirtualChunkContainer]
) -> VirtualChunkContainer | None:
    """The container (of a deepest-first list) that holds ``location``, parsed as a read will.

    Parameters
    ----------
    location
        A normalised location, as it will be stored.
    containers
        As returned by :func:`usable_containers`.

    Returns
    -------
    VirtualChunkContainer or None

    Raises
    ------
    IcechunkError
        Starting with :data:`NO_CONTAINER_MESSAGE`, if the location could never be read from
        any container (see :func:`pyicechunk.virtual_location.parse_location`).
    """
    try:
        parsed = parse_location(resolve_named(location, containers))
    except IcechunkError as e:
        raise IcechunkError(
            f"{NO_CONTAINER_MESSAGE}: {e.message}", kind="no-container-for-virtual-chunk"
        ) from None
    return _container_for(parsed, containers)


def checksum_fields(checksum: str | dt.datetime | None) -> tuple[str | None, int]:
    """The (etag, last-modified seconds) a virtual payload stores for a user checksum.

    Parameters
    ----------
    checksum
        An ETag, a timezone-aware last-modified bound, or None.

    Returns
    -------
    tuple
        ``(etag or None, seconds since the epoch as u32, 0 for none)``.

    Raises
    ------
    TypeError
        For a naive datetime or another type.
    """
    if checksum is None:
        return None, 0
    if isinstance(checksum, str):
        return checksum, 0
    if isinstance(checksum, dt.datetime):
        if checksum.tzinfo is None or checksum.utcoffset() is None:
            raise TypeError(
                "argument 'checksum': expected a datetime with non-None tzinfo; use "
                "datetime(..., tzinfo=timezone.utc)"
            )
        # The format keeps u32 seconds; like the reference, out-of-range values wrap.
        return None, math.floor(checksum.timestamp()) & 0xFFFFFFFF
    raise TypeError(
        f"argument 'checksum': '{type(checksum).__name__}' object cannot be cast as "
        "'str | datetime'"
    )


# --- fetching -----------------------------------------------------------------------------------


def _obstore() -> Any:
    from pyicechunk.storage.obstore_clients import load_obstore

    return load_obstore()


_fetchers: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_fetchers_lock = threading.Lock()


def _cached_store(key: tuple[object, ...], build: Any) -> Any:
    with _fetchers_lock:
        store = _fetchers.get(key)
        if store is not None:
            _fetchers.move_to_end(key)
            return store
    store = build()
    with _fetchers_lock:
        _fetchers[key] = store
        while len(_fetchers) > _FETCHER_CACHE_SIZE:
            _fetchers.popitem(last=False)
    return store


def _unauthorized(cont: VirtualChunkContainer) -> IcechunkError:
    return IcechunkError(
        f"a virtual chunk in this repository resolves to the url prefix {cont.url_prefix}, to "
        "be able to fetch the chunk you need to authorize the virtual chunk container when you "
        "open/create the repository, see https://icechunk.io/en/stable/virtual/",
        kind="unauthorized-virtual-chunk-container",
    )


def _invalid_credentials(kind: str, cont: VirtualChunkContainer) -> IcechunkError:
    return IcechunkError(
        f"invalid credentials for virtual reference of type {kind}: the credentials authorized "
        f"for {cont.url_prefix} are not {kind} credentials",
        kind="invalid-credentials",
    )


def _credential(
    cont: VirtualChunkContainer, authorized: Mapping[str, Any], kind: str, tag: type[Any]
) -> Any:
    """The inner credential authorized for ``cont`` (None if authorized without one)."""
    if cont.url_prefix not in authorized:
        raise _unauthorized(cont)
    cred: Any = authorized[cont.url_prefix]
    if cred is None:
        return None
    if tag is type(None) or not isinstance(cred, tag):
        raise _invalid_credentials(kind, cont)
    return cred.credentials


def _s3_fetcher(
    cont: VirtualChunkContainer,
    bucket: str,
    cred: Any,
    settings: StorageSettings | None,
) -> Any:
    from pyicechunk.storage.object_store import s3_spec
    from pyicechunk.storage.obstore_clients import build_s3_store

    store: Any = cont.store
    opts: S3Options = store._0
    if isinstance(store, ObjectStoreConfig.Tigris) and opts.endpoint_url is None:
        opts = copy.copy(opts)
        opts.endpoint_url = _TIGRIS_ENDPOINT
    if cred is None:
        cred = S3Credentials.Anonymous() if opts.anonymous else S3Credentials.FromEnv()
    spec = s3_spec("s3", opts, bucket, None, cred)
    return build_s3_store(spec, effective_storage_settings(settings))


def _build_store(
    cont: VirtualChunkContainer,
    location: VirtualLocation,
    authorized: Mapping[str, Any],
    settings: StorageSettings | None,
) -> Any:
    store: Any = cont.store
    ob = _obstore()
    if isinstance(store, ObjectStoreConfig.LocalFileSystem):
        _credential(cont, authorized, "file", type(None))
        return _cached_store(("file",), lambda: ob.store.LocalStore())
    if isinstance(store, ObjectStoreConfig.S3 | ObjectStoreConfig.S3Compatible):
        cred = _credential(cont, authorized, "S3", Credentials.S3)
    elif isinstance(store, ObjectStoreConfig.Tigris):
        cred = _credential(cont, authorized, "tigris", Credentials.S3)
    elif isinstance(store, ObjectStoreConfig.Gcs):
        cred = _credential(cont, authorized, "GCS", Credentials.Gcs)
    elif isinstance(store, ObjectStoreConfig.Azure):
        if "account" not in (store._0 or {}):
            raise IcechunkError(
                f"azure store configuration must include an account (container "
                f"{cont.url_prefix}); build it with azure_store(account=...)",
                kind="storage-config",
            )
        cred = _credential(cont, authorized, "Azure", Credentials.Azure)
        if cred is None:
            raise _unauthorized(cont)
    elif isinstance(store, ObjectStoreConfig.Http):
        _credential(cont, authorized, "HTTP", type(None))
        cred = None
    else:
        raise IcechunkError(
            f"virtual chunk container {cont.url_prefix} uses an in-memory store, which cannot "
            "hold virtual chunks; use a file://, s3://, gs://, az:// or http(s):// container",
            kind="storage-config",
        )
    key = (
        cont.url_prefix,
        pickle.dumps(store),
        location.scheme,
        location.authority,
        pickle.dumps(cred),
        repr(settings),
    )
    return _cached_store(key, lambda: _make_remote(cont, location, cred, settings))


def _make_remote(
    cont: VirtualChunkContainer,
    location: VirtualLocation,
    cred: Any,
    settings: StorageSettings | None,
) -> Any:
    from pyicechunk.storage.object_store import blob_spec
    from pyicechunk.storage.obstore_clients import build_azure_store, build_gcs_store

    store: Any = cont.store
    bucket = location.host
    if isinstance(store, ObjectStoreConfig.Gcs):
        gcs = blob_spec("gcs", bucket, None, cred or GcsCredentials.Anonymous(), store._0)
        return build_gcs_store(gcs, effective_storage_settings(settings))
    if isinstance(store, ObjectStoreConfig.Azure):
        options: dict[str, str] = store._0 or {}
        config = {k: v for k, v in options.items() if k != "account"}
        azure = blob_spec("azure", bucket, None, cred, config, options["account"])
        return build_azure_store(azure, effective_storage_settings(settings))
    if isinstance(store, ObjectStoreConfig.Http):
        return _obstore().store.HTTPStore.from_url(
            f"{location.scheme}://{location.authority}",
            client_options=dict(store._0 or {}) or None,
        )
    return _s3_fetcher(cont, bucket, cred, settings)


def _is_local(cont: VirtualChunkContainer) -> bool:
    return isinstance(cont.store, ObjectStoreConfig.LocalFileSystem)


def _local_etag(etag: str) -> str:
    """The ETag as obstore's local store reports it: quoted.

    The reference's local store reports the same ETag unquoted; accept both forms.
    """
    if etag == "*" or etag.startswith(('"', 'W/"')):
        return etag
    return f'"{etag}"'


async def fetch_virtual_chunk(
    payload: VirtualPayload,
    byte_range: ByteRequest | None,
    config: RepositoryConfig,
    authorized: Mapping[str, Any],
) -> bytes:
    """Read a virtual chunk (or the part of it ``byte_range`` asks for).

    Parameters
    ----------
    payload
        The virtual reference.
    byte_range
        A zarr byte request relative to the chunk, or None for all of it.
    config
        The repository config (its virtual chunk containers and storage settings).
    authorized
        ``authorize_virtual_chunk_access``: container url prefix -> tagged credentials or None.

    Returns
    -------
    bytes

    Raises
    ------
    IcechunkError
        If the location cannot be parsed into one unambiguous value, no container holds it,
        the container is not authorized, the object is missing or shorter than the reference
        says, or the object's checksum changed. In the first three cases nothing is fetched.
    """
    containers = usable_containers(config)
    location = parse_location(resolve_named(payload.location, containers))
    cont = _container_for(location, containers)
    if cont is None:
        shown = str(location)
        if shown != payload.location:
            shown = f"{payload.location}, which resolves to {shown}"
        raise IcechunkError(
            f"no virtual chunk container can handle the chunk location ({shown}), edit the "
            "repository configuration adding a virtual chunk container for the chunk "
            "references, see https://icechunk.io/en/stable/virtual/",
            kind="no-container-for-virtual-chunk",
        )
    authorized = {(k if k.endswith("/") else k + "/"): v for k, v in authorized.items()}
    store = _build_store(cont, location, authorized, config.storage)
    start, end = narrow(payload.offset, payload.length, byte_range)
    if end <= start:
        return b""
    options: dict[str, Any] = {"range": (start, end)}
    if payload.etag is not None:
        options["if_match"] = _local_etag(payload.etag) if _is_local(cont) else payload.etag
    elif payload.last_modified:
        options["if_unmodified_since"] = dt.datetime.fromtimestamp(payload.last_modified, dt.UTC)
    ob = _obstore()
    try:
        result = await ob.get_async(store, location.key, options=options)
        data = bytes(await result.bytes_async())
    except ob.exceptions.PreconditionError:
        raise IcechunkError(
            f"the checksum of the object owning the virtual chunk has changed ({payload.location})",
            kind="virtual-chunk-modified",
        ) from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IcechunkError(
            f"error fetching virtual reference {payload.location} bytes {start}..{end}: {first}",
            kind="virtual-chunk-fetch",
        ) from e
    if len(data) != end - start:
        raise IcechunkError(
            f"error retrieving virtual chunk, not enough data. Expected: ({end - start}), "
            f"available ({len(data)}) in {payload.location}",
            kind="virtual-chunk-fetch",
        )
    return data


# --- VirtualChunkSpec ---------------------------------------------------------------------------

_U32: Final = 1 << 32
_U64: Final = 1 << 64


def _unsigned(name: str, value: object, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"argument '{name}': '{type(value).__name__}' object cannot be interpreted as an "
            "integer"
        )
    if value < 0:
        raise OverflowError("can't convert negative int to unsigned")
    if value >= limit:
        raise OverflowError("out of range integral type conversion attempted")
    return value


class VirtualChunkSpecLike(Protocol):
    """What ``IcechunkStore.set_virtual_refs`` reads of a :class:`VirtualChunkSpec`."""

    @property
    def index(self) -> Sequence[int]: ...
    @property
    def location(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def etag_checksum(self) -> str | None: ...
    @property
    def last_updated_at_checksum(self) -> dt.datetime | None: ...


class VirtualChunkSpec:
    """One virtual reference for :meth:`IcechunkStore.set_virtual_refs`.

    Parameters
    ----------
    index
        The chunk's index in the array's chunk grid.
    location
        The URL of the object holding the chunk.
    offset
        Where the chunk starts in the object.
    length
        The chunk's length in bytes.
    etag_checksum
        The object's ETag; reads fail if it changed. Wins over ``last_updated_at_checksum``.
    last_updated_at_checksum
        A UTC datetime; reads fail if the object was modified after it.

    Raises
    ------
    TypeError
        For arguments of the wrong type, or a datetime without a timezone.
    OverflowError
        For negative or too large integers.
    ValueError
        For a datetime that is not in UTC.
    """

    __slots__ = (
        "_etag_checksum",
        "_index",
        "_last_updated_at_checksum",
        "_length",
        "_location",
        "_offset",
    )

    def __init__(
        self,
        index: Sequence[int],
        location: str,
        offset: int,
        length: int,
        etag_checksum: str | None = None,
        last_updated_at_checksum: dt.datetime | None = None,
    ) -> None:
        if isinstance(index, str | bytes) or not isinstance(index, Sequence):
            raise TypeError(f"argument 'index': '{type(index).__name__}' object is not a list")
        self._index = [_unsigned("index", i, _U32) for i in index]
        if not isinstance(location, str):
            raise TypeError(
                f"argument 'location': '{type(location).__name__}' object cannot be cast as 'str'"
            )
        self._location = location
        self._offset = _unsigned("offset", offset, _U64)
        self._length = _unsigned("length", length, _U64)
        if etag_checksum is not None and not isinstance(etag_checksum, str):
            raise TypeError(
                f"argument 'etag_checksum': '{type(etag_checksum).__name__}' object cannot be "
                "cast as 'str'"
            )
        self._etag_checksum = etag_checksum
        when = last_updated_at_checksum
        if when is not None:
            if not isinstance(when, dt.datetime):
                raise TypeError(
                    f"argument 'last_updated_at_checksum': '{type(when).__name__}' object "
                    "cannot be cast as 'datetime'"
                )
            if when.tzinfo is None:
                raise TypeError(
                    "argument 'last_updated_at_checksum': expected a datetime with non-None tzinfo"
                )
            if when.utcoffset() != dt.timedelta(0):
                raise ValueError("expected datetime.timezone.utc")
        self._last_updated_at_checksum = when

    @property
    def index(self) -> list[int]:
        """The chunk's index in the chunk grid."""
        return list(self._index)

    location = ReadOnly[str]("_location", "The URL of the object holding the chunk.")

    offset = ReadOnly[int]("_offset", "Where the chunk starts in the object.")

    length = ReadOnly[int]("_length", "The chunk's length in bytes.")

    etag_checksum = ReadOnly[str | None]("_etag_checksum", "The object's expected ETag, if any.")

    last_updated_at_checksum = ReadOnly[dt.datetime | None](
        "_last_updated_at_checksum", "The object's latest allowed modification time, if any."
    )
