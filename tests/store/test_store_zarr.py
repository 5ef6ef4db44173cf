"""zarr-python on IcechunkStore end to end: hierarchies, every dtype, sharding, resize,
overwrite and fill-value chunks, with icechunk 1.1.21 as the oracle for the stored keys."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr

import pyicechunk

# zarr warns that fixed-length string and bytes dtypes have no zarr v3 spec yet.
UNSTABLE = pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")


@pytest.fixture(params=["icechunk", "pyicechunk"])
def ic(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def new_session(ic: ModuleType) -> Any:
    return ic.Repository.create(ic.in_memory_storage()).writable_session("main")


def keys(store: Any) -> list[str]:
    async def go() -> list[str]:
        return sorted([k async for k in store.list()])

    return zarr.core.sync.sync(go())


def test_groups_and_nested_arrays(ic: ModuleType) -> None:
    session = new_session(ic)
    root = zarr.group(session.store, attributes={"title": "root"})
    a = root.create_group("a")
    b = a.create_group("b", attributes={"depth": 2})
    arr = b.create_array("data", shape=(5, 4), chunks=(2, 3), dtype="i4", fill_value=-1)
    arr[:] = np.arange(20, dtype="i4").reshape(5, 4)
    root.create_array("top", shape=(3,), chunks=(3,), dtype="f8")[:] = [1.5, 2.5, 3.5]
    session.commit("hierarchy")

    reader = zarr.open_group(session.store, mode="r")
    assert reader.attrs["title"] == "root"
    assert sorted(reader.group_keys()) == ["a"]
    assert sorted(reader.array_keys()) == ["top"]
    assert reader["a/b"].attrs["depth"] == 2
    np.testing.assert_array_equal(reader["a/b/data"][:], np.arange(20, dtype="i4").reshape(5, 4))
    assert sorted(k for k, _ in reader.members(max_depth=None)) == [
        "a",
        "a/b",
        "a/b/data",
        "top",
    ]
    chunk_keys = [k for k in keys(session.store) if "/c/" in k or k.endswith("/c")]
    assert len(chunk_keys) == 3 * 2 + 1


def test_same_keys_as_icechunk() -> None:
    listed = []
    for module in (importlib.import_module("icechunk"), pyicechunk):
        session = new_session(module)
        root = zarr.group(session.store)
        arr = root.create_array("x", shape=(10, 10), chunks=(3, 4), dtype="u2", fill_value=0)
        arr[:5, :] = 7
        root.create_group("g").create_array("s", shape=(), dtype="f4")[()] = 1.0
        listed.append(keys(session.store))
    assert listed[0] == listed[1]


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        ("bool", [True, False, True]),
        ("int8", [-128, 0, 127]),
        ("int16", [-(2**15), 0, 2**15 - 1]),
        ("int32", [-(2**31), 0, 2**31 - 1]),
        ("int64", [-(2**63), 0, 2**63 - 1]),
        ("uint8", [0, 1, 255]),
        ("uint16", [0, 1, 2**16 - 1]),
        ("uint32", [0, 1, 2**32 - 1]),
        ("uint64", [0, 1, 2**64 - 1]),
        ("float16", [0.5, -1.0, np.inf]),
        ("float32", [1.5, np.nan, -np.inf]),
        ("float64", [1e300, -0.0, np.nan]),
        ("complex64", [1 + 2j, 0j, -1.5j]),
        ("complex128", [1e200 + 1j, np.nan + 0j, 3 - 4j]),
        ("str", ["", "héllo", "a longer string value"]),
        pytest.param("U6", ["ab", "", "abcdef"], marks=UNSTABLE),
        pytest.param("S4", [b"ab", b"", b"abcd"], marks=UNSTABLE),
        ("datetime64[ns]", np.array(["2024-01-01", "NaT", "1970-01-01T00:00:01"], "M8[ns]")),
        ("datetime64[D]", np.array(["2024-02-29", "1900-01-01", "NaT"], "M8[D]")),
        ("timedelta64[s]", np.array([0, -5, 86400], "m8[s]")),
    ],
)
def test_every_dtype_round_trips(dtype: str, values: Any) -> None:
    session = new_session(pyicechunk)
    data = np.asarray(values, dtype=None if dtype == "str" else dtype)
    arr = zarr.create_array(session.store, name="v", shape=(3,), chunks=(2,), dtype=dtype)
    arr[:] = data
    session.commit(f"dtype {dtype}")
    got = zarr.open_array(session.store, path="v", mode="r")[:]
    if dtype == "str":
        assert list(got) == list(values)
    else:
        np.testing.assert_array_equal(got, data)


def test_zero_dimensional_arrays(ic: ModuleType) -> None:
    session = new_session(ic)
    root_scalar = zarr.create_array(session.store, shape=(), dtype="f8", fill_value=0.0)
    root_scalar[()] = 42.0
    assert "c" in keys(session.store)
    session.commit("root scalar")
    assert zarr.open_array(session.store, mode="r")[()] == 42.0

    nested = new_session(ic)
    g = zarr.group(nested.store)
    s = g.create_array("s", shape=(), dtype="i8", fill_value=0)
    s[()] = 7
    assert "s/c" in keys(nested.store)
    assert zarr.open_array(nested.store, path="s", mode="r")[()] == 7


def test_sharded_array(ic: ModuleType) -> None:
    session = new_session(ic)
    arr = zarr.create_array(
        session.store, name="sh", shape=(8, 8), chunks=(2, 2), shards=(4, 4), dtype="i2"
    )
    data = np.arange(64, dtype="i2").reshape(8, 8)
    arr[:] = data
    assert [k for k in keys(session.store) if "/c/" in k] == [
        "sh/c/0/0",
        "sh/c/0/1",
        "sh/c/1/0",
        "sh/c/1/1",
    ]
    session.commit("sharded")
    reader = zarr.open_array(session.store, path="sh", mode="r")
    np.testing.assert_array_equal(reader[:], data)
    np.testing.assert_array_equal(reader[1:7, 3:5], data[1:7, 3:5])  # partial shard reads


@pytest.mark.parametrize("module_name", ["icechunk", "pyicechunk"])
def test_resize_after_commit(module_name: str) -> None:
    ic = importlib.import_module(module_name)
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="r", shape=(10,), chunks=(2,), dtype="i4")
    arr[:] = np.arange(10)
    session.commit("ten")

    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="r", mode="r+")
    arr.resize((5,))
    session.commit("five")

    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="r", mode="r+")
    arr.resize((10,))
    got = arr[:]
    # Chunks 3 and 4 were outside the grid after shrinking: they are gone, so growing again
    # shows the fill value there; chunk 2 holds 4 and 5 (5 was beyond the edge, kept).
    np.testing.assert_array_equal(got[:5], np.arange(5))
    np.testing.assert_array_equal(got[6:], np.zeros(4, "i4"))
    assert [k for k in keys(session.store) if "/c/" in k] == ["r/c/0", "r/c/1", "r/c/2"]


@pytest.mark.parametrize("module_name", ["icechunk", "pyicechunk"])
def test_overwrite_replaces_the_node(module_name: str) -> None:
    ic = importlib.import_module(module_name)
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    first = zarr.create_array(session.store, name="o", shape=(4,), chunks=(2,), dtype="i4")
    first[:] = [1, 2, 3, 4]
    session.commit("first")

    session = repo.writable_session("main")
    second = zarr.create_array(
        session.store, name="o", shape=(3,), chunks=(3,), dtype="f4", overwrite=True
    )
    assert [k for k in keys(session.store) if "/c/" in k] == []
    second[:] = [0.5, 1.5, 2.5]
    session.commit("second")
    got = zarr.open_array(repo.readonly_session("main").store, path="o", mode="r")
    assert got.dtype == np.dtype("f4")
    np.testing.assert_array_equal(got[:], np.array([0.5, 1.5, 2.5], "f4"))

    session = repo.writable_session("main")
    zarr.create_group(session.store, path="o", overwrite=True)
    assert zarr.open_group(session.store, path="o", mode="r").attrs.asdict() == {}
    assert keys(session.store) == ["o/zarr.json", "zarr.json"]  # zarr made the root


@pytest.mark.parametrize("module_name", ["icechunk", "pyicechunk"])
def test_fill_value_chunks_are_deleted(module_name: str) -> None:
    ic = importlib.import_module(module_name)
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store,
        name="f",
        shape=(6,),
        chunks=(2,),
        dtype="i4",
        fill_value=9,
        config={"write_empty_chunks": False},
    )
    arr[:] = [1, 2, 3, 4, 5, 6]
    session.commit("full")

    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="f", mode="r+", config={"write_empty_chunks": False})
    arr[2:4] = 9
    assert [k for k in keys(session.store) if "/c/" in k] == ["f/c/0", "f/c/2"]
    session.commit("middle chunk back to the fill value")
    got = zarr.open_array(repo.readonly_session("main").store, path="f", mode="r")
    np.testing.assert_array_equal(got[:], [1, 2, 9, 9, 5, 6])


def test_fork_store_pickles(tmp_path: Path) -> None:
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(str(tmp_path)))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")
    session.commit("array")
    session = repo.writable_session("main")
    fork = session.fork()
    copy = pickle.loads(pickle.dumps(fork.store))
    assert isinstance(copy.session, pyicechunk.ForkSession)
    zarr.open_array(copy, path="a", mode="r+")[:] = [1, 2, 3, 4]
    assert [k for k in keys(copy) if "/c/" in k] == ["a/c/0", "a/c/1"]
