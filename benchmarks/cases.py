"""One benchmark measurement, run in a fresh process.

Usage: ``python benchmarks/cases.py <impl> <case> <dir> [--quick]``

``impl`` is one of :data:`VARIANTS`: ``pyicechunk`` (spec-1 repositories), ``icechunk`` (the
reference 1.1.21, spec 1), ``zarr`` (zarr's own ``LocalStore``: no versioning, the practical
floor), ``icechunk2`` (the reference 2.3.0 on spec 2: run this file with the Python 3.12 venv that
``reference2.icechunk2_python()`` returns) and ``pyicechunk2`` (pyicechunk on spec 2), and
``pyicechunk-nosync`` / ``pyicechunk2-nosync``: pyicechunk with its durability setting off
(``local_filesystem_storage(path, durable=False)``: no syncs, as the references). ``case`` is
one of the names in :data:`CASES`. ``dir`` is where the repository (or plain zarr store) lives:
writing cases create it, reading cases expect the matching writing case to have run there before
(in another process, untimed as far as the reader is concerned).

The last line printed on stdout is a JSON object ``{"phases": {name: seconds}, "counts": {name:
int}}``. Everything else (set-up such as generating the data, creating an empty repository or
building the history that a maintenance case works on) happens outside the timed regions.

Only numpy, zarr and the implementation under test are imported, so this file runs under the
icechunk 2.3.0 venv as well as the project's own.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import importlib
import inspect
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.core.sync import sync

ARRAY = "data"


@dataclass(frozen=True)
class Variant:
    """How the worker runs one implementation of the harness.

    A variant with other repository settings (such as ``durable``) is one more entry in
    :data:`VARIANTS`, with the setting applied where :func:`_storage` builds the storage.
    """

    module: str | None  # None: zarr's LocalStore, no repository
    spec: int | None  # on-disk spec version of the repositories it creates
    version_prefix: str = ""  # the module's __version__ must start with this
    durable: bool = True  # False: pyicechunk's local_filesystem_storage(durable=False)


VARIANTS: dict[str, Variant] = {
    "pyicechunk": Variant("pyicechunk", 1),
    "icechunk": Variant("icechunk", 1, "1."),
    "zarr": Variant(None, None),
    "icechunk2": Variant("icechunk", 2, "2."),
    "pyicechunk2": Variant("pyicechunk", 2),
    "pyicechunk-nosync": Variant("pyicechunk", 1, durable=False),
    "pyicechunk2-nosync": Variant("pyicechunk", 2, durable=False),
}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes; ``--quick`` shrinks them so a smoke run takes seconds."""

    big_shape: tuple[int, int]  # float64; 256 MiB by default
    big_chunks: tuple[int, int]  # 128 * 1024 float64 = exactly 1 MiB per chunk
    many_chunks: int  # one float64 per chunk
    small_commits: int
    tiny_commits: int
    ref_pairs: int
    expire_history: int  # commits before expiration
    expire_keep: int  # how many of the newest commits survive it
    rewrite_arrays: int
    rewrite_chunks: int  # per array
    split_chunks: int
    split_manifests: int


FULL = Sizes(
    big_shape=(4096, 8192),
    big_chunks=(128, 1024),
    many_chunks=100_000,
    small_commits=200,
    tiny_commits=100,
    ref_pairs=30,
    expire_history=200,
    expire_keep=10,
    rewrite_arrays=100,
    rewrite_chunks=100,
    split_chunks=1_000_000,
    split_manifests=100,
)
QUICK = Sizes(
    big_shape=(512, 4096),
    big_chunks=(128, 1024),
    many_chunks=5_000,
    small_commits=20,
    tiny_commits=10,
    ref_pairs=5,
    expire_history=20,
    expire_keep=5,
    rewrite_arrays=10,
    rewrite_chunks=10,
    split_chunks=10_000,
    split_manifests=10,
)


@dataclass
class Measurement:
    """Phase durations (seconds) and counts of one run of a case."""

    phases: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"phases": self.phases, "counts": self.counts})


