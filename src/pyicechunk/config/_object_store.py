"""Object store configs: where the bytes of a virtual chunk container live.

``ObjectStoreConfig`` has one nested variant per kind of store; ``S3Options`` is the payload of
the S3-family variants; ``s3_store`` and its siblings are the reference's constructors.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pyicechunk._enum import NamedIntEnum
from pyicechunk._repr import Block, qualified

from ._checks import _bool, _instance, _opt_instance, _opt_str, _opt_uint, _str_map, _type_name
from ._formatting import _rust_debug_str
from ._record import _field, _Record, record_fields, repr_at
from ._variant import _nest, _TupleLike, _Wrapper


class ChecksumAlgorithm(NamedIntEnum):
    """The checksum S3 write requests carry; unset, the S3 client chooses.

    Some S3-compatible services accept only some of these.
    """

    Crc32 = 0
    Crc32c = 1
    Crc64Nvme = 2
    Sha1 = 3
    Sha256 = 4


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
    checksum_algorithm
        The checksum of write requests; None lets the S3 client choose.
    """

    region: str | None = _field(_opt_str, default=None)
    endpoint_url: str | None = _field(_opt_str, default=None)
    allow_http: bool = _field(_bool, default=False)
    anonymous: bool = _field(_bool, default=False)
    force_path_style: bool = _field(_bool, default=False)
    network_stream_timeout_seconds: int | None = _field(_opt_uint(32), default=None)
    requester_pays: bool = _field(_bool, default=False)
    checksum_algorithm: ChecksumAlgorithm | None = _field(
        _opt_instance(ChecksumAlgorithm), default=None
    )

    def _rust_debug(self) -> str:
        def opt(v: object) -> str:
            if v is None:
                return "None"
            return f"Some({_rust_debug_str(v) if isinstance(v, str) else v})"

        b = {True: "true", False: "false"}
        # icechunk 1.1 has no checksum field; 2.x appends it (shown here only when set).
        checksum = self.checksum_algorithm
        extra = "" if checksum is None else f", checksum_algorithm: Some({checksum.name})"
        return (
            f"S3Options {{ region: {opt(self.region)}, endpoint_url: {opt(self.endpoint_url)}, "
            f"anonymous: {b[self.anonymous]}, allow_http: {b[self.allow_http]}, "
            f"force_path_style: {b[self.force_path_style]}, "
            f"network_stream_timeout_seconds: {opt(self.network_stream_timeout_seconds)}, "
            f"requester_pays: {b[self.requester_pays]}{extra} }}"
        )


class ObjectStoreConfig(_TupleLike):
    """Where the bytes of a virtual chunk container live; one nested class per kind of store.

    The variants are ``InMemory()``, ``LocalFileSystem(path)``, ``S3Compatible(options)``,
    ``S3(options)``, ``Gcs(opts)``, ``Azure(opts)``, ``Tigris(options)`` and
    ``Http(opts, headers=None)``. Each exposes its arguments as ``_0`` (and ``_1``) and
    supports ``match`` statements.
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
    # The variant's name in config.yaml; the URL schemes of the container prefixes it can
    # serve, and how the error for a prefix without a host names them (None: by its scheme).
    _TAG: ClassVar[str] = ""
    _SCHEMES: ClassVar[tuple[str, ...]] = ()
    _HOST_LABEL: ClassVar[str | None] = None

    def _rust_debug(self) -> str:
        raise NotImplementedError

    def _arguments(self, indent: str) -> str:
        """The constructor arguments in the reference's repr (at a line indented ``indent``)."""
        return ""

    def _fields(self) -> list[tuple[str, str | Block]]:
        """The fields of the reference's ``str()`` block."""
        return []

    def _name(self) -> str:
        return f"{qualified('ObjectStoreConfig')}.{type(self).__name__}"

    def _repr_at(self, indent: str) -> str:
        return f"{self._name()}({self._arguments(indent)})"

    def __repr__(self) -> str:
        return self._repr_at("")

    def _repr_block(self) -> Block:
        return Block(self._name(), self._fields())

    def __str__(self) -> str:
        return self._repr_block().text()

    def _repr_html_(self) -> str:
        return self._repr_block().html()


def _some_map(mapping: Mapping[str, str] | None) -> str:
    # Rust's Debug of an optional map, which is how the reference shows these options.
    return "None" if mapping is None else f"Some({_rust_debug_map(mapping)})"


class _OscInMemory(ObjectStoreConfig):
    _TAG = "in_memory"

    def _rust_debug(self) -> str:
        return "InMemory"


class _OscLocalFileSystem(_Wrapper, ObjectStoreConfig):
    _TAG = "local_file_system"
    _SCHEMES = ("file",)
    _0: pathlib.Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"argument '_0': expected str, bytes or os.PathLike object, not {_type_name(path)}"
            )
        self._0 = pathlib.Path(path)

    def _rust_debug(self) -> str:
        return f"LocalFileSystem({_rust_debug_str(str(self._0))})"

    def _arguments(self, indent: str) -> str:
        return repr_at(str(self._0), indent)

    def _fields(self) -> list[tuple[str, str | Block]]:
        return [("path", repr_at(str(self._0), ""))]


class _OscS3Like(_Wrapper, ObjectStoreConfig):
    _SCHEMES: ClassVar[tuple[str, ...]] = ("s3",)
    _0: S3Options

    def __init__(self, options: S3Options) -> None:
        self._0 = _instance("_0", options, S3Options)

    def _rust_debug(self) -> str:
        return f"{type(self).__name__}({self._0._rust_debug()})"

    def _arguments(self, indent: str) -> str:
        return self._0._repr_at(indent)

    def _fields(self) -> list[tuple[str, str | Block]]:
        return list(self._0._repr_block().fields)


