"""Commit-property values as the reference encodes them."""

from __future__ import annotations

from typing import Any

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.snapshot import (
    Snapshot,
    decode_metadata_value,
    encode_metadata_value,
    encode_snapshot,
)


# Vectors from the spec (§4.6), which were checked against the reference's rmp_serde output.
@pytest.mark.parametrize(
    ("value", "packed"),
    [
        ("me", "a26d65"),
        (5, "05"),
        (-3, "fd"),
        (1.5, "cb3ff8000000000000"),
        (2**40, "cf0000010000000000"),
        ({"z": 1, "a": True}, "82a161c3a17a01"),
        (None, "c0"),
        (False, "c2"),
        (-(2**40), "d3ffffff0000000000"),
        ([1, "x"], "9201a178"),
        ((1,), "9101"),
    ],
)
def test_metadata_value_vectors(value: Any, packed: str) -> None:
    assert encode_metadata_value(value).hex() == packed
    decoded = decode_metadata_value(bytes.fromhex(packed))
    assert decoded == (list(value) if isinstance(value, tuple) else value)


def test_metadata_values_the_reference_coerces() -> None:
    assert decode_metadata_value(encode_metadata_value(float("nan"))) is None
    assert decode_metadata_value(encode_metadata_value(2**64)) == float(2**64)


def test_metadata_rejects_non_json() -> None:
    with pytest.raises(TypeError, match=r"'author'\['x'\]\[1\].*bytes"):
        encode_metadata_value({"x": [1, b"raw"]}, "author")
    with pytest.raises(TypeError, match="keys must be strings"):
        encode_metadata_value({1: 2})
    with pytest.raises(TypeError, match="'k'"):
        encode_snapshot(Snapshot(b"S" * 12, None, (), 0, "", {"k": object()}, ()))
    with pytest.raises(IcechunkError, match="malformed commit metadata"):
        decode_metadata_value(b"\xc1")
