"""Transaction logs: what one commit changed (FORMAT-V1 §6, FORMAT-V2 §9), used by diff and
rebase.

Touched chunk coordinates are kept as one ``(n, ndim)`` uint32 array per array node and are
encoded and decoded with vectorised layouts, like manifests. Spec 2 adds ``moved_nodes`` (one
entry per moved node, descendants included), always written, sorted by destination path
segment by segment; readers take it when present.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import required, root_table
from pyicechunk.format.header import SPEC_V1
from pyicechunk.format.manifest import (
    FILE_IDENTIFIER,
    U32,
    _gather_index,
    _Reader,
    _vtable_block,
)

__all__ = [
    "MoveOperation",
    "TransactionLog",
    "decode_transaction_log",
    "encode_transaction_log",
    "move_sort_key",
]

# slots 1..6 of the TransactionLog table, in field order (spec §6: 5 = arrays, 6 = groups)
_ID_LISTS = (
    "new_groups",
    "new_arrays",
    "deleted_groups",
    "deleted_arrays",
    "updated_arrays",
    "updated_groups",
)

_VT_LOG = (20, 44, 4, 16, 20, 24, 28, 32, 36, 40)  # id, six id lists, updated_chunks
_VT_LOG_V2 = (22, 48, 4, 16, 20, 24, 28, 32, 36, 40, 44)  # ... and moved_nodes
_VT_MOVE = (12, 24, 4, 8, 12, 20)  # from, to, node_id, node_type
_VT_UPDATED = (8, 16, 4, 12)  # node_id, chunks
_VT_INDICES = (6, 8, 4)  # coords


@dataclass(frozen=True, slots=True)
class MoveOperation:
    """A node moved by a rearrange commit: from its path in the parent snapshot to its path
    in this one."""

    from_path: str
    to_path: str
    node_id: bytes
    is_array: bool


def move_sort_key(path: str) -> tuple[bytes, ...]:
    """Order of ``moved_nodes``: by path segments, bytewise, a prefix first (so ``/a`` <
    ``/a/b`` < ``/a-b``, unlike the byte order of snapshot nodes)."""
    return tuple(segment.encode("utf-8") for segment in path.split("/"))


@dataclass
class TransactionLog:
    """The changes of one commit, by node id.

    Parameters
    ----------
    id
        12-byte id, equal to the snapshot id.
    new_groups, new_arrays, deleted_groups, deleted_arrays, updated_arrays, updated_groups
        8-byte node ids.
    updated_chunks
        Node id -> ``(n, ndim)`` uint32 coordinates of chunks written or deleted.
    moved_nodes
        Nodes moved (spec 2 only).
    """

    id: bytes
    new_groups: list[bytes] = field(default_factory=list)
    new_arrays: list[bytes] = field(default_factory=list)
    deleted_groups: list[bytes] = field(default_factory=list)
    deleted_arrays: list[bytes] = field(default_factory=list)
    updated_arrays: list[bytes] = field(default_factory=list)
    updated_groups: list[bytes] = field(default_factory=list)
    updated_chunks: dict[bytes, U32] = field(default_factory=dict)
    moved_nodes: list[MoveOperation] = field(default_factory=list)


def _check_id(value: bytes, size: int, what: str) -> bytes:
    value = bytes(value)
    if len(value) != size:
        raise IcechunkError(f"{what} must have {size} bytes, got {len(value)}")
    return value


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
        The flatbuffer, with file identifier ``Ichk``.

    Raises
    ------
    IcechunkError
        On ids of the wrong size, coordinates that are not an ``(n, ndim)`` array, or moves
        in a spec-1 log.
    """
    v2 = spec_version != SPEC_V1
    if tx.moved_nodes and not v2:
        raise IcechunkError("spec-1 transaction logs cannot record moved nodes")
    log_id = _check_id(tx.id, 12, "a transaction log id")
    lists = [
        sorted(_check_id(x, 8, f"node id in {name}") for x in getattr(tx, name))
        for name in _ID_LISTS
    ]
    entries = []
    for nid in sorted(tx.updated_chunks):
        c = np.asarray(tx.updated_chunks[nid])
        if c.ndim != 2:
            raise IcechunkError(f"updated chunks of node {bytes(nid).hex()} must be (n, ndim)")
        if c.size and ((c < 0) | (c > np.iinfo(np.uint32).max)).any():
            raise IcechunkError(f"chunk coordinates of node {bytes(nid).hex()} must fit in u32")
        c = c.astype(np.uint32)
        if len(c) > 1 and c.shape[1]:
            c = c[np.lexsort(c.T[::-1])]
        entries.append((_check_id(nid, 8, "node id in updated_chunks"), c))

    vt_list: list[tuple[int, ...]] = [_VT_LOG_V2 if v2 else _VT_LOG, _VT_UPDATED, _VT_INDICES]
    if v2:
        vt_list.append(_VT_MOVE)
    vts, vt_pos = _vtable_block(8, vt_list)
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
        moves = _encode_moves(tx.moved_nodes, pos, vt_pos[3])
    end = pos + len(moves)
    if end >= 1 << 31:
        raise IcechunkError(f"transaction log would be {end} bytes; the limit is 2 GiB")

    buf = np.zeros(end, dtype=np.uint8)
    b32 = buf.view("<u4")
    if v2:
        buf[pos:] = np.frombuffer(moves, dtype=np.uint8)
        b32[(table + 44) // 4] = pos - (table + 44)
    b32[0] = table
    buf[4:8] = np.frombuffer(FILE_IDENTIFIER, dtype=np.uint8)
    buf[8 : 8 + len(vts)] = np.frombuffer(vts, dtype=np.uint8)
    b32[table // 4] = table - vt_log
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


_MOVE_TABLE = struct.Struct("<iII8sB3x")


def _encode_moves(moves: list[MoveOperation], start: int, vtable: int) -> bytes:
    """The ``moved_nodes`` vector, its tables and strings, laid out from ``start`` (4-aligned)."""
    ordered = sorted(moves, key=lambda m: move_sort_key(m.to_path))
    n = len(ordered)
    tables_at = start + 4 + 4 * n
    strings_at = tables_at + _MOVE_TABLE.size * n
    head = bytearray(struct.pack(f"<I{n}I", n, *[0] * n))
    tables = bytearray()
    strings = bytearray()
    for i, move in enumerate(ordered):
        table = tables_at + _MOVE_TABLE.size * i
        struct.pack_into("<I", head, 4 + 4 * i, table - (start + 4 + 4 * i))
        offsets = []
        for text in (move.from_path, move.to_path):
            data = text.encode("utf-8")
            offsets.append(strings_at + len(strings))
            strings += struct.pack("<I", len(data)) + data + b"\0"
            strings += bytes(-len(strings) % 4)
        tables += _MOVE_TABLE.pack(
            table - vtable,
            offsets[0] - (table + 4),
            offsets[1] - (table + 8),
            _check_id(move.node_id, 8, "moved node id"),
            int(move.is_array),
        )
    return bytes(head + tables + strings)


def _decode_moves(buf: bytes | bytearray | memoryview) -> list[MoveOperation]:
    moves = root_table(buf).vector(8, 4)
    if moves is None:
        return []
    out = []
    for i in range(len(moves)):
        t = moves.table(i)
        where = f"TransactionLog.moved_nodes[{i}]"
        out.append(
            MoveOperation(
                required(t.string(0), f"{where}.from (Move operation missing required field)"),
                required(t.string(1), f"{where}.to (Move operation missing required field)"),
                required(
                    t.struct_bytes(2, 8), f"{where}.node_id (Move operation missing required field)"
                ),
                t.u8(3) == 1,
            )
        )
    return out


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
    r = _Reader(buf, "transaction log")
    root = r.tables(r.root(), 9, "TransactionLog")
    log_id = r.structs(root.require(0, "TransactionLog.id"), 12, "TransactionLog.id")
    lists: list[list[bytes]] = []
    for slot, name in enumerate(_ID_LISTS, start=1):
        start, n = r.vector(root.require(slot, f"TransactionLog.{name}"), 8, name)
        rows = r.structs(_gather_index(start, n * 8), 1, name).reshape(-1, 8)
        lists.append([row.tobytes() for row in rows])

    ustart, ulen = r.vector(root.require(7, "TransactionLog.updated_chunks"), 4, "updated_chunks")
    upos = r.offsets(ustart, ulen, "ArrayUpdatedChunks")
    uf = r.tables(upos, 2, "ArrayUpdatedChunks")
    node_ids = r.structs(uf.require(0, "ArrayUpdatedChunks.node_id"), 8, "node_id")
    cstart, clen = r.vector(uf.require(1, "ArrayUpdatedChunks.chunks"), 4, "chunks")
    tpos = r.offsets(cstart, clen, "ChunkIndices")
    cf = r.tables(tpos, 1, "ChunkIndices")
    istart, ilen = r.vector(cf.require(0, "ChunkIndices.coords"), 4, "ChunkIndices.coords")
    flat = r.u32(_gather_index(istart // 4, ilen) * 4, "coords").astype(np.uint32)

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
        moved_nodes=_decode_moves(buf),
    )
