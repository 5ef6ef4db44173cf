"""``IcechunkStore.array_chunk_iterator``: every chunk reference of an array, in columns.

icechunk 2.x hands out an array's references in batches of six columns, so that tools can
index or copy many chunks without one Python object each: chunk coordinates (uint32,
``(n, ndim)``), kinds (``ChunkType`` values), paths (a virtual chunk's URL, a native chunk's id,
``""`` for inline data), offsets and lengths (uint64), and the inline payloads by row. The
session's own writes come first, then the base snapshot's references per manifest; batches
are cut from that sequence as a whole.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np

from pyicechunk._sync import sync
from pyicechunk.format.ids import encode_id
from pyicechunk.format.manifest import (
    INLINE,
    NATIVE,
    VIRTUAL,
    ArrayManifest,
    ChunkPayload,
    InlinePayload,
    NativePayload,
)
from pyicechunk.session.chunks import Coords
from pyicechunk.session.core import SessionCore
from pyicechunk.store.zarr_keys import node_path
from pyicechunk.types import ChunkType

__all__ = ["ArrayChunks", "ChunkBatch", "ChunkIterator"]

ChunkBatch = tuple[
    np.ndarray[Any, np.dtype[np.uint32]],
    np.ndarray[Any, np.dtype[np.uint8]],
    list[str],
    np.ndarray[Any, np.dtype[np.uint64]],
    np.ndarray[Any, np.dtype[np.uint64]],
    dict[int, bytes],
]
"""coords, kinds, paths, offsets, lengths, inline payloads by row."""

# Manifest payload kinds (INLINE, NATIVE, VIRTUAL) as ChunkType values.
_CHUNK_TYPES = np.zeros(3, dtype=np.uint8)
_CHUNK_TYPES[[INLINE, NATIVE, VIRTUAL]] = [ChunkType.inline, ChunkType.native, ChunkType.virtual]


def _written(rows: list[tuple[Coords, ChunkPayload]], ndim: int) -> ChunkBatch:
    coords = np.array([c for c, _ in rows], dtype=np.uint32).reshape(len(rows), ndim)
    kinds = np.empty(len(rows), dtype=np.uint8)
    offsets = np.zeros(len(rows), dtype=np.uint64)
    lengths = np.zeros(len(rows), dtype=np.uint64)
    paths: list[str] = []
    inlined: dict[int, bytes] = {}
    for i, (_, payload) in enumerate(rows):
        if isinstance(payload, InlinePayload):
            kinds[i], lengths[i] = ChunkType.inline, len(payload.data)
            paths.append("")
            inlined[i] = bytes(payload.data)
            continue
        kinds[i] = ChunkType.native if isinstance(payload, NativePayload) else ChunkType.virtual
        offsets[i], lengths[i] = payload.offset, payload.length
        paths.append(
            encode_id(payload.chunk_id) if isinstance(payload, NativePayload) else payload.location
        )
    return coords, kinds, paths, offsets, lengths, inlined


def _stored(array: ArrayManifest) -> ChunkBatch:
    kind = np.asarray(array.kind)
    inline = kind == INLINE
    starts = np.asarray(array.data_start)
    sizes = np.asarray(array.data_len)
    offsets = np.where(inline, 0, np.asarray(array.offset)).astype(np.uint64)
    lengths = np.where(inline, sizes, np.asarray(array.length)).astype(np.uint64)
    blob = array.blob
    chunk_ids = np.asarray(array.chunk_id)
    paths: list[str] = []
    inlined: dict[int, bytes] = {}
    for i, k in enumerate(kind.tolist()):
        if k == NATIVE:
            paths.append(encode_id(chunk_ids[i].tobytes()))
            continue
        data = bytes(blob[int(starts[i]) : int(starts[i]) + int(sizes[i])])
        if k == VIRTUAL:
            paths.append(data.decode("utf-8"))
        else:
            paths.append("")
            inlined[i] = data
    coords = np.asarray(array.coords).astype(np.uint32)
    return coords, _CHUNK_TYPES[kind], paths, offsets, lengths, inlined


def _concat(batches: list[ChunkBatch]) -> ChunkBatch:
    """One batch of all rows: batches fill up across the session's writes and manifests."""
    inlined: dict[int, bytes] = {}
    paths: list[str] = []
    for batch in batches:
        inlined.update((len(paths) + row, data) for row, data in batch[5].items())
        paths.extend(batch[2])
    return (
        np.concatenate([b[0] for b in batches]),
        np.concatenate([b[1] for b in batches]),
        paths,
        np.concatenate([b[3] for b in batches]),
        np.concatenate([b[4] for b in batches]),
        inlined,
    )


def _slices(batch: ChunkBatch, size: int) -> Iterator[ChunkBatch]:
    coords, kinds, paths, offsets, lengths, inlined = batch
    inline_rows = sorted(inlined)
    for start in range(0, len(kinds), size):
        end = start + size
        first, last = bisect.bisect_left(inline_rows, start), bisect.bisect_left(inline_rows, end)
        rows = {i - start: inlined[i] for i in inline_rows[first:last]}
        yield (
            coords[start:end],
            kinds[start:end],
            paths[start:end],
            offsets[start:end],
            lengths[start:end],
            rows,
        )


class ChunkIterator:
    """Batches of an array's chunk references; an async iterator and an iterator.

    Made by :meth:`ArrayChunks.array_chunk_iterator`; the references are read on first use.
    """

    def __init__(self, core: SessionCore, path: str | None, batch_size: int) -> None:
        self._core = core
        self._path = path
        self._size = batch_size
        self._batches: Iterator[ChunkBatch] | None = None

    async def _next(self) -> ChunkBatch | None:
        if self._batches is None:
            self._batches = iter(())
            if self._path is not None:
                written, stored = await self._core.chunk_refs(self._path)
                ndim = int(np.asarray(stored[0].coords).shape[1]) if stored else 0
                if written:
                    ndim = len(written[0][0])
                sources = ([_written(written, ndim)] if written else []) + [
                    _stored(a) for a in stored if len(a)
                ]
                if sources:
                    self._batches = _slices(_concat(sources), self._size)
        return next(self._batches, None)

    def __aiter__(self) -> AsyncIterator[ChunkBatch]:
        return self

    async def __anext__(self) -> ChunkBatch:
        batch = await self._next()
        if batch is None:
            raise StopAsyncIteration
        return batch

    def __iter__(self) -> Iterator[ChunkBatch]:
        return self

    def __next__(self) -> ChunkBatch:
        batch = sync(self._next())
        if batch is None:
            raise StopIteration
        return batch

    async def aclose(self) -> None:
        """Stop: later iteration yields nothing."""
        self._batches = iter(())


class ArrayChunks:
    """The ``array_chunk_iterator`` method of :class:`~pyicechunk.IcechunkStore`."""

    _core: SessionCore

    def array_chunk_iterator(self, array_path: str, batch_size: int = 100_000) -> ChunkIterator:
        """Every chunk reference of an array the session sees, in batches of columns.

        Parameters
        ----------
        array_path
            The array's path, absolute or relative; an unknown array yields nothing.
        batch_size
            Most rows per batch.

        Returns
        -------
        ChunkIterator
            Batches ``(coords, kinds, paths, offsets, lengths, inlined)``: uint32 chunk
            coordinates ``(n, ndim)``, ``ChunkType`` values (uint8), the virtual chunk's URL
            or the native chunk's id (``""`` for inline chunks), uint64 offsets and lengths,
            and the bytes of the inline chunks by row. Uninitialized chunks are not listed.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return ChunkIterator(self._core, node_path(array_path.strip("/")), batch_size)
