"""IcechunkStore semantics through the zarr Store ABC (API-1.1 §6, behaviours 37, 38, 40)."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zarr
from parity import buf, collect, commit_array, differs, msg, proto
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

READ_ONLY_STORE = "cannot write to read-only store"


def _tree(repo: Any) -> Any:
    """Commit a root with group ``g1`` (holding array ``ar``) and array ``x`` (2 chunks)."""
    session = repo.writable_session("main")
    root = zarr.create_group(session.store)
    g1 = root.create_group("g1")
    ar = g1.create_array("ar", shape=(2,), chunks=(1,), dtype="i4")
    ar[:] = [5, 6]
    x = root.create_array("x", shape=(4,), chunks=(2,), dtype="u1", compressors=None)
    x[:] = [1, 2, 3, 4]
    session.commit("tree")
    return repo.writable_session("main")


def test_get_and_byte_ranges(ic: ModuleType, repo: Any) -> None:
    store = _tree(repo).store

    async def main() -> None:
        assert await store.get("x/c/9", proto()) is None
        assert await store.get("nope/zarr.json", proto()) is None
        whole = await store.get("x/c/1", proto())
        assert whole.to_bytes() == bytes([3, 4])
        part = await store.get("x/c/1", proto(), byte_range=RangeByteRequest(1, 2))
        assert part.to_bytes() == bytes([4])
        tail = await store.get("x/c/1", proto(), byte_range=OffsetByteRequest(1))
        assert tail.to_bytes() == bytes([4])
        suffix = await store.get("x/c/0", proto(), byte_range=SuffixByteRequest(1))
        assert suffix.to_bytes() == bytes([2])
        meta = await store.get("zarr.json", proto())
        assert b'"node_type"' in meta.to_bytes()
        with pytest.raises(ic.IcechunkError, match=msg("invalid zarr key format `x/zzz`")):
            await store.get("x/zzz", proto())
        values = await store.get_partial_values(
            proto(), [("x/c/0", None), ("x/c/1", RangeByteRequest(0, 1))]
        )
        assert [v.to_bytes() for v in values] == [bytes([1, 2]), bytes([3])]

    asyncio.run(main())


def test_get_partial_values_missing_key(ic: ModuleType, repo: Any) -> None:
    store = _tree(repo).store

    async def main() -> list[Any]:
        return list(await store.get_partial_values(proto(), [("x/c/0", None), ("x/c/9", None)]))

    if differs(ic, "get_partial_values_missing_key"):
        first, missing = asyncio.run(main())
        assert first.to_bytes() == bytes([1, 2])
        assert missing is None
    else:
        with pytest.raises(TypeError, match=msg("a bytes-like object is required, not 'NoneType'")):
            asyncio.run(main())


def test_exists_and_set_errors(ic: ModuleType, repo: Any) -> None:
    store = _tree(repo).store

    async def main() -> None:
        assert await store.exists("x/c/0") is True
        assert await store.exists("x/zarr.json") is True
        assert await store.exists("x/c/1") is True
        assert await store.exists("nope/zarr.json") is False
        assert await store.exists("g1/ar/c/7") is False
        with pytest.raises(ic.IcechunkError, match=msg("invalid zarr key format")):
            await store.exists("g1")
        with pytest.raises(TypeError, match=msg("`value` must be a Buffer instance")):
            await store.set("x/c/0", b"raw")
        with pytest.raises(
            ic.IcechunkError,
            match=msg(
                "invalid chunk index: coordinates ChunkIndices([7]) are not valid for array at /x"
            ),
        ):
            await store.set("x/c/7", buf(b"\x00\x00"))
        with pytest.raises(ic.IcechunkError, match=msg("invalid zarr key format")):
            await store.set("x/zzz", buf(b"\x00"))
        with pytest.raises(ic.IcechunkError, match=msg("bad metadata")):
            await store.set("y/zarr.json", buf(b"{not json"))
        with pytest.raises(
            ic.IcechunkError, match=msg("Icechunk cannot set Zarr V2 metadata keys")
        ):
            await store.set(".zgroup", buf(b'{"zarr_format": 2}'))
        with pytest.raises(KeyError):
            await store.set("zz/c/0", buf(b"\x00"))
        with pytest.raises(ic.IcechunkError, match=msg("there is not an array at")):
            await store.set("g1/c/0", buf(b"\x00"))
        with pytest.raises(
            ic.IcechunkError,
            match=msg("store method `set_partial_values` is not implemented by Icechunk"),
        ):
            await store.set_partial_values([("x/c/0", 0, b"\x00")])

    asyncio.run(main())


def test_set_if_not_exists_and_orphan_metadata(ic: ModuleType, repo: Any) -> None:
    session = _tree(repo)
    store = session.store

    async def main() -> None:
        await store.set_if_not_exists("x/c/0", buf(bytes([9, 9])))
        assert (await store.get("x/c/0", proto())).to_bytes() == bytes([1, 2])
        group_doc = b'{"zarr_format": 3, "node_type": "group", "attributes": {}}'
        await store.set("p/q/zarr.json", buf(group_doc))
        assert await store.exists("p/q/zarr.json") is True
        assert await store.exists("p/zarr.json") is False

    asyncio.run(main())
    assert session.status().new_groups == {"/p/q"}


def test_listing(ic: ModuleType, repo: Any) -> None:
    store = _tree(repo).store

    async def main() -> None:
        assert sorted(await collect(store.list_dir(""))) == ["g1", "x", "zarr.json"]
        assert sorted(await collect(store.list_dir("g1"))) == ["ar", "zarr.json"]
        assert sorted(await collect(store.list_dir("x"))) == ["c", "zarr.json"]
        assert sorted(await collect(store.list_dir("x/c"))) == ["0", "1"]
        assert await collect(store.list_dir("unknown")) == []
        everything = sorted(await collect(store.list()))
        assert everything == sorted(
            [
                "zarr.json",
                "g1/zarr.json",
                "g1/ar/zarr.json",
                "g1/ar/c/0",
                "g1/ar/c/1",
                "x/zarr.json",
                "x/c/0",
                "x/c/1",
            ]
        )
        assert sorted(await collect(store.list_prefix("g1"))) == [
            "g1/ar/c/0",
            "g1/ar/c/1",
            "g1/ar/zarr.json",
            "g1/zarr.json",
        ]
        assert sorted(await collect(store.list_prefix("g1/"))) == sorted(
            await collect(store.list_prefix("g1"))
        )
        assert sorted(await collect(store.list_prefix(""))) == everything
        with pytest.raises(
            ic.IcechunkError,
            match=msg(
                "bad key prefix (g1/a): Only prefixes pointing to a group or array are allowed"
            ),
        ):
            store.list_prefix("g1/a")

    asyncio.run(main())


def test_store_properties(ic: ModuleType, repo: Any) -> None:
    store = repo.writable_session("main").store
    assert store.supports_partial_writes is False
    assert store.supports_consolidated_metadata is False
    assert store.supports_writes is True
    assert store.supports_deletes is True
    assert store.supports_listing is True
    assert store.read_only is False
    assert repo.readonly_session("main").store.read_only is True
    assert isinstance(store.session, ic.Session)


def test_sizes_and_is_empty(ic: ModuleType, repo: Any) -> None:
    store = _tree(repo).store

    async def main() -> None:
        assert await store.getsize("x/c/0") == 2
        assert await store.getsize("x/c/9") == 0
        assert await store.getsize("x/zarr.json") == len(
            (await store.get("x/zarr.json", proto())).to_bytes()
        )
        with pytest.raises(KeyError):
            await store.getsize("nope/zarr.json")
        assert await store.getsize_prefix("x") == 4 + await store.getsize("x/zarr.json")
        with pytest.raises(ic.IcechunkError, match=msg("bad key prefix")):
            await store.getsize_prefix("x/c")
        assert await store.is_empty("") is False
        assert await store.is_empty("nothing-here") is True
        assert await store.is_empty("x") is False

    asyncio.run(main())


def test_delete_chunk_and_node(ic: ModuleType, repo: Any) -> None:
    session = _tree(repo)
    store = session.store

    async def main() -> None:
        await store.delete("x/c/0")
        assert await store.get("x/c/0", proto()) is None
        await store.delete("never/zarr.json")
        with pytest.raises(ic.IcechunkError, match=msg("invalid chunk index")):
            await store.delete("x/c/9")
        await store.delete("g1/ar/zarr.json")

    asyncio.run(main())
    status = session.status()
    assert status.updated_chunks == {"/x": [[0]]}
    assert status.deleted_arrays == {"/g1/ar"}
    assert session.chunk_type("/x", [0]) == ic.ChunkType.UNINITIALIZED
    sid = session.commit("deletes")
    arr = zarr.open_array(repo.readonly_session(snapshot_id=sid).store, path="x", mode="r")
    assert arr[:].tolist() == [0, 0, 3, 4]


def test_delete_dir(ic: ModuleType, repo: Any) -> None:
    session = _tree(repo)
    store = session.store

    async def main() -> list[str]:
        await store.delete_dir("x")
        await store.delete_dir("g1")
        return sorted(await collect(store.list_dir("")))

    assert asyncio.run(main()) == ["zarr.json"]
    status = session.status()
    assert status.deleted_arrays == {"/x", "/g1/ar"}
    assert status.deleted_groups == {"/g1"}


def test_create_then_delete_leaves_empty_change(ic: ModuleType, repo: Any) -> None:
    commit_array(repo)
    session = repo.writable_session("main")
    arr = zarr.create_array(session.store, name="tmp", shape=(2,), chunks=(1,), dtype="i4")
    arr[:] = 3
    asyncio.run(session.store.delete_dir("tmp"))
    assert session.has_uncommitted_changes is True
    assert str(session.status()) == ""
    base = session.snapshot_id
    sid = session.commit("net nothing")
    assert str(repo.diff(from_snapshot_id=base, to_snapshot_id=sid)) == ""


def test_clear(ic: ModuleType, repo: Any) -> None:
    session = _tree(repo)
    asyncio.run(session.store.clear())
    assert asyncio.run(collect(session.store.list())) == []
    session.commit("cleared")
    assert asyncio.run(collect(repo.readonly_session("main").store.list())) == []
    assert len(list(repo.ancestry(branch="main"))) == 3

    session = _tree(repo)
    session.store.sync_clear()
    assert session.status().deleted_groups == {"/", "/g1"}


@pytest.mark.parametrize("op", ["delete", "delete_dir", "clear", "sync_clear"])
def test_readonly_store_delete(ic: ModuleType, repo: Any, op: str) -> None:
    _tree(repo)
    session = repo.readonly_session("main")
    store = session.store

    def call() -> None:
        if op == "delete":
            asyncio.run(store.delete("x/c/0"))
        elif op == "delete_dir":
            asyncio.run(store.delete_dir("x"))
        elif op == "clear":
            asyncio.run(store.clear())
        else:
            store.sync_clear()

    # Observed: the reference already rejects delete_dir on a read-only session (API-1.1 §40
    # says it does not); the other three mutate the session's view there.
    if op == "delete_dir" or differs(ic, "readonly_store_delete"):
        with pytest.raises(ic.IcechunkError, match=msg(READ_ONLY_STORE)):
            call()
        assert session.has_uncommitted_changes is False
        assert zarr.open_array(store, path="x", mode="r")[:].tolist() == [1, 2, 3, 4]
    else:
        call()
        assert session.has_uncommitted_changes is True
        assert repo.readonly_session("main").has_uncommitted_changes is False


def test_readonly_store_set_raises(ic: ModuleType, repo: Any) -> None:
    _tree(repo)
    store = repo.readonly_session("main").store
    with pytest.raises(ic.IcechunkError, match=msg(READ_ONLY_STORE)):
        asyncio.run(store.set("x/c/0", buf(b"\x00\x00")))


def test_with_read_only(ic: ModuleType, repo: Any) -> None:
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    ro = session.store.with_read_only(True)
    assert ro.read_only is True
    assert ro == session.store
    with pytest.raises(ValueError):
        zarr.create_group(ro, path="g")
    values = np.arange(3, dtype="i4")
    arr = zarr.create_array(session.store.with_read_only(False), name="a", shape=(3,), dtype="i4")
    arr[:] = values
    assert zarr.open_array(ro, path="a", mode="r")[:].tolist() == values.tolist()
