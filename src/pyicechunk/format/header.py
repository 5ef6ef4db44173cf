"""The envelope of every binary Icechunk object (FORMAT-V1 §3, FORMAT-V2 §2).

Each object is a 39-byte header (magic, implementation name, spec version, file type,
compression) followed by zstd-compressed content, one flatbuffer. Reading checks the header in
the reference's order (size, magic, spec version, file type, compression), so a damaged or
foreign object gets the same diagnosis as in icechunk 2.3, in a message naming the object.

The spec byte of each object's own header says how its content is laid out: a migrated
repository mixes spec-1 and spec-2 objects, so :func:`open_object` returns that byte with the
content and the caller picks the decoder by it.

Every object written here is one zstd frame that records its content size and ends with the
frame's content checksum (the low 32 bits of XXH64 of the content, RFC 8878 §3.1.1). Without
it, damage inside the compressed data can decode without an error to different content (an
inline chunk, a commit message, an extent), which no reader can tell from the real thing; with
it, the decompressor refuses the frame. The references read such frames (1.1.21 and 2.3.0
decompress with libzstd, which verifies a checksum when a frame has one) and write theirs
without one; objects without a checksum are read as before. As in 2.3.0's output, the frame is
single-segment when the content fits the compression level's window (libzstd's choice, a
window no larger than a streaming reader's default limit of 128 MiB), and windowed otherwise.

Decompression is bounded: a frame that declares (or whose blocks can produce) more than the
caller's ``max_size`` is refused before anything is allocated, and frames that do not declare
their size are decompressed with bounded output, so a small hostile object cannot make the
process allocate gigabytes.
"""

from __future__ import annotations

import enum
import threading
from typing import NamedTuple

import zstandard

from pyicechunk._version import __version__
from pyicechunk.exceptions import IcechunkError

__all__ = [
    "DEFAULT_MAX_OBJECT_SIZE",
    "HEADER_SIZE",
    "IMPLEMENTATION_NAME",
    "MAGIC",
    "SPEC_V1",
    "SPEC_V2",
    "SUPPORTED_SPEC_VERSIONS",
    "FileType",
    "OpenedObject",
    "check_spec_version",
    "decode_object",
    "encode_object",
    "open_object",
]

MAGIC = "ICE🧊CHUNK".encode()
"""The 12 bytes every binary Icechunk object starts with."""

IMPLEMENTATION_NAME: bytes = f"pyic-{__version__}".encode("ascii")[:24].ljust(24, b" ")
"""Name written at bytes 12..36, padded with spaces to 24 bytes; readers ignore it."""

SPEC_V1 = 1
"""Header spec byte of spec-1 objects (icechunk 1.x)."""
SPEC_V2 = 2
"""Header spec byte of spec-2 and spec-2.1 objects (icechunk 2.x; 2.1 has no code of its own)."""
SUPPORTED_SPEC_VERSIONS = (SPEC_V1, SPEC_V2)


def check_spec_version(spec_version: int) -> int:
    """Return ``spec_version`` if objects of that layout can be written and read here.

    The codecs call it before choosing the layout of a version, so that an unknown version is
    an error rather than silently another layout.

    Raises
    ------
    ValueError
        If ``spec_version`` is not in :data:`SUPPORTED_SPEC_VERSIONS`.
    """
    if spec_version not in SUPPORTED_SPEC_VERSIONS:
        raise ValueError(
            f"unsupported spec version {spec_version}; the supported versions are "
            f"{', '.join(map(str, SUPPORTED_SPEC_VERSIONS))}"
        )
    return spec_version


HEADER_SIZE = 39

DEFAULT_MAX_OBJECT_SIZE = 1 << 31
"""Largest decompressed content accepted by default: 2 GiB.

A flatbuffer cannot be larger (its offsets are 32-bit and the reference's verifier refuses
buffers above 2 GiB for every object type), so no object the reference can read is bigger. A
frame claiming more is refused untouched; callers that know a tighter bound pass ``max_size``.
"""

_COMPRESSION_NONE = 0
_COMPRESSION_ZSTD = 1


