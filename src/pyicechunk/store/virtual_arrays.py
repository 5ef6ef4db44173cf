"""``IcechunkStore.set_virtual_refs_arr``: the virtual chunks of an array region from columns.

icechunk 2.x takes a region's virtual references as a flat list of locations and two uint64
arrays (offsets, lengths), one row per chunk of a grid in row-major order, instead of one
``VirtualChunkSpec`` per chunk. The rows become references through
``IcechunkStore.set_virtual_refs``, so validation and results are the same.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from pyicechunk._docs import filled
from pyicechunk._sync import blocking_twin
from pyicechunk.virtual import VirtualChunkSpec, VirtualChunkSpecLike

__all__ = ["VirtualArrays"]

Failed = builtins.list[tuple[int, ...]] | None
# The result of the methods that set many virtual references, as their docstrings give it.
SKIPPED_REFS = """\
Returns
-------
list of tuple of int, or None
    None if every reference was set, else the indices (chunk coordinates) of the skipped ones.
"""


def _u64(values: Any, name: str) -> np.ndarray[Any, np.dtype[np.uint64]]:
    if not isinstance(values, np.ndarray) or values.dtype != np.uint64 or values.ndim != 1:
        raise TypeError(
            f"argument '{name}': expected a one-dimensional numpy array of uint64, got "
            f"{type(values).__name__}"
            + (f" of {values.dtype}" if isinstance(values, np.ndarray) else "")
        )
    return values


class VirtualArrays:
    """The columnar virtual-reference methods of :class:`~pyicechunk.IcechunkStore`."""

    set_virtual_refs_async: Callable[..., Awaitable[Failed]]

    async def set_virtual_refs_arr_async(
        self,
        array_path: str,
        chunk_grid_shape: tuple[int, ...],
        locations: builtins.list[str],
        offsets: np.ndarray[Any, np.dtype[np.uint64]],
        lengths: np.ndarray[Any, np.dtype[np.uint64]],
        *,
        validate_containers: bool = True,
        arr_offset: tuple[int, ...] | None = None,
        checksum: datetime | str | None = None,
    ) -> Failed:
        """Async version of :meth:`set_virtual_refs_arr`."""
        offsets = _u64(offsets, "offsets")
        lengths = _u64(lengths, "lengths")
        if not len(locations) == len(offsets) == len(lengths):
            raise ValueError("locations, offsets, and lengths must have the same length")
        shape = tuple(int(d) for d in chunk_grid_shape)
        if math.prod(shape) != len(locations):
            raise ValueError(
                f"product of chunk_grid_shape ({math.prod(shape)}) != array length "
                f"({len(locations)})"
            )
        start: Sequence[int] = (0,) * len(shape) if arr_offset is None else arr_offset
        if len(start) != len(shape):
            raise ValueError(
                f"arr_offset has {len(start)} dimensions but chunk_grid_shape has {len(shape)}"
            )
        rows = np.flatnonzero([bool(loc) for loc in locations])
        indices = np.stack(np.unravel_index(rows, shape), axis=1) + np.asarray(start, np.int64)
        etag = checksum if isinstance(checksum, str) else None
        modified = checksum if isinstance(checksum, datetime) else None
        specs: builtins.list[VirtualChunkSpecLike] = [
            VirtualChunkSpec(
                index.tolist(), locations[row], int(offsets[row]), int(lengths[row]), etag, modified
            )
            for row, index in zip(rows.tolist(), indices, strict=True)
        ]
        return await self.set_virtual_refs_async(
            array_path, specs, validate_containers=validate_containers
        )

    set_virtual_refs_arr = blocking_twin(
        set_virtual_refs_arr_async,
        filled(
            """Set the virtual chunks of a region of an array, given as columns.

        Parameters
        ----------
        array_path
            The array's path.
        chunk_grid_shape
            The region's shape in chunks; row ``i`` is the chunk at the row-major position
            ``i`` in it.
        locations
            One URL per chunk; an empty string leaves that chunk as it is.
        offsets, lengths
            One-dimensional uint64 arrays: where each chunk starts in its object and its size.
        validate_containers
            Skip chunks whose location matches no virtual chunk container.
        arr_offset
            The chunk index of the region's first chunk (default: the array's first).
        checksum
            For every chunk: an ETag (str) or a last-modified bound (datetime).

        {skipped_refs}

        Raises
        ------
        TypeError
            ``offsets`` or ``lengths`` is not a uint64 numpy array.
        ValueError
            The columns differ in length, or do not fill the grid.
        IcechunkError
            As :meth:`~pyicechunk.IcechunkStore.set_virtual_refs`: a read-only session, a
            missing array, a chunk index outside the grid, a zero length.
        """,
            {"skipped_refs": SKIPPED_REFS},
        ),
    )
