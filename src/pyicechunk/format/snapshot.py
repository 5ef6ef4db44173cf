"""Snapshots: the node tree, commit message, properties and manifest list of one commit.

The dataclasses here are the decoded form of ``snapshots/<id>`` objects; :func:`encode_snapshot`
and :func:`decode_snapshot` convert them to and from the flatbuffer (without the header), in
either layout:

* spec 1 (FORMAT-V1 §4): ``parent_id``, struct ``shape`` with chunk lengths, struct
  ``manifest_files``, MessagePack metadata values;
* spec 2 (FORMAT-V2 §7): no ``parent_id`` (history lives in the ``repo`` object), table
  ``shape_v2`` with chunk counts, table ``manifest_files_v2``, FlexBuffer metadata values; the
  spec-1 vectors are written empty.

As in the reference, the decoder takes each v2 list whenever it is present and the v1 list
otherwise, whatever the header says; only the metadata encoding follows the header's spec byte.
"""

from __future__ import annotations

import bisect
import itertools
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgpack

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Table, Vector, malformed, required, root_table
from pyicechunk.format.flexbuffers import decode_flexbuffer, encode_flexbuffer
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID, encode_id

__all__ = [
    "ArrayNodeData",
    "DimensionShape",
    "ManifestFileInfo",
    "ManifestRef",
    "NodeSnapshot",
    "Snapshot",
    "decode_metadata_value",
    "decode_snapshot",
    "encode_metadata_value",
    "encode_snapshot",
    "initial_snapshot",
    "validate_path",
]

INITIAL_MESSAGE = "Repository initialized"

_MANIFEST_FILE_INFO = struct.Struct("<12s4xQI4x")
_CHUNK_INDEX_RANGE = struct.Struct("<II")
_DIMENSION_SHAPE = struct.Struct("<QQ")

