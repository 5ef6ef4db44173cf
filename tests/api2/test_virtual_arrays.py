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
