"""store_dask, session_merge_reduction and the distributed helpers with the threaded scheduler."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

import pyicechunk as ic
from pyicechunk.dask import (
    computing_meta,
    merge_sessions_array_kwargs,
    session_merge_reduction,
    store_dask,
)
from pyicechunk.distributed import extract_session, merge_sessions

NOT_A_FORK = (
    "merge_sessions only accepts ForkSession objects. Received 'Session' instance instead. "
    "To merge _all_ your sessions, use `Session.merge(*forked_sessions)` instead. See "
    "https://icechunk.io/en/stable/icechunk-python/parallel/#cooperative-distributed-writes."
)


@pytest.fixture(autouse=True)
def _threaded() -> Iterator[None]:
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture
def repo() -> ic.Repository:
    return ic.Repository.create(ic.in_memory_storage())


def new_array(store: ic.IcechunkStore, name: str, shape: tuple[int, ...]) -> zarr.Array:
    root = zarr.open_group(store, mode="a")
    return root.create_array(name, shape=shape, chunks=(4,) * len(shape), dtype="f8", fill_value=-1)


def committed_array(repo: ic.Repository, name: str) -> np.ndarray:
    return zarr.open_array(repo.readonly_session("main").store, path=name, mode="r")[:]


def test_store_dask_whole_arrays(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    a = new_array(fork.store, "a", (16, 12))
    b = new_array(fork.store, "b", (20,))
    src_a = da.from_array(np.arange(192.0).reshape(16, 12), chunks=(4, 4))
    src_b = da.from_array(np.linspace(0, 1, 20), chunks=8)  # 8 spans two zarr chunks
    merged = store_dask(sources=[src_a, src_b], targets=[a, b], split_every=3)
    assert isinstance(merged, ic.ForkSession)
    session.merge(merged)
    session.commit("store")
    np.testing.assert_array_equal(committed_array(repo, "a"), src_a.compute())
    np.testing.assert_array_equal(committed_array(repo, "b"), src_b.compute())


def test_store_dask_regions(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    target = new_array(fork.store, "r", (16, 8))
    top = da.ones((8, 8), chunks=4)
    bottom = da.full((4, 8), 2.0, chunks=4)
    merged = store_dask(
        sources=[top, bottom],
        targets=[target, target],
        regions=[(slice(0, 8), slice(None)), (slice(12, 16), slice(None))],
    )
    session.merge(merged)
    session.commit("regions")
    expected = np.full((16, 8), -1.0)
    expected[:8] = 1.0
    expected[12:] = 2.0
    np.testing.assert_array_equal(committed_array(repo, "r"), expected)
    # the untouched region was never written
    ro = repo.readonly_session("main")
    assert zarr.open_array(ro.store, path="r", mode="r").nchunks_initialized == 6


def test_store_dask_passes_compute_kwargs(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    target = new_array(fork.store, "s", (8,))
    with pytest.raises(ValueError, match="Expected one of"):
        store_dask(sources=[da.ones(8, chunks=4)], targets=[target], scheduler="bogus")
    merged = store_dask(sources=[da.ones(8, chunks=4)], targets=[target], scheduler="sync")
    session.merge(merged)
    np.testing.assert_array_equal(zarr.open_array(session.store, path="s")[:], np.ones(8))


@pytest.mark.parametrize("name", ["compute", "return_stored", "load_stored", "lock"])
def test_store_dask_refuses_fixed_kwargs(repo: ic.Repository, name: str) -> None:
    fork = repo.writable_session("main").fork()
    target = new_array(fork.store, "x", (8,))
    with pytest.raises(TypeError, match=repr(name)):
        store_dask(sources=[da.ones(8, chunks=4)], targets=[target], **{name: False})


def test_store_dask_on_plain_session_store(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    target = new_array(session.store, "p", (8,))
    with pytest.raises(TypeError) as info:
        store_dask(sources=[da.ones(8, chunks=4)], targets=[target])
    assert str(info.value) == NOT_A_FORK


def test_session_merge_reduction_single_array(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    target = new_array(fork.store, "m", (12,))
    stored = da.store(
        [da.arange(12.0, chunks=4)],
        [target],
        compute=False,
        return_stored=True,
        load_stored=False,
        lock=False,
    )
    assert isinstance(stored, da.Array)  # a single source gives back a single array
    merged = session_merge_reduction(stored, split_every=2)
    session.merge(merged)
    np.testing.assert_array_equal(zarr.open_array(session.store, path="m")[:], np.arange(12.0))


def test_extract_session(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    plain = new_array(session.store, "e", (4,))
    assert type(extract_session(plain)) is ic.Session
    session.commit("e")
    fork = repo.writable_session("main").fork()
    forked = zarr.open_array(fork.store, path="e")
    assert type(extract_session(forked, axis=(0,), keepdims=False)) is ic.ForkSession
    with pytest.raises(TypeError, match="IcechunkStore"):
        extract_session(zarr.create_array(zarr.storage.MemoryStore(), shape=(2,), dtype="i1"))


def test_merge_sessions_type_errors(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    with pytest.raises(TypeError) as info:
        merge_sessions(fork, session)
    assert str(info.value) == NOT_A_FORK
    with pytest.raises(TypeError) as info:
        merge_sessions([fork, [session]])
    assert str(info.value) == NOT_A_FORK
    with pytest.raises(TypeError, match="Received 'int' instance instead"):
        merge_sessions(fork, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        merge_sessions()


def test_merge_sessions_flattens_and_combines_pickled_forks(repo: ic.Repository) -> None:
    session = repo.writable_session("main")
    fork = session.fork()
    new_array(fork.store, "f", (16,))
    # Copies that travelled through pickle, as they would to and from workers.
    copies = [pickle.loads(pickle.dumps(fork)) for _ in range(4)]
    for i, copy in enumerate(copies):
        zarr.open_array(copy.store, path="f")[4 * i : 4 * i + 4] = float(i)
    merged = merge_sessions(copies[0], [copies[1], [copies[2], copies[3]]])
    assert merged is copies[0]
    session.merge(merged)
    session.commit("merged")
    np.testing.assert_array_equal(committed_array(repo, "f"), np.repeat(np.arange(4.0), 4))


def test_merge_sessions_array_kwargs_and_computing_meta(repo: ic.Repository) -> None:
    fork = repo.writable_session("main").fork()
    assert merge_sessions_array_kwargs([fork], axis=(0,), keepdims=True) is fork

    wrapped = computing_meta(merge_sessions_array_kwargs)
    meta = wrapped(computing_meta=True)
    assert isinstance(meta, np.ndarray)
    assert meta.dtype == object and meta.shape == (1,)
    assert wrapped(fork) is fork
