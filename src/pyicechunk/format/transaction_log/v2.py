"""What spec 2 adds to transaction logs: ``moved_nodes`` (FORMAT-V2 §9).

Spec-2 logs always carry the vector (empty when nothing moved), in root slot 8; readers take it
whenever it is present, whatever the header says.
"""

from __future__ import annotations

import struct

from pyicechunk.format.flatbuf import required, root_table
from pyicechunk.format.transaction_log.model import MoveOperation, checked_id, move_sort_key

# vtables: [vtable bytes, table bytes, field offsets...]
ROOT_VTABLE = (22, 48, 4, 16, 20, 24, 28, 32, 36, 40, 44)
"""The spec-1 root (id, six id lists, updated_chunks) and ``moved_nodes`` at table byte 44."""
MOVE_VTABLE = (12, 24, 4, 8, 12, 20)  # from, to, node_id, node_type
"""Every ``MoveOperation`` table."""

_MOVE_TABLE = struct.Struct("<iII8sB3x")


def encode_moves(moves: list[MoveOperation], start: int, vtable: int) -> bytes:
    """Lay out the ``moved_nodes`` vector, its tables and their strings.

    Parameters
    ----------
    moves
        The moves, in any order; they are written sorted by :func:`move_sort_key` of the
        destination.
    start
        Where the block goes in the buffer (4-aligned).
    vtable
        Position of :data:`MOVE_VTABLE` in the buffer.

    Returns
    -------
    bytes
        The block, to be placed at ``start``.

    Raises
    ------
    IcechunkError
        If a node id does not have 8 bytes.
    """
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
            checked_id(move.node_id, 8, "moved node id"),
            int(move.is_array),
        )
    return bytes(head + tables + strings)


def decode_moves(buf: bytes | bytearray | memoryview) -> list[MoveOperation]:
    """Read ``moved_nodes`` from a transaction-log flatbuffer; empty when absent.

    Raises
    ------
    IcechunkError
        If the vector or a move is damaged or a move lacks one of its fields.
    """
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
