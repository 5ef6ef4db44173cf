"""The session's view of nodes: its base snapshot with its change set applied over it.

A session state is the pair (base snapshot, change set). These functions read a node, or every
node below a path, from such a pair, and check a stored ``zarr.json`` against what the snapshot
records for its node before a reader gets it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from zarr.core.group import GroupMetadata
from zarr.core.metadata import ArrayV3Metadata

from pyicechunk.change_set import ChangeSet
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.snapshot import DimensionShape, ManifestRef, NodeSnapshot, Snapshot
from pyicechunk.format.zarr_metadata import ArrayMeta, parse_node_metadata

__all__ = [
    "NodeInfo",
    "SessionState",
    "apply_updates",
    "check_stored_metadata",
    "is_at_or_below",
    "node_at",
    "nodes_below",
]

SessionState = tuple[Snapshot, ChangeSet]
"""(base snapshot, change set): replaced as a whole, so a reader that takes it once never
mixes two states."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the session sees it (base snapshot with the change set applied)."""

    path: str
    node_id: bytes
    is_array: bool
    user_data: bytes
    shape: tuple[DimensionShape, ...] | None = None
    dimension_names: tuple[str | None, ...] | None = None
    manifests: tuple[ManifestRef, ...] = ()
    is_new: bool = False


def is_at_or_below(path: str, prefix: str) -> bool:
    """Whether node path ``path`` is ``prefix`` or lies below it."""
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")


def node_at(state: SessionState, path: str) -> NodeInfo | None:
    """The node at ``path`` in a session state, or None."""
    base, changes = state
    new = changes.new_node(path)
    if new is not None:
        node_id, meta = new
        if isinstance(meta, ArrayMeta):
            return NodeInfo(
                path, node_id, True, meta.user_data, meta.shape, meta.dimension_names, (), True
            )
        return NodeInfo(path, node_id, False, meta, is_new=True)
    node = base.get_node(path)
    if node is None or changes.is_deleted(path, node.id):
        return None
    return apply_updates(changes, node)


def apply_updates(changes: ChangeSet, node: NodeSnapshot) -> NodeInfo:
    """A node of the base snapshot with its metadata updates from ``changes``."""
    if node.array is None:
        user_data = changes.updated_groups.get(node.id, node.user_data)
        return NodeInfo(node.path, node.id, False, user_data)
    meta = changes.updated_arrays.get(node.id)
    if meta is None:
        return NodeInfo(
            node.path,
            node.id,
            True,
            node.user_data,
            node.array.shape,
            node.array.dimension_names,
            node.array.manifests,
        )
    return NodeInfo(
        node.path,
        node.id,
        True,
        meta.user_data,
        meta.shape,
        meta.dimension_names,
        node.array.manifests,
    )


def nodes_below(state: SessionState, prefix: str, lock: threading.RLock) -> list[NodeInfo]:
    """The node at ``prefix`` and all nodes below it, sorted by path.

    ``lock`` guards the change set, which other threads may be editing.
    """
    base, changes = state
    out: list[NodeInfo] = []
    base_root = base.get_node(prefix)
    candidates: Iterable[NodeSnapshot] = base.iter_descendants(prefix)
    if base_root is not None:
        candidates = [base_root, *candidates]
    with lock:
        for node in candidates:
            if not changes.is_deleted(node.path, node.id):
                out.append(apply_updates(changes, node))
        for path in (*changes.new_groups, *changes.new_arrays):
            if is_at_or_below(path, prefix):
                info = node_at(state, path)
                assert info is not None
                out.append(info)
    out.sort(key=lambda n: n.path)
    return out


