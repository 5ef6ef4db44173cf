"""list / list_prefix / list_dir / is_empty / getsize_prefix / delete_dir, against icechunk."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
import zarr
from _docs import array_doc, group_doc
from zarr.core.buffer import cpu

import pyicechunk


def buf(data: bytes) -> cpu.Buffer:
    return cpu.Buffer.from_bytes(data)


def run(coro: Any) -> Any:
    return zarr.core.sync.sync(coro)


async def _collect(iterator: Any) -> list[str]:
    return [k async for k in iterator]


def collect(iterator_factory: Any) -> list[str]:
    async def go() -> list[str]:
        return await _collect(iterator_factory())

    return run(go())


HIERARCHY: list[tuple[str, bytes]] = [
    ("zarr.json", group_doc()),
    ("g1/zarr.json", group_doc()),
    ("g1/ar/zarr.json", array_doc([4, 4], [2, 2])),
    ("g1/ar/c/0/0", b"a"),
    ("g1/ar/c/0/1", b"bb"),
    ("g1/ar/c/1/1", b"ccc"),
    ("g1/sub/zarr.json", group_doc()),
    ("x/zarr.json", array_doc([12], [1])),
    ("x/c/1", b"x1"),
    ("x/c/10", b"x10"),
    ("x/c/2", b"x2"),
    ("scalar/zarr.json", array_doc([], [])),
    ("scalar/c", b"s"),
    ("g1-other/zarr.json", group_doc()),
]


def make_store(module: ModuleType) -> Any:
    store = module.Repository.create(module.in_memory_storage()).writable_session("main").store

    async def fill() -> None:
        for key, value in HIERARCHY:
            await store.set(key, buf(value))

    run(fill())
    return store


@pytest.fixture(scope="module")
def stores() -> tuple[Any, Any]:
    """The same hierarchy in icechunk and in pyicechunk."""
    return make_store(importlib.import_module("icechunk")), make_store(pyicechunk)


def test_list_is_every_key(stores: tuple[Any, Any]) -> None:
    ref, ours = stores
    keys = collect(ours.list)
    assert sorted(keys) == sorted(k for k, _ in HIERARCHY)
    assert sorted(keys) == sorted(collect(ref.list))
    # Metadata keys come before chunk keys, as in icechunk.
    first_chunk = next(i for i, k in enumerate(keys) if not k.endswith("zarr.json"))
    assert all(not k.endswith("zarr.json") for k in keys[first_chunk:])


@pytest.mark.parametrize("prefix", ["", "/", "g1", "g1/", "g1/ar", "g1/ar/", "x", "scalar"])
def test_list_prefix(stores: tuple[Any, Any], prefix: str) -> None:
    ref, ours = stores
    observed = sorted(collect(lambda: ours.list_prefix(prefix)))
    assert observed == sorted(collect(lambda: ref.list_prefix(prefix)))
    bare = prefix.strip("/")
    assert observed == sorted(
        k for k, _ in HIERARCHY if not bare or k == bare or k.startswith(bare + "/")
    )


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "g1",
        "g1/",
        "g1/ar",
        "g1/ar/c",
        "g1/ar/c/0",
        "g1/ar/c/1/",
        "x/c",
        "x/c/1",
        "scalar",
        "scalar/c",
        "nope",
        "g1/nope",
        "g1/ar/c/5",
    ],
)
def test_list_dir(stores: tuple[Any, Any], prefix: str) -> None:
    ref, ours = stores
    observed = collect(lambda: ours.list_dir(prefix))
    assert observed == sorted(observed)
    assert sorted(observed) == sorted(collect(lambda: ref.list_dir(prefix)))


def test_list_dir_expected_names(stores: tuple[Any, Any]) -> None:
    _, ours = stores
    assert collect(lambda: ours.list_dir("")) == ["g1", "g1-other", "scalar", "x", "zarr.json"]
    assert collect(lambda: ours.list_dir("g1/ar")) == ["c", "zarr.json"]
    assert collect(lambda: ours.list_dir("g1/ar/c")) == ["0", "1"]
    assert collect(lambda: ours.list_dir("g1/ar/c/0")) == ["0", "1"]
    assert collect(lambda: ours.list_dir("x/c")) == ["1", "10", "2"]


@pytest.mark.parametrize(
    "prefix", ["", "g1", "g1/ar", "g1/ar/c", "g1/ar/c/1", "g1/ar/c/1/0", "x/c/3", "nope", "sc"]
)
def test_is_empty(stores: tuple[Any, Any], prefix: str) -> None:
    ref, ours = stores
    assert run(ours.is_empty(prefix)) == run(ref.is_empty(prefix))


@pytest.mark.parametrize("prefix", ["", "g1", "g1/ar", "x", "scalar"])
def test_getsize_prefix(stores: tuple[Any, Any], prefix: str) -> None:
    ref, ours = stores
    size = run(ours.getsize_prefix(prefix))
    assert size == run(ref.getsize_prefix(prefix))
    bare = prefix.strip("/")
    assert size == sum(
        len(v) for k, v in HIERARCHY if not bare or k == bare or k.startswith(bare + "/")
    )


def test_implicit_parents_are_listed() -> None:
    # A node whose parent group was never written is still found under the parent's name
    # (icechunk lists nothing for the root here, and reports it empty).
    store = (
        pyicechunk.Repository.create(pyicechunk.in_memory_storage()).writable_session("main").store
    )
    run(store.set("a/b/zarr.json", buf(group_doc())))
    assert collect(lambda: store.list_dir("")) == ["a"]
    assert collect(lambda: store.list_dir("a")) == ["b"]
    assert not run(store.is_empty(""))
    assert not run(store.is_empty("a"))


@pytest.mark.parametrize(
    ("prefix", "gone"),
    [
        ("g1/ar/c/0", {"g1/ar/c/0/0", "g1/ar/c/0/1"}),
        ("g1/ar/c", {"g1/ar/c/0/0", "g1/ar/c/0/1", "g1/ar/c/1/1"}),
        ("x/c/1", {"x/c/1"}),
        ("scalar/c", {"scalar/c"}),
        ("g1", {k for k, _ in HIERARCHY if k.startswith("g1/")}),
        ("nope", set()),
        ("g1/nope", set()),
        ("", {k for k, _ in HIERARCHY}),
    ],
)
def test_delete_dir(prefix: str, gone: set[str]) -> None:
    results = []
    for module in (importlib.import_module("icechunk"), pyicechunk):
        store = make_store(module)
        run(store.delete_dir(prefix))
        results.append(set(collect(store.list)))
    ref, ours = results
    assert ours == {k for k, _ in HIERARCHY} - gone
    if prefix:  # icechunk's delete_dir("") keeps everything when a root group exists
        assert ours == ref


def test_listing_many_chunks_is_fast() -> None:
    store = (
        pyicechunk.Repository.create(pyicechunk.in_memory_storage()).writable_session("main").store
    )
    n = 20_000

    async def fill() -> None:
        await store.set("big/zarr.json", buf(array_doc([n], [1])))
        await store._set_many((f"big/c/{i}", buf(b"\x01")) for i in range(n))

    run(fill())
    keys = collect(store.list)
    assert len(keys) == n + 1
    assert len(collect(lambda: store.list_dir("big/c"))) == n
    assert run(store.getsize_prefix("big")) == n + len(array_doc([n], [1]))
