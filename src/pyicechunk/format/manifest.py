"""Manifests: the chunk references of one or more arrays (spec §5), as numpy columns.

A manifest can hold millions of chunk references, so nothing here builds one Python object per
reference except :meth:`ArrayManifest.payload`, which serves a single chunk read. Decoding is
lazy: :func:`decode_manifest` reads the manifest and array tables only, a single lookup binary
searches the flatbuffer's sorted refs directly (reading about log2(n) ref tables, each checked),
and the first bulk use decodes every ref with vectorised gathers, validating every offset the
way the reference's flatbuffers verifier would. Encoding computes the whole layout with
cumulative sums and fills one preallocated buffer, writing arrays whose refs share one kind as
blocks of records.

The private ``_Reader`` / ``_gather_index`` / ``_vtable_block`` helpers are shared with
:mod:`pyicechunk.format.transaction_log`.
"""

from __future__ import annotations

import bisect
import itertools
import random
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import numpy.typing as npt
import zstandard

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.header import SPEC_V1

__all__ = [
    "INLINE",
    "NATIVE",
    "VIRTUAL",
    "ArrayManifest",
    "ChunkPayload",
    "InlinePayload",
    "LocationCompression",
    "Manifest",
    "NativePayload",
    "VirtualPayload",
    "decode_manifest",
    "encode_manifest",
]

INLINE, NATIVE, VIRTUAL = 0, 1, 2

FILE_IDENTIFIER = b"Ichk"

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Bool = npt.NDArray[np.bool_]


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


# --------------------------------------------------------------------------------------------
# shared vectorised helpers


def _gather_index(starts: I64, lens: I64) -> I64:
    """Flat indices of the concatenated ranges ``[starts[i], starts[i] + lens[i])``."""
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    seg_off = np.cumsum(lens) - lens
    out: I64 = np.arange(total, dtype=np.int64) + np.repeat(starts - seg_off, lens)
    return out


def _first_unsorted(coords: U32) -> int:
    """Index of the first row that is not strictly greater than its predecessor, or -1."""
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


def _align(x: int, a: int) -> int:
    return (x + (a - 1)) & ~(a - 1)


def _align_all(x: I64, a: int) -> I64:
    return (x + (a - 1)) & ~(a - 1)


class _Fields:
    """Positions of the fields of many tables, resolved through their (possibly shared) vtables."""

    def __init__(self, reader: _Reader, tpos: I64, entries: I64, inverse: I64 | None) -> None:
        self._reader = reader
        self.tpos = tpos
        self._entries = entries  # (unique vtables, nfields) field offsets, 0 = absent
        self._inverse = inverse  # None: every table uses vtable 0

    def present(self, i: int) -> Bool:
        e = self._entries[:, i] != 0
        if self._inverse is None:
            return np.full(len(self.tpos), bool(e[0]))
        out: Bool = e[self._inverse]
        return out

    def pos(self, i: int) -> I64:
        """Absolute field positions, -1 where the field is absent."""
        e = self._entries[:, i]
        if self._inverse is None:
            if e[0] == 0:
                return np.full(len(self.tpos), -1, dtype=np.int64)
            out: I64 = self.tpos + e[0]
            return out
        ei = e[self._inverse]
        return np.where(ei != 0, self.tpos + ei, -1)

    def require(self, i: int, name: str) -> I64:
        p = self.pos(i)
        if len(p) and (p < 0).any():
            self._reader.fail(f"required field {name} is missing")
        return p


