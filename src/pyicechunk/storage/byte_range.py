"""Byte ranges: zarr's typed byte requests turned into offsets, in one place.

A request is one of zarr's values (``RangeByteRequest(start, end)``, ``OffsetByteRequest(offset)``,
``SuffixByteRequest(suffix)``) or None for everything. Two readings exist, and every reader uses
one of these functions instead of its own arithmetic:

* :func:`resolve` is the storage backends' strict reading against an object's size: the end of a
  bounded range is clamped, a suffix longer than the object reads all of it, but a malformed
  range, or one that starts past the end, is an error rather than silently empty.
* :func:`narrow` reads a request relative to a stored extent (a chunk reference's offset and
  length inside a larger object): it never leaves the extent, and an empty result is not an
  error, as zarr expects of a store. :func:`slice_bytes` applies it to bytes in memory.
"""

from __future__ import annotations

from typing import NoReturn

from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from pyicechunk.exceptions import IcechunkError

__all__ = [
    "REQUEST_TYPES",
    "ByteRequest",
    "OffsetByteRequest",
    "RangeByteRequest",
    "SuffixByteRequest",
    "check_request",
    "narrow",
    "resolve",
    "slice_bytes",
]

REQUEST_TYPES = (RangeByteRequest, OffsetByteRequest, SuffixByteRequest)
"""The classes a byte request may be (None aside)."""


def check_request(byte_range: object) -> None:
    """Refuse a store's ``byte_range`` argument that is neither None nor a byte request."""
    if byte_range is not None and not isinstance(byte_range, REQUEST_TYPES):
        raise ValueError(f"Unexpected byte_range, got {byte_range}")


def resolve(byte_range: ByteRequest | None, size: int, key: str) -> tuple[int, int]:
    """Turn a byte request into ``(start, stop)`` offsets of an object of ``size`` bytes.

    Parameters
    ----------
    byte_range
        The request; None means the whole object.
    size
        The object's size.
    key
        The object's key, for error messages.

    Returns
    -------
    tuple of int
        ``start <= stop <= size``.

    Raises
    ------
    IcechunkError
        If the request is malformed or starts past the end of the object.
    TypeError
        If ``byte_range`` is not a byte request.
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
            f"only {size} bytes; request a range inside the object",
            kind="invalid-byte-range",
        )
    return start, min(end, size)


def _bad_range(key: str, detail: str) -> NoReturn:
    raise IcechunkError(f"invalid byte range for object {key}: {detail}", kind="invalid-byte-range")


def narrow(offset: int, length: int, byte_range: ByteRequest | None) -> tuple[int, int]:
    """Absolute ``[start, end)`` of a request inside the extent ``[offset, offset+length)``.

    Raises
    ------
    TypeError
        If ``byte_range`` is not a byte request.
    """
    end = offset + length
    if byte_range is None:
        return offset, end
    if isinstance(byte_range, RangeByteRequest):
        return min(offset + byte_range.start, end), min(offset + byte_range.end, end)
    if isinstance(byte_range, OffsetByteRequest):
        return min(offset + byte_range.offset, end), end
    if isinstance(byte_range, SuffixByteRequest):
        return max(offset, end - byte_range.suffix), end
    raise TypeError(f"unexpected byte range {byte_range!r}")


def slice_bytes(data: bytes, byte_range: ByteRequest | None) -> bytes:
    """Apply a byte request to bytes held in memory (as :func:`narrow` reads it)."""
    if byte_range is None:
        return data
    start, end = narrow(0, len(data), byte_range)
    return data[start:end]
