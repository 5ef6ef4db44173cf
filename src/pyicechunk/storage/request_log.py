"""One TRACE record per storage request, on every backend.

:class:`~pyicechunk.storage.StorageBackend` passes each subclass to :func:`instrument`, which
wraps the request methods the class defines (reads, writes, conditional writes, listings,
deletes, head requests). With ``ICECHUNK_LOG=trace`` (or a directive for ``icechunk_storage``,
``icechunk_s3`` or ``icechunk::storage``) each call then logs one record on the
``pyicechunk.storage`` logger before it goes out, such as ``get_object, key:
refs/branch.main/ref.json`` or ``put_object_conditional, key: repo, size_bytes: 312, if:
version matches``. The reference's own storage crates mark each request with a tracing span
rather than a record (its per-request records come from the AWS SDK's targets, which nothing of
ours maps to), so TRACE keeps ``debug`` output as close to its as it is today.

A request made inside another one (``exists`` calling ``head``, a redirect or fault-injecting
backend calling the one it wraps, a ranged read sizing the object first) is not logged again:
a context variable marks the outer call. Records name keys, prefixes, sizes and ranges only,
never a storage's options or credentials. When TRACE is off a call costs one level check.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pyicechunk._logging import TRACE
from pyicechunk.storage.byte_range import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
)

__all__ = ["instrument"]

# Set while a logged request runs, so the requests it makes in turn are not logged again.
_in_request: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pyicechunk_storage_request", default=False
)


def _range(byte_range: ByteRequest | None) -> str:
    if isinstance(byte_range, RangeByteRequest):
        return f", range: {byte_range.start}..{byte_range.end}"
    if isinstance(byte_range, OffsetByteRequest):
        return f", range: {byte_range.offset}.."
    if isinstance(byte_range, SuffixByteRequest):
        return f", range: last {byte_range.suffix} bytes"
    return ""


def _get(key: str, byte_range: ByteRequest | None = None) -> str:
    return f"get_object, key: {key}{_range(byte_range)}"


def _put(key: str, data: bytes | memoryview) -> str:
    return f"put_object, key: {key}, size_bytes: {len(data)}"


def _put_copy(key: str, data: bytes, *, source: str, version: Any = None) -> str:
    return f"copy_object, key: {key}, source: {source}, size_bytes: {len(data)}"


def _put_many(items: Sequence[tuple[str, bytes | memoryview]]) -> list[str]:
    return [_put(key, data) for key, data in items]


def _conditional(write: Any) -> str:
    condition = "absent" if write.version is None else "version matches"
    return (
        f"put_object_conditional, key: {write.key}, size_bytes: {len(write.data)}, if: {condition}"
    )


def _head(key: str) -> str:
    return f"head_object, key: {key}"


def _list(prefix: str) -> str:
    return f"list_objects, prefix: {prefix or '(all)'}"


def _delete(key: str) -> str:
    return f"delete_object, key: {key}"


def _delete_many(keys: Sequence[str]) -> str:
    return f"delete_objects, count: {len(keys)}"


# The request methods, and how each one's arguments read in its record (a batch: one per
# object).
_REQUESTS: dict[str, Callable[..., str | list[str]]] = {
    "get": _get,
    "get_view": _get,
    "get_versioned": _get,
    "get_versioned_now": _get,
    "put": _put,
    "put_copy": _put_copy,
    "put_many": _put_many,
    "_write_conditionally": _conditional,
    "head": _head,
    "exists": _head,
    "_read_write_id": _head,
    "list": _list,
    "delete": _delete,
    "delete_many": _delete_many,
}


def instrument(cls: type, logger: Any) -> None:
    """Wrap the request methods ``cls`` defines itself so that each call logs on ``logger``."""
    for name, describe in _REQUESTS.items():
        method = cls.__dict__.get(name)
        if method is not None:
            setattr(cls, name, _logged(method, describe, logger))


def _logged(method: Any, describe: Callable[..., str | list[str]], logger: Any) -> Any:
    if not inspect.iscoroutinefunction(method):
        return _logged_now(method, describe, logger)

    @functools.wraps(method)
    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not logger.isEnabledFor(TRACE) or _in_request.get():
            return await method(self, *args, **kwargs)
        with _logging(logger, describe(*args, **kwargs)):
            return await method(self, *args, **kwargs)

    return request


def _logged_now(method: Any, describe: Callable[..., str | list[str]], logger: Any) -> Any:
    # A request served on the calling thread (get_versioned_now), logged the same way.
    @functools.wraps(method)
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not logger.isEnabledFor(TRACE) or _in_request.get():
            return method(self, *args, **kwargs)
        with _logging(logger, describe(*args, **kwargs)):
            return method(self, *args, **kwargs)

    return request


@contextlib.contextmanager
def _logging(logger: Any, records: str | list[str]) -> Iterator[None]:
    """Log one request's record (a batch's: one per object), and mark the request running
    while it runs."""
    for record in [records] if isinstance(records, str) else records:
        logger.log(TRACE, "%s", record)
    token = _in_request.set(True)
    try:
        yield
    finally:
        _in_request.reset(token)
