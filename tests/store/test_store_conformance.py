"""zarr's own store conformance suite (`zarr.testing.store.StoreTests`) run on IcechunkStore.

An Icechunk store only holds zarr v3 keys of existing nodes: ``<node>/zarr.json`` must be a
valid group or array document, and a chunk key ``<array>/c/<i>...`` needs its array. Several
inherited cases use arbitrary keys (``foo``, ``foo/0/0``, ``k``) or arbitrary bytes as
``zarr.json``; each such case is overridden below with the same check on valid keys, and a
comment says what differs and why. Nothing is skipped.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from _docs import array_doc, group_doc
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
    SupportsDeleteSync,
    SupportsGetSync,
    SupportsSetSync,
)
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.core.sync import _collect_aiterator
from zarr.testing.store import StoreTests

from pyicechunk._sync import sync
from pyicechunk.exceptions import IcechunkError
from pyicechunk.store import IcechunkStore


def _split(key: str) -> tuple[str, tuple[int, ...] | None]:
    """Node path and chunk coordinates (None for metadata) of a well-formed key."""
    if key == "zarr.json" or key.endswith("/zarr.json"):
        return "/" + key.removesuffix("zarr.json").rstrip("/"), None
    parts = key.split("/")
    at = len(parts) - 1 - parts[::-1].index("c")
    return "/" + "/".join(parts[:at]), tuple(int(p) for p in parts[at + 1 :])


async def _ensure_array(store: IcechunkStore, path: str, ndim: int) -> None:
    """Create array `path` (large enough for any test coordinates) if it does not exist."""
    if await store._core.get_node(path) is None:
        await store._core.set_metadata(path, array_doc([1000] * ndim, [1] * ndim))


def buf(data: bytes) -> Buffer:
    return cpu.Buffer.from_bytes(data)


class TestIcechunkStore(StoreTests[IcechunkStore, cpu.Buffer]):
    store_cls = IcechunkStore
    buffer_cls = cpu.Buffer

    async def set(self, store: IcechunkStore, key: str, value: Buffer) -> None:
        # Bypasses the store: writes straight into the session core. A chunk can only exist
        # inside an array, so the array is created first when the test did not make one.
        path, coords = _split(key)
        if coords is None:
            await store._core.set_metadata(path, value.to_bytes())
        else:
            await _ensure_array(store, path, len(coords))
            await store._core.set_chunk(path, coords, value.to_bytes())

    async def get(self, store: IcechunkStore, key: str) -> Buffer:
        path, coords = _split(key)
        if coords is None:
            node = await store._core.get_node(path)
            assert node is not None
            return buf(node.user_data)
        data = await store._core.get_chunk(path, coords, None)
        assert data is not None
        return buf(data)

    @pytest.fixture
    def store_kwargs(self, new_core: Callable[..., Any]) -> dict[str, Any]:
        return {"core": new_core(), "for_fork": False}

    # StoreTests' `store` / `store_not_open` fixtures are coroutines; without an asyncio
    # plugin we build the same stores synchronously.
    @pytest.fixture
    def store(self, open_kwargs: dict[str, Any]) -> IcechunkStore:
        return sync(self.store_cls.open(**open_kwargs))

    @pytest.fixture
    def store_not_open(self, store_kwargs: dict[str, Any]) -> IcechunkStore:
        store = self.store_cls(**store_kwargs)
        store._is_open = False
        return store

    def test_store_repr(self, store: IcechunkStore) -> None:
        assert "IcechunkStore" in repr(store)

    def test_store_supports_writes(self, store: IcechunkStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: IcechunkStore) -> None:
        assert store.supports_listing

    # Overridden: a writable, non-fork session must refuse pickling (the reference's rule), and
    # a store is equal only to a store over the same session object. A read-only session's
    # store pickles; the copy keeps the zarr flag and reads the same data.
    async def test_serializable_store(self, store: IcechunkStore) -> None:
        with pytest.raises(ValueError, match="You must opt-in to pickle writable sessions"):
            pickle.dumps(store)
        await store.set("zarr.json", buf(group_doc(a=1)))
        reader = IcechunkStore(store._core, for_fork=True)
        copy = pickle.loads(pickle.dumps(reader))
        assert copy.read_only == reader.read_only
        assert copy._for_fork
        got = await copy.get("zarr.json", prototype=default_buffer_prototype())
        assert got is not None and got.to_bytes() == group_doc(a=1)

    # Overridden: "foo" is not a zarr v3 key; "foo/zarr.json" with a group document is.
    async def test_with_read_only_store(self, open_kwargs: dict[str, Any]) -> None:
        store = await self.store_cls.open(**{**open_kwargs, "read_only": True})
        assert store.read_only
        key, value = "foo/zarr.json", buf(group_doc())
        with pytest.raises(ValueError, match="read-only mode"):
            await store.set(key, value)
        writer = store.with_read_only(read_only=False)
        assert not writer._is_open
        assert not writer.read_only
        await writer.set(key, value)
        assert await writer.exists(key)
        await writer.delete(key)
        assert not await writer.exists(key)
        for ro in (store, store.with_read_only(read_only=True)):
            assert ro.read_only
            with pytest.raises(ValueError, match="read-only mode"):
                await ro.set(key, value)
            with pytest.raises(ValueError, match="read-only mode"):
                await ro.delete(key)

    # Overridden keys: "foo/c/0.0" and "foo/0/0" are not Icechunk chunk keys (coordinates
    # must be u32 components after a "c"); 2-d and 0-d chunks and metadata stand in for them.
    @pytest.mark.parametrize("key", ["c/0", "foo/c/0/0", "foo/bar/c"])
    @pytest.mark.parametrize(
        ("data", "byte_range"),
        [
            (b"\x01\x02\x03\x04", None),
            (b"\x01\x02\x03\x04", RangeByteRequest(1, 4)),
            (b"\x01\x02\x03\x04", OffsetByteRequest(1)),
            (b"\x01\x02\x03\x04", SuffixByteRequest(1)),
            (b"\x05", None),  # upstream's b"": a zero-length chunk is refused (test_set)
        ],
    )
    async def test_get(
        self, store: IcechunkStore, key: str, data: bytes, byte_range: ByteRequest
    ) -> None:
        await super().test_get(store, key, data, byte_range)

    @pytest.mark.parametrize(
        "byte_range",
        [None, RangeByteRequest(1, 4), OffsetByteRequest(5), SuffixByteRequest(3)],
    )
    async def test_get_metadata_range(
        self, store: IcechunkStore, byte_range: ByteRequest | None
    ) -> None:
        # Metadata reads are sliced in the store, chunk reads in the core: cover both.
        doc = group_doc(x=1)
        await self.set(store, "g/zarr.json", buf(doc))
        got = await store.get("g/zarr.json", default_buffer_prototype(), byte_range)
        expected = {
            None: doc,
            RangeByteRequest(1, 4): doc[1:4],
            OffsetByteRequest(5): doc[5:],
            SuffixByteRequest(3): doc[-3:],
        }[byte_range]
        assert got is not None and got.to_bytes() == expected

    # Overridden keys: "0".."9" are not zarr keys; chunks c/0..c/9 of a root array are.
    async def test_get_many(self, store: IcechunkStore) -> None:
        keys = [f"c/{i}" for i in range(10)]
        for k in keys:
            await self.set(store, k, buf(k.encode()))
        requests = [(k, default_buffer_prototype(), None) for k in keys]
        observed = await _collect_aiterator(store._get_many(requests))
        assert sorted((k, b.to_bytes()) for k, b in observed if b is not None) == sorted(
            (k, k.encode()) for k in keys
        )

    # Overridden keys, as in test_get.
    @pytest.mark.parametrize("key", ["c/0", "foo/c/0/0", "foo/bar/c"])
    @pytest.mark.parametrize("data", [b"\x01\x02\x03\x04", b"\x05"])
    async def test_getsize(self, store: IcechunkStore, key: str, data: bytes) -> None:
        await super().test_getsize(store, key, data)

    # Overridden: getsize_prefix needs a node prefix ("c" is a chunk prefix, refused with
    # "bad key prefix"); for the root array it sums its zarr.json and its chunks.
    async def test_getsize_prefix(self, store: IcechunkStore) -> None:
        meta = array_doc([4, 4], [2, 2])
        await store.set("zarr.json", buf(meta))
        keys = ["c/0/0", "c/0/1", "c/1/0", "c/1/1"]
        await store._set_many([(k, buf(b"\x01\x02\x03\x04")) for k in keys])
        assert await store.getsize_prefix("") == len(meta) + 4 * len(keys)
        with pytest.raises(IcechunkError, match="bad key prefix"):
            await store.getsize_prefix("c")

    # Overridden: like icechunk, a missing chunk has size 0 (even outside the grid) and a
    # missing node's metadata raises KeyError, not FileNotFoundError.
    async def test_getsize_raises(self, store: IcechunkStore) -> None:
        await store.set("zarr.json", buf(array_doc([2], [1])))
        assert await store.getsize("c/1000") == 0
        with pytest.raises(KeyError, match="node not found at `/nope`"):
            await store.getsize("nope/zarr.json")

    # Overridden keys: zarr.json must hold a valid document; chunk keys as in test_get.
    @pytest.mark.parametrize(
        ("key", "data"),
        [
            ("zarr.json", group_doc()),
            ("foo/zarr.json", array_doc([3], [1])),
            ("c/0", b"\x01\x02\x03\x04"),
            ("c/0", b"\x05"),
            ("foo/c/0/0", b"\x01\x02\x03\x04"),
            ("foo/bar/c", b"\x05"),
        ],
    )
    async def test_set(self, store: IcechunkStore, key: str, data: bytes) -> None:
        path, coords = _split(key)
        if coords is not None:
            await _ensure_array(store, path, len(coords))
        await super().test_set(store, key, data)

    # Upstream writes zero-length chunks; icechunk 2.x refuses them (no chunk decodes from
    # nothing), so every case that used b"" as a chunk uses one byte, and this checks the refusal.
    @pytest.mark.parametrize("key", ["c/0", "foo/bar/c"])
    async def test_set_zero_length_chunk(self, store: IcechunkStore, key: str) -> None:
        path, coords = _split(key)
        assert coords is not None
        await _ensure_array(store, path, len(coords))
        with pytest.raises(IcechunkError, match="zero-length chunk") as refused:
            await store.set(key, buf(b""))
        assert refused.value.kind == "zero-length-chunk"
        assert not await store.exists(key)

    # Overridden: the chunk's array must exist before store.set can write "c/0".
    async def test_set_not_open(self, store_not_open: IcechunkStore) -> None:
        await _ensure_array(store_not_open, "/", 1)
        await super().test_set_not_open(store_not_open)

    # Overridden keys, as in test_set.
    async def test_set_many(self, store: IcechunkStore) -> None:
        values = {
            "zarr.json": buf(group_doc()),
            "foo/zarr.json": buf(array_doc([4, 4], [1, 1])),
            "foo/c/0/0": buf(b"a"),
            "foo/c/3/2": buf(b"b"),
        }
        await store.set("bar/zarr.json", buf(array_doc([2], [1])))
        await store._set_many([*values.items(), ("bar/c/1", buf(b"c"))])
        values["bar/c/1"] = buf(b"c")
        for k, v in values.items():
            assert (await self.get(store, k)).to_bytes() == v.to_bytes()

    # Overridden: "zarr.json" cannot hold its own key's bytes; each key's value here is a
    # valid document or chunk, and a missing key gives None (icechunk 1.1 raises TypeError).
    @pytest.mark.parametrize(
        "key_ranges",
        [
            [],
            [("zarr.json", RangeByteRequest(0, 2))],
            [("c/0", RangeByteRequest(0, 2)), ("zarr.json", None)],
            [
                ("c/0", RangeByteRequest(0, 2)),
                ("c/1", SuffixByteRequest(2)),
                ("c/2", OffsetByteRequest(2)),
                ("c/1", None),
            ],
        ],
    )
    async def test_get_partial_values(
        self, store: IcechunkStore, key_ranges: list[tuple[str, ByteRequest | None]]
    ) -> None:
        await store.set("zarr.json", buf(array_doc([8], [1])))
        for i in range(3):
            await store.set(f"c/{i}", buf(f"chunk {i} bytes".encode()))
        observed = await store.get_partial_values(default_buffer_prototype(), key_ranges)
        expected = [await store.get(k, default_buffer_prototype(), r) for k, r in key_ranges]
        assert all(e is not None for e in expected)
        assert [o.to_bytes() if o else None for o in observed] == [
            e.to_bytes() if e else None for e in expected
        ]

    async def test_get_partial_values_missing(self, store: IcechunkStore) -> None:
        await store.set("a/zarr.json", buf(array_doc([8], [1])))
        await store.set("a/c/1", buf(b"xyz"))
        observed = await store.get_partial_values(
            default_buffer_prototype(),
            [("a/c/0", None), ("a/c/1", None), ("nope/zarr.json", None), ("a/.zarray", None)],
        )
        assert [o.to_bytes() if o else None for o in observed] == [None, b"xyz", None, None]

    # Overridden: "foo" is not a zarr key (exists() raises, as in icechunk) and b"bar" is not
    # a document.
    async def test_exists(self, store: IcechunkStore) -> None:
        with pytest.raises(IcechunkError, match="invalid zarr key format `foo`"):
            await store.exists("foo")
        assert not await store.exists("foo/zarr.json")
        await store.set("foo/zarr.json", buf(group_doc()))
        assert await store.exists("foo/zarr.json")

    # Overridden: valid documents instead of b"bar".
    async def test_delete(self, store: IcechunkStore) -> None:
        await store.set("foo/zarr.json", buf(group_doc()))
        assert await store.exists("foo/zarr.json")
        await store.delete("foo/zarr.json")
        assert not await store.exists("foo/zarr.json")

    # Overridden: valid documents instead of b"root" / b"bar".
    async def test_delete_dir(self, store: IcechunkStore) -> None:
        await store.set("zarr.json", buf(group_doc()))
        await store.set("foo-bar/zarr.json", buf(group_doc()))
        await store.set("foo/zarr.json", buf(array_doc([2], [1])))
        await store.set("foo/c/0", buf(b"chunk"))
        await store.delete_dir("foo")
        assert await store.exists("zarr.json")
        assert await store.exists("foo-bar/zarr.json")
        assert not await store.exists("foo/zarr.json")
        assert not await store.exists("foo/c/0")

    # Overridden: "nonexistent_key" is not a zarr key; a missing node's metadata key is.
    async def test_delete_nonexistent_key_does_not_raise(self, store: IcechunkStore) -> None:
        await store.delete("nonexistent/zarr.json")
        await store.delete("zarr.json")

    # Overridden: "foo/bar" is not a zarr key; a chunk "foo/bar/c/0" of array foo/bar is.
    async def test_is_empty(self, store: IcechunkStore) -> None:
        assert await store.is_empty("")
        await self.set(store, "foo/bar/c/0", buf(b"something"))
        assert not await store.is_empty("")
        assert await store.is_empty("fo")
        assert not await store.is_empty("foo/")
        assert not await store.is_empty("foo")
        assert not await store.is_empty("foo/bar/c")
        assert await store.is_empty("foo/bar/c/0")
        assert await store.is_empty("foo/bar/c/1")
        assert await store.is_empty("spam/")

    # Overridden: "key" is not a zarr key.
    async def test_clear(self, store: IcechunkStore) -> None:
        await self.set(store, "zarr.json", buf(group_doc()))
        await self.set(store, "a/c/0", buf(b"something"))
        await store.clear()
        assert await store.is_empty("")
        assert await _collect_aiterator(store.list()) == ()

    # Overridden: an empty zarr.json is not a document (nor an empty chunk a chunk).
    async def test_list(self, store: IcechunkStore) -> None:
        assert await _collect_aiterator(store.list()) == ()
        values = {"foo/zarr.json": buf(array_doc([10], [1]))}
        values.update({f"foo/c/{i}": buf(b"\x05") for i in range(10)})
        await store._set_many(values.items())
        assert sorted(await _collect_aiterator(store.list())) == sorted(values)

    # Overridden: an empty zarr.json is not a document.
    async def test_list_prefix(self, store: IcechunkStore) -> None:
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        values = {p + "zarr.json": buf(group_doc()) for p in prefixes}
        await store._set_many(values.items())
        for prefix in prefixes:
            observed = sorted(await _collect_aiterator(store.list_prefix(prefix)))
            assert observed == sorted(k for k in values if k.startswith(prefix))

    # Overridden: an empty zarr.json is not a document, and "foo/baz/c/0" needs its array.
    async def test_list_empty_path(self, store: IcechunkStore) -> None:
        values = {
            "foo/bar/zarr.json": buf(array_doc([2], [1])),
            "foo/bar/c/1": buf(b"\x05"),
            "foo/baz/zarr.json": buf(array_doc([2], [1])),
            "foo/baz/c/0": buf(b"\x05"),
        }
        for k, v in values.items():
            await store.set(k, v)
        assert sorted(await _collect_aiterator(store.list())) == sorted(values)
        assert sorted(await _collect_aiterator(store.list_prefix(""))) == sorted(values)
        observed = sorted(await _collect_aiterator(store.list_prefix("foo/bar/")))
        assert observed == sorted(k for k in values if k.startswith("foo/bar/"))

    # Overridden: "foo/bar/foobar_first_child" is not a zarr key; an array child stands in.
    async def test_list_dir(self, store: IcechunkStore) -> None:
        roots_and_keys = [
            ("foo", {"foo/zarr.json": array_doc([2], [1]), "foo/c/1": b"\x01"}),
            (
                "foo/bar",
                {
                    "foo/bar/zarr.json": group_doc(),
                    "foo/bar/first/zarr.json": array_doc([1], [1]),
                    "foo/bar/second/zarr.json": group_doc(),
                },
            ),
        ]
        assert await _collect_aiterator(store.list_dir("")) == ()
        for root, values in roots_and_keys:
            assert await _collect_aiterator(store.list_dir(root)) == ()
            for k, v in values.items():
                await store.set(k, buf(v))
            expected = sorted({k.removeprefix(root + "/").split("/")[0] for k in values})
            assert sorted(await _collect_aiterator(store.list_dir(root))) == expected
            assert sorted(await _collect_aiterator(store.list_dir(root + "/"))) == expected

    # Overridden: "k" / "k2" are not zarr keys; two chunks of one array stand in.
    async def test_set_if_not_exists(self, store: IcechunkStore) -> None:
        await self.set(store, "a/c/0", buf(b"0000"))
        await store.set_if_not_exists("a/c/0", buf(b"1111"))
        assert await store.get("a/c/0", default_buffer_prototype()) == buf(b"0000")
        await store.set_if_not_exists("a/c/1", buf(b"1111"))
        assert await store.get("a/c/1", default_buffer_prototype()) == buf(b"1111")
        await store.set_if_not_exists("zarr.json", buf(group_doc(first=True)))
        await store.set_if_not_exists("zarr.json", buf(group_doc(first=False)))
        got = await store.get("zarr.json", default_buffer_prototype())
        assert got is not None and json.loads(got.to_bytes())["attributes"] == {"first": True}

    # Overridden: zarr.json must be a document, and "nonexistent_key" is not a zarr key.
    async def test_get_bytes(self, store: IcechunkStore) -> None:
        data = group_doc(hello="world")
        await self.set(store, "zarr.json", buf(data))
        assert await store._get_bytes("zarr.json", prototype=default_buffer_prototype()) == data
        with pytest.raises(FileNotFoundError):
            await store._get_bytes("nonexistent/zarr.json", prototype=default_buffer_prototype())

    def test_get_bytes_sync(self, store: IcechunkStore) -> None:
        data = group_doc(hello="world")
        sync(self.set(store, "zarr.json", buf(data)))
        assert store._get_bytes_sync("zarr.json", prototype=default_buffer_prototype()) == data

    # Overridden: {"foo": "bar"} is not a zarr document; a group with that attribute is.
    async def test_get_json(self, store: IcechunkStore) -> None:
        await self.set(store, "zarr.json", buf(group_doc(foo="bar")))
        got = await store._get_json("zarr.json", prototype=default_buffer_prototype())
        assert got["attributes"] == {"foo": "bar"}

    def test_get_json_sync(self, store: IcechunkStore) -> None:
        sync(self.set(store, "zarr.json", buf(group_doc(foo="bar"))))
        got = store._get_json_sync("zarr.json", prototype=default_buffer_prototype())
        assert got["attributes"] == {"foo": "bar"}

    # The five synchronous-protocol cases skip for stores without get_sync/set_sync/
    # delete_sync. Like icechunk 1.1, IcechunkStore does not offer them (every read goes
    # through the session's async core); these overrides assert that instead of skipping.
    def test_get_sync(self, store: IcechunkStore) -> None:
        assert not isinstance(store, SupportsGetSync)

    def test_get_sync_missing(self, store: IcechunkStore) -> None:
        assert not isinstance(store, SupportsGetSync)

    def test_set_sync(self, store: IcechunkStore) -> None:
        assert not isinstance(store, SupportsSetSync)

    def test_delete_sync(self, store: IcechunkStore) -> None:
        assert not isinstance(store, SupportsDeleteSync)

    def test_delete_sync_missing(self, store: IcechunkStore) -> None:
        assert not isinstance(store, SupportsDeleteSync)
