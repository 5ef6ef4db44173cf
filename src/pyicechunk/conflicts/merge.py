"""Resolving metadata conflicts: merged attributes and shapes, and appends along one dimension.

These are :class:`~pyicechunk.conflicts.solvers.BasicConflictSolver`'s extensions over icechunk
1.1 (``merge_metadata=True`` and ``append_dim``); its Notes state the rules.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.zarr_metadata import ArrayMeta, coords_in_grid, parse_node_metadata

if TYPE_CHECKING:
    from pyicechunk.change_set import ChangeSet
    from pyicechunk.format.snapshot import ArrayNodeData, NodeSnapshot, Snapshot
    from pyicechunk.format.transaction_log import TransactionLog
from pyicechunk.conflicts.conflict import Conflict, ConflictType, Coords, VersionSelection

__all__ = ["append_axis", "merge_metadata", "shift_appends"]


def append_axis(append_dim: str | int, array: ArrayNodeData | ArrayMeta) -> int | None:
    """The axis ``append_dim`` names in ``array``, or None when the array has no such axis.

    A name must occur exactly once in the dimension names to identify an axis.
    """
    ndim = len(array.shape)
    if isinstance(append_dim, str):
        names = list(array.dimension_names or ())
        return names.index(append_dim) if names.count(append_dim) == 1 else None
    axis = append_dim + ndim if append_dim < 0 else append_dim
    return axis if 0 <= axis < ndim else None


def shift_appends(
    previous_change: TransactionLog,
    changes: ChangeSet,
    current: Snapshot,
    landed: Snapshot,
    append_dim: str | int,
) -> tuple[ChangeSet, set[bytes]]:
    """Move the session's appends along ``append_dim`` behind the landed commit's appends.

    See the Notes of :class:`BasicConflictSolver` for the rule and its preconditions.

    Returns
    -------
    tuple of ChangeSet and set of bytes
        The change set with the appends moved (a copy when anything moved), and the ids of the
        arrays both sides appended to that cannot be moved: their metadata must not be merged.
    """
    theirs_updated = set(previous_change.updated_arrays)
    candidates = [nid for nid in changes.updated_arrays if nid in theirs_updated]
    if not candidates:
        return changes, set()
    base_nodes = {node.id: node for node in current.nodes}
    updated_arrays = dict(changes.updated_arrays)
    chunks = dict(changes.chunks)
    refused: set[bytes] = set()
    moved_any = False
    for nid in candidates:
        base = base_nodes.get(nid)
        if base is None or base.array is None:
            continue
        theirs = landed.get_node(base.path)
        if theirs is None or theirs.id != nid or theirs.array is None:
            continue
        ours = updated_arrays[nid]
        axis = append_axis(append_dim, base.array)
        if axis is None or len(ours.shape) <= axis or len(theirs.array.shape) <= axis:
            continue
        l0 = base.array.shape[axis].array_length
        l1 = theirs.array.shape[axis].array_length
        l2 = ours.shape[axis].array_length
        if not (l1 > l0 and l2 > l0):
            continue
        # The chunk grid comes from each side's Zarr metadata: a spec-2 snapshot records only
        # lengths and chunk counts, from which an empty or a short dimension's chunk length
        # cannot be told (length 0 gives 0, length 1 with chunks of 4 gives 1).
        base_meta = _array_meta(base)
        their_meta = _array_meta(theirs)
        if base_meta is None or their_meta is None:
            refused.add(nid)
            continue
        shift = _append_shift(base_meta, their_meta, ours, axis, chunks.get(nid, {}))
        if shift is None:
            refused.add(nid)
            continue
        moved = _with_length(base.path, ours, axis, l1 + l2 - l0)
        if moved is None:
            refused.add(nid)
            continue
        updated_arrays[nid] = moved
        moved_any = True
        if nid in chunks:
            chunks[nid] = {
                (*c[:axis], c[axis] + shift, *c[axis + 1 :]): p for c, p in chunks[nid].items()
            }
    if not moved_any:
        return changes, refused
    return dataclasses.replace(changes, updated_arrays=updated_arrays, chunks=chunks), refused


def _array_meta(node: NodeSnapshot) -> ArrayMeta | None:
    """The array's metadata as its ``zarr.json`` states it; None if that cannot be read."""
    try:
        parsed = parse_node_metadata(node.path, node.user_data)
    except IcechunkError:
        return None
    return parsed if isinstance(parsed, ArrayMeta) else None


