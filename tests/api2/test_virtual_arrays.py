"""IcechunkStore.set_virtual_refs_arr on pyicechunk and icechunk 2.3.0: a region of virtual
chunks from columns, skipped rows, container validation, and the argument errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from oracle import InProcess, Oracle, raises

SETUP = """
import numpy as np
prefix = f"file://{data.parent}/"
config = icechunk.RepositoryConfig.default()
config.set_virtual_chunk_container(
    icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data.parent))))
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # 2.3.0 deprecates None as a credential
repo = icechunk.Repository.create(make_storage({"kind": "memory"}), config=config,
                                  authorize_virtual_chunk_access={prefix: None}, spec_version=2)
session = repo.writable_session("main")
zarr.create_array(session.store, name="a", shape=(8,), chunks=(2,), dtype="u1", fill_value=0,
                  compressors=None)
url = f"file://{data}"
u64 = lambda values: np.array(values, dtype="u8")
"""


@pytest.fixture
def store(impl: InProcess | Oracle, tmp_path: Path) -> InProcess | Oracle:
    data = tmp_path / f"data-{impl.name}.bin"
    data.write_bytes(bytes(range(64)))
    impl.run(SETUP, data=data)
    return impl


def test_a_region_from_columns(store: InProcess | Oracle) -> None:
    result = store.run(
        """
r1 = session.store.set_virtual_refs_arr("a", (2,), [url, ""], u64([32, 0]), u64([2, 0]),
                                        arr_offset=(2,))
r2 = session.store.set_virtual_refs_arr("/a", (2,), ["s3://other/x", url], u64([0, 10]),
                                        u64([2, 2]))
r3 = session.store.set_virtual_refs_arr("a", (1,), ["s3://other/y"], u64([0]), u64([2]),
                                        validate_containers=False, arr_offset=(3,))
arr = zarr.open_array(session.store, path="a", mode="r")
(r1, r2, r3, arr[:6].tolist(), int(session.chunk_type("/a", [3])))
"""
    )
    assert result == (None, [(0,)], None, [0, 0, 10, 11, 32, 33], 2)


@pytest.mark.parametrize(
    ("call", "error", "kind", "message"),
    [
        (
            "(3,), [url, url], u64([0, 0]), u64([2, 2])",
            "ValueError",
            None,
            r"product of chunk_grid_shape \(3\) != array length \(2\)",
        ),
        (
            "(1,), [url], u64([0, 1]), u64([2])",
            "ValueError",
            None,
            "locations, offsets, and lengths must have the same length",
        ),
        ("(1,), [url], [0], [2]", "TypeError", None, None),
        ("(1,), [url], np.array([0]), np.array([2])", "TypeError", None, None),
        (
            "(1,), [url], u64([0]), u64([2]), arr_offset=(9,)",
            "InvalidInputError",
            "invalid-chunk-index",
            None,
        ),
    ],
)
def test_errors(
    store: InProcess | Oracle, call: str, error: str, kind: str | None, message: str | None
) -> None:
    with raises(error, kind=kind, match=message):
        store.run(f'session.store.set_virtual_refs_arr("a", {call})')
    with raises("NodeNotFoundError", kind="node-not-found"):
        store.run('session.store.set_virtual_refs_arr("nope", (1,), [url], u64([0]), u64([2]))')


def test_the_async_twin(store: InProcess | Oracle) -> None:
    got = store.run(
        """
import asyncio
asyncio.run(session.store.set_virtual_refs_arr_async("a", (1,), [url], u64([4]), u64([2])))
zarr.open_array(session.store, path="a", mode="r")[:2].tolist()
"""
    )
    assert got == [4, 5]


ITERATE = """
import asyncio
config2 = icechunk.RepositoryConfig(inline_chunk_threshold_bytes=8)
repo = repo.reopen(config2)
s = repo.writable_session("main")
a = zarr.create_array(s.store, name="v", shape=(12,), chunks=(2,), dtype="u1", fill_value=0,
                      compressors=None)
a[0:2] = 1
b = zarr.create_array(s.store, name="n", shape=(40,), chunks=(20,), dtype="u1",
                      compressors=None)
b[:] = 7
s.store.set_virtual_ref("v/c/2", url, offset=0, length=2)
s.store.set_virtual_ref("v/c/3", url, offset=4, length=2)
s.commit("base")
s = repo.writable_session("main")
a = zarr.open_array(s.store, path="v", mode="r+")
a[10:12] = 5
a[0:2] = 0  # the fill value: the chunk is deleted

def plain(batch):
    coords, kinds, paths, offsets, lengths, inlined = batch
    return (coords.dtype.str, kinds.dtype.str, offsets.dtype.str, coords.tolist(),
            kinds.tolist(), paths, offsets.tolist(), lengths.tolist(), inlined)

async def collect(path, size=100000):
    return [plain(b) async for b in s.store.array_chunk_iterator(path, batch_size=size)]

native = [plain(b) for b in s.store.array_chunk_iterator("/n")]
(asyncio.run(collect("v")), asyncio.run(collect("v", 2)), native, asyncio.run(collect("nope")))
"""


def test_array_chunk_iterator(store: InProcess | Oracle) -> None:
    whole, batched, native, unknown = store.run(ITERATE)
    assert whole == [
        (
            "<u4",
            "|u1",
            "<u8",
            [[5], [2], [3]],
            [3, 2, 2],
            ["", whole[0][5][1], whole[0][5][1]],
            [0, 0, 4],
            [2, 2, 2],
            {0: b"\x05\x05"},
        )
    ]
    assert whole[0][5][1].startswith("file://") and whole[0][5][1].endswith(".bin")
    assert [b[3] for b in batched] == [[[5], [2]], [[3]]]
    assert batched[1][8] == {}
    [(_, _, _, coords, kinds, paths, offsets, lengths, inlined)] = native
    assert (coords, kinds, offsets, lengths, inlined) == ([[0], [1]], [1, 1], [0, 0], [20, 20], {})
    assert all(len(p) == 20 for p in paths)
    assert unknown == []
