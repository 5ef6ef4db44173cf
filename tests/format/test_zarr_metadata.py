"""What Icechunk reads out of a node's zarr.json: deeply nested documents."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from zarr.core.buffer import cpu

import pyicechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.format.zarr_metadata import ArrayMeta, GroupMeta, parse_node_metadata

ARRAY = (
    b'{"zarr_format":3,"node_type":"array","shape":[4],"data_type":"int8",'
    b'"chunk_grid":{"name":"regular","configuration":{"chunk_shape":[2]}},'
    b'"chunk_key_encoding":{"name":"default"},"fill_value":0,"codecs":[{"name":"bytes"}],'
    b'"attributes":{"deep":%s}}'
)
GROUP = b'{"zarr_format":3,"node_type":"group","attributes":{"deep":%s}}'


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_the_parser_cannot_follow_is_an_icechunk_error() -> None:
    deep = nested(100_000)
    for template in (ARRAY, GROUP):
        with pytest.raises(IcechunkError, match=r"zarr\.json for node /x nests .* too deeply"):
            parse_node_metadata("/x", template % deep)
    # Objects as much as arrays.
    objects = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    with pytest.raises(IcechunkError, match="less deeply nested"):
        parse_node_metadata("/x", GROUP % objects)


def test_moderate_nesting_is_read() -> None:
    # icechunk 1.1.21 stores attributes nested 100 000 levels deep; within what Python's
    # parser follows, so does pyicechunk.
    assert isinstance(parse_node_metadata("/a", ARRAY % nested(300)), ArrayMeta)
    assert isinstance(parse_node_metadata("/g", GROUP % nested(300)), GroupMeta)


def test_writing_it_through_the_store_changes_nothing(tmp_path: Path) -> None:
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(str(tmp_path)))
    session = repo.writable_session("main")
    store = session.store
    with pytest.raises(IcechunkError, match=r"zarr\.json for node /g nests"):
        asyncio.run(store.set("g/zarr.json", cpu.Buffer.from_bytes(GROUP % nested(100_000))))
    assert not session.has_uncommitted_changes
    assert not asyncio.run(store.exists("g/zarr.json"))
