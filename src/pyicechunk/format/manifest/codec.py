"""The manifest flatbuffer (FORMAT-V1 §5, FORMAT-V2 §8): :func:`encode_manifest` and
:func:`decode_manifest`.

Encoding computes the whole layout with cumulative sums and fills one preallocated buffer,
writing arrays whose refs share one kind as blocks of records. Decoding reads the manifest and
array tables only and leaves the refs to :class:`~pyicechunk.format.manifest.lazy.LazyRefs`.
The spec byte chooses what is written (spec 2 adds compressed locations, in
:mod:`pyicechunk.format.manifest.v2`); the decoder reads both layouts by field presence.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import I64, U8, U32, U64, Bool
from pyicechunk.format.flatbuf import (
    ColumnReader,
    align,
    align_all,
    gather_index,
    new_buffer,
    vtable_block,
)
from pyicechunk.format.header import SPEC_V1, check_spec_version
from pyicechunk.format.manifest.chunk_refs import INLINE, NATIVE, VIRTUAL, first_unsorted
from pyicechunk.format.manifest.lazy import LazyRefs
from pyicechunk.format.manifest.model import ArrayManifest, Manifest
from pyicechunk.format.manifest.v2 import (
    MANIFEST_VTABLE_DICTIONARY,
    MANIFEST_VTABLE_PLAIN,
    VIRTUAL_VTABLES_COMPRESSED,
    LocationCompression,
    compress_locations,
    location_decompressor,
)

# vtables: [vtable bytes, table bytes, field offsets...], in the order of _layout's list
_VTABLES_V1 = (
    (8, 20, 4, 16),  # Manifest: id, arrays
    (8, 16, 4, 12),  # ArrayManifest: node_id, refs
    (8, 12, 4, 8),  # inline ChunkRef: index, inline
    (14, 36, 4, 0, 8, 16, 24),  # native ChunkRef: index, -, offset, length, chunk_id
    (20, 36, 4, 0, 8, 16, 0, 24, 28, 32),  # virtual: index, -, offset, length, -, loc, etag, lm
    (20, 36, 4, 0, 8, 16, 0, 24, 0, 32),  # virtual without etag
)


_VTABLES_V2_PLAIN = (MANIFEST_VTABLE_PLAIN, *_VTABLES_V1[1:])
_VTABLES_V2_DICTIONARY = (
    MANIFEST_VTABLE_DICTIONARY,
    *_VTABLES_V1[1:4],
    *VIRTUAL_VTABLES_COMPRESSED,
)


def _layout(
    spec_version: int,
    arrays: list[ArrayManifest],
    location_compression: LocationCompression | None,
    rng: random.Random | None,
) -> tuple[list[ArrayManifest], bytes | None, tuple[tuple[int, ...], ...]]:
    """The arrays to write, the location dictionary if any, and the vtables for a version."""
    if check_spec_version(spec_version) == SPEC_V1:
        return arrays, None, _VTABLES_V1
    dictionary = None
    if location_compression is not None:
        arrays, dictionary = compress_locations(arrays, location_compression, rng)
    if dictionary is None:
        return arrays, None, _VTABLES_V2_PLAIN
    return arrays, dictionary, _VTABLES_V2_DICTIONARY


@functools.cache
def _vtable_block(vtables: tuple[tuple[int, ...], ...]) -> tuple[bytes, list[int]]:
    """:func:`vtable_block` of one of the three vtable sets above, serialised once."""
    return vtable_block(vtables)


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
        The manifest flatbuffer, ready for :func:`~pyicechunk.format.header.encode_object`.

    Raises
    ------
    IcechunkError
        If there are no refs, a node id repeats, refs are not sorted or a size limit is hit.
    ValueError
        If ``spec_version`` is not supported.
    """
    manifest_id = bytes(manifest_id)
    if len(manifest_id) != 12:
        raise IcechunkError(
            f"a manifest id has 12 bytes, got {len(manifest_id)}", kind="serialization"
        )
    arrays = sorted(arrays, key=lambda a: a.node_id)
    if not arrays:
        raise IcechunkError("refusing to write an empty manifest (no arrays)", kind="serialization")
    for prev, a in itertools.pairwise(arrays):
        if prev.node_id == a.node_id:
            raise IcechunkError(
                f"node {a.node_id.hex()} appears twice in one manifest", kind="serialization"
            )
    for a in arrays:
        if len(a) == 0:
            raise IcechunkError(
                f"refusing to write node {a.node_id.hex()} without chunk refs", kind="serialization"
            )
        bad = first_unsorted(a.coords)
        if bad >= 0:
            raise IcechunkError(
                f"chunk refs of node {a.node_id.hex()} are not sorted and unique at "
                f"{tuple(int(c) for c in a.coords[bad])}",
                kind="serialization",
            )
        if (a.kind > VIRTUAL).any():
            raise IcechunkError(
                f"node {a.node_id.hex()} has an unknown chunk ref kind", kind="serialization"
            )

    arrays, dictionary, vt_list = _layout(spec_version, arrays, location_compression, rng)
    vts, (vt_man, vt_arr, vt_inl, vt_nat, vt_vir, vt_vir_ne) = _vtable_block(vt_list)
    table = 8 + len(vts)
    vec = table + vt_list[0][1]
    na = len(arrays)
    # plan array layouts first: everything is computed before the buffer is allocated
    pos = align(vec + 4 + 4 * na, 8)
    plans = []
    for a in arrays:
        n, nd = len(a), a.ndim
        iv = 4 + 4 * nd
        k = a.kind
        am = pos
        r0 = align(am + 20 + 4 * n, 8)
        single = int(k[0]) if (k == k[0]).all() else -1
        if single == NATIVE:
            rec_size = align(36 + iv, 8)
            rec = r0 + rec_size * np.arange(n, dtype=np.int64)
            plans.append(_Plan(am, rec, rec_size, single, None, None))
            pos = r0 + rec_size * n
            continue
        if single == INLINE:
            stride = align_all(12 + iv + 4 + a.data_len, 8)
            uniform = int(stride[0]) if (stride == stride[0]).all() else 0
            if uniform:  # payloads of one size (the usual case): evenly spaced records
                rec = r0 + uniform * np.arange(n, dtype=np.int64)
                pos = r0 + uniform * n
            else:
                rec = r0 + np.cumsum(stride) - stride
                pos = int(r0 + stride.sum())
            plans.append(_Plan(am, rec, uniform, single, None, None))
            continue
        loc_end = 36 + iv + 4 + a.data_len + 1
        has_etag = a.etag_len >= 0
        etag_at = align_all(loc_end, 4)
        vir_end = np.where(has_etag, etag_at + 4 + a.etag_len + 1, loc_end)
        size = np.where(
            k == NATIVE, 36 + iv, np.where(k == INLINE, 12 + iv + 4 + a.data_len, vir_end)
        )
        stride = align_all(size, 8)
        rec = r0 + np.cumsum(stride) - stride
        plans.append(_Plan(am, rec, 0, -1, etag_at, has_etag))
        pos = int(r0 + stride.sum())
    dict_at = pos = align(pos, 4)
    if dictionary is not None:
        pos = align(pos + 4 + len(dictionary), 8)  # the buffer is also viewed as u64
    if pos >= 1 << 31:
        raise IcechunkError(
            f"manifest would be {pos} bytes; flatbuffers must stay below 2 GiB",
            kind="serialization",
        )

    buf = new_buffer(pos, vts, table, vt_man)
    b32 = buf.view("<u4")
    b64 = buf.view("<u8")
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
        # The offsets vector: one u32 per ref, contiguous from am + 20 (a multiple of 4).
        first = (am + 20) // 4
        b32[first : first + len(a)] = plan.rec - 4 * np.arange(first, first + len(a))
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