def _append_shift(
    base: ArrayMeta,
    theirs: ArrayMeta,
    ours: ArrayMeta,
    axis: int,
    our_chunks: dict[Coords, Any],
) -> int | None:
    """How many chunk positions the session's appends move, or None if they cannot move."""
    if base.dimension_names != theirs.dimension_names or (
        base.dimension_names != ours.dimension_names
    ):
        return None
    if not len(base.shape) == len(theirs.shape) == len(ours.shape):
        return None
    for dim, (b, t, o) in enumerate(zip(base.shape, theirs.shape, ours.shape, strict=True)):
        if not b.chunk_length == t.chunk_length == o.chunk_length:
            return None
        if dim != axis and not b.array_length == t.array_length == o.array_length:
            return None
    c = base.shape[axis].chunk_length
    l0 = base.shape[axis].array_length
    l1 = theirs.shape[axis].array_length
    if l0 % c or l1 % c:
        return None
    first = l0 // c
    if any(len(coords) != len(base.shape) or coords[axis] < first for coords in our_chunks):
        return None
    return (l1 - l0) // c


def _with_length(path: str, meta: ArrayMeta, axis: int, length: int) -> ArrayMeta | None:
    """``meta`` with its length along ``axis`` set, zarr.json rewritten; None if unreadable."""
    doc = _load_object(meta.user_data)
    if doc is None or not isinstance(doc.get("shape"), list) or len(doc["shape"]) <= axis:
        return None
    doc["shape"][axis] = length
    parsed = parse_node_metadata(path, json.dumps(doc, indent=2, allow_nan=True).encode())
    assert isinstance(parsed, ArrayMeta)
    return parsed


_MISSING: Any = object()


def merge_metadata(
    conflicts: list[Conflict],
    changes: ChangeSet,
    current: Snapshot,
    on_collision: VersionSelection,
    their_version: Callable[[NodeSnapshot], Snapshot | None],
) -> tuple[ChangeSet, list[Conflict]]:
    """Settle the metadata conflicts that ``BasicConflictSolver`` merges.

    ``their_version``, given a node of ``current``, names the snapshot holding the commit's
    version of it, or None to leave the node's conflicts alone.

    Returns
    -------
    tuple of ChangeSet and list of Conflict
        The change set carrying the merged metadata (a copy when anything changed) and the
        conflicts that remain, in their original order.
    """
    updated_arrays = dict(changes.updated_arrays)
    updated_groups = dict(changes.updated_groups)
    merged_docs: dict[bytes, bytes] = {}
    solved: set[int] = set()

    def sides(conflict: Conflict) -> tuple[NodeSnapshot, NodeSnapshot] | None:
        base = current.get_node(conflict.path)
        source = None if base is None else their_version(base)
        if base is None or source is None:
            return None
        theirs = source.get_node(conflict.path)
        if theirs is None or not base.id == theirs.id == conflict._node_id:
            return None
        return base, theirs

    for i, conflict in enumerate(conflicts):
        if conflict.conflict_type is not ConflictType.ZarrMetadataDoubleUpdate:
            continue
        nid = conflict._node_id
        found = sides(conflict)
        if nid is None or found is None:
            continue
        base, theirs = found
        ours_meta = updated_arrays.get(nid)
        ours = ours_meta.user_data if ours_meta is not None else updated_groups[nid]
        merged = _merge_documents(base.user_data, ours, theirs.user_data, on_collision)
        if merged is None:
            continue
        if merged is not ours:
            if ours_meta is not None:
                meta = parse_node_metadata(conflict.path, merged)
                assert isinstance(meta, ArrayMeta)
                updated_arrays[nid] = meta
            else:
                updated_groups[nid] = merged
        merged_docs[nid] = merged
        solved.add(i)

    for i, conflict in enumerate(conflicts):
        if conflict.conflict_type is not ConflictType.ChunksUpdatedInUpdatedArray:
            continue
        nid = conflict._node_id
        assert nid is not None
        doc = merged_docs.get(nid)
        if doc is None and nid not in changes.updated_arrays:
            # only the commit changed the metadata: merging it with the untouched base checks
            # that nothing but attributes and shape moved
            found = sides(conflict)
            if found is not None:
                base, theirs = found
                doc = _merge_documents(
                    base.user_data, base.user_data, theirs.user_data, on_collision
                )
        if doc is None:
            continue
        meta = parse_node_metadata(conflict.path, doc)
        if isinstance(meta, ArrayMeta) and all(
            coords_in_grid(c, meta.shape) and len(c) == len(meta.shape) for c in changes.chunks[nid]
        ):
            solved.add(i)

    if not solved:
        return changes, conflicts
    out = dataclasses.replace(changes, updated_arrays=updated_arrays, updated_groups=updated_groups)
    return out, [c for i, c in enumerate(conflicts) if i not in solved]


