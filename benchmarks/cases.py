"""One benchmark measurement, run in a fresh process.

Usage: ``python benchmarks/cases.py <impl> <case> <dir> [--quick]``

``impl`` is ``pyicechunk``, ``icechunk`` (the reference, 1.1.21) or ``zarr`` (zarr's own
``LocalStore``: no versioning, the practical floor). ``case`` is one of the names in
:data:`CASES`. ``dir`` is where the repository (or plain zarr store) lives: writing cases create
it, reading cases expect the matching writing case to have run there before (in another
process, untimed as far as the reader is concerned).

The last line printed on stdout is a JSON object mapping phase names to seconds. Everything
else (set-up such as generating the data or creating an empty repository) happens outside the
timed regions.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr

ARRAY = "data"


@dataclass(frozen=True)
class Sizes:
    """Problem sizes; ``--quick`` shrinks them so a smoke run takes seconds."""

    big_shape: tuple[int, int]  # float64; 256 MiB by default
    big_chunks: tuple[int, int]  # 128 * 1024 float64 = exactly 1 MiB per chunk
    many_chunks: int  # one float64 per chunk
    small_commits: int


FULL = Sizes(big_shape=(4096, 8192), big_chunks=(128, 1024), many_chunks=100_000, small_commits=200)
QUICK = Sizes(big_shape=(512, 4096), big_chunks=(128, 1024), many_chunks=5_000, small_commits=20)


class Timer:
    """Collects named phase durations (seconds, wall clock)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._start = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = now - self._start
        self._start = now


def _module(impl: str) -> ModuleType:
    if impl == "pyicechunk":
        import pyicechunk

        return pyicechunk
    if impl == "icechunk":
        import icechunk

        return icechunk
    raise ValueError(f"not a versioned implementation: {impl}")


def _create_repo(impl: str, path: Path) -> Any:
    ic = _module(impl)
    return ic.Repository.create(ic.local_filesystem_storage(str(path)))


def _open_repo(impl: str, path: Path) -> Any:
    ic = _module(impl)
    return ic.Repository.open(ic.local_filesystem_storage(str(path)))


def _big_data(sizes: Sizes) -> np.ndarray[Any, np.dtype[np.float64]]:
    # Random normals: realistic, nearly incompressible, so the bytes really hit the disk.
    return np.random.default_rng(42).standard_normal(sizes.big_shape)


def _many_data(sizes: Sizes) -> np.ndarray[Any, np.dtype[np.float64]]:
    # Starts at 1 so no chunk equals the fill value (zarr would skip writing it).
    return np.arange(1, sizes.many_chunks + 1, dtype="float64")


def write_big(impl: str, path: Path, sizes: Sizes) -> dict[str, float]:
    """(a) Write a big float64 array in 1 MiB chunks, then commit."""
    data = _big_data(sizes)
    t = Timer()
    if impl == "zarr":
        store = zarr.storage.LocalStore(str(path))
        t.start()
        arr = zarr.create_array(
            store, name=ARRAY, shape=data.shape, chunks=sizes.big_chunks, dtype="float64"
        )
        arr[:] = data
        t.lap("write")
        return {**t.phases, "total": t.phases["write"]}
    repo = _create_repo(impl, path)
    t.start()
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name=ARRAY, shape=data.shape, chunks=sizes.big_chunks, dtype="float64"
    )
    arr[:] = data
    t.lap("write")
    session.commit("write big array")
    t.lap("commit")
    return {**t.phases, "total": t.phases["write"] + t.phases["commit"]}


def _read_array(impl: str, path: Path) -> tuple[zarr.Array[Any], Timer]:
    t = Timer()
    t.start()
    if impl == "zarr":
        store: Any = zarr.storage.LocalStore(str(path), read_only=True)
    else:
        store = _open_repo(impl, path).readonly_session(branch="main").store
    arr = zarr.open_array(store, path=ARRAY, mode="r")
    t.lap("open")
    return arr, t