class _OscS3Compatible(_OscS3Like):
    _TAG = "s3_compatible"


class _OscS3(_OscS3Like):
    _TAG = "s3"


class _OscTigris(_OscS3Like):
    _TAG = "tigris"
    _SCHEMES = ("s3", "tigris")


def _rust_debug_map(mapping: Mapping[str, str] | None) -> str:
    items = ", ".join(
        f"{_rust_debug_str(k)}: {_rust_debug_str(v)}" for k, v in (mapping or {}).items()
    )
    return f"{{{items}}}"


class _OscMapLike(_Wrapper, ObjectStoreConfig):
    _0: dict[str, str] | None

    def __init__(self, opts: Mapping[str, str] | None) -> None:
        self._0 = _str_map("_0", opts)

    def _rust_debug(self) -> str:
        return f"{type(self).__name__}({_rust_debug_map(self._0)})"

    def _arguments(self, indent: str) -> str:
        return _some_map(self._0)

    def _fields(self) -> list[tuple[str, str | Block]]:
        return [("config", _some_map(self._0))]


class _OscGcs(_OscMapLike):
    _TAG = "gcs"
    _SCHEMES = ("gcs", "gs")
    _HOST_LABEL = "GCS"


class _OscAzure(_OscMapLike):
    _TAG = "azure"
    _SCHEMES = ("az", "azure", "abfs")
    _HOST_LABEL = "Azure"


class _OscHttp(_OscMapLike):
    """Client options as ``_0``; static request headers (icechunk 2) as ``_1``."""

    _TAG = "http"
    _SCHEMES = ("http", "https")
    _HOST_LABEL = "http(s)://"
    __match_args__ = ("_0", "_1")
    _1: dict[str, str] | None

    def __init__(self, opts: Mapping[str, str] | None, headers: Mapping[str, str] | None = None):
        super().__init__(opts)
        self._1 = _str_map("_1", headers)

    def _payload(self) -> tuple[object, ...]:
        return (self._0, self._1)

    def _arguments(self, indent: str) -> str:
        return f"{_some_map(self._0)}, {_some_map(self._1)}"

    def _fields(self) -> list[tuple[str, str | Block]]:
        return [("opts", _some_map(self._0)), ("headers", _some_map(self._1))]

    def _rust_debug(self) -> str:
        if not self._1:
            return super()._rust_debug()
        # icechunk 2 prints its HTTP config struct; without headers we keep 1.1's text.
        return (
            f"Http(HttpConfig {{ opts: {_rust_debug_map(self._0)}, "
            f"headers: {_rust_debug_map(self._1)} }})"
        )


_nest(
    ObjectStoreConfig,
    {
        "InMemory": _OscInMemory,
        "LocalFileSystem": _OscLocalFileSystem,
        "S3Compatible": _OscS3Compatible,
        "S3": _OscS3,
        "Gcs": _OscGcs,
        "Azure": _OscAzure,
        "Tigris": _OscTigris,
        "Http": _OscHttp,
    },
)


def store_tag(store: ObjectStoreConfig) -> str:
    """The name of a store's variant in the persisted config (``s3``, ``local_file_system``...)."""
    return store._TAG


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


# The arguments of the functions that build an S3Options: named as its fields.
S3_OPTION_ARGS = record_fields(S3Options)


def s3_options_from(args: Mapping[str, Any], names: Iterable[str] = S3_OPTION_ARGS) -> S3Options:
    """The :class:`S3Options` that a function's arguments ``args`` (its ``locals()``) give.

    Of ``names``, those the function takes are passed on; S3Options' defaults stand for the
    others.

    Raises
    ------
    TypeError
        If an option has a value of the wrong type.
    """
    return S3Options(**{name: args[name] for name in names if name in args})


def s3_store(
    region: str | None = None,
    endpoint_url: str | None = None,
    allow_http: bool = False,
    anonymous: bool = False,
    s3_compatible: bool = False,
    force_path_style: bool = False,
    network_stream_timeout_seconds: int = 60,
    requester_pays: bool = False,
    checksum_algorithm: ChecksumAlgorithm | None = None,
) -> _OscS3Compatible | _OscS3:
    """Build the store config of an S3 (or S3-compatible) virtual chunk container.

    Parameters
    ----------
    region, endpoint_url, allow_http, anonymous, force_path_style
        As in :class:`S3Options`.
    network_stream_timeout_seconds, requester_pays, checksum_algorithm
        As in :class:`S3Options`.
    s3_compatible
        Return ``ObjectStoreConfig.S3Compatible`` instead of ``ObjectStoreConfig.S3``.

    Returns
    -------
    ObjectStoreConfig.S3 or ObjectStoreConfig.S3Compatible
    """
    options = s3_options_from(locals())
    return _OscS3Compatible(options) if s3_compatible else _OscS3(options)


def gcs_store(opts: dict[str, str] | None = None) -> _OscGcs:
    """Build the store config of a Google Cloud Storage virtual chunk container.

    Parameters
    ----------
    opts
        Options of the Google Cloud Storage client, passed to the object store as they are.

    Returns
    -------
    ObjectStoreConfig.Gcs
    """
    return _OscGcs(opts)


def http_store(
    opts: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> _OscHttp:
    """Build the store config of an HTTP(S) virtual chunk container.

    Parameters
    ----------
    opts
        Client options such as ``timeout``, passed through to the HTTP client.
    headers
        Headers sent with every request for the container's chunks.

    Returns
    -------
    ObjectStoreConfig.Http
    """
    return _OscHttp(opts, headers)


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
