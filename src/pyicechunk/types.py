"""Result and information types returned by repositories and sessions.

They mirror icechunk 1.1's read-only native types: :class:`Diff`, :class:`SnapshotInfo`,
:class:`ManifestFileInfo`, :class:`ChunkType`, :class:`GCSummary` and
:class:`ChunkStorageStats`, with the same fields, equality and text forms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

from pyicechunk._enum import NamedIntEnum
from pyicechunk._repr import Block, Shown, qualified
from pyicechunk._time import micros_to_datetime
from pyicechunk.format.ids import encode_id

__all__ = [
    "ChunkStorageStats",
    "ChunkType",
    "CommitMethod",
    "Diff",
    "GCSummary",
    "ManifestFileInfo",
    "SnapshotInfo",
]


class _Shown(Shown):
    """Prints as its :meth:`_block`; the block lists a dataclass's fields in order unless a
    class says otherwise."""

    __slots__ = ()

    def _block(self) -> Block:
        return _fields_block(self)


class ChunkType(NamedIntEnum):
    """How a chunk is stored: not at all, in its own object, in another file, or in the manifest.

    The members are lower-case, as in icechunk 2.x; icechunk 1.x's upper-case names are
    aliases of them (``ChunkType.NATIVE is ChunkType.native``).
    """

    uninitialized = 0
    native = 1
    virtual = 2
    inline = 3
    UNINITIALIZED = 0
    NATIVE = 1
    VIRTUAL = 2
    INLINE = 3


CommitMethod = Literal["new_commit", "amend"]
"""How ``Repository.rewrite_manifests`` records its result: a new commit or an amend."""


_MAX_CHUNKS_SHOWN = 10


@dataclass(eq=True)
class Diff:
    """The changes between two versions of a repository, by node path.

    Attributes
    ----------
    new_groups, new_arrays, deleted_groups, deleted_arrays, updated_groups, updated_arrays
        Absolute node paths.
    updated_chunks
        For each array path, the coordinates of chunks written or deleted, sorted.
    moved_nodes
        ``(from, to)`` paths of the nodes moved (spec 2), each with its subtree: the newest
        commit's moves first, each commit's by path.
    """

    new_groups: set[str] = field(default_factory=set)
    new_arrays: set[str] = field(default_factory=set)
    deleted_groups: set[str] = field(default_factory=set)
    deleted_arrays: set[str] = field(default_factory=set)
    updated_groups: set[str] = field(default_factory=set)
    updated_arrays: set[str] = field(default_factory=set)
    updated_chunks: dict[str, list[list[int]]] = field(default_factory=dict)
    moved_nodes: list[tuple[str, str]] = field(default_factory=list)

    __hash__ = None  # type: ignore[assignment]

    def is_empty(self) -> bool:
        """Whether nothing changed."""
        return not any(getattr(self, f.name) for f in fields(self))

    def __str__(self) -> str:
        sections = (
            ("Groups created:", self.new_groups),
            ("Arrays created:", self.new_arrays),
            ("Group definitions updated:", self.updated_groups),
            ("Array definitions updated:", self.updated_arrays),
            ("Groups deleted:", self.deleted_groups),
            ("Arrays deleted:", self.deleted_arrays),
        )
        out: list[str] = []
        for title, paths in sections:
            if paths:
                out.append(title + "\n")
                out.extend(f"    {p}\n" for p in sorted(paths))
                out.append("\n")
        if self.updated_chunks:
            out.append("Chunks updated:\n")
            for path in sorted(self.updated_chunks):
                coords = self.updated_chunks[path]
                lines = [f"        {list(c)}" for c in coords[:_MAX_CHUNKS_SHOWN]]
                out.append(f"    {path}:\n" + "\n".join(lines) + "\n")
                if len(coords) > _MAX_CHUNKS_SHOWN:
                    out.append(f"        ... {len(coords) - _MAX_CHUNKS_SHOWN} more\n")
        if self.moved_nodes:  # right after the chunks, as 2.x prints it
            out.append("Nodes moved/renamed:\n")
            out.extend(f"    {source} -> {target}\n" for source, target in self.moved_nodes)
            out.append("\n")
        return "".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        fields = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        return Block(qualified("Diff"), [(n, _json_like(v)) for n, v in fields]).html()

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle 'Diff' object")


@dataclass(frozen=True, eq=True, repr=False)
class ManifestFileInfo(_Shown):
    """A manifest file referenced by a snapshot."""

    id: str
    size_bytes: int
    num_chunk_refs: int


class StoredSnapshot(Protocol):
    """What a history keeps about a snapshot, as a :class:`SnapshotInfo` reads it."""

    id: bytes
    parent_id: bytes | None
    flushed_at: int  # µs since the epoch
    message: str


class SnapshotSource(Protocol):
    """Where :class:`SnapshotInfo` values over stored snapshots find, on first use, what they
    do not hold: the commit metadata and the manifest files."""

    def stored_metadata(self, stored: Any) -> dict[str, Any]:
        """The commit metadata of ``stored``, the caller's own copy."""
        ...

    def stored_manifests(self, stored: Any) -> list[ManifestFileInfo]:
        """The manifest files of the snapshot of ``stored``."""
        ...


