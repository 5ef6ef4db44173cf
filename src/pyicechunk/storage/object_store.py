"""Cloud object storage (S3 and S3-compatible, GCS, Azure) through obstore.

The obstore client is built from the backend's :class:`ObjectStoreSpec` by
:mod:`~pyicechunk.storage.obstore_clients` on first use (obstore itself is imported then, so the
rest of pyicechunk works without it). Every operation uses obstore's async API; obstore runs its
requests on its own runtime, so one backend object works from any event loop and any thread.

Conditional writes follow FORMAT-V1 §7.2: create-if-absent is ``If-None-Match: *`` (obstore
``PutMode`` ``"create"``) and compare-and-swap is ``If-Match: <etag>`` (``PutMode`` update).
Acknowledged writes are durable, so :meth:`make_durable` has nothing to do.

Lost responses (FORMAT-V2 §14): as in the reference, a conditional write carries its write id
as the user-metadata attribute ``icechunkwriteid`` only when ``unsafe_use_metadata`` is on
(the default); the switch exists for stores that refuse user metadata, so with it off nothing
is stamped, a lost response surfaces as a conflict or an error as before, and a warning says so
once. obstore resends a write after a 5xx answer (the same request, so the same id) and gives
up without resending when the connection breaks after the request went out (a conditional PUT
is not idempotent): the first case ends in a failed precondition, the second in a transport
error, and both are resolved by reading the stamp back with a HEAD request.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pyicechunk.config import S3Options, StorageSettings, effective_storage_settings
from pyicechunk.credentials import (
    AnyAzureCredential,
    AnyGcsCredential,
    AnyS3Credential,
    S3Credentials,
)
from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.storage import (
    _WRITE_ID_KEY,
    ByteRequest,
    ConditionalWrite,
    ObjectInfo,
    ObjectVersion,
    OffsetByteRequest,
    RangeByteRequest,
    StorageBackend,
    SuffixByteRequest,
    _check_key,
    keys,
    logger,
)
from pyicechunk.storage.byte_range import resolve as resolve_range
from pyicechunk.storage.obstore_clients import aware, build_store, checksum_setting, load_obstore

if TYPE_CHECKING:
    pass

_MAGIC = "ICE🧊CHUNK".encode()
_FILE_TYPES = {1: "snapshot", 2: "manifest", 4: "transaction-log", 6: "repo-info"}
_METADATA_PREFIXES = (keys.SNAPSHOTS, keys.MANIFESTS, keys.TRANSACTIONS, keys.OVERWRITTEN)
# The labels of a metadata object (spec version, client, file type, compression), named as
# icechunk 1.1.21 names them on spec-1 objects and as 2.3.0 does on spec-2 ones (letters only,
# which gateways that drop header names with `_` keep).
_LABELS_V1 = ("ic_spec_ver", "ic_client", "ic_file_type", "ic_comp_alg")
_LABELS_V2 = ("icspecver", "icclient", "icfiletype", "iccompalg")
# Separates ETag and version inside an ObjectVersion token; neither can contain a NUL.
_TOKEN_SEP = "\0"
# Bounds the HEAD requests delete_many sends at once to count what exists.
_HEAD_CONCURRENCY = 64


@dataclass(frozen=True)
class ObjectStoreSpec:
    """Everything that defines an object-store backend; it is what a pickle carries.

    ``kind`` is ``'s3'`` (the reference's native S3 storage, also behind Tigris and R2),
    ``'s3_object_store'``, ``'gcs'`` or ``'azure'``.
    """

    kind: str
    bucket: str
    prefix: str
    options: S3Options | None = None
    credentials: Any = None
    config: dict[str, str] | None = None
    account: str | None = None
    read_only: bool = False
    extra_headers: tuple[tuple[str, str], ...] = ()
    """HTTP headers sent on reads (GET, HEAD, list), and on writes unless ``write_headers``."""
    write_headers: tuple[tuple[str, str], ...] | None = None
    """HTTP headers sent on writes (PUT, DELETE) instead, when they differ from the reads'."""
    settings: StorageSettings | None = field(default=None, compare=False)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _s3_options_repr(o: S3Options) -> str:
    # The reference's Rust Display: this field order, lower-case booleans, bare strings.
    return (
        f"S3Options(region={o.region}, endpoint_url={o.endpoint_url}, "
        f"anonymous={_bool(o.anonymous)}, allow_http={_bool(o.allow_http)}, "
        f"force_path_style={_bool(o.force_path_style)}, "
        f"network_stream_timeout_seconds={o.network_stream_timeout_seconds}, "
        f"requester_pays={_bool(o.requester_pays)})"
    )


class ObjectStoreBackend(StorageBackend):
    """A :class:`StorageBackend` on S3, GCS or Azure object storage.

    Parameters
    ----------
    spec
        Which store, where, and with which credentials and settings.
    """

    def __init__(self, spec: ObjectStoreSpec) -> None:
        self._spec = spec
        self.read_only = spec.read_only
        self._eff = effective_storage_settings(spec.settings)
        self._client: Any = None
        self._write_client: Any = None

    @property
    def _store(self) -> Any:
        # Built at first use, like the reference, which validates credentials only when it
        # talks to the service (an Azure key that is not base64 fails then, not at construction).
        if self._client is None:
            self._client = build_store(self._spec, self._eff)
        return self._client

    @property
    def _writer(self) -> Any:
        # Like the reference, a second client only when writes carry other headers than reads.
        if self._spec.write_headers is None:
            return self._store
        if self._write_client is None:
            spec = replace(self._spec, extra_headers=self._spec.write_headers, write_headers=None)
            self._write_client = build_store(spec, self._eff)
        return self._write_client

    # -- identity -----------------------------------------------------------------------------

    def with_settings(self, settings: StorageSettings) -> ObjectStoreBackend:
        """The same store, using ``settings`` (backend defaults already merged in)."""
        return ObjectStoreBackend(replace(self._spec, settings=settings))

    def default_settings(self) -> StorageSettings:
        # Like the reference: every field unset, so the documented effective defaults apply.
        return StorageSettings()

    def supports_conditional_update(self) -> bool:
        return self._eff.unsafe_use_conditional_update

    def __repr__(self) -> str:
        s = self._spec
        if s.kind == "s3":
            assert s.options is not None
            return (
                f"S3Storage(bucket={s.bucket}, prefix={s.prefix}, "
                f"config={_s3_options_repr(s.options)})"
            )
        if s.kind == "s3_object_store":
            assert s.options is not None
            return (
                f"S3ObjectStoreBackend(bucket={s.bucket}, prefix={s.prefix}, "
                f"config={_s3_options_repr(s.options)})"
            )
        if s.kind == "gcs":
            return f"GcsObjectStoreBackend(bucket={s.bucket}, prefix={s.prefix})"
        return (
            f"AzureObjectStoreBackend(account={s.account}, container={s.bucket}, prefix={s.prefix})"
        )

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        # As icechunk 2.3.0 shows them: where the objects are, and the S3 options that differ
        # from the defaults; never a credential. It leaves out a prefix that is not given
        # (the spec keeps an empty one, so an explicit "" is left out too).
        s = self._spec
        prefix = [("prefix", s.prefix)] if s.prefix else []
        if s.kind == "gcs":
            return (("type", "GCS"), ("bucket", s.bucket), *prefix)
        if s.kind == "azure":
            account = ("account", str(s.account))
            return (("type", "Azure"), account, ("container", s.bucket), *prefix)
        o = s.options
        assert o is not None
        anonymous = o.anonymous or isinstance(s.credentials, S3Credentials.Anonymous)
        shown = [
            ("region", o.region),
            ("endpoint_url", o.endpoint_url),
            ("anonymous", anonymous or None),
            ("allow_http", o.allow_http or None),
            ("force_path_style", o.force_path_style or None),
            ("requester_pays", o.requester_pays or None),
            ("checksum_algorithm", o.checksum_algorithm and o.checksum_algorithm.name),
        ]
        kind = "S3 (native)" if s.kind == "s3" else "S3"
        return (
            ("type", kind),
            ("bucket", s.bucket),
            *prefix,
            *((name, str(value)) for name, value in shown if value is not None),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (ObjectStoreBackend, (self._spec,))

    def at_bucket_root(self) -> bool:
        return not self._spec.prefix.strip("/")

    # -- reads --------------------------------------------------------------------------------

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        _check_key(key)
        if byte_range is None:
            return await self._get_all(key)
        # Reject malformed requests before any round trip; sizes come later.
        resolve_range(byte_range, sys.maxsize, key)
        ideal = self._eff.ideal_concurrent_request_size
        try:
            if isinstance(byte_range, RangeByteRequest):
                start, end = byte_range.start, byte_range.end
                if start < end <= start + ideal:
                    return await self._get_bytes(key, {"range": (start, end)})
            elif isinstance(byte_range, OffsetByteRequest):
                return await self._get_bytes(key, {"range": {"offset": byte_range.offset}})
            elif isinstance(byte_range, SuffixByteRequest) and byte_range.suffix > 0:
                return await self._get_bytes(key, {"range": {"suffix": byte_range.suffix}})
        except IcechunkError as e:
            if not _range_refused(e):
                raise
            # the object's size decides what the answer to an unsatisfiable range is
        info = await self.head(key)
        if info is None:
            raise ObjectNotFoundError(key)
        start, stop = resolve_range(byte_range, info.size, key)
        return await self._get_span(key, start, stop, None)

    async def _get_all(self, key: str) -> bytes:
        ideal = self._eff.ideal_concurrent_request_size
        try:
            result = await self._call(
                key, load_obstore().get_async, key, options={"range": (0, ideal)}
            )
        except IcechunkError as e:
            if not _range_refused(e):
                raise
            # An empty object has no satisfiable range; ask for it plainly.
            return await self._get_bytes(key, {})
        first = bytes(await result.bytes_async())
        size = result.meta["size"]
        if len(first) >= size:
            return first
        rest = await self._get_span(key, len(first), size, result.meta["e_tag"])
        return first + rest

    async def _get_span(self, key: str, start: int, stop: int, etag: str | None) -> bytes:
        """Bytes [start, stop), in up to ``max_concurrent_requests_for_object`` parallel parts."""
        if start >= stop:
            return b""
        eff = self._eff
        n = stop - start
        parts = max(
            1,
            min(eff.max_concurrent_requests_for_object, -(-n // eff.ideal_concurrent_request_size)),
        )
        bounds = [start + n * i // parts for i in range(parts + 1)]
        options: list[dict[str, Any]] = []
        for lo, hi in itertools.pairwise(bounds):
            opt: dict[str, Any] = {"range": (lo, hi)}
            if etag is not None:
                # Parts of one read must come from one version of the object.
                opt["if_match"] = etag
            options.append(opt)
        chunks = await asyncio.gather(*(self._get_bytes(key, o) for o in options))
        return b"".join(chunks)

    async def _get_bytes(self, key: str, options: dict[str, Any]) -> bytes:
        result = await self._call(key, load_obstore().get_async, key, options=options)
        return bytes(await result.bytes_async())

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        _check_key(key)
        result = await self._call(key, load_obstore().get_async, key)
        data = bytes(await result.bytes_async())
        return data, _version_token(result.meta)

    async def head(self, key: str) -> ObjectInfo | None:
        _check_key(key)
        try:
            meta = await self._call(key, load_obstore().head_async, key)
        except ObjectNotFoundError:
            return None
        return ObjectInfo(key, meta["size"], aware(meta["last_modified"]) or meta["last_modified"])

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def list(self, prefix: str) -> list[ObjectInfo]:
        # obstore lists whole path segments, so list the enclosing directory and filter.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        stream = load_obstore().list(self._store, prefix=directory or None)
        try:
            metas = await stream.collect_async()
        except Exception as e:
            raise self._error(prefix or "/", e) from e
        found = [
            ObjectInfo(m["path"], m["size"], aware(m["last_modified"]) or m["last_modified"])
            for m in metas
            if m["path"].startswith(prefix)
        ]
        return sorted(found, key=lambda info: info.key)

    # -- writes -------------------------------------------------------------------------------

    async def put(self, key: str, data: bytes | memoryview) -> None:
        self._check_writable(key)
        data = bytes(data)
        await self._call(
            key,
            load_obstore().put_async,
            key,
            data,
            attributes=self._attributes(key, data),
            use_multipart=len(data) >= self._eff.minimum_size_for_multipart_upload,
            store=self._writer,
        )

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        eff = self._eff
        key, data, version = write.key, write.data, write.version
        if version is None:
            if not eff.unsafe_use_conditional_create:
                await self.put(key, data)
                return True
            mode: Any = "create"
        else:
            if not eff.unsafe_use_conditional_update:
                await self.put(key, data)
                return True
            etag, _, object_version = version.token.partition(_TOKEN_SEP)
            if not object_version and self._spec.kind == "gcs":
                # GCS swaps on the generation alone, and every GCS object has one: a token
                # without it names no version of this object, so the precondition fails.
                return False
            mode = {"e_tag": etag}
            if object_version:
                mode["version"] = object_version
        self._check_writable(key)
        data = bytes(data)
        attributes = self._attributes(key, data) or {}
        if write.write_id is not None:
            attributes[_WRITE_ID_KEY] = write.write_id
        else:
            _warn_unstamped_once()
        obs = load_obstore()
        try:
            await obs.put_async(self._writer, key, data, mode=mode, attributes=attributes or None)
        except (
            obs.exceptions.AlreadyExistsError,
            obs.exceptions.PreconditionError,
            obs.exceptions.NotFoundError,
            FileNotFoundError,
        ):
            return False
        except Exception as e:
            raise self._error(key, e) from e
        return True

    def _stamps_write_ids(self) -> bool:
        return self._eff.unsafe_use_metadata

    def _may_have_landed(self, error: Exception) -> bool:
        # Like the reference: only obstore's generic (transport) errors can hide a landed
        # write; a refusal (permissions, credentials, a bad path) means it never happened.
        return isinstance(error.__cause__, load_obstore().exceptions.GenericError)

    async def _read_write_id(self, key: str) -> str | None:
        # A plain head_async drops user metadata; a head-only get keeps it.
        try:
            result = await self._call(key, load_obstore().get_async, key, options={"head": True})
        except ObjectNotFoundError:
            return None
        stored: str | None = result.attributes.get(_WRITE_ID_KEY)
        return stored

    async def delete(self, key: str) -> None:
        self._check_writable(key)
        try:
            await self._call(key, load_obstore().delete_async, key, store=self._writer)
        except ObjectNotFoundError:
            pass

    async def delete_many(self, keys: Sequence[str]) -> int:
        for key in keys:
            self._check_writable(key)
        # Bulk deletes do not report which keys existed: count with HEADs first.
        gate = asyncio.Semaphore(_HEAD_CONCURRENCY)

        async def present(key: str) -> bool:
            async with gate:
                return await self.exists(key)

        unique = list(dict.fromkeys(keys))
        flags = await asyncio.gather(*(present(k) for k in unique))
        existing = [k for k, there in zip(unique, flags, strict=True) if there]
        if existing:
            try:
                await self._call(
                    existing[0], load_obstore().delete_async, existing, store=self._writer
                )
            except ObjectNotFoundError:
                pass  # deleted by someone else meanwhile
        return len(existing)

    # -- helpers ------------------------------------------------------------------------------

    def _attributes(self, key: str, data: bytes) -> dict[str, str] | None:
        """Object metadata and storage class for ``key`` (FORMAT-V1 §3, FORMAT-V2 §2)."""
        eff = self._eff
        attrs: dict[str, str] = {}
        if key.startswith(keys.CHUNKS):
            storage_class = eff.chunks_storage_class or eff.storage_class
        else:
            storage_class = eff.metadata_storage_class or eff.storage_class
        if storage_class is not None:
            attrs["Storage-Class"] = storage_class
        if eff.unsafe_use_metadata:
            if key == keys.CONFIG:
                attrs["Content-Type"] = "application/yaml"
            elif (
                (key == keys.REPO or key.startswith(_METADATA_PREFIXES))
                and data[:12] == _MAGIC
                and len(data) >= 39
            ):
                names = _LABELS_V1 if data[36] == 1 else _LABELS_V2
                values = (
                    str(data[36]),
                    data[12:36].decode("ascii", "replace").rstrip(" "),
                    _FILE_TYPES.get(data[37], str(data[37])),
                    "zstd" if data[38] == 1 else "none",
                )
                attrs.update(zip(names, values, strict=True))
        return attrs or None

    def _check_writable(self, key: str) -> None:
        _check_key(key)
        if self.read_only:
            raise IcechunkError(
                f"cannot write {key}: this storage is read-only (Tigris with "
                "use_weak_consistency=True); pass a region instead to write",
                kind="read-only-storage",
            )

    async def _call(self, key: str, fn: Any, *args: Any, store: Any = None, **kwargs: Any) -> Any:
        """``fn(client, *args, **kwargs)`` on ``store`` (the reading client unless given),
        its errors turned into ours."""
        try:
            return await fn(self._store if store is None else store, *args, **kwargs)
        except Exception as e:
            raise self._error(key, e) from e

    def _error(self, key: str, e: Exception) -> IcechunkError:
        # obstore raises the builtin FileNotFoundError for missing objects.
        if isinstance(e, (FileNotFoundError, load_obstore().exceptions.NotFoundError)):
            return ObjectNotFoundError(key)
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        return IcechunkError(
            f"storage error: {first_line} (object {key!r} in {self!r})", kind="object-store"
        )


_warned_unstamped = False


def _warn_unstamped_once() -> None:
    global _warned_unstamped
    if not _warned_unstamped:
        _warned_unstamped = True
        logger.warning(
            "conditional writes are on but unsafe_use_metadata is off, so they carry no write "
            "id: a conditional write whose response is lost surfaces as a conflict or an error "
            "even though it landed; turn unsafe_use_metadata on unless the store refuses user "
            "metadata"
        )


def _range_refused(error: IcechunkError) -> bool:
    """Whether a ranged read failed only because of its range, so that a read sized from the
    object's length can still answer it.

    The range lies outside the object (the server answers 416, or object_store finds the answer
    does not fit the range it asked for), or the store has no such kind of range (Azure and
    suffixes). Anything else (a missing object, a failure the retries did not overcome) is the
    answer: asking again would only spend the retry budget a second time.
    """
    cause = error.__cause__
    if isinstance(cause, load_obstore().exceptions.NotSupportedError):
        return True
    text = str(cause)
    return "status code: 416" in text or "InvalidRangeRequest" in text


def _version_token(meta: Any) -> ObjectVersion:
    etag = meta.get("e_tag")
    if etag is None:
        raise IcechunkError(
            f"the object store returned no ETag for {meta.get('path')}; conditional updates "
            "need one",
            kind="object-store",
        )
    version = meta.get("version")
    return ObjectVersion(etag if version is None else f"{etag}{_TOKEN_SEP}{version}")


def s3_spec(
    kind: str,
    options: S3Options,
    bucket: str,
    prefix: str | None,
    credentials: AnyS3Credential | None,
    *,
    read_only: bool = False,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> ObjectStoreSpec:
    """Spec of an S3 backend; missing credentials mean "from the environment".

    Raises
    ------
    IcechunkError
        If the options ask for a write checksum the S3 client cannot compute.
    """
    checksum_setting(options.checksum_algorithm)  # refused now, not at the first write
    return ObjectStoreSpec(
        kind,
        bucket,
        prefix or "",
        options=options,
        credentials=credentials or S3Credentials.FromEnv(),
        read_only=read_only,
        extra_headers=extra_headers,
    )


def s3_compatible_spec(
    kind: str,
    options: S3Options,
    bucket: str,
    prefix: str | None,
    credentials: AnyS3Credential | None,
) -> ObjectStoreSpec:
    """Spec of a plain S3 or S3-compatible backend (``Storage.new_s3`` and its object-store twin).

    Raises
    ------
    IcechunkError
        For a Tigris endpoint, which needs :func:`tigris_spec`'s consistency headers.
    """
    endpoint = options.endpoint_url or ""
    if "fly.storage.tigris.dev" in endpoint or "t3.storage.dev" in endpoint:
        raise IcechunkError(
            "storage error: Tigris Storage is not S3 compatible, use the Tigris specific "
            "constructor instead",
            kind="storage-config",
        )
    return s3_spec(kind, options, bucket, prefix, credentials)


def tigris_spec(
    config: S3Options,
    bucket: str,
    prefix: str | None,
    use_weak_consistency: bool,
    credentials: AnyS3Credential | None,
) -> ObjectStoreSpec:
    """Spec of a Tigris backend: its default endpoint, and consistent reads pinned to a region.

    Raises
    ------
    IcechunkError
        If there is no region and ``use_weak_consistency`` is false.
    """
    options = copy.copy(config)
    if options.endpoint_url is None:
        options.endpoint_url = "https://t3.storage.dev"
    headers: tuple[tuple[str, str], ...] = ()
    if not use_weak_consistency:
        if options.region is None:
            raise IcechunkError(
                "storage error: Tigris storage requires a region to provide full consistency. "
                "Either set the region for the bucket or use the read-only, eventually "
                "consistent storage by passing `use_weak_consistency=True` (experts only)",
                kind="storage-config",
            )
        headers = (("X-Tigris-Regions", options.region), ("X-Tigris-Consistent", "true"))
    return s3_spec(
        "s3",
        options,
        bucket,
        prefix,
        credentials,
        read_only=use_weak_consistency,
        extra_headers=headers,
    )


def r2_spec(
    config: S3Options,
    bucket: str | None,
    prefix: str | None,
    account_id: str | None,
    credentials: AnyS3Credential | None,
) -> ObjectStoreSpec:
    """Spec of a Cloudflare R2 backend: path-style requests to the account's endpoint.

    Raises
    ------
    IcechunkError
        If neither bucket nor prefix is given, or neither an endpoint nor an account id.
    """
    if bucket is None:
        if prefix is None:
            raise IcechunkError(
                "storage configuration error: Either bucket or prefix must be provided.",
                kind="storage-config",
            )
        # Like the reference: the prefix's first segment names the bucket.
        bucket, _, rest = prefix.partition("/")
        prefix = rest or None
    if config.endpoint_url is None and account_id is None:
        raise IcechunkError(
            "storage configuration error: Either endpoint_url or account_id must be provided.",
            kind="storage-config",
        )
    options = copy.copy(config)
    if options.region is None:
        options.region = "auto"
    if options.endpoint_url is None:
        options.endpoint_url = f"https://{account_id}.r2.cloudflarestorage.com"
    options.force_path_style = True
    return s3_spec("s3", options, bucket, prefix, credentials)


def blob_spec(
    kind: str,
    bucket: str,
    prefix: str | None,
    credentials: AnyGcsCredential | AnyAzureCredential | None,
    config: dict[str, str] | None,
    account: str | None = None,
) -> ObjectStoreSpec:
    """Spec of a GCS (``kind`` ``'gcs'``) or Azure Blob Storage (``'azure'``) backend.

    Both take their settings as a dict of the service's keys; ``bucket`` is the Azure
    container, and ``account`` its storage account.
    """
    return ObjectStoreSpec(
        kind,
        bucket,
        prefix or "",
        credentials=credentials,
        config=dict(config or {}),
        account=account,
    )


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_pairs(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``headers`` checked as the reference's HTTP client parses them, as sorted pairs.

    Raises
    ------
    ValueError
        A name is not an HTTP token, or a value holds a control character.
    """
    for name, value in headers.items():
        quoted = json.dumps(name, ensure_ascii=False)  # as the reference's Rust debug format
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"storage error: invalid HTTP header name {quoted}: invalid HTTP header name"
            )
        if not isinstance(value, str) or any(
            (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value
        ):
            raise ValueError(
                f"storage error: invalid HTTP header value for {quoted}: "
                "failed to parse header value"
            )
    return tuple(sorted(headers.items()))


def with_request_headers(
    spec: ObjectStoreSpec,
    headers: dict[str, str] | None,
    read_headers: dict[str, str] | None,
    write_headers: dict[str, str] | None,
) -> ObjectStoreSpec:
    """``spec`` sending the user's extra HTTP headers as well as its own.

    ``headers`` go on every request, ``read_headers`` on reads and ``write_headers`` on
    writes; a role's own map wins on a name both give, as in the reference.

    Raises
    ------
    ValueError
        A header name or value is not valid HTTP.
    """
    if not (headers or read_headers or write_headers):
        return spec
    own = dict(spec.extra_headers)
    reads = _header_pairs({**own, **(headers or {}), **(read_headers or {})})
    writes = _header_pairs({**own, **(headers or {}), **(write_headers or {})})
    return replace(spec, extra_headers=reads, write_headers=None if writes == reads else writes)
