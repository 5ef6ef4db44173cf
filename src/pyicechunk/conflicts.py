"""Conflict detection and resolution for rebase (API-1.1 §8).

A rebase replays a session's change set over each commit that landed on the branch after the
session's base, oldest first. For every such commit a :class:`ConflictSolver` compares the change
set with that commit's transaction log and either returns a change set that can be applied on
top of it or reports the :class:`Conflict` objects it cannot resolve.

As in icechunk 1.1, node paths of new-node and deletion checks are looked up in the branch tip,
and paths of conflicting node ids in the snapshot the change set is currently based on.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id
from pyicechunk.format.zarr_metadata import ArrayMeta, coords_in_grid, parse_node_metadata

if TYPE_CHECKING:
    from pyicechunk.change_set import ChangeSet
    from pyicechunk.format.snapshot import ArrayNodeData, NodeSnapshot, Snapshot
    from pyicechunk.format.transaction_log import TransactionLog

__all__ = [
    "BasicConflictSolver",
    "Conflict",
    "ConflictDetector",
    "ConflictSolver",
    "ConflictType",
    "VersionSelection",
]

Coords = tuple[int, ...]


class _Variant:
    """A member of a closed set of named values, shaped like the reference's native enums.

    Members convert with ``int()``, compare by identity, are unhashable and cannot be created
    from Python; the reference's enums behave the same way.
    """

    __slots__ = ("_index", "_name", "_text")
    _index: int
    _name: str
    _text: str
    __hash__ = None  # type: ignore[assignment]
    _members: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: object, **kwargs: object) -> _Variant:
        raise TypeError(f"cannot create '{cls.__name__}' instances")

    @classmethod
    def _make(cls, index: int, name: str, text: str) -> _Variant:
        member = object.__new__(cls)
        member._index = index
        member._name = name
        member._text = text
        return member

    def __int__(self) -> int:
        return self._index

    def __eq__(self, other: object) -> bool:
        return other is self

    def __reduce__(self) -> tuple[object, ...]:
        return (getattr, (type(self), self._name))


class VersionSelection(_Variant):
    """Which side wins a chunk written both by the session and by a landed commit.

    ``Fail`` (0) reports the conflict, ``UseOurs`` (1) keeps the session's chunk and
    ``UseTheirs`` (2) keeps the committed chunk.
    """

    __slots__ = ()
    Fail: ClassVar[VersionSelection]
    UseOurs: ClassVar[VersionSelection]
    UseTheirs: ClassVar[VersionSelection]

    def __repr__(self) -> str:
        return f"VersionSelection.{self._name}"


class ConflictType(_Variant):
    """The kind of a :class:`Conflict`; ``str()`` gives a sentence, ``repr()`` the name."""

    __slots__ = ()
    NewNodeConflictsWithExistingNode: ClassVar[ConflictType]
    NewNodeInInvalidGroup: ClassVar[ConflictType]
    ZarrMetadataDoubleUpdate: ClassVar[ConflictType]
    ZarrMetadataUpdateOfDeletedArray: ClassVar[ConflictType]
    ZarrMetadataUpdateOfDeletedGroup: ClassVar[ConflictType]
    ChunkDoubleUpdate: ClassVar[ConflictType]
    ChunksUpdatedInDeletedArray: ClassVar[ConflictType]
    ChunksUpdatedInUpdatedArray: ClassVar[ConflictType]
    DeleteOfUpdatedArray: ClassVar[ConflictType]
    DeleteOfUpdatedGroup: ClassVar[ConflictType]

    def __repr__(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self._text


def _install(cls: type[_Variant], names: Iterable[tuple[str, str]]) -> None:
    for index, (name, text) in enumerate(names):
        setattr(cls, name, cls._make(index, name, text))


_install(VersionSelection, [(n, n) for n in ("Fail", "UseOurs", "UseTheirs")])
_install(
    ConflictType,
    [
        ("NewNodeConflictsWithExistingNode", "New node conflicts with existing node"),
        ("NewNodeInInvalidGroup", "New node in invalid group"),
        ("ZarrMetadataDoubleUpdate", "Zarr metadata double update"),
        ("ZarrMetadataUpdateOfDeletedArray", "Zarr metadata update of deleted array"),
        ("ZarrMetadataUpdateOfDeletedGroup", "Zarr metadata update of deleted group"),
        ("ChunkDoubleUpdate", "Chunk double update"),
        ("ChunksUpdatedInDeletedArray", "Chunks updated in deleted array"),
        ("ChunksUpdatedInUpdatedArray", "Chunks updated in updated array"),
        ("DeleteOfUpdatedArray", "Delete of updated array"),
        ("DeleteOfUpdatedGroup", "Delete of updated group"),
    ],
)


class Conflict:
    """One change of the session that clashes with a landed commit (read-only).

    Attributes
    ----------
    conflict_type
        What kind of clash it is.
    path
        The absolute path of the node concerned.
    conflicted_chunks
        For ``ChunkDoubleUpdate``, the coordinates written by both sides; otherwise None.
    """

    __slots__ = ("_chunks", "_node_id", "_path", "_type")
    _chunks: list[Coords] | None
    _node_id: bytes | None
    _path: str
    _type: ConflictType

    def __new__(cls, *args: object, **kwargs: object) -> Conflict:
        raise TypeError(f"cannot create '{cls.__name__}' instances")

    @classmethod
    def _make(
        cls,
        conflict_type: ConflictType,
        path: str,
        node_id: bytes | None = None,
        chunks: list[Coords] | None = None,
    ) -> Conflict:
        conflict = object.__new__(cls)
        conflict._type = conflict_type
        conflict._path = path
        conflict._node_id = node_id
        conflict._chunks = chunks
        return conflict

    @property
    def conflict_type(self) -> ConflictType:
        """The kind of conflict."""
        return self._type

    @property
    def path(self) -> str:
        """The absolute path of the conflicting node."""
        return self._path

    @property
    def conflicted_chunks(self) -> list[list[int]] | None:
        """Chunk coordinates written on both sides (chunk conflicts only)."""
        if self._chunks is None:
            return None
        return [list(c) for c in self._chunks]

    def __repr__(self) -> str:
        return f"Conflict({self._type!r}, path={self._path})"

    def __str__(self) -> str:
        return f"{self._path}: {self._type}"


class ConflictSolver(abc.ABC):
    """Base of the strategies that :meth:`Session.rebase` accepts (cannot be instantiated)."""

    @abc.abstractmethod
    def _solve(
        self,
        previous_change: TransactionLog,
        tip: Snapshot,
        changes: ChangeSet,
        current: Snapshot,
        landed: Snapshot,
    ) -> ChangeSet | list[Conflict]:
        """Reconcile ``changes`` with one landed commit.

        Parameters
        ----------
        previous_change
            The transaction log of the landed commit.
        tip
            The branch tip the rebase moves to.
        changes
            The session's change set; it is never modified.
        current
            The snapshot ``changes`` is based on before this step.
        landed
            The snapshot the landed commit created (``current``'s successor on the branch).

        Returns
        -------
        ChangeSet or list of Conflict
            The change set to carry over this commit, or the conflicts that stop the rebase.
        """


class ConflictDetector(ConflictSolver):
    """Resolve nothing: any conflict with a landed commit fails the rebase."""

    def _solve(
        self,
        previous_change: TransactionLog,
        tip: Snapshot,
        changes: ChangeSet,
        current: Snapshot,
        landed: Snapshot,
    ) -> ChangeSet | list[Conflict]:
        conflicts = detect_conflicts(previous_change, tip, changes, current)
        return conflicts if conflicts else changes


class BasicConflictSolver(ConflictSolver):
    """Resolve chunk conflicts and deletions of updated nodes by simple rules.

    Parameters
    ----------
    on_chunk_conflict
        Which version of a chunk written by both sides to keep, or ``Fail``.
    fail_on_delete_of_updated_array
        Fail when the session deletes an array the landed commit changed; by default the
        deletion wins.
    fail_on_delete_of_updated_group
        The same for groups.
    merge_metadata
        Also resolve ``zarr.json`` changed on both sides, and chunk writes into an array whose
        metadata the commit changed, by the rules below (an extension: icechunk 1.1 never
        resolves these). Off by default, which behaves like the reference.
    append_dim
        Settle concurrent appends along this dimension by placing the session's rows after the
        committed ones (see below; an extension as well). Either a name from the arrays'
        ``dimension_names`` or an axis index (negative counts from the end). Arrays that have
        this dimension are also merged by the ``merge_metadata`` rules. None (the default)
        turns the rule off.

    Notes
    -----
    Changes to nodes the commit deleted and new nodes that collide with committed ones are never
    resolved. Without ``merge_metadata`` neither are metadata changed on both sides nor chunks
    written to an array whose metadata the commit changed.

    With ``merge_metadata=True`` a node whose ``zarr.json`` both sides changed is merged against
    the version the session started from (the base):

    * Everything but ``attributes`` (and, for arrays, ``shape``) must be equal on both sides:
      node type, data type, chunk grid, codecs, fill value, dimension names, storage
      transformers and so on. Otherwise the conflict stays.
    * Attributes are merged key by key. A key changed (added, modified or removed) on one side
      only takes that side's value; a key changed on both sides to different values collides
      and ``on_chunk_conflict`` decides: ``UseOurs`` keeps the session's value, ``UseTheirs``
      the committed one, ``Fail`` keeps the conflict.
    * A shape changed on one side only takes that side's shape. When both sides resized, they
      must have changed the same dimensions (otherwise the conflict stays) and each such
      dimension keeps the larger length. Chunks the commit truncated away read as the fill
      value in the grown region.
    * The merged document keeps the session's key order (keys only the commit added follow)
      and is written as zarr writes it, as JSON with a two-space indent; when it equals the
      session's document the session's bytes are kept as they were.

    Chunks the session wrote into an array whose metadata only the commit changed are kept when
    the commit's change passes the same equality test against the base (only attributes or
    shape differ) and every written chunk lies inside the resulting shape.

    Two appends from the same base write the same chunk coordinates, so merging their
    metadata alone does not merge their data: without ``append_dim`` those chunks are a
    ``ChunkDoubleUpdate`` that ``on_chunk_conflict`` settles, and ``UseOurs`` or ``UseTheirs``
    keep only one side's rows.

    With ``append_dim`` set, an array whose length along that dimension both the session and
    the landed commit grew from the same base length ``L0`` (the commit to ``L1``, the session
    to ``L2``) is taken as two appends, and the session's rows go after the committed ones:

    * every chunk the session wrote or deleted in the array moves ``(L1 - L0) / c`` positions
      along the dimension, ``c`` being the length of the chunk grid of ``zarr.json`` along it
      (for a sharded array that is the shard length);
    * the session's length along the dimension becomes ``L1 + (L2 - L0)`` (its ``zarr.json``
      is rewritten like a merged one), and the rest of the document is merged by the rules
      above.

    This needs ``L0`` and ``L1`` to be multiples of ``c`` (only whole chunks can move; a partly
    filled last chunk would need re-encoding), every chunk the session changed in the array to
    lie at or after position ``L0 / c`` along the dimension (the session only appended), and
    the chunk grid, the dimension names and the length of every other dimension to be the same
    in all three versions. Otherwise the array's ``ZarrMetadataDoubleUpdate`` stays, together
    with the ``ChunksUpdatedInUpdatedArray`` and ``ChunkDoubleUpdate`` conflicts it brings,
    whatever ``on_chunk_conflict`` says: keeping the larger shape would lose one side's rows.
    Arrays only the session grew, or only the commit grew, follow the metadata rules above.
    When several commits landed, each one moves the session's rows again, so they end up after
    all the committed appends, in their own order.

    Raises
    ------
    TypeError
        If ``on_chunk_conflict`` is not a :class:`VersionSelection`, or ``append_dim`` is
        neither a string, an integer nor None.

    Examples
    --------
    >>> solver = BasicConflictSolver(
    ...     on_chunk_conflict=VersionSelection.Fail, merge_metadata=True
    ... )
    >>> appends = BasicConflictSolver(on_chunk_conflict=VersionSelection.Fail, append_dim="time")
    """

    _ALWAYS_FATAL: ClassVar[tuple[ConflictType, ...]] = (
        ConflictType.NewNodeConflictsWithExistingNode,
        ConflictType.NewNodeInInvalidGroup,
        ConflictType.ZarrMetadataDoubleUpdate,
        ConflictType.ZarrMetadataUpdateOfDeletedArray,
        ConflictType.ZarrMetadataUpdateOfDeletedGroup,
        ConflictType.ChunksUpdatedInDeletedArray,
        ConflictType.ChunksUpdatedInUpdatedArray,
    )

    def __init__(
        self,
        *,
        on_chunk_conflict: VersionSelection = VersionSelection.UseOurs,
        fail_on_delete_of_updated_array: bool = False,
        fail_on_delete_of_updated_group: bool = False,
        merge_metadata: bool = False,
        append_dim: str | int | None = None,
    ) -> None:
        if not isinstance(on_chunk_conflict, VersionSelection):
            raise TypeError(
                "argument 'on_chunk_conflict' must be a VersionSelection, got "
                f"{type(on_chunk_conflict).__name__}"
            )
        self._on_chunk_conflict = on_chunk_conflict
        self._fail_on_delete_of_updated_array = bool(fail_on_delete_of_updated_array)
        self._fail_on_delete_of_updated_group = bool(fail_on_delete_of_updated_group)
        self._merge_metadata = bool(merge_metadata)
        if append_dim is not None and (
            isinstance(append_dim, bool) or not isinstance(append_dim, str | int)
        ):
            raise TypeError(
                "argument 'append_dim' must be a dimension name (str), an axis index (int) or "
                f"None, got {type(append_dim).__name__}"
            )
        self._append_dim = append_dim

    def _fatal(self, conflict: Conflict) -> bool:
        kind = conflict.conflict_type
        if kind is ConflictType.ChunkDoubleUpdate:
            return self._on_chunk_conflict is VersionSelection.Fail
        if kind is ConflictType.DeleteOfUpdatedArray:
            return self._fail_on_delete_of_updated_array
        if kind is ConflictType.DeleteOfUpdatedGroup:
            return self._fail_on_delete_of_updated_group
        return kind in self._ALWAYS_FATAL

    def _their_version(
        self, base: NodeSnapshot, tip: Snapshot, landed: Snapshot, refused: set[bytes]
    ) -> Snapshot | None:
        """Where to read the commit's version of ``base`` for a metadata merge; None: no merge.

        Arrays the append rule covers are followed commit by commit because their lengths add
        up; the plain ``merge_metadata`` rule compares with the branch tip, so that over several
        commits each resized length is weighed against the final one.
        """
        if base.id in refused:
            return None
        if (
            self._append_dim is not None
            and base.array is not None
            and _append_axis(self._append_dim, base.array) is not None
        ):
            return landed
        return tip if self._merge_metadata else None

    def _solve(
        self,
        previous_change: TransactionLog,
        tip: Snapshot,
        changes: ChangeSet,
        current: Snapshot,
        landed: Snapshot,
    ) -> ChangeSet | list[Conflict]:
        refused: set[bytes] = set()
        if self._append_dim is not None:
            changes, refused = _shift_appends(
                previous_change, changes, current, landed, self._append_dim
            )
        conflicts = detect_conflicts(previous_change, tip, changes, current)
        if conflicts and (self._merge_metadata or self._append_dim is not None):
            changes, conflicts = _merge_metadata(
                conflicts,
                changes,
                current,
                self._on_chunk_conflict,
                lambda base: self._their_version(base, tip, landed, refused),
            )
        if not conflicts:
            return changes
        if any(self._fatal(c) for c in conflicts):
            return conflicts
        if self._on_chunk_conflict is not VersionSelection.UseTheirs:
            # our chunk writes and our deletions simply override what landed
            return changes
        chunks = dict(changes.chunks)
        for conflict in conflicts:
            if conflict.conflict_type is not ConflictType.ChunkDoubleUpdate:
                continue
            assert conflict._node_id is not None and conflict._chunks is not None
            lost = set(conflict._chunks)
            kept = {c: p for c, p in chunks[conflict._node_id].items() if c not in lost}
            if kept:
                chunks[conflict._node_id] = kept
            else:
                del chunks[conflict._node_id]
        return dataclasses.replace(changes, chunks=chunks)


def detect_conflicts(
    previous_change: TransactionLog,
    tip: Snapshot,
    changes: ChangeSet,
    current: Snapshot,
) -> list[Conflict]:
    """Every conflict between ``changes`` and one landed commit, in the reference's order.

    Parameters
    ----------
    previous_change
        The landed commit's transaction log.
    tip
        The branch tip (where new nodes and deleted paths are looked up).
    changes
        The session's change set.
    current
        The snapshot ``changes`` is based on (where conflicting node ids get their paths).

    Returns
    -------
    list of Conflict
        Empty when the change set applies cleanly over the commit.

    Raises
    ------
    IcechunkError
        If a conflicting node id has no path in ``current`` (a damaged change set).
    """
    out: list[Conflict] = []
    deleted_paths = set(changes.deleted_groups) | set(changes.deleted_arrays)
    new_paths = sorted([*changes.new_groups, *changes.new_arrays])

    for path in new_paths:
        if path not in deleted_paths and tip.get_node(path) is not None:
            out.append(Conflict._make(ConflictType.NewNodeConflictsWithExistingNode, path))
    for path in new_paths:
        parent = _closest_array_ancestor(tip, path)
        if parent is not None:
            out.append(Conflict._make(ConflictType.NewNodeInInvalidGroup, parent))

    paths = {node.id: node.path for node in current.nodes}

    def path_of(node_id: bytes) -> str:
        path = paths.get(node_id)
        if path is None:
            raise IcechunkError(
                f"rebase failed: node {node_id.hex()} changed by this session has "
                f"no path in snapshot {encode_id(current.id)}; the session's changes are damaged"
            )
        return path

    def by_id(kind: ConflictType, ours: Iterable[bytes], theirs: Iterable[bytes]) -> None:
        landed = set(theirs)
        hits = [(path_of(nid), nid) for nid in ours if nid in landed]
        for path, nid in sorted(hits):
            out.append(Conflict._make(kind, path, nid))

    tx = previous_change
    by_id(ConflictType.ZarrMetadataDoubleUpdate, changes.updated_arrays, tx.updated_arrays)
    by_id(ConflictType.ZarrMetadataDoubleUpdate, changes.updated_groups, tx.updated_groups)
    by_id(ConflictType.ZarrMetadataUpdateOfDeletedArray, changes.updated_arrays, tx.deleted_arrays)
    by_id(ConflictType.ZarrMetadataUpdateOfDeletedGroup, changes.updated_groups, tx.deleted_groups)
    by_id(ConflictType.ChunksUpdatedInDeletedArray, changes.chunks, tx.deleted_arrays)
    by_id(ConflictType.ChunksUpdatedInUpdatedArray, changes.chunks, tx.updated_arrays)

    double: list[Conflict] = []
    for nid, ours in changes.chunks.items():
        theirs = tx.updated_chunks.get(nid)
        if theirs is None or not len(theirs):
            continue
        both = _common_coords(list(ours), theirs)
        if both:
            double.append(Conflict._make(ConflictType.ChunkDoubleUpdate, path_of(nid), nid, both))
    out.extend(sorted(double, key=lambda c: c.path))

    updated_arrays = set(tx.updated_arrays)
    for path in sorted(changes.deleted_arrays):
        node = tip.get_node(path)
        if node is not None and (node.id in updated_arrays or node.id in tx.updated_chunks):
            out.append(Conflict._make(ConflictType.DeleteOfUpdatedArray, path, node.id))
    updated_groups = set(tx.updated_groups)
    for path in sorted(changes.deleted_groups):
        node = tip.get_node(path)
        if node is not None and node.id in updated_groups:
            out.append(Conflict._make(ConflictType.DeleteOfUpdatedGroup, path, node.id))
    return out


def _common_coords(ours: list[Coords], theirs: np.ndarray) -> list[Coords]:
    """The coordinates in both ``ours`` and the ``(n, ndim)`` array ``theirs``, sorted.

    Rows are compared as opaque byte strings so that large logs are matched without a Python
    loop over every committed chunk.
    """
    ndim = theirs.shape[1]
    if ndim == 0:
        return [c for c in ours if c == ()]
    mine = np.array(ours, dtype=np.uint32).reshape(len(ours), ndim)
    row = np.dtype((np.void, 4 * ndim))
    landed = np.ascontiguousarray(theirs, dtype=np.uint32).view(row).ravel()
    hit = np.isin(np.ascontiguousarray(mine).view(row).ravel(), landed)
    return sorted(c for c, h in zip(ours, hit.tolist(), strict=True) if h)


def _closest_array_ancestor(snapshot: Snapshot, path: str) -> str | None:
    """The nearest strict ancestor of ``path`` that is an array in ``snapshot``, if any."""
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        node = snapshot.get_node(path)
        if node is not None and node.array is not None:
            return path
    return None


def _append_axis(append_dim: str | int, array: ArrayNodeData | ArrayMeta) -> int | None:
    """The axis ``append_dim`` names in ``array``, or None when the array has no such axis.

    A name must occur exactly once in the dimension names to identify an axis.
    """
    ndim = len(array.shape)
    if isinstance(append_dim, str):
        names = list(array.dimension_names or ())
        return names.index(append_dim) if names.count(append_dim) == 1 else None
    axis = append_dim + ndim if append_dim < 0 else append_dim
    return axis if 0 <= axis < ndim else None


def _shift_appends(
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
        axis = _append_axis(append_dim, base.array)
        if axis is None or len(ours.shape) <= axis or len(theirs.array.shape) <= axis:
            continue
        l0 = base.array.shape[axis].array_length
        l1 = theirs.array.shape[axis].array_length
        l2 = ours.shape[axis].array_length
        if not (l1 > l0 and l2 > l0):
            continue
        shift = _append_shift(base.array, theirs.array, ours, axis, chunks.get(nid, {}))
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


def _append_shift(
    base: ArrayNodeData,
    theirs: ArrayNodeData,
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


def _merge_metadata(
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