def read_big(impl: str, path: Path, sizes: Sizes) -> dict[str, float]:
    """(b) Cold read: open the repository written by (a) and read the whole array."""
    arr, t = _read_array(impl, path)
    values = arr[:]
    t.lap("read")
    _check(values, _big_data(sizes))
    return {**t.phases, "total": t.phases["open"] + t.phases["read"]}


def write_many(impl: str, path: Path, sizes: Sizes) -> dict[str, float]:
    """(c) Write one-element chunks (100k by default), timing the writes and the commit apart."""
    data = _many_data(sizes)
    t = Timer()
    if impl == "zarr":
        store: Any = zarr.storage.LocalStore(str(path))
        t.start()
    else:
        repo = _create_repo(impl, path)
        t.start()
        session = repo.writable_session("main")
        store = session.store
    arr = zarr.create_array(store, name=ARRAY, shape=data.shape, chunks=(1,), dtype="float64")
    arr[:] = data
    t.lap("write")
    if impl == "zarr":
        return {**t.phases, "total": t.phases["write"]}
    session.commit("write many chunks")
    t.lap("commit")
    return {**t.phases, "total": t.phases["write"] + t.phases["commit"]}


def read_one(impl: str, path: Path, sizes: Sizes) -> dict[str, float]:
    """(d) Cold open of the repository written by (c) and read of a single chunk."""
    arr, t = _read_array(impl, path)
    index = sizes.many_chunks // 2
    value = arr[index]
    t.lap("read")
    _check(np.asarray(value), _many_data(sizes)[index])
    return {**t.phases, "total": t.phases["open"] + t.phases["read"]}


def small_commits(impl: str, path: Path, sizes: Sizes) -> dict[str, float]:
    """(e) Many small commits (one chunk and one attribute each), then the full ancestry."""
    n = sizes.small_commits
    t = Timer()
    if impl == "zarr":
        store = zarr.storage.LocalStore(str(path))
        zarr.create_array(store, name=ARRAY, shape=(n,), chunks=(1,), dtype="float64")
        t.start()
        for i in range(n):
            arr = zarr.open_array(store, path=ARRAY, mode="r+")
            arr[i] = i + 1
            arr.attrs["step"] = i
        t.lap("commits")
        return {**t.phases, "total": t.phases["commits"]}
    repo = _create_repo(impl, path)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name=ARRAY, shape=(n,), chunks=(1,), dtype="float64")
    session.commit("create array")
    t.start()
    for i in range(n):
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path=ARRAY, mode="r+")
        arr[i] = i + 1
        arr.attrs["step"] = i
        session.commit(f"step {i}")
    t.lap("commits")
    history = list(repo.ancestry(branch="main"))
    t.lap("ancestry")
    # n steps + the array creation + the repository's initial snapshot
    if len(history) != n + 2:
        raise AssertionError(f"expected {n + 2} snapshots in the ancestry, found {len(history)}")
    return {**t.phases, "total": t.phases["commits"] + t.phases["ancestry"]}


def _check(actual: Any, expected: Any) -> None:
    # A benchmark that reads the wrong bytes fast is worthless, so every read is verified.
    if not np.array_equal(actual, expected):
        raise AssertionError("read back different values than were written")


CASES: dict[str, Callable[[str, Path, Sizes], dict[str, float]]] = {
    "write_big": write_big,
    "read_big": read_big,
    "write_many": write_many,
    "read_one": read_one,
    "small_commits": small_commits,
}

IMPLS = ("pyicechunk", "icechunk", "zarr")


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--quick"]
    if len(args) != 3 or args[0] not in IMPLS or args[1] not in CASES:
        print(
            f"usage: cases.py {{{','.join(IMPLS)}}} {{{','.join(CASES)}}} DIR [--quick]",
            file=sys.stderr,
        )
        return 2
    impl, case, directory = args
    sizes = QUICK if "--quick" in argv else FULL
    if impl != "zarr":
        # Import time is not part of any measurement.
        _module(impl)
    timings = CASES[case](impl, Path(directory), sizes)
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
