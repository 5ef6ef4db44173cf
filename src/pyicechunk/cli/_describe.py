"""Groups and arrays at a snapshot, as plain data (for ``ls``, ``cat`` and the history browser).

Everything goes through zarr on a read-only session's store, so it reads any spec version the
library reads.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import zarr

from pyicechunk.cli._output import CliError

# zarr's Array is generic over its metadata; any version of it will do here.
Array = zarr.Array[Any]
Node = zarr.Group | Array

__all__ = [
    "array_json",
    "chunk_stats",
    "default_selection",
    "json_values",
    "node_json",
    "open_node",
    "parse_selection",
    "tree_json",
    "walk",
]


def open_node(session: Any, path: str) -> Node:
    """The group or array at ``path`` (``/`` or empty: the root group)."""
    key = path.strip("/")
    try:
        return zarr.open(session.store, mode="r", path=key)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise CliError(f"there is no group or array at /{key} in this snapshot") from e
    except Exception as e:  # zarr's own not-found errors differ between versions
        if type(e).__name__.endswith("NotFoundError"):
            raise CliError(f"there is no group or array at /{key} in this snapshot") from e
        raise


def _chunks(array: Array) -> list[Any] | None:
    try:
        return list(array.chunks)
    except (NotImplementedError, TypeError, ValueError):
        # A rectilinear grid has no single chunk shape: report the grid as zarr declares it.
        grid = array.metadata.to_dict().get("chunk_grid")
        return [grid] if grid is not None else None


def array_json(array: Array) -> dict[str, Any]:
    """Shape, dtype, chunks, dimension names, fill value and attributes of ``array``."""
    meta = array.metadata
    fill = getattr(meta, "fill_value", None)
    return {
        "path": "/" + array.path,
        "type": "array",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "chunks": _chunks(array),
        "dimension_names": list(getattr(meta, "dimension_names", None) or []) or None,
        "fill_value": json_values(np.asarray(fill)) if fill is not None else None,
        "attributes": dict(array.attrs),
    }


def node_json(node: Node) -> dict[str, Any]:
    """The JSON form of a group (path, type, attributes) or an array (:func:`array_json`)."""
    if isinstance(node, zarr.Array):
        return array_json(node)
    return {"path": "/" + node.path, "type": "group", "attributes": dict(node.attrs)}


def walk(node: Node) -> list[dict[str, Any]]:
    """``node`` and everything under it, depth first, children by name."""
    out = [node_json(node)]
    if isinstance(node, zarr.Group):
        for _, child in sorted(node.members(), key=lambda m: m[0]):
            out.extend(walk(child))
    return out


def tree_json(session: Any, path: str) -> list[dict[str, Any]]:
    """:func:`walk` from ``path``; an empty snapshot (no root group yet) has no nodes."""
    try:
        node = open_node(session, path)
    except CliError:
        if path.strip("/"):
            raise
        return []
    return walk(node)


def chunk_stats(array: Array) -> dict[str, int]:
    """How many chunks the grid has, how many are written, and their stored bytes."""
    return {
        "chunks_total": int(array.nchunks),
        "chunks_written": int(array.nchunks_initialized),
        "bytes_stored": int(array.nbytes_stored()),
    }


def parse_selection(text: str, ndim: int) -> tuple[Any, ...]:
    """A numpy-style selection from text: ``"0:5, :, 3"``, ``"..., -1"``, ``"::2"``."""
    parts: list[Any] = []
    for raw in text.split(","):
        item = raw.strip()
        try:
            if item == "...":
                parts.append(Ellipsis)
            elif ":" in item:
                bounds = [int(b) if b.strip() else None for b in item.split(":")]
                if len(bounds) > 3:
                    raise ValueError(item)
                parts.append(slice(*bounds))
            else:
                parts.append(int(item))
        except ValueError:
            raise CliError(
                f"bad selection {text!r}: use numbers, start:stop[:step] and ... separated by "
                "commas, one per dimension (for example 0:10,:,3)"
            ) from None
    if sum(p is Ellipsis for p in parts) > 1:
        raise CliError(f"bad selection {text!r}: ... may appear once")
    if sum(p is not Ellipsis for p in parts) > ndim:
        raise CliError(f"bad selection {text!r}: the array has {ndim} dimension(s)")
    return tuple(parts)


def default_selection(shape: tuple[int, ...], limit: int = 10) -> tuple[slice, ...]:
    """The first ``limit`` values along each dimension."""
    return tuple(slice(0, min(n, limit)) for n in shape)


def json_values(values: np.ndarray[Any, Any]) -> Any:
    """Values as JSON: numbers stay numbers (NaN and infinities become null), dates and
    everything else become strings."""
    kind = values.dtype.kind
    if kind == "b" or kind in "iu":
        return values.tolist()
    if kind == "f":
        finite = np.isfinite(values)
        if finite.all():
            return values.tolist()
        shown = values.astype(object)
        shown[~finite] = None
        return shown.tolist()
    return values.astype(str).tolist()


def short_json(value: Any, limit: int = 80) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(n: int) -> str:
    """``1.5 MiB``."""
    if n < 1024:
        return f"{n} B"
    exponent = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024**exponent:.1f} {'KMGT'[exponent - 1]}iB"
