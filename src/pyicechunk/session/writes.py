"""Recording writes: how each edit of a session changes its change set.

The caller holds the session's lock and has checked that the session is writable; these
functions only decide what the edit means against the session state (a new node or an update,
which nodes a deletion removes, whether a chunk key names a chunk of an existing array).
"""

from __future__ import annotations

from pyicechunk.exceptions import IcechunkError, KeyNotFoundError
from pyicechunk.format.ids import new_node_id
from pyicechunk.format.manifest import ChunkPayload, InlinePayload
from pyicechunk.format.snapshot import NodeSnapshot
from pyicechunk.format.zarr_metadata import ArrayMeta, GroupMeta, coords_in_grid
from pyicechunk.session.chunks import Coords
from pyicechunk.session.nodes import NodeInfo, SessionState, is_at_or_below, node_at

__all__ = ["chunk_target", "record_deletion", "record_metadata"]


def record_metadata(
    state: SessionState, path: str, data: bytes, meta: ArrayMeta | GroupMeta
) -> None:
    """A node's ``zarr.json`` was written: create the node, or update it.

    Raises
    ------
    IcechunkError
        If a node of the other kind (group or array) exists at ``path``.
    """
    changes = state[1]
    existing = node_at(state, path)
    if existing is None:
        node_id = new_node_id()
        if isinstance(meta, ArrayMeta):
            changes.new_arrays[path] = (node_id, meta)
        else:
            changes.new_groups[path] = (node_id, meta.user_data)
        changes.touched = True
        return
    if existing.is_array != isinstance(meta, ArrayMeta):
        have, want = ("an array", "a group") if existing.is_array else ("a group", "an array")
        raise IcechunkError(
            f"node already exists at `{path}`: it is {have}; delete it before writing {want} there",
            kind="node-already-exists",
        )
    if existing.user_data == data:
        return
    changes.touched = True
    if isinstance(meta, ArrayMeta):
        if existing.is_new:
            changes.new_arrays[path] = (existing.node_id, meta)
        else:
            changes.updated_arrays[existing.node_id] = meta
    else:
        assert isinstance(meta, GroupMeta)
        if existing.is_new:
            changes.new_groups[path] = (existing.node_id, meta.user_data)
        else:
            changes.updated_groups[existing.node_id] = meta.user_data


def record_deletion(state: SessionState, path: str) -> None:
    """The node at ``path`` was deleted, with everything below it."""
    base, changes = state
    for new_path in [p for p in changes.new_groups if is_at_or_below(p, path)]:
        node_id, _ = changes.new_groups.pop(new_path)
        changes.forget_node(node_id)
        changes.touched = True
    for new_path in [p for p in changes.new_arrays if is_at_or_below(p, path)]:
        node_id, _ = changes.new_arrays.pop(new_path)
        changes.forget_node(node_id)
        changes.touched = True
    base_root = base.get_node(path)
    targets: list[NodeSnapshot] = list(base.iter_descendants(path))
    if base_root is not None:
        targets.append(base_root)
    for node in targets:
        if changes.is_deleted(node.path, node.id):
            continue
        if node.array is None:
            changes.deleted_groups[node.path] = node.id
        else:
            changes.deleted_arrays[node.path] = node.id
        changes.forget_node(node.id)
        changes.touched = True


def chunk_target(
    state: SessionState, path: str, coords: Coords, payload: ChunkPayload | None = None
) -> NodeInfo:
    """The array a chunk is written to, with ``coords`` checked against its grid (and the
    chunk's ``payload``, when given, against being empty).

    Raises
    ------
    KeyNotFoundError
        If there is no node at ``path``.
    IcechunkError
        If the node is a group, the payload has length 0 (kind ``zero-length-chunk``, as
        icechunk 2.x), or ``coords`` are outside the array's grid.
    """
    node = node_at(state, path)
    if node is None:
        raise KeyNotFoundError(
            path,
            f"node not found at `{path}`: there is no array at `{path}` to hold chunk "
            f"{list(coords)}; create the array (write its zarr.json) before its chunks",
        )
    if not node.is_array:
        raise IcechunkError(f"there is not an array at `{path}`", kind="not-an-array")
    assert node.shape is not None
    if payload is not None and _payload_length(payload) == 0:
        # No chunk decodes from zero bytes: such a write could only fail when read back.
        raise IcechunkError(
            f"zero-length chunk: the payload for coordinates ChunkIndices({list(coords)}) of "
            f"the array at {node.path} has length 0. A chunk must decode to the full chunk "
            "shape, so no valid chunk is ever zero bytes long; to record that a chunk is not "
            "stored (it then reads back as the array's fill value), delete it instead",
            kind="zero-length-chunk",
        )
    if len(coords) != len(node.shape) or not coords_in_grid(coords, node.shape):
        raise IcechunkError(
            f"invalid chunk index: coordinates ChunkIndices({list(coords)}) are not valid "
            f"for array at {node.path}",
            kind="invalid-chunk-index",
        )
    return node


def _payload_length(payload: ChunkPayload) -> int:
    return len(payload.data) if isinstance(payload, InlinePayload) else payload.length
