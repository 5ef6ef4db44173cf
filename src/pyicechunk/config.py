"""Repository configuration: the user-facing classes of icechunk 1.1's configuration API.

Every field is optional; ``None`` means "use the effective default". The defaults themselves
live in one place, :meth:`RepositoryConfig._effective` (and :meth:`StorageSettings._effective`
for storage settings), which turn a configuration into frozen records of plain values for the
rest of the library.

Differences from the reference, all deliberate:

- Every class here pickles (the reference's native classes do not), because a pickled
  ``Repository`` or ``Session`` carries its configuration.
- ``ManifestSplitDimCondition`` values compare by value (the reference compares by identity).
- Classes whose reference repr is the default ``<... object at 0x...>`` get a readable repr, and
  ``CompressionConfig``'s repr shows the algorithm it holds.
- ``set_virtual_chunk_container`` validates only the container being added, so one bad entry
  read from an old ``config.yaml`` does not block unrelated edits.
"""

from __future__ import annotations

import copy
import enum
import os
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast, overload

__all__ = [
    "CachingConfig",
    "CompressionAlgorithm",
    "CompressionConfig",
    "EffectiveConfig",
    "EffectiveStorageSettings",
    "ManifestConfig",
    "ManifestPreloadCondition",
    "ManifestPreloadConfig",
    "ManifestSplitCondition",
    "ManifestSplitDimCondition",
    "ManifestSplittingConfig",
    "ObjectStoreConfig",
    "RepositoryConfig",
    "S3Options",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
    "VirtualChunkContainer",
    "azure_store",
    "gcs_store",
    "http_store",
    "local_filesystem_store",
    "s3_store",
]

T = TypeVar("T")

_RANGE_ERROR = "out of range integral type conversion attempted"
U32_MAX = 2**32 - 1


# --- argument checks, with the messages pyo3 gives for the same mistakes -----------------------


def _type_name(value: object) -> str:
    return type(value).__name__


def _uint(name: str, value: object, bits: int, *, nonzero: bool = False) -> int:
    if not isinstance(value, int):
        raise TypeError(
            f"argument '{name}': '{_type_name(value)}' object cannot be interpreted as an integer"
        )
    number = int(value)
    if bits == 64:
        # pyo3 converts u64 through the C API, whose messages differ from the narrower types'.
        if number < 0:
            raise OverflowError("can't convert negative int to unsigned")
        if number >= 2**64:
            raise OverflowError("int too big to convert")
    elif not 0 <= number < 2**bits:
        raise OverflowError(_RANGE_ERROR)
    if nonzero and number == 0:
        raise ValueError("invalid zero value")
    return number


def _opt_uint(bits: int, *, nonzero: bool = False) -> Callable[[str, object], int | None]:
    def check(name: str, value: object) -> int | None:
        return None if value is None else _uint(name, value, bits, nonzero=nonzero)

    return check


def _instance(name: str, value: object, cls: type[T], cls_name: str | None = None) -> T:
    if not isinstance(value, cls):
        shown = cls_name or cls.__name__
        raise TypeError(
            f"argument '{name}': '{_type_name(value)}' object cannot be cast as '{shown}'"
        )
    return value


def _opt_instance(cls: type[T], cls_name: str | None = None) -> Callable[[str, object], T | None]:
    def check(name: str, value: object) -> T | None:
        return None if value is None else _instance(name, value, cls, cls_name)

    return check


def _bool(name: str, value: object) -> bool:
    return _instance(name, value, bool)


def _str(name: str, value: object) -> str:
    return _instance(name, value, str)


_opt_bool = _opt_instance(bool)
_opt_str = _opt_instance(str)


def _str_map(name: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    mapping = _instance(name, value, Mapping, "dict")  # type: ignore[type-abstract]
    return {_str(name, k): _str(name, v) for k, v in mapping.items()}


def _sequence(name: str, value: object) -> list[object]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"argument '{name}': '{_type_name(value)}' object cannot be cast as 'list'")
    return list(value)


def _pair(name: str, value: object) -> tuple[object, object]:
    items = _sequence(name, value)
    if len(items) != 2:
        raise TypeError(f"argument '{name}': expected a pair, got {len(items)} items")
    return items[0], items[1]


