"""Read-only storage found through an HTTP redirect: ``redirect_storage(url)``.

A service can hand out a repository's location without publishing it: a GET of ``url``
answers with a redirect, followed (up to ten times) until its ``Location`` names storage by one
of icechunk 2.x's schemes, which becomes the backend (read-only, anonymous):

* ``s3://bucket/prefix?region=R``, ``r2://bucket/prefix?account_id=A[&region=R]``,
  ``tigris://bucket/prefix[?region=R]``, ``gs://`` or ``gcs://bucket/prefix``;
* ``http+icechunk://``, ``http+ic://``, ``https+icechunk://``, ``https+ic://`` for the
  repository at the plain ``http(s)`` URL (:mod:`~pyicechunk.storage.http`).

The redirect is resolved on first use, once.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.storage import ObjectInfo, ObjectVersion, StorageBackend
from pyicechunk.storage.byte_range import ByteRequest
from pyicechunk.storage.http import HttpBackend, ReadOnlyBackend

if TYPE_CHECKING:
    pass

__all__ = ["RedirectBackend"]

_MAX_REDIRECTS = 10
_TIMEOUT_SECONDS = 60
_HTTP_SCHEMES = {
    "http+icechunk": "http",
    "http+ic": "http",
    "https+icechunk": "https",
    "https+ic": "https",
}


def _error(message: str) -> IcechunkError:
    return IcechunkError(f"Redirect Storage error: {message}", kind="bad-redirect")


class _NoFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # each hop is looked at here


def _target_backend(url: str, target: str) -> StorageBackend:
    """The backend a final ``Location`` names."""
    from pyicechunk.storage.constructors import (
        gcs_storage,
        r2_storage,
        s3_storage,
        tigris_storage,
    )

    parts = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(parts.query))
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme in _HTTP_SCHEMES:
        plain = urllib.parse.urlunsplit(parts._replace(scheme=_HTTP_SCHEMES[parts.scheme]))
        return HttpBackend(plain)
    if parts.scheme == "s3" and bucket and "region" in query:
        storage = s3_storage(bucket=bucket, prefix=prefix, region=query["region"], anonymous=True)
    elif parts.scheme == "r2" and bucket and "account_id" in query:
        storage = r2_storage(
            bucket=bucket,
            prefix=prefix,
            account_id=query["account_id"],
            region=query.get("region"),
            anonymous=True,
        )
    elif parts.scheme == "tigris" and bucket:
        storage = tigris_storage(
            bucket=bucket, prefix=prefix, region=query.get("region"), anonymous=True
        )
    elif parts.scheme in ("gs", "gcs") and bucket:
        storage = gcs_storage(bucket=bucket, prefix=prefix, anonymous=True)
    else:
        raise _error(
            f"Request to redirect url ({url}) failed, cannot find target Storage instance: "
            f"builder error for url ({target})"
        )
    return storage.backend


def _resolve(url: str) -> StorageBackend:
    """Follow ``url``'s redirects to the storage they name."""
    opener = urllib.request.build_opener(_NoFollow)
    current = url
    for _ in range(_MAX_REDIRECTS):
        try:
            with opener.open(current, timeout=_TIMEOUT_SECONDS):
                raise _error(
                    "Redirect Storage response must be a redirect, no location header detected"
                )
        except urllib.error.HTTPError as answer:
            location = answer.headers.get("Location") if 300 <= answer.code < 400 else None
            if location is None:
                raise _error(
                    f"Request to redirect url ({current}) failed: HTTP {answer.code} "
                    f"{answer.reason}"
                ) from None
        except urllib.error.URLError as exc:
            raise _error(f"Request to redirect url ({current}) failed: {exc.reason}") from None
        target = urllib.parse.urljoin(current, location)
        if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
            return _target_backend(url, target)
        current = target
    raise _error(f"Request to redirect url ({url}) failed: more than {_MAX_REDIRECTS} redirects")


class RedirectBackend(ReadOnlyBackend):
    """The storage ``url`` redirects to, resolved on first use; read-only.

    Parameters
    ----------
    url
        Where to ask (``http://`` or ``https://``).
    """

    def __init__(self, url: str) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"redirect_storage needs an http:// or https:// URL, got {url!r}")
        self._url = url
        self._target: StorageBackend | None = None
        self._lock = threading.Lock()

    def _resolved(self) -> StorageBackend:
        with self._lock:  # one resolution, whichever thread asks first
            if self._target is None:
                self._target = _resolve(self._url)
            return self._target

    async def _backend(self) -> StorageBackend:
        target = self._target
        return target if target is not None else await asyncio.to_thread(self._resolved)

    def supports_conditional_update(self) -> bool:
        return False

    async def get(self, key: str, byte_range: ByteRequest | None = None) -> bytes:
        return await (await self._backend()).get(key, byte_range)

    async def get_versioned(self, key: str) -> tuple[bytes, ObjectVersion]:
        return await (await self._backend()).get_versioned(key)

    async def exists(self, key: str) -> bool:
        return await (await self._backend()).exists(key)

    async def head(self, key: str) -> ObjectInfo | None:
        return await (await self._backend()).head(key)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        return await (await self._backend()).list(prefix)

    def _storage_fields(self) -> tuple[tuple[str, str], ...]:
        return (("type", "redirect"), ("url", self._url))

    def __repr__(self) -> str:
        return f"RedirectBackend(url={self._url})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RedirectBackend, (self._url,))
