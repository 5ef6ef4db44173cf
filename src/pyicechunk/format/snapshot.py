"""Snapshots: the node tree, commit message, properties and manifest list of one commit (§4).

The dataclasses here are the decoded form of ``snapshots/<id>`` objects; :func:`encode_snapshot`
and :func:`decode_snapshot` convert them to and from the flatbuffer (without the §3 header).
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
from pyicechunk.format.flatbuf import Builder, Table, malformed, required, root_table
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
    """Length of one array dimension and of its chunks (for sharded arrays, of its shards)."""

    array_length: int
    chunk_length: int


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


def encode_metadata_value(value: Any, name: str = "value") -> bytes:
    """Encode one commit-property value as MessagePack of a JSON value (§4.6).

    Dictionary keys are sorted recursively, which makes the bytes identical to the reference's.

    Parameters
    ----------
    value
        A JSON-compatible value: str, int, float, bool, None, list, tuple or dict with str keys.
    name
        The property name, used in error messages.

    Returns
    -------
    bytes
        The MessagePack encoding.

    Raises
    ------
    TypeError
        If the value (or something nested in it) is not JSON-compatible.
    """
    packed: bytes = msgpack.packb(_json_value(value, repr(name)))
    return packed


def decode_metadata_value(data: bytes) -> Any:
    """Decode one commit-property value written by :func:`encode_metadata_value`.

    Raises
    ------
    IcechunkError
        If the bytes are not a single MessagePack value.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError) as exc:  # msgpack's errors derive from ValueError
        raise IcechunkError(
            f"malformed commit metadata value ({exc}); the snapshot is damaged"
        ) from None


def initial_snapshot(flushed_at: int) -> Snapshot:
    """Return the first snapshot of a new repository (§4.7).

    Parameters
    ----------
    flushed_at
        Creation time in microseconds since the Unix epoch (UTC).
    """
    return Snapshot(
        id=INITIAL_SNAPSHOT_ID,
        parent_id=None,
        nodes=(),
        flushed_at=flushed_at,
        message=INITIAL_MESSAGE,
        metadata={"__root": True},
        manifest_files=(),
    )


def _check_id(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise ValueError(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _encode_array(b: Builder, array: ArrayNodeData) -> int:
    shape = b.create_vector(
        b"".join([_DIMENSION_SHAPE.pack(d.array_length, d.chunk_length) for d in array.shape]),
        16,
        8,
    )
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
    b.start_table(3)
    b.add_offset(0, shape)
    if names:
        b.add_offset(1, names)
    b.add_offset(2, manifests)
    return b.end_table(required=(0, 2))


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Encode a snapshot as a flatbuffer (no header).

    Nodes are written sorted by path, manifest files by id and metadata items by name.

    Parameters
    ----------
    snapshot
        The snapshot to encode.

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
            tag, data = _UNION_ARRAY, _encode_array(b, node.array)
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
        value = encode_metadata_value(snapshot.metadata[name], name)
        name_ref = b.create_string(name)
        value_ref = b.create_bytes_vector(value)
        b.start_table(2)
        b.add_offset(0, name_ref)
        b.add_offset(1, value_ref)
        item_refs.append(b.end_table(required=(0, 1)))
    metadata = b.create_offset_vector(item_refs)
    manifest_files = b.create_vector(
        b"".join(
            [
                _MANIFEST_FILE_INFO.pack(
                    _check_id(info.id, 12, "manifest id"), info.size_bytes, info.num_chunk_refs
                )
                for info in sorted(snapshot.manifest_files, key=_id_of)
            ]
        ),
        32,
        8,
    )
    b.start_table(7)
    b.add_u64(3, snapshot.flushed_at)
    b.add_struct(0, _check_id(snapshot.id, 12, "snapshot id"), 1)
    if snapshot.parent_id is not None:
        b.add_struct(1, _check_id(snapshot.parent_id, 12, "parent snapshot id"), 1)
    b.add_offset(2, nodes)
    b.add_offset(4, message)
    b.add_offset(5, metadata)
    b.add_offset(6, manifest_files)
    return b.finish(b.end_table(required=(0, 2, 4, 5, 6)))


def _decode_array(t: Table, where: str) -> ArrayNodeData:
    shape_vec = required(t.vector(0, 16), f"{where}.shape")
    shape = tuple(DimensionShape(a, c) for a, c in _DIMENSION_SHAPE.iter_unpack(shape_vec.raw()))
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


def decode_snapshot(buf: bytes | memoryview) -> Snapshot:
    """Decode a snapshot flatbuffer (the content of a ``snapshots/`` object after its header).

    Parameters
    ----------
    buf
        The decompressed flatbuffer.

    Returns
    -------
    Snapshot
        The decoded snapshot, nodes sorted by path.

    Raises
    ------
    IcechunkError
        If the buffer is malformed: offsets out of range, required fields missing, invalid
        union tags, non-canonical or duplicate paths, undecodable metadata.
    """
    root = root_table(buf)
    snapshot_id = required(root.struct_bytes(0, 12), "Snapshot.id")
    parent_id = root.struct_bytes(1, 12)
    nodes_vec = required(root.vector(2, 4), "Snapshot.nodes")
    flushed_at = root.u64(3)
    message = required(root.string(4), "Snapshot.message")
    metadata_vec = required(root.vector(5, 4), "Snapshot.metadata")
    files_vec = required(root.vector(6, 32), "Snapshot.manifest_files")

    nodes = tuple(_decode_node(nodes_vec.table(i), i) for i in range(len(nodes_vec)))
    metadata: dict[str, Any] = {}
    for i in range(len(metadata_vec)):
        item = metadata_vec.table(i)
        name = required(item.string(0), f"Snapshot.metadata[{i}].name")
        value = required(item.bytes_vector(1), f"Snapshot.metadata[{i}].value")
        metadata[name] = decode_metadata_value(value)
    manifest_files = tuple(
        ManifestFileInfo(mid, size, count)
        for mid, size, count in _MANIFEST_FILE_INFO.iter_unpack(files_vec.raw())
    )
    snapshot = Snapshot(
        id=snapshot_id,
        parent_id=parent_id,
        nodes=nodes,
        flushed_at=flushed_at,
        message=message,
        metadata=metadata,
        manifest_files=manifest_files,
    )
    paths = [n.path for n in snapshot.nodes]
    for a, b in itertools.pairwise(paths):
        if a == b:
            malformed(f"snapshot {encode_id(snapshot_id)} has two nodes at path {a!r}")
    return snapshot
