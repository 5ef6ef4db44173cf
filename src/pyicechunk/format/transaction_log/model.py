"""The decoded transaction log: what one commit changed, by node id."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import U32


@dataclass(frozen=True, slots=True)
class MoveOperation:
    """A node moved by a rearrange commit: from its path in the parent snapshot to its path
    in this one."""

    from_path: str
    to_path: str
    node_id: bytes
    is_array: bool


def move_sort_key(path: str) -> tuple[bytes, ...]:
    """Order of ``moved_nodes``: by path segments, bytewise, a prefix first (so ``/a`` <
    ``/a/b`` < ``/a-b``, unlike the byte order of snapshot nodes)."""
    return tuple(segment.encode("utf-8") for segment in path.split("/"))


@dataclass
class TransactionLog:
    """The changes of one commit, by node id.

    Parameters
    ----------
    id
        12-byte id, equal to the snapshot id.
    new_groups, new_arrays, deleted_groups, deleted_arrays, updated_arrays, updated_groups
        8-byte node ids.
    updated_chunks
        Node id -> ``(n, ndim)`` uint32 coordinates of chunks written or deleted.
    moved_nodes
        Nodes moved (spec 2 only).
    """

    id: bytes
    new_groups: list[bytes] = field(default_factory=list)
    new_arrays: list[bytes] = field(default_factory=list)
    deleted_groups: list[bytes] = field(default_factory=list)
    deleted_arrays: list[bytes] = field(default_factory=list)
    updated_arrays: list[bytes] = field(default_factory=list)
    updated_groups: list[bytes] = field(default_factory=list)
    updated_chunks: dict[bytes, U32] = field(default_factory=dict)
    moved_nodes: list[MoveOperation] = field(default_factory=list)


def checked_id(value: bytes, size: int, what: str) -> bytes:
    """Return ``value`` as bytes if it has ``size`` bytes.

    Raises
    ------
    IcechunkError
        If it does not; ``what`` names the id in the message.
    """
    value = bytes(value)
    if len(value) != size:
        raise IcechunkError(
            f"{what} must have {size} bytes, got {len(value)}", kind="invalid-file-format"
        )
    return value
