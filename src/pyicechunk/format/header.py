"""The envelope of snapshot, manifest and transaction-log objects (spec §3).

Each such object is a 39-byte header followed by a zstd stream whose content is one flatbuffer.
Reading checks the header in the reference's order (magic, spec version, file type, compression)
so that a damaged or foreign object produces the same diagnosis as in the reference, with a
message that names the object.
"""

from __future__ import annotations

import enum
import threading

import zstandard

from pyicechunk._version import __version__
from pyicechunk.exceptions import IcechunkError

__all__ = [
    "HEADER_SIZE",
    "IMPLEMENTATION_NAME",
    "MAGIC",
    "SPEC_VERSION",
    "FileType",
    "decode_object",
    "encode_object",
]

MAGIC = "ICE🧊CHUNK".encode()
"""The 12 bytes every binary Icechunk object starts with."""

IMPLEMENTATION_NAME: bytes = f"pyic-{__version__}".encode("ascii")[:24].ljust(24, b" ")
"""Name written at bytes 12..36, padded with spaces to 24 bytes; readers ignore it."""

SPEC_VERSION = 1
HEADER_SIZE = 39

_COMPRESSION_NONE = 0
_COMPRESSION_ZSTD = 1


class FileType(enum.IntEnum):
    """The file-type byte (offset 37) of binary objects."""

    SNAPSHOT = 1
    MANIFEST = 2
    TRANSACTION_LOG = 4


# Codes the format defines but no v1 writer produces (3 attributes, 5 chunk).
_KNOWN_TYPE_CODES = {
    1: "snapshot",
    2: "manifest",
    3: "attributes file",
    4: "transaction log",
    5: "chunk",
}

# Flatbuffers stay below 2 GiB, so a larger recorded size can only come from damage.
_MAX_ONE_SHOT = 1 << 31

# zstandard compressor objects must not be shared between threads.
_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    compressor = cache.get(level)
    if compressor is None:
        compressor = cache[level] = zstandard.ZstdCompressor(level=level)
    return compressor


def encode_object(file_type: FileType, flatbuffer: bytes, compression_level: int = 3) -> bytes:
    """Wrap a flatbuffer in the 39-byte header and compress it with zstd.

    Parameters
    ----------
    file_type
        What the flatbuffer is.
    flatbuffer
        The encoded snapshot, manifest or transaction log.
    compression_level
        zstd level (the repository config's ``compression.level``, default 3).

    Returns
    -------
    bytes
        The complete object, ready to store.
    """
    header = MAGIC + IMPLEMENTATION_NAME + bytes((SPEC_VERSION, file_type, _COMPRESSION_ZSTD))
    return header + _compressor(compression_level).compress(flatbuffer)


def _describe(code: int) -> str:
    return _KNOWN_TYPE_CODES.get(code, f"an object of unknown type {code}")


def decode_object(data: bytes | memoryview, expected: FileType, key: str) -> bytes:
    """Check the header of a binary object and return its decompressed flatbuffer.

    Parameters
    ----------
    data
        The whole object as stored.
    expected
        The file type the caller is reading.
    key
        The object's storage key, used in error messages.

    Returns
    -------
    bytes
        The decompressed content (a flatbuffer, possibly followed by ignored bytes).

    Raises
    ------
    IcechunkError
        If the magic bytes, spec version, file type or compression byte are wrong, the object is
        shorter than a header, or the zstd stream is corrupt or truncated.
    """
    view = memoryview(data)
    where = f"cannot read {key}"
    if view[:12] != MAGIC:
        raise IcechunkError(
            f"{where}: not an Icechunk file (bad magic bytes); the object is damaged or was not "
            "written by Icechunk"
        )
    if len(view) < HEADER_SIZE:
        raise IcechunkError(
            f"{where}: the object is truncated ({len(view)} bytes, shorter than the "
            f"{HEADER_SIZE}-byte header); it is damaged"
        )
    spec = view[36]
    if spec != SPEC_VERSION:
        raise IcechunkError(
            f"{where}: it uses Icechunk spec version {spec}, but this version of pyicechunk "
            f"reads only spec version {SPEC_VERSION}; it was written by a newer Icechunk, "
            "upgrade pyicechunk"
        )
    file_type = view[37]
    if file_type != expected:
        raise IcechunkError(
            f"{where}: expected a {_describe(expected)}, found {_describe(file_type)}; "
            "the object is damaged or stored under the wrong key"
        )
    compression = view[38]
    if compression not in (_COMPRESSION_NONE, _COMPRESSION_ZSTD):
        raise IcechunkError(
            f"{where}: unknown compression algorithm code {compression}; the object is damaged "
            "or was written by a newer Icechunk"
        )
    # Like the reference, the body is always read as zstd whatever byte 38 says.
    body: bytes | memoryview = view[HEADER_SIZE:]
    decompressor = zstandard.ZstdDecompressor()
    # Our own objects are one frame that records its size: decompress it in one call, about
    # twice as fast as streaming. Anything else (several frames, no size, a size too large to
    # trust, damage) takes the frame-by-frame path below, which also words the errors.
    try:
        size = zstandard.frame_content_size(body)
        if 0 < size < _MAX_ONE_SHOT:
            return decompressor.decompress(body, allow_extra_data=False)
    except zstandard.ZstdError:
        pass
    # Reference objects carry no content size and may hold several frames.
    parts: list[bytes] = []
    try:
        while body:
            frame = decompressor.decompressobj()
            parts.append(frame.decompress(body))
            if not frame.eof:
                raise IcechunkError(
                    f"{where}: the compressed data is truncated; the object is damaged"
                )
            body = frame.unused_data
    except zstandard.ZstdError as exc:
        raise IcechunkError(
            f"{where}: the compressed data is corrupt ({exc}); the object is damaged"
        ) from None
    if not parts:
        raise IcechunkError(f"{where}: the object has a header but no content; it is damaged")
    return parts[0] if len(parts) == 1 else b"".join(parts)
