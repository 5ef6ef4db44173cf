"""Spec-2 transaction logs and their moved nodes (FORMAT-V2 §9), against 2.3.0's bytes."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import root_table
from pyicechunk.format.header import SPEC_V1, SPEC_V2, FileType, encode_object, open_object
from pyicechunk.format.ids import INITIAL_SNAPSHOT_ID
from pyicechunk.format.transaction_log import (
    MoveOperation,
    TransactionLog,
    decode_transaction_log,
    encode_transaction_log,
    move_sort_key,
)

from .._fixtures import FIXTURES, open_fixture


def test_initial_transaction_log() -> None:
    """FORMAT-V2 §9.3: id = initial id, every list present and empty; 112 bytes."""
    spec, buf = open_fixture("v2_txlog_initial", FileType.TRANSACTION_LOG)
    assert spec == SPEC_V2 and len(buf) == 112
    assert (FIXTURES / "v2_txlog_initial").stat().st_size == 118
    root = root_table(buf)
    assert all(root.field_pos(s, 4) for s in range(9))
    tx = decode_transaction_log(buf)
    assert tx == TransactionLog(INITIAL_SNAPSHOT_ID)
    ours = encode_transaction_log(TransactionLog(INITIAL_SNAPSHOT_ID), SPEC_V2)
    assert all(root_table(ours).field_pos(s, 4) for s in range(9))
    assert decode_transaction_log(ours) == tx


def test_reference_moves() -> None:
    _, buf = open_fixture("v2_txlog_765H9C89N67175SWEJDG", FileType.TRANSACTION_LOG)
    tx = decode_transaction_log(buf)
    assert [(m.from_path, m.to_path, m.is_array) for m in tx.moved_nodes] == [
        ("/grp", "/grp3", False),
        ("/grp/arr", "/grp3/arr", True),
    ]
    assert not tx.new_arrays and not tx.updated_chunks
    again = decode_transaction_log(encode_transaction_log(tx, SPEC_V2))
    assert again.moved_nodes == tx.moved_nodes


def test_moves_are_sorted_by_segments() -> None:
    moves = [
        MoveOperation(f"/x{i}", to, bytes([i]) * 8, i % 2 == 0)
        for i, to in enumerate(["/a-b", "/a/b", "/a", "/ab"])
    ]
    assert sorted(["/a-b", "/a/b", "/a"], key=move_sort_key) == ["/a", "/a/b", "/a-b"]
    tx = TransactionLog(b"t" * 12, new_arrays=[b"n" * 8], moved_nodes=moves)
    tx.updated_chunks[b"u" * 8] = np.array([[2, 1], [0, 5]], dtype=np.uint32)
    back = decode_transaction_log(encode_transaction_log(tx, SPEC_V2))
    assert [m.to_path for m in back.moved_nodes] == ["/a", "/a/b", "/a-b", "/ab"]
    assert back.new_arrays == [b"n" * 8]
    assert back.updated_chunks[b"u" * 8].tolist() == [[0, 5], [2, 1]]
    with pytest.raises(IcechunkError, match="cannot record moved nodes"):
        encode_transaction_log(tx, SPEC_V1)
    # a v1 log is unchanged and has no moves
    plain = TransactionLog(b"t" * 12, new_arrays=[b"n" * 8])
    assert decode_transaction_log(encode_transaction_log(plain)).moved_nodes == []


def test_damaged_transaction_log_raises_icechunk_error() -> None:
    _, buf = open_fixture("v2_txlog_765H9C89N67175SWEJDG", FileType.TRANSACTION_LOG)
    rng = random.Random(5)
    for _ in range(600):
        damaged = bytearray(buf)
        damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        try:
            decode_transaction_log(bytes(damaged))
        except IcechunkError:
            pass
    obj = encode_object(FileType.TRANSACTION_LOG, buf, spec_version=SPEC_V2)
    assert open_object(obj, FileType.TRANSACTION_LOG, "t") == (SPEC_V2, buf)
