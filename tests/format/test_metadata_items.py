"""``[MetadataItem]`` vectors, shared by snapshots and the repo object."""

from __future__ import annotations

import pytest

from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.flatbuf import Builder, required, root_table
from pyicechunk.format.metadata_items import read_metadata_items, write_metadata_items


def _root_with(items: list[tuple[str, bytes]]) -> bytes:
    b = Builder()
    vec = write_metadata_items(b, items)
    b.start_table(1)
    b.add_offset(0, vec)
    return b.finish(b.end_table())


def test_round_trip_keeps_order_and_bytes() -> None:
    items = [("a", b"\x01"), ("b", b""), ("é", bytes(range(40)))]
    vec = required(root_table(_root_with(items)).vector(0, 4), "Root.items")
    assert list(read_metadata_items(vec, "Root.items")) == items


def test_item_without_value_is_named() -> None:
    b = Builder()
    name = b.create_string("k")
    b.start_table(2)
    b.add_offset(0, name)
    item = b.end_table()
    vec = b.create_offset_vector([item])
    b.start_table(1)
    b.add_offset(0, vec)
    buf = b.finish(b.end_table())
    items = read_metadata_items(required(root_table(buf).vector(0, 4), "R.m"), "R.m")
    with pytest.raises(IcechunkError, match=r"required field R\.m\[0\]\.value is missing"):
        list(items)