def check_stored_metadata(base: Snapshot, node: NodeInfo) -> None:
    """Refuse a node's stored ``zarr.json`` that zarr cannot read or that contradicts the node.

    The snapshot keeps the array's shape, chunk grid and dimension names beside the document;
    a document that disagrees with them, or is not a readable zarr v3 document, is damage.
    """
    fields: _NodeFields = (node.path, node.is_array, node.shape, node.dimension_names)
    try:
        skeleton = _skeleton(node.user_data)
        if skeleton is None or not _skeleton_is_valid(fields, skeleton):
            _check_document(fields, node.user_data)
    except _DamagedDocument as e:
        raise IcechunkError(
            f"the zarr.json of node {node.path} in snapshot {encode_id(base.id)} is damaged: {e}",
            kind="invalid-file-format",
        ) from None


class _DamagedDocument(Exception):
    """What is wrong with a stored document (the caller names the node and snapshot)."""


# What the snapshot records beside a node's document: path, kind, shape, dimension names.
_NodeFields = tuple[str, bool, tuple[DimensionShape, ...] | None, tuple[str | None, ...] | None]


def _check_document(fields: _NodeFields, user_data: bytes) -> None:
    path, is_array, shape, dimension_names = fields
    try:
        meta = parse_node_metadata(path, user_data)
        document = json.loads(user_data)
        if isinstance(meta, ArrayMeta):
            # zarr-python releases without rectilinear grids (3.1) cannot parse such a
            # document; zarr checks it when it opens the array.
            if meta.grid == "regular":
                ArrayV3Metadata.from_dict(document)
        else:
            GroupMetadata.from_dict(document)
    except IcechunkError as e:
        raise _DamagedDocument(e.message) from None
    except Exception as e:  # zarr's own validation: its error types vary by field
        raise _DamagedDocument(f"zarr cannot read it ({e!r})") from None
    if isinstance(meta, ArrayMeta) != is_array:
        kind = "an array" if isinstance(meta, ArrayMeta) else "a group"
        raise _DamagedDocument(f"it describes {kind}, the snapshot does not")
    if isinstance(meta, ArrayMeta) and (
        _lengths_and_counts(meta.shape) != _lengths_and_counts(shape)
        or _dimension_names(meta.dimension_names, len(meta.shape))
        != _dimension_names(dimension_names, len(meta.shape))
    ):
        raise _DamagedDocument(
            "its shape, chunk grid or dimension names differ from those the snapshot records "
            "for the array"
        )


# Every session reopening an array reads its stored document again (a commit loop: once per
# commit), and zarr's parse is most of such a read's time. A document is valid exactly when it
# is valid without its attributes (any JSON object is valid attributes, and zarr passes them
# through), and that skeleton is the same from commit to commit while the attributes change:
# its verdict is cached. An invalid skeleton (not cached as valid) sends the whole document
# through the check, which raises the error it always did.
@functools.lru_cache(maxsize=256)
def _skeleton_is_valid(fields: _NodeFields, skeleton: bytes) -> bool:
    try:
        _check_document(fields, skeleton)
    except _DamagedDocument:
        return False
    return True


_SKELETON_MAX_BYTES = 16 * 1024


def _skeleton(user_data: bytes) -> bytes | None:
    """The document without its attributes, or None to check the whole document instead."""
    try:
        doc = json.loads(user_data)
    except (ValueError, RecursionError):  # not JSON (or too deep): the check says so
        return None
    if not isinstance(doc, dict) or not isinstance(doc.pop("attributes", {}), dict):
        return None
    skeleton = json.dumps(doc).encode()
    return skeleton if len(skeleton) <= _SKELETON_MAX_BYTES else None


def _lengths_and_counts(
    shape: tuple[DimensionShape, ...] | None,
) -> tuple[tuple[int, int], ...] | None:
    # What a snapshot stores for sure: spec 2 (and 2.3.0's spec 1) back-compute the chunk
    # length from the count, so shape 9 in chunks of 4 reads back as chunks of 3.
    return None if shape is None else tuple((d.array_length, d.num_chunks) for d in shape)


def _dimension_names(names: tuple[str | None, ...] | None, ndim: int) -> tuple[str | None, ...]:
    # No names, and a null or empty name per dimension, all mean "unnamed".
    return tuple(n or None for n in names) if names is not None else (None,) * ndim
