"""The spec-1 parts of a snapshot (FORMAT-V1 §4): shapes with chunk lengths and manifest files as
struct vectors, and MessagePack metadata values.

Spec 1 also stores ``parent_id``; :mod:`pyicechunk.format.snapshot.layout` says so.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import msgpack

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Vector, malformed
from pyicechunk.format.ids import check_id_length
from pyicechunk.format.snapshot.model import DimensionShape, ManifestFileInfo

_MANIFEST_FILE_INFO = struct.Struct("<12s4xQI4x")
_DIMENSION_SHAPE = struct.Struct("<QQ")


def encode_shape(b: Builder, shape: tuple[DimensionShape, ...]) -> tuple[int, int]:
    """Write ``ArrayNodeData.shape`` (array and chunk lengths); no ``shape_v2`` (0)."""
    packed = b"".join([_DIMENSION_SHAPE.pack(d.array_length, d.chunk_length) for d in shape])
    return b.create_vector(packed, 16, 8), 0


def decode_shape(vec: Vector, where: str) -> tuple[DimensionShape, ...]:
    """Read ``ArrayNodeData.shape``; ``where`` names the array in messages.

    Raises
    ------
    IcechunkError
        If a dimension of non-zero length has chunk length 0.
    """
    shape = []
    for a, c in _DIMENSION_SHAPE.iter_unpack(vec.raw()):
        if c == 0 and a:
            malformed(f"{where}.shape has a dimension of length {a} with chunk length 0")
        shape.append(DimensionShape(a, c))
    return tuple(shape)


def encode_manifest_files(b: Builder, files: Sequence[ManifestFileInfo]) -> tuple[int, int]:
    """Write ``Snapshot.manifest_files`` as structs; no ``manifest_files_v2`` (0).

    Raises
    ------
    ValueError
        If a manifest id does not have 12 bytes.
    """
    packed = b"".join(
        [
            _MANIFEST_FILE_INFO.pack(
                check_id_length(info.id, 12, "manifest id"), info.size_bytes, info.num_chunk_refs
            )
            for info in files
        ]
    )
    return b.create_vector(packed, 32, 8), 0


def decode_manifest_files(vec: Vector) -> tuple[ManifestFileInfo, ...]:
    """Read ``Snapshot.manifest_files``."""
    return tuple(
        ManifestFileInfo(mid, size, count)
        for mid, size, count in _MANIFEST_FILE_INFO.iter_unpack(vec.raw())
    )


def encode_value(value: Any, name: str) -> bytes:
    """Encode a JSON value as MessagePack; ``name`` (the property) is unused in spec 1."""
    packed: bytes = msgpack.packb(value)
    return packed


def decode_value(data: bytes) -> Any:
    """Decode a MessagePack value.

    Raises
    ------
    IcechunkError
        If the bytes are not a single MessagePack value with string map keys.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError) as exc:  # msgpack's errors derive from ValueError
        raise IcechunkError(
            f"malformed commit metadata value ({exc}); the snapshot is damaged",
            kind="deserialization",
        ) from None
