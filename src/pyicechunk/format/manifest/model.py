"""The chunk refs of a manifest as numpy columns: :class:`ArrayManifest` and :class:`Manifest`.

A manifest can hold millions of chunk refs, so nothing here builds one Python object per ref
except :meth:`ArrayManifest.payload`, which serves a single chunk read. An array decoded from a
manifest starts *undecoded*: its refs stay in the flatbuffer (a :class:`RefSource`) and single
lookups read them there, until the first bulk use or too many lookups decode every array of
the manifest into columns at once.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import I64, U8, U32, U64, Bool
from pyicechunk.format.manifest.chunk_refs import (
    INLINE,
    NATIVE,
    VIRTUAL,
    Blob,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    RefColumns,
    VirtualPayload,
    columns_from_payloads,
    first_unsorted,
)

_COLUMNS = frozenset(RefColumns._fields)

# Lookups served from the raw buffer before a manifest is decoded in full.
_LAZY_LOOKUPS = 8


class RefSource(Protocol):
    """The undecoded chunk refs of every array of one manifest (array ``j`` is the j-th).

    :class:`~pyicechunk.format.manifest.lazy.LazyRefs` implements it over a flatbuffer.
    """

    lookups: int
    """Lookups served so far, for all arrays together."""

    @property
    def decoded(self) -> bool:
        """Whether the columns of every array were decoded already."""

    def ndim(self, j: int) -> int:
        """Number of dimensions of array ``j`` (which has refs)."""

    def find(self, j: int, key: tuple[int, ...]) -> int:
        """Index of the ref of array ``j`` at ``key``, or -1."""

    def payload(self, j: int, i: int) -> ChunkPayload:
        """Ref ``i`` of array ``j``."""

    def columns(self, j: int) -> RefColumns:
        """The columns of array ``j``, decoding every array at once the first time."""


def _as_i64(a: npt.ArrayLike) -> I64:
    return np.ascontiguousarray(a, dtype=np.int64)


class ArrayManifest:
    """All chunk refs of one array inside one manifest, as parallel columns sorted by coords.

    Parameters
    ----------
    node_id
        The array's 8-byte node id.
    coords
        ``(n, ndim)`` chunk coordinates, lexicographically sorted and unique.
    kind
        ``(n,)`` payload kind per ref: :data:`INLINE`, :data:`NATIVE` or :data:`VIRTUAL`.
    chunk_id
        ``(n, 12)`` chunk object ids (zeros unless NATIVE).
    offset, length
        ``(n,)`` byte range inside the chunk object (NATIVE, VIRTUAL).
    blob
        Storage of variable-size payloads: inline bytes, virtual location and etag (UTF-8).
    data_start, data_len
        Inline payload (INLINE) or location string (VIRTUAL) inside ``blob``.
    etag_start, etag_len
        Virtual etag inside ``blob``; ``etag_len`` is -1 when there is none.
    last_modified
        Virtual checksum time in seconds since the epoch, 0 for none.

    Raises
    ------
    IcechunkError
        If the columns do not have matching shapes.
    """

    __slots__ = (
        "_keys",
        "_lazy",
        "_maxes",
        "_n",
        "_ndim",
        "_shifts",
        "blob",
        "chunk_id",
        "coords",
        "data_len",
        "data_start",
        "etag_len",
        "etag_start",
        "kind",
        "last_modified",
        "length",
        "node_id",
        "offset",
    )

    def __init__(
        self,
        node_id: bytes,
        coords: npt.ArrayLike,
        kind: npt.ArrayLike,
        chunk_id: npt.ArrayLike,
        offset: npt.ArrayLike,
        length: npt.ArrayLike,
        blob: Blob,
        data_start: npt.ArrayLike,
        data_len: npt.ArrayLike,
        etag_start: npt.ArrayLike,
        etag_len: npt.ArrayLike,
        last_modified: npt.ArrayLike,
    ) -> None:
        node_id = bytes(node_id)
        if len(node_id) != 8:
            raise IcechunkError(f"a node id has 8 bytes, got {len(node_id)}", kind="serialization")
        self.node_id = node_id
        self._lazy: tuple[RefSource, int] | None = None
        self._keys: npt.NDArray[np.uint64] | npt.NDArray[np.bytes_] | None = None
        self._shifts: list[int] | None = None
        self._maxes: list[int] | None = None
        self._set_columns(
            RefColumns(
                coords,
                kind,
                chunk_id,
                offset,
                length,
                blob,
                data_start,
                data_len,
                etag_start,
                etag_len,
                last_modified,
            )
        )

    @classmethod
    def undecoded(cls, node_id: bytes, refs: RefSource, j: int, n: int) -> ArrayManifest:
        """Return an array whose ``n`` refs stay in ``refs`` (as its array ``j``) until needed.

        Parameters
        ----------
        node_id
            The array's node id.
        refs
            The undecoded refs of the manifest.
        j
            Position of the array in the manifest.
        n
            Number of refs of the array.
        """
        self = cls.__new__(cls)
        self.node_id = node_id
        self._lazy = (refs, j)
        self._n = n
        self._ndim = None
        self._keys = self._shifts = self._maxes = None
        return self

    def __getattr__(self, name: str) -> object:
        # Only reached for unset slots: the columns of an array that has not been decoded yet.
        lazy = self._lazy
        if lazy is None or name not in _COLUMNS:
            raise AttributeError(name)
        self._set_columns(lazy[0].columns(lazy[1]))
        return object.__getattribute__(self, name)

    def _undecoded_refs(self) -> tuple[RefSource, int] | None:
        """The source this array still reads its refs from, or None once it has columns.

        The arrays of one manifest are decoded all at once, so an array takes its columns as
        soon as any of them was decoded, and then answers as a decoded array does.
        """
        lazy = self._lazy
        if lazy is not None and lazy[0].decoded:
            self._set_columns(lazy[0].columns(lazy[1]))
            return None
        return lazy

    def _set_columns(self, columns: RefColumns) -> None:
        node_id = self.node_id
        self.coords: U32 = np.ascontiguousarray(columns.coords, dtype=np.uint32)
        if self.coords.ndim != 2:
            raise IcechunkError(
                "chunk coordinates must be a 2-d (n, ndim) array", kind="serialization"
            )
        n = len(self.coords)
        self.kind: U8 = np.ascontiguousarray(columns.kind, dtype=np.uint8)
        self.chunk_id: U8 = np.ascontiguousarray(columns.chunk_id, dtype=np.uint8).reshape(-1, 12)
        self.offset: U64 = np.ascontiguousarray(columns.offset, dtype=np.uint64)
        self.length: U64 = np.ascontiguousarray(columns.length, dtype=np.uint64)
        blob = columns.blob
        self.blob: U8 = (
            blob if isinstance(blob, np.ndarray) else np.frombuffer(blob, dtype=np.uint8)
        )
        self.data_start = _as_i64(columns.data_start)
        self.data_len = _as_i64(columns.data_len)
        self.etag_start = _as_i64(columns.etag_start)
        self.etag_len = _as_i64(columns.etag_len)
        self.last_modified: U32 = np.ascontiguousarray(columns.last_modified, dtype=np.uint32)
        checked = (
            self.kind,
            self.chunk_id,
            self.offset,
            self.length,
            self.data_start,
            self.data_len,
            self.etag_start,
            self.etag_len,
            self.last_modified,
        )
        if any(len(c) != n for c in checked):
            raise IcechunkError(
                f"chunk ref columns of node {node_id.hex()} differ in length", kind="serialization"
            )
        self._n = n
        self._ndim: int | None = int(self.coords.shape[1])
        self._lazy = None

    def columns(self) -> RefColumns:
        """Return the columns of the refs (decoding them first if needed)."""
        return RefColumns(
            self.coords,
            self.kind,
            self.chunk_id,
            self.offset,
            self.length,
            self.blob,
            self.data_start,
            self.data_len,
            self.etag_start,
            self.etag_len,
            self.last_modified,
        )

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ArrayManifest(node_id={self.node_id.hex()}, refs={len(self)}, ndim={self.ndim})"

    @property
    def ndim(self) -> int:
        """Number of dimensions of the chunk coordinates."""
        ndim = self._ndim
        if ndim is None:
            # Another thread may decode the columns meanwhile: read _lazy once.
            lazy = self._undecoded_refs()
            if lazy is None:
                return int(self.coords.shape[1])
            ndim = self._ndim = lazy[0].ndim(lazy[1]) if self._n else 0
        return ndim

    # ---- lookups -----------------------------------------------------------------------------

    def _lookup_keys(self) -> npt.NDArray[np.uint64] | npt.NDArray[np.bytes_]:
        """Sortable 1-d keys with the same order as the coordinate tuples (cached)."""
        if self._keys is None:
            n, ndim = self.coords.shape
            maxes = self.coords.max(axis=0) if n else np.zeros(ndim, dtype=np.uint32)
            self._maxes = [int(m) for m in maxes]
            bits = [max(m.bit_length(), 1) for m in self._maxes]
            if sum(bits) <= 64:
                shifts = [sum(bits[d + 1 :]) for d in range(ndim)]
                self._shifts, self._keys = shifts, _shift_keys(self.coords, shifts)
            else:
                self._keys = _bytes_keys(self.coords)
        return self._keys

    def find(self, coords: tuple[int, ...]) -> int:
        """Index of the ref at ``coords``, or -1.

        Parameters
        ----------
        coords
            Chunk coordinates, one per dimension.

        Returns
        -------
        int
            Position of the ref in the columns, or -1 if absent.
        """
        if len(coords) != self.ndim or len(self) == 0:
            return -1
        lazy = self._undecoded_refs()
        if lazy is not None:
            refs, j = lazy
            refs.lookups += 1
            if refs.lookups <= _LAZY_LOOKUPS:
                return refs.find(j, tuple(coords))
            # Many lookups in one manifest (a bulk read): one vectorised decode is cheaper than
            # more binary searches in Python over the raw buffer.
            self._set_columns(refs.columns(j))
        keys = self._lookup_keys()
        assert self._maxes is not None
        for c, m in zip(coords, self._maxes, strict=True):
            if c < 0 or c > m:
                return -1
        q: np.uint64 | np.bytes_
        if self._shifts is not None:
            k = 0
            for c, s in zip(coords, self._shifts, strict=True):
                k |= c << s
            q = np.uint64(k)
        else:
            q = _bytes_keys(np.array([coords], dtype=np.uint32))[0]
        i = int(np.searchsorted(keys, q))
        return i if i < len(keys) and keys[i] == q else -1

    def find_many(self, coords: npt.ArrayLike) -> I64:
        """Indices of the refs at many coordinates at once (-1 where absent).

        Parameters
        ----------
        coords
            ``(m, ndim)`` integer coordinates.

        Returns
        -------
        numpy.ndarray
            ``(m,)`` int64 indices.

        Raises
        ------
        IcechunkError
            If the number of dimensions does not match.
        """
        q = np.asarray(coords)
        if q.ndim != 2 or q.shape[1] != self.ndim:
            raise IcechunkError(
                f"expected ({'m'}, {self.ndim}) coordinates for node {self.node_id.hex()}, "
                f"got shape {q.shape}",
                kind="serialization",
            )
        out = np.full(len(q), -1, dtype=np.int64)
        if len(q) == 0 or len(self) == 0:
            return out
        ok = ((q >= 0) & (q <= np.iinfo(np.uint32).max)).all(axis=1)
        keys = self._lookup_keys()
        ok &= (q <= np.array(self._maxes, dtype=np.int64)).all(axis=1)
        qq = q[ok].astype(np.uint32)
        if self._shifts is not None:
            qk: npt.NDArray[np.uint64] | npt.NDArray[np.bytes_] = _shift_keys(qq, self._shifts)
        else:
            qk = _bytes_keys(qq)
        i = np.searchsorted(keys, qk)
        ic = np.minimum(i, len(keys) - 1)
        hit = (i < len(keys)) & (keys[ic] == qk)
        out[np.flatnonzero(ok)] = np.where(hit, ic, -1)
        return out

    def payload(self, i: int) -> ChunkPayload:
        """The payload of ref ``i`` as a Python object.

        Parameters
        ----------
        i
            Position of the ref.

        Returns
        -------
        ChunkPayload
            An inline, native or virtual payload.

        Raises
        ------
        IcechunkError
            If a stored string is not valid UTF-8, or (before the columns are decoded) the
            ref's table is damaged.
        """
        lazy = self._undecoded_refs()
        if lazy is not None:
            return lazy[0].payload(lazy[1], i)
        k = int(self.kind[i])
        if k == NATIVE:
            return NativePayload(bytes(self.chunk_id[i]), int(self.offset[i]), int(self.length[i]))
        s, n = int(self.data_start[i]), int(self.data_len[i])
        if k == INLINE:
            return InlinePayload(self.blob[s : s + n].tobytes())
        etag = None
        es, en = int(self.etag_start[i]), int(self.etag_len[i])
        try:
            location = self.blob[s : s + n].tobytes().decode("utf-8")
            if en >= 0:
                etag = self.blob[es : es + en].tobytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise IcechunkError(
                f"virtual chunk ref {tuple(self.coords[i])} of node {self.node_id.hex()} "
                f"has a string that is not UTF-8: {e}",
                kind="deserialization",
            ) from None
        return VirtualPayload(
            location, int(self.offset[i]), int(self.length[i]), etag, int(self.last_modified[i])
        )

    # ---- whole-column operations ------------------------------------------------------------

    def take(self, mask_or_indices: npt.ArrayLike) -> ArrayManifest:
        """A subset of the refs, in the same order.

        Parameters
        ----------
        mask_or_indices
            Boolean mask of length ``n`` or increasing integer indices.

        Returns
        -------
        ArrayManifest
            The selected refs; the blob is shared, not copied.
        """
        sel = np.asarray(mask_or_indices)
        if sel.dtype != np.bool_:
            sel = sel.astype(np.int64)
        return ArrayManifest(
            self.node_id,
            self.coords[sel],
            self.kind[sel],
            self.chunk_id[sel],
            self.offset[sel],
            self.length[sel],
            self.blob,
            self.data_start[sel],
            self.data_len[sel],
            self.etag_start[sel],
            self.etag_len[sel],
            self.last_modified[sel],
        )

    @staticmethod
    def concat_sorted(node_id: bytes, parts: Sequence[ArrayManifest]) -> ArrayManifest:
        """Merge refs of one array from several parts with disjoint coordinates.

        Parameters
        ----------
        node_id
            The node id of the result.
        parts
            At least one part; all with the same number of dimensions.

        Returns
        -------
        ArrayManifest
            All refs, sorted by coordinates.

        Raises
        ------
        IcechunkError
            If there are no parts, dimensions differ or a coordinate appears twice.
        """
        if not parts:
            raise IcechunkError("concat_sorted needs at least one part", kind="serialization")
        ndim = parts[0].ndim
        if any(p.ndim != ndim for p in parts):
            raise IcechunkError(
                f"cannot merge chunk refs of node {node_id.hex()} with different dimensions: "
                f"{sorted({p.ndim for p in parts})}",
                kind="serialization",
            )
        if all(p.blob is parts[0].blob for p in parts):
            blob, shifts = parts[0].blob, [0] * len(parts)
        else:
            blob = np.concatenate([p.blob for p in parts])
            shifts = np.cumsum([0] + [len(p.blob) for p in parts[:-1]]).tolist()

        def shifted(starts: list[I64], lens: list[I64]) -> I64:
            if not any(shifts):  # one shared blob: the starts stay as they are
                return np.concatenate(starts)
            return np.concatenate(
                [
                    np.where(ln >= 0, s + sh, s)
                    for s, ln, sh in zip(starts, lens, shifts, strict=True)
                ]
            )

        merged = ArrayManifest(
            node_id,
            np.concatenate([p.coords for p in parts]),
            np.concatenate([p.kind for p in parts]),
            np.concatenate([p.chunk_id for p in parts]),
            np.concatenate([p.offset for p in parts]),
            np.concatenate([p.length for p in parts]),
            blob,
            shifted([p.data_start for p in parts], [p.data_len for p in parts]),
            np.concatenate([p.data_len for p in parts]),
            shifted([p.etag_start for p in parts], [p.etag_len for p in parts]),
            np.concatenate([p.etag_len for p in parts]),
            np.concatenate([p.last_modified for p in parts]),
        )
        return _sort_unique(merged)

    @staticmethod
    def from_payloads(
        node_id: bytes,
        ndim: int,
        coords: Sequence[tuple[int, ...]],
        payloads: Sequence[ChunkPayload],
    ) -> ArrayManifest:
        """Build an array from Python payload objects (chunks set in a session).

        Parameters
        ----------
        node_id, ndim, coords, payloads
            As for :func:`~pyicechunk.format.manifest.chunk_refs.columns_from_payloads`;
            the coordinates may come in any order but must be unique.

        Returns
        -------
        ArrayManifest
            The refs sorted by coordinates.

        Raises
        ------
        IcechunkError
            On mismatched lengths, wrong dimensions or duplicate coordinates.
        """
        columns = columns_from_payloads(node_id, ndim, coords, payloads)
        return _sort_unique(ArrayManifest(node_id, *columns))

    def extents(self) -> tuple[tuple[int, int], ...]:
        """Bounding box of the coordinates: per dimension ``(min, max + 1)``.

        Returns
        -------
        tuple of (int, int)
            One range per dimension; ``()`` for 0-d arrays.

        Raises
        ------
        IcechunkError
            If there are no refs.
        """
        if len(self) == 0:
            raise IcechunkError(
                f"node {self.node_id.hex()} has no chunk refs, so no extents", kind="serialization"
            )
        lo = self.coords.min(axis=0).tolist()
        hi = self.coords.max(axis=0).tolist()
        return tuple((int(a), int(b) + 1) for a, b in zip(lo, hi, strict=True))

    def within(self, upper: tuple[int, ...]) -> Bool:
        """Mask of refs with ``coords[:, d] < upper[d]`` for every dimension.

        Parameters
        ----------
        upper
            Exclusive upper bound per dimension (number of chunks).

        Returns
        -------
        numpy.ndarray
            Boolean mask of length ``n``.
        """
        if len(upper) != self.ndim:
            raise IcechunkError(
                f"node {self.node_id.hex()} has {self.ndim} dimensions, got bounds {upper}",
                kind="serialization",
            )
        mask: Bool = np.asarray((self.coords < np.array(upper, dtype=np.int64)).all(axis=1))
        return mask

    def native_chunk_ids(self) -> U8:
        """``(k, 12)`` chunk ids of the NATIVE refs."""
        ids: U8 = self.chunk_id[self.kind == NATIVE]
        return ids

    def total_bytes_by_kind(self) -> tuple[int, int, int]:
        """Total referenced bytes: native, virtual and inlined."""
        native = int(self.length[self.kind == NATIVE].sum())
        virtual = int(self.length[self.kind == VIRTUAL].sum())
        inlined = int(self.data_len[self.kind == INLINE].sum())
        return native, virtual, inlined


def _sort_unique(am: ArrayManifest) -> ArrayManifest:
    """``am`` sorted by coordinates; duplicate coordinates are an error."""
    bad = first_unsorted(am.coords)
    if bad >= 0 and am.ndim:  # often sorted already (appends, one new chunk): no copy then
        am = am.take(np.lexsort(am.coords.T[::-1]))
        bad = first_unsorted(am.coords)
    if bad >= 0:
        raise IcechunkError(
            f"chunk {tuple(int(c) for c in am.coords[bad])} of node {am.node_id.hex()} "
            "is given more than once",
            kind="invalid-chunk-index",
        )
    return am


def _shift_keys(coords: U32, shifts: list[int]) -> npt.NDArray[np.uint64]:
    """One u64 per row: the coordinates packed into disjoint bit fields, most significant first."""
    keys = np.zeros(len(coords), dtype=np.uint64)
    for d, s in enumerate(shifts):
        keys |= coords[:, d].astype(np.uint64) << np.uint64(s)
    return keys


def _bytes_keys(coords: U32) -> npt.NDArray[np.bytes_]:
    """Fixed-width byte keys (big-endian u32s) whose order is the coordinate tuple order."""
    n, ndim = coords.shape
    be = np.ascontiguousarray(coords.astype(">u4"))
    return be.view(f"S{4 * ndim}").reshape(n)


class Manifest:
    """A decoded manifest: its id and the chunk refs of each array, sorted by node id.

    Parameters
    ----------
    id
        12-byte manifest id.
    arrays
        One entry per array, sorted by node id.
    """

    __slots__ = ("_node_ids", "arrays", "id")

    def __init__(self, id: bytes, arrays: list[ArrayManifest]) -> None:
        self.id = id
        self.arrays = arrays
        self._node_ids = [a.node_id for a in arrays]

    def __repr__(self) -> str:
        return f"Manifest(id={self.id.hex()}, arrays={self.arrays!r})"

    def array(self, node_id: bytes) -> ArrayManifest | None:
        """The refs of ``node_id`` in this manifest, or None."""
        i = bisect.bisect_left(self._node_ids, node_id)
        if i < len(self._node_ids) and self._node_ids[i] == node_id:
            return self.arrays[i]
        return None

    def num_chunk_refs(self) -> int:
        """Total number of chunk refs over all arrays."""
        return sum(len(a) for a in self.arrays)
