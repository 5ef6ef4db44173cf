"""Which thread runs a local filesystem call: small ones on the event loop's, the rest in workers.

The loop's thread must never wait: for a disk (a read of bytes not in the page cache goes to a
worker), for a sync, or for another process's lock (a held directory lock is waited for in a
worker while the loop goes on running).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pyicechunk.exceptions import ObjectNotFoundError
from pyicechunk.storage import RangeByteRequest
from pyicechunk.storage.local import LocalFileSystemBackend

REF = "refs/branch.dev/ref.json"


@contextmanager
def held_lock(directory: Path) -> Iterator[None]:
    """The directory's exclusive lock, held through another open file (as another process)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def _still_pending(task: asyncio.Future[object]) -> bool:
    """Let the loop run for a while (it is not blocked), then say whether ``task`` waits still."""
    for _ in range(10):
        await asyncio.sleep(0.01)
    return not task.done()


@pytest.mark.parametrize("durable", [True, False])
def test_a_held_lock_is_waited_for_off_the_loop(tmp_path: Path, durable: bool) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=durable)

    async def main() -> None:
        assert await backend.put_if_absent(REF, b"one")
        _, version = await backend.get_versioned(REF)
        with held_lock(tmp_path / "refs" / "branch.dev"):
            swap = asyncio.ensure_future(backend.put_if_version(REF, b"two", version))
            assert await _still_pending(swap)
        assert await swap
        assert await backend.get(REF) == b"two"
        with held_lock(tmp_path / "refs" / "branch.dev"):
            delete = asyncio.ensure_future(backend.delete(REF))
            assert await _still_pending(delete)
        await delete
        assert not await backend.exists(REF)
        # Nothing is left behind by the attempt made on the loop's thread.
        assert os.listdir(tmp_path / "refs" / "branch.dev") == []

    asyncio.run(main())


def test_reads_of_every_size_and_residency(tmp_path: Path) -> None:
    backend = LocalFileSystemBackend(str(tmp_path), durable=False)
    small = bytes(range(256)) * 16
    large = bytes(range(256)) * 1024  # 256 KiB: read in a worker
    for key, data in (("manifests/SMALL", small), ("manifests/LARGE", large)):
        asyncio.run(backend.put(key, data))
        fd = os.open(tmp_path / key, os.O_RDONLY)
        try:
            os.fsync(fd)  # clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    async def main() -> None:
        for key, data in (("manifests/SMALL", small), ("manifests/LARGE", large)):
            for _ in range(2):  # not cached (where the advice was taken), then cached
                assert await backend.get(key) == data
                assert await backend.get(key, RangeByteRequest(10, 20)) == data[10:20]
                got, version = await backend.get_versioned(key)
                assert got == data and version == (await backend.get_versioned(key))[1]
        await backend.put("manifests/EMPTY", b"")
        assert await backend.get("manifests/EMPTY") == b""
        for missing in ("manifests/NONE", "manifests"):  # a directory is no object either
            with pytest.raises(ObjectNotFoundError):
                await backend.get(missing)
            with pytest.raises(ObjectNotFoundError):
                await backend.get_versioned(missing)

    asyncio.run(main())


def test_small_calls_stay_on_the_loop_thread_and_syncs_do_not(tmp_path: Path) -> None:
    # Which thread each blocking call ran on, recorded by wrapping the system calls.
    seen: dict[str, set[bool]] = {}
    real = {name: getattr(os, name) for name in ("fsync", "link", "unlink", "stat")}
    loop_thread: list[threading.Thread] = []

    def recording(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.setdefault(name, set()).add(threading.current_thread() is loop_thread[0])
            return real[name](*args, **kwargs)

        return call

    async def ref_ops(backend: LocalFileSystemBackend) -> None:
        loop_thread.append(threading.current_thread())
        assert await backend.put_if_absent(REF, b"one")
        assert await backend.exists(REF)
        await backend.delete(REF)

    mp = pytest.MonkeyPatch()
    try:
        for name in real:
            mp.setattr(os, name, recording(name))
        asyncio.run(ref_ops(LocalFileSystemBackend(str(tmp_path / "fast"), durable=False)))
        assert seen == {"link": {True}, "unlink": {True}, "stat": {True}}
        seen.clear()
        loop_thread.clear()
        asyncio.run(ref_ops(LocalFileSystemBackend(str(tmp_path / "durable"), durable=True)))
        # Every sync, and the steps around it, in a worker; ``exists`` on the loop's thread.
        assert True in seen.pop("stat")
        assert seen == {"fsync": {False}, "link": {False}, "unlink": {False}}
    finally:
        mp.undo()