class FileType(enum.IntEnum):
    """The file-type byte (offset 37) of binary objects."""

    SNAPSHOT = 1
    MANIFEST = 2
    TRANSACTION_LOG = 4
    REPO_INFO = 6


# The reference's names, used in its "expected X got N" message. 3 (attributes) and 5 (chunk)
# are defined codes that no writer produces.
_TYPE_NAMES = {
    1: "Snapshot",
    2: "Manifest",
    3: "Attributes",
    4: "TransactionLog",
    5: "Chunk",
    6: "RepoInfo",
}

# zstandard compressor objects must not be shared between threads.
_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    compressor = cache.get(level)
    if compressor is None:
        # One frame with its content size, as 2.3.0 writes, plus the checksum it does not write.
        compressor = cache[level] = zstandard.ZstdCompressor(
            level=level, write_content_size=True, write_checksum=True
        )
    return compressor


def encode_object(
    file_type: FileType,
    flatbuffer: bytes,
    compression_level: int = 3,
    spec_version: int = SPEC_V1,
) -> bytes:
    """Wrap a flatbuffer in the 39-byte header and compress it as one checksummed zstd frame.

    The frame records the content size and carries a content checksum, which
    :func:`open_object` (through libzstd) verifies on every read.

    Parameters
    ----------
    file_type
        What the flatbuffer is.
    flatbuffer
        The encoded object.
    compression_level
        zstd level (the repository config's ``compression.level``, default 3).
    spec_version
        Header spec byte: :data:`SPEC_V1` or :data:`SPEC_V2`; it must match the layout the
        flatbuffer was encoded with.

    Returns
    -------
    bytes
        The complete object, ready to store.

    Raises
    ------
    ValueError
        If ``spec_version`` is not supported, or a repo-info object is asked for in spec 1.
    """
    if spec_version not in SUPPORTED_SPEC_VERSIONS:
        raise ValueError(f"cannot write spec version {spec_version} objects")
    if file_type == FileType.REPO_INFO and spec_version != SPEC_V2:
        raise ValueError("repo info objects exist only in spec version 2")
    header = MAGIC + IMPLEMENTATION_NAME + bytes((spec_version, file_type, _COMPRESSION_ZSTD))
    return header + _compressor(compression_level).compress(flatbuffer)


class OpenedObject(NamedTuple):
    """The spec byte of an object's header and its decompressed content."""

    spec_version: int
    content: bytes


def _type_name(code: int) -> str:
    return _TYPE_NAMES.get(code, str(code))


def open_object(
    data: bytes | memoryview,
    expected: FileType,
    key: str,
    *,
    max_size: int = DEFAULT_MAX_OBJECT_SIZE,
) -> OpenedObject:
    """Check the header of an object of either spec version and decompress its content.

    Spec-1 objects are read as icechunk 1.1 reads them (the compression byte may be 0 or 1
    and the body may hold several zstd frames); spec-2 objects as 2.3 reads them (compression
    byte exactly 1, exactly one frame).

    Parameters
    ----------
    data
        The whole object as stored.
    expected
        The file type the caller is reading.
    key
        The object's storage key, used in error messages.
    max_size
        Largest decompressed size accepted (default :data:`DEFAULT_MAX_OBJECT_SIZE`).

    Returns
    -------
    OpenedObject
        The header's spec version (1 or 2) and the content (a flatbuffer, possibly followed
        by ignored bytes).

    Raises
    ------
    IcechunkError
        If the object is shorter than a header, the magic, spec version, file type or
        compression byte is wrong, the zstd data is corrupt, truncated or not the single frame
        spec 2 requires, its content does not match the frame's checksum, or it decompresses
        to more than ``max_size`` bytes.
    """
    view = memoryview(data)
    where = f"cannot read {key}"
    if len(view) < HEADER_SIZE:
        raise IcechunkError(
            f"{where}: invalid icechunk header size, got {len(view)} bytes, expected at least "
            f"{HEADER_SIZE}; the object is truncated or damaged",
            kind="invalid-file-format",
        )
    if view[:12] != MAGIC:
        raise IcechunkError(
            f"{where}: invalid magic numbers in file; the object is damaged or was not written "
            "by Icechunk",
            kind="invalid-file-format",
        )
    spec = view[36]
    if spec not in SUPPORTED_SPEC_VERSIONS:
        raise IcechunkError(
            f"{where}: this repository uses Icechunk format version {spec}, but this library "
            f"only supports up to version {SUPPORTED_SPEC_VERSIONS[-1]}. Please upgrade the "
            "icechunk library",
            kind="unsupported-spec-version",
        )
    file_type = view[37]
    if file_type != expected:
        raise IcechunkError(
            f"{where}: Icechunk cannot read this file type, expected {_type_name(expected)} got "
            f"{file_type}; the object is damaged or stored under the wrong key",
            kind="invalid-file-format",
        )
    compression = view[38]
    # icechunk 1.1 ignores the byte (and 1.x objects always say 1); 2.3 insists on zstd.
    allowed = (_COMPRESSION_ZSTD,) if spec == SPEC_V2 else (_COMPRESSION_NONE, _COMPRESSION_ZSTD)
    if compression not in allowed:
        raise IcechunkError(
            f"{where}: Icechunk cannot read file, invalid compression algorithm "
            f"{compression}; the object is damaged or was written by a newer Icechunk",
            kind="invalid-file-format",
        )
    content = _decompress(view[HEADER_SIZE:], where, spec == SPEC_V2, max_size)
    return OpenedObject(spec, content)