def _copy_ranges(buf: U8, dst: I64, blob: U8, src: I64, lens: I64) -> None:
    """Copy ``blob[src[i] : src[i] + lens[i]]`` to ``buf[dst[i]:]`` for every ``i`` at once."""
    buf[gather_index(dst, lens)] = blob[gather_index(src, lens)]


def _put_byte_vectors(buf: U8, field: I64, vec: I64, blob: U8, src: I64, lens: I64) -> None:
    """Write ``[ubyte]`` vectors at ``vec`` (each ``blob[src[i]:][:lens[i]]``) and the offsets
    that point at them at ``field``."""
    b32 = buf.view("<u4")
    b32[field // 4] = vec - field
    b32[vec // 4] = lens
    _copy_ranges(buf, vec + 4, blob, src, lens)


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
        _copy_ranges(buf, plan.rec + 4 * words, a.blob, a.data_start, a.data_len)
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
        _put_byte_vectors(buf, r + 8, dvec, a.blob, a.data_start[inl], a.data_len[inl])
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
        _put_byte_vectors(buf, r + 24, loc, a.blob, a.data_start[vir], a.data_len[vir])
        b32[(r + 32) // 4] = a.last_modified[vir]
        ve = vir & has_etag
        if ve.any():
            r = rec[ve]
            et = rec[ve] + etag_at[ve]
            _put_byte_vectors(buf, r + 28, et, a.blob, a.etag_start[ve], a.etag_len[ve])


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
    r = ColumnReader(buf, "manifest")
    root = r.tables(r.root(), 4, "Manifest")
    mid = r.structs(root.require(0, "Manifest.id"), 12, "Manifest.id")[0].tobytes()
    astart, alen = r.vector(root.require(1, "Manifest.arrays"), 4, "Manifest.arrays")
    am_pos = r.offsets(astart, alen, "ArrayManifest")
    amf = r.tables(am_pos, 2, "ArrayManifest")
    node_ids = r.structs(amf.require(0, "ArrayManifest.node_id"), 8, "ArrayManifest.node_id")
    rstart, rlen = r.vector(amf.require(1, "ArrayManifest.refs"), 4, "ArrayManifest.refs")
    locations = location_decompressor(r, root)
    ids: list[bytes] = []
    for j in range(len(am_pos)):
        nid = node_ids[j].tobytes()
        if ids and ids[-1] >= nid:
            r.fail(f"arrays are not sorted by node id at node {nid.hex()}")
        ids.append(nid)
    refs = LazyRefs(r, rstart, rlen, ids, locations)
    arrays = [ArrayManifest.undecoded(nid, refs, j, int(rlen[j])) for j, nid in enumerate(ids)]
    return Manifest(mid, arrays)