class Timer:
    """Collects named phase durations (seconds, wall clock); the total is their sum."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._start = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        """End the phase ``name`` (adding to it if it ran before) and start the next one."""
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._start
        self._start = now

    def result(self, **counts: int) -> Measurement:
        return Measurement({**self.phases, "total": sum(self.phases.values())}, counts)


# -- repositories ---------------------------------------------------------------------------


def _module(v: Variant) -> ModuleType:
    if v.module is None:
        raise ValueError("zarr's LocalStore has no repository")
    ic = importlib.import_module(v.module)
    found = getattr(ic, "__version__", "")
    if not found.startswith(v.version_prefix):
        raise RuntimeError(
            f"expected {v.module} {v.version_prefix}x in this interpreter, found {found}"
        )
    return ic


def _create_repo(v: Variant, path: Path, config: Any = None) -> Any:
    """An empty repository of the variant's spec version (checked on disk)."""
    ic = _module(v)
    kwargs: dict[str, Any] = {}
    if "spec_version" in inspect.signature(ic.Repository.create).parameters:
        kwargs["spec_version"] = v.spec
    elif v.spec != 1:
        raise NotImplementedError(f"{v.module} cannot create spec-{v.spec} repositories")
    repo = ic.Repository.create(_storage(v, path), config, **kwargs)
    found = _spec_on_disk(path)
    if found != v.spec:
        raise AssertionError(f"asked for a spec-{v.spec} repository, {v.module} wrote spec {found}")
    return repo


def _open_repo(v: Variant, path: Path) -> Any:
    return _module(v).Repository.open(_storage(v, path))


def _storage(v: Variant, path: Path) -> Any:
    """The variant's local filesystem storage at ``path``."""
    ic = _module(v)
    if v.durable:
        return ic.local_filesystem_storage(str(path))
    return ic.local_filesystem_storage(str(path), durable=False)


def _settle() -> None:
    """Write a set-up's data back to disk before the timed part starts (untimed).

    The references never sync, so without this their set-up's objects are still dirty in the
    page cache when a maintenance case deletes or rewrites them: ext4 frees a never-allocated
    file almost for free, while pyicechunk's (synced by its commits) pays for freeing real
    blocks. Real maintenance works on objects written long ago, which are on disk for all.
    """
    if hasattr(os, "sync"):
        os.sync()


def _spec_on_disk(path: Path) -> int:
    """The spec version of the repository at ``path``, read from its files (FORMAT-V2 §1, §2)."""
    repo = path / "repo"
    if repo.is_file():
        header = repo.read_bytes()[:39]
        # bytes 0-11 magic, 12-35 implementation name, 36 spec version, 37 file type (6: repo)
        if len(header) == 39 and header[37] == 6:
            return header[36]
        raise AssertionError(f"{repo} is not a repo object")
    if (path / "refs" / "branch.main" / "ref.json").is_file():
        return 1
    raise AssertionError(f"no repository at {path}")


def _file_count(directory: Path) -> int:
    return len(os.listdir(directory)) if directory.is_dir() else 0


# -- data -----------------------------------------------------------------------------------


def _big_data(sizes: Sizes) -> np.ndarray[Any, np.dtype[np.float64]]:
    # Random normals: realistic, nearly incompressible, so the bytes really hit the disk.
    return np.random.default_rng(42).standard_normal(sizes.big_shape)


def _many_data(sizes: Sizes) -> np.ndarray[Any, np.dtype[np.float64]]:
    # Starts at 1 so no chunk equals the fill value (zarr would skip writing it).
    return np.arange(1, sizes.many_chunks + 1, dtype="float64")


# Bulk chunk writes: chunk i of a one-element-chunk float64 array holds i % _DISTINCT + 1.
_DISTINCT = 1000
_PUT_BATCH = 100  # the fastest batch for icechunk's store (tried 1 to 10 000)


def _bulk_value(index: int) -> float:
    return float(index % _DISTINCT + 1)


def _encoded_chunks() -> list[Buffer]:
    """The bytes zarr's default codecs make of each distinct chunk, via a memory store."""
    store = zarr.storage.MemoryStore()
    arr = zarr.create_array(store, name="x", shape=(_DISTINCT,), chunks=(1,), dtype="float64")
    arr[:] = [_bulk_value(i) for i in range(_DISTINCT)]
    proto = default_buffer_prototype()

    async def read() -> list[Buffer]:
        found = [await store.get(f"x/c/{i}", proto) for i in range(_DISTINCT)]
        assert all(b is not None for b in found)
        return [b for b in found if b is not None]

    return sync(read())


def _put_chunks(store: Any, arrays: list[str], n: int) -> None:
    """Write chunks 0..n-1 of each of ``arrays`` (created with :func:`_bulk_array`).

    Set-up only: zarr spends about half a millisecond of Python per chunk, which for a million
    chunks would take longer than every measurement of a run together; the store's own ``set``
    with pre-encoded bytes writes exactly what zarr would.
    """
    encoded = _encoded_chunks()
    keys = [(f"{a}/c/{i}", encoded[i % _DISTINCT]) for a in arrays for i in range(n)]

    async def put() -> None:
        for lo in range(0, len(keys), _PUT_BATCH):
            await asyncio.gather(*(store.set(k, b) for k, b in keys[lo : lo + _PUT_BATCH]))

    sync(put())


