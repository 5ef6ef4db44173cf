"""The transaction-log flatbuffer (FORMAT-V1 §6, FORMAT-V2 §9): :func:`encode_transaction_log`
and :func:`decode_transaction_log`.

Touched chunk coordinates are kept as one ``(n, ndim)`` uint32 array per array node and are
encoded and decoded with vectorised layouts, like manifests. The spec byte chooses what is
written (spec 2 adds ``moved_nodes``, in :mod:`pyicechunk.format.transaction_log.v2`); the
decoder reads both layouts by field presence.
"""

from __future__ import annotations

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.arrays import U32
from pyicechunk.format.flatbuf import ColumnReader, gather_index, new_buffer, vtable_block
from pyicechunk.format.header import SPEC_V1, SPEC_V2, check_spec_version
from pyicechunk.format.transaction_log.model import TransactionLog, checked_id
from pyicechunk.format.transaction_log.v2 import (
    MOVE_VTABLE,
    ROOT_VTABLE,
    decode_moves,
    encode_moves,
)

# slots 1..6 of the TransactionLog table, in field order (spec §6: 5 = arrays, 6 = groups)
_ID_LISTS = (
    "new_groups",
    "new_arrays",
    "deleted_groups",
    "deleted_arrays",
    "updated_arrays",
    "updated_groups",
)

# vtables: [vtable bytes, table bytes, field offsets...]
_VT_LOG = (20, 44, 4, 16, 20, 24, 28, 32, 36, 40)  # id, six id lists, updated_chunks
_VT_UPDATED = (8, 16, 4, 12)  # node_id, chunks
_VT_INDICES = (6, 8, 4)  # coords