class _Reader:
    """Bounds- and alignment-checked vectorised access to one flatbuffer."""

    def __init__(self, buf: bytes | bytearray | memoryview, what: str) -> None:
        self.what = what
        self.u8: U8 = np.frombuffer(buf, dtype=np.uint8)
        self.size = size = len(self.u8)
        self._u16 = self.u8[: size // 2 * 2].view("<u2")
        self._u32 = self.u8[: size // 4 * 4].view("<u4")
        self._i32 = self.u8[: size // 4 * 4].view("<i4")
        self._u64 = self.u8[: size // 8 * 8].view("<u8")
        if size < 8:
            self.fail(f"buffer of {size} bytes is too short")

    def fail(self, msg: str) -> NoReturn:
        raise IcechunkError(
            f"invalid {self.what} flatbuffer ({self.size} bytes): {msg}; "
            "the file is damaged or was not written by Icechunk"
        )

    def _check(self, pos: I64, width: int, what: str) -> None:
        if len(pos) == 0:
            return
        bad = (pos < 0) | (pos + width > self.size) | (pos % width != 0)
        if bad.any():
            p = int(pos[bad.argmax()])
            self.fail(f"{what} at byte {p} is out of range or not {width}-byte aligned")

    def u16(self, pos: I64, what: str) -> I64:
        self._check(pos, 2, what)
        return self._u16[pos // 2].astype(np.int64)

    def u32(self, pos: I64, what: str) -> I64:
        self._check(pos, 4, what)
        return self._u32[pos // 4].astype(np.int64)

    def i32(self, pos: I64, what: str) -> I64:
        self._check(pos, 4, what)
        return self._i32[pos // 4].astype(np.int64)

    def u64(self, pos: I64, what: str) -> U64:
        self._check(pos, 8, what)
        return self._u64[pos // 8]

    def structs(self, pos: I64, width: int, what: str) -> U8:
        """``(n, width)`` bytes of inline structs (byte-aligned ids)."""
        if len(pos) == 0:
            return np.zeros((0, width), dtype=np.uint8)
        if ((pos < 0) | (pos + width > self.size)).any():
            self.fail(f"{what} is out of range")
        if width % 4 == 0 and not (pos % 4).any():
            words = (pos // 4)[:, None] + np.arange(width // 4)
            out: U8 = self._u32[words].view(np.uint8).reshape(len(pos), width)
            return out
        rows: U8 = self.u8[pos[:, None] + np.arange(width)]
        return rows

    def deref(self, pos: I64, what: str) -> I64:
        """Follow unsigned forward offsets stored at ``pos``."""
        target = pos + self.u32(pos, what)
        if len(target) and ((target >= self.size) | (target == pos)).any():
            self.fail(f"offset of {what} points outside the buffer")
        return target

    def vector(self, pos: I64, elem: int, what: str) -> tuple[I64, I64]:
        """Start of the elements and element count of the vectors referenced at ``pos``."""
        vpos = self.deref(pos, what)
        n = self.u32(vpos, f"length of {what}")
        start = vpos + 4
        if len(start) and (start + n * elem > self.size).any():
            self.fail(f"vector {what} runs past the end of the buffer")
        return start, n

    def offsets(self, start: I64, n: I64, what: str) -> I64:
        """Targets of every element of the offset vectors ``(start, n)``, concatenated."""
        words = _gather_index(start // 4, n)
        return self.deref(words * 4, what)

    def tables(self, tpos: I64, nfields: int, what: str) -> _Fields:
        soff = self.i32(tpos, f"{what} table")
        vt = tpos - soff
        if len(vt) == 0:
            return _Fields(self, tpos, np.zeros((1, nfields), dtype=np.int64), None)
        if vt.min() == vt.max():
            uniq, inverse = vt[:1], None
        else:
            uniq, inv = np.unique(vt, return_inverse=True)
            inverse = inv.reshape(-1).astype(np.int64)
        vt_len = self.u16(uniq, f"{what} vtable")
        tbl_size = self.u16(uniq + 2, f"{what} vtable")
        if ((vt_len < 4) | (vt_len % 2 != 0) | (uniq + vt_len > self.size)).any():
            self.fail(f"{what} vtable is malformed")
        entries = np.zeros((len(uniq), nfields), dtype=np.int64)
        for i in range(nfields):
            has = vt_len > 4 + 2 * i
            if has.any():
                entries[has, i] = self.u16(uniq[has] + 4 + 2 * i, f"{what} vtable")
        if (entries >= tbl_size[:, None]).any():
            self.fail(f"{what} field lies outside its table")
        tmax = tbl_size if inverse is None else tbl_size[inverse]
        if (tpos + tmax > self.size).any() or (tmax < 4).any():
            self.fail(f"{what} table runs past the end of the buffer")
        return _Fields(self, tpos, entries, inverse)

    def root(self) -> I64:
        return self.deref(np.zeros(1, dtype=np.int64), "root table")


def _as_i64(a: npt.ArrayLike) -> I64:
    return np.ascontiguousarray(a, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# ArrayManifest


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
        blob: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
        data_start: npt.ArrayLike,
        data_len: npt.ArrayLike,
        etag_start: npt.ArrayLike,
        etag_len: npt.ArrayLike,
        last_modified: npt.ArrayLike,
    ) -> None:
        node_id = bytes(node_id)
        if len(node_id) != 8:
            raise IcechunkError(f"a node id has 8 bytes, got {len(node_id)}")
        self.node_id = node_id
        self._lazy: tuple[_LazyRefs, int] | None = None
        self._keys: npt.NDArray[np.uint64] | npt.NDArray[np.bytes_] | None = None
        self._shifts: list[int] | None = None
        self._maxes: list[int] | None = None
        self._set_columns(
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

    @classmethod
    def _undecoded(cls, node_id: bytes, refs: _LazyRefs, j: int, n: int) -> ArrayManifest:
        """An array whose columns stay in ``refs`` (array ``j`` of a manifest) until needed."""
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
        lazy[0].decode_all()
        return object.__getattribute__(self, name)

    def _set_columns(
        self,
        coords: npt.ArrayLike,
        kind: npt.ArrayLike,
        chunk_id: npt.ArrayLike,
        offset: npt.ArrayLike,
        length: npt.ArrayLike,
        blob: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
        data_start: npt.ArrayLike,
        data_len: npt.ArrayLike,
        etag_start: npt.ArrayLike,
        etag_len: npt.ArrayLike,
        last_modified: npt.ArrayLike,
    ) -> None:
        node_id = self.node_id
        self.coords: U32 = np.ascontiguousarray(coords, dtype=np.uint32)
        if self.coords.ndim != 2:
            raise IcechunkError("chunk coordinates must be a 2-d (n, ndim) array")
        n = len(self.coords)
        self.kind: U8 = np.ascontiguousarray(kind, dtype=np.uint8)
        self.chunk_id: U8 = np.ascontiguousarray(chunk_id, dtype=np.uint8).reshape(-1, 12)
        self.offset: U64 = np.ascontiguousarray(offset, dtype=np.uint64)
        self.length: U64 = np.ascontiguousarray(length, dtype=np.uint64)
        self.blob: U8 = (
            blob if isinstance(blob, np.ndarray) else np.frombuffer(blob, dtype=np.uint8)
        )
        self.data_start = _as_i64(data_start)
        self.data_len = _as_i64(data_len)
        self.etag_start = _as_i64(etag_start)
        self.etag_len = _as_i64(etag_len)
        self.last_modified: U32 = np.ascontiguousarray(last_modified, dtype=np.uint32)
        columns = (
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
        if any(len(c) != n for c in columns):
            raise IcechunkError(f"chunk ref columns of node {node_id.hex()} differ in length")
        self._n = n
        self._ndim: int | None = int(self.coords.shape[1])
        self._lazy = None

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
            lazy = self._lazy
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
        lazy = self._lazy
        if lazy is not None:
            refs, j = lazy
            refs.lookups += 1
            if refs.lookups <= _LAZY_LOOKUPS:
                return refs.find(j, tuple(coords))
            # Many lookups in one manifest (a bulk read): one vectorised decode is cheaper than
            # more binary searches in Python over the raw buffer.
            refs.decode_all()
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
                f"got shape {q.shape}"
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
        lazy = self._lazy
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
                f"has a string that is not UTF-8: {e}"
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
            raise IcechunkError("concat_sorted needs at least one part")
        ndim = parts[0].ndim
        if any(p.ndim != ndim for p in parts):
            raise IcechunkError(
                f"cannot merge chunk refs of node {node_id.hex()} with different dimensions: "
                f"{sorted({p.ndim for p in parts})}"
            )
        if all(p.blob is parts[0].blob for p in parts):
            blob, shifts = parts[0].blob, [0] * len(parts)
        else:
            blob = np.concatenate([p.blob for p in parts])
            shifts = np.cumsum([0] + [len(p.blob) for p in parts[:-1]]).tolist()

        def shifted(starts: list[I64], lens: list[I64]) -> I64:
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
        """Build the columns from Python payload objects (chunks set in a session).

        Parameters
        ----------
        node_id
            The array's node id.
        ndim
            Number of dimensions.
        coords
            Chunk coordinates, any order, unique.
        payloads
            One payload per coordinate.

        Returns
        -------
        ArrayManifest
            The refs sorted by coordinates.

        Raises
        ------
        IcechunkError
            On mismatched lengths, wrong dimensions or duplicate coordinates.
        """
        n = len(coords)
        if len(payloads) != n:
            raise IcechunkError(f"{n} coordinates but {len(payloads)} payloads")
        c = np.array(coords, dtype=np.int64).reshape(n, ndim) if n else np.zeros((0, ndim))
        if n and ((c < 0) | (c > np.iinfo(np.uint32).max)).any():
            raise IcechunkError(f"chunk coordinates of node {node_id.hex()} must fit in u32")
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
                raise IcechunkError("every chunk id must have 12 bytes")
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
                    raise IcechunkError(f"a chunk id has 12 bytes, got {len(p.chunk_id)}")
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
        am = ArrayManifest(
            node_id,
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
        return _sort_unique(am)

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
            raise IcechunkError(f"node {self.node_id.hex()} has no chunk refs, so no extents")
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
                f"node {self.node_id.hex()} has {self.ndim} dimensions, got bounds {upper}"
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
    if am.ndim and len(am) > 1:
        am = am.take(np.lexsort(am.coords.T[::-1]))
    bad = _first_unsorted(am.coords)
    if bad >= 0:
        raise IcechunkError(
            f"chunk {tuple(int(c) for c in am.coords[bad])} of node {am.node_id.hex()} "
            "is given more than once"
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


# --------------------------------------------------------------------------------------------
# Manifest


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


# --------------------------------------------------------------------------------------------
# encoding

# vtables: [vtable bytes, table bytes, field offsets...]
_VT_MANIFEST = (8, 20, 4, 16)  # id, arrays
_VT_ARRAY = (8, 16, 4, 12)  # node_id, refs
_VT_INLINE = (8, 12, 4, 8)  # index, inline
_VT_NATIVE = (14, 36, 4, 0, 8, 16, 24)  # index, -, offset, length, chunk_id
_VT_VIRTUAL = (20, 36, 4, 0, 8, 16, 0, 24, 28, 32)  # index, -, offset, length, -, loc, etag, lm
_VT_VIRTUAL_NO_ETAG = (20, 36, 4, 0, 8, 16, 0, 24, 0, 32)
# spec 2: the manifest table gets compression_algorithm (explicit 0) or a location dictionary;
# compressed virtual refs have their location vector in slot 8 instead of slot 5.
_VT_MANIFEST_PLAIN = (12, 24, 4, 16, 0, 20)  # id, arrays, -, compression_algorithm = 0
_VT_MANIFEST_DICTIONARY = (10, 24, 4, 16, 20)  # id, arrays, location_dictionary
_VT_VIRTUAL_COMPRESSED = (22, 36, 4, 0, 8, 16, 0, 0, 28, 32, 24)
_VT_VIRTUAL_COMPRESSED_NO_ETAG = (22, 36, 4, 0, 8, 16, 0, 0, 0, 32, 24)


@dataclass(frozen=True, slots=True)
class LocationCompression:
    """When and how spec-2 manifests compress virtual locations (FORMAT-V2 §8.2).

    The fields and defaults are those of the reference's
    ``manifest.virtual_chunk_location_compression`` config.
    """

    min_num_chunks: int = 1000
    dictionary_max_training_samples: int = 100
    dictionary_max_size_bytes: int = 2048
    compression_level: int = 3


def _compress_locations(
    arrays: list[ArrayManifest], settings: LocationCompression, rng: random.Random
) -> tuple[list[ArrayManifest], bytes | None]:
    """The arrays with every virtual location zstd-compressed with a trained dictionary, and
    the dictionary; the arrays unchanged and None when the reference's rules say not to."""
    total = sum(len(a) for a in arrays)
    virtual = [a.kind == VIRTUAL for a in arrays]
    n_virtual = sum(int(m.sum()) for m in virtual)
    if total < settings.min_num_chunks or n_virtual < settings.min_num_chunks or not n_virtual:
        return arrays, None
    locations = [
        [a.blob[s : s + n].tobytes() for s, n in zip(a.data_start[m], a.data_len[m], strict=True)]
        for a, m in zip(arrays, virtual, strict=True)
    ]
    flat = [loc for locs in locations for loc in locs]
    samples = rng.sample(flat, min(settings.dictionary_max_training_samples, len(flat)))
    # Mostly tiny locations do not compress; the reference skips them too.
    if 2 * sum(len(x) < 8 for x in samples) >= len(samples):
        return arrays, None
    size = sum(map(len, samples))
    if size < settings.dictionary_max_size_bytes:
        samples = samples * (settings.dictionary_max_size_bytes // size + 2)
    try:
        training: list[bytes | bytearray | memoryview] = list(samples)
        trained = zstandard.train_dictionary(settings.dictionary_max_size_bytes, training)
    except zstandard.ZstdError:
        return arrays, None  # plain locations are always valid
    compressor = zstandard.ZstdCompressor(
        dict_data=trained, level=settings.compression_level, write_content_size=True
    )
    out = []
    for a, m, locs in zip(arrays, virtual, locations, strict=True):
        if not locs:
            out.append(a)
            continue
        pieces = [compressor.compress(loc) for loc in locs]
        lens = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        data_start = a.data_start.copy()
        data_len = a.data_len.copy()
        data_len[m] = lens
        data_start[m] = len(a.blob) + np.cumsum(lens) - lens
        blob = np.concatenate([a.blob, np.frombuffer(b"".join(pieces), dtype=np.uint8)])
        out.append(
            ArrayManifest(
                a.node_id,
                a.coords,
                a.kind,
                a.chunk_id,
                a.offset,
                a.length,
                blob,
                data_start,
                data_len,
                a.etag_start,
                a.etag_len,
                a.last_modified,
            )
        )
    return out, trained.as_bytes()


def _vtable_block(start: int, vtables: Sequence[tuple[int, ...]]) -> tuple[bytes, list[int]]:
    """Serialised vtables (each 4-aligned) placed at ``start`` and their absolute positions."""
    out = bytearray()
    positions = []
    for vt in vtables:
        positions.append(start + len(out))
        out += np.array(vt, dtype="<u2").tobytes()
        out += b"\0" * (_align(len(out), 4) - len(out))
    return bytes(out), positions


def encode_manifest(
    manifest_id: bytes,
    arrays: Sequence[ArrayManifest],
    spec_version: int = SPEC_V1,
    location_compression: LocationCompression | None = None,
    rng: random.Random | None = None,
) -> bytes:
    """Encode a manifest flatbuffer (no header, no compression).

    Parameters
    ----------
    manifest_id
        12-byte id of the manifest.
    arrays
        Chunk refs per array; sorted here by node id.
    spec_version
        The layout to write. Spec 2 writes ``compression_algorithm`` explicitly (0), or, when
        ``location_compression`` applies, a trained zstd dictionary and every virtual location
        compressed with it.
    location_compression
        Settings for compressing virtual locations (spec 2 only); None never compresses.
    rng
        Source of randomness for choosing the dictionary's training samples.

    Returns
    -------
    bytes
        The flatbuffer, with file identifier ``Ichk``.

    Raises
    ------
    IcechunkError
        If there are no refs, a node id repeats, refs are not sorted or a size limit is hit.
    """
    manifest_id = bytes(manifest_id)
    if len(manifest_id) != 12:
        raise IcechunkError(f"a manifest id has 12 bytes, got {len(manifest_id)}")
    arrays = sorted(arrays, key=lambda a: a.node_id)
    if not arrays:
        raise IcechunkError("refusing to write an empty manifest (no arrays)")
    for prev, a in itertools.pairwise(arrays):
        if prev.node_id == a.node_id:
            raise IcechunkError(f"node {a.node_id.hex()} appears twice in one manifest")
    for a in arrays:
        if len(a) == 0:
            raise IcechunkError(f"refusing to write node {a.node_id.hex()} without chunk refs")
        bad = _first_unsorted(a.coords)
        if bad >= 0:
            raise IcechunkError(
                f"chunk refs of node {a.node_id.hex()} are not sorted and unique at "
                f"{tuple(int(c) for c in a.coords[bad])}"
            )
        if (a.kind > VIRTUAL).any():
            raise IcechunkError(f"node {a.node_id.hex()} has an unknown chunk ref kind")

    dictionary = None
    vt_list = [_VT_MANIFEST, _VT_ARRAY, _VT_INLINE, _VT_NATIVE, _VT_VIRTUAL, _VT_VIRTUAL_NO_ETAG]
    if spec_version != SPEC_V1:
        if location_compression is not None:
            arrays, dictionary = _compress_locations(
                arrays, location_compression, rng or random.Random()
            )
        if dictionary is None:
            vt_list[0] = _VT_MANIFEST_PLAIN
        else:
            vt_list[0] = _VT_MANIFEST_DICTIONARY
            vt_list[4:] = [_VT_VIRTUAL_COMPRESSED, _VT_VIRTUAL_COMPRESSED_NO_ETAG]
    vts, (vt_man, vt_arr, vt_inl, vt_nat, vt_vir, vt_vir_ne) = _vtable_block(8, vt_list)
    table = 8 + len(vts)
    vec = table + vt_list[0][1]
    na = len(arrays)
    # plan array layouts first: everything is computed before the buffer is allocated
    pos = _align(vec + 4 + 4 * na, 8)
    plans = []
    for a in arrays:
        n, nd = len(a), a.ndim
        iv = 4 + 4 * nd
        k = a.kind
        am = pos
        r0 = _align(am + 20 + 4 * n, 8)
        single = int(k[0]) if (k == k[0]).all() else -1
        if single == NATIVE:
            rec_size = _align(36 + iv, 8)
            rec = r0 + rec_size * np.arange(n, dtype=np.int64)
            plans.append(_Plan(am, rec, rec_size, single, None, None))
            pos = r0 + rec_size * n
            continue
        if single == INLINE:
            stride = _align_all(12 + iv + 4 + a.data_len, 8)
            rec = r0 + np.cumsum(stride) - stride
            uniform = int(stride[0]) if (stride == stride[0]).all() else 0
            plans.append(_Plan(am, rec, uniform, single, None, None))
            pos = int(r0 + stride.sum())
            continue
        loc_end = 36 + iv + 4 + a.data_len + 1
        has_etag = a.etag_len >= 0
        etag_at = _align_all(loc_end, 4)
        vir_end = np.where(has_etag, etag_at + 4 + a.etag_len + 1, loc_end)
        size = np.where(
            k == NATIVE, 36 + iv, np.where(k == INLINE, 12 + iv + 4 + a.data_len, vir_end)
        )
        stride = _align_all(size, 8)
        rec = r0 + np.cumsum(stride) - stride
        plans.append(_Plan(am, rec, 0, -1, etag_at, has_etag))
        pos = int(r0 + stride.sum())
    dict_at = pos = _align(pos, 4)
    if dictionary is not None:
        pos = _align(pos + 4 + len(dictionary), 8)  # the buffer is also viewed as u64
    if pos >= 1 << 31:
        raise IcechunkError(f"manifest would be {pos} bytes; flatbuffers must stay below 2 GiB")

    buf = np.zeros(pos, dtype=np.uint8)
    b32 = buf.view("<u4")
    b64 = buf.view("<u8")
    buf[4:8] = np.frombuffer(FILE_IDENTIFIER, dtype=np.uint8)
    buf[8 : 8 + len(vts)] = np.frombuffer(vts, dtype=np.uint8)
    b32[0] = table
    b32[table // 4] = table - vt_man
    buf[table + 4 : table + 16] = np.frombuffer(manifest_id, dtype=np.uint8)
    b32[(table + 16) // 4] = vec - (table + 16)
    b32[vec // 4] = na
    if dictionary is not None:
        b32[(table + 20) // 4] = dict_at - (table + 20)
        b32[dict_at // 4] = len(dictionary)
        buf[dict_at + 4 : dict_at + 4 + len(dictionary)] = np.frombuffer(dictionary, np.uint8)
    for j, (a, plan) in enumerate(zip(arrays, plans, strict=True)):
        slot = vec + 4 + 4 * j
        am = plan.am
        b32[slot // 4] = am - slot
        b32[am // 4] = am - vt_arr
        buf[am + 4 : am + 12] = np.frombuffer(a.node_id, dtype=np.uint8)
        b32[(am + 12) // 4] = 4
        b32[(am + 16) // 4] = len(a)
        slots = am + 20 + 4 * np.arange(len(a), dtype=np.int64)
        b32[slots // 4] = plan.rec - slots
        if plan.kind == NATIVE:
            _encode_native_refs(buf, a, plan, vt_nat)
        elif plan.kind == INLINE:
            _encode_inline_refs(buf, a, plan, vt_inl)
        else:
            _encode_mixed_refs(buf, b32, b64, a, plan, (vt_inl, vt_nat, vt_vir, vt_vir_ne))
    return buf.tobytes()


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where the refs of one array go.

    ``stride`` is the common record size when every record has the same size (else 0);
    ``kind`` the common kind of all refs (else -1); ``etag_at`` and ``has_etag`` describe
    virtual records and are only computed for mixed arrays.
    """

    am: int
    rec: I64
    stride: int
    kind: int
    etag_at: I64 | None
    has_etag: Bool | None


def _records(buf: U8, plan: _Plan, words: int) -> tuple[U32, bool]:
    """The first ``words`` u32 of every record: a view when records are evenly spaced, else
    a scratch array that :func:`_scatter_records` must copy into place."""
    n = len(plan.rec)
    if plan.stride:
        r0 = int(plan.rec[0])
        block: U32 = buf[r0 : r0 + n * plan.stride].view("<u4").reshape(n, plan.stride // 4)
        return block[:, :words], True
    return np.empty((n, words), dtype="<u4"), False


def _scatter_records(buf: U8, plan: _Plan, head: U32) -> None:
    words = head.shape[1]
    b32 = buf.view("<u4")
    b32[(plan.rec // 4)[:, None] + np.arange(words)] = head


def _encode_native_refs(buf: U8, a: ArrayManifest, plan: _Plan, vt: int) -> None:
    # Native table (36 bytes): soffset, index offset, offset u64, length u64, chunk id;
    # then the index vector [nd, coords...]. The records are evenly spaced.
    n, nd = len(a), a.ndim
    head, _ = _records(buf, plan, 10 + nd)
    head[:, 0] = plan.rec - vt
    head[:, 1] = 32
    head[:, 2:4] = a.offset.astype("<u8", copy=False).view("<u4").reshape(n, 2)
    head[:, 4:6] = a.length.astype("<u8", copy=False).view("<u4").reshape(n, 2)
    head[:, 6:9] = np.ascontiguousarray(a.chunk_id).view("<u4")
    head[:, 9] = nd
    head[:, 10:] = a.coords


def _encode_inline_refs(buf: U8, a: ArrayManifest, plan: _Plan, vt: int) -> None:
    # Inline table (12 bytes): soffset, index offset, data offset; then the index vector
    # [nd, coords...] and the data vector [len, bytes...].
    n, nd = len(a), a.ndim
    words = 5 + nd
    head, in_place = _records(buf, plan, words)
    head[:, 0] = plan.rec - vt
    head[:, 1] = 8
    head[:, 2] = 8 + 4 * nd
    head[:, 3] = nd
    head[:, 4 : 4 + nd] = a.coords
    head[:, 4 + nd] = a.data_len
    if not in_place:
        _scatter_records(buf, plan, head)
    size = int(a.data_len[0])
    if not in_place or (a.data_len != size).any():
        buf[_gather_index(plan.rec + 4 * words, a.data_len)] = a.blob[
            _gather_index(a.data_start, a.data_len)
        ]
        return
    if size == 0:
        return
    r0, s0 = int(plan.rec[0]), int(a.data_start[0])
    dst = buf[r0 : r0 + n * plan.stride].reshape(n, plan.stride)[:, 4 * words : 4 * words + size]
    if (a.data_start == s0 + size * np.arange(n, dtype=np.int64)).all():
        dst[:] = a.blob[s0 : s0 + n * size].reshape(n, size)
    else:
        dst[:] = a.blob[a.data_start[:, None] + np.arange(size)]


def _encode_mixed_refs(
    buf: U8,
    b32: U32,
    b64: U64,
    a: ArrayManifest,
    plan: _Plan,
    vt_refs: tuple[int, int, int, int],
) -> None:
    vt_inl, vt_nat, vt_vir, vt_vir_ne = vt_refs
    nd = a.ndim
    iv = 4 + 4 * nd
    rec = plan.rec
    assert plan.etag_at is not None and plan.has_etag is not None
    etag_at, has_etag = plan.etag_at, plan.has_etag
    k = a.kind
    inl = k == INLINE
    nat = k == NATIVE
    vir = k == VIRTUAL
    vt = np.where(inl, vt_inl, np.where(nat, vt_nat, np.where(has_etag, vt_vir, vt_vir_ne)))
    b32[rec // 4] = rec - vt
    # index vector right after the table: at +12 for inline tables, +36 otherwise
    ivec = rec + np.where(inl, 12, 36)
    b32[(rec + 4) // 4] = ivec - (rec + 4)
    b32[ivec // 4] = nd
    if nd:
        b32[(ivec // 4 + 1)[:, None] + np.arange(nd)] = a.coords
    if inl.any():
        r = rec[inl]
        dvec = r + 12 + iv
        b32[(r + 8) // 4] = dvec - (r + 8)
        b32[dvec // 4] = a.data_len[inl]
        buf[_gather_index(dvec + 4, a.data_len[inl])] = a.blob[
            _gather_index(a.data_start[inl], a.data_len[inl])
        ]
    nv = nat | vir
    if nv.any():
        r = rec[nv]
        b64[(r + 8) // 8] = a.offset[nv]
        b64[(r + 16) // 8] = a.length[nv]
    if nat.any():
        r = rec[nat]
        cid = np.ascontiguousarray(a.chunk_id[nat]).view("<u4")
        b32[((r + 24) // 4)[:, None] + np.arange(3)] = cid
    if vir.any():
        r = rec[vir]
        loc = r + 36 + iv
        b32[(r + 24) // 4] = loc - (r + 24)
        b32[loc // 4] = a.data_len[vir]
        buf[_gather_index(loc + 4, a.data_len[vir])] = a.blob[
            _gather_index(a.data_start[vir], a.data_len[vir])
        ]
        b32[(r + 32) // 4] = a.last_modified[vir]
        ve = vir & has_etag
        if ve.any():
            r = rec[ve]
            et = rec[ve] + etag_at[ve]
            b32[(r + 28) // 4] = et - (r + 28)
            b32[et // 4] = a.etag_len[ve]
            buf[_gather_index(et + 4, a.etag_len[ve])] = a.blob[
                _gather_index(a.etag_start[ve], a.etag_len[ve])
            ]


# --------------------------------------------------------------------------------------------
# decoding

_COLUMNS = frozenset(
    (
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
        "offset",
    )
)

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32S = struct.Struct("<I")
_U64S = struct.Struct("<Q")


# Lookups served from the raw buffer before a manifest is decoded in full.
_LAZY_LOOKUPS = 8

# ChunkRef slots read: 0 index .. 7 checksum_last_modified, 8 compressed_location (spec 2);
# slot 9 (extra) is ignored.
_REF_FIELDS = 9
# The reference refuses decompressed locations longer than this.
_MAX_LOCATION = 1024
_COMPRESSION_NONE, _COMPRESSION_ZSTD = 0, 1


class _LocationDecompressor:
    """Decompresses virtual locations with a manifest's zstd dictionary (FORMAT-V2 §8.1).

    zstandard decompressors are not thread-safe, so each bulk decode or single lookup makes
    its own from the dictionary bytes.
    """

    __slots__ = ("_dictionary", "_local")

    def __init__(self, dictionary: bytes) -> None:
        self._dictionary = dictionary
        self._local = threading.local()

    def decompress(self, frame: bytes, what: str) -> bytes:
        dctx: zstandard.ZstdDecompressor | None = getattr(self._local, "dctx", None)
        try:
            if dctx is None:
                dictionary = zstandard.ZstdCompressionDict(self._dictionary)
                dctx = self._local.dctx = zstandard.ZstdDecompressor(dict_data=dictionary)
            out: bytes = dctx.decompress(frame, max_output_size=_MAX_LOCATION)
        except zstandard.ZstdError as exc:
            raise IcechunkError(
                f"invalid manifest: {what} cannot be decompressed ({exc}); the manifest is damaged"
            ) from None
        if len(out) > _MAX_LOCATION:
            raise IcechunkError(
                f"invalid manifest: {what} decompresses to more than {_MAX_LOCATION} bytes"
            )
        return out


def _location_decompressor(r: _Reader, root: _Fields) -> _LocationDecompressor | None:
    """The manifest's location decompressor, or None unless it declares zstd and a dictionary."""
    algorithm_pos = root.pos(3)
    algorithm = int(r.u8[algorithm_pos[0]]) if algorithm_pos[0] >= 0 else _COMPRESSION_ZSTD
    dict_pos = root.pos(2)
    if algorithm != _COMPRESSION_ZSTD or dict_pos[0] < 0:
        return None
    start, n = r.vector(dict_pos, 1, "Manifest.location_dictionary")
    return _LocationDecompressor(r.u8[int(start[0]) : int(start[0] + n[0])].tobytes())


class _LazyRefs:
    """The undecoded chunk refs of every array of one manifest flatbuffer.

    A single-chunk read needs about log2(n) ref tables, so :meth:`find` and :meth:`payload`
    read those tables one by one with the same checks as the vectorised decoder (bounds,
    alignment, vtable consistency, required fields, dimensions). The first bulk use of any
    array decodes the refs of all arrays at once (:meth:`decode_all`), which also checks what
    single lookups cannot: that every ref is well formed and the refs are sorted. A lookup
    checks that the coordinates it visits are consistent with a sorted order; a damaged
    coordinate that keeps them consistent can make it miss a ref (answer "absent"), but every
    ref it returns was read and checked in full.
    """

    __slots__ = ("arrays", "buf", "locations", "lookups", "reader", "rlen", "rstart")

    def __init__(
        self,
        reader: _Reader,
        buf: bytes | bytearray | memoryview,
        rstart: I64,
        rlen: I64,
        locations: _LocationDecompressor | None,
    ) -> None:
        self.reader = reader
        self.buf = buf
        self.rstart = [int(x) for x in rstart]
        self.rlen = rlen
        self.locations = locations
        self.arrays: list[ArrayManifest] = []
        self.lookups = 0

    def _location(self, pos: int, what: str) -> bytes:
        """The bytes of the compressed location vector referenced at ``pos``, decompressed."""
        s, n = self._vector(pos, 1, "ChunkRef.compressed_location")
        if self.locations is None:
            self.reader.fail(
                f"{what}: compressed chunk location present but no decompression dictionary "
                "available"
            )
        return self.locations.decompress(bytes(self.buf[s : s + n]), what)

    # ---- scalar, checked reads --------------------------------------------------------------

    def _scalar(self, fmt: struct.Struct, pos: int, what: str) -> int:
        w = fmt.size
        if pos < 0 or pos + w > self.reader.size or pos % w:
            self.reader.fail(f"{what} at byte {pos} is out of range or not {w}-byte aligned")
        value: int = fmt.unpack_from(self.buf, pos)[0]
        return value

    def _deref(self, pos: int, what: str) -> int:
        target = pos + self._scalar(_U32S, pos, what)
        if target >= self.reader.size or target == pos:
            self.reader.fail(f"offset of {what} points outside the buffer")
        return target

    def _vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        vpos = self._deref(pos, what)
        n = self._scalar(_U32S, vpos, f"length of {what}")
        if vpos + 4 + n * elem > self.reader.size:
            self.reader.fail(f"vector {what} runs past the end of the buffer")
        return vpos + 4, n

    def _ref_fields(self, j: int, i: int) -> list[int]:
        """Positions of the 9 fields of ref ``i`` of array ``j`` (-1 if absent), validated."""
        if not 0 <= i < int(self.rlen[j]):
            raise IndexError(i)
        tpos = self._deref(self.rstart[j] + 4 * i, "ChunkRef")
        vt = tpos - self._scalar(_I32, tpos, "ChunkRef table")
        vt_len = self._scalar(_U16, vt, "ChunkRef vtable")
        tbl_size = self._scalar(_U16, vt + 2, "ChunkRef vtable")
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.reader.size:
            self.reader.fail("ChunkRef vtable is malformed")
        entries = [
            self._scalar(_U16, vt + 4 + 2 * f, "ChunkRef vtable") if vt_len > 4 + 2 * f else 0
            for f in range(_REF_FIELDS)
        ]
        if max(entries) >= tbl_size:
            self.reader.fail("ChunkRef field lies outside its table")
        if tpos + tbl_size > self.reader.size or tbl_size < 4:
            self.reader.fail("ChunkRef table runs past the end of the buffer")
        return [tpos + e if e else -1 for e in entries]

    def _coords(self, j: int, fields: list[int], ndim: int | None) -> tuple[int, ...]:
        if fields[0] < 0:
            self.reader.fail("required field ChunkRef.index is missing")
        start, n = self._vector(fields[0], 4, "ChunkRef.index")
        if ndim is not None and n != ndim:
            nid = self.arrays[j].node_id.hex()
            self.reader.fail(f"chunk refs of node {nid} have different numbers of dimensions")
        return struct.unpack_from(f"<{n}I", self.buf, start)

    # ---- single lookups ---------------------------------------------------------------------

    def ndim(self, j: int) -> int:
        """Number of dimensions of array ``j``, from its first ref (which must exist)."""
        return len(self._coords(j, self._ref_fields(j, 0), None))

    def find(self, j: int, key: tuple[int, ...]) -> int:
        """Binary search of ``key`` over the refs of array ``j``; index or -1."""
        ndim = self.arrays[j].ndim
        lo, hi = 0, int(self.rlen[j])
        below: tuple[int, ...] | None = None  # coordinates at lo - 1 and hi, once visited
        above: tuple[int, ...] | None = None
        while lo < hi:
            mid = (lo + hi) // 2
            c = self._coords(j, self._ref_fields(j, mid), ndim)
            if (below is not None and c <= below) or (above is not None and c >= above):
                self.reader.fail(
                    f"chunk refs of node {self.arrays[j].node_id.hex()} are not sorted and "
                    f"unique at {c}"
                )
            if c == key:
                return mid
            if c < key:
                lo, below = mid + 1, c
            else:
                hi, above = mid, c
        return -1

    def payload(self, j: int, i: int) -> ChunkPayload:
        """Decode ref ``i`` of array ``j`` alone."""
        f = self._ref_fields(j, i)
        am = self.arrays[j]
        coords = self._coords(j, f, am.ndim)
        offset = self._scalar(_U64S, f[2], "ChunkRef.offset") if f[2] >= 0 else 0
        length = self._scalar(_U64S, f[3], "ChunkRef.length") if f[3] >= 0 else 0
        lm = self._scalar(_U32S, f[7], "ChunkRef.checksum_last_modified") if f[7] >= 0 else 0
        if f[4] >= 0:
            p = f[4]
            if p + 12 > self.reader.size:
                self.reader.fail("ChunkRef.chunk_id is out of range")
            return NativePayload(bytes(self.buf[p : p + 12]), offset, length)
        if f[5] < 0 and f[8] < 0:
            if f[1] < 0:
                self.reader.fail(
                    f"chunk ref {coords} of node {am.node_id.hex()} has no inline, native or "
                    "virtual data"
                )
            s, n = self._vector(f[1], 1, "ChunkRef.inline")
            return InlinePayload(bytes(self.buf[s : s + n]))
        if f[8] >= 0:
            raw = self._location(f[8], f"chunk ref {coords} of node {am.node_id.hex()}")
        else:
            s, n = self._vector(f[5], 1, "ChunkRef.location")
            raw = bytes(self.buf[s : s + n])
        etag = None
        try:
            location = str(raw, "utf-8")
            if f[6] >= 0:
                s, n = self._vector(f[6], 1, "ChunkRef.checksum_etag")
                etag = str(self.buf[s : s + n], "utf-8")
        except UnicodeDecodeError as e:
            raise IcechunkError(
                f"virtual chunk ref {coords} of node {am.node_id.hex()} has a string that is "
                f"not UTF-8: {e}"
            ) from None
        return VirtualPayload(location, offset, length, etag, lm)

    # ---- bulk -------------------------------------------------------------------------------

    def _decompress_locations(self, pos: I64, mask: Bool, data_start: I64, data_len: I64) -> U8:
        """Decompress every compressed location; returns the buffer extended with them and
        points ``data_start``/``data_len`` of those refs at the decompressed copies."""
        r = self.reader
        starts, lens = r.vector(pos[mask], 1, "ChunkRef.compressed_location")
        if self.locations is None:
            r.fail("compressed chunk location present but no decompression dictionary available")
        pieces = [
            self.locations.decompress(bytes(r.u8[s : s + n]), "a compressed chunk location")
            for s, n in zip(starts.tolist(), lens.tolist(), strict=True)
        ]
        out_len = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        data_len[mask] = out_len
        data_start[mask] = r.size + np.cumsum(out_len) - out_len
        blob: U8 = np.concatenate([r.u8, np.frombuffer(b"".join(pieces), dtype=np.uint8)])
        return blob

    def decode_all(self) -> None:
        """Decode the refs of every array into numpy columns (vectorised, once)."""
        r = self.reader
        rlen = self.rlen
        tpos = r.offsets(np.array(self.rstart, dtype=np.int64), rlen, "ChunkRef")
        f = r.tables(tpos, _REF_FIELDS, "ChunkRef")
        n = len(tpos)

        istart, ilen = r.vector(f.require(0, "ChunkRef.index"), 4, "ChunkRef.index")
        flat = r._u32[_gather_index(istart // 4, ilen)]

        has_cid, has_inl = f.present(4), f.present(1)
        has_cloc = f.present(8) & ~has_cid
        has_loc = f.present(5) | has_cloc
        kind = np.where(has_cid, NATIVE, np.where(has_loc, VIRTUAL, INLINE)).astype(np.uint8)
        none = ~(has_cid | has_loc | has_inl)
        if none.any():
            r.fail(
                f"chunk ref at byte {int(tpos[none.argmax()])} has no inline, native or "
                "virtual data"
            )

        def u64_field(i: int, name: str) -> U64:
            p = f.pos(i)
            out = np.zeros(n, dtype=np.uint64)
            m = p >= 0
            out[m] = r.u64(p[m], name)
            return out

        offset = u64_field(2, "ChunkRef.offset")
        length = u64_field(3, "ChunkRef.length")
        chunk_id = np.zeros((n, 12), dtype=np.uint8)
        chunk_id[has_cid] = r.structs(f.pos(4)[has_cid], 12, "ChunkRef.chunk_id")
        last_modified = np.zeros(n, dtype=np.uint32)
        plm = f.pos(7)
        mlm = plm >= 0
        last_modified[mlm] = r.u32(plm[mlm], "ChunkRef.checksum_last_modified")

        data_start = np.zeros(n, dtype=np.int64)
        data_len = np.zeros(n, dtype=np.int64)
        inl = kind == INLINE
        data_start[inl], data_len[inl] = r.vector(f.pos(1)[inl], 1, "ChunkRef.inline")
        plain = (kind == VIRTUAL) & ~has_cloc
        data_start[plain], data_len[plain] = r.vector(f.pos(5)[plain], 1, "ChunkRef.location")
        blob = r.u8
        if has_cloc.any():
            blob = self._decompress_locations(f.pos(8), has_cloc, data_start, data_len)
        vir = kind == VIRTUAL
        etag_start = np.zeros(n, dtype=np.int64)
        etag_len = np.full(n, -1, dtype=np.int64)
        ve = vir & f.present(6)
        etag_start[ve], etag_len[ve] = r.vector(f.pos(6)[ve], 1, "ChunkRef.checksum_etag")

        ref_end = np.cumsum(rlen)
        coord_end = np.cumsum(ilen)
        columns = []
        for j, am in enumerate(self.arrays):
            lo, hi = int(ref_end[j] - rlen[j]), int(ref_end[j])
            nid = am.node_id
            nd = int(ilen[lo]) if hi > lo else 0
            if hi > lo and (ilen[lo:hi] != nd).any():
                r.fail(f"chunk refs of node {nid.hex()} have different numbers of dimensions")
            c0 = int(coord_end[lo] - ilen[lo]) if hi > lo else 0
            coords = flat[c0 : c0 + nd * (hi - lo)].reshape(hi - lo, nd)
            bad = _first_unsorted(coords)
            if bad >= 0:
                r.fail(
                    f"chunk refs of node {nid.hex()} are not sorted and unique at "
                    f"{tuple(int(c) for c in coords[bad])}"
                )
            columns.append((lo, hi, coords))
        # Only after every check passed, so that a failure leaves all arrays undecoded.
        for am, (lo, hi, coords) in zip(self.arrays, columns, strict=True):
            am._set_columns(
                coords,
                kind[lo:hi],
                chunk_id[lo:hi],
                offset[lo:hi],
                length[lo:hi],
                blob,
                data_start[lo:hi],
                data_len[lo:hi],
                etag_start[lo:hi],
                etag_len[lo:hi],
                last_modified[lo:hi],
            )


def decode_manifest(buf: bytes | bytearray | memoryview) -> Manifest:
    """Decode a manifest flatbuffer (no header, already decompressed).

    Only the manifest and array tables are decoded here. The chunk refs stay in ``buf``: a
    single :meth:`ArrayManifest.find` / :meth:`ArrayManifest.payload` reads just the refs it
    visits, and the first use of any column decodes (and fully validates) the refs of all
    arrays at once.

    Parameters
    ----------
    buf
        The flatbuffer bytes, kept by the result; decoded columns may reference them without
        copying.

    Returns
    -------
    Manifest
        The manifest, one :class:`ArrayManifest` per array.

    Raises
    ------
    IcechunkError
        If the manifest or array tables are damaged (offsets out of range, missing required
        fields, arrays not sorted by node id). Damage in the chunk refs is reported by the
        lookup or column access that meets it: offsets out of range, missing required fields,
        refs of an array with different dimensions, unsorted refs or an unknown ref kind.
    """
    r = _Reader(buf, "manifest")
    root = r.tables(r.root(), 4, "Manifest")
    mid = r.structs(root.require(0, "Manifest.id"), 12, "Manifest.id")[0].tobytes()
    astart, alen = r.vector(root.require(1, "Manifest.arrays"), 4, "Manifest.arrays")
    am_pos = r.offsets(astart, alen, "ArrayManifest")
    amf = r.tables(am_pos, 2, "ArrayManifest")
    node_ids = r.structs(amf.require(0, "ArrayManifest.node_id"), 8, "ArrayManifest.node_id")
    rstart, rlen = r.vector(amf.require(1, "ArrayManifest.refs"), 4, "ArrayManifest.refs")
    refs = _LazyRefs(r, buf, rstart, rlen, _location_decompressor(r, root))
    for j in range(len(am_pos)):
        nid = node_ids[j].tobytes()
        if refs.arrays and refs.arrays[-1].node_id >= nid:
            r.fail(f"arrays are not sorted by node id at node {nid.hex()}")
        refs.arrays.append(ArrayManifest._undecoded(nid, refs, j, int(rlen[j])))
    return Manifest(mid, refs.arrays)
