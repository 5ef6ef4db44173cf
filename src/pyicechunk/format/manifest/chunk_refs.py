"""Chunk refs: their three payload kinds, the Python object of each and the columns of many.

A manifest keeps its refs as parallel numpy columns (:class:`RefColumns`); the payload objects
serve single chunk reads and the refs a session sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import U8, U32

__all__ = [
    "INLINE",
    "NATIVE",
    "VIRTUAL",
    "ChunkPayload",
    "InlinePayload",
    "NativePayload",
    "RefColumns",
    "VirtualPayload",
]

INLINE, NATIVE, VIRTUAL = 0, 1, 2

Blob = bytes | bytearray | memoryview | U8


@dataclass(frozen=True, slots=True)
class InlinePayload:
    """Chunk bytes stored inside the manifest."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NativePayload:
    """A byte range of the repository object ``chunks/<chunk_id>``."""

    chunk_id: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class VirtualPayload:
    """A byte range of an object outside the repository, with an optional checksum."""

    location: str
    offset: int
    length: int
    etag: str | None = None
    last_modified: int = 0


ChunkPayload = InlinePayload | NativePayload | VirtualPayload


class RefColumns(NamedTuple):
    """The columns of the chunk refs of one array, one row per ref.

    See :class:`~pyicechunk.format.manifest.ArrayManifest` for the meaning of each column.
    """

    coords: npt.ArrayLike
    kind: npt.ArrayLike
    chunk_id: npt.ArrayLike
    offset: npt.ArrayLike
    length: npt.ArrayLike
    blob: Blob
    data_start: npt.ArrayLike
    data_len: npt.ArrayLike
    etag_start: npt.ArrayLike
    etag_len: npt.ArrayLike
    last_modified: npt.ArrayLike


def first_unsorted(coords: U32) -> int:
    """Return the index of the first row not strictly greater than its predecessor, or -1.

    Parameters
    ----------
    coords
        ``(n, ndim)`` chunk coordinates, compared as tuples.
    """
    n, ndim = coords.shape
    if n < 2:
        return -1
    if ndim == 0:
        return 1
    # Pack pairs of u32 coordinates into u64 words, then compare adjacent rows
    # lexicographically word by word, last word first.
    words = [coords[:, d].astype(np.uint64) << np.uint64(32) for d in range(0, ndim - 1, 2)]
    for w, d in zip(words, range(1, ndim, 2), strict=False):
        w |= coords[:, d]
    if ndim % 2:
        words.append(coords[:, ndim - 1].astype(np.uint64))
    gt = words[-1][1:] > words[-1][:-1]
    for w in reversed(words[:-1]):
        prev, nxt = w[:-1], w[1:]
        gt = (nxt > prev) | ((nxt == prev) & gt)
    if gt.all():
        return -1
    return int(np.argmin(gt)) + 1


def columns_from_payloads(
    node_id: bytes,
    ndim: int,
    coords: Sequence[tuple[int, ...]],
    payloads: Sequence[ChunkPayload],
) -> RefColumns:
    """Build the columns of refs given as Python payload objects (chunks set in a session).

    Parameters
    ----------
    node_id
        The array's node id, for messages.
    ndim
        Number of dimensions.
    coords
        Chunk coordinates, in the order of ``payloads``.
    payloads
        One payload per coordinate.

    Returns
    -------
    RefColumns
        The columns, in the given order.

    Raises
    ------
    IcechunkError
        On mismatched lengths, wrong dimensions, coordinates outside u32 or chunk ids that do
        not have 12 bytes.
    """
    n = len(coords)
    if len(payloads) != n:
        raise IcechunkError(f"{n} coordinates but {len(payloads)} payloads", kind="serialization")
    c = np.array(coords, dtype=np.int64).reshape(n, ndim) if n else np.zeros((0, ndim))
    if n and ((c < 0) | (c > np.iinfo(np.uint32).max)).any():
        raise IcechunkError(
            f"chunk coordinates of node {node_id.hex()} must fit in u32", kind="serialization"
        )
    kinds = np.zeros(n, dtype=np.uint8)
    chunk_ids = bytearray(12 * n)
    offset = np.zeros(n, dtype=np.uint64)
    length = np.zeros(n, dtype=np.uint64)
    data_start = np.zeros(n, dtype=np.int64)
    data_len = np.zeros(n, dtype=np.int64)
    etag_start = np.zeros(n, dtype=np.int64)
    etag_len = np.full(n, -1, dtype=np.int64)
    last_modified = np.zeros(n, dtype=np.uint32)
    pieces: list[bytes] = []
    pos = 0
    kind_of = {type(p) for p in payloads}
    if kind_of == {InlinePayload}:
        # The common bulk case (small chunks): whole columns at once, no per-ref numpy writes.
        pieces = [p.data for p in payloads]  # type: ignore[union-attr]
        data_len = np.fromiter(map(len, pieces), dtype=np.int64, count=n)
        data_start = np.cumsum(data_len) - data_len
        payloads = ()
    elif kind_of == {NativePayload}:
        native: Sequence[NativePayload] = payloads  # type: ignore[assignment]
        joined = b"".join(p.chunk_id for p in native)
        if len(joined) != 12 * n:
            raise IcechunkError("every chunk id must have 12 bytes", kind="serialization")
        chunk_ids[:] = joined
        kinds[:] = NATIVE
        offset = np.fromiter((p.offset for p in native), dtype=np.uint64, count=n)
        length = np.fromiter((p.length for p in native), dtype=np.uint64, count=n)
        payloads = ()
    for i, p in enumerate(payloads):
        if isinstance(p, InlinePayload):
            data_start[i], data_len[i] = pos, len(p.data)
            pieces.append(p.data)
            pos += len(p.data)
        elif isinstance(p, NativePayload):
            kinds[i] = NATIVE
            if len(p.chunk_id) != 12:
                raise IcechunkError(
                    f"a chunk id has 12 bytes, got {len(p.chunk_id)}", kind="serialization"
                )
            chunk_ids[12 * i : 12 * i + 12] = p.chunk_id
            offset[i], length[i] = p.offset, p.length
        else:
            kinds[i] = VIRTUAL
            loc = p.location.encode("utf-8")
            data_start[i], data_len[i] = pos, len(loc)
            pieces.append(loc)
            pos += len(loc)
            if p.etag is not None:
                et = p.etag.encode("utf-8")
                etag_start[i], etag_len[i] = pos, len(et)
                pieces.append(et)
                pos += len(et)
            offset[i], length[i], last_modified[i] = p.offset, p.length, p.last_modified
    return RefColumns(
        c,
        kinds,
        np.frombuffer(bytes(chunk_ids), dtype=np.uint8).reshape(n, 12),
        offset,
        length,
        b"".join(pieces),
        data_start,
        data_len,
        etag_start,
        etag_len,
        last_modified,
    )
