"""Throughput of the local filesystem storage backend on its bulk path.

Writes N objects of 1 MiB with concurrent ``put`` calls, reads them back with concurrent ``get``
calls, and compares with the cost of the same writes without fsync (the floor the disk cache
gives) and with zarr's ``LocalStore`` (no durability, no atomic rename).

    python benchmarks/bench_local_storage.py [N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
from zarr.storage import LocalStore

from pyicechunk.storage import local
from pyicechunk.storage.local import LocalFileSystemBackend

MIB = 1 << 20


async def bench_backend(root: str, n: int, payload: bytes) -> tuple[float, float]:
    backend = LocalFileSystemBackend(root)
    keys = [f"chunks/{i:020d}" for i in range(n)]
    t0 = time.perf_counter()
    await asyncio.gather(*(backend.put(k, payload) for k in keys))
    t1 = time.perf_counter()
    got = await asyncio.gather(*(backend.get(k) for k in keys))
    t2 = time.perf_counter()
    assert all(len(g) == len(payload) for g in got)
    return t1 - t0, t2 - t1


async def bench_zarr(root: str, n: int, payload: bytes) -> tuple[float, float]:
    store = await LocalStore.open(root)
    keys = [f"chunks/{i:020d}" for i in range(n)]
    buf = Buffer.from_bytes(payload)
    proto = default_buffer_prototype()
    t0 = time.perf_counter()
    await asyncio.gather(*(store.set(k, buf) for k in keys))
    t1 = time.perf_counter()
    await asyncio.gather(*(store.get(k, proto) for k in keys))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def no_fsync(*args: object) -> None:
    """Stand-in for the fsync calls, to measure what durability costs."""


def median_run(bench, n: int, payload: bytes, repeats: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
            runs.append(asyncio.run(bench(tmp, n, payload)))
    puts, gets = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
    return puts[len(puts) // 2], gets[len(gets) // 2]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    payload = os.urandom(MIB)
    mb = n * MIB / 1e6
    rows = [
        ("pyicechunk local (fsync file + dir)", *median_run(bench_backend, n, payload, repeats))
    ]
    real_fsync_directory = local._fsync_directory
    local._fsync_directory = no_fsync  # type: ignore[assignment]
    rows.append(
        ("pyicechunk local, fsync file only", *median_run(bench_backend, n, payload, repeats))
    )
    real_fsync = os.fsync
    os.fsync = no_fsync  # type: ignore[assignment]
    rows.append(("pyicechunk local, no fsync", *median_run(bench_backend, n, payload, repeats)))
    os.fsync = real_fsync
    local._fsync_directory = real_fsync_directory
    rows.append(("zarr LocalStore (no fsync)", *median_run(bench_zarr, n, payload, repeats)))
    print(f"{n} x 1 MiB, concurrent (asyncio.gather), median of {repeats}")
    for name, put_s, get_s in rows:
        print(
            f"  {name:38s} put {mb / put_s:8.0f} MB/s ({put_s:6.3f} s)"
            f"   get {mb / get_s:8.0f} MB/s ({get_s:6.3f} s)"
        )


if __name__ == "__main__":
    main()
