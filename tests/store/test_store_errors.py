"""Every error the store raises, with its type and text, checked against icechunk 1.1.21.

Cases marked `both` run on icechunk and on pyicechunk and must agree; the others cover the
places where pyicechunk deliberately differs (documented per test).
"""

from __future__ import annotations

import importlib
import pickle
import re
from types import ModuleType
from typing import Any

import pytest
import zarr
from _docs import array_doc, group_doc
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import cpu, default_buffer_prototype

import pyicechunk
from pyicechunk.exceptions import IcechunkError
from pyicechunk.store import IcechunkStore

PROTO = default_buffer_prototype()
PICKLE_TEXT = (
    "You must opt-in to pickle writable sessions in a distributed context using "
    "Session.fork(). If you are using xarray's `Dataset.to_zarr` method to write dask "
    "arrays, please use `icechunk.xarray.to_icechunk` instead. "
)


def buf(data: bytes) -> cpu.Buffer:
    return cpu.Buffer.from_bytes(data)


@pytest.fixture(params=["icechunk", "pyicechunk"])
def ic(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


@pytest.fixture
def session(ic: ModuleType) -> Any:
    """A writable session with root group, group /g1 and array /x (2 chunks, x/c/0 set)."""
    s = ic.Repository.create(ic.in_memory_storage()).writable_session("main")
    zarr.core.sync.sync(_populate(s.store))
    return s


async def _populate(store: Any) -> None:
    await store.set("zarr.json", buf(group_doc()))
    await store.set("g1/zarr.json", buf(group_doc()))
    await store.set("x/zarr.json", buf(array_doc([2], [1])))
    await store.set("x/c/0", buf(b"abcd"))


def run(coro: Any) -> Any:
    return zarr.core.sync.sync(coro)


def raises_with(ic: ModuleType, text: str) -> Any:
    return pytest.raises(ic.IcechunkError, match=_escape(text))


def _escape(text: str) -> str:
    return re.escape(text)


@pytest.mark.parametrize("key", ["a/zzz", "g1", ""])
def test_invalid_key_on_get_and_exists(ic: ModuleType, session: Any, key: str) -> None:
    with raises_with(ic, f"invalid zarr key format `{key}`"):
        run(session.store.get(key, PROTO))
    with raises_with(ic, f"invalid zarr key format `{key}`"):
        run(session.store.exists(key))


def test_set_requires_buffer(ic: ModuleType, session: Any) -> None:
    with pytest.raises(TypeError) as info:
        run(session.store.set("x/c/1", b"raw"))
    assert str(info.value) == (
        "IcechunkStore.set(): `value` must be a Buffer instance. "
        "Got an instance of <class 'bytes'> instead."
    )


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        (
            "x/c/7",
            b"1",
            "invalid chunk index: coordinates ChunkIndices([7]) are not valid for array at /x",
        ),
        ("a/zarr.json", b"{not json", "bad metadata"),
        ("a/zarr.json", b'{"node_type": "folder"}', "bad metadata"),
        (
            "a/.zgroup",
            b"{}",
            "store method `Icechunk cannot set Zarr V2 metadata keys` "
            "is not implemented by Icechunk",
        ),
        (".zarray", b"{}", "Icechunk cannot set Zarr V2 metadata keys"),
        ("g1/c/0", b"1", "there is not an array at"),
        ("a/zzz", b"1", "invalid zarr key format `a/zzz`"),
    ],
)
def test_set_errors(ic: ModuleType, session: Any, key: str, value: bytes, text: str) -> None:
    with raises_with(ic, text):
        run(session.store.set(key, buf(value)))


def test_chunk_of_missing_array_is_key_error(ic: ModuleType, session: Any) -> None:
    with pytest.raises(KeyError) as info:
        run(session.store.set("zz/c/0", buf(b"1")))
    assert "/zz" in str(info.value)


def test_metadata_needs_no_parent(ic: ModuleType, session: Any) -> None:
    run(session.store.set("p/q/zarr.json", buf(group_doc())))
    assert run(session.store.exists("p/q/zarr.json"))
    assert not run(session.store.exists("p/zarr.json"))


def test_v2_keys_read_as_missing(ic: ModuleType, session: Any) -> None:
    assert run(session.store.get(".zgroup", PROTO)) is None
    assert run(session.store.get("g1/.zattrs", PROTO)) is None


def test_read_only_session_refuses_writes(ic: ModuleType, session: Any) -> None:
    session.commit("populate")
    readonly = session  # a committed session becomes read-only
    with raises_with(ic, "cannot write to read-only store"):
        run(readonly.store.set("x/c/1", buf(b"1")))
    with raises_with(ic, "cannot write to read-only store"):
        run(readonly.store.set("zarr.json", buf(group_doc(a=1))))


def test_set_partial_values(ic: ModuleType, session: Any) -> None:
    with raises_with(ic, "store method `set_partial_values` is not implemented by Icechunk"):
        run(session.store.set_partial_values([("x/c/0", 0, b"zz")]))


def test_list_prefix_needs_a_node(ic: ModuleType, session: Any) -> None:
    # The call itself raises, before any iteration.
    with raises_with(
        ic, "bad key prefix (g1/ar): Only prefixes pointing to a group or array are allowed"
    ):
        session.store.list_prefix("g1/ar/")
    with raises_with(ic, "bad key prefix (x/c)"):
        run(session.store.getsize_prefix("x/c"))


