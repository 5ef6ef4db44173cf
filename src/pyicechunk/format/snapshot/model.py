"""The decoded snapshot: the node tree, commit message, properties and manifest list of one
commit (FORMAT-V1 §4, FORMAT-V2 §7)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID

__all__ = [
    "ArrayNodeData",
    "DimensionShape",
    "ManifestFileInfo",
    "ManifestRef",
    "NodeSnapshot",
    "Snapshot",
    "initial_snapshot",
    "validate_path",
]

INITIAL_MESSAGE = "Repository initialized"


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
        raise IcechunkError(
            f"invalid node path {path!r}: paths must be strings", kind="invalid-path"
        )
    if path == "/":
        return path
    if not path.startswith("/") or path.endswith("/"):
        raise IcechunkError(
            f"invalid node path {path!r}: paths must start with '/' and must not end with '/'",
            kind="invalid-path",
        )
    for segment in path[1:].split("/"):
        if segment in ("", ".", ".."):
            raise IcechunkError(
                f"invalid node path {path!r}: empty, '.' and '..' segments are not allowed",
                kind="invalid-path",
            )
    return path


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