def encode_transaction_log(tx: TransactionLog, spec_version: int = SPEC_V1) -> bytes:
    """Encode a transaction log flatbuffer (no header, no compression).

    Id lists and ``updated_chunks`` are written sorted by node id bytes, and the coordinates
    of each entry sorted lexicographically; spec 2 adds ``moved_nodes`` sorted by
    :func:`move_sort_key` of the destination.

    Parameters
    ----------
    tx
        The transaction log.
    spec_version
        The layout to write; moves exist only in spec 2.

    Returns
    -------
    bytes
        The log's flatbuffer, to be wrapped in a header of the same spec version.

    Raises
    ------
    IcechunkError
        On ids of the wrong size, coordinates that are not an ``(n, ndim)`` array, or moves
        in a spec-1 log.
    ValueError
        If ``spec_version`` is not supported.
    """
    v2 = check_spec_version(spec_version) == SPEC_V2
    if tx.moved_nodes and not v2:
        raise IcechunkError(
            "spec-1 transaction logs cannot record moved nodes",
            kind="unsupported-operation-for-version",
        )
    log_id = checked_id(tx.id, 12, "a transaction log id")
    lists = [
        sorted(checked_id(x, 8, f"node id in {name}") for x in getattr(tx, name))
        for name in _ID_LISTS
    ]
    entries = []
    for nid in sorted(tx.updated_chunks):
        c = np.asarray(tx.updated_chunks[nid])
        if c.ndim != 2:
            raise IcechunkError(
                f"updated chunks of node {bytes(nid).hex()} must be (n, ndim)", kind="serialization"
            )
        if c.size and ((c < 0) | (c > np.iinfo(np.uint32).max)).any():
            raise IcechunkError(
                f"chunk coordinates of node {bytes(nid).hex()} must fit in u32",
                kind="serialization",
            )
        c = c.astype(np.uint32)
        if len(c) > 1 and c.shape[1]:
            c = c[np.lexsort(c.T[::-1])]
        entries.append((checked_id(nid, 8, "node id in updated_chunks"), c))

    vt_list: list[tuple[int, ...]] = [ROOT_VTABLE if v2 else _VT_LOG, _VT_UPDATED, _VT_INDICES]
    if v2:
        vt_list.append(MOVE_VTABLE)
    vts, vt_pos = vtable_block(vt_list)
    vt_log, vt_upd, vt_idx = vt_pos[:3]
    table = 8 + len(vts)
    pos = table + vt_list[0][1]
    list_pos = []
    for ids in lists:
        list_pos.append(pos)
        pos += 4 + 8 * len(ids)
    chunks_vec = pos
    pos += 4 + 4 * len(entries)
    layout = []
    for _, c in entries:
        n, nd = c.shape
        layout.append(pos)
        pos += 16 + 4 + 4 * n + n * (12 + 4 * nd)
    moves = b""
    if v2:
        moves = encode_moves(tx.moved_nodes, pos, vt_pos[3])
    end = pos + len(moves)
    if end >= 1 << 31:
        raise IcechunkError(
            f"transaction log would be {end} bytes; the limit is 2 GiB", kind="serialization"
        )

    buf = new_buffer(end, vts, table, vt_log)
    b32 = buf.view("<u4")
    if v2:
        buf[pos:] = np.frombuffer(moves, dtype=np.uint8)
        b32[(table + 44) // 4] = pos - (table + 44)
    buf[table + 4 : table + 16] = np.frombuffer(log_id, dtype=np.uint8)
    for slot, (ids, lp) in enumerate(zip(lists, list_pos, strict=True)):
        at = table + 16 + 4 * slot
        b32[at // 4] = lp - at
        b32[lp // 4] = len(ids)
        buf[lp + 4 : lp + 4 + 8 * len(ids)] = np.frombuffer(b"".join(ids), dtype=np.uint8)
    at = table + 40
    b32[at // 4] = chunks_vec - at
    b32[chunks_vec // 4] = len(entries)
    for j, ((nid, c), a) in enumerate(zip(entries, layout, strict=True)):
        slot = chunks_vec + 4 + 4 * j
        b32[slot // 4] = a - slot
        b32[a // 4] = a - vt_upd
        buf[a + 4 : a + 12] = np.frombuffer(nid, dtype=np.uint8)
        b32[(a + 12) // 4] = 4
        n, nd = c.shape
        b32[(a + 16) // 4] = n
        if n == 0:
            continue
        slots = a + 20 + 4 * np.arange(n, dtype=np.int64)
        rec = a + 20 + 4 * n + (12 + 4 * nd) * np.arange(n, dtype=np.int64)
        b32[slots // 4] = rec - slots
        b32[rec // 4] = rec - vt_idx
        b32[(rec + 4) // 4] = 4
        b32[(rec + 8) // 4] = nd
        if nd:
            b32[((rec + 12) // 4)[:, None] + np.arange(nd)] = c
    return buf.tobytes()


def decode_transaction_log(buf: bytes | bytearray | memoryview) -> TransactionLog:
    """Decode a transaction log flatbuffer (no header, already decompressed).

    Parameters
    ----------
    buf
        The flatbuffer bytes.

    Returns
    -------
    TransactionLog
        Lists of node ids, and coordinates per updated array (in stored order).

    Raises
    ------
    IcechunkError
        If the buffer is damaged or the coordinates of one array differ in dimensions.
    """
    r = ColumnReader(buf, "transaction log")
    root = r.tables(r.root(), 9, "TransactionLog")
    log_id = r.structs(root.require(0, "TransactionLog.id"), 12, "TransactionLog.id")
    lists: list[list[bytes]] = []
    for slot, name in enumerate(_ID_LISTS, start=1):
        start, n = r.vector(root.require(slot, f"TransactionLog.{name}"), 8, name)
        rows = r.structs(gather_index(start, n * 8), 1, name).reshape(-1, 8)
        lists.append([row.tobytes() for row in rows])

    ustart, ulen = r.vector(root.require(7, "TransactionLog.updated_chunks"), 4, "updated_chunks")
    upos = r.offsets(ustart, ulen, "ArrayUpdatedChunks")
    uf = r.tables(upos, 2, "ArrayUpdatedChunks")
    node_ids = r.structs(uf.require(0, "ArrayUpdatedChunks.node_id"), 8, "node_id")
    cstart, clen = r.vector(uf.require(1, "ArrayUpdatedChunks.chunks"), 4, "chunks")
    tpos = r.offsets(cstart, clen, "ChunkIndices")
    cf = r.tables(tpos, 1, "ChunkIndices")
    istart, ilen = r.vector(cf.require(0, "ChunkIndices.coords"), 4, "ChunkIndices.coords")
    flat = r.u32_elements(istart, ilen)

    updated: dict[bytes, U32] = {}
    ref_end = np.cumsum(clen)
    coord_end = np.cumsum(ilen)
    for j in range(len(upos)):
        lo, hi = int(ref_end[j] - clen[j]), int(ref_end[j])
        nid = node_ids[j].tobytes()
        nd = int(ilen[lo]) if hi > lo else 0
        if hi > lo and (ilen[lo:hi] != nd).any():
            r.fail(f"updated chunks of node {nid.hex()} have different numbers of dimensions")
        c0 = int(coord_end[lo] - ilen[lo]) if hi > lo else 0
        if nid in updated:
            r.fail(f"node {nid.hex()} appears twice in updated_chunks")
        updated[nid] = flat[c0 : c0 + nd * (hi - lo)].reshape(hi - lo, nd)
    named = dict(zip(_ID_LISTS, lists, strict=True))
    return TransactionLog(
        log_id[0].tobytes(),
        new_groups=named["new_groups"],
        new_arrays=named["new_arrays"],
        deleted_groups=named["deleted_groups"],
        deleted_arrays=named["deleted_arrays"],
        updated_arrays=named["updated_arrays"],
        updated_groups=named["updated_groups"],
        updated_chunks=updated,
        moved_nodes=decode_moves(buf),
    )