def test_getsize_errors_and_zero(ic: ModuleType, session: Any) -> None:
    with pytest.raises(KeyError, match="node not found at `/nope`"):
        run(session.store.getsize("nope/zarr.json"))
    assert run(session.store.getsize("x/c/1")) == 0
    assert run(session.store.getsize("x/c/9")) == 0  # outside the grid: still 0
    assert run(session.store.getsize("x/c/0")) == 4


def test_pickling_writable_store(ic: ModuleType, session: Any) -> None:
    with pytest.raises(ValueError) as info:
        pickle.dumps(session.store)
    assert str(info.value) == PICKLE_TEXT


def test_set_virtual_ref_metadata_key(ic: ModuleType, session: Any) -> None:
    with raises_with(
        ic, "this operation is not allowed: use .set to modify metadata for key a/zarr.json"
    ):
        session.store.set_virtual_ref("a/zarr.json", "s3://bucket/f.nc", offset=0, length=4)


def test_properties(ic: ModuleType, session: Any) -> None:
    store = session.store
    assert store.supports_writes and store.supports_deletes and store.supports_listing
    assert store.supports_partial_writes is False
    assert store.supports_consolidated_metadata is False
    assert store == session.store
    assert not store.read_only


# ---- pyicechunk only: the deliberate differences --------------------------------------------


@pytest.fixture
def py_session() -> pyicechunk.Session:
    s = pyicechunk.Repository.create(pyicechunk.in_memory_storage()).writable_session("main")
    run(_populate(s.store))
    return s


def test_read_only_session_refuses_deletes(py_session: pyicechunk.Session) -> None:
    # icechunk 1.1 silently changes a read-only session's view here; we refuse.
    py_session.commit("populate")
    store = py_session.store
    for call in (
        lambda: run(store.delete("x/c/0")),
        lambda: run(store.delete("x/zarr.json")),
        lambda: run(store.delete_dir("x")),
        lambda: run(store.clear()),
        store.sync_clear,
    ):
        with pytest.raises(IcechunkError, match="cannot write to read-only store"):
            call()
    assert not py_session.has_uncommitted_changes
    assert run(store.exists("x/c/0"))


def test_read_only_session_refuses_virtual_refs(py_session: pyicechunk.Session) -> None:
    py_session.commit("populate")
    with pytest.raises(IcechunkError, match="cannot write to read-only store"):
        py_session.store.set_virtual_ref("x/c/1", "s3://bucket/f.nc", offset=0, length=4)


def test_zarr_read_only_flag_is_honoured(py_session: pyicechunk.Session) -> None:
    # icechunk 1.1 lets a direct set() through a with_read_only(True) store write into the
    # writable session; we apply zarr's read-only check to every write.
    reader = py_session.store.with_read_only(True)
    assert reader.read_only and not reader._is_open
    for call in (
        reader.set("x/c/1", buf(b"1")),
        reader.delete("x/c/0"),
        reader.delete_dir("x"),
        reader.clear(),
    ):
        with pytest.raises(ValueError, match="read-only mode"):
            run(call)
    assert run(py_session.store.exists("x/c/0"))
    assert not run(py_session.store.exists("x/c/1"))


def test_get_partial_values_missing_is_none(py_session: pyicechunk.Session) -> None:
    # icechunk 1.1 raises TypeError for a missing key; zarr's contract is None.
    got = run(
        py_session.store.get_partial_values(
            PROTO, [("x/c/1", None), ("x/c/0", RangeByteRequest(1, 3)), ("n/zarr.json", None)]
        )
    )
    assert [g.to_bytes() if g is not None else None for g in got] == [None, b"bc", None]


def test_get_partial_values_invalid_key_raises(py_session: pyicechunk.Session) -> None:
    with pytest.raises(IcechunkError, match="invalid zarr key format `a/zzz`"):
        run(py_session.store.get_partial_values(PROTO, [("a/zzz", None)]))


def test_unexpected_byte_range(py_session: pyicechunk.Session) -> None:
    for key in ("x/c/0", "zarr.json"):
        with pytest.raises(ValueError, match="Unexpected byte_range, got"):
            run(py_session.store.get(key, PROTO, (0, 2)))  # type: ignore[arg-type]


def test_pickling_allowed_for_read_only(tmp_path: Any) -> None:
    repo = pyicechunk.Repository.create(pyicechunk.local_filesystem_storage(str(tmp_path)))
    session = repo.writable_session("main")
    run(_populate(session.store))
    session.commit("populate")
    readonly = pickle.loads(pickle.dumps(repo.readonly_session("main").store))
    assert isinstance(readonly, IcechunkStore) and readonly.read_only
    got = run(readonly.get("x/c/0", PROTO))
    assert got is not None and got.to_bytes() == b"abcd"


def test_virtual_refs_are_forwarded(py_session: pyicechunk.Session) -> None:
    # The key checks happen in the store; the reference itself is the core's business.
    with pytest.raises(IcechunkError, match="invalid zarr key format `x/q`"):
        py_session.store.set_virtual_ref("x/q", "s3://bucket/f.nc", offset=0, length=4)
    with pytest.raises(IcechunkError, match=r"not allowed: use \.set to modify metadata for key"):
        py_session.store.set_virtual_ref(".zarray", "s3://bucket/f.nc", offset=0, length=4)
