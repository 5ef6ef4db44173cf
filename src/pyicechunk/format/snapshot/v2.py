"""What spec 2 changes in a snapshot (FORMAT-V2 §7): shapes as chunk counts (``shape_v2``) and
manifest files as tables (``manifest_files_v2``), the spec-1 vectors written empty, and
FlexBuffer metadata values.

Spec 2 stores no ``parent_id`` (the repo object lists parents).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Vector, required
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.ids import check_id_length
from pyicechunk.format.snapshot.model import DimensionShape, ManifestFileInfo


def encode_shape(b: Builder, shape: tuple[DimensionShape, ...]) -> tuple[int, int]:
    """Write an empty ``ArrayNodeData.shape`` and ``shape_v2`` (lengths and chunk counts)."""
    dims = []
    for d in shape:
        b.start_table(2)
        b.add_u64(0, d.array_length)
        b.add_u32(1, d.num_chunks)
        dims.append(b.end_table())
    return b.create_vector(b"", 16, 8), b.create_offset_vector(dims)


def decode_shape(vec: Vector) -> tuple[DimensionShape, ...]:
    """Read ``ArrayNodeData.shape_v2``."""
    dims = [vec.table(i) for i in range(len(vec))]
    return tuple(DimensionShape.from_num_chunks(d.u64(0), d.u32(1)) for d in dims)


def encode_manifest_files(b: Builder, files: Sequence[ManifestFileInfo]) -> tuple[int, int]:
    """Write an empty ``Snapshot.manifest_files`` and ``manifest_files_v2``.

    Raises
    ------
    ValueError
        If a manifest id does not have 12 bytes.
    """
    tables = []
    for info in files:
        b.start_table(3)
        b.add_u64(1, info.size_bytes)
        b.add_struct(0, check_id_length(info.id, 12, "manifest id"), 1)
        b.add_u32(2, info.num_chunk_refs)
        tables.append(b.end_table())
    return b.create_vector(b"", 32, 8), b.create_offset_vector(tables)


def decode_manifest_files(vec: Vector) -> tuple[ManifestFileInfo, ...]:
    """Read ``Snapshot.manifest_files_v2``.

    Raises
    ------
    IcechunkError
        If an entry lacks its id.
    """
    out = []
    for i in range(len(vec)):
        t = vec.table(i)
        mid = required(t.struct_bytes(0, 12), f"Snapshot.manifest_files_v2[{i}].id")
        out.append(ManifestFileInfo(mid, t.u64(1), t.u32(2)))
    return tuple(out)


def encode_value(value: Any, name: str) -> bytes:
    """Encode a JSON value as a FlexBuffer; ``name`` (the property) is for messages.

    Raises
    ------
    TypeError
        If FlexBuffers cannot hold the value.
    """
    try:
        return encode_flexbuffer(value)
    except ValueError as exc:
        raise TypeError(f"commit metadata {name!r} cannot be stored: {exc}") from None


def decode_value(data: bytes) -> Any:
    """Decode a FlexBuffer value.

    Raises
    ------
    IcechunkError
        If the bytes are not a valid FlexBuffer (the reference's "error during metadata
        deserialization").
    """
    try:
        return decode_flexbuffer(data)
    except IcechunkError as exc:
        raise IcechunkError(
            f"error during metadata deserialization: {exc.message}; the snapshot is damaged",
            kind="deserialization",
        ) from None
