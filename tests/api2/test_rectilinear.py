"""Rectilinear chunk grids (chunk sizes that vary along a dimension), spec 2 only.

The zarr-python here (and in the oracle's venv) has no rectilinear grid, so the scenario runs at
the store level, as zarr would: the array's ``zarr.json`` and its chunk keys are written with
``store.set``, committed, read back, and the array resized by rewriting ``zarr.json`` with
zarr's run-length form. pyicechunk and icechunk 2.3.0 each write a repository and each reads
both; the snapshots record the number of chunks per dimension (FORMAT-V2 §7.2). On spec 1 the
metadata is refused with the reference's error.
"""

from __future__ import annotations

from typing import Any

import pytest
from oracle import InProcess, Oracle, raises

SETUP = """
import json
from zarr.core.buffer import default_buffer_prototype
Buffer = default_buffer_prototype().buffer

def rectilinear(shape, chunk_shapes):
    return Buffer.from_bytes(json.dumps({
        "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": "int32",
        "chunk_grid": {"name": "rectilinear",
                       "configuration": {"kind": "inline", "chunk_shapes": chunk_shapes}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
    }).encode())

def chunk(row, rows):
    # A chunk of `rows` rows of 4 int32, each byte the row's chunk index plus one.
    return Buffer.from_bytes(bytes([row + 1]) * (rows * 4 * 4))

def shapes(repo, snapshot_id):
    node = next(n for n in repo.inspect_snapshot(snapshot_id)["nodes"] if n["path"] == "/rect")
    return [(d["array_length"], d["num_chunks"]) for d in node["shape"]]
"""

WRITE = """
repo = icechunk.Repository.create(make_storage(where), spec_version=2)
session = repo.writable_session("main")
store = session.store
await store.set("zarr.json", Buffer.from_bytes(b'{"zarr_format": 3, "node_type": "group"}'))
await store.set("rect/zarr.json", rectilinear([6, 4], [[1, 2, 3], [4]]))
for row, rows in enumerate([1, 2, 3]):
    await store.set(f"rect/c/{row}/0", chunk(row, rows))
first = session.commit("rectilinear")
session = repo.writable_session("main")
store = session.store
await store.set("rect/zarr.json", rectilinear([9, 4], [[1, 2, [3, 2]], [4]]))
await store.set("rect/c/3/0", chunk(3, 3))
second = session.commit("resized")
repo.create_tag("first", first)
"""

READ = """
repo = icechunk.Repository.open(make_storage(where))
read = {}
for version in ("first", "main"):
    session = (repo.readonly_session(tag=version) if version == "first"
               else repo.readonly_session(branch="main"))
    store = session.store
    proto = default_buffer_prototype()
    meta = await store.get("rect/zarr.json", proto)
    found = {}
    for row in range(5):
        got = await store.get(f"rect/c/{row}/0", proto)
        found[row] = None if got is None else got.to_bytes()
    read[version] = (json.loads(meta.to_bytes())["chunk_grid"], found,
                     shapes(repo, session.snapshot_id))
read
"""


def _expected_chunk(row: int, rows: int) -> bytes:
    return bytes([row + 1]) * (rows * 4 * 4)


def test_write_read_resize_both_ways(pyic: InProcess, ic2: Oracle, storage_spec: Any) -> None:
    for impl in (pyic, ic2):
        impl.run(SETUP)
    reads = {}
    for writer in (pyic, ic2):
        where = storage_spec("local")
        writer.run(WRITE, where=where)
        for reader in (pyic, ic2):
            reads[writer.name, reader.name] = reader.run(READ, where=where)
    first_grid = {
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": [[1, 2, 3], [4]]},
    }
    resized_grid = {
        "name": "rectilinear",
        "configuration": {"kind": "inline", "chunk_shapes": [[1, 2, [3, 2]], [4]]},
    }
    sizes = [1, 2, 3, 3]
    expected = {
        "first": (
            first_grid,
            {r: _expected_chunk(r, sizes[r]) if r < 3 else None for r in range(5)},
            [(6, 3), (4, 1)],
        ),
        "main": (
            resized_grid,
            {r: _expected_chunk(r, sizes[r]) if r < 4 else None for r in range(5)},
            [(9, 4), (4, 1)],
        ),
    }
    for (writer, reader), got in reads.items():
        assert got == expected, (writer, reader)


def test_chunk_keys_follow_the_number_of_chunks_and_shifts_are_refused(
    impl: InProcess | Oracle, storage_spec: Any
) -> None:
    impl.run(SETUP)
    impl.run(
        """
repo = icechunk.Repository.create(make_storage(where), spec_version=2)
session = repo.writable_session("main")
store = session.store
await store.set("rect/zarr.json", rectilinear([6, 4], [[1, 2, 3], [4]]))
""",
        where=storage_spec("memory"),
    )
    with raises("InvalidInputError", kind="invalid-chunk-index"):
        impl.run("await store.set('rect/c/3/0', chunk(3, 3))")
    with raises("InvalidInputError", kind="invalid-chunk-index"):
        impl.run("await store.set('rect/c/0/1', chunk(0, 1))")
    impl.run("await store.set('rect/zarr.json', rectilinear([9, 4], [[1, 2, [3, 2]], [4]]))")
    impl.run("await store.set('rect/c/3/0', chunk(3, 3))")
    assert impl.run("(await store.get('rect/c/3/0', default_buffer_prototype())).to_bytes()") == (
        _expected_chunk(3, 3)
    )
    # Moving chunks would break their sizes: shift_array refuses rectilinear arrays.
    with raises("IcechunkError", kind="unknown", match="found `rectilinear`"):
        impl.run("session.shift_array('/rect', [1])")


@pytest.mark.parametrize(
    "chunk_shapes",
    [[[1, "x"], [4]], [[1, [2]], [4]], "no"],
    ids=["string-size", "short-run", "not-a-list"],
)
def test_unreadable_grids_are_refused(
    impl: InProcess | Oracle, storage_spec: Any, chunk_shapes: Any
) -> None:
    impl.run(SETUP)
    impl.run(
        "store = icechunk.Repository.create(make_storage(where), spec_version=2)"
        ".writable_session('main').store",
        where=storage_spec("memory"),
    )
    with raises("InvalidInputError", kind="bad-metadata", match="cannot parse `chunk_shapes`"):
        impl.run("await store.set('rect/zarr.json', rectilinear([6, 4], cs))", cs=chunk_shapes)


def test_refused_on_spec_1(impl: InProcess | Oracle, storage_spec: Any) -> None:
    impl.run(SETUP)
    impl.run(
        "repo = icechunk.Repository.create(make_storage(where), spec_version=1)\n"
        "store = repo.writable_session('main').store",
        where=storage_spec("memory"),
    )
    message = (
        "error decoding Zarr chunk grid metadata: `Non-regular chunk grids are not supported in "
        "icechunk format version 1. Please use spec_version=2 or higher.`"
    )
    with raises("InvalidInputError", kind="bad-metadata") as refused:
        impl.run("await store.set('rect/zarr.json', rectilinear([6, 4], [[1, 2, 3], [4]]))")
    assert refused.value is not None and refused.value.message.startswith(message)
    assert impl.run("[k async for k in store.list()]") == []
