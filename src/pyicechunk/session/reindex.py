"""Moving chunk references inside one array: ``shift_array`` and ``reindex_array``.

Both only move references: a moved chunk keeps its payload (the same chunk object, inline bytes
or virtual location), so nothing is read or copied. They are planned here, as the chunk edits a
session then records like writes and deletions of chunks; the shape of the array never changes.

The plan follows icechunk 2.3.0: ``forward`` is asked once for each chunk the session sees, in
coordinate order, and each answer other than None writes that chunk's reference at the new
position (when several land on one position, the last one asked wins). With ``backward``, each
chunk's own position is cleared when ``backward`` finds no chunk mapping onto it. Clearing never
undoes a write: a position both written and cleared keeps what was written.

A shift is the reindex whose ``forward`` adds the offset and whose ``backward`` subtracts it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.manifest import ArrayManifest, ChunkPayload
from pyicechunk.format.zarr_metadata import grid_upper
from pyicechunk.session.chunks import Coords
from pyicechunk.session.mode import READ_ONLY_SESSION
from pyicechunk.session.nodes import NodeInfo
from pyicechunk.session.rearrange import REARRANGE_ONLY, node_not_found

__all__ = [
    "ChunkMap",
    "check_regular_grid",
    "existing_chunks",
    "plan_reindex",
    "reindexed_grid",
    "shift_mappings",
    "shift_steps",
]

ChunkMap = Callable[[Sequence[int]], Sequence[int] | None]
"""Chunk coordinates to other chunk coordinates, or None."""


def check_regular_grid(node: NodeInfo) -> None:
    """Refuse an array whose zarr metadata does not declare a regular chunk grid.

    Raises
    ------
    IcechunkError
        (kind ``unknown``, as the reference) for a rectilinear or other grid.
    """
    try:
        grid = json.loads(node.user_data).get("chunk_grid", {}).get("name")
    except (ValueError, AttributeError):
        grid = None
    if grid != "regular":
        raise IcechunkError(
            f"session error: cannot shift or reindex chunks of the array at `{node.path}`: "
            "`shift_array` and `reindex_array` require an array whose metadata declares a "
            f"`regular` chunk grid, found `{grid}`. Rewrite the array with a regular grid to "
            "move its chunks.",
            kind="unknown",
        )


def reindexed_grid(
    node: NodeInfo | None, path: str, read_only: bool, rearranging: bool
) -> tuple[int, ...]:
    """The chunk grid's size of the array a shift or reindex moves chunks in.

    Raises
    ------
    IcechunkError
        The reference's errors, in its order: no node (``node-not-found``), a group
        (``not-an-array``), a read-only session (``read-only-session``), a rearrange session
        (``rearrange-session-only``), a grid that is not regular (``unknown``).
    """
    if node is None:
        raise node_not_found(path)
    if not node.is_array or node.shape is None:
        raise IcechunkError(
            f"session error: there is not an array at `{path}`: getting an array",
            kind="not-an-array",
        )
    if read_only:
        raise IcechunkError(READ_ONLY_SESSION, kind="read-only-session")
    if rearranging:
        raise IcechunkError(f"session error: {REARRANGE_ONLY}", kind="rearrange-session-only")
    check_regular_grid(node)
    return grid_upper(node.shape)


def shift_steps(offset: Iterable[Any]) -> list[int]:
    """The integers of a ``shift_array`` offset.

    Raises
    ------
    TypeError
        ``offset`` is not an iterable of integers.
    """
    return [operator.index(step) for step in list(offset)]


def shift_mappings(
    steps: list[int], upper: tuple[int, ...], path: str
) -> tuple[ChunkMap, ChunkMap]:
    """``forward`` and ``backward`` of a shift by ``steps`` chunk positions per dimension.

    A chunk shifted off the grid is dropped (its position is cleared, nothing is written).
    Entries of ``steps`` beyond the array's dimensions are ignored, as the reference does.

    Raises
    ------
    InvalidInputError
        ``steps`` has fewer entries than the array has dimensions.
    """
    if len(steps) < len(upper):
        raise IcechunkError(
            f"session error: cannot shift the array at `{path}`: the offset {steps} needs one "
            f"entry per dimension of the array ({len(upper)})",
            kind="invalid-chunk-index",
        )
    steps = steps[: len(upper)]

    def moved(coords: Sequence[int], sign: int) -> list[int] | None:
        out = [c + sign * s for c, s in zip(coords, steps, strict=True)]
        return out if all(0 <= c < u for c, u in zip(out, upper, strict=True)) else None

    return (lambda c: moved(c, 1)), (lambda c: moved(c, -1))


def existing_chunks(
    written: Iterable[tuple[Coords, ChunkPayload]], base: Iterable[ArrayManifest]
) -> dict[Coords, ChunkPayload]:
    """Every chunk the session sees (its own writes and the base's refs), by coordinates."""
    found: dict[Coords, ChunkPayload] = {}
    for array in base:
        rows = array.coords.tolist()
        for i, row in enumerate(rows):
            found[tuple(row)] = array.payload(i)
    found.update(written)
    return found


def _ask(mapping: ChunkMap, coords: Coords) -> Sequence[int] | None:
    # The callback is user code: whatever it raises ends the operation with nothing recorded,
    # in the reference's words (kind unknown), the original exception chained.
    try:
        answer = mapping(list(coords))
        return None if answer is None else [operator.index(c) for c in answer]
    except Exception as e:
        raise IcechunkError(
            f"session error: unknown error: {type(e).__name__}: {e}", kind="unknown"
        ) from e


def _checked(target: Sequence[int], upper: tuple[int, ...], path: str) -> Coords:
    if len(target) != len(upper) or not all(0 <= c < u for c, u in zip(target, upper, strict=True)):
        raise IcechunkError(
            f"session error: invalid chunk index: coordinates ChunkIndices({list(target)}) are "
            f"not valid for array at {path}",
            kind="invalid-chunk-index",
        )
    return tuple(target)


def plan_reindex(
    chunks: dict[Coords, ChunkPayload],
    upper: tuple[int, ...],
    path: str,
    forward: ChunkMap,
    backward: ChunkMap | None,
) -> dict[Coords, ChunkPayload | None]:
    """The chunk edits of a reindex: new position -> moved reference, cleared position -> None.

    Raises
    ------
    InvalidInputError
        ``forward`` sent a chunk off the grid (kind ``invalid-chunk-index``).
    IcechunkError
        A callback raised (kind ``unknown``).
    """
    writes: dict[Coords, ChunkPayload] = {}
    cleared: set[Coords] = set()
    for coords in sorted(chunks):
        target = _ask(forward, coords)
        if target is not None:
            writes[_checked(target, upper, path)] = chunks[coords]
        if backward is not None:
            source = _ask(backward, coords)
            if source is None or tuple(source) not in chunks:
                cleared.add(coords)
    edits: dict[Coords, ChunkPayload | None] = dict.fromkeys(cleared - writes.keys())
    edits.update(writes)
    return edits
