"""Crockford base32 ids (spec §1)."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyicechunk.format.ids import (
    INITIAL_SNAPSHOT_ID,
    decode_id,
    encode_id,
    new_chunk_id,
    new_manifest_id,
    new_node_id,
    new_snapshot_id,
)

_STD_TO_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def _oracle(raw: bytes) -> str:
    """Standard base32 groups bits the same way; only the symbols differ."""
    return base64.b32encode(raw).rstrip(b"=").translate(_STD_TO_CROCKFORD).decode()


def test_reference_vectors() -> None:
    assert encode_id(bytes(range(12))) == "000G40R40M30E209185G"
    assert encode_id(INITIAL_SNAPSHOT_ID) == "1CECHNKREP0F1RSTCMT0"
    assert decode_id("1CECHNKREP0F1RSTCMT0", 12) == INITIAL_SNAPSHOT_ID
    assert encode_id(b"\xff" * 8) == "ZZZZZZZZZZZZY"  # last symbol: 4 data bits + 1 zero bit


@given(st.binary(min_size=12, max_size=12) | st.binary(min_size=8, max_size=8))
def test_round_trip(raw: bytes) -> None:
    text = encode_id(raw)
    assert text == _oracle(raw)
    assert len(text) == (20 if len(raw) == 12 else 13)
    assert decode_id(text, len(raw)) == raw
    assert decode_id(text.lower(), len(raw)) == raw


@given(st.binary(min_size=12, max_size=12), st.binary(min_size=12, max_size=12))
def test_string_order_is_byte_order(a: bytes, b: bytes) -> None:
    assert (encode_id(a) < encode_id(b)) == (a < b)


@given(st.binary(max_size=20))
def test_other_lengths_match_base32(raw: bytes) -> None:
    assert encode_id(raw) == _oracle(raw)


def test_lenient_decoding() -> None:
    canonical = encode_id(bytes(range(12)))
    assert decode_id("OOOG4OR4OM3OE2O9I85G", 12) == bytes(range(12))
    assert decode_id("ooog40r40m30e2o9l85g", 12) == bytes(range(12))
    # Trailing pad bits are ignored: the last symbol may carry nonzero padding.
    assert decode_id(canonical[:-1] + "H", 12) == bytes(range(12))
    # 14 symbols still hold exactly 8 bytes.
    assert decode_id("ZZZZZZZZZZZZZZ", 8) == b"\xff" * 8


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("", 12),
        ("000G40R40M30E209185", 12),  # 19 symbols: 11 bytes
        ("000G40R40M30E209185G0", 12),  # 21 symbols: 13 bytes
        ("000G40R40M30E209185U", 12),  # U is not in the alphabet
        ("000G40R40M30E209185=", 12),
        ("000G40R40M30E20-185G", 12),
        (" 000G40R40M30E209185G", 12),
        ("+000G40R40M30E20918G", 12),
        ("000G40R40M30E209185G", 8),
    ],
)
def test_invalid_text_raises_value_error(text: str, nbytes: int) -> None:
    with pytest.raises(ValueError, match="invalid id"):
        decode_id(text, nbytes)


def test_new_ids_are_random_with_the_right_length() -> None:
    for make, size in (
        (new_snapshot_id, 12),
        (new_manifest_id, 12),
        (new_chunk_id, 12),
        (new_node_id, 8),
    ):
        ids = {make() for _ in range(100)}
        assert len(ids) == 100
        assert {len(i) for i in ids} == {size}


def test_new_ids_stay_distinct_across_buffer_refills() -> None:
    # Far more ids than one block of buffered randomness holds, in mixed sizes.
    made = [new_chunk_id() if i % 3 else new_node_id() for i in range(3000)]
    assert len(set(made)) == len(made)
    assert {len(i) for i in made} == {8, 12}


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    new_chunk_id()  # the buffer now holds unused bytes, which the child inherits
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave at once
        os.close(read_end)
        os.write(write_end, b"".join(new_chunk_id() for _ in range(10)))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = b"".join(new_chunk_id() for _ in range(10))
    assert len(child) == len(parent) == 120
    child_ids = {child[i : i + 12] for i in range(0, 120, 12)}
    parent_ids = {parent[i : i + 12] for i in range(0, 120, 12)}
    assert not child_ids & parent_ids
