"""What Icechunk reads out of a node's ``zarr.json`` (FORMAT-V1 §4.4).

The bytes themselves are stored verbatim as the node's ``user_data``; only the node kind, the
shape, the chunk grid (the shard grid for sharded arrays) and the dimension names are derived.
A grid is ``regular`` (one chunk length per dimension) or, in spec 2 only, ``rectilinear``
(FORMAT-V2 §7.2: a list of chunk sizes per dimension, of which Icechunk keeps only the number).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.snapshot import DimensionShape

__all__ = ["ArrayMeta", "GroupMeta", "parse_node_metadata"]

_U64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class ArrayMeta:
    user_data: bytes
    shape: tuple[DimensionShape, ...]
    dimension_names: tuple[str | None, ...] | None
    grid: str = "regular"
    """The chunk grid's name: ``regular``, or ``rectilinear`` (spec 2 only)."""


@dataclass(frozen=True, slots=True)
class GroupMeta:
    user_data: bytes


def _u64_list(value: Any) -> list[int] | None:
    if not isinstance(value, list):
        return None
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U64_MAX:
            return None
        out.append(v)
    return out


def parse_node_metadata(
    path: str, data: bytes, spec_version: int | None = None
) -> ArrayMeta | GroupMeta:
    """Classify ``zarr.json`` bytes as array or group metadata.

    ``spec_version`` is the format of the repository the document is written to, when it is
    being written: spec 1 holds regular chunk grids only.

    Raises
    ------
    IcechunkError
        The bytes are not JSON, nest deeper than Python's JSON parser can follow, or are
        neither a zarr v3 array nor group document; or a rectilinear grid for spec 1.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IcechunkError(
            f"bad metadata: zarr.json for node {path} is not valid JSON ({e})", kind="bad-metadata"
        ) from None
    except RecursionError:
        # The parser recurses once per level: user attributes nested thousands of levels deep
        # exhaust the interpreter's stack. zarr parses the document the same way, so it could
        # not read it back either.
        raise IcechunkError(
            f"bad metadata: zarr.json for node {path} nests arrays or objects too deeply to be "
            "parsed (Python's JSON parser, which zarr uses too, stops at its recursion limit); "
            "store its attributes less deeply nested",
            kind="bad-metadata",
        ) from None
    if not isinstance(doc, dict):
        raise IcechunkError(
            f"bad metadata: zarr.json for node {path} must be a JSON object", kind="bad-metadata"
        )
    node_type = doc.get("node_type")
    if node_type == "array":
        meta = _parse_array(path, data, doc)
        if meta.grid != "regular" and spec_version == 1:
            raise _grid_error(
                "Non-regular chunk grids are not supported in icechunk format version 1. "
                "Please use spec_version=2 or higher."
            )
        return meta
    if node_type == "group":
        return GroupMeta(data)
    raise IcechunkError(
        f"bad metadata: zarr.json for node {path} has node_type {node_type!r}; "
        "expected 'array' or 'group' (Icechunk stores zarr v3 metadata only)",
        kind="bad-metadata",
    )


def _parse_array(path: str, data: bytes, doc: dict[str, Any]) -> ArrayMeta:
    shape = _u64_list(doc.get("shape"))
    if shape is None:
        raise IcechunkError(
            f"bad metadata: array {path} needs a `shape` list of non-negative integers",
            kind="bad-metadata",
        )
    grid = doc.get("chunk_grid")
    if isinstance(grid, dict) and grid.get("name") == "rectilinear":
        counts = _rectilinear_counts(grid.get("configuration"))
        if len(counts) != len(shape):
            raise _grid_error(
                f"array {path} has shape {shape} but its rectilinear grid lists chunk sizes "
                f"for {len(counts)} dimensions"
            )
        return ArrayMeta(
            user_data=data,
            shape=tuple(
                DimensionShape.from_num_chunks(a, n) for a, n in zip(shape, counts, strict=True)
            ),
            dimension_names=_dimension_names(path, doc),
            grid="rectilinear",
        )
    chunk_shape = None
    if isinstance(grid, dict) and grid.get("name") == "regular":
        conf = grid.get("configuration")
        if isinstance(conf, dict):
            chunk_shape = _u64_list(conf.get("chunk_shape"))
    if chunk_shape is None:
        raise IcechunkError(
            f"bad metadata: array {path} needs a regular chunk grid "
            '({"name": "regular", "configuration": {"chunk_shape": [...]}})',
            kind="bad-metadata",
        )
    if len(chunk_shape) != len(shape) or any(c == 0 for c in chunk_shape):
        raise IcechunkError(
            f"Invalid chunk grid metadata for array {path}: shape {shape} and chunk shape "
            f"{chunk_shape} must have the same length and chunk lengths must be positive",
            kind="bad-metadata",
        )
    return ArrayMeta(
        user_data=data,
        shape=tuple(DimensionShape(a, c) for a, c in zip(shape, chunk_shape, strict=True)),
        dimension_names=_dimension_names(path, doc),
    )


def _dimension_names(path: str, doc: dict[str, Any]) -> tuple[str | None, ...] | None:
    names = doc.get("dimension_names")
    if names is None:
        return None
    if not isinstance(names, list) or not all(n is None or isinstance(n, str) for n in names):
        raise IcechunkError(
            f"bad metadata: array {path} has dimension_names that are not a list of "
            "strings or nulls",
            kind="bad-metadata",
        )
    return tuple(n if n else None for n in names)


def _grid_error(detail: str) -> IcechunkError:
    return IcechunkError(
        f"error decoding Zarr chunk grid metadata: `{detail}`", kind="bad-metadata"
    )


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX
    return value if ok else None


def _rectilinear_counts(conf: Any) -> list[int]:
    """The number of chunks along each dimension of a rectilinear grid's configuration.

    Each dimension lists its chunk sizes, an element being a size or a ``[size, count]`` run
    (zarr writes runs when an array grows); the sizes themselves are zarr's business.
    """
    dims = conf.get("chunk_shapes") if isinstance(conf, dict) else None
    counts: list[int] = []
    for dim in dims if isinstance(dims, list) else [None]:
        n: int | None = 0 if isinstance(dim, list) else None
        for item in dim if isinstance(dim, list) else ():
            if _count(item) is not None:
                step: int | None = 1
            elif isinstance(item, list) and len(item) >= 2 and _count(item[0]) is not None:
                step = _count(item[1])
            else:
                step = None
            n = None if step is None or n is None else n + step
        if n is None or n > 2**32 - 1:
            raise _grid_error("cannot parse `chunk_shapes` for rectilinear chunk grid")
        counts.append(n)
    return counts


def grid_upper(shape: tuple[DimensionShape, ...]) -> tuple[int, ...]:
    """Number of chunk positions per dimension (a zero-length dimension still has one)."""
    return tuple(max(d.num_chunks, 1) for d in shape)


def coords_in_grid(coords: tuple[int, ...], shape: tuple[DimensionShape, ...]) -> bool:
    """Whether chunk coordinates fit the grid (extra or missing dimensions are not checked)."""
    # Spec 2 stores the number of chunks (a rectilinear grid has no single chunk length);
    # index 0 stays valid for zero-length dimensions.
    for c, d in zip(coords, shape, strict=False):
        if c > max(d.num_chunks, 1) - 1:
            return False
    return True