class _Field(Generic[T]):
    """A validated read/write attribute, stored on the instance as ``_<name>``."""

    def __init__(self, check: Callable[[str, object], T]) -> None:
        self._check = check
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Field[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> _Field[T] | T:
        if obj is None:
            return self
        return cast(T, obj.__dict__["_" + self._name])

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__["_" + self._name] = self._check(self._name, value)


class _Record:
    """Value equality over ``_FIELDS``; unhashable like the reference's mutable classes."""

    _FIELDS: ClassVar[tuple[str, ...]] = ()
    __hash__ = None  # type: ignore[assignment]

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def _merged_values(self, other: _Record) -> list[Any]:
        return [_merge_nested(a, b) for a, b in zip(self._values(), other._values(), strict=True)]

    def _repr_fields(self, names: Sequence[str]) -> str:
        return ", ".join(f"{n}={_fmt(getattr(self, n))}" for n in names)


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _rust_debug_str(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _opt_fmt(value: object) -> str:
    return "None" if value is None else str(value)


def _merge_opt(mine: T | None, theirs: T | None) -> T | None:
    return copy.deepcopy(theirs if theirs is not None else mine)


# --- object store configs ----------------------------------------------------------------------


class S3Options(_Record):
    """Options for S3 and S3-compatible object stores.

    Parameters
    ----------
    region
        The bucket's region.
    endpoint_url
        A custom endpoint, for S3-compatible stores.
    allow_http
        Allow plain HTTP connections.
    anonymous
        Send unsigned requests.
    force_path_style
        Use path-style addressing instead of virtual-hosted buckets.
    network_stream_timeout_seconds
        Timeout for stalled network streams; 0 disables it.
    requester_pays
        Send the requester-pays header.
    """

    _FIELDS = (
        "region",
        "endpoint_url",
        "allow_http",
        "anonymous",
        "force_path_style",
        "network_stream_timeout_seconds",
        "requester_pays",
    )
    region = _Field(_opt_str)
    endpoint_url = _Field(_opt_str)
    allow_http = _Field(_bool)
    anonymous = _Field(_bool)
    force_path_style = _Field(_bool)
    network_stream_timeout_seconds = _Field(_opt_uint(32))
    requester_pays = _Field(_bool)

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        allow_http: bool = False,
        anonymous: bool = False,
        force_path_style: bool = False,
        network_stream_timeout_seconds: int | None = None,
        requester_pays: bool = False,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.allow_http = allow_http
        self.anonymous = anonymous
        self.force_path_style = force_path_style
        self.network_stream_timeout_seconds = network_stream_timeout_seconds
        self.requester_pays = requester_pays

    def __repr__(self) -> str:
        return (
            f"S3Options(region={_opt_fmt(self.region)}, "
            f"endpoint_url={_opt_fmt(self.endpoint_url)}, allow_http={self.allow_http}, "
            f"anonymous={self.anonymous}, force_path_style={self.force_path_style}, "
            f"network_stream_timeout_seconds={_opt_fmt(self.network_stream_timeout_seconds)}, "
            f"requester_pays={self.requester_pays})"
        )

    def _rust_debug(self) -> str:
        def opt(v: object) -> str:
            if v is None:
                return "None"
            return f"Some({_rust_debug_str(v) if isinstance(v, str) else v})"

        b = {True: "true", False: "false"}
        return (
            f"S3Options {{ region: {opt(self.region)}, endpoint_url: {opt(self.endpoint_url)}, "
            f"anonymous: {b[self.anonymous]}, allow_http: {b[self.allow_http]}, "
            f"force_path_style: {b[self.force_path_style]}, "
            f"network_stream_timeout_seconds: {opt(self.network_stream_timeout_seconds)}, "
            f"requester_pays: {b[self.requester_pays]} }}"
        )


class ObjectStoreConfig:
    """Where the bytes of a virtual chunk container live; one nested class per kind of store.

    The variants are ``InMemory()``, ``LocalFileSystem(path)``, ``S3Compatible(options)``,
    ``S3(options)``, ``Gcs(opts)``, ``Azure(opts)``, ``Tigris(options)`` and ``Http(opts)``.
    Each exposes its argument as ``_0`` and supports ``match`` statements.
    """

    InMemory: ClassVar[type[_OscInMemory]]
    LocalFileSystem: ClassVar[type[_OscLocalFileSystem]]
    S3Compatible: ClassVar[type[_OscS3Compatible]]
    S3: ClassVar[type[_OscS3]]
    Gcs: ClassVar[type[_OscGcs]]
    Azure: ClassVar[type[_OscAzure]]
    Tigris: ClassVar[type[_OscTigris]]
    Http: ClassVar[type[_OscHttp]]

    __hash__ = None  # type: ignore[assignment]
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _TAG: ClassVar[str] = ""

    def _payload(self) -> tuple[object, ...]:
        return ()

    def __len__(self) -> int:
        return len(self._payload())

    def __getitem__(self, index: int) -> object:
        return self._payload()[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectStoreConfig):
            return NotImplemented
        return type(self) is type(other) and self._payload() == other._payload()

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._payload())
        return f"ObjectStoreConfig.{type(self).__name__}({args})"

    def _rust_debug(self) -> str:
        raise NotImplementedError


class _OscInMemory(ObjectStoreConfig):
    _TAG = "in_memory"

    def _rust_debug(self) -> str:
        return "InMemory"


class _OscLocalFileSystem(ObjectStoreConfig):
    __match_args__ = ("_0",)
    _TAG = "local_file_system"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"argument '_0': expected str, bytes or os.PathLike object, not {_type_name(path)}"
            )
        self._0 = pathlib.Path(path)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def _rust_debug(self) -> str:
        return f"LocalFileSystem({_rust_debug_str(str(self._0))})"


class _OscS3Like(ObjectStoreConfig):
    __match_args__ = ("_0",)

    def __init__(self, options: S3Options) -> None:
        self._0 = _instance("_0", options, S3Options)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def _rust_debug(self) -> str:
        return f"{type(self).__name__}({self._0._rust_debug()})"


class _OscS3Compatible(_OscS3Like):
    _TAG = "s3_compatible"


class _OscS3(_OscS3Like):
    _TAG = "s3"


class _OscTigris(_OscS3Like):
    _TAG = "tigris"


class _OscMapLike(ObjectStoreConfig):
    __match_args__ = ("_0",)

    def __init__(self, opts: Mapping[str, str] | None) -> None:
        self._0 = _str_map("_0", opts)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def _rust_debug(self) -> str:
        items = ", ".join(
            f"{_rust_debug_str(k)}: {_rust_debug_str(v)}" for k, v in (self._0 or {}).items()
        )
        return f"{type(self).__name__}({{{items}}})"


class _OscGcs(_OscMapLike):
    _TAG = "gcs"


class _OscAzure(_OscMapLike):
    _TAG = "azure"


class _OscHttp(_OscMapLike):
    _TAG = "http"


def _nest(outer: type, name: str, inner: type) -> None:
    # Nested names make pickle and reprs find the variants as ``Outer.Variant``.
    inner.__name__ = name
    inner.__qualname__ = f"{outer.__qualname__}.{name}"
    setattr(outer, name, inner)


for _name, _cls in [
    ("InMemory", _OscInMemory),
    ("LocalFileSystem", _OscLocalFileSystem),
    ("S3Compatible", _OscS3Compatible),
    ("S3", _OscS3),
    ("Gcs", _OscGcs),
    ("Azure", _OscAzure),
    ("Tigris", _OscTigris),
    ("Http", _OscHttp),
]:
    _nest(ObjectStoreConfig, _name, _cls)

AnyObjectStoreConfig = (
    _OscInMemory
    | _OscLocalFileSystem
    | _OscS3Compatible
    | _OscS3
    | _OscGcs
    | _OscAzure
    | _OscTigris
    | _OscHttp
)


def s3_store(
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    anonymous: bool = False,
    s3_compatible: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int = 60,
    requester_pays: bool = False,
) -> _OscS3Compatible | _OscS3:
    """Build the store config of an S3 (or S3-compatible) virtual chunk container.

    Parameters
    ----------
    region, endpoint_url, allow_http, anonymous, force_path_style
        As in :class:`S3Options`.
    network_stream_timeout_seconds, requester_pays
        As in :class:`S3Options`.
    s3_compatible
        Return ``ObjectStoreConfig.S3Compatible`` instead of ``ObjectStoreConfig.S3``.

    Returns
    -------
    ObjectStoreConfig.S3 or ObjectStoreConfig.S3Compatible
    """
    options = S3Options(
        region=region,
        endpoint_url=endpoint_url,
        allow_http=allow_http,
        anonymous=anonymous,
        force_path_style=force_path_style,
        network_stream_timeout_seconds=network_stream_timeout_seconds,
        requester_pays=requester_pays,
    )
    return _OscS3Compatible(options) if s3_compatible else _OscS3(options)