_UNION_ARRAY = 1
_UNION_GROUP = 2

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class DimensionShape:
    """Length of one array dimension, of its chunks and their number (for sharded arrays, of
    its shards).

    Spec 1 stores the chunk length, spec 2 the number of chunks (which also covers
    rectilinear grids). ``num_chunks`` defaults to ceil(array_length / chunk_length). Decoded
    spec-2 shapes carry a chunk length back-computed as ceil(array_length / num_chunks), as
    2.3.0 does; the exact chunk sizes are in the node's zarr metadata.
    """

    array_length: int
    chunk_length: int
    num_chunks: int = -1

    def __post_init__(self) -> None:
        if self.num_chunks < 0:
            n = -(-self.array_length // self.chunk_length) if self.chunk_length else 0
            object.__setattr__(self, "num_chunks", n)

    @classmethod
    def from_num_chunks(cls, array_length: int, num_chunks: int) -> DimensionShape:
        """The shape of a spec-2 dimension, from its length and number of chunks."""
        chunk_length = -(-array_length // num_chunks) if num_chunks else 0
        return cls(array_length, chunk_length, num_chunks)


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """A manifest holding chunks of an array, with the chunk-index box it covers.

    ``extents`` has one ``(from, to)`` pair per dimension, ``from`` inclusive and ``to``
    exclusive; it is empty for 0-d arrays.
    """

    object_id: bytes
    extents: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ArrayNodeData:
    """What a snapshot records about an array besides its Zarr metadata."""

    shape: tuple[DimensionShape, ...]
    dimension_names: tuple[str | None, ...] | None
    manifests: tuple[ManifestRef, ...]


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """A group or array in a snapshot; ``array`` is None for groups.

    ``user_data`` holds the exact bytes Zarr stored at the node's ``zarr.json``.
    """

    id: bytes
    path: str
    user_data: bytes
    array: ArrayNodeData | None

    @property
    def is_array(self) -> bool:
        """Whether the node is an array (otherwise it is a group)."""
        return self.array is not None


@dataclass(frozen=True, slots=True)
class ManifestFileInfo:
    """A manifest referenced by a snapshot: its id, exact object size and number of refs."""

    id: bytes
    size_bytes: int
    num_chunk_refs: int


_path_of = attrgetter("path")
_id_of = attrgetter("id")


@dataclass(frozen=True)
class Snapshot:
    """One commit: the full node tree plus commit information.

    ``nodes`` is kept sorted by path (code point order, as the format requires) and
    ``manifest_files`` by id; a snapshot built from unsorted tuples sorts them.
    ``flushed_at`` is in microseconds since the Unix epoch (UTC).
    """

    id: bytes
    parent_id: bytes | None
    nodes: tuple[NodeSnapshot, ...]
    flushed_at: int
    message: str
    metadata: dict[str, Any]
    manifest_files: tuple[ManifestFileInfo, ...]
    _manifest_index: dict[bytes, ManifestFileInfo] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        nodes = self.nodes
        if any(nodes[i].path > nodes[i + 1].path for i in range(len(nodes) - 1)):
            object.__setattr__(self, "nodes", tuple(sorted(nodes, key=_path_of)))
        files = self.manifest_files
        if any(files[i].id > files[i + 1].id for i in range(len(files) - 1)):
            object.__setattr__(self, "manifest_files", tuple(sorted(files, key=_id_of)))

    def get_node(self, path: str) -> NodeSnapshot | None:
        """Return the node at ``path``, or None if there is none."""
        i = bisect.bisect_left(self.nodes, path, key=_path_of)
        if i < len(self.nodes) and self.nodes[i].path == path:
            return self.nodes[i]
        return None

    def iter_descendants(self, path: str) -> Iterator[NodeSnapshot]:
        """Yield the nodes strictly below ``path`` (all but the root for ``"/"``), in path order."""
        prefix = "/" if path == "/" else path + "/"
        nodes = self.nodes
        # Paths sharing a prefix are contiguous in the sorted order.
        i = bisect.bisect_left(nodes, prefix, key=_path_of)
        while i < len(nodes) and nodes[i].path.startswith(prefix):
            if nodes[i].path != path:
                yield nodes[i]
            i += 1

    def manifest_info(self, manifest_id: bytes) -> ManifestFileInfo | None:
        """Return the size information of a manifest this snapshot references, or None."""
        index = self._manifest_index
        if index is None:
            index = {info.id: info for info in self.manifest_files}
            object.__setattr__(self, "_manifest_index", index)
        return index.get(manifest_id)


def validate_path(path: object) -> str:
    """Check that ``path`` is a canonical absolute node path and return it.

    Canonical means: starts with ``/``, is ``/`` for the root, has no trailing ``/``, no empty
    segment (``//``) and no ``.`` or ``..`` segment.

    Raises
    ------
    IcechunkError
        If the path is not a string or not canonical.
    """
    if not isinstance(path, str):
        raise IcechunkError(f"invalid node path {path!r}: paths must be strings")
    if path == "/":
        return path
    if not path.startswith("/") or path.endswith("/"):
        raise IcechunkError(
            f"invalid node path {path!r}: paths must start with '/' and must not end with '/'"
        )
    for segment in path[1:].split("/"):
        if segment in ("", ".", ".."):
            raise IcechunkError(
                f"invalid node path {path!r}: empty, '.' and '..' segments are not allowed"
            )
    return path


def _json_value(value: Any, where: str) -> Any:
    # Mirrors how the reference turns Python values into serde_json values: NaN and infinities
    # become null, integers beyond u64/i64 become floats, tuples become lists.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if _I64_MIN <= value <= _U64_MAX else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(
                    f"commit metadata {where} has a key {key!r} of type {type(key).__name__}; "
                    "keys must be strings"
                )
        return {k: _json_value(value[k], f"{where}[{k!r}]") for k in sorted(value)}
    raise TypeError(
        f"commit metadata {where} is of type {type(value).__name__}, which is not a JSON value; "
        "use str, int, float, bool, None, list or dict"
    )


def encode_metadata_value(value: Any, name: str = "value", spec_version: int = SPEC_V1) -> bytes:
    """Encode one commit-property value: MessagePack in spec 1 (FORMAT-V1 §4.6), a FlexBuffer
    in spec 2 (FORMAT-V2 §6), of the JSON value the reference would see.

    Dictionary keys are sorted recursively, which makes the bytes identical to the reference's.

    Parameters
    ----------
    value
        A JSON-compatible value: str, int, float, bool, None, list, tuple or dict with str keys.
    name
        The property name, used in error messages.
    spec_version
        The layout of the snapshot the value goes into.

    Returns
    -------
    bytes
        The encoded value.

    Raises
    ------
    TypeError
        If the value (or something nested in it) is not JSON-compatible.
    """
    json_value = _json_value(value, repr(name))
    if spec_version == SPEC_V1:
        packed: bytes = msgpack.packb(json_value)
        return packed
    try:
        return encode_flexbuffer(json_value)
    except ValueError as exc:
        raise TypeError(f"commit metadata {name!r} cannot be stored: {exc}") from None


def decode_metadata_value(data: bytes, spec_version: int = SPEC_V1) -> Any:
    """Decode one commit-property value written by :func:`encode_metadata_value`.

    Raises
    ------
    IcechunkError
        If the bytes are not a single value in the version's encoding.
    """
    if spec_version != SPEC_V1:
        try:
            return decode_flexbuffer(data)
        except IcechunkError as exc:
            raise IcechunkError(
                f"error during metadata deserialization: {exc.message}; the snapshot is damaged"
            ) from None
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError) as exc:  # msgpack's errors derive from ValueError
        raise IcechunkError(
            f"malformed commit metadata value ({exc}); the snapshot is damaged"
        ) from None