def _stored_id(stored: StoredSnapshot) -> str:
    return encode_id(stored.id)


def _stored_parent_id(stored: StoredSnapshot) -> str | None:
    return None if stored.parent_id is None else encode_id(stored.parent_id)


def _stored_time(stored: StoredSnapshot) -> dt.datetime:
    return micros_to_datetime(stored.flushed_at)


def _stored_message(stored: StoredSnapshot) -> str:
    return stored.message


class SnapshotInfo(_Shown):
    """What a snapshot records: its id, parent, time, message, metadata and manifests.

    Parameters
    ----------
    id, parent_id, written_at, message, metadata
        The snapshot's id, its parent's (None for the root), when it was written, and its
        commit message and metadata.
    manifests
        The manifest files the snapshot references, or a function returning them. icechunk 2
        dropped this field because spec-2 history lives apart from the snapshots; pyicechunk
        keeps it for icechunk 1.1 code and, on spec 2, reads the snapshot only when the field
        is first used, so walking history stays one read.
    """

    # An info made by :meth:`from_stored` holds only ``_stored`` and ``_source``; each other
    # slot is filled on the first read of its field (an unset slot raises AttributeError).
    __slots__ = (
        "_id",
        "_manifests",
        "_message",
        "_metadata",
        "_parent_id",
        "_source",
        "_stored",
        "_written_at",
    )
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        id: str,
        parent_id: str | None,
        written_at: dt.datetime,
        message: str,
        metadata: dict[str, Any],
        manifests: list[ManifestFileInfo] | Callable[[], list[ManifestFileInfo]],
    ) -> None:
        self._id = id
        self._parent_id = parent_id
        self._written_at = written_at
        self._message = message
        self._metadata = metadata
        self._manifests: list[ManifestFileInfo] | Callable[[], list[ManifestFileInfo]] = manifests
        self._stored: Any = None
        self._source: SnapshotSource | None = None

    @classmethod
    def from_stored(
        cls, stored: Iterable[StoredSnapshot], source: SnapshotSource
    ) -> list[SnapshotInfo]:
        """Infos over stored snapshots, in their order, each field converted on first use (as
        the reference's are).

        A history walk builds one per snapshot and most are never looked into, so ids are
        encoded, times converted, metadata copied and manifests found only when read.
        """
        new = cls.__new__
        infos: list[SnapshotInfo] = []
        append = infos.append
        for entry in stored:
            info = new(cls)
            info._stored = entry
            info._source = source
            append(info)
        return infos

    def _filled(self, slot: str, convert: Callable[[Any], Any]) -> Any:
        # A slot's value, else ``convert`` of the stored entry, kept in the slot.
        try:
            return getattr(self, slot)
        except AttributeError:
            value = convert(self._stored)
            setattr(self, slot, value)
            return value

    @property
    def id(self) -> str:
        """The snapshot's id."""
        found: str = self._filled("_id", _stored_id)
        return found

    @property
    def parent_id(self) -> str | None:
        """The parent snapshot's id; None for the repository's first snapshot."""
        found: str | None = self._filled("_parent_id", _stored_parent_id)
        return found

    @property
    def written_at(self) -> dt.datetime:
        """When the snapshot was written (UTC)."""
        found: dt.datetime = self._filled("_written_at", _stored_time)
        return found

    @property
    def message(self) -> str:
        """The commit message."""
        found: str = self._filled("_message", _stored_message)
        return found

    @message.setter
    def message(self, value: str) -> None:
        self._message = value

    @property
    def metadata(self) -> dict[str, Any]:
        """The commit metadata."""
        found: dict[str, Any] = self._filled("_metadata", self._stored_metadata)
        return found

    def _stored_metadata(self, stored: Any) -> dict[str, Any]:
        assert self._source is not None
        return self._source.stored_metadata(stored)

    @property
    def manifests(self) -> list[ManifestFileInfo]:
        """The manifest files the snapshot references."""
        try:
            found = self._manifests
        except AttributeError:
            assert self._source is not None
            found = self._source.stored_manifests(self._stored)
        if callable(found):
            found = found()
        self._manifests = found
        return found

    @manifests.setter
    def manifests(self, value: list[ManifestFileInfo]) -> None:
        self._manifests = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SnapshotInfo):
            return NotImplemented
        return (
            self.id == other.id
            and self.parent_id == other.parent_id
            and self.written_at == other.written_at
            and self.message == other.message
            and self.metadata == other.metadata
            and self.manifests == other.manifests
        )

    def _block(self) -> Block:
        # icechunk 2.x's fields (it dropped ``manifests``), the message in full.
        return Block(
            qualified("SnapshotInfo"),
            [
                ("id", self.id),
                ("parent_id", str(self.parent_id)),
                ("written_at", _datetime_repr(self.written_at)),
                ("message", self.message),
                ("metadata", repr(self.metadata)),
            ],
        )

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle 'SnapshotInfo' object")


