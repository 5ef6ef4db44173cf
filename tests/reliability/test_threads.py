"""One session shared by many threads: writes, reads, listings and a commit, nothing lost.

Threads reach the session in the two ways real programs do: through zarr's blocking API (all
on zarr's event loop) and through the store's coroutines on each thread's own event loop (what
a thread pool of async workers does). The second way runs session code truly in parallel and
used to fail with "dictionary changed size during iteration".

``PYICECHUNK_THREAD_ROUNDS`` repeats each test (default 1); the ``slow`` variant runs 10 rounds
of a bigger workload.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zarr
from zarr.core.buffer import default_buffer_prototype

import pyicechunk as icechunk
from pyicechunk._sync import sync
from pyicechunk.exceptions import IcechunkError

PROTO = default_buffer_prototype()
THREADS = 16
ROUNDS = int(os.environ.get("PYICECHUNK_THREAD_ROUNDS", "1"))
NATIVE = 256  # int32 per chunk of /native: 1 KiB, above the inline threshold


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds instead of every 5 ms, so races show up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def guarded(fn: Callable[[], None], errors: list[BaseException]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except BaseException as e:
            errors.append(e)

    return run


def start_all(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=guarded(t, errors)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a thread did not finish"
    return errors


def new_session(per_thread: int, tmp_path: Any) -> tuple[icechunk.Repository, icechunk.Session]:
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path)))
    session = repo.writable_session("main")
    root = zarr.group(session.store)
    root.create_array(
        "inline", shape=(THREADS * per_thread,), chunks=(1,), dtype="i4", compressors=None
    )
    root.create_array(
        "native",
        shape=(THREADS * per_thread * NATIVE,),
        chunks=(NATIVE,),
        dtype="i4",
        compressors=None,
    )
    return repo, session


def chunk_bytes(array: str, c: int) -> bytes:
    size = 1 if array == "inline" else NATIVE
    return np.arange(c * size, (c + 1) * size, dtype="i4").tobytes()


def check_committed(repo: icechunk.Repository, snapshot: str, chunks: dict[str, set[int]]) -> None:
    store = repo.readonly_session(snapshot_id=snapshot).store
    for name, written in chunks.items():
        array = zarr.open_array(store, path=name, mode="r")
        values = array[:]
        size = array.chunks[0]
        for c in range(array.shape[0] // size):
            part = values[c * size : (c + 1) * size]
            if c in written:
                np.testing.assert_array_equal(part, np.arange(c * size, (c + 1) * size))
            else:
                assert (part == 0).all(), f"{name} chunk {c} was never written"


def run_writers_and_readers(session: icechunk.Session, per_thread: int) -> None:
    store = session.store

    def own_loop_writer(t: int) -> Callable[[], None]:
        async def write() -> None:
            for i in range(per_thread):
                c = t * per_thread + i
                await store.set(f"inline/c/{c}", PROTO.buffer.from_bytes(chunk_bytes("inline", c)))
                if i % 8 == 0:
                    got = await store.get(f"inline/c/{c}", PROTO)
                    assert got is not None and got.to_bytes() == chunk_bytes("inline", c)

        return lambda: asyncio.run(write())

    def zarr_writer(t: int) -> Callable[[], None]:
        def write() -> None:
            array = zarr.open_array(store, path="native", mode="r+")
            for i in range(per_thread // 4):
                c = t * per_thread + i
                array[c * NATIVE : (c + 1) * NATIVE] = np.frombuffer(chunk_bytes("native", c), "i4")

        return write

    done = threading.Event()

    def lister() -> None:
        async def once() -> None:
            keys = [k async for k in store.list()]
            assert "zarr.json" in keys
            await store.getsize_prefix("inline")

        while not done.is_set():
            asyncio.run(once())
            session.status()

    lister_errors: list[BaseException] = []
    listers = [threading.Thread(target=guarded(lister, lister_errors)) for _ in range(2)]
    for t in listers:
        t.start()
    try:
        errors = start_all(
            [own_loop_writer(t) for t in range(THREADS)] + [zarr_writer(t) for t in range(4)]
        )
    finally:
        done.set()
        for t in listers:
            t.join(60)
    assert not errors + lister_errors, (errors + lister_errors)[:3]


def expected_chunks(per_thread: int) -> dict[str, set[int]]:
    return {
        "inline": set(range(THREADS * per_thread)),
        "native": {t * per_thread + i for t in range(4) for i in range(per_thread // 4)},
    }


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_sixteen_threads_write_and_read_then_commit(tmp_path: Any, round_: int) -> None:
    per_thread = 150
    repo, session = new_session(per_thread, tmp_path)
    run_writers_and_readers(session, per_thread)
    check_committed(repo, session.commit("threads"), expected_chunks(per_thread))


@pytest.mark.slow
def test_sixteen_threads_stress(tmp_path: Any) -> None:
    for round_ in range(10):
        per_thread = 1000
        repo, session = new_session(per_thread, tmp_path / str(round_))
        run_writers_and_readers(session, per_thread)
        check_committed(repo, session.commit("threads"), expected_chunks(per_thread))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_commit_while_threads_write(tmp_path: Any, round_: int) -> None:
    """Every write acknowledged before the commit ends is in it; later ones are refused."""
    per_thread = 100
    repo, session = new_session(per_thread, tmp_path)
    store = session.store
    acknowledged: list[set[int]] = [set() for _ in range(THREADS)]
    refused: list[int] = [0] * THREADS
    started = threading.Barrier(THREADS + 1)

    def writer(t: int) -> Callable[[], None]:
        async def write() -> None:
            started.wait()
            for i in range(per_thread):
                c = t * per_thread + i
                data = PROTO.buffer.from_bytes(chunk_bytes("inline" if i % 2 else "native", c))
                name = "inline" if i % 2 else "native"
                try:
                    await store.set(f"{name}/c/{c}", data)
                except IcechunkError as e:
                    assert "read-only" in e.message, e.message
                    refused[t] += 1
                else:
                    acknowledged[t].add(c)

        return lambda: asyncio.run(write())

    snapshot: list[str] = []

    def committer() -> None:
        started.wait()
        while sum(len(a) for a in acknowledged) < THREADS * per_thread // 4:
            time.sleep(0.001)
        snapshot.append(session.commit("mid-flight"))

    errors = start_all([writer(t) for t in range(THREADS)] + [committer])
    assert not errors, errors[:3]
    written = set().union(*acknowledged)
    assert written and sum(refused) + len(written) == THREADS * per_thread
    check_committed(
        repo,
        snapshot[0],
        {
            "inline": {c for c in written if (c % per_thread) % 2},
            "native": {c for c in written if not (c % per_thread) % 2},
        },
    )
    assert sync(store.exists("zarr.json"))
