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
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.ids import encode_id

if TYPE_CHECKING:
    from pyicechunk.change_set import ChangeSet
    from pyicechunk.format.snapshot import Snapshot
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

    Notes
    -----
    Metadata changed on both sides, changes to nodes the commit deleted, chunks written to an
    array whose metadata the commit changed, and new nodes that collide with committed ones are
    never resolved.

    Raises
    ------
    TypeError
        If ``on_chunk_conflict`` is not a :class:`VersionSelection`.
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
    ) -> None:
        if not isinstance(on_chunk_conflict, VersionSelection):
            raise TypeError(
                "argument 'on_chunk_conflict' must be a VersionSelection, got "
                f"{type(on_chunk_conflict).__name__}"
            )
        self._on_chunk_conflict = on_chunk_conflict
        self._fail_on_delete_of_updated_array = bool(fail_on_delete_of_updated_array)
        self._fail_on_delete_of_updated_group = bool(fail_on_delete_of_updated_group)

    def _fatal(self, conflict: Conflict) -> bool:
        kind = conflict.conflict_type
        if kind is ConflictType.ChunkDoubleUpdate:
            return self._on_chunk_conflict is VersionSelection.Fail
        if kind is ConflictType.DeleteOfUpdatedArray:
            return self._fail_on_delete_of_updated_array
        if kind is ConflictType.DeleteOfUpdatedGroup:
            return self._fail_on_delete_of_updated_group
        return kind in self._ALWAYS_FATAL

    def _solve(
        self,
        previous_change: TransactionLog,
        tip: Snapshot,
        changes: ChangeSet,
        current: Snapshot,
    ) -> ChangeSet | list[Conflict]:
        conflicts = detect_conflicts(previous_change, tip, changes, current)
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