def _load_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _canonical(value: Any) -> str:
    """A text that is equal for equal JSON values (NaN included, key order ignored)."""
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _merge_documents(
    base: bytes, ours: bytes, theirs: bytes, on_collision: VersionSelection
) -> bytes | None:
    """Three-way merge of ``zarr.json`` documents; None when the rules leave a conflict.

    Returns ``ours`` itself (the same object) when the merge changes nothing in it.
    """
    docs = [_load_object(d) for d in (base, ours, theirs)]
    b, o, t = docs
    if b is None or o is None or t is None:
        return None
    is_array = o.get("node_type") == "array"
    free = {"attributes", "shape"} if is_array else {"attributes"}
    fixed_o = {k: _canonical(v) for k, v in o.items() if k not in free}
    fixed_t = {k: _canonical(v) for k, v in t.items() if k not in free}
    if fixed_o != fixed_t:
        return None

    attrs = [d.get("attributes", {}) for d in (b, o, t)]
    if not all(isinstance(a, dict) for a in attrs):
        return None
    merged_attrs = _merge_attributes(attrs[0], attrs[1], attrs[2], on_collision)
    if merged_attrs is None:
        return None

    merged: dict[str, Any] = {}
    for key, value in o.items():
        merged[key] = merged_attrs if key == "attributes" else value
    if "attributes" not in o and merged_attrs:
        merged["attributes"] = merged_attrs
    if is_array:
        shape = _merge_shapes(b.get("shape"), o.get("shape"), t.get("shape"))
        if shape is None:
            return None
        merged["shape"] = shape
    if _canonical(merged) == _canonical(o):
        return ours
    # zarr's own serialisation of zarr.json
    return json.dumps(merged, indent=2, allow_nan=True).encode()


def _merge_attributes(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    on_collision: VersionSelection,
) -> dict[str, Any] | None:
    """Key-by-key three-way merge; None if a key both sides changed differently must fail."""
    values: dict[str, Any] = {}
    for key in [*ours, *(k for k in theirs if k not in ours), *(k for k in base if k not in ours)]:
        if key in values:
            continue
        b, o, t = (d.get(key, _MISSING) for d in (base, ours, theirs))
        cb, co, ct = (None if v is _MISSING else _canonical(v) for v in (b, o, t))
        if co == ct or ct == cb:
            value = o
        elif co == cb:
            value = t
        elif on_collision is VersionSelection.UseOurs:
            value = o
        elif on_collision is VersionSelection.UseTheirs:
            value = t
        else:
            return None
        values[key] = value
    return {k: v for k, v in values.items() if v is not _MISSING}


def _merge_shapes(base: Any, ours: Any, theirs: Any) -> list[int] | None:
    """The merged ``shape`` list, or None when the resizes do not combine."""
    if not (isinstance(base, list) and isinstance(ours, list) and isinstance(theirs, list)):
        return None
    if not len(base) == len(ours) == len(theirs):
        return None
    if ours == base:
        return theirs
    if theirs == base or ours == theirs:
        return ours
    changed_ours = [i for i, (o, b) in enumerate(zip(ours, base, strict=True)) if o != b]
    changed_theirs = [i for i, (t, b) in enumerate(zip(theirs, base, strict=True)) if t != b]
    if changed_ours != changed_theirs:
        return None
    return [max(o, t) for o, t in zip(ours, theirs, strict=True)]