def initial_snapshot(flushed_at: int, spec_version: int = SPEC_V1) -> Snapshot:
    """Return the first snapshot of a new repository (FORMAT-V1 §4.7, FORMAT-V2 §7.3).

    Parameters
    ----------
    flushed_at
        Creation time in microseconds since the Unix epoch (UTC).
    spec_version
        Spec 1 marks the root with ``__root: true`` as icechunk 1.1 does, spec 2 with
        ``__icechunk: {is_root: true}`` as 2.3 does.
    """
    metadata: dict[str, Any] = (
        {"__root": True} if spec_version == SPEC_V1 else {"__icechunk": {"is_root": True}}
    )
    return Snapshot(
        id=INITIAL_SNAPSHOT_ID,
        parent_id=None,
        nodes=(),
        flushed_at=flushed_at,
        message=INITIAL_MESSAGE,
        metadata=metadata,
        manifest_files=(),
    )


def _check_id(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _encode_shape(b: Builder, shape: tuple[DimensionShape, ...], v2: bool) -> tuple[int, int]:
    """References of the v1 struct vector and (spec 2) the v2 table vector of a shape."""
    if not v2:
        packed = b"".join([_DIMENSION_SHAPE.pack(d.array_length, d.chunk_length) for d in shape])
        return b.create_vector(packed, 16, 8), 0
    dims = []
    for d in shape:
        b.start_table(2)
        b.add_u64(0, d.array_length)
        b.add_u32(1, d.num_chunks)
        dims.append(b.end_table())
    return b.create_vector(b"", 16, 8), b.create_offset_vector(dims)


def _encode_array(b: Builder, array: ArrayNodeData, v2: bool) -> int:
    shape, shape_v2 = _encode_shape(b, array.shape, v2)
    names = 0
    if array.dimension_names is not None:
        name_refs = []
        for name in array.dimension_names:
            # An unnamed dimension (None or "") is a DimensionName without its name field.
            text = b.create_string(name) if name else 0
            b.start_table(1)
            if text:
                b.add_offset(0, text)
            name_refs.append(b.end_table())
        names = b.create_offset_vector(name_refs)
    ref_refs = []
    for ref in array.manifests:
        extents = b.create_vector(
            b"".join([_CHUNK_INDEX_RANGE.pack(lo, hi) for lo, hi in ref.extents]), 8, 4
        )
        b.start_table(2)
        b.add_struct(0, _check_id(ref.object_id, 12, "ManifestRef.object_id"), 1)
        b.add_offset(1, extents)
        ref_refs.append(b.end_table(required=(0, 1)))
    manifests = b.create_offset_vector(ref_refs)
    b.start_table(4 if v2 else 3)
    b.add_offset(0, shape)
    if names:
        b.add_offset(1, names)
    b.add_offset(2, manifests)
    if v2:
        b.add_offset(3, shape_v2)
    return b.end_table(required=(0, 2))


def _encode_manifest_files(b: Builder, files: list[ManifestFileInfo], v2: bool) -> tuple[int, int]:
    """References of the v1 struct list and (spec 2) the v2 table list of manifest files."""
    if not v2:
        packed = b"".join(
            [
                _MANIFEST_FILE_INFO.pack(
                    _check_id(info.id, 12, "manifest id"), info.size_bytes, info.num_chunk_refs
                )
                for info in files
            ]
        )
        return b.create_vector(packed, 32, 8), 0
    tables = []
    for info in files:
        b.start_table(3)
        b.add_u64(1, info.size_bytes)
        b.add_struct(0, _check_id(info.id, 12, "manifest id"), 1)
        b.add_u32(2, info.num_chunk_refs)
        tables.append(b.end_table())
    return b.create_vector(b"", 32, 8), b.create_offset_vector(tables)


def encode_snapshot(snapshot: Snapshot, spec_version: int = SPEC_V1) -> bytes:
    """Encode a snapshot as a flatbuffer (no header).

    Nodes are written sorted by path, manifest files by id and metadata items by name. In
    spec 2 the parent is not written (``repo`` records it) and the spec-1 ``shape`` and
    ``manifest_files`` vectors are left empty.

    Parameters
    ----------
    snapshot
        The snapshot to encode.
    spec_version
        The layout to write, :data:`~pyicechunk.format.header.SPEC_V1` or ``SPEC_V2``; the
        object's header must carry the same version.

    Returns
    -------
    bytes
        The flatbuffer, with file identifier ``Ichk``.

    Raises
    ------
    IcechunkError
        If a node path is not canonical.
    TypeError
        If a commit-metadata value is not JSON-compatible.
    ValueError
        If an id has the wrong length or ``flushed_at`` is out of range.
    """
    if not 0 <= snapshot.flushed_at < 2**63:
        raise ValueError(f"flushed_at {snapshot.flushed_at} is outside the range of the format")
    v2 = spec_version != SPEC_V1
    estimate = 512 + sum(len(n.user_data) + len(n.path) + 128 for n in snapshot.nodes)
    b = Builder(estimate)
    group_data = 0
    node_refs = []
    for node in sorted(snapshot.nodes, key=_path_of):
        path = b.create_string(validate_path(node.path))
        user_data = b.create_bytes_vector(node.user_data)
        if node.array is None:
            if not group_data:
                # GroupNodeData has no fields, so every group can share one table.
                b.start_table(0)
                group_data = b.end_table()
            tag, data = _UNION_GROUP, group_data
        else:
            tag, data = _UNION_ARRAY, _encode_array(b, node.array, v2)
        b.start_table(5)
        b.add_struct(0, _check_id(node.id, 8, "node id"), 1)
        b.add_offset(1, path)
        b.add_offset(2, user_data)
        b.add_u8(3, tag)
        b.add_offset(4, data)
        node_refs.append(b.end_table(required=(0, 1, 2, 4)))
    nodes = b.create_offset_vector(node_refs)
    message = b.create_string(snapshot.message)
    item_refs = []
    for name in sorted(snapshot.metadata):
        value = encode_metadata_value(snapshot.metadata[name], name, spec_version)
        name_ref = b.create_string(name)
        value_ref = b.create_bytes_vector(value)
        b.start_table(2)
        b.add_offset(0, name_ref)
        b.add_offset(1, value_ref)
        item_refs.append(b.end_table(required=(0, 1)))
    metadata = b.create_offset_vector(item_refs)
    files, files_v2 = _encode_manifest_files(b, sorted(snapshot.manifest_files, key=_id_of), v2)
    b.start_table(8 if v2 else 7)
    b.add_u64(3, snapshot.flushed_at)
    b.add_struct(0, _check_id(snapshot.id, 12, "snapshot id"), 1)
    if snapshot.parent_id is not None and not v2:
        b.add_struct(1, _check_id(snapshot.parent_id, 12, "parent snapshot id"), 1)
    b.add_offset(2, nodes)
    b.add_offset(4, message)
    b.add_offset(5, metadata)
    b.add_offset(6, files)
    if v2:
        b.add_offset(7, files_v2)
    return b.finish(b.end_table(required=(0, 2, 4, 5, 6)))


def _decode_shape(t: Table, where: str) -> tuple[DimensionShape, ...]:
    v2 = t.vector(3, 4)
    if v2 is not None:
        dims = [v2.table(i) for i in range(len(v2))]
        return tuple(DimensionShape.from_num_chunks(d.u64(0), d.u32(1)) for d in dims)
    shape_vec = required(t.vector(0, 16), f"{where}.shape")
    shape = []
    for a, c in _DIMENSION_SHAPE.iter_unpack(shape_vec.raw()):
        if c == 0 and a:
            malformed(f"{where}.shape has a dimension of length {a} with chunk length 0")
        shape.append(DimensionShape(a, c))
    return tuple(shape)


def _decode_array(t: Table, where: str) -> ArrayNodeData:
    shape = _decode_shape(t, where)
    names: tuple[str | None, ...] | None = None
    names_vec = t.vector(1, 4)
    if names_vec is not None:
        names = tuple(names_vec.table(i).string(0) or None for i in range(len(names_vec)))
    refs_vec = required(t.vector(2, 4), f"{where}.manifests")
    manifests = []
    for i in range(len(refs_vec)):
        ref = refs_vec.table(i)
        object_id = required(ref.struct_bytes(0, 12), f"{where}.manifests[{i}].object_id")
        extents = required(ref.vector(1, 8), f"{where}.manifests[{i}].extents")
        manifests.append(
            ManifestRef(object_id, tuple(_CHUNK_INDEX_RANGE.iter_unpack(extents.raw())))
        )
    return ArrayNodeData(shape, names, tuple(manifests))


def _decode_node(t: Table, i: int) -> NodeSnapshot:
    where = f"Snapshot.nodes[{i}]"
    node_id = required(t.struct_bytes(0, 8), f"{where}.id")
    path = required(t.string(1), f"{where}.path")
    try:
        validate_path(path)
    except IcechunkError as exc:
        malformed(f"{where}.path: {exc}")
    user_data = required(t.bytes_vector(2), f"{where}.user_data")
    tag = t.u8(3)
    data = required(t.table(4), f"{where}.node_data")
    if tag == _UNION_ARRAY:
        return NodeSnapshot(node_id, path, user_data, _decode_array(data, f"{where}.array"))
    if tag == _UNION_GROUP:
        return NodeSnapshot(node_id, path, user_data, None)
    malformed(f"{where}.node_data has the invalid union type {tag}")


def _decode_manifest_files(root: Table) -> tuple[ManifestFileInfo, ...]:
    v2: Vector | None = root.vector(7, 4)
    if v2 is None:
        files_vec = required(root.vector(6, 32), "Snapshot.manifest_files")
        return tuple(
            ManifestFileInfo(mid, size, count)
            for mid, size, count in _MANIFEST_FILE_INFO.iter_unpack(files_vec.raw())
        )
    out = []
    for i in range(len(v2)):
        t = v2.table(i)
        mid = required(t.struct_bytes(0, 12), f"Snapshot.manifest_files_v2[{i}].id")
        out.append(ManifestFileInfo(mid, t.u64(1), t.u32(2)))
    return tuple(out)


def decode_snapshot(buf: bytes | memoryview, spec_version: int = SPEC_V1) -> Snapshot:
    """Decode a snapshot flatbuffer (the content of a ``snapshots/`` object after its header).

    Parameters
    ----------
    buf
        The decompressed flatbuffer.
    spec_version
        The spec byte of the object's header: it decides how metadata values are encoded
        (MessagePack in spec 1, FlexBuffers in spec 2) and, in spec 2, that a stored
        ``parent_id`` is ignored. Shapes and manifest lists are read from the v2 fields
        whenever present, else from the v1 fields.

    Returns
    -------
    Snapshot
        The decoded snapshot, nodes sorted by path; ``parent_id`` is None for spec 2.

    Raises
    ------
    IcechunkError
        If the buffer is malformed: offsets out of range, required fields missing, invalid
        union tags, non-canonical or duplicate paths, undecodable metadata.
    """
    root = root_table(buf)
    snapshot_id = required(root.struct_bytes(0, 12), "Snapshot.id")
    parent_id = root.struct_bytes(1, 12) if spec_version == SPEC_V1 else None
    nodes_vec = required(root.vector(2, 4), "Snapshot.nodes")
    flushed_at = root.u64(3)
    message = required(root.string(4), "Snapshot.message")
    metadata_vec = required(root.vector(5, 4), "Snapshot.metadata")
    # Still required in spec 2, where it is written empty.
    required(root.vector(6, 32), "Snapshot.manifest_files")

    nodes = tuple(_decode_node(nodes_vec.table(i), i) for i in range(len(nodes_vec)))
    metadata: dict[str, Any] = {}
    for i in range(len(metadata_vec)):
        item = metadata_vec.table(i)
        name = required(item.string(0), f"Snapshot.metadata[{i}].name")
        value = required(item.bytes_vector(1), f"Snapshot.metadata[{i}].value")
        metadata[name] = decode_metadata_value(value, spec_version)
    snapshot = Snapshot(
        id=snapshot_id,
        parent_id=parent_id,
        nodes=nodes,
        flushed_at=flushed_at,
        message=message,
        metadata=metadata,
        manifest_files=_decode_manifest_files(root),
    )
    paths = [n.path for n in snapshot.nodes]
    for a, b in itertools.pairwise(paths):
        if a == b:
            malformed(f"snapshot {encode_id(snapshot_id)} has two nodes at path {a!r}")
    return snapshot