def _datetime_repr(value: dt.datetime) -> str:
    # The reference prints Python-style datetime reprs without spaces after the commas.
    fields = [value.year, value.month, value.day, value.hour, value.minute, value.second]
    if value.microsecond:
        fields.append(value.microsecond)
    return f"datetime.datetime({','.join(map(str, fields))}, tzinfo=datetime.timezone.utc)"


def _fields_block(value: Any) -> Block:
    """The block of a dataclass: one line per field, in declaration order."""
    fields = [(f.name, str(getattr(value, f.name))) for f in dataclasses.fields(value)]
    return Block(qualified(type(value).__name__), fields)


def _json_like(value: Any) -> str:
    # Diff's HTML shows its sets and maps as the reference does: sorted, strings quoted.
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(f'"{v}"' for v in sorted(value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}": {v}' for k, v in sorted(value.items())) + "}"
    return str(value)


@dataclass(frozen=True, repr=False)
class GCSummary(_Shown):
    """Counts of what a garbage collection deleted (or would delete, in a dry run).

    The last four are icechunk 2.3.0's: objects whose deletion failed, request batches the
    store throttled, the deletion errors seen, and the delete phases skipped after a failure
    (``"transaction_logs"``, ``"manifests"``, ``"chunks"``).
    """

    bytes_deleted: int = 0
    chunks_deleted: int = 0
    manifests_deleted: int = 0
    snapshots_deleted: int = 0
    attributes_deleted: int = 0
    transaction_logs_deleted: int = 0
    objects_failed_to_delete: int = 0
    throttled_batches: int = 0
    delete_errors: list[str] = field(default_factory=list)
    skipped_phases: list[str] = field(default_factory=list)


@dataclass(frozen=True, repr=False)
class ChunkStorageStats(_Shown):
    """Bytes of chunk data reachable from the repository's refs, by kind of storage."""

    native_bytes: int = 0
    virtual_bytes: int = 0
    inlined_bytes: int = 0

    def non_virtual_bytes(self) -> int:
        """Native plus inlined bytes."""
        return self.native_bytes + self.inlined_bytes

    def total_bytes(self) -> int:
        """All chunk bytes."""
        return self.native_bytes + self.virtual_bytes + self.inlined_bytes

    def __add__(self, other: ChunkStorageStats) -> ChunkStorageStats:
        return ChunkStorageStats(
            self.native_bytes + other.native_bytes,
            self.virtual_bytes + other.virtual_bytes,
            self.inlined_bytes + other.inlined_bytes,
        )


def diff_from_changes(
    *,
    new_groups: Iterable[str],
    new_arrays: Iterable[str],
    deleted_groups: Iterable[str],
    deleted_arrays: Iterable[str],
    updated_groups: Iterable[str],
    updated_arrays: Iterable[str],
    updated_chunks: Mapping[str, Iterable[tuple[int, ...]]],
    moved_nodes: Iterable[tuple[str, str]] = (),
) -> Diff:
    """Build a Diff from path collections, sorting and de-duplicating chunk coordinates."""
    return Diff(
        new_groups=set(new_groups),
        new_arrays=set(new_arrays),
        deleted_groups=set(deleted_groups),
        deleted_arrays=set(deleted_arrays),
        updated_groups=set(updated_groups),
        updated_arrays=set(updated_arrays),
        updated_chunks={
            path: [list(c) for c in sorted(set(updated_chunks[path]))]
            for path in sorted(updated_chunks)
        },
        moved_nodes=list(moved_nodes),
    )
