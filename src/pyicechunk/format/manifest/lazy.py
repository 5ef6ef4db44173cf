"""Chunk refs read straight from a manifest flatbuffer: single lookups and the bulk decode."""

from __future__ import annotations

import struct

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import I64, U8, U64, Bool
from pyicechunk.format.flatbuf import ColumnReader
from pyicechunk.format.manifest.chunk_refs import (
    INLINE,
    NATIVE,
    VIRTUAL,
    ChunkPayload,
    InlinePayload,
    NativePayload,
    RefColumns,
    VirtualPayload,
    first_unsorted,
)
from pyicechunk.format.manifest.v2 import LocationDecompressor

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

REF_FIELDS = 9
"""ChunkRef slots read: 0 index .. 7 checksum_last_modified, 8 compressed_location (spec 2);
slot 9 (extra) is ignored."""


class LazyRefs:
    """The undecoded chunk refs of every array of one manifest flatbuffer.

    A single-chunk read needs about log2(n) ref tables, so :meth:`find` and :meth:`payload`
    read those tables one by one with the same checks as the vectorised decoder (bounds,
    alignment, vtable consistency, required fields, dimensions). The first bulk use of any
    array decodes the refs of all arrays at once (:meth:`columns`), which also checks what
    single lookups cannot: that every ref is well formed and the refs are sorted. A lookup
    checks that the coordinates it visits are consistent with a sorted order; a damaged
    coordinate that keeps them consistent can make it miss a ref (answer "absent"), but every
    ref it returns was read and checked in full.

    Parameters
    ----------
    reader
        The reader of the manifest flatbuffer.
    rstart, rlen
        Start and length of each array's vector of ref offsets.
    node_ids
        Each array's node id, for messages.
    locations
        The decompressor of compressed virtual locations, if the manifest has a dictionary.
    """

    __slots__ = (
        "_columns",
        "_ndims",
        "locations",
        "lookups",
        "node_ids",
        "reader",
        "rlen",
        "rstart",
    )

    def __init__(
        self,
        reader: ColumnReader,
        rstart: I64,
        rlen: I64,
        node_ids: list[bytes],
        locations: LocationDecompressor | None,
    ) -> None:
        self.reader = reader
        self.rstart = [int(x) for x in rstart]
        self.rlen = rlen
        self.node_ids = node_ids
        self.locations = locations
        self.lookups = 0
        self._ndims: list[int | None] = [None] * len(node_ids)
        self._columns: list[RefColumns] | None = None

    @property
    def decoded(self) -> bool:
        """Whether :meth:`columns` decoded the refs already."""
        return self._columns is not None

    def _location(self, pos: int, what: str) -> bytes:
        """The bytes of the compressed location vector referenced at ``pos``, decompressed."""
        r = self.reader
        s, n = r.vector_at(pos, 1, "ChunkRef.compressed_location")
        if self.locations is None:
            r.fail(
                f"{what}: compressed chunk location present but no decompression dictionary "
                "available"
            )
        return self.locations.decompress(bytes(r.buf[s : s + n]), what)

    def _ref_fields(self, j: int, i: int) -> list[int]:
        """Positions of the fields of ref ``i`` of array ``j`` (-1 if absent), validated."""
        if not 0 <= i < int(self.rlen[j]):
            raise IndexError(i)
        tpos = self.reader.deref_at(self.rstart[j] + 4 * i, "ChunkRef")
        return self.reader.table_at(tpos, REF_FIELDS, "ChunkRef")

    def _coords(self, j: int, fields: list[int], ndim: int | None) -> tuple[int, ...]:
        r = self.reader
        if fields[0] < 0:
            r.fail("required field ChunkRef.index is missing")
        start, n = r.vector_at(fields[0], 4, "ChunkRef.index")
        if ndim is not None and n != ndim:
            nid = self.node_ids[j].hex()
            r.fail(f"chunk refs of node {nid} have different numbers of dimensions")
        return struct.unpack_from(f"<{n}I", r.buf, start)

    # ---- single lookups ---------------------------------------------------------------------

    def ndim(self, j: int) -> int:
        """Number of dimensions of array ``j``, from its first ref (which must exist)."""
        ndim = self._ndims[j]
        if ndim is None:
            ndim = self._ndims[j] = len(self._coords(j, self._ref_fields(j, 0), None))
        return ndim

    def find(self, j: int, key: tuple[int, ...]) -> int:
        """Binary search of ``key`` over the refs of array ``j``; index or -1."""
        ndim = self.ndim(j)
        lo, hi = 0, int(self.rlen[j])
        below: tuple[int, ...] | None = None  # coordinates at lo - 1 and hi, once visited
        above: tuple[int, ...] | None = None
        while lo < hi:
            mid = (lo + hi) // 2
            c = self._coords(j, self._ref_fields(j, mid), ndim)
            if (below is not None and c <= below) or (above is not None and c >= above):
                self.reader.fail(
                    f"chunk refs of node {self.node_ids[j].hex()} are not sorted and unique at {c}"
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
        r = self.reader
        buf = r.buf
        f = self._ref_fields(j, i)
        coords = self._coords(j, f, self.ndim(j))
        offset = r.scalar_at(_U64, f[2], "ChunkRef.offset") if f[2] >= 0 else 0
        length = r.scalar_at(_U64, f[3], "ChunkRef.length") if f[3] >= 0 else 0
        lm = r.scalar_at(_U32, f[7], "ChunkRef.checksum_last_modified") if f[7] >= 0 else 0
        node = self.node_ids[j].hex()
        if f[4] >= 0:
            p = f[4]
            if p + 12 > r.size:
                r.fail("ChunkRef.chunk_id is out of range")
            return NativePayload(bytes(buf[p : p + 12]), offset, length)
        if f[5] < 0 and f[8] < 0:
            if f[1] < 0:
                r.fail(f"chunk ref {coords} of node {node} has no inline, native or virtual data")
            s, n = r.vector_at(f[1], 1, "ChunkRef.inline")
            return InlinePayload(bytes(buf[s : s + n]))
        if f[8] >= 0:
            raw = self._location(f[8], f"chunk ref {coords} of node {node}")
        else:
            s, n = r.vector_at(f[5], 1, "ChunkRef.location")
            raw = bytes(buf[s : s + n])
        etag = None
        try:
            location = str(raw, "utf-8")
            if f[6] >= 0:
                s, n = r.vector_at(f[6], 1, "ChunkRef.checksum_etag")
                etag = str(buf[s : s + n], "utf-8")
        except UnicodeDecodeError as e:
            raise IcechunkError(
                f"virtual chunk ref {coords} of node {node} has a string that is not UTF-8: {e}",
                kind="deserialization",
            ) from None
        return VirtualPayload(location, offset, length, etag, lm)

    # ---- bulk -------------------------------------------------------------------------------

    def columns(self, j: int) -> RefColumns:
        """The columns of array ``j``; the first call decodes the refs of every array.

        Raises
        ------
        IcechunkError
            If any ref of the manifest is damaged or an array's refs are not sorted; nothing
            is kept then, so every later call fails the same way.
        """
        columns = self._columns
        if columns is None:
            columns = self._columns = self._decode_all()
        return columns[j]

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

    def _decode_all(self) -> list[RefColumns]:
        """Decode the refs of every array into numpy columns (vectorised)."""
        r = self.reader
        rlen = self.rlen
        tpos = r.offsets(np.array(self.rstart, dtype=np.int64), rlen, "ChunkRef")
        f = r.tables(tpos, REF_FIELDS, "ChunkRef")
        n = len(tpos)

        istart, ilen = r.vector(f.require(0, "ChunkRef.index"), 4, "ChunkRef.index")
        flat = r.u32_elements(istart, ilen)

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
        out = []
        for j, nid in enumerate(self.node_ids):
            lo, hi = int(ref_end[j] - rlen[j]), int(ref_end[j])
            nd = int(ilen[lo]) if hi > lo else 0
            if hi > lo and (ilen[lo:hi] != nd).any():
                r.fail(f"chunk refs of node {nid.hex()} have different numbers of dimensions")
            c0 = int(coord_end[lo] - ilen[lo]) if hi > lo else 0
            coords = flat[c0 : c0 + nd * (hi - lo)].reshape(hi - lo, nd)
            bad = first_unsorted(coords)
            if bad >= 0:
                r.fail(
                    f"chunk refs of node {nid.hex()} are not sorted and unique at "
                    f"{tuple(int(c) for c in coords[bad])}"
                )
            out.append(
                RefColumns(
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
            )
        return out