def gcs_store(opts: dict[str, str] | None = None) -> _OscGcs:
    """Build the store config of a Google Cloud Storage virtual chunk container.

    Parameters
    ----------
    opts
        Client options, passed through to the object store.

    Returns
    -------
    ObjectStoreConfig.Gcs
    """
    return _OscGcs(opts)


def http_store(opts: dict[str, str] | None = None) -> _OscHttp:
    """Build the store config of an HTTP(S) virtual chunk container.

    Parameters
    ----------
    opts
        Client options, passed through to the HTTP client.

    Returns
    -------
    ObjectStoreConfig.Http
    """
    return _OscHttp(opts)


def local_filesystem_store(path: str) -> _OscLocalFileSystem:
    """Build the store config of a local-filesystem virtual chunk container.

    Parameters
    ----------
    path
        The directory the container's URLs resolve against.

    Returns
    -------
    ObjectStoreConfig.LocalFileSystem
    """
    return _OscLocalFileSystem(path)


def azure_store(*, account: str, config: dict[str, str] | None = None) -> _OscAzure:
    """Build the store config of an Azure Blob Storage virtual chunk container.

    Parameters
    ----------
    account
        The storage account name.
    config
        Further client options.

    Returns
    -------
    ObjectStoreConfig.Azure
    """
    return _OscAzure({"account": account, **(config or {})})


# --- virtual chunk containers ------------------------------------------------------------------


class VirtualChunkContainer(_Record):
    """Permission for virtual references under a URL prefix, and how to fetch them.

    Parameters
    ----------
    url_prefix
        The URL prefix this container serves; must end in ``/`` (checked when the container
        is added to a :class:`RepositoryConfig`).
    store
        One of the ``ObjectStoreConfig`` variants.
    """

    _FIELDS = ("name", "url_prefix", "store")
    name = _Field(_opt_str)
    url_prefix = _Field(_str)
    store = _Field(_opt_instance(ObjectStoreConfig))

    def __init__(self, url_prefix: str, store: AnyObjectStoreConfig) -> None:
        self.name = None
        self.url_prefix = url_prefix
        self.store = _instance("store", store, ObjectStoreConfig)

    def __repr__(self) -> str:
        return f"VirtualChunkContainer(url_prefix={self.url_prefix!r}, store={self.store!r})"


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
_SCHEMES: dict[type[ObjectStoreConfig], tuple[tuple[str, ...], str]] = {
    _OscS3: (("s3",), "Url prefix for s3:// containers must include a host"),
    _OscS3Compatible: (("s3",), "Url prefix for s3:// containers must include a host"),
    _OscGcs: (("gcs", "gs"), "Url prefix for GCS containers must include a host"),
    _OscAzure: (("az", "azure", "abfs"), "Url prefix for Azure containers must include a host"),
    _OscHttp: (("http", "https"), "Url prefix for http(s):// containers must include a host"),
}


def _validate_container(cont: VirtualChunkContainer) -> None:
    """Raise ValueError (with the reference's messages) if the container cannot be used."""
    prefix = cont.url_prefix
    if not prefix.endswith("/"):
        raise ValueError("VirtualChunkContainer url_prefix must end in a / character")
    match = _SCHEME_RE.match(prefix)
    if match is None:
        raise ValueError("relative URL without a base")
    scheme, rest = match.group(1).lower(), match.group(2)
    host = ""
    path = rest
    if rest.startswith("//"):
        authority_end = len(rest)
        for sep in "/?#":
            pos = rest.find(sep, 2)
            if pos != -1:
                authority_end = min(authority_end, pos)
        host = rest[2:authority_end]
        path = rest[authority_end:]
    store = cont.store
    if isinstance(store, _OscTigris) and scheme in ("s3", "tigris"):
        if not host:
            raise ValueError(f"Url prefix for {scheme}:// containers must include a host")
        return
    if isinstance(store, _OscLocalFileSystem) and scheme == "file":
        if not host and len(path) < 2:
            raise ValueError("Url prefix for file:// containers must include a path")
        if any(segment in (".", "..") for segment in path.split("/")):
            raise ValueError("Url prefix for file:// containers must be a canonical url")
        return
    rule = _SCHEMES.get(type(store)) if store is not None else None
    if rule is not None and scheme in rule[0]:
        if not host:
            raise ValueError(rule[1])
        return
    debug = store._rust_debug() if store is not None else "None"
    raise ValueError(
        f"Invalid url prefix scheme ({scheme}) for this object store config: ({debug})"
    )


# --- compression, caching, storage -------------------------------------------------------------


