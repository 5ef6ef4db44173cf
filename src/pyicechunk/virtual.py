"""Virtual chunk references: locations, containers, checksums and fetching (FORMAT-V1 §5.2).

A virtual chunk is a byte range of an object outside the repository. Its location is stored
normalised (parsed as a URL, empty path segments dropped), and reading it needs a virtual chunk
container from the repository config whose ``url_prefix`` matches, plus the user's authorization
for that prefix (``authorize_virtual_chunk_access``), which may carry credentials.

Fetching goes through obstore: ``file://`` with a root-less local store, ``s3://`` with an S3
store per bucket, ``gs://`` and ``az://`` with GCS and Azure stores per bucket/container and
``http(s)://`` with an HTTP store per host. Stores are cached across sessions, keyed by what
defines them, because building one (credential lookup, client setup) costs far more than a read.
A checksum is checked by the object store itself with a conditional GET (``If-Match`` for an
ETag, ``If-Unmodified-Since`` for a last-modified bound).
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from zarr.abc.store import ByteRequest

from pyicechunk.asset_manager import _narrow
from pyicechunk.config import (
    ObjectStoreConfig,
    RepositoryConfig,
    S3Options,
    StorageSettings,
    VirtualChunkContainer,
    _rust_debug_str,
    _validate_container,
)
from pyicechunk.credentials import Credentials, GcsCredentials, S3Credentials
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import VirtualPayload

__all__ = [
    "NO_CONTAINER_MESSAGE",
    "VirtualChunkSpec",
    "checksum_fields",
    "fetch_virtual_chunk",
    "find_container",
    "normalize_location",
    "usable_containers",
]

NO_CONTAINER_MESSAGE: Final = "invalid chunk location, no matching virtual chunk container"

_SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# Schemes the WHATWG URL standard treats specially: "\" is a path separator, hosts are
# lower-cased, and an authority is implied after the scheme.
_SPECIAL: Final = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
# Characters the URL path percent-encode set escapes (besides controls and non-ASCII).
_PATH_ESCAPE: Final = frozenset(' "<>`{}')
_FORBIDDEN_HOST: Final = frozenset(" #/:<>?@[\\]^|")
_TIGRIS_ENDPOINT: Final = "https://t3.storage.dev"
_FETCHER_CACHE_SIZE: Final = 50


def _parse_error(location: str, cause: str) -> IcechunkError:
    return IcechunkError(
        f"error parsing virtual ref URL: {_rust_debug_str(location)} ({cause}); virtual chunk "
        "locations must be absolute URLs such as s3://bucket/file.nc or file:///data/file.nc"
    )


def _escape_segment(segment: str) -> str:
    out = []
    for ch in segment:
        if ch in _PATH_ESCAPE or ord(ch) < 0x20 or ord(ch) >= 0x7F:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def _dot_kind(segment: str) -> int:
    """1 for a "." segment, 2 for "..", 0 otherwise (percent-encoded dots count)."""
    lowered = segment.lower()
    if lowered in (".", "%2e"):
        return 1
    if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
        return 2
    return 0


def _split_authority(location: str, scheme: str, authority: str) -> str:
    """The host of an authority (user info and port dropped), validated."""
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        end = host_port.find("]")
        if end == -1:
            raise _parse_error(location, "invalid IPv6 address")
        host, port = host_port[: end + 1], host_port[end + 1 :]
        if port and not port.startswith(":"):
            raise _parse_error(location, "invalid IPv6 address")
        port = port[1:]
    else:
        host, _, port = host_port.partition(":")
    if port and not port.isdigit():
        raise _parse_error(location, "invalid port number")
    if any(ch in _FORBIDDEN_HOST for ch in host if not host.startswith("[")):
        raise _parse_error(location, "invalid domain character")
    if scheme in _SPECIAL:
        if not host and scheme != "file":
            raise _parse_error(location, "empty host")
        host = host.lower()
        if scheme == "file" and host == "localhost":
            host = ""
    return host


def normalize_location(location: str) -> str:
    """Return a virtual chunk location in the form the format stores (FORMAT-V1 §5.2).

    The location is parsed as a URL; query, fragment, user info and port are dropped, ``.`` and
    ``..`` segments are resolved, empty path segments are removed, and the result is
    ``scheme://host/segments``. ``file`` URLs may have an empty host; others must have one.

    Parameters
    ----------
    location
        The location as the user gave it, e.g. ``s3://bucket//dir/file.nc``.

    Returns
    -------
    str
        The normalised location, e.g. ``s3://bucket/dir/file.nc``.

    Raises
    ------
    IcechunkError
        If the location is not an absolute URL, has no path, or (not ``file``) has no host.
    """
    text = location.strip("".join(chr(c) for c in range(0x21)))
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME_RE.match(text)
    if match is None:
        raise _parse_error(location, "relative URL without a base")
    scheme = match.group(1).lower()
    rest = text[match.end() :].split("#", 1)[0].split("?", 1)[0]
    special = scheme in _SPECIAL
    if special:
        rest = rest.replace("\\", "/")
    host: str | None = None
    if special and scheme != "file":
        # http:foo/bar means http://foo/bar for special schemes
        rest = rest.lstrip("/")
        authority, slash, path = rest.partition("/")
        host = _split_authority(location, scheme, authority)
        path = slash + path
    elif rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        host = _split_authority(location, scheme, authority)
        path = slash + path
    else:
        path = rest
    if scheme == "file":
        host = host or ""
        if not path.startswith("/"):
            path = "/" + path
    if not path.startswith("/"):
        raise IcechunkError(
            f"virtual reference has no path segments {location}: a location needs a path, "
            "e.g. s3://bucket/file.nc"
        )
    if not host and scheme != "file":
        raise IcechunkError(
            f"error parsing bucket name from virtual ref URL {location}: non-file locations "
            "need a host (bucket), e.g. s3://bucket/file.nc"
        )
    segments: list[str] = []
    raw = path[1:].split("/")
    for i, segment in enumerate(raw):
        kind = _dot_kind(segment)
        last = i == len(raw) - 1
        if kind == 2:
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif kind == 1:
            if last:
                segments.append("")
        else:
            segments.append(_escape_segment(segment))
    kept = "/".join(s for s in segments if s)
    return f"{scheme}://{host}/{kept}"


def usable_containers(config: RepositoryConfig) -> list[VirtualChunkContainer]:
    """The config's valid containers, longest ``url_prefix`` first.

    A persisted config may hold containers that would not pass validation; like the reference,
    they are ignored rather than failing every read. A missing trailing ``/`` is added.

    Parameters
    ----------
    config
        The repository config.

    Returns
    -------
    list of VirtualChunkContainer
    """
    out: list[VirtualChunkContainer] = []
    for cont in (config.virtual_chunk_containers or {}).values():
        prefix = cont.url_prefix if cont.url_prefix.endswith("/") else cont.url_prefix + "/"
        fixed = VirtualChunkContainer(prefix, cont.store)  # type: ignore[arg-type]
        try:
            _validate_container(fixed)
        except ValueError:
            continue
        out.append(fixed)
    out.sort(key=lambda c: -len(c.url_prefix))
    return out


def find_container(
    location: str, containers: Sequence[VirtualChunkContainer]
) -> VirtualChunkContainer | None:
    """The first container (of a longest-prefix-first list) whose prefix starts ``location``.

    Parameters
    ----------
    location
        A normalised location.
    containers
        As returned by :func:`usable_containers`.

    Returns
    -------
    VirtualChunkContainer or None
    """
    for cont in containers:
        if location.startswith(cont.url_prefix):
            return cont
    return None


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
    from pyicechunk.storage.object_store import _obstore as load

    return load()


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
        "open/create the repository, see https://icechunk.io/en/stable/virtual/"
    )


def _invalid_credentials(kind: str, cont: VirtualChunkContainer) -> IcechunkError:
    return IcechunkError(
        f"invalid credentials for virtual reference of type {kind}: the credentials authorized "
        f"for {cont.url_prefix} are not {kind} credentials"
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


def _effective(settings: StorageSettings | None) -> Any:
    return (settings or StorageSettings())._effective()


def _s3_fetcher(
    cont: VirtualChunkContainer,
    bucket: str,
    cred: Any,
    settings: StorageSettings | None,
) -> Any:
    from pyicechunk.storage.object_store import _s3_store, s3_spec

    store: Any = cont.store
    opts: S3Options = store._0
    if isinstance(store, ObjectStoreConfig.Tigris) and opts.endpoint_url is None:
        opts = S3Options(**{**_s3_fields(opts), "endpoint_url": _TIGRIS_ENDPOINT})
    if cred is None:
        cred = S3Credentials.Anonymous() if opts.anonymous else S3Credentials.FromEnv()
    spec = s3_spec("s3", opts, bucket, None, cred)
    return _s3_store(spec, _effective(settings))


def _s3_fields(opts: S3Options) -> dict[str, Any]:
    return {name: getattr(opts, name) for name in S3Options._FIELDS}


def _build_store(
    cont: VirtualChunkContainer,
    host: str,
    scheme: str,
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
                f"{cont.url_prefix}); build it with azure_store(account=...)"
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
            "hold virtual chunks; use a file://, s3://, gs://, az:// or http(s):// container"
        )
    key = (cont.url_prefix, store._rust_debug(), host, pickle.dumps(cred), repr(settings))
    return _cached_store(key, lambda: _make_remote(cont, scheme, host, cred, settings))


def _make_remote(
    cont: VirtualChunkContainer,
    scheme: str,
    host: str,
    cred: Any,
    settings: StorageSettings | None,
) -> Any:
    from pyicechunk.storage.object_store import _azure_store, _gcs_store, azure_spec, gcs_spec

    store: Any = cont.store
    bucket = urllib.parse.unquote(host)
    if isinstance(store, ObjectStoreConfig.Gcs):
        gcs = gcs_spec(bucket, None, cred or GcsCredentials.Anonymous(), store._0)
        return _gcs_store(gcs, _effective(settings))
    if isinstance(store, ObjectStoreConfig.Azure):
        options: dict[str, str] = store._0 or {}
        config = {k: v for k, v in options.items() if k != "account"}
        azure = azure_spec(options["account"], bucket, None, cred, config)
        return _azure_store(azure, _effective(settings))
    if isinstance(store, ObjectStoreConfig.Http):
        return _obstore().store.HTTPStore.from_url(
            f"{scheme}://{host}", client_options=dict(store._0 or {}) or None
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
        If no container matches, the container is not authorized, the object is missing or
        shorter than the reference says, or the object's checksum changed.
    """
    location = payload.location
    if _SCHEME_RE.match(location) is None:
        raise _parse_error(location, "relative URL without a base")
    decoded = urllib.parse.unquote(location)
    cont = find_container(decoded, usable_containers(config))
    if cont is None:
        raise IcechunkError(
            f"no virtual chunk container can handle the chunk location ({location}), edit the "
            "repository configuration adding a virtual chunk container for the chunk "
            "references, see https://icechunk.io/en/stable/virtual/"
        )
    scheme, _, rest = location.partition("://")
    host, _, path = rest.partition("/")
    authorized = {(k if k.endswith("/") else k + "/"): v for k, v in authorized.items()}
    store = _build_store(cont, host, scheme, authorized, config.storage)
    start, end = _narrow(payload.offset, payload.length, byte_range)
    if end <= start:
        return b""
    options: dict[str, Any] = {"range": (start, end)}
    if payload.etag is not None:
        options["if_match"] = _local_etag(payload.etag) if _is_local(cont) else payload.etag
    elif payload.last_modified:
        options["if_unmodified_since"] = dt.datetime.fromtimestamp(payload.last_modified, dt.UTC)
    ob = _obstore()
    try:
        result = await ob.get_async(store, urllib.parse.unquote(path), options=options)
        data = bytes(await result.bytes_async())
    except ob.exceptions.PreconditionError:
        raise IcechunkError(
            f"the checksum of the object owning the virtual chunk has changed ({location})"
        ) from None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IcechunkError(
            f"error fetching virtual reference {location} bytes {start}..{end}: {first}"
        ) from e
    if len(data) != end - start:
        raise IcechunkError(
            f"error retrieving virtual chunk, not enough data. Expected: ({end - start}), "
            f"available ({len(data)}) in {location}"
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

    @property
    def location(self) -> str:
        """The URL of the object holding the chunk."""
        return self._location

    @property
    def offset(self) -> int:
        """Where the chunk starts in the object."""
        return self._offset

    @property
    def length(self) -> int:
        """The chunk's length in bytes."""
        return self._length

    @property
    def etag_checksum(self) -> str | None:
        """The object's expected ETag, if any."""
        return self._etag_checksum

    @property
    def last_updated_at_checksum(self) -> dt.datetime | None:
        """The object's latest allowed modification time, if any."""
        return self._last_updated_at_checksum
