"""Read-only storage over plain HTTP(S): a repository published by any web server.

Objects are ``GET`` (ranged where a part is asked for) and ``HEAD`` requests under a base URL,
so a repository directory copied to a static web server can be opened, read, diffed and
inspected with ``http_storage(url)``; every write is refused, as in icechunk 2.x. A 404 means
the object does not exist. Listing needs WebDAV (``PROPFIND``), which static servers do not
offer, so operations that list (garbage collection, for instance) are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyicechunk.exceptions import IcechunkError, ObjectNotFoundError
from pyicechunk.storage import (
    ConditionalWrite,
    ObjectInfo,
    ObjectVersion,
    StorageBackend,
    _check_key,
)
from pyicechunk.storage.byte_range import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
    slice_bytes,
)

if TYPE_CHECKING:
    from pyicechunk.config import StorageSettings

__all__ = ["HttpBackend", "ReadOnlyBackend", "read_only_storage_error"]

_TIMEOUT_SECONDS = 60


def read_only_storage_error(what: str) -> IcechunkError:
    """The reference's error for a change refused by read-only storage."""
    return IcechunkError(
        f"the storage used by this Icechunk repository is read-only: {what}",
        kind="read-only-storage",
    )


def _range_header(byte_range: ByteRequest | None) -> str | None:
    if byte_range is None:
        return None
    if isinstance(byte_range, RangeByteRequest):
        if byte_range.end <= byte_range.start:
            return None  # empty or malformed: read whole and let slice_bytes decide
        return f"bytes={byte_range.start}-{byte_range.end - 1}"
    if isinstance(byte_range, OffsetByteRequest):
        return f"bytes={byte_range.offset}-"
    if isinstance(byte_range, SuffixByteRequest):
        return f"bytes=-{byte_range.suffix}" if byte_range.suffix else None
    return None


class ReadOnlyBackend(StorageBackend):
    """A backend that only reads: every write and delete is refused with the reference's error.

    The HTTP and redirect backends derive from it and implement the reads.
    """

    read_only = True

    async def put(self, key: str, data: bytes | memoryview) -> None:
        raise read_only_storage_error(f"Cannot write {key}")

    async def _write_conditionally(self, write: ConditionalWrite) -> bool:
        raise read_only_storage_error(f"Cannot write {write.key}")

    async def delete(self, key: str) -> None:
        raise read_only_storage_error(f"Cannot delete {key}")

    async def delete_many(self, keys: Sequence[str]) -> int:
        raise read_only_storage_error("Cannot delete objects")

    def default_settings(self) -> StorageSettings:
        from pyicechunk.config import StorageSettings

        return StorageSettings()


class HttpBackend(ReadOnlyBackend):
    """Objects under ``base_url``, read with GET and HEAD; never written.

    Parameters
    ----------
    base_url
        The repository's URL (``http://`` or ``https://``).
    headers
        Sent with every request.
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"http_storage needs an http:// or https:// URL, got {base_url!r}")
        self._given = base_url  # shown as given, like the reference's repr
        self._base = base_url.rstrip("/") + "/"
        self._headers = dict(headers or {})

    # -- requests -----------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        _check_key(key)
        return self._base + urllib.parse.quote(key)

    def _request(
        self, method: str, key: str, byte_range: ByteRequest | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self._url(key), method=method, headers=self._headers)
        wanted = _range_header(byte_range)
        if wanted is not None:
            request.add_header("Range", wanted)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ObjectNotFoundError(key, f"object not found: {self._url(key)}") from None
            if exc.code == 416:
                raise IcechunkError(
                    f"cannot read {key}: the byte range starts past the end of the object",
                    kind="invalid-byte-range",
                ) from None
            raise IcechunkError(
                f"HTTP {exc.code} {exc.reason} for {method} {self._url(key)}",
                kind="object-store",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IcechunkError(
                f"cannot reach {self._url(key)}: {reason}", kind="object-store"
            ) from None

    async def _call(
        self, method: str, key: str, byte_range: ByteRequest | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return await asyncio.to_thread(self._request, method, key, byte_range)

    # -- reads --------------------------------------------------------------------------------

    def supports_conditional_update(self) -> bool:
        return False

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        status, _, body = await self._call("GET", key, byte_range)
        if byte_range is not None and status != 206:
            return slice_bytes(body, byte_range)  # the server sent the whole object
        return body

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        _, headers, body = await self._call("GET", key)
        lower = {k.lower(): v for k, v in headers.items()}
        return body, ObjectVersion(lower.get("etag", "") or str(len(body)))

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            _, headers, _ = await self._call("HEAD", key)
        except ObjectNotFoundError:
            return None
        lower = {k.lower(): v for k, v in headers.items()}
        modified = lower.get("last-modified")
        when = (
            email.utils.parsedate_to_datetime(modified)
            if modified
            else dt.datetime.fromtimestamp(0, dt.UTC)
        )
        return ObjectInfo(key, int(lower.get("content-length", 0)), when)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        raise IcechunkError(
            f"cannot list {self._base}{prefix}: HTTP storage has no listing (it needs a "
            "WebDAV server); operations that list the repository's objects are not available "
            "over HTTP",
            kind="object-store",
        )

    # -- the rest -----------------------------------------------------------------------------

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        return (("type", "HTTP"), ("url", self._given))

    def __repr__(self) -> str:
        return f"HttpBackend(url={self._base.rstrip('/')})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (HttpBackend, (self._given, self._headers))