def decode_object(data: bytes | memoryview, expected: FileType, key: str) -> bytes:
    """Check the header of a spec-1 object and return its decompressed flatbuffer.

    For readers that only know spec-1 layouts: a spec-2 object is refused here rather than
    misread. Readers of both versions use :func:`open_object`.

    Parameters
    ----------
    data, expected, key
        As for :func:`open_object`.

    Returns
    -------
    bytes
        The decompressed content.

    Raises
    ------
    IcechunkError
        As :func:`open_object`, and for objects whose header says spec 2.
    """
    opened = open_object(data, expected, key)
    if opened.spec_version != SPEC_V1:
        raise IcechunkError(
            f"cannot read {key}: it uses Icechunk spec version {opened.spec_version}, which "
            "this reader does not handle; it was written by a newer Icechunk",
            kind="unsupported-spec-version",
        )
    return opened.content


# ---------------------------------------------------------------------------------------------
# zstd frames (RFC 8878), walked block by block without decompressing: that finds where each
# frame ends and bounds what it can produce before a byte is allocated.

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_BLOCK = 128 * 1024
_FCS_SIZES = (0, 2, 4, 8)
_DID_SIZES = (0, 1, 2, 4)


class _Frame(NamedTuple):
    start: int
    end: int
    content_size: int  # -1 when the frame does not declare it
    bound: int  # the most its blocks can decompress to
    exact: bool  # whether ``bound`` is the exact decompressed size


def _scan_frame(body: memoryview, start: int, where: str) -> _Frame:
    n = len(body)

    def truncated() -> IcechunkError:
        return IcechunkError(
            f"{where}: the compressed data is truncated; the object is damaged",
            kind="deserialization",
        )

    def corrupt(problem: str) -> IcechunkError:
        return IcechunkError(
            f"{where}: the compressed data is corrupt ({problem}); the object is damaged",
            kind="deserialization",
        )

    if body[start : start + 4] != _ZSTD_MAGIC:
        raise truncated() if n - start < 4 else corrupt("not a zstd frame")
    pos = start + 4
    if pos >= n:
        raise truncated()
    descriptor = body[pos]
    pos += 1
    if descriptor & 0x08:
        raise corrupt("reserved bit set in the frame header")
    single_segment = bool(descriptor & 0x20)
    fcs_size = _FCS_SIZES[descriptor >> 6]
    if fcs_size == 0 and single_segment:
        fcs_size = 1
    window = 0
    if not single_segment:
        if pos >= n:
            raise truncated()
        wd = body[pos]
        pos += 1
        base = 1 << (10 + (wd >> 3))
        window = base + (base >> 3) * (wd & 7)
    pos += _DID_SIZES[descriptor & 3]
    if pos + fcs_size > n:
        raise truncated()
    content_size = -1
    if fcs_size:
        content_size = int.from_bytes(body[pos : pos + fcs_size], "little")
        if fcs_size == 2:
            content_size += 256
        pos += fcs_size
    if single_segment:
        window = content_size
    block_max = min(window, _MAX_BLOCK)
    bound = 0
    exact = True
    while True:
        if pos + 3 > n:
            raise truncated()
        header = int.from_bytes(body[pos : pos + 3], "little")
        pos += 3
        block_type = (header >> 1) & 3
        size = header >> 3
        if block_type == 3:
            raise corrupt("reserved block type")
        if size > block_max:
            raise corrupt("block larger than the frame allows")
        if block_type == 0:  # raw
            pos += size
            bound += size
        elif block_type == 1:  # RLE: one byte repeated `size` times
            pos += 1
            bound += size
        else:
            pos += size
            bound += block_max
            exact = False
        if pos > n:
            raise truncated()
        if header & 1:
            break
    if descriptor & 0x04:
        pos += 4
        if pos > n:
            raise truncated()
    if content_size > bound:
        raise corrupt(f"the frame claims {content_size} bytes but its blocks hold at most {bound}")
    if content_size >= 0:
        return _Frame(start, pos, content_size, content_size, True)
    return _Frame(start, pos, content_size, bound, exact)


