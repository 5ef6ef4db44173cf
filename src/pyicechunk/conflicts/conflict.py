"""What a conflict is: its kinds, and which side's version wins (icechunk's native enums)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from pyicechunk._readonly import ReadOnly

if TYPE_CHECKING:
    pass

__all__ = ["Conflict", "ConflictType", "Coords", "VersionSelection"]

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
    MoveOperationCannotBeRebased: ClassVar[ConflictType]

    def __repr__(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self._text


def _install(cls: type[_Variant], names: Iterable[tuple[str, str]], start: int = 0) -> None:
    for index, (name, text) in enumerate(names, start):
        setattr(cls, name, cls._make(index, name, text))


_install(VersionSelection, [(n, n) for n in ("Fail", "UseOurs", "UseTheirs")])
# The reference numbers conflict types from 1 (int(ConflictType.NewNodeConflictsWithExistingNode)
# is 1 in icechunk 1.1 and 2.x), version selections from 0.
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
        # icechunk 2.x: a session is never rebased over a commit that moved nodes.
        ("MoveOperationCannotBeRebased", "Move operation cannot be rebased"),
    ],
    start=1,
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

    conflict_type = ReadOnly[ConflictType]("_type", "The kind of conflict.")

    path = ReadOnly[str]("_path", "The absolute path of the conflicting node.")

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