def _bulk_array(store: Any, name: str, n: int) -> zarr.Array[Any]:
    return zarr.create_array(store, name=name, shape=(n,), chunks=(1,), dtype="float64")


# -- counting manifest reads ----------------------------------------------------------------

_IN_OPEN = 0x20
_IN_Q_OVERFLOW = 0x4000
_IN_ISDIR = 0x40000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class OpenCounter:
    """Names of the files opened in one directory while it watches (Linux inotify).

    This counts manifest reads the same way for every implementation, the Rust ones included,
    without touching their storage layers. The kernel queues the events, so watching costs the
    timed code nothing measurable.
    """

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self._fd, os.fsencode(directory), _IN_OPEN) < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), f"cannot watch {directory}")

    def opened(self) -> list[str]:
        """One name per open since the watch began; stops watching."""
        names: list[str] = []
        try:
            while True:
                try:
                    data = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return names
                offset = 0
                while offset < len(data):
                    _, mask, _, length = _EVENT.unpack_from(data, offset)
                    start = offset + _EVENT.size
                    name = data[start : start + length].rstrip(b"\0")
                    offset = start + length
                    if mask & _IN_Q_OVERFLOW:
                        raise RuntimeError("inotify queue overflowed: open counts are incomplete")
                    if name and not mask & _IN_ISDIR:
                        names.append(os.fsdecode(name))
        finally:
            os.close(self._fd)


def _watch_manifests(path: Path) -> OpenCounter | None:
    manifests = path / "manifests"
    if not sys.platform.startswith("linux") or not manifests.is_dir():
        return None
    return OpenCounter(manifests)


def _manifest_counts(path: Path, counter: OpenCounter | None) -> dict[str, int]:
    """Manifests in the repository and, where they could be watched, manifest reads."""
    if not (path / "manifests").is_dir():
        return {}  # zarr's LocalStore
    counts = {"manifests on disk": _file_count(path / "manifests")}
    if counter is not None:
        opened = counter.opened()
        counts["manifest opens"] = len(opened)
        counts["manifests opened"] = len(set(opened))
    return counts


# -- cases ----------------------------------------------------------------------------------