def _too_large(where: str, size: int | str, max_size: int) -> IcechunkError:
    return IcechunkError(
        f"{where}: the object decompresses to {size} bytes, more than the limit of {max_size} "
        "bytes for one object; it is damaged or hostile",
        kind="invalid-file-format",
    )


def _decompress(body: memoryview, where: str, single_frame: bool, max_size: int) -> bytes:
    if not len(body):
        raise IcechunkError(
            f"{where}: the object has a header but no content; it is damaged",
            kind="invalid-file-format",
        )
    frames = [_scan_frame(body, 0, where)]
    while frames[-1].end < len(body):
        if single_frame:
            raise IcechunkError(
                f"{where}: the compressed data holds more than one zstd frame (Destination buffer "
                "is too small); spec-2 objects are exactly one frame, the object is damaged",
                kind="invalid-file-format",
            )
        frames.append(_scan_frame(body, frames[-1].end, where))
    # Declared sizes, and frames made only of raw and RLE blocks, are known before decoding.
    known = sum(f.bound for f in frames if f.exact)
    if known > max_size:
        raise _too_large(where, known, max_size)
    bounded = sum(f.bound for f in frames) <= max_size
    decompressor = zstandard.ZstdDecompressor()
    parts: list[bytes] = []
    produced = 0
    try:
        for frame in frames:
            data = body[frame.start : frame.end]
            if frame.content_size >= 0:
                part = decompressor.decompress(data)
            elif bounded:
                stream = decompressor.decompressobj()
                part = stream.decompress(data)
                if not stream.eof:
                    raise IcechunkError(
                        f"{where}: the compressed data is truncated; the object is damaged",
                        kind="deserialization",
                    )
            else:
                part = _read_bounded(decompressor, data, max_size - produced, where, max_size)
            produced += len(part)
            if produced > max_size:
                raise _too_large(where, f"more than {max_size}", max_size)
            parts.append(part)
    except zstandard.ZstdError as exc:
        if "checksum" in str(exc):
            # libzstd's "Restored data doesn't match checksum": the frame decoded, to bytes
            # that are not what was written.
            raise IcechunkError(
                f"{where}: its content does not match the checksum of its zstd frame; the "
                "object is damaged",
                kind="deserialization",
            ) from None
        raise IcechunkError(
            f"{where}: the compressed data is corrupt ({exc}); the object is damaged",
            kind="deserialization",
        ) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_bounded(
    decompressor: zstandard.ZstdDecompressor,
    frame: memoryview,
    room: int,
    where: str,
    max_size: int,
) -> bytes:
    """Decompress one frame of unknown size, stopping as soon as it exceeds ``room`` bytes."""
    out = bytearray()
    with decompressor.stream_reader(frame, read_across_frames=False) as reader:
        while True:
            piece = reader.read(min(room + 1 - len(out), 1 << 24))
            if not piece:
                break
            out += piece
            if len(out) > room:
                raise _too_large(where, f"more than {max_size}", max_size)
    return bytes(out)
