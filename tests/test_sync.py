"""Blocking calls work from any thread and from inside running event loops."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import zarr
from zarr.core.sync import sync as zarr_sync

import pyicechunk as icechunk


def make_repo(path: Path) -> icechunk.Repository:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = [
        1,
        2,
        3,
        4,
    ]
    session.commit("data")
    return repo


def test_blocking_calls_inside_a_user_event_loop(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")

    async def main() -> tuple[set[str], list[int]]:
        session = repo.writable_session("main")
        array = zarr.open_array(session.store, path="a", mode="r+")
        array[0] = 10
        session.commit("inside a loop")
        values = zarr.open_array(repo.readonly_session(branch="main").store, path="a", mode="r")
        return repo.list_branches(), list(values[:])

    branches, values = asyncio.run(main())
    assert branches == {"main"}
    assert values == [10, 2, 3, 4]


def test_blocking_calls_from_a_coroutine_on_zarrs_own_loop(tmp_path: Path) -> None:
    # zarr's sync() refuses to wait on the loop it runs on (SyncError); ours must not deadlock.
    repo = make_repo(tmp_path / "r")

    async def on_zarr_loop() -> list[str]:
        repo.create_branch("dev", repo.lookup_branch("main"))
        return [s.message for s in repo.ancestry(branch="dev")]

    assert zarr_sync(on_zarr_loop()) == ["data", "Repository initialized"]


def test_async_twins_and_many_threads(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")

    async def use_async() -> str:
        session = await repo.writable_session_async("main")
        array = await zarr.api.asynchronous.open_array(store=session.store, path="a", mode="r+")
        await array.setitem(slice(0, 2), np.array([7, 8], dtype="i4"))
        return await session.commit_async("async commit")

    sid = asyncio.run(use_async())
    assert repo.lookup_branch("main") == sid

    results: list[list[int]] = []

    def reader() -> None:
        session = repo.readonly_session(snapshot_id=sid)
        results.append(list(zarr.open_array(session.store, path="a", mode="r")[:]))

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[7, 8, 3, 4]] * 8


def test_history_walks_run_on_the_calling_thread_where_they_can(tmp_path: Path) -> None:
    # sync_here runs short read-only work on the caller's own loop (no hand-off to zarr's
    # loop thread); inside a running loop it waits for zarr's loop like sync does.
    from pyicechunk._sync import sync_here

    async def where() -> int:
        return threading.get_ident()

    assert sync_here(where()) == threading.get_ident()
    assert sync_here(where()) == sync_here(where())  # the thread's loop is kept

    async def inside_a_loop() -> int:
        return sync_here(where())

    assert asyncio.run(inside_a_loop()) != threading.get_ident()

    # Ancestry from several threads at once, each on its own loop, while commits land.
    repo = make_repo(tmp_path / "r")
    lengths: list[int] = []
    errors: list[BaseException] = []

    def walk() -> None:
        try:
            for _ in range(20):
                lengths.append(len(list(repo.ancestry(branch="main"))))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    walkers = [threading.Thread(target=walk) for _ in range(4)]
    for w in walkers:
        w.start()
    for k in range(5):
        session = repo.writable_session("main")
        zarr.open_array(session.store, path="a", mode="r+")[0] = k
        session.commit(f"while walking {k}")
    for w in walkers:
        w.join()
    assert not errors
    assert len(lengths) == 80 and set(lengths) <= set(range(2, 8))
    assert len(list(repo.ancestry(branch="main"))) == 7