def probe(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """Whether the variant runs here: creates an empty repository of its spec version."""
    if v.module is None:
        return Measurement({})
    t = Timer()
    t.start()
    _create_repo(v, path)
    t.lap("create")
    return t.result(spec=_spec_on_disk(path))


def write_big(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(a) Write a big float64 array in 1 MiB chunks, then commit."""
    data = _big_data(sizes)
    t = Timer()
    if v.module is None:
        store = zarr.storage.LocalStore(str(path))
        t.start()
        arr = zarr.create_array(
            store, name=ARRAY, shape=data.shape, chunks=sizes.big_chunks, dtype="float64"
        )
        arr[:] = data
        t.lap("write")
        return t.result()
    repo = _create_repo(v, path)
    t.start()
    session = repo.writable_session("main")
    arr = zarr.create_array(
        session.store, name=ARRAY, shape=data.shape, chunks=sizes.big_chunks, dtype="float64"
    )
    arr[:] = data
    t.lap("write")
    session.commit("write big array")
    t.lap("commit")
    return t.result()


def _read_array(v: Variant, path: Path) -> tuple[zarr.Array[Any], Timer]:
    t = Timer()
    t.start()
    if v.module is None:
        store: Any = zarr.storage.LocalStore(str(path), read_only=True)
    else:
        store = _open_repo(v, path).readonly_session(branch="main").store
    arr = zarr.open_array(store, path=ARRAY, mode="r")
    t.lap("open")
    return arr, t


def read_big(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(b) Cold read: open the repository written by (a) and read the whole array."""
    arr, t = _read_array(v, path)
    values = arr[:]
    t.lap("read")
    _check(values, _big_data(sizes))
    return t.result()


def write_many(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(c) Write one-element chunks (100k by default), timing the writes and the commit apart."""
    data = _many_data(sizes)
    t = Timer()
    if v.module is None:
        store: Any = zarr.storage.LocalStore(str(path))
        t.start()
    else:
        repo = _create_repo(v, path)
        t.start()
        session = repo.writable_session("main")
        store = session.store
    arr = zarr.create_array(store, name=ARRAY, shape=data.shape, chunks=(1,), dtype="float64")
    arr[:] = data
    t.lap("write")
    if v.module is not None:
        session.commit("write many chunks")
        t.lap("commit")
    return t.result()


def read_one(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(d) Cold open of the repository written by (c) and read of a single chunk."""
    counter = _watch_manifests(path)
    arr, t = _read_array(v, path)
    index = sizes.many_chunks // 2
    value = arr[index]
    t.lap("read")
    _check(np.asarray(value), _many_data(sizes)[index])
    return t.result(**_manifest_counts(path, counter))


def _commit_loop(v: Variant, path: Path, n: int, *, attrs: bool) -> Measurement:
    """``n`` commits of one one-element chunk (and an attribute if ``attrs``), then ancestry."""
    t = Timer()
    if v.module is None:
        store = zarr.storage.LocalStore(str(path))
        zarr.create_array(store, name=ARRAY, shape=(n,), chunks=(1,), dtype="float64")
        t.start()
        for i in range(n):
            arr = zarr.open_array(store, path=ARRAY, mode="r+")
            arr[i] = i + 1
            if attrs:
                arr.attrs["step"] = i
        t.lap("commits")
        return t.result()
    repo = _create_repo(v, path)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name=ARRAY, shape=(n,), chunks=(1,), dtype="float64")
    session.commit("create array")
    t.start()
    for i in range(n):
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path=ARRAY, mode="r+")
        arr[i] = i + 1
        if attrs:
            arr.attrs["step"] = i
        session.commit(f"step {i}")
    t.lap("commits")
    history = list(repo.ancestry(branch="main"))
    t.lap("ancestry")
    # n steps + the array creation + the repository's initial snapshot
    if len(history) != n + 2:
        raise AssertionError(f"expected {n + 2} snapshots in the ancestry, found {len(history)}")
    return t.result()


def small_commits(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(e) Many small commits (one chunk and one attribute each), then the full ancestry."""
    return _commit_loop(v, path, sizes.small_commits, attrs=True)


def tiny_commits(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(f) Commits of one tiny chunk each, then the ancestry walk, timed apart."""
    return _commit_loop(v, path, sizes.tiny_commits, attrs=False)


def branch_tag(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(g) Create and delete a branch and a tag, many times; branch and tag calls timed apart."""
    repo = _create_repo(v, path)
    session = repo.writable_session("main")
    zarr.create_array(session.store, name=ARRAY, shape=(1,), chunks=(1,), dtype="float64")
    snapshot = session.commit("create array")
    t = Timer()
    for i in range(sizes.ref_pairs):
        t.start()
        repo.create_branch(f"branch-{i}", snapshot)
        t.lap("branch")
        repo.create_tag(f"tag-{i}", snapshot)
        t.lap("tag")
        repo.delete_branch(f"branch-{i}")
        t.lap("branch")
        repo.delete_tag(f"tag-{i}")
        t.lap("tag")
    if repo.list_branches() != {"main"} or repo.list_tags():
        raise AssertionError("branches or tags survived their deletion")
    return t.result()


_EXPIRE_CHUNK = 128  # float64: 1 KiB, above the inline threshold, so chunks are files
_EXPIRE_CHUNKS = 10


def _expire_chunk(k: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.random.default_rng(1000 + k).standard_normal(_EXPIRE_CHUNK)


def expire_gc(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(h) On a long history, expire all but the newest commits, then garbage-collect."""
    n = sizes.expire_history
    repo = _create_repo(v, path)
    session = repo.writable_session("main")
    shape = (_EXPIRE_CHUNK * _EXPIRE_CHUNKS,)
    zarr.create_array(
        session.store, name=ARRAY, shape=shape, chunks=(_EXPIRE_CHUNK,), dtype="float64"
    )
    session.commit("create array")
    expected = np.zeros(shape)
    for k in range(n):
        # Each commit replaces one chunk, so every expired commit leaves a chunk, a manifest,
        # a snapshot and a transaction log for the collector.
        lo = (k % _EXPIRE_CHUNKS) * _EXPIRE_CHUNK
        expected[lo : lo + _EXPIRE_CHUNK] = _expire_chunk(k)
        session = repo.writable_session("main")
        arr = zarr.open_array(session.store, path=ARRAY, mode="r+")
        arr[lo : lo + _EXPIRE_CHUNK] = expected[lo : lo + _EXPIRE_CHUNK]
        session.commit(f"step {k}")
    # Everything older than the newest expire_keep commits expires.
    older_than = list(repo.ancestry(branch="main"))[sizes.expire_keep - 1].written_at
    _settle()
    t = Timer()
    t.start()
    expired = repo.expire_snapshots(older_than)
    t.lap("expire")
    summary = repo.garbage_collect(dt.datetime.now(dt.UTC))
    t.lap("gc")
    arr = zarr.open_array(repo.readonly_session(branch="main").store, path=ARRAY, mode="r")
    _check(arr[:], expected)
    return t.result(
        expired=len(expired),
        **{
            f"{kind} deleted": getattr(summary, f"{kind}_deleted")
            for kind in ("snapshots", "manifests", "chunks", "transaction_logs")
        },
    )


def rewrite_manifests(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(i) Rewrite the manifests of many arrays (one commit)."""
    repo = _create_repo(v, path)
    session = repo.writable_session("main")
    names = [f"array{i:03}" for i in range(sizes.rewrite_arrays)]
    for name in names:
        _bulk_array(session.store, name, sizes.rewrite_chunks)
    _put_chunks(session.store, names, sizes.rewrite_chunks)
    session.commit("write arrays")
    before = _file_count(path / "manifests")
    _settle()
    t = Timer()
    t.start()
    repo.rewrite_manifests("rewrite manifests", branch="main")
    t.lap("rewrite")
    store = repo.readonly_session(branch="main").store
    expected = [_bulk_value(i) for i in range(sizes.rewrite_chunks)]
    _check(zarr.open_array(store, path=names[-1], mode="r")[:], expected)
    return t.result(**{"manifests written": _file_count(path / "manifests") - before})


def _split_index(sizes: Sizes) -> int:
    # Inside one of the middle manifests, away from a split boundary.
    return sizes.split_chunks // 2 + sizes.split_chunks // sizes.split_manifests // 3


def build_split(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """Set-up of (j): an array of many one-element chunks under a manifest splitting config.

    zarr's LocalStore gets only the array and the chunk that (j) reads: a plain store reads
    one chunk the same way however many others there are.
    """
    n = sizes.split_chunks
    t = Timer()
    t.start()
    if v.module is None:
        arr = _bulk_array(zarr.storage.LocalStore(str(path)), ARRAY, n)
        index = _split_index(sizes)
        arr[index] = _bulk_value(index)
        t.lap("build")
        return t.result()
    ic = _module(v)
    split = ic.ManifestSplittingConfig.from_dict(
        {
            ic.ManifestSplitCondition.name_matches(ARRAY): {
                ic.ManifestSplitDimCondition.Any(): n // sizes.split_manifests
            }
        }
    )
    config = ic.RepositoryConfig(manifest=ic.ManifestConfig(splitting=split))
    repo = _create_repo(v, path, config)
    session = repo.writable_session("main")
    _bulk_array(session.store, ARRAY, n)
    _put_chunks(session.store, [ARRAY], n)
    session.commit("write split array")
    t.lap("build")
    return t.result(**{"manifests on disk": _file_count(path / "manifests")})


def read_split(v: Variant, path: Path, sizes: Sizes) -> Measurement:
    """(j) Cold open of the repository of :func:`build_split` and read of one chunk."""
    counter = _watch_manifests(path)
    arr, t = _read_array(v, path)
    index = _split_index(sizes)
    value = arr[index]
    t.lap("read")
    _check(np.asarray(value), _bulk_value(index))
    return t.result(**_manifest_counts(path, counter))


def _check(actual: Any, expected: Any) -> None:
    # A benchmark that reads the wrong bytes fast is worthless, so every read is verified.
    if not np.array_equal(actual, expected):
        raise AssertionError("read back different values than were written")


CASES: dict[str, Callable[[Variant, Path, Sizes], Measurement]] = {
    "probe": probe,
    "write_big": write_big,
    "read_big": read_big,
    "write_many": write_many,
    "read_one": read_one,
    "small_commits": small_commits,
    "tiny_commits": tiny_commits,
    "branch_tag": branch_tag,
    "expire_gc": expire_gc,
    "rewrite_manifests": rewrite_manifests,
    "build_split": build_split,
    "read_split": read_split,
}


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--quick"]
    if len(args) != 3 or args[0] not in VARIANTS or args[1] not in CASES:
        print(
            f"usage: cases.py {{{','.join(VARIANTS)}}} {{{','.join(CASES)}}} DIR [--quick]",
            file=sys.stderr,
        )
        return 2
    impl, case, directory = args
    sizes = QUICK if "--quick" in argv else FULL
    variant = VARIANTS[impl]
    if variant.module is not None:
        # Import time is not part of any measurement.
        _module(variant)
    print(CASES[case](variant, Path(directory), sizes).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