class _CompressionAlgorithmMeta(enum.EnumMeta):
    def __call__(cls, value: object = 0, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(value, *args, **kwargs)


class CompressionAlgorithm(enum.IntEnum, metaclass=_CompressionAlgorithmMeta):
    """The compression algorithm for metadata files; Zstd is the only one."""

    Zstd = 0

    @staticmethod
    def default() -> CompressionAlgorithm:
        """Return the default algorithm, ``CompressionAlgorithm.Zstd``.

        Returns
        -------
        CompressionAlgorithm
        """
        return CompressionAlgorithm.Zstd

    def __repr__(self) -> str:
        return f"CompressionAlgorithm.{self.name}"

    __str__ = __repr__


class CompressionConfig(_Record):
    """Compression of metadata files (snapshots, manifests, transaction logs).

    Parameters
    ----------
    algorithm
        The algorithm; effective default Zstd.
    level
        The compression level (0-255); effective default 3.
    """

    _FIELDS = ("algorithm", "level")
    algorithm = _Field(_opt_instance(CompressionAlgorithm))
    level = _Field(_opt_uint(8))

    def __init__(
        self, algorithm: CompressionAlgorithm | None = None, level: int | None = None
    ) -> None:
        self.algorithm = algorithm
        self.level = level

    @staticmethod
    def default() -> CompressionConfig:
        """Return a config with every field unset.

        Returns
        -------
        CompressionConfig
        """
        return CompressionConfig()

    def __repr__(self) -> str:
        return f"CompressionConfig(algorithm={self.algorithm!r}, level={self.level!r})"

    def _merge(self, other: CompressionConfig) -> CompressionConfig:
        return CompressionConfig(
            other.algorithm if other.algorithm is not None else self.algorithm,
            other.level if other.level is not None else self.level,
        )


class CachingConfig(_Record):
    """Sizes of the in-memory caches.

    Parameters
    ----------
    num_snapshot_nodes
        Snapshot nodes to cache; effective default 500_000.
    num_chunk_refs
        Chunk references to cache; effective default 15_000_000.
    num_transaction_changes
        Transaction-log changes to cache; effective default 0.
    num_bytes_attributes
        Attribute bytes to cache; effective default 0.
    num_bytes_chunks
        Chunk bytes to cache; effective default 0.
    """

    _FIELDS = (
        "num_snapshot_nodes",
        "num_chunk_refs",
        "num_transaction_changes",
        "num_bytes_attributes",
        "num_bytes_chunks",
    )
    num_snapshot_nodes = _Field(_opt_uint(64))
    num_chunk_refs = _Field(_opt_uint(64))
    num_transaction_changes = _Field(_opt_uint(64))
    num_bytes_attributes = _Field(_opt_uint(64))
    num_bytes_chunks = _Field(_opt_uint(64))

    def __init__(
        self,
        num_snapshot_nodes: int | None = None,
        num_chunk_refs: int | None = None,
        num_transaction_changes: int | None = None,
        num_bytes_attributes: int | None = None,
        num_bytes_chunks: int | None = None,
    ) -> None:
        self.num_snapshot_nodes = num_snapshot_nodes
        self.num_chunk_refs = num_chunk_refs
        self.num_transaction_changes = num_transaction_changes
        self.num_bytes_attributes = num_bytes_attributes
        self.num_bytes_chunks = num_bytes_chunks

    @staticmethod
    def default() -> CachingConfig:
        """Return a config with every field unset.

        Returns
        -------
        CachingConfig
        """
        return CachingConfig()

    def __repr__(self) -> str:
        return f"CachingConfig({self._repr_fields(self._FIELDS)})"

    def _merge(self, other: CachingConfig) -> CachingConfig:
        return CachingConfig(*self._merged_values(other))


class StorageConcurrencySettings(_Record):
    """How one large object is fetched with several concurrent range requests.

    Parameters
    ----------
    max_concurrent_requests_for_object
        At most this many requests per object (>= 1); effective default 18.
    ideal_concurrent_request_size
        Preferred bytes per request (>= 1); effective default 12 MiB.
    """

    _FIELDS = ("max_concurrent_requests_for_object", "ideal_concurrent_request_size")
    max_concurrent_requests_for_object = _Field(_opt_uint(16, nonzero=True))
    ideal_concurrent_request_size = _Field(_opt_uint(64, nonzero=True))

    def __init__(
        self,
        max_concurrent_requests_for_object: int | None = None,
        ideal_concurrent_request_size: int | None = None,
    ) -> None:
        self.max_concurrent_requests_for_object = max_concurrent_requests_for_object
        self.ideal_concurrent_request_size = ideal_concurrent_request_size

    def __repr__(self) -> str:
        return f"StorageConcurrencySettings({self._repr_fields(self._FIELDS)})"

    def _merge(self, other: StorageConcurrencySettings) -> StorageConcurrencySettings:
        return StorageConcurrencySettings(*self._merged_values(other))


class StorageRetriesSettings(_Record):
    """Retries of failed storage requests, with exponential backoff.

    Parameters
    ----------
    max_tries
        Attempts per request (>= 1; 1 disables retries); effective default 10.
    initial_backoff_ms
        First backoff; effective default 100 ms.
    max_backoff_ms
        Largest backoff; effective default 180_000 ms.
    """

    _FIELDS = ("max_tries", "initial_backoff_ms", "max_backoff_ms")
    max_tries = _Field(_opt_uint(16, nonzero=True))
    initial_backoff_ms = _Field(_opt_uint(32))
    max_backoff_ms = _Field(_opt_uint(32))

    def __init__(
        self,
        max_tries: int | None = None,
        initial_backoff_ms: int | None = None,
        max_backoff_ms: int | None = None,
    ) -> None:
        self.max_tries = max_tries
        self.initial_backoff_ms = initial_backoff_ms
        self.max_backoff_ms = max_backoff_ms

    def __repr__(self) -> str:
        return f"StorageRetriesSettings({self._repr_fields(self._FIELDS)})"

    def _merge(self, other: StorageRetriesSettings) -> StorageRetriesSettings:
        return StorageRetriesSettings(*self._merged_values(other))


@dataclass(frozen=True)
class EffectiveStorageSettings:
    """Storage settings with every default applied (internal)."""

    max_concurrent_requests_for_object: int
    ideal_concurrent_request_size: int
    max_tries: int
    initial_backoff_ms: int
    max_backoff_ms: int
    unsafe_use_conditional_create: bool
    unsafe_use_conditional_update: bool
    unsafe_use_metadata: bool
    storage_class: str | None
    metadata_storage_class: str | None
    chunks_storage_class: str | None
    minimum_size_for_multipart_upload: int


def _merge_nested(mine: Any, theirs: Any) -> Any:
    """Merge one field: nested settings field by field, anything else replaced if set."""
    if mine is None or theirs is None or not hasattr(mine, "_merge"):
        return _merge_opt(mine, theirs)
    return mine._merge(theirs)


class StorageSettings(_Record):
    """Settings of the storage backend; unset fields fall back to the backend's defaults.

    Parameters
    ----------
    concurrency
        Concurrent range requests for large objects.
    retries
        Retries of failed requests.
    unsafe_use_conditional_create
        Use conditional (if-absent) writes; effective default True.
    unsafe_use_conditional_update
        Use conditional (if-match) updates; effective default True.
    unsafe_use_metadata
        Store object metadata (content types); effective default True.
    storage_class
        Storage class for every object.
    metadata_storage_class
        Storage class for metadata objects; falls back to ``storage_class``.
    chunks_storage_class
        Storage class for chunk objects; falls back to ``storage_class``.
    minimum_size_for_multipart_upload
        Objects at least this large use multipart uploads; effective default 100 MiB.
    """

    _FIELDS = (
        "concurrency",
        "retries",
        "unsafe_use_conditional_create",
        "unsafe_use_conditional_update",
        "unsafe_use_metadata",
        "storage_class",
        "metadata_storage_class",
        "chunks_storage_class",
        "minimum_size_for_multipart_upload",
    )
    concurrency = _Field(_opt_instance(StorageConcurrencySettings))
    retries = _Field(_opt_instance(StorageRetriesSettings))
    unsafe_use_conditional_create = _Field(_opt_bool)
    unsafe_use_conditional_update = _Field(_opt_bool)
    unsafe_use_metadata = _Field(_opt_bool)
    storage_class = _Field(_opt_str)
    metadata_storage_class = _Field(_opt_str)
    chunks_storage_class = _Field(_opt_str)
    minimum_size_for_multipart_upload = _Field(_opt_uint(64))

    def __init__(
        self,
        concurrency: StorageConcurrencySettings | None = None,
        retries: StorageRetriesSettings | None = None,
        unsafe_use_conditional_create: bool | None = None,
        unsafe_use_conditional_update: bool | None = None,
        unsafe_use_metadata: bool | None = None,
        storage_class: str | None = None,
        metadata_storage_class: str | None = None,
        chunks_storage_class: str | None = None,
        minimum_size_for_multipart_upload: int | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.retries = retries
        self.unsafe_use_conditional_create = unsafe_use_conditional_create
        self.unsafe_use_conditional_update = unsafe_use_conditional_update
        self.unsafe_use_metadata = unsafe_use_metadata
        self.storage_class = storage_class
        self.metadata_storage_class = metadata_storage_class
        self.chunks_storage_class = chunks_storage_class
        self.minimum_size_for_multipart_upload = minimum_size_for_multipart_upload

    def __repr__(self) -> str:
        # The reference's repr leaves out minimum_size_for_multipart_upload.
        return f"StorageSettings({self._repr_fields(self._FIELDS[:-1])})"

    def _merge(self, other: StorageSettings) -> StorageSettings:
        return StorageSettings(*self._merged_values(other))

    def merged_over(self, backend_defaults: StorageSettings) -> StorageSettings:
        """Return ``backend_defaults`` overridden by the fields set here (internal).

        Parameters
        ----------
        backend_defaults
            The storage backend's default settings.

        Returns
        -------
        StorageSettings
            A new object; neither input changes.
        """
        return backend_defaults._merge(self)

    def _effective(self) -> EffectiveStorageSettings:
        conc = self.concurrency or StorageConcurrencySettings()
        retries = self.retries or StorageRetriesSettings()

        def pick(value: T | None, default: T) -> T:
            return default if value is None else value

        return EffectiveStorageSettings(
            max_concurrent_requests_for_object=pick(conc.max_concurrent_requests_for_object, 18),
            ideal_concurrent_request_size=pick(conc.ideal_concurrent_request_size, 12 * 2**20),
            max_tries=pick(retries.max_tries, 10),
            initial_backoff_ms=pick(retries.initial_backoff_ms, 100),
            max_backoff_ms=pick(retries.max_backoff_ms, 180_000),
            unsafe_use_conditional_create=pick(self.unsafe_use_conditional_create, True),
            unsafe_use_conditional_update=pick(self.unsafe_use_conditional_update, True),
            unsafe_use_metadata=pick(self.unsafe_use_metadata, True),
            storage_class=self.storage_class,
            metadata_storage_class=pick(self.metadata_storage_class, self.storage_class),
            chunks_storage_class=pick(self.chunks_storage_class, self.storage_class),
            minimum_size_for_multipart_upload=pick(
                self.minimum_size_for_multipart_upload, 100 * 2**20
            ),
        )


# --- manifest preloading -----------------------------------------------------------------------


class ManifestPreloadCondition:
    """Which manifests to load when a session opens.

    Build conditions with the static constructors and combine them with ``&`` and ``|``.
    The variant classes are ``Or``, ``And``, ``PathMatches``, ``NameMatches``, ``NumRefs``,
    ``True`` and ``False``.
    """

    Or: ClassVar[type[_PreOr]]
    And: ClassVar[type[_PreAnd]]
    PathMatches: ClassVar[type[_PrePathMatches]]
    NameMatches: ClassVar[type[_PreNameMatches]]
    NumRefs: ClassVar[type[_PreNumRefs]]

    __hash__ = None  # type: ignore[assignment]
    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _payload(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ManifestPreloadCondition):
            return NotImplemented
        return type(self) is type(other) and self._payload() == other._payload()

    def __repr__(self) -> str:
        args = ", ".join(repr(p) for p in self._payload())
        return f"ManifestPreloadCondition.{type(self).__name__}({args})"

    @staticmethod
    def or_conditions(conditions: Sequence[ManifestPreloadCondition]) -> ManifestPreloadCondition:
        """Match if any condition matches.

        Parameters
        ----------
        conditions
            The alternatives.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreOr(conditions)

    @staticmethod
    def and_conditions(
        conditions: Sequence[ManifestPreloadCondition],
    ) -> ManifestPreloadCondition:
        """Match if every condition matches.

        Parameters
        ----------
        conditions
            The requirements.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreAnd(conditions)

    @staticmethod
    def path_matches(regex: str) -> ManifestPreloadCondition:
        """Match arrays whose absolute path (``/a/b``) matches ``regex``.

        Parameters
        ----------
        regex
            A regular expression.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PrePathMatches(regex)

    @staticmethod
    def name_matches(regex: str) -> ManifestPreloadCondition:
        """Match arrays whose name (last path component) matches ``regex``.

        Parameters
        ----------
        regex
            A regular expression.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreNameMatches(regex)

    @staticmethod
    def num_refs(from_refs: int | None, to_refs: int | None) -> ManifestPreloadCondition:
        """Match manifests with ``from_refs <= refs < to_refs`` chunk references.

        Parameters
        ----------
        from_refs
            Inclusive lower bound, or None for unbounded.
        to_refs
            Exclusive upper bound, or None for unbounded.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreNumRefs(from_refs, to_refs)

    @staticmethod
    def true() -> ManifestPreloadCondition:
        """Match every manifest.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreTrue()

    @staticmethod
    def false() -> ManifestPreloadCondition:
        """Match no manifest.

        Returns
        -------
        ManifestPreloadCondition
        """
        return _PreFalse()

    def __and__(self, other: ManifestPreloadCondition) -> ManifestPreloadCondition:
        _instance("other", other, ManifestPreloadCondition)
        return _PreAnd([self, other])

    def __or__(self, other: ManifestPreloadCondition) -> ManifestPreloadCondition:
        _instance("other", other, ManifestPreloadCondition)
        return _PreOr([self, other])


def _preload_list(value: object) -> list[ManifestPreloadCondition]:
    return [
        _instance("conditions", c, ManifestPreloadCondition) for c in _sequence("conditions", value)
    ]


class _PreOr(ManifestPreloadCondition):
    __match_args__ = ("_0",)

    def __init__(self, _0: Sequence[ManifestPreloadCondition]) -> None:
        self._0 = _preload_list(_0)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> object:
        return self._payload()[index]


class _PreAnd(_PreOr):
    pass


class _PrePathMatches(ManifestPreloadCondition):
    __match_args__ = ("regex",)

    def __init__(self, regex: str) -> None:
        self.regex = _str("regex", regex)

    def _payload(self) -> tuple[object, ...]:
        return (self.regex,)


class _PreNameMatches(_PrePathMatches):
    pass


class _PreNumRefs(ManifestPreloadCondition):
    __match_args__ = ("from", "to")

    def __init__(self, from_: int | None, to: int | None) -> None:
        self._from = None if from_ is None else _uint("from", from_, 32)
        self.to = None if to is None else _uint("to", to, 32)

    def _payload(self) -> tuple[object, ...]:
        return (self._from, self.to)


# ``from`` is a keyword, so the attribute can only be installed (and read) with getattr.
setattr(_PreNumRefs, "from", property(lambda self: self._from))


class _PreTrue(ManifestPreloadCondition):
    pass


class _PreFalse(ManifestPreloadCondition):
    pass


for _name, _cls in [
    ("Or", _PreOr),
    ("And", _PreAnd),
    ("PathMatches", _PrePathMatches),
    ("NameMatches", _PreNameMatches),
    ("NumRefs", _PreNumRefs),
    ("True", _PreTrue),
    ("False", _PreFalse),
]:
    _nest(ManifestPreloadCondition, _name, _cls)


def _default_preload_condition() -> ManifestPreloadCondition:
    # Coordinate-variable names, after cf-xarray's criteria, as the reference uses them.
    names = [
        r"^\bt\b$|^(time|min|hour|day|week|month|year)[0-9]*$",
        r"^(z|nav_lev|gdep|lv_|[o]*lev|bottom_top|sigma|h(ei)?ght|altitude|depth|isobaric|pres|isotherm)[a-z_]*[0-9]*$",
        r"^(y|j|nlat|rlat|nj)$",
        r"^y?(nav_lat|lat|gphi)[a-z0-9]*$",
        r"^x?(nav_lon|lon|glam)[a-z0-9]*$",
        r"^(x|i|nlon|rlon|ni)$",
    ]
    # The reference's bound is "<= 1000", which is "< 1001" in the Python API's terms.
    return _PreAnd([_PreOr([_PreNameMatches(n) for n in names]), _PreNumRefs(None, 1001)])


class ManifestPreloadConfig(_Record):
    """Which manifests a session loads eagerly.

    Parameters
    ----------
    max_total_refs
        Stop preloading after this many chunk references; effective default 10_000.
    preload_if
        The condition; the effective default preloads small manifests of coordinate arrays.
    """

    _FIELDS = ("max_total_refs", "preload_if")
    max_total_refs = _Field(_opt_uint(32))
    preload_if = _Field(_opt_instance(ManifestPreloadCondition))

    def __init__(
        self,
        max_total_refs: int | None = None,
        preload_if: ManifestPreloadCondition | None = None,
    ) -> None:
        self.max_total_refs = max_total_refs
        self.preload_if = preload_if

    def __repr__(self) -> str:
        return f"ManifestPreloadConfig({self._repr_fields(self._FIELDS)})"


# --- manifest splitting ------------------------------------------------------------------------


class ManifestSplitCondition:
    """Which arrays a manifest-splitting rule applies to. Hashable, compared by value.

    The variant classes are ``Or``, ``And``, ``PathMatches``, ``NameMatches`` and ``AnyArray``.
    """

    Or: ClassVar[type[_SplitOr]]
    And: ClassVar[type[_SplitAnd]]
    PathMatches: ClassVar[type[_SplitPathMatches]]
    NameMatches: ClassVar[type[_SplitNameMatches]]
    AnyArray: ClassVar[type[_SplitAnyArray]]

    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _payload(self) -> tuple[Any, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ManifestSplitCondition):
            return NotImplemented
        return type(self) is type(other) and self._payload() == other._payload()

    def __hash__(self) -> int:
        payload = tuple(tuple(p) if isinstance(p, list) else p for p in self._payload())
        return hash((type(self).__name__, payload))

    def _rust_debug(self) -> str:
        raise NotImplementedError

    @staticmethod
    def or_conditions(conditions: Sequence[ManifestSplitCondition]) -> ManifestSplitCondition:
        """Match if any condition matches.

        Parameters
        ----------
        conditions
            The alternatives.

        Returns
        -------
        ManifestSplitCondition
        """
        return _SplitOr(conditions)

    @staticmethod
    def and_conditions(conditions: Sequence[ManifestSplitCondition]) -> ManifestSplitCondition:
        """Match if every condition matches.

        Parameters
        ----------
        conditions
            The requirements.

        Returns
        -------
        ManifestSplitCondition
        """
        return _SplitAnd(conditions)

    @staticmethod
    def path_matches(regex: str) -> ManifestSplitCondition:
        """Match arrays whose absolute path matches ``regex``.

        Parameters
        ----------
        regex
            A regular expression.

        Returns
        -------
        ManifestSplitCondition
        """
        return _SplitPathMatches(regex)

    @staticmethod
    def name_matches(regex: str) -> ManifestSplitCondition:
        """Match arrays whose name matches ``regex``.

        Parameters
        ----------
        regex
            A regular expression.

        Returns
        -------
        ManifestSplitCondition
        """
        return _SplitNameMatches(regex)

    def __or__(self, other: ManifestSplitCondition) -> ManifestSplitCondition:
        _instance("other", other, ManifestSplitCondition)
        return _SplitOr([self, other])

    def __and__(self, other: ManifestSplitCondition) -> ManifestSplitCondition:
        _instance("other", other, ManifestSplitCondition)
        return _SplitAnd([self, other])


class _SplitOr(ManifestSplitCondition):
    __match_args__ = ("_0",)

    def __init__(self, _0: Sequence[ManifestSplitCondition]) -> None:
        self._0 = [
            _instance("conditions", c, ManifestSplitCondition) for c in _sequence("conditions", _0)
        ]

    def _payload(self) -> tuple[Any, ...]:
        return (self._0,)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> object:
        return self._payload()[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({''.join(repr(c) for c in self._0)})"

    def _rust_debug(self) -> str:
        return f"{type(self).__name__}([{', '.join(c._rust_debug() for c in self._0)}])"


class _SplitAnd(_SplitOr):
    pass


class _SplitPathMatches(ManifestSplitCondition):
    __match_args__ = ("regex",)

    def __init__(self, regex: str) -> None:
        self.regex = _str("regex", regex)

    def _payload(self) -> tuple[Any, ...]:
        return (self.regex,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.regex}')"

    def _rust_debug(self) -> str:
        return f"{type(self).__name__} {{ regex: {_rust_debug_str(self.regex)} }}"


class _SplitNameMatches(_SplitPathMatches):
    pass


class _SplitAnyArray(ManifestSplitCondition):
    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "AnyArray"

    def _rust_debug(self) -> str:
        return "AnyArray"


for _name, _cls in [
    ("Or", _SplitOr),
    ("And", _SplitAnd),
    ("PathMatches", _SplitPathMatches),
    ("NameMatches", _SplitNameMatches),
    ("AnyArray", _SplitAnyArray),
]:
    _nest(ManifestSplitCondition, _name, _cls)


class ManifestSplitDimCondition:
    """Which dimension of an array a split size applies to: ``Axis(i)``, ``DimensionName(regex)``
    or ``Any()`` (every dimension not matched by an earlier rule)."""

    Axis: ClassVar[type[_DimAxis]]
    DimensionName: ClassVar[type[_DimName]]
    Any: ClassVar[type[_DimAny]]

    __match_args__: ClassVar[tuple[str, ...]] = ()

    def _payload(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ManifestSplitDimCondition):
            return NotImplemented
        return type(self) is type(other) and self._payload() == other._payload()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._payload()))

    def __len__(self) -> int:
        return len(self._payload())

    def __getitem__(self, index: int) -> object:
        return self._payload()[index]


class _DimAxis(ManifestSplitDimCondition):
    __match_args__ = ("_0",)

    def __init__(self, axis: int) -> None:
        self._0 = _uint("_0", axis, 64)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def __repr__(self) -> str:
        return f"Axis({self._0})"


class _DimName(ManifestSplitDimCondition):
    __match_args__ = ("_0",)

    def __init__(self, regex: str) -> None:
        self._0 = _str("_0", regex)

    def _payload(self) -> tuple[object, ...]:
        return (self._0,)

    def __repr__(self) -> str:
        return f'DimensionName("{self._0}")'

    def _rust_debug(self) -> str:
        return f"DimensionName({_rust_debug_str(self._0)})"


class _DimAny(ManifestSplitDimCondition):
    def __repr__(self) -> str:
        return "Any"


for _name, _cls in [("Axis", _DimAxis), ("DimensionName", _DimName), ("Any", _DimAny)]:
    _nest(ManifestSplitDimCondition, _name, _cls)


def _dim_debug(dim: ManifestSplitDimCondition) -> str:
    return dim._rust_debug() if isinstance(dim, _DimName) else repr(dim)


SplitSizes = list[tuple[ManifestSplitCondition, list[tuple[ManifestSplitDimCondition, int]]]]


def _split_sizes(name: str, value: object) -> SplitSizes | None:
    if value is None:
        return None
    result: SplitSizes = []
    for entry in _sequence(name, value):
        cond, dims = _pair(name, entry)
        dim_list = []
        for dim_entry in _sequence(name, dims):
            dim, size = _pair(name, dim_entry)
            dim_list.append(
                (
                    _instance(name, dim, ManifestSplitDimCondition),
                    _uint(name, size, 32),
                )
            )
        result.append((_instance(name, cond, ManifestSplitCondition), dim_list))
    return result


class ManifestSplittingConfig(_Record):
    """How the chunk references of an array are split over several manifests.

    Parameters
    ----------
    split_sizes
        A sequence of ``(ManifestSplitCondition, [(ManifestSplitDimCondition, num_chunks), ...])``.
        The first rule whose condition matches an array applies; within it, the first dimension
        condition matching each axis gives that axis's split size.
    """

    _FIELDS = ("split_sizes",)
    split_sizes = _Field(_split_sizes)

    def __init__(self, split_sizes: Sequence[Any] | None = None) -> None:
        self.split_sizes = split_sizes

    @staticmethod
    def from_dict(
        split_sizes: Mapping[ManifestSplitCondition, Mapping[ManifestSplitDimCondition, int]],
    ) -> ManifestSplittingConfig:
        """Build a config from ``{condition: {dim_condition: num_chunks}}``, in insertion order.

        Parameters
        ----------
        split_sizes
            The rules.

        Returns
        -------
        ManifestSplittingConfig
        """
        return ManifestSplittingConfig([(k, list(v.items())) for k, v in split_sizes.items()])

    def to_dict(
        self,
    ) -> dict[ManifestSplitCondition, dict[ManifestSplitDimCondition, int]]:
        """Return the rules as ``{condition: {dim_condition: num_chunks}}``.

        Returns
        -------
        dict
        """
        return {cond: dict(dims) for cond, dims in self.split_sizes or []}

    def __repr__(self) -> str:
        if self.split_sizes is None:
            return "ManifestSplittingConfig(None)"
        rules = ", ".join(
            f"({cond._rust_debug()}, [{', '.join(f'({_dim_debug(d)}, {n})' for d, n in dims)}])"
            for cond, dims in self.split_sizes
        )
        return f"ManifestSplittingConfig({rules})"


def _default_split_sizes() -> SplitSizes:
    return [(_SplitPathMatches(".*"), [(_DimAny(), U32_MAX)])]


class ManifestConfig(_Record):
    """Manifest preloading and splitting.

    Parameters
    ----------
    preload
        Which manifests to load when a session opens.
    splitting
        How chunk references are split over manifests.
    """

    _FIELDS = ("preload", "splitting")
    preload = _Field(_opt_instance(ManifestPreloadConfig))
    splitting = _Field(_opt_instance(ManifestSplittingConfig))

    def __init__(
        self,
        preload: ManifestPreloadConfig | None = None,
        splitting: ManifestSplittingConfig | None = None,
    ) -> None:
        self.preload = preload
        self.splitting = splitting

    def __repr__(self) -> str:
        return f"ManifestConfig(preload={self.preload!r}, splitting={self.splitting!r})"

    def _merge(self, other: ManifestConfig) -> ManifestConfig:
        # The reference replaces preload and splitting wholesale instead of merging them.
        return ManifestConfig(
            _merge_opt(self.preload, other.preload), _merge_opt(self.splitting, other.splitting)
        )


# --- the repository config ---------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveConfig:
    """A :class:`RepositoryConfig` with every default applied (internal).

    Storage settings are not here: they depend on the backend, see
    :meth:`StorageSettings.merged_over` and :meth:`StorageSettings._effective`.
    """

    inline_chunk_threshold_bytes: int
    get_partial_values_concurrency: int
    compression_algorithm: CompressionAlgorithm
    compression_level: int
    max_concurrent_requests: int
    num_snapshot_nodes: int
    num_chunk_refs: int
    num_transaction_changes: int
    num_bytes_attributes: int
    num_bytes_chunks: int
    preload_max_total_refs: int
    preload_if: ManifestPreloadCondition
    split_sizes: tuple[
        tuple[ManifestSplitCondition, tuple[tuple[ManifestSplitDimCondition, int], ...]], ...
    ]


def _containers(name: str, value: object) -> dict[str, VirtualChunkContainer] | None:
    if value is None:
        return None
    mapping = _instance(name, value, Mapping, "dict")  # type: ignore[type-abstract]
    return {
        _str(name, k): copy.deepcopy(_instance(name, v, VirtualChunkContainer))
        for k, v in mapping.items()
    }


class RepositoryConfig(_Record):
    """Configuration of a repository, persisted as ``config.yaml``.

    Parameters
    ----------
    inline_chunk_threshold_bytes
        Chunks smaller than this are stored inside the manifest; effective default 512.
    get_partial_values_concurrency
        Concurrency of partial reads; effective default 10.
    compression
        Compression of metadata files.
    max_concurrent_requests
        Maximum concurrent storage requests; effective default 256.
    caching
        Cache sizes.
    storage
        Storage settings, over the backend's defaults.
    virtual_chunk_containers
        Virtual chunk containers by URL prefix.
    manifest
        Manifest preloading and splitting.
    """

    _FIELDS = (
        "inline_chunk_threshold_bytes",
        "get_partial_values_concurrency",
        "compression",
        "max_concurrent_requests",
        "caching",
        "storage",
        "virtual_chunk_containers",
        "manifest",
    )
    inline_chunk_threshold_bytes = _Field(_opt_uint(16))
    get_partial_values_concurrency = _Field(_opt_uint(16))
    compression = _Field(_opt_instance(CompressionConfig))
    max_concurrent_requests = _Field(_opt_uint(16))
    caching = _Field(_opt_instance(CachingConfig))
    storage = _Field(_opt_instance(StorageSettings))
    manifest = _Field(_opt_instance(ManifestConfig))

    def __init__(
        self,
        inline_chunk_threshold_bytes: int | None = None,
        get_partial_values_concurrency: int | None = None,
        compression: CompressionConfig | None = None,
        max_concurrent_requests: int | None = None,
        caching: CachingConfig | None = None,
        storage: StorageSettings | None = None,
        virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = None,
        manifest: ManifestConfig | None = None,
    ) -> None:
        self.inline_chunk_threshold_bytes = inline_chunk_threshold_bytes
        self.get_partial_values_concurrency = get_partial_values_concurrency
        self.compression = compression
        self.max_concurrent_requests = max_concurrent_requests
        self.caching = caching
        self.storage = storage
        self._virtual_chunk_containers = _containers(
            "virtual_chunk_containers", virtual_chunk_containers
        )
        self.manifest = manifest

    @staticmethod
    def default() -> RepositoryConfig:
        """Return a config with every field unset.

        Returns
        -------
        RepositoryConfig
        """
        return RepositoryConfig()

    @property
    def virtual_chunk_containers(self) -> dict[str, VirtualChunkContainer] | None:
        """The virtual chunk containers by URL prefix (a copy; edit with the methods)."""
        return copy.deepcopy(self._virtual_chunk_containers)

    def get_virtual_chunk_container(self, name: str) -> VirtualChunkContainer | None:
        """Return the container for a URL prefix, or None.

        Parameters
        ----------
        name
            The container's ``url_prefix``.

        Returns
        -------
        VirtualChunkContainer or None
        """
        found = (self._virtual_chunk_containers or {}).get(name)
        return copy.deepcopy(found)

    def set_virtual_chunk_container(self, cont: VirtualChunkContainer) -> None:
        """Add a container, replacing any with the same ``url_prefix``.

        Parameters
        ----------
        cont
            The container.

        Raises
        ------
        ValueError
            If the prefix does not end in ``/``, is not an absolute URL, or its scheme does not
            fit the container's store.
        """
        _instance("cont", cont, VirtualChunkContainer)
        _validate_container(cont)
        containers = dict(self._virtual_chunk_containers or {})
        containers[cont.url_prefix] = copy.deepcopy(cont)
        self._virtual_chunk_containers = containers

    def clear_virtual_chunk_containers(self) -> None:
        """Remove every container (the property becomes ``{}``, which replaces on merge)."""
        self._virtual_chunk_containers = {}

    def merge(self, other: RepositoryConfig) -> RepositoryConfig:
        """Return this config overridden by the fields set in ``other``.

        Nested compression, caching and storage settings merge field by field; the manifest
        config keeps whichever of ``preload`` and ``splitting`` ``other`` sets; containers in
        ``other`` (even ``{}``) replace these.

        Parameters
        ----------
        other
            The overriding config.

        Returns
        -------
        RepositoryConfig
            A new object; neither input changes.
        """
        _instance("other", other, RepositoryConfig)
        merged = RepositoryConfig(*self._merged_values(other))
        return merged

    def _values(self) -> tuple[object, ...]:
        return tuple(
            self._virtual_chunk_containers if f == "virtual_chunk_containers" else getattr(self, f)
            for f in self._FIELDS
        )

    def __repr__(self) -> str:
        # Like the reference, the repr leaves out max_concurrent_requests and the containers.
        names = [f for f in self._FIELDS if f not in ("max_concurrent_requests",)]
        names.remove("virtual_chunk_containers")
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"RepositoryConfig({shown})"

    def _effective(self) -> EffectiveConfig:
        def pick(value: T | None, default: T) -> T:
            return default if value is None else value

        comp = self.compression or CompressionConfig()
        cache = self.caching or CachingConfig()
        manifest = self.manifest or ManifestConfig()
        preload = manifest.preload or ManifestPreloadConfig()
        splitting = manifest.splitting
        split_sizes = (
            splitting.split_sizes
            if splitting is not None and splitting.split_sizes is not None
            else _default_split_sizes()
        )
        return EffectiveConfig(
            inline_chunk_threshold_bytes=pick(self.inline_chunk_threshold_bytes, 512),
            get_partial_values_concurrency=pick(self.get_partial_values_concurrency, 10),
            compression_algorithm=pick(comp.algorithm, CompressionAlgorithm.Zstd),
            compression_level=pick(comp.level, 3),
            max_concurrent_requests=pick(self.max_concurrent_requests, 256),
            num_snapshot_nodes=pick(cache.num_snapshot_nodes, 500_000),
            num_chunk_refs=pick(cache.num_chunk_refs, 15_000_000),
            num_transaction_changes=pick(cache.num_transaction_changes, 0),
            num_bytes_attributes=pick(cache.num_bytes_attributes, 0),
            num_bytes_chunks=pick(cache.num_bytes_chunks, 0),
            preload_max_total_refs=pick(preload.max_total_refs, 10_000),
            preload_if=copy.deepcopy(preload.preload_if) or _default_preload_condition(),
            split_sizes=tuple(
                (copy.deepcopy(cond), tuple(copy.deepcopy(dims))) for cond, dims in split_sizes
            ),
        )
