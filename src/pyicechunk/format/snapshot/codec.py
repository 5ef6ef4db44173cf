"""The snapshot flatbuffer (FORMAT-V1 §4, FORMAT-V2 §7): :func:`encode_snapshot` and
:func:`decode_snapshot`.

The tables both spec versions share are written and read here; the parts that differ come
from the version's :class:`~pyicechunk.format.snapshot.layout.SnapshotLayout`. As in the
reference, the decoder takes each v2 list whenever it is present and the v1 list otherwise,
whatever the header says; only the parent and the metadata values follow the header's spec
byte.
"""

from __future__ import annotations

import itertools
import struct
from operator import attrgetter
from typing import Any

import pyicechunk.format.snapshot.v1 as v1
import pyicechunk.format.snapshot.v2 as v2
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, Table, malformed, required, root_table
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.ids import check_id_length, encode_id
from pyicechunk.format.metadata_items import read_metadata_items, write_metadata_items
from pyicechunk.format.snapshot.layout import SnapshotLayout, layout
from pyicechunk.format.snapshot.metadata import encode_metadata_value
from pyicechunk.format.snapshot.model import (
    ArrayNodeData,
    DimensionShape,
    ManifestFileInfo,
    ManifestRef,
    NodeSnapshot,
    Snapshot,
    validate_path,
)

_CHUNK_INDEX_RANGE = struct.Struct("<II")

_UNION_ARRAY = 1
_UNION_GROUP = 2

_path_of = attrgetter("path")
_id_of = attrgetter("id")


def _encode_array(b: Builder, array: ArrayNodeData, lay: SnapshotLayout) -> int:
    shape, shape_v2 = lay.encode_shape(b, array.shape)
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
        b.add_struct(0, check_id_length(ref.object_id, 12, "ManifestRef.object_id"), 1)
        b.add_offset(1, extents)
        ref_refs.append(b.end_table(required=(0, 1)))
    manifests = b.create_offset_vector(ref_refs)
    b.start_table(lay.array_slots)
    b.add_offset(0, shape)
    if names:
        b.add_offset(1, names)
    b.add_offset(2, manifests)
    if shape_v2:
        b.add_offset(3, shape_v2)
    return b.end_table(required=(0, 2))


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
        The snapshot flatbuffer (file identifier ``Ichk``).

    Raises
    ------
    IcechunkError
        If a node path is not canonical.
    TypeError
        If a commit-metadata value is not JSON-compatible.
    ValueError
        If an id has the wrong length, ``flushed_at`` is out of range or ``spec_version`` is
        not supported.
    """
    if not 0 <= snapshot.flushed_at < 2**63:
        raise ValueError(f"flushed_at {snapshot.flushed_at} is outside the range of the format")
    lay = layout(spec_version)
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
            tag, data = _UNION_ARRAY, _encode_array(b, node.array, lay)
        b.start_table(5)
        b.add_struct(0, check_id_length(node.id, 8, "node id"), 1)
        b.add_offset(1, path)
        b.add_offset(2, user_data)
        b.add_u8(3, tag)
        b.add_offset(4, data)
        node_refs.append(b.end_table(required=(0, 1, 2, 4)))
    nodes = b.create_offset_vector(node_refs)
    message = b.create_string(snapshot.message)
    metadata = write_metadata_items(
        b,
        (
            (name, encode_metadata_value(snapshot.metadata[name], name, spec_version))
            for name in sorted(snapshot.metadata)
        ),
    )
    files, files_v2 = lay.encode_manifest_files(b, sorted(snapshot.manifest_files, key=_id_of))
    b.start_table(lay.snapshot_slots)
    b.add_u64(3, snapshot.flushed_at)
    b.add_struct(0, check_id_length(snapshot.id, 12, "snapshot id"), 1)
    if snapshot.parent_id is not None and lay.stores_parent:
        b.add_struct(1, check_id_length(snapshot.parent_id, 12, "parent snapshot id"), 1)
    b.add_offset(2, nodes)
    b.add_offset(4, message)
    b.add_offset(5, metadata)
    b.add_offset(6, files)
    if files_v2:
        b.add_offset(7, files_v2)
    return b.finish(b.end_table(required=(0, 2, 4, 5, 6)))


def _decode_shape(t: Table, where: str) -> tuple[DimensionShape, ...]:
    dims = t.vector(3, 4)
    if dims is not None:
        return v2.decode_shape(dims)
    return v1.decode_shape(required(t.vector(0, 16), f"{where}.shape"), where)


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
    files = root.vector(7, 4)
    if files is not None:
        return v2.decode_manifest_files(files)
    return v1.decode_manifest_files(required(root.vector(6, 32), "Snapshot.manifest_files"))


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
    ValueError
        If ``spec_version`` is not supported.
    """
    lay = layout(spec_version)
    root = root_table(buf)
    snapshot_id = required(root.struct_bytes(0, 12), "Snapshot.id")
    parent_id = root.struct_bytes(1, 12) if lay.stores_parent else None
    nodes_vec = required(root.vector(2, 4), "Snapshot.nodes")
    flushed_at = root.u64(3)
    message = required(root.string(4), "Snapshot.message")
    metadata_vec = required(root.vector(5, 4), "Snapshot.metadata")
    # Still required in spec 2, where it is written empty.
    required(root.vector(6, 32), "Snapshot.manifest_files")

    nodes = tuple(_decode_node(nodes_vec.table(i), i) for i in range(len(nodes_vec)))
    metadata: dict[str, Any] = {}
    for name, value in read_metadata_items(metadata_vec, "Snapshot.metadata"):
        metadata[name] = lay.decode_value(value)
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
